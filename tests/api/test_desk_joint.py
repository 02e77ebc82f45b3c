"""Joint cases at the desk, through the pages as a browser posts them: open a case from an incident
with participants of both sides, log actions under each of the five mechanisms, bring in another
incident, close it. Refusals are said beside the field they are about, keep what was typed and
write nothing (no row, no audit entry); who may not write is not offered the forms and a forced
post is refused; nobody sees a case they may not see."""

from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from utils.audit import entry_count, newest
from utils.factories import CSRF, add_users, auth, sign_in
from utils.places import inside

from patrol.models import Incident, JointCase, JointCaseAction, JointCaseParticipant

AP02 = inside("LJ-AP-02")  # far from the border: Hepu sees it only through a joint case
SK05 = inside("HP-SK-05")
MECHANISMS = {
    "prevention": "联合防控",
    "supervision": "联合监管",
    "monitoring": "联合监测",
    "enforcement": "联合执法",
    "emergency": "联合应急",
}


# --- helpers -----------------------------------------------------------------------------------------


def report(client, user: str, where=AP02, category: str = "pollution") -> int:
    """An incident reported through the API (by a client of its own: the page client's session
    cookie would make it a cookie-authenticated write)."""
    api = TestClient(client.app)
    body = {"category": category, "lon": where[0], "lat": where[1], "description": "排污口 outfall"}
    response = api.post("/api/v1/incidents", json=body, headers=auth(api, user))
    assert response.status_code == 201, response.text
    return response.json()["id"]


def form_fields(page: str, action: str) -> dict[str, str]:
    """The hidden fields of the page's form posting to ``action`` (CSRF token, key, version…)."""
    match = re.search(rf'<form method="post" action="{re.escape(action)}"[^>]*>(.*?)</form>', page, re.S)
    assert match, f"no form posting to {action}"
    return {
        name: html.unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', match.group(1))
    }


def has_form(page: str, action: str) -> bool:
    return f'action="{action}"' in page


def field_error(page: str, field: str) -> str:
    match = re.search(rf'<p class="field-error" id="{field}-error" role="alert">(.*?)</p>', page, re.S)
    assert match, f"no message beside {field}"
    return html.unescape(match.group(1))


def counts(sessions) -> tuple[int, ...]:
    with sessions() as session:
        tables = (JointCase, JointCaseParticipant, JointCaseAction)
        cases = tuple(session.scalar(select(func.count()).select_from(t)) for t in tables)
        in_cases = session.scalar(select(func.count(Incident.id)).where(Incident.joint_case_id.is_not(None)))
    return (*cases, in_cases, entry_count(sessions))


def open_case(
    client, incident_id: int, participants=("officer-hp",), title="英罗湾排污 Yingluo Bay effluent"
):
    page = client.get(f"/joint-cases/new?incident={incident_id}").text
    data = {
        **form_fields(page, "/joint-cases/new"),
        "title": title,
        "incident_ids": str(incident_id),
        "participants": list(participants),
    }
    return client.post("/joint-cases/new", data=data, follow_redirects=False)


def browser(client, user: str) -> TestClient:
    """Another browser, signed in as ``user``."""
    other = TestClient(client.app)
    sign_in(other, user)
    return other


def post_on_case(client, case_id: int, what: str, **fields):
    """Post the case page's ``what`` form (actions, incidents, close) as drawn, with ``fields``."""
    action = f"/joint-cases/{case_id}/{what}"
    page = client.get(f"/joint-cases/{case_id}").text
    return client.post(action, data={**form_fields(page, action), **fields}, follow_redirects=False)


@pytest.fixture
def users(sessions):
    add_users(sessions, "admin", "member", "member-hp", "manager", "officer-lj", "officer-hp")


