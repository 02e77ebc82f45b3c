"""The phone page for reporting an incident: sign-in, a self-contained page with a tappable grid
map, one incident (and its photo) per report, and refusals that leave the database and the photo
store exactly as they were."""

import io
import re
from datetime import UTC, datetime, timedelta

import pytest
import shapely
from PIL import Image
from sqlalchemy import func, select
from utils.factories import CSRF, add_users, sign_in

from geodata.reference import load_grids
from patrol.accounts import Principal
from patrol.incidents import IncidentReport, report_incident
from patrol.models import Grid, Incident, IncidentPhoto, User

GRID = "LJ-GQ-03"


def inside(code: str = GRID) -> tuple[float, float]:
    grids = load_grids()
    point = grids.loc[grids.code == code, "geometry"].iloc[0].representative_point()
    return round(point.x, 6), round(point.y, 6)


def png(width: int = 40, height: int = 30) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 60)).save(buffer, format="PNG")
    return buffer.getvalue()


def counts(sessions) -> tuple[int, int]:
    with sessions() as session:
        return tuple(session.scalar(select(func.count()).select_from(t)) for t in (Incident, IncidentPhoto))


def stored_files(settings) -> set[str]:
    root = settings.photo_dir()
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def form_page(client) -> tuple[str, str]:
    page = client.get("/incidents/report")
    assert page.status_code == 200, page.text
    return page.text, CSRF.search(page.text).group(1)


def post_report(client, token: str, *, photo: bytes | None = None, **fields):
    lon, lat = inside()
    data = {
        "csrf_token": token,
        "category": "cutting",
        "severity": "high",
        "lon": str(lon),
        "lat": str(lat),
        "datum": "wgs84",
        "description": "三棵红树被砍 three mangroves cut",
        **fields,
    }
    files = {"photo": ("photo.png", photo, "image/png")} if photo is not None else None
    return client.post("/incidents/report", data=data, files=files)


