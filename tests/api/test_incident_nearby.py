"""The incident page names the patrols that passed near the place in the day before it was seen:
the people a manager asks what they saw.

Read as the specification:
- The list holds the patrols that came within 500 m of the incident's position in the 24 hours
  before its ``observed_at``, closest first, each with its team, members (display names), the
  closest distance, when that was (China time) and how long before it was seen, and a link to the
  patrol's replay. It is the answer of ``GET /api/v1/patrols/near`` to the same question.
- A patrol after the sighting, more than a day before it, or farther away is not listed.
- It lists only patrols the reader may see (the patrol visibility rules): a member their team's,
  a station manager their station's teams', an admin everyone's.
- Nothing nearby: the page says so.
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from utils.factories import add_users, auth, sign_in
from utils.nearby import T0, near, upload, wander
from utils.places import inside

from patrol.accounts import Principal
from patrol.incidents import IncidentReport, report_incident
from patrol.models import Incident, User

pytestmark = pytest.mark.backend

SEEN = T0 + timedelta(hours=2)
CHINA = timezone(timedelta(hours=8))


@pytest.fixture
def scene(client, sessions, settings):
    """Walks in LJ-GQ-03 by two teams, one after the sighting, one two days before it, one in
    Hepu; and a rubbish incident reported by ``member`` where the first walk started."""
    add_users(sessions, "admin", "member", "member-yz", "member-hp", "manager")
    walks = {
        "gq": ("member", wander(1, grid="LJ-GQ-03", minutes=40, start=T0)),
        "yz": ("member-yz", wander(3, grid="LJ-GQ-03", minutes=35, start=T0 + timedelta(minutes=5))),
        "after": ("member", wander(2, grid="LJ-GQ-03", minutes=20, start=SEEN + timedelta(minutes=10))),
        "old": ("member", wander(5, grid="LJ-GQ-03", minutes=20, start=SEEN - timedelta(hours=48))),
        "hepu": ("member-hp", wander(4, grid="HP-SK-01", minutes=30, start=T0)),
    }
    ids = {name: upload(client, auth(client, who), *walk, name) for name, (who, walk) in walks.items()}
    lon, lat, _ = walks["gq"][1]
    incident = report(sessions, settings, float(lon[0]) + 0.0004, float(lat[0]))
    return ids, incident


def report(sessions, settings, lon: float, lat: float) -> int:
    with sessions() as session:
        user = session.scalars(select(User).where(User.username == "member")).one()
        found = IncidentReport("rubbish", lon, lat, description="塑料垃圾 plastic", observed_at=SEEN)
        incident = report_incident(
            session, Principal.of(user), found, settings.incidents, now=SEEN + timedelta(minutes=3)
        )
        session.commit()
        return incident.id


def listed(client, incident_id: int) -> list[dict]:
    """The page's list of nearby patrols, as (patrol id, metres, text) read from its HTML."""
    page = client.get(f"/incidents/{incident_id}")
    assert page.status_code == 200, page.text
    section = re.search(r'<div class="card" id="before-seen">(.*?)</div>', page.text, re.S)
    assert section, "the page has no list of patrols nearby"
    rows = re.findall(r"<li>(.*?)</li>", section.group(1), re.S)
    found = []
    for row in rows:
        text = html.unescape(re.sub(r"<[^>]+>", "", row))
        found.append(
            {
                "patrol_id": int(re.search(r'href="/maps/replay/patrol/(\d+)"', row).group(1)),
                "metres": int(re.search(r"closest (\d+) m", text).group(1)),
                "text": " ".join(text.split()),
            }
        )
    if not rows:
        assert "None among the patrols you may see" in section.group(1)
    return found


def test_the_page_lists_who_passed_within_500_m_in_the_day_before_closest_first(client, sessions, scene):
    ids, incident = scene
    admin = auth(client, "admin")  # a token for the API, before the browser's sign-in
    sign_in(client, "admin")
    rows = listed(client, incident)
    # Not the walk after the sighting, not the one two days before, not Hepu's.
    assert {r["patrol_id"] for r in rows} == {ids["gq"], ids["yz"]}
    assert [r["metres"] for r in rows] == sorted(r["metres"] for r in rows)

    # The same answer as the API's, asked the same question.
    with sessions() as session:
        lon, lat = session.execute(select(Incident.lon, Incident.lat).where(Incident.id == incident)).one()
    answer = near(client, admin, lon, lat, 500, SEEN - timedelta(hours=24), SEEN).json()
    assert [f["properties"]["patrol_id"] for f in answer["features"]] == [r["patrol_id"] for r in rows]
    for row, feature in zip(rows, answer["features"], strict=True):
        assert row["metres"] == round(feature["properties"]["distance_m"])

    for row, feature in zip(rows, answer["features"], strict=True):
        # When, in China time, and how long before the sighting.
        at = datetime.fromisoformat(feature["properties"]["closest_at"])
        minutes = round((SEEN - at).total_seconds() / 60)
        assert at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M") in row["text"], row
        assert f"发现前 {minutes // 60} h {minutes % 60:02d} min before" in row["text"], row
    gq = next(r for r in rows if r["patrol_id"] == ids["gq"])
    # The walk started ~41 m from where the rubbish was seen; the team and member are named.
    assert gq["metres"] <= 41, gq
    assert "高桥镇党员护林先锋队 Gaoqiao" in gq["text"] and "· member " in gq["text"], gq


def test_each_reader_sees_only_the_patrols_they_may_see(client, scene):
    ids, incident = scene
    sign_in(client, "manager")  # station LJ-S-GQ: team LJ-T-GQ, not Yingzi's team
    assert [r["patrol_id"] for r in listed(client, incident)] == [ids["gq"]]
    client.cookies.clear()
    sign_in(client, "admin")
    assert {r["patrol_id"] for r in listed(client, incident)} == {ids["gq"], ids["yz"]}


def test_a_place_nobody_walked_says_so(client, sessions, settings, scene):
    lon, lat = inside("LJ-AP-02")
    incident = report(sessions, settings, lon, lat)
    sign_in(client, "admin")
    assert listed(client, incident) == []
