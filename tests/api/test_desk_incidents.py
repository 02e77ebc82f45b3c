"""The incident desk as pages, through form posts: the work list (what is due, overdue first, with
counts and filters) and the incident page with the actions the user may take — and only those.

Read as the specification:
- ``/desk`` is for station managers, officers and admins (others: a bilingual 403 page); it lists
  the incidents they may work, overdue first and then by the time the next step is due, in words
  (category, town, status) with due times in China time to the minute.
- ``/incidents/{id}`` offers each action the role allows in the current state, and a forced POST of
  one it does not offer is refused (403) with nothing changed.
- Every form carries the version it was drawn with: a stale one answers 409 with the page showing
  what changed since (who, when, which fields), the typed entries kept and the current version.
- Bad input is shown beside its field, entries kept, and nothing is written (row, file, audit).
"""

from __future__ import annotations

import html as html_lib
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image
from sqlalchemy import func, select, update
from utils.audit import entry_count, newest
from utils.factories import add_users, sign_in
from utils.places import inside, inside_near_border

from patrol.accounts import Principal
from patrol.incidents import IncidentReport, refer, report_incident, transition
from patrol.joint import open_joint_case
from patrol.models import Incident, IncidentEvent, IncidentPhoto, User

GQ03 = inside("LJ-GQ-03")
AP02 = inside("LJ-AP-02")  # ~30 km from the border: Hepu's officers do not see it
BORDER = inside_near_border("LJ-GQ-08")  # ~1 km from the border: both sides see it
HEPU = inside("HP-SK-03")
RAW_CODES = (
    "patrol_member",
    "station_manager",
    "enforcement_officer",
    "GD-LJ",
    "GX-HP",
    "LJ-T-GQ",
    "in_progress",
)


# --- helpers ----------------------------------------------------------------------------------------


def principal(sessions, username: str) -> Principal:
    with sessions() as session:
        return Principal.of(session.scalars(select(User).where(User.username == username)).one())


def reported(sessions, settings, where=GQ03, *, user="member", category="rubbish", ago=timedelta(0)) -> int:
    with sessions() as session:
        incident = report_incident(
            session,
            principal(sessions, user),
            IncidentReport(category, where[0], where[1], description="塑料垃圾 plastic"),
            settings.incidents,
            now=datetime.now(UTC) - ago,
        )
        session.commit()
        return incident.id


def act(sessions, settings, incident_id: int, user: str, action: str, **extra) -> None:
    """A change made by someone else meanwhile (through the domain, as another page or the API)."""
    with sessions() as session:
        version = session.get(Incident, incident_id).version
        transition(
            session,
            principal(sessions, user),
            incident_id,
            action,
            settings.incidents,
            version=version,
            **extra,
        )
        session.commit()


def state(sessions, incident_id: int) -> dict:
    with sessions() as session:
        i = session.get(Incident, incident_id)
        photos = session.scalar(
            select(func.count()).select_from(IncidentPhoto).where(IncidentPhoto.incident_id == i.id)
        )
        events = session.scalar(
            select(func.count()).select_from(IncidentEvent).where(IncidentEvent.incident_id == i.id)
        )
        return {
            "status": i.status, "version": i.version, "level": i.level, "referred_to": i.referred_to,
            "joint_case_id": i.joint_case_id, "duplicate_of": i.duplicate_of, "photos": photos, "events": events,
        }  # fmt: skip


def stored_files(settings) -> set[str]:
    root = settings.photo_dir()
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def png(colour=(30, 120, 60)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 18), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def offered(page: str) -> set[str]:
    return set(
        re.findall(r'<form method="post" action="/incidents/\d+/\w+" class="action action-(\w+)', page)
    )


def form_fields(page: str, action: str) -> dict[str, str]:
    """The hidden fields of one action's form as drawn (CSRF token, version, form key…)."""
    form = re.search(rf'<form [^>]*id="form-{action}"[^>]*>(.*?)</form>', page, re.S)
    assert form, f"no {action} form on the page"
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', form.group(1)))


