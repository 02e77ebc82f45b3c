"""Incidents over HTTP: placing a report in its grid and side, the lifecycle and who may move it,
stale updates, who sees what, querying by grid with stable pages and CSV, photos, joint cases,
and every bad input refused with nothing changed."""

import csv
import io

import pytest
from PIL import Image
from sqlalchemy import func, select
from utils.factories import add_users, auth
from utils.places import far_from_grids, inside, inside_near_border, near, on_shared_edge

from patrol.models import Incident, IncidentEvent, IncidentPhoto, JointCase

GQ03 = inside("LJ-GQ-03")


def report(client, headers, lonlat=GQ03, **extra):
    body = {
        "category": "rubbish",
        "lon": lonlat[0],
        "lat": lonlat[1],
        "description": "塑料垃圾 plastic",
    } | extra
    return client.post("/api/v1/incidents", json=body, headers=headers)


def act(client, headers, incident, action, **extra):
    body = {"action": action, "version": incident["version"]} | extra
    return client.post(f"/api/v1/incidents/{incident['id']}/transitions", json=body, headers=headers)


def counts(sessions) -> tuple[int, ...]:
    with sessions() as session:
        return tuple(
            session.scalar(select(func.count()).select_from(t))
            for t in (Incident, IncidentEvent, IncidentPhoto, JointCase)
        )


def png(width=8, height=6) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 60)).save(buffer, format="PNG")
    return buffer.getvalue()


# --- placement ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where, grid, match, side",
    [
        (GQ03, "LJ-GQ-03", "inside", "GD-LJ"),
        # A point on the edge two grids share goes to the lower code, whatever the storage order.
        (on_shared_edge("LJ-GQ-03", "LJ-GQ-07"), "LJ-GQ-03", "inside", "GD-LJ"),
        (near("LJ-AP-02", 150), "LJ-AP-02", "near", "GD-LJ"),
        (inside("HP-SK-02"), "HP-SK-02", "inside", "GX-HP"),
        (far_from_grids(), None, "none", "GD-LJ"),
    ],
    ids=["inside", "shared-edge", "near", "hepu", "far"],
)
def test_a_report_is_placed_in_its_grid_and_side(client, sessions, where, grid, match, side):
    add_users(sessions, "member")
    response = report(client, auth(client, "member"), where)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["grid"], body["grid_match"], body["side"]) == (grid, match, side)
    if match == "near":
        assert body["grid_distance_m"] == pytest.approx(150, abs=3)
    assert response.headers["location"] == f"/api/v1/incidents/{body['id']}"
    assert body["history"][0]["action"] == "reported" and body["history"][0]["by"] == "member"


# --- lifecycle and roles --------------------------------------------------------------------------


def test_the_whole_lifecycle_with_who_and_when(client, sessions):
    add_users(sessions, "member", "manager", "officer-lj")
    incident = report(client, auth(client, "member")).json()
    assert incident["status"] == "reported" and incident["overdue"] is None
    manager, officer = auth(client, "manager"), auth(client, "officer-lj")
    incident = act(client, manager, incident, "accept", level="town").json()
    assert incident["status"] == "accepted" and incident["level"] == "town" and incident["responded_at"]
    incident = act(client, manager, incident, "start").json()
    incident = act(client, manager, incident, "resolve", note="清理完毕 cleared").json()
    # Closing verifies the resolution: not by the one who resolved it.
    response = act(client, manager, incident, "close")
    assert response.status_code == 403 and "other than the resolver" in response.json()["detail"]
    incident = act(client, officer, incident, "close").json()
    assert incident["status"] == "closed" and incident["closed_at"]
    steps = [(h["action"], h["from"], h["to"], h["by"]) for h in incident["history"]]
    assert steps == [
        ("reported", None, "reported", "member"),
        ("accept", "reported", "accepted", "manager"),
        ("start", "accepted", "in_progress", "manager"),
        ("resolve", "in_progress", "resolved", "manager"),
        ("close", "resolved", "closed", "officer-lj"),
    ]
    assert incident["history"][3]["note"] == "清理完毕 cleared"


