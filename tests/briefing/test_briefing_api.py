"""The briefing from the database, on both backends: the API as HTML and PDF, the command line,
visibility (nothing beyond what the JSON API shows the caller), refusals naming the parameter, and
a month without data. The month is last month (China time), so the data is always recent."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from utils.briefing import CHINA, GRID, first_instant, month_of, months_ago, pdf_pages_png, pdf_text, who
from utils.browser import ARTIFACTS
from utils.factories import auth

from api.cli import main as cli
from patrol.briefing.collect import collect_briefing, last_patrolled_before


def zh_month(month: str) -> str:
    return f"{month[:4]}年{int(month[5:])}月"


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def html_text(html: str) -> str:
    return squash(re.sub(r"<[^>]+>", " ", html))


def test_the_briefing_as_pdf_and_html_holds_the_month_grids_rates_and_changes(client, scene, tmp_path):
    month, _ = scene
    headers = auth(client, "officer-lj")
    pdf = client.get(f"/api/v1/briefings/{month}", params={"format": "pdf"}, headers=headers)
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF-")
    page = client.get(f"/api/v1/briefings/{month}", headers=headers)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "img-src data:" in page.headers["content-security-policy"]
    for where, text in (("pdf", squash(pdf_text(pdf.content, tmp_path))), ("html", html_text(page.text))):
        assert f"廉江市{zh_month(month)}红树林巡护工作简报" in text, where
        assert GRID in text and "LJ-AP-02" in text, where
        assert "巡护2次，比上月增加100%" in text, where  # two walks against one
        assert "报告事件2起" in text, where  # Lianjiang's two; Hepu's are not Lianjiang's
        assert "每10公里" in text and "巡护不足" in text, where  # the rates table, short effort flagged
        assert "本月未巡护" in text, where
    pdf_pages_png(pdf.content, ARTIFACTS / "briefing", "api-officer")


def test_an_officer_sees_nothing_of_the_other_side_beyond_the_json_api(client, scene, sessions, settings):
    month, ids = scene
    headers = auth(client, "officer-lj")
    listed = client.get("/api/v1/incidents", params={"limit": 1000}, headers=headers).json()
    api_ids = {f["id"] for f in listed["features"]}
    assert ids["hp_far"] not in api_ids and ids["hp_near"] in api_ids  # the incident list's rule
    with sessions() as session:
        officer = collect_briefing(session, who(session, "officer-lj"), settings, month=month)
        admin = collect_briefing(session, who(session, "admin"), settings, month=month)
    assert officer.notes == [] and admin.notes == []  # every section was made
    assert officer.priorities and officer.assessment and officer.rates
    assert set(officer.incidents["id"]) <= api_ids
    assert ids["hp_far"] not in set(officer.incidents["id"])
    assert ids["hp_far"] in set(admin.incidents["id"])  # it is there to be seen by those who may
    page = client.get(f"/api/v1/briefings/{month}", headers=headers).text
    assert "HP-SK-06" not in page and "HP-SK" not in html_text(page)
    whole = client.get(f"/api/v1/briefings/{month}", headers=auth(client, "admin")).text
    assert "HP-SK-06" in whole and "廉江市与合浦县" in whole


@pytest.mark.parametrize(
    "month",
    ["2026-13", "2026-11-05", "11-2026", "next", "2026-00", "9999-12", "0000-01", "２０２６-１１"],
)
def test_bad_months_are_refused_naming_the_month(client, scene, month):
    response = client.get(f"/api/v1/briefings/{month}", headers=auth(client, "officer-lj"))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "month" in response.json()["detail"]


def test_a_future_month_is_refused(client, scene):
    future = month_of(datetime.now(CHINA).date() + timedelta(days=40))
    response = client.get(f"/api/v1/briefings/{future}", headers=auth(client, "officer-lj"))
    assert response.status_code == 422 and "future" in response.json()["detail"]


@pytest.mark.parametrize(
    ("params", "status", "names"),
    [
        ({"side": "GX-HP"}, 403, "side"),
        ({"town": "SK"}, 403, "town"),
        ({"station": "HP-S-SK"}, 403, "station"),
        ({"town": "XX"}, 422, "town"),
        ({"side": "MARS"}, 422, "side"),
        ({"format": "docx"}, 422, "format"),
    ],
)
def test_scopes_the_user_may_not_see_and_bad_parameters_are_refused(client, scene, params, status, names):
    month, _ = scene
    response = client.get(f"/api/v1/briefings/{month}", params=params, headers=auth(client, "officer-lj"))
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert names in response.text


def test_patrol_members_and_strangers_get_no_briefing(client, scene):
    month, _ = scene
    assert client.get(f"/api/v1/briefings/{month}", headers=auth(client, "member")).status_code == 403
    assert client.get(f"/api/v1/briefings/{month}").status_code == 401


def test_a_station_and_a_town_briefing(client, scene, tmp_path):
    month, _ = scene
    station = client.get(
        f"/api/v1/briefings/{month}",
        params={"station": "LJ-S-GQ", "format": "pdf"},
        headers=auth(client, "manager"),
    )
    assert station.status_code == 200, station.text
    text = squash(pdf_text(station.content, tmp_path))
    assert f"高桥管理站{zh_month(month)}" in text and GRID in text and "LJ-AP-02" not in text
    town = client.get(f"/api/v1/briefings/{month}", params={"town": "AP"}, headers=auth(client, "officer-lj"))
    assert (
        town.status_code == 200
        and "安铺镇" in town.text
        and "LJ-AP-02" in town.text
        and GRID not in town.text
    )


def test_a_month_without_data_is_an_honest_valid_pdf(client, scene, tmp_path):
    empty = months_ago(5)
    response = client.get(
        f"/api/v1/briefings/{empty}", params={"format": "pdf"}, headers=auth(client, "officer-lj")
    )
    assert response.status_code == 200 and response.content.startswith(b"%PDF-")
    text = squash(pdf_text(response.content, tmp_path))
    assert f"廉江市{zh_month(empty)}红树林巡护工作简报" in text
    assert "本月无数据可展示" in text and "Nothingtoshow" in text
    pdf_pages_png(response.content, ARTIFACTS / "briefing", "api-empty")


def test_unpatrolled_grids_say_when_they_were_last_patrolled(scene, sessions):
    month, _ = scene
    before = months_ago(2)
    with sessions() as session:
        last = last_patrolled_before(session, [GRID, "LJ-AP-01"], first_instant(month))
    assert last == {GRID: f"{before}-04"}  # the walk on the 4th, 09:00 China time; LJ-AP-01 never


# --- the command line ---------------------------------------------------------------------------


def run(args):
    try:
        return cli(args)
    except SystemExit as exc:
        return exc.code


def test_the_command_writes_pdf_or_html_by_suffix(configured, scene, tmp_path, capsys):
    month, _ = scene
    pdf, html = tmp_path / "brief.pdf", tmp_path / "brief.html"
    assert run(["briefing", "--month", month, "--side", "GD-LJ", "-o", str(pdf)]) == 0
    assert pdf.read_bytes().startswith(b"%PDF-") and GRID in pdf_text(pdf.read_bytes(), tmp_path)
    assert run(["briefing", "--month", month, "--as", "officer-lj", "-o", str(html)]) == 0
    assert "HP-SK-06" not in html.read_text() and GRID in html.read_text()
    assert "brief.html" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--month", "2026-13"], "month"),
        (["--month", "2026-11-05"], "month"),
        (["--month", "LAST", "--as", "officer-lj", "--side", "GX-HP"], "side"),
        (["--month", "LAST", "--as", "member"], "analyses are for"),
        (["--month", "LAST", "--as", "nobody"], "unknown user"),
        (["--month", "LAST", "--town", "XX"], "town"),
    ],
)
def test_the_command_refuses_bad_input_with_a_message(configured, scene, tmp_path, capsys, args, says):
    month, _ = scene
    args = [month if a == "LAST" else a for a in args]
    out = tmp_path / "brief.pdf"
    assert run(["briefing", *args, "-o", str(out)]) != 0
    assert says in capsys.readouterr().err and not out.exists()


def test_the_command_refuses_an_unknown_format(configured, scene, tmp_path, capsys):
    month, _ = scene
    assert run(["briefing", "--month", month, "-o", str(tmp_path / "brief.docx")]) == 2
    assert ".pdf or .html" in capsys.readouterr().err


# --- the page -----------------------------------------------------------------------------------


def test_the_page_offers_the_briefing_to_managers_and_officers_only(client, scene, sessions):
    from utils.factories import sign_in

    month, _ = scene
    assert client.get("/briefing", follow_redirects=False).status_code == 303  # sign in first
    sign_in(client, "member")
    refused = client.get("/briefing")
    assert refused.status_code == 403 and "Not allowed" in refused.text
    assert "/briefing" not in client.get("/").text  # no link for patrol members
    sign_in(client, "officer-lj")
    assert 'href="/briefing"' in client.get("/").text
    form = client.get("/briefing")
    assert form.status_code == 200 and f'value="{month}"' in form.text  # last month by default
    assert "HP-S-SK" not in form.text and "LJ-S-GQ" in form.text  # only their side's stations
    answer = client.get("/briefing", params={"month": month, "town": "GQ"})
    assert f"/api/v1/briefings/{month}?town=GQ&amp;format=pdf" in answer.text
    bad = client.get("/briefing", params={"month": "2026-13"})
    assert bad.status_code == 422 and 'id="month-error"' in bad.text and "2026-13" in bad.text
    other = client.get("/briefing", params={"month": month, "station": "HP-S-SK"})
    assert other.status_code == 403 and "HP-S-SK" in other.text
    # the link works with the page's session (a GET: no CSRF token needed)
    assert client.get(f"/api/v1/briefings/{month}", params={"town": "GQ"}).status_code == 200


def test_a_failing_section_is_noted_and_the_rest_is_made(scene, sessions, settings, monkeypatch, caplog):
    from patrol.analysis import assessment, priorities
    from patrol.errors import InvalidRequest

    month, _ = scene

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    def refused(*args, **kwargs):
        raise InvalidRequest("month 2025-01 starts more than 400 days ago", field="month")

    monkeypatch.setattr(priorities, "priorities_report", broken)
    monkeypatch.setattr(assessment, "assessment", refused)
    with sessions() as session:
        b = collect_briefing(session, who(session, "officer-lj"), settings, month=month)
    assert b.rates and b.priorities == [] and not b.assessment
    assert any("Priorities" in n and "RuntimeError" in n for n in b.notes)
    assert any("Assessment" in n and "400 days" in n for n in b.notes)
    assert "boom" in caplog.text  # the unexpected failure is logged with its traceback