def target(action: str) -> str:
    return {"refer": "referral", "joint": "joint"}.get(action, "transition")


def submit(client, incident_id: int, action: str, page: str | None = None, files=None, **fields):
    """Fill in and send the ``action`` form of the page (drawn now unless given)."""
    page = page if page is not None else client.get(f"/incidents/{incident_id}").text
    data = form_fields(page, action) | {k: str(v) for k, v in fields.items()}
    return client.post(
        f"/incidents/{incident_id}/{target(action)}", data=data, files=files, follow_redirects=False
    )


def forced(client, incident_id: int, action: str, version: int, **fields):
    """A crafted POST of an action the page did not offer (with a valid CSRF token)."""
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").text).group(1)
    data = {"csrf_token": token, "version": str(version), "action": action, **fields}
    return client.post(f"/incidents/{incident_id}/{target(action)}", data=data, follow_redirects=False)


def text(page: str) -> str:
    """What a person reads: the page without tags and attribute values."""
    body = re.sub(r"<(?:li|tr|td|th|p|div|br|h\d|option|ul|ol|table)\b[^>]*>", " ", page)
    return html_lib.unescape(re.sub(r"<[^>]+>", "", body))


def field_error(page: str, field: str) -> str:
    found = re.search(rf'<p class="field-error" id="err-{field}" role="alert">(.*?)</p>', page, re.S)
    return html_lib.unescape(found.group(1)) if found else ""


def work_list(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'<li class="work[^"]*" data-id="(\d+)">', page)]


@pytest.fixture
def users(sessions):
    add_users(sessions)
    with sessions() as session:  # display names, as people are shown
        names = {
            "manager": "站长 A",
            "officer-lj": "执法队员 B",
            "officer-hp": "执法队员 C",
            "member": "队员 07",
        }
        for username, name in names.items():
            session.execute(update(User).where(User.username == username).values(display_name=name))
        session.commit()


# --- the work list -----------------------------------------------------------------------------------