def test_illegal_transitions_and_roles_are_refused_with_nothing_changed(client, sessions):
    add_users(sessions, "member", "manager", "officer-hp", "admin")
    incident = report(client, auth(client, "member")).json()
    manager = auth(client, "manager")
    before = counts(sessions)
    response = act(client, manager, incident, "resolve")
    assert response.status_code == 409 and "accept it first" in response.json()["detail"]
    assert (
        act(client, auth(client, "member"), incident, "accept").status_code == 403
    )  # reporters do not handle
    assert (
        act(client, auth(client, "officer-hp"), incident, "accept").status_code == 404
    )  # other side, far from border
    assert act(client, manager, incident, "reject").status_code == 422  # a rejection says why
    assert act(client, manager, incident, "fly").status_code == 422
    assert counts(sessions) == before
    # Reopening a closed incident undoes a verified decision: admin only.
    incident = act(client, manager, incident, "accept").json()
    incident = act(client, manager, incident, "resolve").json()
    incident = act(client, auth(client, "admin"), incident, "close").json()
    assert act(client, manager, incident, "reopen", note="又出现了").status_code == 403
    reopened = act(client, auth(client, "admin"), incident, "reopen", note="又出现了 back again")
    assert reopened.status_code == 200 and reopened.json()["status"] == "in_progress"
    assert reopened.json()["resolved_at"] is None


def test_duplicate_points_to_the_original(client, sessions):
    add_users(sessions, "member", "manager")
    first = report(client, auth(client, "member")).json()
    second = report(client, auth(client, "member")).json()
    manager = auth(client, "manager")
    assert act(client, manager, second, "duplicate").status_code == 422  # of which?
    assert act(client, manager, second, "duplicate", duplicate_of=second["id"]).status_code == 422
    marked = act(client, manager, second, "duplicate", duplicate_of=first["id"]).json()
    assert marked["status"] == "duplicate" and marked["duplicate_of"] == first["id"]


def test_two_officers_at_once_the_second_gets_409_and_nothing_is_lost(client, sessions):
    add_users(sessions, "member", "manager", "officer-lj")
    incident = report(client, auth(client, "member")).json()
    seen_by_both = dict(incident)
    first = act(client, auth(client, "manager"), seen_by_both, "accept", note="mine")
    second = act(client, auth(client, "officer-lj"), seen_by_both, "reject", note="not real")
    assert first.status_code == 200 and second.status_code == 409
    assert "version" in second.json()["detail"]
    now = client.get(f"/api/v1/incidents/{incident['id']}", headers=auth(client, "manager")).json()
    assert now["status"] == "accepted" and [h["action"] for h in now["history"]] == ["reported", "accept"]


# --- who sees what ---------------------------------------------------------------------------------


def test_each_side_sees_its_own_and_the_border_and_joint_cases(client, sessions):
    add_users(sessions, "member", "member-2", "member-hp", "manager", "officer-lj", "officer-hp")
    far = report(client, auth(client, "member"), inside("LJ-AP-02")).json()  # ~30 km from the border
    border = report(client, auth(client, "member"), inside_near_border("LJ-GQ-08")).json()  # ~1 km from it
    hepu = report(client, auth(client, "member-hp"), inside("HP-SK-03")).json()

    def listed(user):
        body = client.get("/api/v1/incidents", headers=auth(client, user)).json()
        return {f["id"] for f in body["features"]}

    assert listed("member") == {far["id"], border["id"]}  # their own reports
    assert listed("member-2") == set()
    assert listed("officer-lj") == {far["id"], border["id"], hepu["id"]}  # Hepu's is near the border
    assert listed("officer-hp") == {border["id"], hepu["id"]}  # nothing else of Lianjiang
    # Referred to Hepu, the far one becomes visible and workable there.
    referred = client.post(
        f"/api/v1/incidents/{far['id']}/referral",
        json={"to_side": "GX-HP", "version": far["version"], "note": "上游排污 upstream effluent"},
        headers=auth(client, "officer-lj"),
    )
    assert referred.status_code == 200 and referred.json()["referred_to"] == "GX-HP"
    assert far["id"] in listed("officer-hp")
    assert act(client, auth(client, "officer-hp"), referred.json(), "accept").status_code == 200


