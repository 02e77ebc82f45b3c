"""The "ahead of complaints" desk page (/desk/ahead): next week's priorities, recurring places and
hot spots for managers, officers and admins; refusals shown beside the field they are about."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from utils.analysis import report
from utils.factories import add_users, sign_in
from utils.places import inside


@pytest.fixture
def recurring_dumping(sessions):
    """Rubbish dumped at the same spot of LJ-GQ-03 in each of the last four months."""
    add_users(sessions)
    lon, lat = inside("LJ-GQ-03")
    now = datetime.now(UTC)
    with sessions() as session:
        for months_ago in range(4):
            report(
                session, at=now - timedelta(days=30 * months_ago + 2), lonlat=(lon, lat + months_ago * 2e-4)
            )


def test_an_officer_sees_priorities_recurring_places_and_hot_spots(client, recurring_dumping):
    sign_in(client, "officer-lj")
    page = client.get("/desk/ahead", params={"days": "150"})
    assert page.status_code == 200, page.text
    text = page.text
    assert "下周巡护重点 Next week's patrol priorities" in text
    # Ten grids first (the rest behind "show all"), each with its score and reasons.
    assert len(re.findall(r'<li class="work">\s*<a href="/desk\?grid=', text)) == 10
    assert "显示全部 Show all (16 more)" in text
    # The four reports 22 m apart in four months make one recurring place.
    assert "4 个月 months" in text and "LJ-GQ-03" in text
    assert 'href="/maps/station?from=' in text
    everything = client.get("/desk/ahead", params={"days": "150", "all": "1"}).text
    assert len(re.findall(r'<li class="work">\s*<a href="/desk\?grid=', everything)) == 26


@pytest.mark.parametrize(
    "params, field, says",
    [
        ({"days": "3"}, "days", "7"),
        ({"days": "abc"}, "days", "whole number"),
        ({"town": "ZZ"}, "town", "unknown town"),
        ({"station": "HP-S-SK"}, "station", "outside the analysed side"),
    ],
)
def test_bad_choices_are_refused_beside_the_field(client, sessions, params, field, says):
    add_users(sessions, "officer-lj")
    sign_in(client, "officer-lj")
    page = client.get("/desk/ahead", params=params)
    assert page.status_code in (422, 403), page.text
    assert says in page.text
    assert re.search(rf'name="{field}"[^>]*aria-invalid="true"', page.text)


def test_patrol_members_are_not_shown_the_page(client, sessions):
    add_users(sessions, "member")
    sign_in(client, "member")
    assert client.get("/desk/ahead").status_code == 403
    assert client.get("/desk/ahead", follow_redirects=False).status_code == 403


def test_a_station_manager_opens_on_their_station(client, sessions):
    add_users(sessions, "manager")
    sign_in(client, "manager")
    page = client.get("/desk/ahead").text
    assert '<option value="LJ-S-GQ" selected>' in page
    assert "LJ-S-GQ " in page  # the scope of the numbers shown
    assert not re.search(r'<a href="/desk\?grid=LJ-(AP|CB|YZ|LD)-', page)
