"""Headers and forms: every response carries the security headers, every page a Content-Security-
Policy that runs no inline code, the session cookie is Secure over HTTPS (and still works over
plain http), every state-changing form and cookie-authenticated write needs the CSRF token, and a
405 names every method of the path."""

import re
from html.parser import HTMLParser

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from utils.browser import serving
from utils.factories import CSRF, PASSWORD, add_users, auth, sign_in
from utils.places import inside
from utils.tracks import crossing, gpx

from patrol.models import Incident, Patrol

GQ03 = inside("LJ-GQ-03")
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


def assert_fixed_headers(response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def directives(policy: str) -> dict[str, str]:
    return {p.split()[0]: " ".join(p.split()[1:]) for p in policy.split(";") if p.strip()}


def test_every_kind_of_answer_carries_the_security_headers(client, sessions):
    add_users(sessions, "member")
    member = auth(client, "member")
    incident = client.post(
        "/api/v1/incidents", json={"category": "rubbish", "lon": GQ03[0], "lat": GQ03[1]}, headers=member
    ).json()
    answers = {
        "json": client.get("/api/v1/health"),
        "geojson": client.get("/api/v1/grids"),
        "csv": client.get("/api/v1/incidents?f=csv", headers=member),
        "problem": client.get(f"/api/v1/incidents/{incident['id'] + 1}", headers=member),
        "not found": client.get("/nowhere"),
        "script": client.get("/static/app/incident-report.js"),
        "stylesheet": client.get("/static/app/pages.css"),
        "leaflet": client.get("/static/maps/vendor/leaflet/leaflet.js"),
        "redirect": client.get("/", follow_redirects=False),
        "login page": client.get("/login"),
    }
    for kind, response in answers.items():
        assert response.status_code < 500, kind
        assert_fixed_headers(response)
    assert answers["login page"].headers["content-security-policy"] == PAGE_POLICY
    for kind in ("json", "geojson", "csv", "problem", "script"):
        assert (
            answers[kind].headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
        )


def test_the_services_pages_run_no_inline_script_or_style(client, sessions):
    add_users(sessions, "admin")
    incident = client.post(
        "/api/v1/incidents",
        json={"category": "rubbish", "lon": GQ03[0], "lat": GQ03[1]},
        headers=auth(client, "admin"),
    ).json()
    sign_in(client, "admin")
    for path in (
        "/",
        "/incidents/report",
        f"/incidents/report?reported={incident['id']}",
        "/incidents/mine",
        f"/incidents/{incident['id']}",
        "/incidents/99999",
        "/desk",
        "/desk?grid=LJ-XX-99",  # the work list with a refused filter
        "/patrols/upload",
        "/maps/station?basemap=google",  # a map's error page is one of ours
        "/joint-cases",
        f"/joint-cases/new?incident={incident['id']}",
        "/joint-cases/99999",
    ):
        response = client.get(path)
        assert response.headers["content-type"].startswith("text/html"), path
        assert response.headers["content-security-policy"] == PAGE_POLICY, path
        assert_fixed_headers(response)
        html = response.text
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path  # every script is a file
        assert "<style" not in html and not re.search(r"\sstyle=", html), path
        assert not re.search(r"\son[a-z]+=", html), path  # no inline event handlers
        for ref in re.findall(r'<(?:script|link)[^>]+(?:src|href)="(/static/[^"]+)"', html):
            assert client.get(ref).status_code == 200, ref


def test_a_map_keeps_its_own_policy_and_gains_what_it_lacked(client, sessions):
    add_users(sessions, "admin")
    sign_in(client, "admin")
    response = client.get("/maps/station?basemap=osm")
    assert response.status_code == 200
    policy = directives(response.headers["content-security-policy"])
    assert policy["img-src"] == "'self' data: https://tile.openstreetmap.org"  # the route's own
    assert policy["frame-ancestors"] == "'none'"
    assert policy["base-uri"] == "'self'" and policy["form-action"] == "'self'"
    assert policy["object-src"] == "'none'"
    assert_fixed_headers(response)


def test_swagger_ui_runs_its_inline_start_by_hash_only(client):
    for path in ("/docs", "/docs/oauth2-redirect"):
        response = client.get(path)
        policy = directives(response.headers["content-security-policy"])
        assert "'unsafe-inline'" not in policy["script-src"]
        assert re.fullmatch(r"'self'( 'sha256-[A-Za-z0-9+/=]+')+", policy["script-src"]), policy
        assert "https://" not in response.text  # offline: Swagger UI is served by the service


def test_the_session_cookie_is_secure_over_https_and_still_works_over_http(app, sessions):
    add_users(sessions, "member")
    with TestClient(app, base_url="https://testserver") as secure:
        sign_in(secure, "member")
        cookie = [c for c in secure.cookies.jar if c.name == "mangrove_session"][0]
        assert cookie.secure
        assert secure.get("/api/v1/auth/me").json()["username"] == "member"
    with TestClient(app) as plain:  # a station laptop on localhost, no TLS
        sign_in(plain, "member")
        cookie = [c for c in plain.cookies.jar if c.name == "mangrove_session"][0]
        assert not cookie.secure
        assert plain.get("/api/v1/auth/me").json()["username"] == "member"


def test_behind_a_tls_proxy_the_cookie_is_secure(app, sessions):
    """uvicorn trusts X-Forwarded-Proto from 127.0.0.1 (its --proxy-headers default)."""
    add_users(sessions, "member")
    form = {"username": "member", "password": PASSWORD}
    with serving(app) as base:
        for proxy_headers, secure in (({"X-Forwarded-Proto": "https"}, True), ({}, False)):
            with httpx.Client(base_url=base) as http:
                token = CSRF.search(http.get("/login").text).group(1)
                response = http.post("/login", data=form | {"csrf_token": token}, headers=proxy_headers)
                assert response.status_code == 303
                assert bool(re.search(r";\s*Secure\b", response.headers["set-cookie"], re.I)) is secure


# --- CSRF -------------------------------------------------------------------------------------------


class Forms(HTMLParser):
    """The forms of a page: method, action and the fields a browser would send."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append(
                {
                    "method": (a.get("method") or "get").lower(),
                    "action": a.get("action"),
                    "fields": {},
                    "files": [],
                }
            )
        elif self.forms and tag in ("input", "select", "textarea") and a.get("name"):
            if a.get("type") == "file":
                self.forms[-1]["files"].append(a["name"])
            else:
                self.forms[-1]["fields"].setdefault(a["name"], a.get("value") or "")


def forms_of(html: str) -> list[dict]:
    parser = Forms()
    parser.feed(html)
    return parser.forms


def counts(sessions) -> tuple[int, int]:
    with sessions() as session:
        return tuple(session.scalar(select(func.count()).select_from(t)) for t in (Patrol, Incident))


def test_every_form_that_changes_state_needs_the_csrf_token(client, sessions):
    add_users(sessions, "manager")
    lon, lat, times, _ = crossing("LJ-GQ-03")
    filled = {"lon": str(GQ03[0]), "lat": str(GQ03[1]), "category": "cutting"}
    pages = ["/login"]
    sign_in(client, "manager")
    pages += ["/", "/incidents/report", "/patrols/upload", "/incidents/mine", "/maps/station?basemap=none",
              "/joint-cases/new"]  # fmt: skip
    checked = set()
    for page in pages:
        if page == "/login":
            client.cookies.clear()
        for form in forms_of(client.get(page).text):
            if form["method"] == "get":
                continue  # a GET never changes state: the map filters
            fields = form["fields"]
            assert fields.get("csrf_token"), (page, form["action"])
            files = {name: ("walk.gpx", gpx(lon, lat, times)) for name in form["files"]} or None
            before = counts(sessions)
            for token in ("", "forged"):
                sent = {**fields, **filled, "username": "manager", "password": PASSWORD, "csrf_token": token}
                response = client.post(form["action"], data=sent, files=files, follow_redirects=False)
                assert response.status_code == 403, (page, form["action"], token, response.text[:200])
                assert counts(sessions) == before
            checked.add(form["action"])
        if page == "/login":
            sign_in(client, "manager")
    assert checked == {"/login", "/logout", "/incidents/report", "/patrols/upload", "/joint-cases/new"}
    assert client.get("/api/v1/auth/me").status_code == 200  # the refused sign-out signed nobody out


def test_every_api_write_with_the_session_cookie_needs_the_csrf_header(client, sessions):
    add_users(sessions, "admin")
    sign_in(client, "admin")
    token = CSRF.search(client.get("/").text).group(1)
    operations = client.get("/openapi.json").json()["paths"]
    writes = [
        (method, re.sub(r"\{\w+\}", "1", path))
        for path, item in operations.items()
        for method in item
        if method in ("post", "put", "patch", "delete")
    ]
    assert len(writes) >= 10
    for method, path in writes:
        response = client.request(method, path, json={})
        assert response.status_code == 403, (method, path, response.text)
        assert "CSRF" in response.json()["detail"]
    # With the header the same cookie is accepted (here: refused for its empty body, not for CSRF).
    response = client.post("/api/v1/incidents", json={}, headers={"X-CSRF-Token": token})
    assert response.status_code == 422


# --- 405 --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/api/v1/patrols/1", "DELETE, GET, HEAD"),
        ("DELETE", "/api/v1/incidents", "GET, HEAD, POST"),
        ("PATCH", "/api/v1/incident-categories", "GET, HEAD, POST"),
        ("POST", "/static/maps/mangrove-maps.js", "GET, HEAD"),
        ("PUT", "/login", "GET, HEAD, POST"),
    ],
)
def test_a_405_names_every_method_the_path_answers(client, method, path, allow):
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.headers["content-type"] == "application/problem+json"
