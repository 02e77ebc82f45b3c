"""Naming the members of an uploaded patrol must not tell a signed-in user which accounts exist:
every name outside the teams they upload for gets one and the same answer."""

import pytest
from utils.factories import add_users, auth
from utils.tracks import crossing, gpx

OUTSIDE = {
    "nobody-at-all": "does not exist",
    "officer-lj": "exists, is no patrol member",
    "member-yz": "a patrol member of another team of the same side",
    "member-hp": "a patrol member of the other side",
    "No Such Name!": "cannot exist",
}


@pytest.fixture
def track():
    lon, lat, times, _ = crossing("LJ-GQ-03")
    return gpx(lon, lat, times)


def _upload(client, headers, track, members):
    return client.post(
        "/api/v1/patrols", files={"file": ("t.gpx", track)}, data={"members": members}, headers=headers
    )


@pytest.mark.parametrize("uploader, own", [("member", ["member"]), ("manager", [])])
def test_names_outside_the_callers_teams_all_get_the_same_answer(client, sessions, track, uploader, own):
    add_users(sessions, "member", "member-2", "member-yz", "member-hp", "manager", "officer-lj")
    headers = auth(client, uploader)
    answers = {}
    for name in OUTSIDE:
        response = _upload(client, headers, track, [*own, name])
        answers[name] = (response.status_code, response.json()["detail"].replace(name, "NAME"))
    assert len(set(answers.values())) == 1, answers
    status, detail = answers["nobody-at-all"]
    assert status == 403 and "teams you upload for" in detail
    # Names the caller may know still get their own answer.
    assert _upload(client, headers, track, [*own, "member-2"]).status_code == 201


def test_an_admin_is_told_what_is_wrong_with_each_name(client, sessions, track):
    add_users(sessions, "admin", "officer-lj")
    headers = auth(client, "admin")
    assert "unknown member" in _upload(client, headers, track, ["nobody-at-all"]).json()["detail"]
    assert "not patrol members" in _upload(client, headers, track, ["officer-lj"]).json()["detail"]
