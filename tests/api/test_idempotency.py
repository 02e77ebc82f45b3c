"""Safe retries: a create sent again with its Idempotency-Key answers with the first result and
makes nothing new — on every create endpoint, for repeats sent at the same moment, and per user.
A key reused for another request, a malformed key and a refused request are each handled by name;
keys expire; the service's own forms carry a key so a double tap makes one object."""

import io
import re
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from PIL import Image
from sqlalchemy import func, select, update
from utils.browser import serving
from utils.factories import CSRF, add_users, auth, sign_in, token
from utils.places import inside
from utils.tracks import crossing, gpx

from patrol import idempotency
from patrol.models import (
    IdempotencyKey,
    Incident,
    IncidentCategory,
    IncidentPhoto,
    JointCase,
    JointCaseAction,
    Patrol,
    User,
)

KEY = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
GQ03 = inside("LJ-GQ-03")


def new_key() -> str:
    return str(uuid.uuid4())


def incident_body(lonlat=GQ03, **extra) -> dict:
    return {
        "category": "rubbish",
        "lon": lonlat[0],
        "lat": lonlat[1],
        "description": "塑料垃圾 plastic",
    } | extra


def report(client, headers, **extra):
    return client.post("/api/v1/incidents", json=incident_body(**extra), headers=headers)


