"""Accounts and access: bearer tokens and a CSRF-safe browser session that both name a server-side
session (so signing out, a password change or disabling an account ends them), login throttling,
the password policy, account management, and a declared access rule on every route."""

import re

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select
from utils.accounts import Clock, audit_actions_since, audit_count, last_audit_entry
from utils.factories import PASSWORD, add_users, auth, sign_in, token

from api.deps import Access
from api.routing import all_routes, original
from patrol import audit
from patrol.models import JointCase, User
from patrol.settings import AuthSettings


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def me(client, headers=None):
    return client.get("/api/v1/auth/me", headers=headers or {})


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


@pytest.fixture
def strict(app, settings, monkeypatch) -> Clock:
    """Tight throttling (3 free failures per name, 6 per address, a lock at 6, waits ≤ 8 s) and a
    clock the test moves."""
    monkeypatch.setattr(
        settings,
        "auth",
        AuthSettings(
            secret_key=settings.auth.secret_key,
            free_attempts=3,
            address_free_attempts=6,
            lock_after_failures=6,
            max_delay_seconds=8,
        ),
    )
    clock = app.state.clock = Clock()
    return clock


def sign_in_as(client, username, password=PASSWORD):
    return client.post("/api/v1/auth/token", data={"username": username, "password": password})


# --- tokens and sessions ---------------------------------------------------------------------------


def test_token_flow_and_me(client, sessions):
    add_users(sessions, "member")
    response = sign_in_as(client, "member")
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 7 * 24 * 3600
    assert body["expires_at"].endswith("+00:00")
    assert me(client, bearer(body["access_token"])).json() == {
        "username": "member",
        "display_name": "member",
        "side": "GD-LJ",
        "roles": ["patrol_member"],
        "teams": ["LJ-T-GQ"],
        "stations": [],
    }


def test_bad_credentials_are_refused_with_problem_json(client, sessions):
    add_users(sessions, "member")
    for username, password in [
        ("member", "wrong password!"),
        ("nobody", PASSWORD),
        ("", ""),
        ("mem\x00ber", PASSWORD),
    ]:
        response = sign_in_as(client, username, password)
        assert response.status_code in (401, 422), response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["detail"]


def test_garbage_or_tampered_token_is_401(client, sessions):
    add_users(sessions, "admin")
    good = auth(client, "admin")["Authorization"]
    for header in ["Bearer not-a-token", good[:-3] + "abc", "Bearer " + "x" * 10_000]:
        response = client.get("/api/v1/auth/me", headers={"Authorization": header})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"


def test_sign_out_revokes_that_token_and_no_other(client, sessions):
    add_users(sessions, "member")
    first, second = token(client, "member"), token(client, "member")
    assert client.post("/api/v1/auth/logout", headers=bearer(first)).status_code == 204
    refused = me(client, bearer(first))
    assert refused.status_code == 401 and "ended" in refused.json()["detail"]
    assert client.post("/api/v1/auth/logout", headers=bearer(first)).status_code == 401
    assert me(client, bearer(second)).status_code == 200


def test_a_copied_page_cookie_is_refused_after_sign_out(app, client, sessions):
    add_users(sessions, "admin")
    sign_in(client, "admin")
    copied = dict(client.cookies)
    home = client.get("/")
    client.post("/logout", data={"csrf_token": _csrf(home.text)}, follow_redirects=False)
    with TestClient(app, cookies=copied) as thief:
        assert me(thief).status_code == 401
        assert thief.get("/", follow_redirects=False).headers["location"] == "/login?next=/"


def test_signing_in_again_in_a_browser_ends_the_session_it_held(app, client, sessions):
    add_users(sessions, "admin", "member")
    sign_in(client, "admin")
    copied = dict(client.cookies)
    sign_in(client, "member")
    assert me(client).json()["username"] == "member"
    with TestClient(app, cookies=copied) as thief:
        assert me(thief).status_code == 401