# --- joint cases ----------------------------------------------------------------------------------


def test_a_joint_case_with_both_sides_and_its_five_mechanism_log(client, sessions):
    add_users(sessions, "member", "member-hp", "officer-lj", "officer-hp", "manager")
    incident = report(client, auth(client, "member"), inside("LJ-AP-02"), category="pollution").json()
    lj, hp = auth(client, "officer-lj"), auth(client, "officer-hp")
    one_sided = client.post(
        "/api/v1/joint-cases",
        json={"title": "排污", "incident_ids": [incident["id"]], "participants": ["manager"]},
        headers=lj,
    )
    assert one_sided.status_code == 422 and "both sides" in one_sided.json()["detail"]
    created = client.post(
        "/api/v1/joint-cases",
        json={
            "title": "英罗湾排污 Yingluo Bay effluent",
            "incident_ids": [incident["id"]],
            "participants": ["officer-hp"],
        },
        headers=lj,
    )
    assert created.status_code == 201, created.text
    case = created.json()
    assert {p["side"] for p in case["participants"]} == {"GD-LJ", "GX-HP"}
    # Hepu now sees the incident (far from the border) through the case, and logs an action.
    assert client.get(f"/api/v1/incidents/{incident['id']}", headers=hp).status_code == 200
    logged = client.post(
        f"/api/v1/joint-cases/{case['id']}/actions",
        json={"mechanism": "monitoring", "note": "联合采样 joint sampling"},
        headers=hp,
    )
    assert logged.status_code == 201 and logged.json()["actions"][0]["mechanism_zh"] == "联合监测"
    bad = client.post(
        f"/api/v1/joint-cases/{case['id']}/actions", json={"mechanism": "gossip", "note": "x"}, headers=hp
    )
    assert bad.status_code == 422
    not_participant = client.post(
        f"/api/v1/joint-cases/{case['id']}/actions",
        json={"mechanism": "supervision", "note": "x"},
        headers=auth(client, "manager"),
    )
    assert not_participant.status_code == 403
    # Hepu brings its own incident in; Lianjiang can then see it too.
    theirs = report(client, auth(client, "member-hp"), inside("HP-SK-05"), category="pollution").json()
    added = client.post(
        f"/api/v1/joint-cases/{case['id']}/incidents", json={"incident_id": theirs["id"]}, headers=hp
    )
    assert added.status_code == 200 and {i["side"] for i in added.json()["incidents"]} == {"GD-LJ", "GX-HP"}
    assert client.get(f"/api/v1/incidents/{theirs['id']}", headers=lj).status_code == 200
    again = client.post(
        f"/api/v1/joint-cases/{case['id']}/incidents", json={"incident_id": theirs["id"]}, headers=hp
    )
    assert again.status_code == 409
    stale = client.post(
        f"/api/v1/joint-cases/{case['id']}/close", json={"version": case["version"] + 5}, headers=hp
    )
    assert stale.status_code == 409
    closed = client.post(
        f"/api/v1/joint-cases/{case['id']}/close", json={"version": case["version"]}, headers=hp
    )
    assert closed.json()["status"] == "closed"
    assert client.get("/api/v1/joint-cases", headers=auth(client, "member")).status_code == 403


# --- query by grid ---------------------------------------------------------------------------------


def test_query_by_grid_pages_stably_with_a_next_link(client, sessions):
    add_users(sessions, "member", "officer-lj")
    member = auth(client, "member")
    ids = [
        report(client, member, GQ03, observed_at="2026-03-02T01:00:00Z").json()["id"] for _ in range(7)
    ]  # seven with the same time: the id breaks ties
    report(client, member, inside("LJ-GQ-05"), observed_at="2026-03-02T01:00:00Z")
    officer = auth(client, "officer-lj")
    url = "/api/v1/incidents?grid=LJ-GQ-03&datetime=2026-03-01/2026-03-31&limit=3"
    seen, pages = [], 0
    while url:
        body = client.get(url, headers=officer).json()
        seen += [f["id"] for f in body["features"]]
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
        if pages == 0:  # a report arriving between pages shifts nothing
            report(client, member, GQ03, observed_at="2026-03-02T01:00:00Z")
        pages += 1
    assert seen == sorted(ids, reverse=True) and pages == 3
    both = client.get("/api/v1/incidents?grid=LJ-GQ-03&grid=LJ-GQ-05", headers=officer).json()
    assert both["numberReturned"] == 9
    counts_ = client.get("/api/v1/incidents/counts?datetime=2026-03", headers=officer).json()
    assert {r["grid"]: r["count"] for r in counts_["grids"]} == {"LJ-GQ-03": 8, "LJ-GQ-05": 1}
    assert counts_["total"] == 9


