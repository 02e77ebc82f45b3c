"""What one grid import may cost the service: it runs off the event loop (the service answers
meanwhile), a file with too many features is refused before they are read, a refusal lists a
bounded number of problems, and no message shows where the server keeps the uploaded file."""

import io
import json
import tempfile
import threading
import time
import zipfile

import geopandas as gpd
import httpx
import numpy as np
import pytest
import shapely
from utils.factories import add_users, auth
from utils.grids import grid_fingerprint
from utils.server import serving

from api.cli import main as cli
from geodata import reference
from geodata.crs import METRIC
from geodata.gridfile import MAX_LISTED_PROBLEMS
from patrol.settings import get_settings


def squares(count: int, *, size: float = 20.0, step: float = 40.0, bowtie: bool = False) -> gpd.GeoDataFrame:
    """``count`` small squares in a lattice over Lianjiang's grids (bow ties: invalid polygons)."""
    centre = reference.load_grids(side="GD-LJ").to_crs(METRIC).geometry.union_all().centroid
    side = int(np.ceil(np.sqrt(count)))
    x, y = (
        a.ravel()[:count]
        for a in np.meshgrid(centre.x + np.arange(side) * step, centre.y + np.arange(side) * step)
    )
    if bowtie:
        shapes = [
            shapely.Polygon([(a, b), (a + size, b + size), (a + size, b), (a, b + size)])
            for a, b in zip(x, y)
        ]
    else:
        shapes = shapely.box(x, y, x + size, y + size)
    codes = [f"SQ-{i:05d}" for i in range(count)]
    return gpd.GeoDataFrame({"code": codes}, geometry=shapes, crs=METRIC).to_crs("EPSG:4326")


def zipped_geojson(grids: gpd.GeoDataFrame) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("grids.geojson", grids.to_json())
    return buffer.getvalue()


def post_import(client_or_base, headers, name: str, content: bytes, **form):
    data = {"side": "GD-LJ"} | {k: str(v).lower() for k, v in form.items()}
    files = {"file": (name, content)}
    if isinstance(client_or_base, str):
        return httpx.post(
            f"{client_or_base}/api/v1/grids/import", files=files, data=data, headers=headers, timeout=120
        )
    return client_or_base.post("/api/v1/grids/import", files=files, data=data, headers=headers)


def test_the_service_answers_while_a_large_import_runs(app, sessions, client, tmp_path, monkeypatch):
    add_users(sessions, "admin")
    headers = auth(client, "admin")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # to see when the import has its file
    content = zipped_geojson(squares(5000))
    finished = {}

    def run_import():
        finished["response"] = post_import(base, headers, "survey.zip", content, dry_run=True)
        finished["at"] = time.monotonic()

    with serving(app) as base:
        importing = threading.Thread(target=run_import)
        importing.start()
        deadline = time.monotonic() + 60
        while not any(
            p.stat().st_size == len(content) for p in tmp_path.glob("mangrove-import-*/survey.zip")
        ):
            assert time.monotonic() < deadline and importing.is_alive(), "the upload never arrived"
            time.sleep(0.005)
        time.sleep(0.05)  # the upload is saved: the import is reading and validating it now
        health = httpx.get(f"{base}/api/v1/health", timeout=60)
        answered_at = time.monotonic()
        importing.join()
    assert health.status_code == 200
    assert finished["response"].status_code == 200, finished["response"].text
    assert finished["response"].json()["created"][:2] == ["SQ-00000", "SQ-00001"]
    assert answered_at < finished["at"]  # answered while the import was still running


@pytest.mark.parametrize("name", ["many.geojson", "many.zip"])
def test_a_file_with_more_features_than_allowed_is_refused_unread(
    client, sessions, settings, monkeypatch, name
):
    add_users(sessions, "admin")
    monkeypatch.setattr(settings.imports, "max_grid_features", 30)

    def encoded(grids):
        return zipped_geojson(grids) if name.endswith(".zip") else grids.to_json().encode()

    before = grid_fingerprint(sessions)
    refused = post_import(client, auth(client, "admin"), name, encoded(squares(31)))
    assert refused.status_code == 422, refused.text
    detail = refused.json()["detail"]
    assert (
        "31 features" in detail and "at most 30" in detail and "MANGROVE_IMPORT_MAX_GRID_FEATURES" in detail
    )
    assert grid_fingerprint(sessions) == before
    accepted = post_import(client, auth(client, "admin"), name, encoded(squares(30)), dry_run=True)
    assert accepted.status_code == 200, accepted.text