def test_page_sessions_expire_on_the_server(app, client, sessions, settings):
    add_users(sessions, "admin")
    clock = app.state.clock = Clock()
    sign_in(client, "admin")
    clock.advance(minutes=settings.auth.session_ttl_minutes - 1)
    assert me(client).status_code == 200
    clock.advance(minutes=1)
    assert me(client).status_code == 401


def test_a_password_change_ends_the_other_sessions(client, sessions):
    add_users(sessions, "member")
    mine, other = token(client, "member"), token(client, "member")
    change = {"current_password": PASSWORD, "new_password": "a brand new passphrase"}
    wrong = client.post(
        "/api/v1/auth/password", json={**change, "current_password": "not it at all"}, headers=bearer(mine)
    )
    assert wrong.status_code == 403 and "current password" in wrong.json()["detail"]
    weak = client.post(
        "/api/v1/auth/password", json={**change, "new_password": "member12345"}, headers=bearer(mine)
    )
    assert weak.status_code == 422 and "username" in weak.json()["detail"]
    assert client.post("/api/v1/auth/password", json=change, headers=bearer(mine)).status_code == 204
    assert me(client, bearer(other)).status_code == 401
    assert me(client, bearer(mine)).status_code == 200  # the one who changed it stays signed in
    assert sign_in_as(client, "member").status_code == 401
    assert sign_in_as(client, "member", "a brand new passphrase").status_code == 200


def test_a_disabled_accounts_token_is_refused_at_once(client, sessions):
    add_users(sessions, "admin", "member")
    admin, member = auth(client, "admin"), auth(client, "member")
    disabled = client.patch("/api/v1/users/member", json={"is_active": False}, headers=admin)
    assert disabled.status_code == 200 and disabled.json()["is_active"] is False
    assert me(client, member).status_code == 401
    assert sign_in_as(client, "member").status_code == 401
    assert client.patch("/api/v1/users/member", json={"is_active": True}, headers=admin).status_code == 200
    assert me(client, member).status_code == 401  # enabling again does not bring old tokens back
    assert sign_in_as(client, "member").status_code == 200


def test_a_disabled_accounts_page_session_is_refused_at_once(client, sessions):
    add_users(sessions, "admin", "member")
    admin = auth(client, "admin")
    sign_in(client, "member")
    assert me(client).status_code == 200
    client.patch("/api/v1/users/member", json={"is_active": False}, headers=admin)
    assert me(client).status_code == 401


def test_a_role_change_ends_the_sessions_and_takes_effect(client, sessions):
    add_users(sessions, "admin", "member")
    admin, member = auth(client, "admin"), auth(client, "member")
    roles = {"roles": [{"role": "patrol_member", "team": "LJ-T-YZ"}]}
    changed = client.patch("/api/v1/users/member", json=roles, headers=admin)
    assert changed.status_code == 200 and changed.json()["roles"][0]["team"] == "LJ-T-YZ"
    assert me(client, member).status_code == 401
    assert me(client, auth(client, "member")).json()["teams"] == ["LJ-T-YZ"]


# --- throttling -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["member", "nobody-at-all"])
def test_sign_in_is_slowed_down_after_a_few_failures_for_any_name(client, sessions, strict, name):
    add_users(sessions, "member")
    for _ in range(3):
        assert sign_in_as(client, name, "not the password").status_code == 401
    slowed = sign_in_as(client, name, PASSWORD)
    assert slowed.status_code == 429 and slowed.headers["retry-after"] == "1"
    assert slowed.headers["content-type"].startswith("application/problem+json")
    assert slowed.json()["retry_after"] == 1 and "wait 1 second" in slowed.json()["detail"]
    strict.advance(seconds=1)
    assert sign_in_as(client, name, "not the password either").status_code == 401
    assert sign_in_as(client, name, PASSWORD).headers["retry-after"] == "2"  # 1, 2, 4 … seconds
    strict.advance(seconds=2)
    assert sign_in_as(client, name, PASSWORD).status_code == (200 if name == "member" else 401)