@pytest.fixture
def case(client, users):
    """A case opened at the desk by Lianjiang's officer with Hepu's; its id and first incident."""
    incident = report(client, "member")
    sign_in(client, "officer-lj")
    response = open_case(client, incident)
    assert response.status_code == 303, response.text
    case_id = int(re.fullmatch(r"/joint-cases/(\d+)\?done=opened", response.headers["location"]).group(1))
    return {"id": case_id, "incident": incident}


# --- signing in, the home page, the list -----------------------------------------------------------


def test_the_pages_send_whoever_is_not_signed_in_to_sign_in(client, users):
    for path, next_ in (
        ("/joint-cases", "/joint-cases"),
        ("/joint-cases/7", "/joint-cases/7"),
        ("/joint-cases/new?incident=3", "/joint-cases/new%3Fincident%3D3"),
    ):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == f"/login?next={next_}", path
    before = counts(client.app.state.sessions)
    for path in (
        "/joint-cases/new",
        "/joint-cases/7/actions",
        "/joint-cases/7/incidents",
        "/joint-cases/7/close",
    ):
        response = client.post(path, data={"title": "x", "note": "x"}, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith(
            "/login?next=/joint-cases"
        )
    assert counts(client.app.state.sessions) == before


def test_the_home_page_links_the_cases_for_those_who_work_them(client, users):
    sign_in(client, "manager")
    assert 'href="/joint-cases"' in client.get("/").text
    sign_in(client, "member")
    assert 'href="/joint-cases"' not in client.get("/").text
    response = client.get("/joint-cases")
    assert response.status_code == 403 and "station managers, enforcement officers" in response.text
    assert not has_form(client.get("/joint-cases/new").text, "/joint-cases/new")


def test_the_list_shows_open_cases_first_with_sides_incidents_and_last_action(client, sessions, case):
    second = report(client, "member")
    response = open_case(client, second, title="互花米草清除 Spartina clearing")
    later = int(response.headers["location"].split("/")[2].split("?")[0])
    assert (
        post_on_case(client, case["id"], "actions", mechanism="monitoring", note="联合采样").status_code
        == 303
    )
    version = form_fields(client.get(f"/joint-cases/{later}").text, f"/joint-cases/{later}/close")["version"]
    assert post_on_case(client, later, "close", version=version).status_code == 303
    sign_in(client, "manager")  # not a participant: sees every case all the same
    page = client.get("/joint-cases").text
    assert page.index("英罗湾排污") < page.index("互花米草清除")  # open first, though opened earlier
    item = page[page.index("英罗湾排污") : page.index("互花米草清除")]
    assert "<li>广东·廉江 Guangdong · Lianjiang</li><li>广西·合浦 Guangxi · Hepu</li>" in item
    assert re.search(r"<dt>事件 Incidents</dt><dd>1</dd>", item)
    assert "联合监测 Joint monitoring" in item and "已结案 Closed" in page
    assert "GD-LJ" not in page and "GX-HP" not in page


# --- opening a case ---------------------------------------------------------------------------------


def test_a_case_opened_from_an_incident_with_both_sides(client, sessions, users):
    incident = report(client, "member")
    sign_in(client, "officer-lj")
    page = client.get(f"/joint-cases/new?incident={incident}").text
    assert f'href="/incidents/{incident}"' in page and "污染" in page  # the incident, in words
    assert 'value="officer-hp"' in page and 'value="manager"' in page and 'value="admin"' in page
    assert 'value="member-hp"' not in page and 'value="member"' not in page  # patrol members are no choice
    assert 'value="officer-lj"' not in page  # the opener is included anyway
    before = entry_count(sessions)
    response = open_case(client, incident, participants=("officer-hp", "manager"))
    assert response.status_code == 303
    [entry] = newest(sessions)
    assert entry_count(sessions) == before + 1
    assert (entry.action, entry.channel, entry.actor) == ("joint_case.open", "page", "officer-lj")
    shown = client.get(response.headers["location"])
    text = shown.text
    assert shown.status_code == 200 and "联合案件已建立 The joint case is open" in text
    people = text[text.index("参与人 Participants") : text.index("事件 Incidents")]
    assert "执法人员 Enforcement officer · 广西·合浦 Guangxi · Hepu" in people
    assert "站长 Station manager · 广东·廉江 Guangdong · Lianjiang" in people
    for code in ("GD-LJ", "GX-HP", "enforcement_officer", "station_manager"):
        assert code not in people
    assert f'<a href="/incidents/{incident}"><span class="case-no">#{incident}</span> 污染' in text
    assert "已报告 Reported" in text and "LJ-AP-02" in text  # status in words, grid
    # Hepu's officer now sees the far Lianjiang incident through the case.
    sign_in(client, "officer-hp")
    assert client.get(f"/incidents/{incident}").status_code == 200


@pytest.mark.parametrize(
    ("title", "participants", "field", "says"),
    [
        ("英罗湾排污", ["manager"], "participants", "both sides"),  # Lianjiang only
        ("英罗湾排污", ["member-hp"], "participants", "patrol members report incidents"),
        ("  ", ["officer-hp"], "title", "title of 1–200 characters"),
    ],
    ids=["one-side-only", "patrol-member", "no-title"],
)
def test_a_refused_case_is_said_beside_its_field_and_nothing_is_written(
    client, sessions, users, title, participants, field, says
):
    incident = report(client, "member")
    sign_in(client, "officer-lj")
    before = counts(sessions)
    response = open_case(client, incident, participants=participants, title=title)
    assert response.status_code == 422
    message = field_error(response.text, field)
    assert says in message and re.search(r"[\u4e00-\u9fff]", message)  # Chinese first, English beside
    assert counts(sessions) == before
    # What was typed and chosen is kept.
    assert f'value="{incident}"' in response.text
    for name in participants:
        if not name.startswith("member"):  # a patrol member is no choice on the page (a forced post)
            assert f'value="{name}" checked' in response.text
    if title.strip():
        assert f'value="{title}"' in response.text


def test_incident_numbers_that_cannot_be_raised_are_said_beside_the_field(client, sessions, users):
    incident = report(client, "member")
    sign_in(client, "officer-lj")
    before = counts(sessions)
    for typed, says in (
        ("twelve", "must be a number"),
        ("999999", "no incident 999999"),
        ("", "at least one"),
        ("½", "must be a number"),  # numeric to Unicode, not to int()
        ("0", "must be a number"),
    ):
        page = client.get("/joint-cases/new").text
        data = {**form_fields(page, "/joint-cases/new"), "title": "x", "incident_ids": typed,
                "participants": ["officer-hp"]}  # fmt: skip
        response = client.post("/joint-cases/new", data=data)
        assert response.status_code == 422, typed
        assert says in field_error(response.text, "incidents")
    # Said as the page is drawn from a link, too.
    for typed, says in (
        ("twelve", "must be a number"),
        ("999999", "no incident 999999"),
        ("9" * 300, "must be"),
    ):
        page = client.get(f"/joint-cases/new?incident={typed}")
        assert page.status_code == 200 and says in field_error(page.text, "incidents"), typed
    assert open_case(client, incident).status_code == 303
    again = open_case(client, incident, title="again")  # already in a case
    assert again.status_code == 409 and "already in joint case" in field_error(again.text, "incidents")
    assert counts(sessions)[0] == before[0] + 1


def test_a_form_sent_twice_opens_one_case(client, sessions, users):
    incident = report(client, "member")
    sign_in(client, "officer-lj")
    page = client.get(f"/joint-cases/new?incident={incident}").text
    data = {**form_fields(page, "/joint-cases/new"), "title": "排污", "incident_ids": str(incident),
            "participants": ["officer-hp"]}  # fmt: skip
    first = client.post("/joint-cases/new", data=data, follow_redirects=False)
    second = client.post("/joint-cases/new", data=data, follow_redirects=False)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert counts(sessions)[0] == 1


# --- the case's forms -------------------------------------------------------------------------------


def test_actions_are_logged_under_each_of_the_five_mechanisms(client, sessions, case):
    sign_in(client, "officer-hp")
    for n, (code, zh) in enumerate(MECHANISMS.items()):
        before = entry_count(sessions)
        response = post_on_case(
            client, case["id"], "actions", mechanism=code, note=f"{zh} 第{n + 1}次 step {n + 1}"
        )
        assert (
            response.status_code == 303
            and response.headers["location"] == f"/joint-cases/{case['id']}?done=logged"
        )
        [entry] = newest(sessions)
        assert entry_count(sessions) == before + 1
        assert (entry.action, entry.channel, entry.actor) == ("joint_case.action", "page", "officer-hp")
    page = client.get(f"/joint-cases/{case['id']}?done=logged").text
    assert "行动已记录 The action is logged" in page
    groups = re.split(r'<div class="mechanism mech-', page)[1:]
    assert [g.split('"')[0] for g in groups] == list(MECHANISMS)
    for n, (group, zh) in enumerate(zip(groups, MECHANISMS.values())):
        assert f"{zh} 第{n + 1}次 step {n + 1}" in group  # each under its own mechanism
        assert re.search(
            r"\d{4}-\d\d-\d\d \d\d:\d\d</span> · officer-hp", group
        )  # China time to the minute, who


def test_a_refused_action_is_said_beside_its_field_and_keeps_the_entry(client, sessions, case):
    before = counts(sessions)
    no_mechanism = post_on_case(client, case["id"], "actions", note="巡查 patrolled the creek")
    assert no_mechanism.status_code == 422
    assert "unknown mechanism" in field_error(no_mechanism.text, "mechanism")
    assert "巡查 patrolled the creek</textarea>" in no_mechanism.text
    no_note = post_on_case(client, case["id"], "actions", mechanism="emergency", note="   ")
    assert no_note.status_code == 422 and "a note is required" in field_error(no_note.text, "note")
    assert 'value="emergency" checked' in no_note.text
    assert counts(sessions) == before


def test_another_incident_is_brought_in_by_its_number(client, sessions, case):
    theirs = report(client, "member-hp", SK05)
    sign_in(client, "officer-hp")
    before = counts(sessions)
    for typed, status, says in (
        ("abc", 422, "must be a number"),
        ("999999", 422, "no incident 999999"),
        (str(case["incident"]), 409, "already in joint case"),
    ):
        response = post_on_case(client, case["id"], "incidents", incident=typed)
        assert response.status_code == status, typed
        assert says in field_error(response.text, "incident")
        assert f'value="{typed}"' in response.text
    assert counts(sessions) == before
    full_width = str(theirs).translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    response = post_on_case(client, case["id"], "incidents", incident=f"＃{full_width}")  # an IME's
    assert response.status_code == 303
    [entry] = newest(sessions)
    assert (entry.action, entry.channel) == ("joint_case.add_incident", "page")
    page = client.get(response.headers["location"]).text
    assert "事件已纳入本案" in page and f'href="/incidents/{theirs}"' in page and "HP-SK-05" in page
    assert "事件 Incidents (2)" in page


def test_closing_shows_no_more_forms_and_a_stale_form_says_what_changed(client, sessions, case):
    action = f"/joint-cases/{case['id']}"
    post_on_case(client, case["id"], "actions", mechanism="enforcement", note="联合约谈 joint interview")
    drawn = client.get(action).text  # Lianjiang's page, still showing the forms
    hepu = browser(client, "officer-hp")  # Hepu's officer closes the case meanwhile
    response = post_on_case(hepu, case["id"], "close")
    assert response.status_code == 303 and response.headers["location"] == f"{action}?done=closed"
    [entry] = newest(sessions)
    assert (entry.action, entry.channel, entry.actor) == ("joint_case.close", "page", "officer-hp")
    assert entry.changes["status"] == ["open", "closed"]
    page = hepu.get(response.headers["location"]).text
    assert "案件已结案 The case is closed" in page and "已结案 Closed" in page
    for what in ("actions", "incidents", "close"):
        assert not has_form(page, f"{action}/{what}")
    # Lianjiang's officer sends the forms of the page drawn before.
    before = counts(sessions)
    answers = {}
    for what, fields in (("close", {}), ("actions", {"mechanism": "monitoring", "note": "采样"})):
        stale = client.post(f"{action}/{what}", data={**form_fields(drawn, f"{action}/{what}"), **fields})
        assert stale.status_code == 409, what
        assert "Someone changed this case" in stale.text and "It was closed at" in stale.text
        assert not has_form(stale.text, f"{action}/{what}")
        answers[what] = stale.text
    assert "Version 1 → 2" in answers["close"]
    assert counts(sessions) == before


def test_who_may_not_write_gets_no_forms_and_a_forced_post_is_refused(client, sessions, case):
    action = f"/joint-cases/{case['id']}"
    drawn = client.get(action).text  # the forms of a participant, to force
    others = {who: browser(client, who) for who in ("manager", "member", "admin")}
    before = counts(sessions)
    page = others["manager"].get(action)  # sees the case, is not a participant
    assert page.status_code == 200 and "Only the case's participants and admins" in page.text
    assert not any(has_form(page.text, f"{action}/{w}") for w in ("actions", "incidents", "close"))
    good = {"mechanism": "monitoring", "note": "x", "incident": str(case["incident"])}
    bad = {"mechanism": "gossip", "note": "", "incident": "abc", "version": "x"}  # refused all the same
    for who in ("manager", "member"):
        token = CSRF.search(others[who].get("/").text).group(1)
        for what in ("actions", "incidents", "close"):
            for fields in (good, bad):
                sent = {**form_fields(drawn, f"{action}/{what}"), **fields, "csrf_token": token}
                response = others[who].post(f"{action}/{what}", data=sent)
                assert response.status_code == 403, (who, what, response.text[:300])
                assert "<form" not in response.text.replace('<form method="post" action="/logout">', "")
    # A participant without the session's CSRF token is refused too.
    forged = {"mechanism": "monitoring", "note": "x", "csrf_token": "forged"}
    assert client.post(f"{action}/actions", data=forged).status_code == 403
    assert counts(sessions) == before
    # An admin, not a participant, may write.
    assert has_form(others["admin"].get(action).text, f"{action}/actions")


def test_a_case_one_may_not_see_is_not_found(client, case):
    sign_in(client, "member")
    assert client.get(f"/joint-cases/{case['id']}").status_code == 404
    sign_in(client, "officer-hp")
    for path in ("/joint-cases/999999", f"/joint-cases/{2**31}", f"/joint-cases/{2**70}"):
        response = client.get(path)
        assert response.status_code == 404, path
    token = CSRF.search(client.get("/").text).group(1)
    for what, fields in (("actions", {"mechanism": "monitoring", "note": "x"}), ("incidents", {"incident": "abc"}),
                         ("close", {"version": "x"})):  # fmt: skip
        response = client.post(f"/joint-cases/999999/{what}", data={**fields, "csrf_token": token})
        assert response.status_code == 404 and "no joint case 999999" in response.text, what


def test_hostile_titles_and_notes_are_shown_as_text(client, case):
    script = "</script><script>alert(1)</script><!--"
    sign_in(client, "officer-lj")
    post_on_case(client, case["id"], "actions", mechanism="prevention", note=script)
    incident = report(client, "member")
    assert open_case(client, incident, title=script).status_code == 303
    for path in (f"/joint-cases/{case['id']}", "/joint-cases", f"/joint-cases/{case['id'] + 1}"):
        page = client.get(path).text
        assert script not in page and "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page, path
