"""The upload page as a patrol member reads it: a refused file is named once, Chinese first, beside
the file field, with the other entries kept and nothing stored; a stored patrol is shown in China
time to the minute, its grids in the order it entered them, with names instead of codes."""

import re

import pytest
from sqlalchemy import func, select
from utils.factories import add_users, sign_in
from utils.tracks import crossing, gpx

from patrol.models import Patrol

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf(client) -> str:
    return CSRF.search(client.get("/patrols/upload").text).group(1)


def error_text(html: str) -> str:
    return re.search(r'<p class="error" id="file-error" role="alert">(.*?)</p>', html, re.S).group(1)


@pytest.mark.parametrize(
    "name, body, status, lead",
    [
        ("walk.gpx", b"<gpx", 422, "无法读取此轨迹文件 This track file could not be read"),
        ("walk.txt", b"hello", 415, "不支持此文件格式 This file format is not supported"),
        ("walk.csv", b"a,b\n1,2\n", 422, "无法读取此轨迹文件 This track file could not be read"),
    ],
)
def test_a_refused_file_is_named_once_beside_the_field_with_the_entries_kept(
    client, sessions, name, body, status, lead
):
    add_users(sessions, "member")
    sign_in(client, "member")
    answer = client.post(
        "/patrols/upload",
        files={"file": (name, body)},
        data={"csrf_token": csrf(client), "transport": "boat", "datum": "gcj02", "notes": "涨潮 high tide"},
    )
    assert answer.status_code == status
    message = error_text(answer.text)
    assert message.startswith(lead + ": " + name)
    finding = message.split(": ", 2)[2]
    assert message.count(finding) == 1, message  # the reader's finding, not twice
    assert 'aria-describedby="file-error"' in answer.text
    assert (
        '<option value="boat" selected>' in answer.text and '<option value="gcj02" selected>' in answer.text
    )
    assert "涨潮 high tide</textarea>" in answer.text
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Patrol)) == 0


def test_the_stored_patrol_reads_in_china_time_with_names_and_grids_in_the_order_entered(client, sessions):
    add_users(sessions, "member")
    sign_in(client, "member")
    lon, lat, times, _ = crossing("LJ-GQ-03")
    done = client.post(
        "/patrols/upload",
        files={"file": ("walk.gpx", gpx(lon, lat, times))},
        data={"csrf_token": csrf(client)},
    )
    assert done.status_code == 200
    result = done.text.split("<h1>上传巡护轨迹")[0]
    # UTC instants with microseconds were shown before; now China time to the minute only.
    assert not re.search(r"\d{2}:\d{2}:\d{2}|\dT\d|\dZ\b", result)
    entered = [t.replace("<br>", " ") for t in re.findall(r'<td class="when">(.*?)</td>', result)]
    visited = [t for t in entered if t != "–"]
    assert visited and visited == sorted(visited) and entered[-1] == "–"  # outside grids last
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", t) for t in visited)
    assert "高桥镇党员护林先锋队" in result and "LJ-T-GQ" not in result
    assert "步行 On foot" in result and "foot ·" not in result
    assert 'class="table-scroll"' in result  # scrolls inside its card on a phone


def test_the_home_page_names_roles_in_words(client, sessions):
    add_users(sessions, "member", "officer-lj")
    sign_in(client, "member")
    page = client.get("/").text
    assert "巡护队员 Patrol member" in page and "patrol_member" not in page
    sign_in(client, "officer-lj")
    assert "执法人员 Enforcement officer" in client.get("/").text
