"""Reading the audit trail: `GET /api/v1/audit` and `mangrove audit list` for admins, with filters
and pages newest first; `/audit/verify` and `mangrove audit verify` find a tampered entry and
name it; bad filters are refused naming them."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from utils.factories import add_users, auth
from utils.places import inside

from api.cli import main as cli
from patrol import audit
from patrol.accounts import Principal
from patrol.models import Role
from patrol.settings import get_settings

GQ03 = inside("LJ-GQ-03")


def report(client, headers) -> dict:
    body = {"category": "rubbish", "lon": GQ03[0], "lat": GQ03[1]}
    response = client.post("/api/v1/incidents", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def activity(client, sessions) -> dict:
    """Three accounts made and signed in (six entries), then two reports by a member, one accepted
    by the manager, a category added by the admin."""
    add_users(sessions, "admin", "member", "manager")
    heads = {name: auth(client, name) for name in ("admin", "member", "manager")}
    first, second = report(client, heads["member"]), report(client, heads["member"])
    body = {"action": "accept", "version": first["version"]}
    client.post(f"/api/v1/incidents/{first['id']}/transitions", json=body, headers=heads["manager"])
    category = {"code": "oil", "label_zh": "油污", "label_en": "Oil"}
    assert (
        client.post("/api/v1/incident-categories", json=category, headers=heads["admin"]).status_code == 201
    )
    return {"headers": heads, "first": first["id"], "second": second["id"]}


def listing(client, headers, **params) -> dict:
    response = client.get("/api/v1/audit", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def actions(body) -> list[str]:
    return [e["action"] for e in body["entries"]]


def test_only_admins_read_the_trail(client, activity):
    for path in ("/api/v1/audit", "/api/v1/audit/verify"):
        assert client.get(path).status_code == 401
        for user in ("member", "manager"):
            refused = client.get(path, headers=activity["headers"][user])
            assert (
                refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
            )
        assert client.get(path, headers=activity["headers"]["admin"]).status_code == 200


def test_entries_come_newest_first_and_filter(client, activity):
    admin = activity["headers"]["admin"]
    everything = listing(client, admin)
    assert actions(everything) == [
        "category.create",
        "incident.transition",
        "incident.report",
        "incident.report",
        *["auth.sign_in"] * 3,
        *["user.create"] * 3,
    ]
    seqs = [e["seq"] for e in everything["entries"]]
    assert seqs == sorted(seqs, reverse=True) and everything["links"] == []
    newest = everything["entries"][0]
    assert (newest["actor"], newest["channel"], newest["address"]) == ("admin", "api", "testclient")
    assert newest["changes"]["code"] == [None, "oil"]

    assert actions(listing(client, admin, action="incident.report")) == ["incident.report"] * 2
    both = listing(client, admin, action=["incident.report", "category.create"])
    assert actions(both) == ["category.create", "incident.report", "incident.report"]
    assert actions(listing(client, admin, actor="manager")) == ["incident.transition", "auth.sign_in"]
    one = listing(client, admin, object_type="incident", object_id=str(activity["first"]))
    assert actions(one) == ["incident.transition", "incident.report"]
    assert listing(client, admin, channel="page")["entries"] == []
    now = datetime.now(UTC)
    around = f"{(now - timedelta(hours=1)).isoformat()}/{(now + timedelta(hours=1)).isoformat()}"
    assert len(listing(client, admin, datetime=around)["entries"]) == 10
    assert listing(client, admin, datetime="2020-01-01/2020-12-31")["entries"] == []


def test_pages_follow_the_next_link_to_the_oldest_entry(client, activity):
    admin = activity["headers"]["admin"]
    seen, params = [], {"limit": 3}
    url = "/api/v1/audit"
    while url:
        body = client.get(url, params=params, headers=admin).json()
        seen += [e["seq"] for e in body["entries"]]
        url, params = next((link["href"] for link in body["links"] if link["rel"] == "next"), None), None
    assert seen == list(range(10, 0, -1))


@pytest.mark.parametrize(
    "params, names",
    [
        ({"channel": "fax"}, "channel"),
        ({"action": "Incident Report"}, "action"),
        ({"object_type": "Incident!"}, "object_type"),
        ({"object_id": "7"}, "object_id"),
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"before": 0}, "before"),
        ({"datetime": "last tuesday"}, "datetime"),
        ({"actor": "a\x01b"}, "actor"),
    ],
)
def test_bad_filters_are_refused_naming_them(client, sessions, params, names):
    add_users(sessions, "admin")
    response = client.get("/api/v1/audit", params=params, headers=auth(client, "admin"))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert names in response.json()["detail"]


def tamper(engine, statement: str) -> None:
    """What someone with the database owner's rights can do behind the service's back."""
    with engine.begin() as conn:
        audit.remove_guards(conn)
        conn.execute(text(statement))
        audit.install_guards(conn)


def test_verify_says_intact_then_names_the_edited_entry(client, engine, activity):
    admin = activity["headers"]["admin"]
    intact = client.get("/api/v1/audit/verify", headers=admin).json()
    assert intact["ok"] and intact["entries"] == 10 and intact["head"]["seq"] == 10
    assert intact["head"]["hash"] == listing(client, admin)["entries"][0]["hash"]
    tamper(engine, "UPDATE audit_log SET actor = 'somebody' WHERE seq = 2")
    found = client.get("/api/v1/audit/verify", headers=admin).json()
    assert not found["ok"]
    [finding] = found["findings"]
    assert (finding["kind"], finding["seq"]) == ("changed", 2) and "entry 2" in finding["message"]


# --- the command line ----------------------------------------------------------------------------


def run(args) -> int:
    try:
        return cli(args)
    except SystemExit as exc:
        return exc.code


def test_cli_lists_with_filters_as_a_table_or_json(configured, activity, capsys):
    assert run(["audit", "list", "--object", f"incident:{activity['first']}"]) == 0
    out = capsys.readouterr().out
    assert "incident.transition" in out and "incident.report" in out and "category.create" not in out
    assert "status: reported → accepted" in out and "2 entries shown" in out
    assert (
        run(["audit", "list", "--action", "incident.report", "--actor", "member", "--json", "--limit", "1"])
        == 0
    )
    body = json.loads(capsys.readouterr().out)
    assert [e["object_id"] for e in body["entries"]] == [str(activity["second"])]
    assert body["next_before"] == body["entries"][0]["seq"]
    assert run(["audit", "list", "--channel", "fax"]) == 2
    assert "channel" in capsys.readouterr().err
    assert run(["audit", "list", "--object", "incident:"]) == 2
    assert "TYPE:ID" in capsys.readouterr().err


def test_cli_verify_exits_0_when_intact_and_3_naming_each_finding(configured, engine, sessions, capsys):
    operator = Principal(
        user_id=0,
        username="cli:ops",
        display_name="ops",
        side="",
        roles=frozenset({Role.ADMIN}),
        channel="cli",
    )
    with sessions() as session:
        for n in range(4):
            audit.record(session, operator, "category.create", "category", f"c{n}")
        session.commit()
        head = audit.verify(session).head_hash
    assert run(["audit", "verify"]) == 0
    out = capsys.readouterr().out
    assert "4 entries checked" in out and head in out and "intact" in out
    tamper(engine, "DELETE FROM audit_log WHERE seq = 2")
    tamper(engine, "UPDATE audit_log SET object_id = 'c9' WHERE seq = 4")
    assert run(["audit", "verify"]) == 3
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("deleted: entry 2 deleted") for line in lines)
    assert any(line.startswith("changed: entry 4 ") for line in lines)


def test_cli_verify_exits_1_without_a_usable_database(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("MANGROVE_DATA_DIR", str(tmp_path))
    for url in (f"sqlite:///{tmp_path / 'empty.sqlite'}", "postgresql+psycopg://nobody@127.0.0.1:1/none"):
        monkeypatch.setenv("MANGROVE_DATABASE_URL", url)
        get_settings.cache_clear()
        try:
            assert run(["audit", "verify"]) == 1
        finally:
            get_settings.cache_clear()
        err = capsys.readouterr().err
        assert err.startswith("mangrove: error:") and "Traceback" not in err
