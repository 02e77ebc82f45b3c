"""Text people write is shown as text: the incident page, my incidents and the report summary
escape it, and CSV exports (API and command line) neutralise cells a spreadsheet would run as
formulas while numbers stay numbers."""

import csv
import io

import pytest
from utils.factories import add_users, auth, sign_in
from utils.places import inside
from utils.tracks import crossing, gpx

from api.cli import main as cli
from patrol import csvsafe
from patrol.settings import get_settings

GQ03 = inside("LJ-GQ-03")
LABEL = "<!--<script>"
SCRIPT = "</script><script>alert(1)</script>"
FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+1+2", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+86 123", "'+86 123"),
        ("-cmd|' /C calc'!A0", "'-cmd|' /C calc'!A0"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-0.5", "-0.5"),  # a number written as text stays a number
        ("+3", "+3"),
        ("-1.5e3", "-1.5e3"),
        (-21.5, -21.5),
        (None, None),
        ("红树 = mangrove", "红树 = mangrove"),
        ("", ""),
    ],
)
def test_a_cell_a_spreadsheet_would_run_is_neutralised(value, written):
    assert csvsafe.cell(value) == written


def hostile_incidents(client, sessions) -> dict[str, str]:
    add_users(sessions, "admin", "member")
    admin, member = auth(client, "admin"), auth(client, "member")
    category = {"code": "hostile", "label_zh": LABEL, "label_en": SCRIPT}
    assert client.post("/api/v1/incident-categories", json=category, headers=admin).status_code == 201
    ids = {}
    for description in [SCRIPT, *FORMULAS]:
        body = {"category": "hostile", "lon": GQ03[0], "lat": GQ03[1], "description": description}
        response = client.post("/api/v1/incidents", json=body, headers=member)
        assert response.status_code == 201, response.text
        ids[description] = response.json()["id"]
    return ids


def test_the_incident_pages_show_hostile_text_as_text(client, sessions):
    ids = hostile_incidents(client, sessions)
    sign_in(client, "member")
    pages = [
        f"/incidents/{ids[SCRIPT]}",
        "/incidents/mine",
        f"/incidents/report?reported={ids[SCRIPT]}",  # the summary after reporting
        "/incidents/report",  # the category list
    ]
    for path in pages:
        html = client.get(path).text
        assert LABEL not in html and SCRIPT not in html, path
        assert "&lt;!--&lt;script&gt;" in html, path
    assert (
        "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in client.get(f"/incidents/{ids[SCRIPT]}").text
    )


def test_the_incident_csv_neutralises_formulas_and_keeps_numbers(client, sessions):
    ids = hostile_incidents(client, sessions)
    response = client.get("/api/v1/incidents?f=csv&sort=id", headers=auth(client, "member"))
    rows = list(csv.DictReader(io.StringIO(response.text.lstrip("\ufeff"))))
    written = {int(r["id"]): r["description"] for r in rows}
    for formula in FORMULAS:
        assert written[ids[formula]] == "'" + formula.strip()  # descriptions are stored stripped
    assert written[ids[SCRIPT]] == SCRIPT  # not a formula: as written
    assert all(float(r["lon"]) == pytest.approx(GQ03[0]) and float(r["border_distance_m"]) > 0 for r in rows)


def test_the_fixes_csv_keeps_negative_numbers_as_numbers(client, sessions):
    add_users(sessions, "member")
    member = auth(client, "member")
    lon, lat, times, _ = crossing("LJ-GQ-03")
    track = gpx(lon, lat, times).replace(b"<time>", b"<ele>-3.5</ele><time>")
    uploaded = client.post("/api/v1/patrols", files={"file": ("walk.gpx", track)}, headers=member)
    assert uploaded.status_code == 201, uploaded.text
    text = client.get(f"/api/v1/patrols/{uploaded.json()['id']}/fixes", headers=member).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["ele"] == "-3.5"  # a negative number, not "'-3.5"
    assert not [r for r in rows if any(v.startswith("'") for v in r.values())]


def test_the_command_lines_csv_neutralises_formulas(client, sessions, settings, monkeypatch, capsys):
    ids = hostile_incidents(client, sessions)
    monkeypatch.setenv("MANGROVE_DATABASE_URL", settings.storage.resolved_database_url())
    monkeypatch.setenv("MANGROVE_DATA_DIR", str(settings.storage.data_dir))
    get_settings.cache_clear()
    try:
        capsys.readouterr()
        assert cli(["incidents", "list", "--as", "admin", "--csv", "--limit", "50"]) == 0
    finally:
        get_settings.cache_clear()
    rows = {int(r["id"]): r for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert rows[ids["@SUM(A1)"]]["description"] == "'@SUM(A1)"
    assert rows[ids["-2+3"]]["description"] == "'-2+3"
