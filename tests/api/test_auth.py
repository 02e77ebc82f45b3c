"""Accounts and access: tokens for apps, a CSRF-safe browser session for the service's pages, and
a declared access rule on every route."""

import re

from fastapi.routing import APIRoute
from utils.factories import PASSWORD, add_users, auth

from api.deps import Access


def test_token_flow_and_me(client, sessions):
    add_users(sessions, "member")
    response = client.post("/api/v1/auth/token", data={"username": "member", "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] > 3600
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json() == {
        "username": "member",
        "display_name": "member",
        "side": "GD-LJ",
        "roles": ["patrol_member"],
        "teams": ["LJ-T-GQ"],
        "stations": [],
    }


def test_bad_credentials_are_refused_with_problem_json(client, sessions):
    add_users(sessions, "member")
    for username, password in [("member", "wrong password!"), ("nobody", PASSWORD), ("", "")]:
        response = client.post("/api/v1/auth/token", data={"username": username, "password": password})
        assert response.status_code in (401, 422), response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["detail"]


def test_garbage_or_tampered_token_is_401(client, sessions):
    add_users(sessions, "admin")
    good = auth(client, "admin")["Authorization"]
    for header in ["Bearer not-a-token", good[:-3] + "abc"]:
        response = client.get("/api/v1/auth/me", headers={"Authorization": header})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"


def test_password_change_ends_existing_tokens(client, sessions):
    from patrol.accounts import set_password
    from patrol.models import User

    add_users(sessions, "member")
    headers = auth(client, "member")
    with sessions() as session:
        user = session.query(User).filter_by(username="member").one()
        set_password(session, user, "another long password")
        session.commit()
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401


def test_disabled_user_cannot_sign_in_or_use_a_token(client, sessions):
    from patrol.models import User

    add_users(sessions, "member")
    headers = auth(client, "member")
    with sessions() as session:
        session.query(User).filter_by(username="member").one().is_active = False
        session.commit()
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401
    assert (
        client.post("/api/v1/auth/token", data={"username": "member", "password": PASSWORD}).status_code
        == 401
    )


def test_no_token_no_write_and_members_cannot_import_grids(client, sessions):
    add_users(sessions, "member", "manager", "officer-lj")
    files = {"file": ("grids.geojson", b'{"type":"FeatureCollection","features":[]}', "application/geo+json")}
    assert client.post("/api/v1/grids/import", files=files).status_code == 401
    for who in ("member", "manager", "officer-lj"):
        response = client.post("/api/v1/grids/import", files=files, headers=auth(client, who))
        assert response.status_code == 403, who
        assert "admin" in response.json()["detail"]
    assert client.get("/api/v1/users").status_code == 401
    assert client.get("/api/v1/users", headers=auth(client, "member")).status_code == 403


def test_admin_creates_users_with_validated_roles(client, sessions):
    add_users(sessions, "admin")
    headers = auth(client, "admin")
    good = {
        "username": "yz-member-01",
        "password": "a long enough one",
        "side": "GD-LJ",
        "roles": [{"role": "patrol_member", "team": "LJ-T-YZ"}],
    }
    response = client.post("/api/v1/users", json=good, headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["roles"] == [{"role": "patrol_member", "team": "LJ-T-YZ", "station": None}]
    assert client.post("/api/v1/users", json=good, headers=headers).status_code == 409
    bad_cases = [
        {**good, "username": "x"},
        {**good, "username": "other", "password": "short"},
        {**good, "username": "other", "roles": [{"role": "patrol_member", "team": "NO-SUCH"}]},
        {**good, "username": "other", "roles": [{"role": "patrol_member", "team": "HP-T-SK"}]},  # wrong side
        {**good, "username": "other", "roles": [{"role": "station_manager"}]},
        {**good, "username": "other", "roles": [{"role": "king"}]},
        {**good, "username": "other", "side": "XX"},
    ]
    for case in bad_cases:
        response = client.post("/api/v1/users", json=case, headers=headers)
        assert response.status_code == 422, (case, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    assert [u["username"] for u in client.get("/api/v1/users", headers=headers).json()] == [
        "admin",
        "yz-member-01",
    ]


def test_every_route_declares_who_may_call_it(app):
    def rules(dependant):
        found = [d.call for d in dependant.dependencies if isinstance(d.call, Access)]
        for sub in dependant.dependencies:
            found += rules(sub)
        return found

    undeclared = [
        route.path for route in app.routes if isinstance(route, APIRoute) and not rules(route.dependant)
    ]
    assert undeclared == []


def test_openapi_declares_the_token_url(client):
    schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]
    assert schemes["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"] == "/api/v1/auth/token"


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_browser_login_is_csrf_protected(client, sessions):
    add_users(sessions, "admin")
    assert client.get("/", follow_redirects=False).headers["location"] == "/login?next=/"
    page = client.get("/login")
    assert (
        page.status_code == 200 and "<script" not in page.text and "http" not in page.text.split("<body>")[1]
    )
    form = {"username": "admin", "password": PASSWORD, "next": "/"}
    refused = client.post("/login", data={**form, "csrf_token": "forged"}, follow_redirects=False)
    assert refused.status_code == 403 and "uid" not in str(client.cookies)
    ok = client.post("/login", data={**form, "csrf_token": _csrf(page.text)}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/"
    home = client.get("/")
    assert home.status_code == 200 and "admin" in home.text
    # The session works for the API too, but a write needs the session's CSRF token in a header.
    assert client.get("/api/v1/auth/me").json()["username"] == "admin"
    body = {
        "username": "via-cookie",
        "password": "a long enough one",
        "side": "GD-LJ",
        "roles": [{"role": "enforcement_officer"}],
    }
    assert client.post("/api/v1/users", json=body).status_code == 403
    token = _csrf(home.text)
    assert client.post("/api/v1/users", json=body, headers={"X-CSRF-Token": token}).status_code == 201
    # Logging out needs the token too, then the session is gone.
    assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 403
    client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert client.get("/api/v1/auth/me").status_code == 401


def test_wrong_password_on_the_login_page_says_so(client, sessions):
    add_users(sessions, "admin")
    page = client.get("/login")
    response = client.post(
        "/login", data={"username": "admin", "password": "nope nope nope", "csrf_token": _csrf(page.text)}
    )
    assert response.status_code == 401 and "Incorrect username or password" in response.text


def test_login_never_redirects_off_site(client, sessions):
    add_users(sessions, "admin")
    for target in ["https://evil.example/", "//evil.example/", "/\\evil.example"]:
        page = client.get("/login", params={"next": target})
        response = client.post(
            "/login",
            data={"username": "admin", "password": PASSWORD, "next": target, "csrf_token": _csrf(page.text)},
            follow_redirects=False,
        )
        assert response.headers["location"] == "/"