def test_a_known_and_an_unknown_name_get_the_same_answers(app, sessions, strict):
    add_users(sessions, "member")
    answers = {}
    for address, name in (("10.0.0.1", "member"), ("10.0.0.2", "nobody-at-all")):
        with TestClient(app, client=(address, 40000)) as client:
            answers[name] = [sign_in_as(client, name, "not the password") for _ in range(4)]
    known, unknown = answers["member"], answers["nobody-at-all"]
    assert [r.status_code for r in known] == [r.status_code for r in unknown] == [401, 401, 401, 429]
    assert [r.json()["detail"] for r in known] == [r.json()["detail"] for r in unknown]


def test_one_address_trying_many_names_is_slowed_down(app, client, sessions, strict):
    add_users(sessions, "member")
    with TestClient(app, client=("203.0.113.9", 40000)) as sprayer:
        for i in range(6):
            assert sign_in_as(sprayer, f"guess-{i}", "not the password").status_code == 401
        slowed = sign_in_as(sprayer, "member")
        assert slowed.status_code == 429 and "from this address" in slowed.json()["detail"]
        assert int(slowed.headers["retry-after"]) >= 1
    assert sign_in_as(client, "member").status_code == 200  # another address is not slowed down


@pytest.mark.parametrize("name", ["member", "nobody-at-all"])
def test_many_failures_lock_the_account_until_an_admin_unlocks_it(client, sessions, strict, name):
    add_users(sessions, "admin", "member")
    admin = auth(client, "admin")
    for _ in range(5):
        assert sign_in_as(client, name, "not the password").status_code == 401
        strict.advance(seconds=8)
    locked = sign_in_as(client, name, "not the password")
    assert locked.status_code == 423 and "ask an administrator to unlock" in locked.json()["detail"]
    strict.advance(days=2)  # waiting does not lift a lock
    assert sign_in_as(client, name, PASSWORD).status_code == 423
    if name != "member":
        return
    listed = {u["username"]: u for u in client.get("/api/v1/users", headers=admin).json()}
    assert listed["member"]["locked"] is True and listed["admin"]["locked"] is False
    assert client.post("/api/v1/users/member/unlock", headers=admin).status_code == 204
    assert sign_in_as(client, "member").status_code == 200
    assert client.get("/api/v1/users/member", headers=admin).json()["locked"] is False


def test_the_login_page_shows_the_wait_beside_the_form(client, sessions, strict):
    add_users(sessions, "admin")
    for _ in range(3):
        page = client.get("/login")
        form = {"username": "admin", "password": "not it at all", "csrf_token": _csrf(page.text)}
        assert client.post("/login", data=form).status_code == 401
    form["password"] = PASSWORD
    slowed = client.post("/login", data=form)
    assert slowed.status_code == 429 and slowed.headers["retry-after"] == "1"
    assert (
        "wait 1 second before trying again" in slowed.text
        and '<form method="post" action="/login">' in slowed.text
    )
    strict.advance(seconds=1)
    assert client.post("/login", data=form, follow_redirects=False).status_code == 303


# --- the password policy and account management ---------------------------------------------------

NEW_USER = {
    "username": "yz-member-01",
    "password": "a long enough one",
    "side": "GD-LJ",
    "roles": [{"role": "patrol_member", "team": "LJ-T-YZ"}],
}


@pytest.mark.parametrize(
    "password, rule",
    [
        ("short", "password-too-short"),
        ("x" * (512 * 1024), "password-too-long"),  # under the 1 MiB body limit
        ("I am yz-member-01!", "password-contains-username"),
        ("..........", "password-one-character"),
        ("1234567890", "password-common"),
        ("tab\there and there", "password-control-character"),
    ],
    ids=["short", "512KiB", "username", "one-character", "common", "control"],
)
def test_weak_passwords_are_refused_naming_the_rule(client, sessions, password, rule):
    add_users(sessions, "admin")
    response = client.post(
        "/api/v1/users", json={**NEW_USER, "password": password}, headers=auth(client, "admin")
    )
    assert response.status_code == 422 and response.headers["content-type"].startswith(
        "application/problem+json"
    )
    assert rule in [p["kind"] for p in response.json()["problems"]]
    assert len(response.content) < 2000  # the refused password is not echoed back
    with sessions() as session:
        assert session.scalar(select(User).where(User.username == "yz-member-01")) is None


