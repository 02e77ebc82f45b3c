"""`mangrove analysis …` gives the API's answers on the command line, and its refusals with exit 2."""

import json

import pytest
from utils.analysis import GRID, MARCH, march_of_walks_and_reports
from utils.factories import add_users

from api.cli import main as cli


@pytest.fixture
def march(sessions, tmp_path):
    return march_of_walks_and_reports(sessions, tmp_path)


def run(*args) -> int:
    try:
        return cli(list(args))
    except SystemExit as exc:
        return exc.code


def test_rates_table_json_and_csv(configured, march, capsys, tmp_path):
    assert run("analysis", "rates", "--datetime", MARCH, "--grid", GRID) == 0
    out = capsys.readouterr().out
    assert "encounter rates" in out and GRID in out and "rubbish" in out
    assert run("analysis", "rates", "--datetime", MARCH, "--grid", GRID, "--json") == 0
    rows = json.loads(capsys.readouterr().out)["rates"]
    assert {r["category"] for r in rows} == {"all", "rubbish"}
    target = tmp_path / "rates.csv"
    assert run("analysis", "rates", "--datetime", MARCH, "--grid", GRID, "-o", str(target)) == 0
    assert target.read_text(encoding="utf-8-sig").splitlines()[0].startswith("grid,")


def test_hotspots_to_a_geojson_file_and_priorities(configured, march, capsys, tmp_path):
    target = tmp_path / "hot.geojson"
    assert run("analysis", "hotspots", "--datetime", MARCH, "--side", "GD-LJ", "-o", str(target)) == 0
    body = json.loads(target.read_text())
    assert body["type"] == "FeatureCollection" and body["incidents"] == 3
    assert run("analysis", "priorities", "--side", "GD-LJ", "--limit", "5") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 6 and "not patrolled" in lines[1]


@pytest.mark.parametrize(
    "args, says",
    [
        (("rates", "--datetime", "2026-03-31/2026-03-01"), "reversed"),
        (("hotspots", "--datetime", MARCH, "--cell-m", "0"), "cell"),
        (("rates", "--side", "GX-HP", "--as", "officer-lj"), "GD-LJ"),
        (("rates", "--as", "member"), "managers"),
        (("recurring", "--datetime", MARCH, "--min-months", "1"), "min_months"),
    ],
)
def test_refusals_exit_non_zero_with_a_message(configured, sessions, capsys, args, says):
    add_users(sessions, "officer-lj", "member")
    assert run("analysis", *args) != 0
    assert says in capsys.readouterr().err