def test_the_pages_need_a_signed_in_user(client, sessions):
    add_users(sessions, "member")
    for path in ("/incidents/report", "/incidents/mine"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == f"/login?next={path}"
    response = client.post("/incidents/report", data={"category": "cutting"}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert counts(sessions) == (0, 0)
    sign_in(client, "member")
    home = client.get("/")
    assert 'href="/incidents/report"' in home.text and 'href="/incidents/mine"' in home.text


def test_the_page_is_self_contained_with_a_tappable_grid_map(client, sessions):
    add_users(sessions, "member", "officer-lj")
    sign_in(client, "member")
    html, _ = form_page(client)
    assert "http://" not in html and "https://" not in html  # no CDN, fonts or external scripts
    assert not re.search(r'<(script|link|img)[^>]+(src|href)="(?!/|data:)', html)
    assert 'capture="environment"' in html and 'accept="image/*"' in html
    # The page's script is a file: its Content-Security-Policy runs no inline code.
    assert '<script src="/static/app/incident-report.js">' in html
    assert "navigator.geolocation" in client.get("/static/app/incident-report.js").text
    assert "砍伐/毁坏红树林 Cutting or damaging mangroves" in html
    for field in ('name="lon"', 'name="lat"', 'name="severity"', 'name="observed_at"', 'name="description"'):
        assert field in html
    # A patrol member of the Gaoqiao team: the map frames Gaoqiao's grids.
    svg = re.search(r"<svg id=\"map\".*?</svg>", html, re.S).group(0)
    own = set(re.findall(r'<path class="grid own" data-code="([^"]+)" d="M[\d. L]+Z', svg))
    assert own == {f"LJ-GQ-0{i}" for i in range(1, 9)}
    assert f">{GRID}</text>" in svg
    # The numbers the page's script uses to turn a tap into lon/lat: the label drawn for LJ-GQ-03
    # maps back to a point inside LJ-GQ-03.
    number = {
        k: float(re.search(rf'data-{k}="([-\d.e]+)"', svg).group(1)) for k in ("lon0", "lat0", "kx", "ky")
    }
    x, y = (
        float(v)
        for v in re.search(rf'<text class="label" x="([\d.]+)" y="([\d.]+)"[^>]*>{GRID}<', svg).groups()
    )
    tapped = shapely.Point(number["lon0"] + x / number["kx"], number["lat0"] - y / number["ky"])
    grids = load_grids()
    assert grids.loc[grids.code == GRID, "geometry"].iloc[0].buffer(1e-4).contains(tapped)
    # Anyone else sees all grids, Hepu's zones too.
    client.cookies.clear()
    sign_in(client, "officer-lj")
    html, _ = form_page(client)
    drawn = set(re.findall(r'<path class="grid own" data-code="([^"]+)"', html))
    assert drawn == set(grids.code) and "HP-SK-01" in drawn


def test_a_report_with_a_photo_is_one_incident_with_one_file(client, sessions, settings):
    add_users(sessions, "member")
    sign_in(client, "member")
    _, token = form_page(client)
    before = stored_files(settings)
    image = png()
    response = post_report(client, token, photo=image)
    assert response.status_code == 200, response.text
    assert response.url.path == "/incidents/report"  # redirected: reloading does not report again
    with sessions() as session:
        incident = session.scalars(select(Incident)).one()
        photo = session.scalars(select(IncidentPhoto)).one()
        assert session.get(Grid, incident.grid_id).code == GRID and incident.grid_match == "inside"
        assert (incident.category, incident.severity, incident.side) == ("cutting", "high", "GD-LJ")
        assert incident.description == "三棵红树被砍 three mangroves cut"
        assert photo.incident_id == incident.id and photo.content_type == "image/png"
        accept_due = incident.accept_due
        resolve_due = incident.resolve_due
    new = stored_files(settings) - before
    assert new == {photo.path}
    assert (settings.photo_dir() / photo.path).read_bytes() == image
    text = response.text
    assert f"#{incident.id}" in text and GRID in text and "Reported" in text
    assert "1 photo" in text and "广东·廉江 Guangdong · Lianjiang" in text

    def china(value):
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        return (value.astimezone(UTC) + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M")

    assert china(accept_due) in text and china(resolve_due) in text
    assert 'href="/incidents/report"' in text  # report another
    mine = client.get("/incidents/mine")
    assert mine.status_code == 200 and f"#{incident.id}" in mine.text and GRID in mine.text
    assert "已报告 Reported" in mine.text and china(accept_due) in mine.text


def test_a_report_without_a_photo_and_with_a_time_seen(client, sessions):
    add_users(sessions, "member")
    sign_in(client, "member")
    _, token = form_page(client)
    seen = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
    local = (seen + timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M")  # what the phone's clock shows
    response = post_report(client, token, observed_at=local, category="rubbish", severity="low")
    assert response.status_code == 200, response.text
    with sessions() as session:
        incident = session.scalars(select(Incident)).one()
        observed = (
            incident.observed_at if incident.observed_at.tzinfo else incident.observed_at.replace(tzinfo=UTC)
        )
        assert observed == seen
    assert counts(sessions) == (1, 0)


REFUSALS = {
    "bad-csrf": ({"csrf_token": "forged"}, True, 403, "CSRF"),
    "unknown-category": ({"category": "dragons"}, True, 422, "unknown incident category 'dragons'"),
    "far-outside": ({"lon": "116.397", "lat": "39.909"}, True, 422, "far outside Lianjiang and Hepu"),
    "swapped": ({"lon": str(inside()[1]), "lat": str(inside()[0])}, False, 422, "looks swapped"),
    "not-an-image": ({}, b"GIF? no, just text pretending to be a photo", 422, "not an image"),
    "future": ({"observed_at": "2099-01-01T08:00"}, True, 422, "in the future"),
    "no-position": ({"lon": "", "lat": ""}, False, 422, "Give the position"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_refused_report_changes_nothing_and_keeps_the_entries(client, sessions, settings, case):
    fields, photo, status, message = REFUSALS[case]
    add_users(sessions, "member")
    sign_in(client, "member")
    _, token = form_page(client)
    before_counts, before_files = counts(sessions), stored_files(settings)
    image = png() if photo is True else (photo or None)
    response = post_report(client, token, photo=image, **fields)
    assert response.status_code == status, response.text
    error = re.search(r'<p class="error" role="alert">(.*?)</p>', response.text, re.S)
    assert error and message in error.group(1).replace("&#39;", "'")
    assert counts(sessions) == before_counts == (0, 0)
    assert stored_files(settings) == before_files
    # The form comes back with what was typed, and a fresh token that works.
    assert "three mangroves cut</textarea>" in response.text
    if "lon" in fields and fields["lon"]:
        assert f'value="{fields["lon"]}"' in response.text
    if image is not None:
        assert "choose the photo again" in response.text
    again = CSRF.search(response.text).group(1)
    assert post_report(client, again, photo=png()).status_code == 200
    assert counts(sessions) == (1, 1)


def test_my_incidents_lists_only_mine_with_deadlines_and_overdue_marks(client, sessions, settings):
    add_users(sessions, "member", "member-2")
    lon, lat = inside()
    now = datetime.now(UTC)
    with sessions() as session:
        by = {
            name: Principal.of(session.scalars(select(User).where(User.username == name)).one())
            for name in ("member", "member-2")
        }
        late = report_incident(
            session,
            by["member"],
            IncidentReport("fire", lon, lat),
            settings.incidents,
            now=now - timedelta(hours=5),
        )
        fresh = report_incident(
            session, by["member"], IncidentReport("rubbish", lon, lat), settings.incidents
        )
        other = report_incident(
            session, by["member-2"], IncidentReport("pests", lon, lat), settings.incidents
        )
        session.commit()
        ids = late.id, fresh.id, other.id
    sign_in(client, "member")
    page = client.get("/incidents/mine")
    assert page.status_code == 200
    cards = dict(re.findall(r'<div class="card incident">\s*<h2[^>]*>#(\d+) (.*?)</div>', page.text, re.S))
    assert set(cards) == {str(ids[0]), str(ids[1])}  # not member-2's
    assert "火情 Fire" in cards[str(ids[0])] and "Not accepted in time" in cards[str(ids[0])]
    assert "Not accepted in time" not in cards[str(ids[1])] and "Accept by" in cards[str(ids[1])]
    assert "GD-LJ" not in page.text and "广东" in cards[str(ids[0])]  # the side's name, not its code
    assert "http://" not in page.text and "https://" not in page.text
    assert client.get("/incidents/mine?cursor=garbage").status_code == 422