def png(colour=(30, 120, 60)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def track() -> bytes:
    lon, lat, times, _ = crossing("LJ-GQ-03", interval=5)
    return gpx(lon, lat, times)


def count(sessions, model, *where) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def stored_keys(sessions) -> set[tuple[str, str]]:
    with sessions() as session:
        return set(session.execute(select(User.username, IdempotencyKey.key).join(User)).all())


def photo_files(settings) -> int:
    root = settings.photo_dir()
    return sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0


# --- every create endpoint ------------------------------------------------------------------------


@dataclass
class Create:
    """One create endpoint, ready to call: ``send(extra headers)`` and how many objects exist."""

    send: Callable[[dict], httpx.Response]
    count: Callable[[], int]


def patrol_upload(client, sessions) -> Create:
    add_users(sessions, "member")
    who, content = auth(client, "member"), track()
    return Create(
        lambda h: client.post("/api/v1/patrols", files={"file": ("walk.gpx", content)}, headers=who | h),
        lambda: count(sessions, Patrol),
    )


def incident_report(client, sessions) -> Create:
    add_users(sessions, "member")
    who = auth(client, "member")
    return Create(lambda h: report(client, who | h), lambda: count(sessions, Incident))


def incident_photo(client, sessions) -> Create:
    add_users(sessions, "member")
    who = auth(client, "member")
    incident = report(client, who).json()
    url = f"/api/v1/incidents/{incident['id']}/photos"
    return Create(
        lambda h: client.post(url, files={"file": ("p.png", png(), "image/png")}, headers=who | h),
        lambda: count(sessions, IncidentPhoto),
    )


def _case_parties(client, sessions):
    add_users(sessions, "member", "member-hp", "officer-lj", "officer-hp")
    incident = report(client, auth(client, "member"), lonlat=inside("LJ-AP-02"), category="pollution").json()
    return incident, auth(client, "officer-lj"), auth(client, "officer-hp")


def _open_case(client, lj, incident) -> dict:
    body = {"title": "英罗湾排污 effluent", "incident_ids": [incident["id"]], "participants": ["officer-hp"]}
    return client.post("/api/v1/joint-cases", json=body, headers=lj).json()


def joint_case(client, sessions) -> Create:
    incident, lj, _ = _case_parties(client, sessions)
    body = {"title": "英罗湾排污 effluent", "incident_ids": [incident["id"]], "participants": ["officer-hp"]}
    return Create(
        lambda h: client.post("/api/v1/joint-cases", json=body, headers=lj | h),
        lambda: count(sessions, JointCase),
    )


def joint_action(client, sessions) -> Create:
    incident, lj, hp = _case_parties(client, sessions)
    url = f"/api/v1/joint-cases/{_open_case(client, lj, incident)['id']}/actions"
    body = {"mechanism": "monitoring", "note": "联合采样 joint sampling"}
    return Create(
        lambda h: client.post(url, json=body, headers=hp | h), lambda: count(sessions, JointCaseAction)
    )


def joint_case_incident(client, sessions) -> Create:
    incident, lj, hp = _case_parties(client, sessions)
    case = _open_case(client, lj, incident)
    theirs = report(client, auth(client, "member-hp"), lonlat=inside("HP-SK-05"), category="pollution")
    url = f"/api/v1/joint-cases/{case['id']}/incidents"
    return Create(
        lambda h: client.post(url, json={"incident_id": theirs.json()["id"]}, headers=hp | h),
        lambda: count(sessions, Incident, Incident.joint_case_id.is_not(None)),
    )


def incident_category(client, sessions) -> Create:
    add_users(sessions, "admin")
    who = auth(client, "admin")
    body = {"code": "dredging", "label_zh": "挖沙", "label_en": "Sand dredging"}
    return Create(
        lambda h: client.post("/api/v1/incident-categories", json=body, headers=who | h),
        lambda: count(sessions, IncidentCategory),
    )


CREATES = {
    f.__name__: f
    for f in (
        patrol_upload,
        incident_report,
        incident_photo,
        joint_case,
        joint_action,
        joint_case_incident,
        incident_category,
    )
}


@pytest.mark.parametrize("endpoint", CREATES)
def test_a_repeat_returns_the_first_result_and_creates_nothing(client, sessions, endpoint):
    create = CREATES[endpoint](client, sessions)
    before = create.count()
    key = {KEY: new_key()}
    first = create.send(key)
    assert first.status_code in (200, 201), first.text
    again = create.send(key)
    assert again.status_code == first.status_code
    assert again.content == first.content  # the same object, byte for byte the same answer
    assert again.headers.get("location") == first.headers.get("location")
    assert again.headers[REPLAYED] == "true" and REPLAYED not in first.headers
    assert create.count() == before + 1


@pytest.mark.parametrize("endpoint", CREATES)
def test_every_create_documents_the_optional_header(client, endpoint):
    paths = {
        "patrol_upload": "/api/v1/patrols",
        "incident_report": "/api/v1/incidents",
        "incident_photo": "/api/v1/incidents/{incident_id}/photos",
        "joint_case": "/api/v1/joint-cases",
        "joint_action": "/api/v1/joint-cases/{case_id}/actions",
        "joint_case_incident": "/api/v1/joint-cases/{case_id}/incidents",
        "incident_category": "/api/v1/incident-categories",
    }
    operation = client.get("/openapi.json").json()["paths"][paths[endpoint]]["post"]
    (header,) = [p for p in operation["parameters"] if p["name"] == KEY]
    assert header["in"] == "header" and not header.get("required", False)
    assert {"type": "string"} in header["schema"]["anyOf"]
    assert "retries" in header["description"]


def test_without_a_key_each_request_creates(client, sessions):
    add_users(sessions, "member")
    who = auth(client, "member")
    assert report(client, who).json()["id"] != report(client, who).json()["id"]
    assert count(sessions, Incident) == 2 and stored_keys(sessions) == set()


def test_the_key_is_stored_with_the_object_and_its_answer(client, sessions):
    add_users(sessions, "member")
    created = report(client, auth(client, "member") | {KEY: "k-1"})
    with sessions() as session:
        row = session.scalar(select(IdempotencyKey))
    assert (row.key, row.method, row.path) == ("k-1", "POST", "/api/v1/incidents")
    assert (row.status, row.location, row.body["id"]) == (
        201,
        created.headers["location"],
        created.json()["id"],
    )


# --- a key reused for something else, another user's key ----------------------------------------------


def test_the_same_key_with_another_payload_is_refused_with_422(client, sessions):
    add_users(sessions, "member")
    who = auth(client, "member") | {KEY: "walk-0601"}
    first = report(client, who, description="塑料垃圾 plastic")
    changed = report(client, who, description="渔网 fishing nets")
    assert changed.status_code == 422
    assert changed.headers["content-type"] == "application/problem+json"
    problem = changed.json()
    assert problem["title"] == "Idempotency-Key already used"
    assert (
        "'walk-0601'" in problem["detail"]
        and "POST /api/v1/incidents with other content" in problem["detail"]
    )
    # Another endpoint under the same key is another request too.
    photo = client.post(
        f"/api/v1/incidents/{first.json()['id']}/photos", files={"file": ("p.png", png())}, headers=who
    )
    assert photo.status_code == 422 and "for POST /api/v1/incidents;" in photo.json()["detail"]
    assert count(sessions, Incident) == 1 and count(sessions, IncidentPhoto) == 0


def test_another_users_same_key_makes_their_own_object(client, sessions):
    add_users(sessions, "member", "member-2")
    key = {KEY: "outbox-1"}
    mine = report(client, auth(client, "member") | key)
    theirs = report(client, auth(client, "member-2") | key)
    assert theirs.status_code == 201 and REPLAYED not in theirs.headers
    assert theirs.json()["id"] != mine.json()["id"] and theirs.json()["reporter"] == "member-2"
    # Other content under the same key is no reuse either: keys are per user.
    other = report(client, auth(client, "member-2") | {KEY: "outbox-2"}, description="x")
    assert report(client, auth(client, "member") | {KEY: "outbox-2"}).status_code == 201
    assert other.status_code == 201
    # And each one's repeat still gets their own.
    assert report(client, auth(client, "member") | key).json()["id"] == mine.json()["id"]
    assert count(sessions, Incident) == 4
    assert stored_keys(sessions) == {
        ("member", "outbox-1"), ("member-2", "outbox-1"), ("member", "outbox-2"), ("member-2", "outbox-2"),
    }  # fmt: skip


# --- refused requests and bad keys -------------------------------------------------------------------


def test_a_refused_request_stores_no_key_so_the_fixed_one_may_reuse_it(client, sessions):
    add_users(sessions, "member")
    who = auth(client, "member") | {KEY: "fix-me"}
    unknown = report(client, who, category="nonesuch")
    assert unknown.status_code == 422 and "nonesuch" in unknown.json()["detail"]
    invalid = client.post("/api/v1/incidents", json={"category": "rubbish"}, headers=who)
    assert invalid.status_code == 422
    assert stored_keys(sessions) == set() and count(sessions, Incident) == 0
    fixed = report(client, who)
    assert fixed.status_code == 201 and REPLAYED not in fixed.headers
    assert stored_keys(sessions) == {("member", "fix-me")}


@pytest.mark.parametrize(
    "value, named",
    [
        (b"", "empty"),
        (b'""', "empty"),
        (b"k" * 256, "256 characters; at most 255"),
        ('"ключ"'.encode(), "only printable ASCII"),
        (b'"tab\there"', "only printable ASCII"),
        (b'"no end', "no closing quote"),
        (b'"one" "two"', "text after its closing quote"),
        (b'"bad \\q escape"', "may only escape"),
        (b"two words", "cannot hold spaces"),
        (b"a,b", "cannot hold spaces, quotes, commas"),
    ],
    ids=[
        "empty",
        "empty-quoted",
        "too-long",
        "not-ascii",
        "control",
        "unclosed",
        "two",
        "escape",
        "space",
        "comma",
    ],
)
def test_a_bad_key_is_refused_by_name_and_nothing_is_made(client, sessions, value, named):
    add_users(sessions, "member")
    refused = report(client, auth(client, "member") | {KEY: value})
    assert refused.status_code == 400, refused.text
    problem = refused.json()
    assert problem["title"] == "Invalid Idempotency-Key" and named in problem["detail"]
    assert count(sessions, Incident) == 0 and stored_keys(sessions) == set()


def test_two_key_headers_are_refused(client, sessions):
    add_users(sessions, "member")
    headers = [*auth(client, "member").items(), (KEY, "one"), (KEY, "two")]
    refused = client.post("/api/v1/incidents", json=incident_body(), headers=headers)
    assert refused.status_code == 400 and "send one Idempotency-Key header, not 2" in refused.json()["detail"]
    assert count(sessions, Incident) == 0


def test_a_quoted_key_and_the_same_key_bare_are_one_key(client, sessions):
    add_users(sessions, "member")
    who = auth(client, "member")
    quoted = report(client, who | {KEY: '"8e03978e-40d5-43e8-bc93-6894a57f9324"'})
    bare = report(client, who | {KEY: "8e03978e-40d5-43e8-bc93-6894a57f9324"})
    assert bare.headers[REPLAYED] == "true" and bare.json()["id"] == quoted.json()["id"]
    escaped = report(client, who | {KEY: b'"say \\"hi\\" \\\\ bye"'})
    assert escaped.status_code == 201 and stored_keys(sessions) >= {("member", 'say "hi" \\ bye')}


# --- expiry -------------------------------------------------------------------------------------------


def test_expired_keys_no_longer_replay_and_are_purged(client, sessions, settings, monkeypatch):
    assert settings.idempotency.retention_days == 30
    monkeypatch.setattr(idempotency, "PURGE_EVERY_S", 0)  # as when the last purge is long past
    add_users(sessions, "member", "member-2")
    mine, theirs = auth(client, "member"), auth(client, "member-2")
    first = report(client, mine | {KEY: "old"})
    report(client, theirs | {KEY: "also-old"})
    with sessions() as session:
        row = session.scalar(select(IdempotencyKey).where(IdempotencyKey.key == "old"))
        assert row.expires_at.replace(tzinfo=UTC) - row.created_at.replace(tzinfo=UTC) == timedelta(days=30)
        # 30 days on: both keys are past their retention.
        session.execute(update(IdempotencyKey).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        session.commit()
    again = report(client, mine | {KEY: "old"})
    assert again.status_code == 201 and REPLAYED not in again.headers
    assert again.json()["id"] != first.json()["id"]
    # Storing that key purged every expired one, the other user's too.
    assert stored_keys(sessions) == {("member", "old")}
    assert report(client, mine | {KEY: "old"}).headers[REPLAYED] == "true"


# --- concurrent repeats --------------------------------------------------------------------------------


def _upload_patrol(http, who, key, _):
    return http.post("/api/v1/patrols", files={"file": ("walk.gpx", track())}, headers=who | key)


def _report_incident(http, who, key, _):
    return http.post("/api/v1/incidents", json=incident_body(), headers=who | key)


def _add_photo(http, who, key, incident_id):
    url = f"/api/v1/incidents/{incident_id}/photos"
    return http.post(url, files={"file": ("p.png", png(), "image/png")}, headers=who | key)


@pytest.mark.parametrize(
    "send, model",
    [(_upload_patrol, Patrol), (_report_incident, Incident), (_add_photo, IncidentPhoto)],
    ids=["patrol-upload", "incident-report", "photo"],
)
def test_repeats_sent_at_the_same_moment_make_one_object(app, sessions, settings, send, model):
    """Eight copies of one request at once, over real connections to a live server."""
    copies = 8
    add_users(sessions, "member")
    files_before = photo_files(settings)
    with serving(app) as base, httpx.Client(base_url=base, timeout=120) as setup:
        who = {"Authorization": f"Bearer {token(setup, 'member')}"}
        incident_id = setup.post("/api/v1/incidents", json=incident_body(), headers=who).json()["id"]
        before = count(sessions, model)
        key = {KEY: new_key()}
        start = threading.Barrier(copies)

        def one(_):
            with httpx.Client(base_url=base, timeout=120) as http:
                start.wait()
                return send(http, who, key, incident_id)

        with ThreadPoolExecutor(copies) as pool:
            answers = list(pool.map(one, range(copies)))
    assert [a.status_code for a in answers] == [201] * copies, [
        a.text for a in answers if a.status_code != 201
    ]
    assert len({a.content for a in answers}) == 1  # every answer names the same object
    assert sum(REPLAYED not in a.headers for a in answers) == 1  # exactly one request created it
    assert count(sessions, model) == before + 1
    if model is IncidentPhoto:  # the losers' photo files were removed with their rolled-back rows
        assert photo_files(settings) == files_before + 1


def test_a_repeat_while_the_first_is_still_running_gets_409(client, sessions, backend, monkeypatch):
    if backend[0] == "spatialite":
        pytest.skip("SQLite has one writer at a time: a repeat waits for the first's commit instead")
    add_users(sessions, "member")
    who = auth(client, "member") | {KEY: "slow-upload"}
    monkeypatch.setattr(idempotency, "IN_PROGRESS_WAIT_S", 0.3)
    with sessions() as first:
        user_id = first.scalar(select(User.id).where(User.username == "member"))
        # A request holding the key (as the upload still being processed does) until it ends.
        idempotency.wait_for_turn(first, user_id, "slow-upload", 0)
        busy = report(client, who)
        assert busy.status_code == 409
        assert "'slow-upload' is still being processed" in busy.json()["detail"]
    assert count(sessions, Incident) == 0
    assert report(client, who).status_code == 201


# --- the service's own forms ----------------------------------------------------------------------------

HIDDEN_KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')


def _report_form(client, photo: bytes | None = None, **fields):
    page = client.get("/incidents/report").text
    data = {
        "csrf_token": CSRF.search(page).group(1),
        "idempotency_key": HIDDEN_KEY.search(page).group(1),
        "category": "cutting",
        "severity": "high",
        "lon": str(GQ03[0]),
        "lat": str(GQ03[1]),
        "datum": "wgs84",
        "description": "三棵红树被砍 three mangroves cut",
    } | fields
    files = {"photo": ("photo.png", photo, "image/png")} if photo else None
    return lambda **changes: client.post(
        "/incidents/report", data=data | changes, files=files, follow_redirects=False
    )


def test_the_report_page_sent_twice_makes_one_incident(client, sessions, settings):
    add_users(sessions, "member")
    sign_in(client, "member")
    files_before = photo_files(settings)
    submit = _report_form(client, photo=png())
    first, second = submit(), submit()
    assert first.status_code == second.status_code == 303
    assert second.headers["location"] == first.headers["location"]
    assert count(sessions, Incident) == 1 and count(sessions, IncidentPhoto) == 1
    assert photo_files(settings) == files_before + 1
    summary = client.get(second.headers["location"])
    assert "已报告 Reported" in summary.text


def test_a_changed_resend_of_the_report_page_asks_before_making_another(client, sessions):
    add_users(sessions, "member")
    sign_in(client, "member")
    submit = _report_form(client)
    assert submit().status_code == 303
    changed = submit(description="后来又看到一处 another one later")
    assert changed.status_code == 422 and "already sent with other values" in changed.text
    assert count(sessions, Incident) == 1
    # The page drawn with the message carries a new key: sending it makes the second incident.
    fresh = HIDDEN_KEY.search(changed.text).group(1)
    again = submit(description="后来又看到一处 another one later", idempotency_key=fresh)
    assert again.status_code == 303 and count(sessions, Incident) == 2


def test_the_upload_page_sent_twice_shows_the_first_patrol(client, sessions):
    add_users(sessions, "member")
    sign_in(client, "member")
    page = client.get("/patrols/upload").text
    form = {
        "csrf_token": CSRF.search(page).group(1),
        "idempotency_key": HIDDEN_KEY.search(page).group(1),
        "datum": "wgs84",
        "transport": "foot",
    }
    files = {"file": ("walk.gpx", track())}
    first = client.post("/patrols/upload", data=form, files=files)
    second = client.post("/patrols/upload", data=form, files=files)
    assert first.status_code == second.status_code == 200
    shown = [re.search(r"已保存 Saved: 巡护 #(\d+)", r.text).group(1) for r in (first, second)]
    assert shown[0] == shown[1] and count(sessions, Patrol) == 1
    # Each page drawn carries its own key.
    assert HIDDEN_KEY.search(second.text).group(1) != form["idempotency_key"]