def test_a_refusal_lists_the_first_problems_and_counts_the_rest(client, sessions):
    add_users(sessions, "admin")
    before = grid_fingerprint(sessions)
    refused = post_import(
        client, auth(client, "admin"), "bowties.geojson", squares(150, bowtie=True).to_json().encode()
    )
    assert refused.status_code == 422
    problems = refused.json()["problems"]
    assert len(problems) == MAX_LISTED_PROBLEMS + 1
    assert all(p["kind"] == "invalid-geometry" for p in problems[:-1])
    assert problems[-1]["kind"] == "more-problems" and "50 more" in problems[-1]["message"]
    assert refused.json()["detail"].startswith("150 invalid polygon(s)")
    assert grid_fingerprint(sessions) == before


def test_a_file_of_copies_of_one_polygon_is_refused_without_counting_every_pair(client, sessions):
    """3,000 copies of one square are 4.5 million overlapping pairs: the search stops early."""
    add_users(sessions, "admin")
    grids = squares(1)
    copies = gpd.GeoDataFrame(
        {"code": [f"CP-{i:04d}" for i in range(3000)]}, geometry=[grids.geometry[0]] * 3000, crs=grids.crs
    )
    refused = post_import(client, auth(client, "admin"), "copies.zip", zipped_geojson(copies))
    assert refused.status_code == 422, refused.text
    assert "at least 10,000 pairs of grids overlap" in refused.json()["detail"]
    assert len(refused.json()["problems"]) == MAX_LISTED_PROBLEMS + 1


def _broken_files() -> dict[str, bytes]:
    def zipped(entries: dict[str, bytes]) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for member, data in entries.items():
                archive.writestr(member, data)
        return buffer.getvalue()

    return {
        "测量 grids.shp": b"\0" * 200,
        "测量 grids.zip": zipped({"grids.shp": b"\0" * 200, "grids.dbf": b"\0" * 20}),
        "测量 grids.kml": b"<kml><Document><Placemark>",
        "测量 grids.kmz": zipped({"doc.kml": b"<kml"}),
        "测量 grids.gpkg": b"SQLite format 3\0" + b"\0" * 100,
        "测量 grids.geojson": b'{"type": "FeatureCollection", "features": [',
        "测量 not-zip.zip": b"not a zip",
    }


def test_no_message_shows_where_the_server_keeps_the_upload(client, sessions, tmp_path, monkeypatch):
    add_users(sessions, "admin")
    headers = auth(client, "admin")
    server_tmp = tmp_path / "server-tmp"
    server_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(server_tmp))
    for name, content in _broken_files().items():
        refused = post_import(client, headers, name, content)
        assert refused.status_code in (415, 422), refused.text
        text = json.dumps(refused.json(), ensure_ascii=False)
        assert str(server_tmp) not in text and "mangrove-import-" not in text and "/vsizip/" not in text, text
        assert name in refused.json()["detail"], refused.json()["detail"]


def test_the_command_line_names_the_file_not_its_folder(settings, sessions, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MANGROVE_DATABASE_URL", settings.storage.resolved_database_url())
    monkeypatch.setenv("MANGROVE_DATA_DIR", str(settings.storage.data_dir))
    get_settings.cache_clear()
    folder = tmp_path / "deep" / "folder"
    folder.mkdir(parents=True)
    try:
        for name, content in _broken_files().items():
            path = folder / name
            path.write_bytes(content)
            assert cli(["grids", "import", str(path)]) == 2
            err = capsys.readouterr().err
            assert err.startswith("mangrove: error: ") and name in err and str(folder) not in err, err
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize("field, length", [("code", 33), ("name_zh", 129), ("name_en", 100_000)])
def test_attribute_values_longer_than_the_database_keeps_are_refused(client, sessions, field, length):
    """PostgreSQL refuses them (a 500 before); SQLite would have kept them whole."""
    add_users(sessions, "admin")
    grids = reference.load_grids(side="GD-LJ")[["code", "name_zh", "name_en", "town", "geometry"]].copy()
    grids.loc[3, field] = "网" * length
    before = grid_fingerprint(sessions)
    refused = post_import(client, auth(client, "admin"), "long.geojson", grids.to_json().encode())
    assert refused.status_code == 422, refused.text
    assert f"feature #4: its {field} has {length:,} characters" in refused.json()["detail"]
    assert grid_fingerprint(sessions) == before
