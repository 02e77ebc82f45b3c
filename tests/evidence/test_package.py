"""The evidence package of a joint case: every file named in the manifest with its SHA-256; the
incidents those of the case (as its JSON detail lists them) in GeoJSON, CSV and KML; the photos the
very bytes the API serves; a map page that fetches nothing; a PDF summary that names the case and
its incidents. Participants (and admins) download it, each download audited; others are refused
with nothing recorded."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import subprocess
import zipfile
from html import escape as html_escape
from importlib.metadata import version
from pathlib import Path

import pyogrio
from utils.audit import entries_of, entry_count
from utils.mapdata import asset_references

from maps.assets import VENDORED, _inline_css, _inline_script

URL = re.compile(r"https?://", re.I)
PACKAGE_FILES = {"summary.html", "summary.pdf", "map.html", "incidents.geojson", "incidents.csv",
                 "incidents.kml", "actions.json", "actions.csv"}  # fmt: skip


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {name: z.read(name) for name in z.namelist()}


def test_every_file_is_in_the_manifest_with_its_size_and_sha256(downloaded):
    assert downloaded.status == 200
    assert downloaded.headers["content-type"] == "application/zip"
    disposition = downloaded.headers["content-disposition"]
    assert re.fullmatch(
        rf'attachment; filename="joint-case-{downloaded.case.id}-\d{{4}}-\d\d-\d\d\.zip"', disposition
    )
    files = members(downloaded.path)
    manifest = json.loads(files.pop("manifest.json"))
    listed = {entry["path"]: entry for entry in manifest["files"]}
    assert set(listed) == set(files) == PACKAGE_FILES | set(downloaded.photos)
    for name, data in files.items():
        assert listed[name]["size"] == len(data), name
        assert listed[name]["sha256"] == hashlib.sha256(data).hexdigest(), name
    assert manifest["case_id"] == downloaded.case.id and manifest["generated_by"] == "officer-hp"
    assert manifest["generated_at"].endswith("Z") and manifest["service_version"] == version(
        "mangrove-patrol"
    )
    assert manifest["missing_photos"] == []
    whole = hashlib.sha256(downloaded.path.read_bytes()).hexdigest()
    assert downloaded.headers["x-content-sha256"] == whole


def test_the_incidents_are_those_of_the_case_detail_in_geojson_csv_and_kml(downloaded):
    files = members(downloaded.path)
    expected = {i["id"]: i for i in downloaded.detail["incidents"]}
    assert sorted(expected) == sorted(downloaded.case.incidents)

    features = json.loads(files["incidents.geojson"])["features"]
    assert sorted(f["id"] for f in features) == sorted(expected)
    for feature in features:
        props = feature["properties"]
        assert {k: props[k] for k in ("id", "status", "side", "category", "grid")} == expected[feature["id"]]
        assert feature["geometry"]["coordinates"] == [round(props["lon"], 7), round(props["lat"], 7)]

    text = files["incidents.csv"].decode("utf-8")
    assert text.startswith("\ufeff")  # Excel opens the Chinese text as UTF-8
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    assert sorted(int(r["id"]) for r in rows) == sorted(expected)
    assert {r["side"] for r in rows} == {"GD-LJ", "GX-HP"}

    kml = pyogrio.read_dataframe(io.BytesIO(files["incidents.kml"]), driver="KML")
    assert sorted(int(i) for i in kml["incident_id"]) == sorted(expected)
    assert all(name.startswith("#") for name in kml["Name"])
    assert sorted(kml["description"]) == sorted(f["properties"]["description"] for f in features)
    assert (kml.geometry.x.round(5).tolist(), kml.geometry.y.round(5).tolist()) == (
        [round(f["properties"]["lon"], 5) for f in sorted(features, key=lambda f: f["id"])],
        [round(f["properties"]["lat"], 5) for f in sorted(features, key=lambda f: f["id"])],
    )


def test_the_action_log_is_the_cases_and_its_csv_runs_no_formula(downloaded):
    files = members(downloaded.path)
    assert json.loads(files["actions.json"]) == downloaded.detail["actions"]
    rows = list(csv.DictReader(io.StringIO(files["actions.csv"].decode("utf-8").removeprefix("\ufeff"))))
    assert [r["mechanism"] for r in rows] == ["monitoring", "enforcement"]
    assert rows[1]["note"] == "'=1+1 联合执法 joint patrol"  # shown as text, never run


def test_photos_are_the_bytes_the_api_serves(downloaded):
    files = members(downloaded.path)
    assert len(downloaded.photos) == 3
    for name, served in downloaded.photos.items():
        assert files[name] == served, name


def test_the_map_page_fetches_nothing_and_names_no_url_of_its_own(downloaded):
    html = members(downloaded.path)["map.html"].decode("utf-8")
    refs = asset_references(html)
    assert refs and all(r.startswith(("data:", "#")) for r in refs), refs  # all inline: nothing to fetch
    assert "<script src=" not in html and '<link rel="stylesheet"' not in html
    # Leaflet's own code names its website and the SVG namespace; take the vendored libraries
    # out, byte for byte, and nothing of the page may name a URL or the service's /static/.
    rest = html
    for relative in VENDORED.values():
        rest = rest.replace(
            _inline_script(relative) if relative.endswith(".js") else _inline_css(relative), ""
        )
    assert len(rest) < len(html) / 2
    assert not URL.search(rest), URL.search(rest)
    assert "/static/" not in rest
    assert "<effluent>" not in html  # the title, escaped
    assert "MangroveMaps.cases" in rest and f"#{downloaded.case.incidents[1]}" in rest


def test_the_summary_names_the_case_its_people_and_incidents_in_html_and_pdf(downloaded, tmp_path):
    files = members(downloaded.path)
    pdf = tmp_path / "summary.pdf"
    pdf.write_bytes(files["summary.pdf"])
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    html = files["summary.html"].decode("utf-8")
    assert "<effluent>" not in html and html_escape(downloaded.case.title) in html
    for page in (text, html):
        assert "英罗湾排污 Yingluo Bay" in page and f"#{downloaded.case.id}" in page
        for incident in downloaded.case.incidents:
            assert f"#{incident}" in page
        for who in ("officer-lj", "officer-hp"):
            assert who in page
        assert "联合执法 Joint law enforcement" in page and "广西" in page and "广东" in page
    assert not URL.search(html.replace('xmlns="http://www.w3.org/1999/xhtml"', ""))


# --- who may take it, and the trail ---------------------------------------------------------------


def test_participants_of_both_sides_and_admins_download_it_each_download_audited(client, sessions, case):
    from utils.factories import auth

    case.headers["admin"] = auth(client, "admin")
    before = entry_count(sessions)
    response = client.get(f"/api/v1/joint-cases/{case.id}/package", headers=case.headers["officer-lj"])
    assert response.status_code == 200
    assert entry_count(sessions) == before + 1
    [entry] = entries_of(sessions, "joint_case.package")
    assert (entry.actor, entry.channel, entry.object_type, entry.object_id) == (
        "officer-lj", "api", "joint_case", str(case.id),
    )  # fmt: skip
    assert entry.changes["sha256"] == [None, hashlib.sha256(response.content).hexdigest()]
    assert entry.changes["incidents"] == [None, sorted(case.incidents)]
    assert (
        client.get(f"/api/v1/joint-cases/{case.id}/package", headers=case.headers["admin"]).status_code == 200
    )
    assert [e.actor for e in entries_of(sessions, "joint_case.package")] == ["officer-lj", "admin"]


def test_who_takes_no_part_is_refused_and_nothing_is_recorded(client, sessions, case):
    """The rule of patrol/joint.py: who may not see joint cases gets 404 as for any case; a manager
    or officer who may see the case but takes no part gets 403."""
    before = entry_count(sessions)
    manager = client.get(f"/api/v1/joint-cases/{case.id}/package", headers=case.headers["manager"])
    assert manager.status_code == 403 and manager.headers["content-type"] == "application/problem+json"
    assert f"only participants of joint case {case.id}" in manager.json()["detail"]
    member = client.get(f"/api/v1/joint-cases/{case.id}/package", headers=case.headers["member"])
    assert member.status_code == 404
    unknown = client.get("/api/v1/joint-cases/999999/package", headers=case.headers["officer-lj"])
    assert unknown.status_code == 404
    assert client.get(f"/api/v1/joint-cases/{case.id}/package").status_code == 401
    assert entry_count(sessions) == before


def test_a_photo_missing_from_the_store_is_named_not_silently_dropped(client, sessions, settings, case):
    from sqlalchemy import select

    from patrol.models import IncidentPhoto

    with sessions() as session:
        lost = session.scalars(select(IncidentPhoto).order_by(IncidentPhoto.id)).first()
        (settings.photo_dir() / lost.path).unlink()
    response = client.get(f"/api/v1/joint-cases/{case.id}/package", headers=case.headers["officer-lj"])
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(response.content)) as z:
        manifest = json.loads(z.read("manifest.json"))
        summary = z.read("summary.html").decode("utf-8")
    name = f"photos/{lost.incident_id}-{lost.id}.jpg"
    assert manifest["missing_photos"] == [name]
    assert name not in {f["path"] for f in manifest["files"]} and len(manifest["files"]) == 8 + 2
    assert "missing from the photo store" in summary