def test_csv_for_spreadsheets(client, sessions):
    add_users(sessions, "member", "officer-lj")
    report(
        client, auth(client, "member"), description='砍伐 3 棵 three trees cut, "urgent"', category="cutting"
    )
    response = client.get("/api/v1/incidents?f=csv", headers=auth(client, "officer-lj"))
    assert response.headers["content-type"].startswith("text/csv")
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert len(rows) == 1 and rows[0]["grid"] == "LJ-GQ-03" and rows[0]["category"] == "cutting"
    assert rows[0]["description"] == '砍伐 3 棵 three trees cut, "urgent"'


# --- photos -----------------------------------------------------------------------------------------


def test_photos_are_checked_stored_as_files_and_served(client, sessions, settings):
    add_users(sessions, "member", "member-2")
    member = auth(client, "member")
    incident = report(client, member).json()
    store = settings.photo_dir()
    existing = set(store.rglob("*")) if store.exists() else set()  # other tests' photos
    url = f"/api/v1/incidents/{incident['id']}/photos"
    added = client.post(url, files={"file": ("p.png", png())}, headers=member)
    assert added.status_code == 201, added.text
    files = [p for p in store.rglob("*") if p not in existing and p.is_file()]
    assert len(files) == 1 and files[0].read_bytes() == png()
    assert client.get(added.json()["href"], headers=member).content == png()
    assert client.get(added.json()["href"], headers=auth(client, "member-2")).status_code == 404
    before = counts(sessions)
    for content in (b"%PDF-1.4 not an image", png()[:40], b""):
        refused = client.post(url, files={"file": ("p.png", content)}, headers=member)
        assert refused.status_code == 422, refused.text
    big = client.post(
        url,
        files={"file": ("p.png", b"\x89PNG" + b"0" * (settings.incidents.photo_max_bytes + 1))},
        headers=member,
    )
    assert big.status_code == 422 and "limit" in big.json()["detail"]
    again = client.post(url, files={"file": ("same.png", png())}, headers=member)
    assert again.status_code == 409 and "already attached" in again.json()["detail"]
    assert (
        counts(sessions) == before
        and [p for p in store.rglob("*") if p not in existing and p.is_file()] == files
    )
    assert client.get(added.json()["href"], headers=member).content == png()


# --- categories -------------------------------------------------------------------------------------


def test_categories_are_bilingual_and_extendable_by_an_admin(client, sessions):
    add_users(sessions, "member", "admin")
    listed = client.get("/api/v1/incident-categories", headers=auth(client, "member")).json()["categories"]
    labels = {c["code"]: (c["label_zh"], c["label_en"]) for c in listed}
    assert labels["cordgrass"][0] == "互花米草入侵" and len(labels) == 11
    new = {"code": "sand_mining", "label_zh": "非法采砂", "label_en": "Illegal sand mining"}
    assert (
        client.post("/api/v1/incident-categories", json=new, headers=auth(client, "member")).status_code
        == 403
    )
    assert (
        client.post("/api/v1/incident-categories", json=new, headers=auth(client, "admin")).status_code == 201
    )
    assert report(client, auth(client, "member"), category="sand_mining").status_code == 201


# --- bad input --------------------------------------------------------------------------------------