def test_admin_creates_users_with_validated_roles(client, sessions):
    add_users(sessions, "admin")
    headers = auth(client, "admin")
    response = client.post("/api/v1/users", json=NEW_USER, headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["roles"] == [{"role": "patrol_member", "team": "LJ-T-YZ", "station": None}]
    assert client.post("/api/v1/users", json=NEW_USER, headers=headers).status_code == 409
    bad_cases = [
        {**NEW_USER, "username": "x"},
        {**NEW_USER, "username": "other", "roles": [{"role": "patrol_member", "team": "NO-SUCH"}]},
        {**NEW_USER, "username": "other", "roles": [{"role": "patrol_member", "team": "HP-T-SK"}]},
        {**NEW_USER, "username": "other", "roles": [{"role": "station_manager"}]},
        {**NEW_USER, "username": "other", "roles": [{"role": "king"}]},
        {**NEW_USER, "username": "other", "side": "XX"},
        {**NEW_USER, "username": "other", "display_name": "x" * 129},
    ]
    for case in bad_cases:
        response = client.post("/api/v1/users", json=case, headers=headers)
        assert response.status_code == 422, (case, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    assert [u["username"] for u in client.get("/api/v1/users", headers=headers).json()] == [
        "admin",
        "yz-member-01",
    ]


def test_admin_resets_a_password_and_the_old_sessions_end(client, sessions):
    add_users(sessions, "admin", "member")
    admin, member = auth(client, "admin"), auth(client, "member")
    weak = client.post("/api/v1/users/member/password", json={"password": "short"}, headers=admin)
    assert weak.status_code == 422 and "at least 10" in weak.json()["detail"]
    reset = client.post(
        "/api/v1/users/member/password", json={"password": "tide comes in twice"}, headers=admin
    )
    assert reset.status_code == 204
    assert me(client, member).status_code == 401
    assert sign_in_as(client, "member", "tide comes in twice").status_code == 200
    assert (
        client.post("/api/v1/users/member/password", json={"password": "x"}, headers=member).status_code
        == 401
    )


def test_an_account_referred_to_cannot_be_deleted_only_disabled(client, sessions):
    add_users(sessions, "admin", "officer-lj", "member")
    admin, member = auth(client, "admin"), auth(client, "member")
    with sessions() as session:
        officer = session.scalar(select(User).where(User.username == "officer-lj"))
        session.add(JointCase(title="Cordgrass at the border", opened_by=officer.id))
        session.commit()
    refused = client.delete("/api/v1/users/officer-lj", headers=admin)
    assert refused.status_code == 409 and "disable the account instead" in refused.json()["detail"]
    assert client.delete("/api/v1/users/member", headers=admin).status_code == 204
    assert me(client, member).status_code == 401
    assert client.delete("/api/v1/users/member", headers=admin).status_code == 404
    assert [u["username"] for u in client.get("/api/v1/users", headers=admin).json()] == [
        "admin",
        "officer-lj",
    ]


def test_the_last_active_admin_cannot_be_disabled_demoted_or_deleted(client, sessions):
    add_users(sessions, "admin")
    headers = auth(client, "admin")
    for response in (
        client.patch("/api/v1/users/admin", json={"is_active": False}, headers=headers),
        client.patch(
            "/api/v1/users/admin", json={"roles": [{"role": "enforcement_officer"}]}, headers=headers
        ),
        client.delete("/api/v1/users/admin", headers=headers),
    ):
        assert response.status_code == 409 and "last active admin" in response.json()["detail"]
    assert me(client, headers).status_code == 200


def test_only_admins_manage_accounts(client, sessions):
    add_users(sessions, "member", "manager", "officer-lj")
    files = {"file": ("grids.geojson", b'{"type":"FeatureCollection","features":[]}', "application/geo+json")}
    assert client.post("/api/v1/grids/import", files=files).status_code == 401
    for who in ("member", "manager", "officer-lj"):
        headers = auth(client, who)
        assert client.post("/api/v1/grids/import", files=files, headers=headers).status_code == 403
        assert (
            client.patch("/api/v1/users/member", json={"is_active": False}, headers=headers).status_code
            == 403
        )
        assert client.post("/api/v1/users/member/unlock", headers=headers).status_code == 403
        assert client.delete("/api/v1/users/manager", headers=headers).status_code == 403
    assert client.get("/api/v1/users").status_code == 401
    assert client.get("/api/v1/users", headers=auth(client, "member")).status_code == 403


# --- the audit trail --------------------------------------------------------------------------------


def test_each_account_write_leaves_exactly_one_audit_entry(client, sessions):
    add_users(sessions, "admin", "member")
    admin = auth(client, "admin")
    member = token(client, "member")
    steps = [
        ("user.create", lambda: client.post("/api/v1/users", json=NEW_USER, headers=admin)),
        ("user.update", lambda: client.patch("/api/v1/users/yz-member-01", json={"display_name": "队员 01"}, headers=admin)),
        ("user.password", lambda: client.post("/api/v1/users/yz-member-01/password", json={"password": "tide comes in twice"}, headers=admin)),
        ("user.password", lambda: client.post("/api/v1/auth/password", json={"current_password": PASSWORD, "new_password": "mudflat at dawn"}, headers=bearer(member))),
        ("user.unlock", lambda: client.post("/api/v1/users/yz-member-01/unlock", headers=admin)),
        ("user.delete", lambda: client.delete("/api/v1/users/yz-member-01", headers=admin)),
        ("auth.sign_in", lambda: sign_in_as(client, "member", "mudflat at dawn")),
        ("auth.sign_out", lambda: client.post("/api/v1/auth/logout", headers=bearer(member))),
    ]  # fmt: skip
    for action, step in steps:
        before = audit_count(sessions)
        assert step().status_code < 300, action
        assert audit_actions_since(sessions, before) == [action]
    entry = last_audit_entry(sessions)
    assert (entry.actor, entry.channel, entry.address) == ("member", "api", "testclient")
    with sessions() as session:
        assert audit.verify(session).ok


def test_page_sign_in_and_out_are_audited_as_pages(client, sessions):
    add_users(sessions, "admin")
    before = audit_count(sessions)
    sign_in(client, "admin")
    client.post("/logout", data={"csrf_token": _csrf(client.get("/").text)})
    assert audit_actions_since(sessions, before) == ["auth.sign_in", "auth.sign_out"]
    assert last_audit_entry(sessions).channel == "page"


def test_refused_account_writes_leave_no_audit_entry(client, sessions, strict):
    add_users(sessions, "admin", "member")
    with sessions() as session:
        admin_id = session.scalar(select(User.id).where(User.username == "admin"))
        session.add(JointCase(title="A case", opened_by=admin_id))
        session.commit()
    admin, member = auth(client, "admin"), auth(client, "member")
    before = audit_count(sessions)
    refused = [
        client.post("/api/v1/users", json={**NEW_USER, "password": "short"}, headers=admin),
        client.patch("/api/v1/users/admin", json={"is_active": False}, headers=admin),
        client.patch("/api/v1/users/nobody", json={"is_active": False}, headers=admin),
        client.delete("/api/v1/users/admin", headers=admin),
        client.post("/api/v1/auth/password", json={"current_password": "wrong one!", "new_password": "mudflat at dawn"}, headers=member),
        *[sign_in_as(client, "member", "wrong one!") for _ in range(4)],  # 3 × 401, then 429
    ]  # fmt: skip
    assert sorted({r.status_code for r in refused}) == [401, 403, 404, 409, 422, 429]
    assert audit_count(sessions) == before


# --- routes and pages -------------------------------------------------------------------------------


def test_every_route_declares_who_may_call_it(app):
    def rules(dependant):
        found = [d.call for d in dependant.dependencies if isinstance(d.call, Access)]
        for sub in dependant.dependencies:
            found += rules(sub)
        return found

    routes = [route for route in all_routes(app.routes) if isinstance(original(route), APIRoute)]
    assert len(routes) > 40  # every route of the included routers, not just the routers
    undeclared = [route.path for route in routes if not rules(original(route).dependant)]
    assert undeclared == []


def test_openapi_declares_the_token_url(client):
    schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]
    assert schemes["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"] == "/api/v1/auth/token"


def test_browser_login_is_csrf_protected(client, sessions):
    add_users(sessions, "admin")
    assert client.get("/", follow_redirects=False).headers["location"] == "/login?next=/"
    page = client.get("/login")
    assert (
        page.status_code == 200 and "<script" not in page.text and "http" not in page.text.split("<body>")[1]
    )
    form = {"username": "admin", "password": PASSWORD, "next": "/"}
    refused = client.post("/login", data={**form, "csrf_token": "forged"}, follow_redirects=False)
    assert refused.status_code == 403 and me(client).status_code == 401
    ok = client.post("/login", data={**form, "csrf_token": _csrf(page.text)}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/"
    home = client.get("/")
    assert home.status_code == 200 and "admin" in home.text
    # The session works for the API too, but a write needs the session's CSRF token in a header.
    assert me(client).json()["username"] == "admin"
    body = {
        "username": "via-cookie",
        "password": "a long enough one",
        "side": "GD-LJ",
        "roles": [{"role": "enforcement_officer"}],
    }
    assert client.post("/api/v1/users", json=body).status_code == 403
    csrf = _csrf(home.text)
    assert client.post("/api/v1/users", json=body, headers={"X-CSRF-Token": csrf}).status_code == 201
    # Logging out needs the token too, then the session is gone.
    assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 403
    client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert me(client).status_code == 401


def test_the_api_sign_out_ends_a_page_session_too(client, sessions):
    add_users(sessions, "admin")
    sign_in(client, "admin")
    csrf = _csrf(client.get("/").text)
    assert client.post("/api/v1/auth/logout").status_code == 403  # a cookie needs its CSRF token
    assert client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert me(client).status_code == 401


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


# --- renewing a token (the field app, while online) ---------------------------------------------


def test_a_working_token_is_renewed_and_the_old_one_ends(app, client, sessions, settings):
    add_users(sessions, "member")
    clock = app.state.clock = Clock()
    old = token(client, "member")
    clock.advance(minutes=settings.auth.token_ttl_minutes - 10)
    renewed = client.post("/api/v1/auth/renew", headers=bearer(old))
    assert renewed.status_code == 200, renewed.text
    new = renewed.json()["access_token"]
    # The new one lasts the usual time from now, the old one ends at once.
    assert new != old and renewed.json()["expires_in"] == settings.auth.token_ttl_minutes * 60
    clock.advance(minutes=20)
    assert client.get("/api/v1/auth/me", headers=bearer(new)).status_code == 200
    assert client.get("/api/v1/auth/me", headers=bearer(old)).status_code == 401
    # A replayed renewal of the old token makes no second token.
    again = client.post("/api/v1/auth/renew", headers=bearer(old))
    assert again.status_code == 401 and again.headers["content-type"] == "application/problem+json"


def test_an_expired_token_is_not_renewed(app, client, sessions, settings):
    add_users(sessions, "member")
    clock = app.state.clock = Clock()
    old = token(client, "member")
    clock.advance(minutes=settings.auth.token_ttl_minutes)
    refused = client.post("/api/v1/auth/renew", headers=bearer(old))
    assert refused.status_code == 401 and "expired" in refused.json()["detail"]


def test_a_page_session_is_not_renewed_as_a_token(client, sessions):
    add_users(sessions, "member")
    sign_in(client, "member")
    token_csrf = _csrf(client.get("/").text)
    refused = client.post("/api/v1/auth/renew", headers={"X-CSRF-Token": token_csrf})
    assert refused.status_code == 422 and "only a bearer token" in refused.json()["detail"], refused.text