def test_the_desk_is_for_managers_officers_and_admins(client, users):
    response = client.get("/desk?grid=LJ-GQ-03", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/desk?grid=LJ-GQ-03"
    sign_in(client, "member")
    refused = client.get("/desk")
    assert refused.status_code == 403
    assert "无权访问 Not allowed" in refused.text and "station managers, enforcement officers" in refused.text
    assert 'href="/desk"' not in client.get("/").text
    for user in ("manager", "officer-hp", "admin"):
        sign_in(client, user)
        home = client.get("/").text
        assert re.search(r'<ul class="links">\s*<li><a href="/desk">', home), user  # first in the list
        assert client.get("/desk").status_code == 200


def test_the_work_list_puts_overdue_first_then_by_due_time_with_counts(client, sessions, settings, users):
    late_accept = reported(sessions, settings, ago=timedelta(hours=5))  # accept due 1 h ago
    fresh = reported(sessions, settings, category="fire")  # accept due in 4 h
    accepted = reported(sessions, settings, ago=timedelta(hours=1))
    act(sessions, settings, accepted, "manager", "accept")  # resolve due in ~2 days
    late_resolve = reported(sessions, settings, ago=timedelta(days=3))
    act(sessions, settings, late_resolve, "manager", "accept")  # resolve due 1 day ago
    to_verify = reported(sessions, settings)
    act(sessions, settings, to_verify, "manager", "accept")
    act(sessions, settings, to_verify, "manager", "resolve")
    closed = reported(sessions, settings)
    act(sessions, settings, closed, "manager", "reject", note="不是事件 not an incident")
    far = reported(sessions, settings, AP02)  # Lianjiang's too, far from the border: due last

    sign_in(client, "manager")
    page = client.get("/desk")
    assert page.status_code == 200
    assert work_list(page.text) == [late_resolve, late_accept, fresh, far, accepted, to_verify]
    assert re.search(r'<span class="n">2</span> 超时 Overdue', page.text)
    assert re.search(r'status=reported"><span class="n">3</span> 已报告 Reported', page.text)
    assert re.search(r'status=accepted"><span class="n">2</span> 已受理 Accepted', page.text)
    assert re.search(r'status=resolved"><span class="n">1</span> 已办结 Resolved', page.text)
    # A row in words: category, grid, town, status, due in China time to the minute, overdue badge.
    row = re.search(rf'data-id="{late_accept}">(.*?)</li>', page.text, re.S).group(1)
    assert (
        "垃圾 Rubbish" in row and "LJ-GQ-03" in row and "高桥镇 Gaoqiao" in row and "已报告 Reported" in row
    )
    with sessions() as session:
        due = session.get(Incident, late_accept).accept_due.replace(tzinfo=UTC) + timedelta(hours=8)
    assert f"期限 Due {due:%Y-%m-%d %H:%M}" in row
    assert '<strong class="badge overdue">超时未受理 Not accepted in time</strong>' in row
    assert "Not accepted in time" not in re.search(rf'data-id="{fresh}">(.*?)</li>', page.text, re.S).group(1)
    assert f'href="/incidents/{fresh}"' in page.text
    assert not [code for code in RAW_CODES if code in text(page.text)]
    # Hepu's officer works neither Lianjiang's incidents nor sees the far one.
    sign_in(client, "officer-hp")
    assert work_list(client.get("/desk").text) == []
    assert far not in work_list(client.get("/desk?status=all").text)


def test_the_work_list_filters_by_grid_town_category_status_and_side(client, sessions, settings, users):
    gq = reported(sessions, settings, GQ03, category="fire")
    ap = reported(sessions, settings, AP02, category="rubbish")
    near = reported(sessions, settings, BORDER, category="rubbish")
    done = reported(sessions, settings, GQ03)
    act(sessions, settings, done, "manager", "duplicate", duplicate_of=gq)
    hepu = reported(sessions, settings, HEPU, user="member-hp")
    act(sessions, settings, hepu, "officer-hp", "accept")
    sign_in(client, "officer-lj")

    def listed(query: str) -> set[int]:
        response = client.get(f"/desk?{query}")
        assert response.status_code == 200, response.text
        return set(work_list(response.text))

    assert listed("") == {gq, ap, near}  # Hepu's is seen (near the border) but not theirs to work
    assert listed("grid=LJ-GQ-03") == {gq}  # the maps link a grid to its open incidents this way
    assert listed("town=AP") == {ap}
    assert listed("category=fire") == {gq}
    assert listed("status=duplicate") == {done}
    assert listed("status=all") == {gq, ap, near, done}
    assert listed("side=GX-HP") == set()
    assert listed("grid=LJ-GQ-03&category=rubbish") == set()
    # The filter form keeps what was chosen.
    page = client.get("/desk?grid=LJ-GQ-03&town=GQ&category=fire&status=reported&side=GD-LJ").text
    for value in ("LJ-GQ-03", "GQ", "fire", "reported", "GD-LJ"):
        assert f'value="{value}" selected' in page
    # Bad filters: a clear message, never a 500.
    for query, message in (
        ("grid=LJ-XX-99", "unknown grid"),
        ("town=XX", "Unknown town"),
        ("category=nope", "unknown incident category"),
        ("status=lost", "Unknown status"),
        ("side=XX", "unknown side"),
        ("grid=" + "x" * 65, "longer than 64 characters"),
    ):
        response = client.get(f"/desk?{query}")
        assert response.status_code == 422, query
        assert message in html_lib.unescape(response.text), query
        assert response.headers["content-type"].startswith("text/html"), query
    sign_in(client, "officer-hp")
    assert listed("side=GX-HP") == {hepu}


# --- the actions ---------------------------------------------------------------------------------------


def test_a_manager_walks_an_incident_to_resolved_and_another_closes_it(client, sessions, settings, users):
    incident = reported(sessions, settings)
    sign_in(client, "manager")
    page = client.get(f"/incidents/{incident}").text
    assert offered(page) == {"accept", "reject", "duplicate", "refer", "joint"}
    assert f'href="/joint-cases/new?incident={incident}"' in page
    before = entry_count(sessions)

    response = submit(client, incident, "accept", page, level="county", note="现场核实 checked on site")
    assert response.status_code == 303 and response.headers["location"] == f"/incidents/{incident}"
    shown = client.get(f"/incidents/{incident}").text
    assert '<p class="ok" role="status">已受理 Accepted</p>' in shown
    assert "已受理 Accepted" in client.get(f"/incidents/{incident}").text  # the notice is shown once
    assert '<p class="ok"' not in client.get(f"/incidents/{incident}").text
    assert (
        state(sessions, incident)["level"] == "county" and state(sessions, incident)["status"] == "accepted"
    )
    [entry] = newest(sessions)
    assert (entry.action, entry.channel, entry.actor) == ("incident.transition", "page", "manager")

    assert offered(shown) == {"start", "resolve", "reject", "duplicate", "refer", "joint"}
    assert submit(client, incident, "start", shown).status_code == 303
    files_before = stored_files(settings)
    photos = [
        ("photos", ("a.png", png(), "image/png")),
        ("photos", ("b.png", png((200, 10, 10)), "image/png")),
    ]
    response = submit(client, incident, "resolve", files=photos, note="已清理 cleared")
    assert response.status_code == 303, response.text
    assert state(sessions, incident)["status"] == "resolved" and state(sessions, incident)["photos"] == 2
    assert len(stored_files(settings) - files_before) == 2
    [entry] = newest(sessions)
    assert entry.action == "incident.transition" and len(entry.changes["photos"][1]) == 2  # one entry
    assert entry_count(sessions) == before + 3

    # The resolver may not verify their own work: not offered, and refused when forced.
    page = client.get(f"/incidents/{incident}").text
    assert "close" not in offered(page) and offered(page) == {"joint", "reopen"}
    version = state(sessions, incident)["version"]
    refused = forced(client, incident, "close", version)
    assert refused.status_code == 403 and "someone other than the resolver" in refused.text
    assert state(sessions, incident)["status"] == "resolved" and entry_count(sessions) == before + 3

    sign_in(client, "officer-lj")
    page = client.get(f"/incidents/{incident}").text
    assert "close" in offered(page)
    assert submit(client, incident, "close", page, note="现场已复核 verified").status_code == 303
    page = client.get(f"/incidents/{incident}").text
    # Closed: only a joint case may still gather it (as the domain allows).
    assert state(sessions, incident)["status"] == "closed" and offered(page) == {"joint"}
    # The history: who by display name, when in China time to the minute, every label in words.
    history = text(re.search(r'<ol class="history">(.*?)</ol>', page, re.S).group(1))
    for words in ("站长 A: 受理 Accepted", "县级 County", "站长 A: 办结 Resolved", "执法队员 B: 核实关闭 Closed after verifying",
                  "队员 07: 报告 Reported", "现场已复核 verified"):  # fmt: skip
        assert words in history, words
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d 站长 A", history)
    assert not [code for code in RAW_CODES if code in text(page)]
    assert "village" not in history and "county" not in history.replace("County", "")


def test_reject_duplicate_reopen_refer_and_joint_through_the_page(client, sessions, settings, users):
    first, second, third = (reported(sessions, settings, BORDER) for _ in range(3))
    sign_in(client, "manager")
    assert submit(client, second, "duplicate", duplicate_of=f"#{first}").status_code == 303
    assert (
        state(sessions, second)["duplicate_of"] == first and state(sessions, second)["status"] == "duplicate"
    )
    page = client.get(f"/incidents/{second}").text
    assert f'href="/incidents/{first}"' in page and offered(page) == {"joint"}  # reopening it is for admins
    sign_in(client, "admin")
    assert submit(client, second, "reopen", note="并非重复 not the same place").status_code == 303
    assert state(sessions, second)["status"] == "in_progress"

    sign_in(client, "manager")
    assert submit(client, third, "reject", note="误报 false report").status_code == 303
    assert state(sessions, third)["status"] == "rejected"

    # Referred to Hepu: Hepu's officer now works it.
    page = client.get(f"/incidents/{first}").text
    assert "广西·合浦 Guangxi · Hepu" in re.search(r'id="form-refer".*?</form>', page, re.S).group(0)
    assert submit(client, first, "refer", page, note="污染来自对岸 from across the border").status_code == 303
    assert state(sessions, first)["referred_to"] == "GX-HP"
    page = client.get(f"/incidents/{first}").text
    assert "refer" not in offered(page) and "已移交 referred to 广西·合浦 Guangxi · Hepu" in page
    sign_in(client, "officer-hp")
    row = re.search(rf'data-id="{first}">(.*?)</li>', client.get("/desk").text, re.S).group(1)
    assert "移交自 referred from 广东·廉江 Guangdong · Lianjiang" in row
    page = client.get(f"/incidents/{first}").text
    assert "accept" in offered(page)
    assert submit(client, first, "accept", page).status_code == 303

    # Into a joint case the user takes part in.
    with sessions() as session:
        case = open_joint_case(
            session, principal(sessions, "officer-hp"), title="英罗湾排污 Yingluo effluent",
            incident_ids=[reported(sessions, settings, HEPU, user="member-hp")], participants=["officer-lj"],
            settings=settings.incidents,
        )  # fmt: skip
        session.commit()
        case_id = case.id
    second_page = client.get(f"/incidents/{second}").text
    assert "joint" not in offered(second_page)  # Lianjiang's, not referred: not Hepu's to work
    page = client.get(f"/incidents/{first}").text
    assert f'<option value="{case_id}">#{case_id} 英罗湾排污 Yingluo effluent</option>' in page
    before = entry_count(sessions)
    assert submit(client, first, "joint", page, case_id=str(case_id)).status_code == 303
    assert state(sessions, first)["joint_case_id"] == case_id
    [entry] = newest(sessions)
    assert (entry.action, entry.channel, entry_count(sessions)) == (
        "joint_case.add_incident",
        "page",
        before + 1,
    )


def test_an_action_the_role_may_not_take_is_not_offered_and_refused_when_forced(
    client, sessions, settings, users
):
    near = reported(sessions, settings, BORDER)
    sign_in(client, "member")  # the reporter sees it, works nothing
    page = client.get(f"/incidents/{near}")
    assert page.status_code == 200 and offered(page.text) == set()
    sign_in(client, "officer-hp")  # sees it (near the border), is not of its side
    page = client.get(f"/incidents/{near}").text
    assert offered(page) == set() and "worked by the managers and officers of its side" in page
    for user in ("member", "officer-hp"):
        sign_in(client, user)
        before = (state(sessions, near), entry_count(sessions))
        for action, extra in (
            ("accept", {}),
            ("reject", {"note": "x"}),
            ("refer", {"to_side": "GX-HP"}),
            ("joint", {"case_id": "1"}),
        ):
            response = forced(client, near, action, 1, **extra)
            assert response.status_code == 403, (user, action)
            assert "不允许 Not allowed" in response.text
            assert (state(sessions, near), entry_count(sessions)) == before
    far = reported(sessions, settings, AP02)
    before = entry_count(sessions)
    response = forced(client, far, "accept", 1)  # officer-hp may not even see it
    assert (
        response.status_code == 404
        and entry_count(sessions) == before
        and state(sessions, far)["status"] == "reported"
    )
    # A forged CSRF token and a signed-out browser change nothing either.
    sign_in(client, "manager")
    before = (state(sessions, near), entry_count(sessions))
    data = {"csrf_token": "forged", "version": "1", "action": "accept"}
    assert client.post(f"/incidents/{near}/transition", data=data).status_code == 403
    client.post(
        "/logout",
        data={"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").text).group(1)},
    )
    before = (state(sessions, near), entry_count(sessions))
    response = client.post(f"/incidents/{near}/transition", data=data, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == f"/login?next=/incidents/{near}"
    assert (state(sessions, near), entry_count(sessions)) == before


def test_a_stale_form_is_not_applied_and_shows_what_changed(client, sessions, settings, users):
    incident = reported(sessions, settings)
    sign_in(client, "officer-lj")
    page = client.get(f"/incidents/{incident}").text  # drawn at version 1
    act(sessions, settings, incident, "manager", "accept", level="town", note="我来处理 mine")  # meanwhile
    with sessions() as session:
        refer(session, principal(sessions, "manager"), incident, "GX-HP", settings.incidents, version=2)
        session.commit()
    before = (state(sessions, incident), entry_count(sessions))
    response = submit(client, incident, "reject", page, note="重复报告 reported twice")
    assert response.status_code == 409
    assert (state(sessions, incident), entry_count(sessions)) == before  # nothing overwritten
    assert "有人已修改此事件 Someone changed this incident" in response.text
    stale = text(re.search(r'<div class="card stale" id="stale">(.*?)</div>', response.text, re.S).group(1))
    assert (
        "站长 A: 受理 Accepted" in stale
        and "我来处理 mine" in stale
        and "站长 A: 移交 Referred (移交给 to 广西·合浦 Guangxi · Hepu)" in stale
    )
    assert "状态 Status 已报告 Reported 已受理 Accepted" in " ".join(stale.split())
    assert "移交 Referred to 无 none 广西·合浦 Guangxi · Hepu" in " ".join(stale.split())
    assert "处理层级 Handling level 村级 Village (2 天 days) 镇级 Town (3 天 days)" in " ".join(stale.split())
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d 站长 A", stale)
    # The typed reason is kept, in a form carrying the current version, to re-submit deliberately.
    assert ">重复报告 reported twice</textarea>" in response.text
    assert form_fields(response.text, "reject")["version"] == "3"
    again = submit(client, incident, "reject", response.text, note="重复报告 reported twice")
    assert again.status_code == 303 and state(sessions, incident)["status"] == "rejected"


def test_a_double_submission_is_one_change(client, sessions, settings, users):
    incident = reported(sessions, settings)
    sign_in(client, "manager")
    page = client.get(f"/incidents/{incident}").text
    first = submit(client, incident, "accept", page)
    again = submit(client, incident, "accept", page)  # the same form, sent twice
    assert first.status_code == again.status_code == 303
    assert state(sessions, incident)["version"] == 2 and state(sessions, incident)["events"] == 2


# fmt: off
BAD_INPUT = {
    # case: (action, fields, photo files, field the message is beside, words of the message)
    "reject without a reason": ("reject", {"note": "  "}, None, "note", "请说明理由 Say why"),
    "reopen without a reason": ("reopen", {"note": ""}, None, "note", "请说明理由 Say why"),
    "duplicate of nothing": ("duplicate", {"duplicate_of": ""}, None, "duplicate_of", "Give the number"),
    "duplicate of a word": ("duplicate", {"duplicate_of": "abc"}, None, "duplicate_of", "must be a number"),
    "duplicate of itself": ("duplicate", {"duplicate_of": "SELF"}, None, "duplicate_of", "cannot duplicate itself"),
    "duplicate of a missing one": ("duplicate", {"duplicate_of": "999999"}, None, "duplicate_of", "unknown incident 999999"),
    "duplicate of an unseen one": ("duplicate", {"duplicate_of": "UNSEEN"}, None, "duplicate_of", "unknown incident"),
    "duplicate out of range": ("duplicate", {"duplicate_of": str(2**40)}, None, "duplicate_of", "out of range"),
    "a level that is none": ("accept", {"level": "province"}, None, "level", "Unknown handling level"),
    "a photo that is not an image": ("resolve", {"note": "done"}, [b"<html>not an image</html>"], "photos", "not an image"),
    "one good, one bad photo": ("resolve", {"note": "done"}, [None, b"GIF89a...."], "photos", "photo 2"),
    "a joint case not chosen": ("joint", {"case_id": ""}, None, "case_id", "Choose a joint case"),
    "a joint case that is none": ("joint", {"case_id": "424242"}, None, "case_id", "no joint case 424242"),
}
# fmt: on


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_shown_beside_its_field_with_nothing_written(client, sessions, settings, users, case):
    action, fields, photos, field, message = BAD_INPUT[case]
    incident = reported(sessions, settings, BORDER)
    unseen = reported(sessions, settings, HEPU, user="member-hp")  # Hepu's, near the border
    hidden = reported(sessions, settings, AP02)  # far from the border: officer-hp does not see it
    user = "officer-hp" if "UNSEEN" in fields.values() else "manager"
    if user == "officer-hp":
        incident = unseen
    if action in ("resolve", "reopen"):
        act(sessions, settings, incident, user, "accept")
    if action == "reopen":
        act(sessions, settings, incident, user, "resolve")
    fields = {k: {"SELF": str(incident), "UNSEEN": str(hidden)}.get(v, v) for k, v in fields.items()}
    sign_in(client, user)
    page = client.get(f"/incidents/{incident}").text
    before = (state(sessions, incident), entry_count(sessions), stored_files(settings))
    files = [
        ("photos", (f"p{n}.png", data if data is not None else png(), "image/png"))
        for n, data in enumerate(photos or ())
    ]
    response = submit(client, incident, action, page, files=files or None, **fields)
    assert response.status_code == 422, response.text
    assert message in field_error(response.text, field), field_error(response.text, field) or response.text
    assert (state(sessions, incident), entry_count(sessions), stored_files(settings)) == before
    assert 'class="action action-' + action + ' failed"' in response.text
    if fields.get("note", "").strip():
        assert f">{fields['note']}</textarea>" in response.text  # what was typed is kept
    if fields.get("duplicate_of"):
        assert f'value="{html_lib.escape(fields["duplicate_of"])}"' in response.text
    if photos:
        assert "Please choose the photos again" in response.text
    assert "Traceback" not in response.text


def test_broken_forms_never_answer_500(client, sessions, settings, users):
    incident = reported(sessions, settings)
    sign_in(client, "manager")
    page = client.get(f"/incidents/{incident}").text
    token = form_fields(page, "accept")["csrf_token"]
    for path, data in (
        (f"/incidents/{incident}/transition", {"csrf_token": token}),
        (f"/incidents/{incident}/transition", {"csrf_token": token, "version": "1", "action": "explode"}),
        (f"/incidents/{incident}/transition", {"csrf_token": token, "version": "x", "action": "accept"}),
        (f"/incidents/{incident}/transition", {"csrf_token": token, "version": "1", "action": "close"}),
        (f"/incidents/{incident}/referral", {"csrf_token": token, "version": "1", "to_side": "XX"}),
        (f"/incidents/{incident}/referral", {"csrf_token": token, "version": "1", "to_side": "GD-LJ"}),
        (f"/incidents/{incident}/joint", {"csrf_token": token, "version": "1", "case_id": "x" * 9000}),
        ("/incidents/99999999999/transition", {"csrf_token": token, "version": "1", "action": "accept"}),
        ("/incidents/424242/referral", {"csrf_token": token, "version": "1", "to_side": "GX-HP"}),
    ):
        response = client.post(path, data=data, follow_redirects=False)
        assert 400 <= response.status_code < 500, (path, data, response.status_code)
        assert response.headers["content-type"].startswith("text/html"), (path, data)
    assert state(sessions, incident)["version"] == 1
    for path in ("/incidents/0", "/incidents/99999999999", "/desk?grid=%00", "/desk?status=" + "x" * 40):
        assert 400 <= client.get(path).status_code < 500, path