BAD_REPORTS = {
    "latitude beyond 90": ({"lon": 109.8, "lat": 95.0}, "out of range"),
    "far outside the region": ({"lon": 116.4, "lat": 39.9}, "far outside"),
    "swapped": ({"lon": 21.5, "lat": 109.8}, "swapped"),
    "unknown category": ({"category": "ufo"}, "unknown incident category"),
    "unknown severity": ({"severity": "apocalyptic"}, "severity"),
    "future": ({"observed_at": "2099-01-01T00:00:00Z"}, "future"),
    "year one": ({"observed_at": "0001-01-01T00:00:00+08:00"}, "out of range"),
    "unknown field": ({"colour": "red"}, "colour"),
    "unknown patrol": ({"patrol_id": 424242}, "unknown patrol"),
}


@pytest.mark.parametrize("case", BAD_REPORTS)
def test_bad_reports_are_refused_naming_the_problem(client, sessions, case):
    add_users(sessions, "member")
    extra, says = BAD_REPORTS[case]
    before = counts(sessions)
    response = report(client, auth(client, "member"), **extra)
    assert 400 <= response.status_code < 500 and response.headers["content-type"].startswith(
        "application/problem+json"
    )
    assert says in response.text, response.text
    assert counts(sessions) == before


@pytest.mark.parametrize(
    "query, says",
    [
        ("grid=LJ-XX-99", "unknown grid"),
        ("datetime=last-tuesday", "datetime"),
        ("datetime=2026-03-31/2026-03-01", "reversed"),
        ("bbox=1,2,3", "4 comma-separated"),
        ("sort=colour", "unknown sort"),
        ("cursor=garbage", "cursor"),
        ("status=lost", "unknown status"),
        ("category=ufo", "unknown incident category"),
        ("side=XX", "unknown side"),
        ("limit=0", "limit"),
    ],
)
def test_bad_filters_are_refused_naming_the_problem(client, sessions, query, says):
    add_users(sessions, "officer-lj")
    response = client.get(f"/api/v1/incidents?{query}", headers=auth(client, "officer-lj"))
    assert response.status_code == 422 and says in response.text, response.text


def test_times_with_any_zone_are_stored_as_the_same_instant(client, sessions):
    """SQLite keeps wall times without zones: a Beijing-time observation must still compare right."""
    add_users(sessions, "member", "officer-lj")
    beijing = report(client, auth(client, "member"), observed_at="2026-03-02T09:00:00+08:00").json()
    assert beijing["observed_at"] == "2026-03-02T01:00:00Z"
    naive = report(client, auth(client, "member"), observed_at="2026-03-02T09:00:00").json()
    assert naive["observed_at"] == "2026-03-02T01:00:00Z"  # no zone: China time
    officer = auth(client, "officer-lj")
    same_day = client.get("/api/v1/incidents?datetime=2026-03-02", headers=officer).json()
    earlier = client.get("/api/v1/incidents?datetime=../2026-03-02T00:59:00Z", headers=officer).json()
    assert same_day["numberReturned"] == 2 and earlier["numberReturned"] == 0


def test_ids_beyond_the_databases_integers_are_refused_not_a_server_error(client, sessions):
    """PostgreSQL fails on integers past 2^31-1 ("out of range"): they must never reach it."""
    add_users(sessions, "admin")
    admin = auth(client, "admin")
    huge = 2**31
    for url in (f"/api/v1/incidents/{huge}", f"/api/v1/patrols/{huge}", f"/api/v1/joint-cases/{huge}",
                f"/api/v1/incidents/1/photos/{huge}", f"/api/v1/incidents?joint_case={huge}"):  # fmt: skip
        assert client.get(url, headers=admin).status_code == 422, url
    bodies = [
        ("/api/v1/incidents", {"category": "rubbish", "lon": GQ03[0], "lat": GQ03[1], "patrol_id": huge}),
        ("/api/v1/incidents/1/transitions", {"action": "accept", "version": huge}),
        ("/api/v1/joint-cases", {"title": "x", "incident_ids": [huge], "participants": []}),
    ]
    for url, body in bodies:
        assert client.post(url, json=body, headers=admin).status_code == 422, url
    assert client.get(f"/api/v1/incidents/{huge - 1}", headers=admin).status_code == 404
