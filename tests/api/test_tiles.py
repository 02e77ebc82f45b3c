"""A station's offline basemap: `mangrove tiles add|list|remove` (checked, atomic, audited), the
tiles served at /tiles/NAME/{z}/{x}/{y} (content type, ETag, 304, 404s) and listed at
/api/v1/tiles, and the maps offering each set as basemap local:NAME."""

from __future__ import annotations

import os
import re

import pytest
from utils.audit import entries_of, entry_count
from utils.factories import add_users, sign_in
from utils.tiles import colour, pixel, vector_tile, write_mbtiles, write_pmtiles

from api.cli import main as cli
from patrol.settings import get_settings


@pytest.fixture
def tile_dir(settings, monkeypatch, tmp_path):
    """A tile folder of this test's own, for the app (its settings) and the command line."""
    folder = tmp_path / "tiles"
    monkeypatch.setattr(settings.maps, "tile_dir", folder)
    monkeypatch.setenv("MANGROVE_MAP_TILE_DIR", str(folder))
    monkeypatch.setenv("MANGROVE_DATABASE_URL", settings.storage.resolved_database_url())
    monkeypatch.setenv("MANGROVE_DATA_DIR", str(settings.storage.data_dir))
    get_settings.cache_clear()
    yield folder
    get_settings.cache_clear()


@pytest.fixture
def files(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    return {
        "mbtiles": write_mbtiles(source / "lianjiang.mbtiles"),
        "pmtiles": write_pmtiles(source / "hepu.pmtiles"),
    }


def run(args) -> int:
    try:
        return cli(args)
    except SystemExit as exc:
        return exc.code


# --- the command line -------------------------------------------------------------------------------


def test_add_list_and_remove(tile_dir, files, sessions, capsys):
    assert run(["tiles", "add", str(files["mbtiles"])]) == 0
    assert "local:lianjiang" in capsys.readouterr().out
    assert run(["tiles", "add", str(files["pmtiles"]), "--name", "hepu-2024", "--link"]) == 0
    assert (tile_dir / "lianjiang.mbtiles").is_file() and not (tile_dir / "lianjiang.mbtiles").is_symlink()
    assert (tile_dir / "hepu-2024.pmtiles").resolve() == files["pmtiles"].resolve()
    assert (tile_dir / "lianjiang.mbtiles").read_bytes() == files["mbtiles"].read_bytes()
    assert [p.name for p in tile_dir.iterdir() if p.name.startswith(".")] == []  # no temporary left
    capsys.readouterr()
    assert run(["tiles", "list"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"hepu-2024 +pmtiles png +z1–3", out) and re.search(r"lianjiang +mbtiles png", out)
    assert "2 tile set(s)" in out
    assert [e.object_id for e in entries_of(sessions, "tileset.add")] == ["lianjiang", "hepu-2024"]

    assert run(["tiles", "remove", "hepu-2024"]) == 0
    assert not (tile_dir / "hepu-2024.pmtiles").exists() and files["pmtiles"].exists()  # the link only
    [entry] = entries_of(sessions, "tileset.remove")
    assert entry.object_id == "hepu-2024" and entry.channel == "cli"


def _text(tmp_path, name, content: bytes):
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda t, f: ["tiles", "add", _text(t, "notes.mbtiles", b"field notes")], "neither an MBTiles nor a PMTiles"),
        (
            lambda t, f: ["tiles", "add", str(write_mbtiles(t / "v.mbtiles", fmt="pbf", data=lambda z, x, y: vector_tile()))],
            "vector tiles need a style renderer; give a raster (PNG, JPEG or WebP) tile file",
        ),
        (
            lambda t, f: ["tiles", "add", str(write_pmtiles(t / "v.pmtiles", tile_type="MVT", data=lambda z, x, y: vector_tile()))],
            "vector tiles need a style renderer",
        ),
        (lambda t, f: ["tiles", "add", str(f["mbtiles"]), "--name", "Bad Name!"], "bad tile set name 'Bad Name!'"),
        (lambda t, f: ["tiles", "add", str(f["mbtiles"]), "--name", "x" * 41], "bad tile set name"),
        (lambda t, f: ["tiles", "add", str(f["mbtiles"]), "--name", "../up"], "bad tile set name"),
        (lambda t, f: ["tiles", "add", str(t / "missing.mbtiles")], "no such file"),
        (lambda t, f: ["tiles", "remove", "nothing-here"], "no tile set 'nothing-here'"),
        (lambda t, f: ["tiles", "remove", "BAD/NAME"], "bad tile set name"),
    ],
)  # fmt: skip
def test_refusals_write_nothing(tile_dir, files, sessions, tmp_path, capsys, make, words):
    before = entry_count(sessions)
    assert run(make(tmp_path, files)) == 2
    assert words in capsys.readouterr().err
    assert entry_count(sessions) == before
    assert not tile_dir.exists() or list(tile_dir.iterdir()) == []


def test_an_existing_name_is_refused_unless_replaced(tile_dir, files, sessions, capsys):
    assert run(["tiles", "add", str(files["mbtiles"]), "--name", "station"]) == 0
    before = entry_count(sessions)
    assert run(["tiles", "add", str(files["pmtiles"]), "--name", "station"]) == 2
    assert "exists already: give --replace" in capsys.readouterr().err
    assert entry_count(sessions) == before and sorted(p.name for p in tile_dir.iterdir()) == [
        "station.mbtiles"
    ]
    assert run(["tiles", "add", str(files["pmtiles"]), "--name", "station", "--replace"]) == 0
    assert sorted(p.name for p in tile_dir.iterdir()) == ["station.pmtiles"]  # the other kind is gone
    assert entries_of(sessions, "tileset.add")[-1].changes["replaced"] == [None, "station.mbtiles"]


def test_a_failed_commit_leaves_no_file(tile_dir, files, sessions, monkeypatch, capsys):
    from patrol import audit

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(audit, "record", broken)
    assert run(["tiles", "add", str(files["mbtiles"])]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert list(tile_dir.iterdir()) == []


# --- serving ------------------------------------------------------------------------------------------


@pytest.fixture
def served(tile_dir, files, client):
    assert run(["tiles", "add", str(files["mbtiles"])]) == 0
    assert run(["tiles", "add", str(files["pmtiles"])]) == 0
    return client


def test_the_list_of_tile_sets_is_public(served):
    response = served.get("/api/v1/tiles")
    assert response.status_code == 200
    sets = {t["name"]: t for t in response.json()["tilesets"]}
    assert set(sets) == {"hepu", "lianjiang"}
    assert sets["hepu"]["tiles"] == "/tiles/hepu/{z}/{x}/{y}"
    assert {k: sets["lianjiang"][k] for k in ("format", "minzoom", "maxzoom", "attribution")} == {
        "format": "png", "minzoom": 1, "maxzoom": 3, "attribution": "© test tiles",
    }  # fmt: skip
    assert sets["lianjiang"]["bounds"] == pytest.approx([109.6, 21.3, 110.2, 21.8])


@pytest.mark.parametrize("name", ["lianjiang", "hepu"])
def test_a_tile_with_its_type_cache_headers_and_etag(served, name):
    response = served.get(f"/tiles/{name}/3/6/3")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["cache-control"] == "public, max-age=86400"
    assert pixel(response.content) == colour(3, 6, 3)
    etag = response.headers["etag"]
    again = served.get(f"/tiles/{name}/3/6/3", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert served.get(f"/tiles/{name}/3/6/3", headers={"If-None-Match": f"W/{etag}"}).status_code == 304
    other = served.get(f"/tiles/{name}/3/6/4", headers={"If-None-Match": etag})
    assert other.status_code == 200 and other.headers["etag"] != etag


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/tiles/nowhere/1/0/0", 404, "no tile set 'nowhere'"),
        ("/tiles/lianjiang/5/0/0", 404, "has zoom levels 1–3, not 5"),
        ("/tiles/lianjiang/1/2/0", 422, "x and y run from 0 to 2^z − 1"),
        ("/tiles/lianjiang/31/0/0", 422, "path.z"),
        ("/tiles/lianjiang/1/-1/0", 422, "path.x"),
        ("/tiles/lianjiang/1/0/north", 422, "path.y"),
        ("/tiles/..%2Fsecret/1/0/0", 404, "Not Found"),  # no route: the path has more parts
        ("/tiles/.adding-x/1/0/0", 404, "no tile set"),
    ],
)
def test_tiles_that_do_not_exist(served, path, status, words):
    response = served.get(path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert words in response.json()["detail"]


def test_a_tile_missing_inside_the_zoom_range_is_404(tile_dir, client, tmp_path):
    write_mbtiles(tmp_path / "sparse.mbtiles", [(1, 0, 0), (2, 1, 1)])
    assert run(["tiles", "add", str(tmp_path / "sparse.mbtiles")]) == 0
    assert client.get("/tiles/sparse/2/1/1").status_code == 200
    response = client.get("/tiles/sparse/2/0/0")
    assert response.status_code == 404 and "has no tile 2/0/0" in response.json()["detail"]


def test_a_replaced_or_removed_set_is_never_served_stale(tile_dir, client, tmp_path):
    first = write_mbtiles(tmp_path / "a.mbtiles", [(1, 0, 0)])
    second = write_pmtiles(tmp_path / "b.pmtiles", [(1, 0, 0)], data=lambda z, x, y: write_tile_of(200))
    assert run(["tiles", "add", str(first), "--name", "base"]) == 0
    assert pixel(client.get("/tiles/base/1/0/0").content) == colour(1, 0, 0)
    assert run(["tiles", "add", str(second), "--name", "base", "--replace"]) == 0
    assert pixel(client.get("/tiles/base/1/0/0").content) == (200, 0, 0)
    # Changed in place behind the service's back (same name, same kind): opened afresh too.
    write_mbtiles(tmp_path / "c.mbtiles", [(1, 0, 0)], data=lambda z, x, y: write_tile_of(90))
    target = tile_dir / "base.pmtiles"
    os.unlink(target)
    write_pmtiles(target, [(1, 0, 0)], data=lambda z, x, y: write_tile_of(90))
    assert pixel(client.get("/tiles/base/1/0/0").content) == (90, 0, 0)
    assert run(["tiles", "remove", "base"]) == 0
    assert client.get("/tiles/base/1/0/0").status_code == 404
    assert client.get("/api/v1/tiles").json() == {"tilesets": []}


def write_tile_of(red: int) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (red, 0, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_damaged_file_in_the_folder_is_left_out_of_the_list_and_named_by_tiles_list(
    tile_dir, served, capsys
):
    (tile_dir / "broken.mbtiles").write_bytes(b"not a database at all")
    assert {t["name"] for t in served.get("/api/v1/tiles").json()["tilesets"]} == {"hepu", "lianjiang"}
    response = served.get("/tiles/broken/1/0/0")
    assert response.status_code == 422 and "neither an MBTiles nor a PMTiles" in response.json()["detail"]
    capsys.readouterr()
    assert run(["tiles", "list"]) == 0
    assert re.search(r"broken +NOT SERVED: broken.mbtiles is neither", capsys.readouterr().out)


# --- maps -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/maps/station", "/maps/joint"])
def test_a_map_page_offers_and_draws_a_local_basemap(served, sessions, path):
    add_users(sessions, "admin")
    sign_in(served, "admin")
    page = served.get(path)
    assert page.status_code == 200, page.text
    assert "value='local:lianjiang'" in page.text and "本站底图 hepu (local)" in page.text
    response = served.get(f"{path}?basemap=local:lianjiang")
    assert response.status_code == 200, response.text
    html = response.text
    assert '"/tiles/lianjiang/{z}/{x}/{y}"' in html
    assert "value='local:lianjiang' selected" in html
    assert not re.search(r"https?://", html)  # nothing from outside the service
    policy = response.headers["content-security-policy"]
    assert "img-src 'self' data:;" in policy
    assert '"maxNativeZoom": 3' in html and '"minZoom": 1' in html


def test_an_unknown_local_basemap_is_the_same_clear_refusal_as_an_unknown_basemap(served, sessions):
    add_users(sessions, "admin")
    sign_in(served, "admin")
    for name in ("local:nowhere", "local:BAD NAME", "google"):
        response = served.get(f"/maps/station?basemap={name}")
        assert response.status_code == 422 and "unknown basemap" in response.text, name


def test_an_exported_map_with_a_local_basemap_needs_the_service_address(served, tmp_path, capsys):
    out = tmp_path / "map.html"
    assert run(["maps", "joint", "-o", str(out), "--basemap", "local:hepu"]) == 2
    assert "give --link-base with its address" in capsys.readouterr().err and not out.exists()
    assert (
        run(
            [
                "maps",
                "joint",
                "-o",
                str(out),
                "--basemap",
                "local:nope",
                "--link-base",
                "https://st.local:8443",
            ]
        )
        == 2
    )
    assert "unknown basemap 'local:nope'" in capsys.readouterr().err
    assert (
        run(
            [
                "maps",
                "joint",
                "-o",
                str(out),
                "--basemap",
                "local:hepu",
                "--link-base",
                "https://st.local:8443/",
            ]
        )
        == 0
    )
    assert '"https://st.local:8443/tiles/hepu/{z}/{x}/{y}"' in out.read_text()


def test_the_default_basemap_may_be_a_local_set(monkeypatch):
    from patrol.settings import MapSettings

    monkeypatch.setenv("MANGROVE_MAP_DEFAULT_BASEMAP", "local:lianjiang")
    assert MapSettings().default_basemap == "local:lianjiang"
    monkeypatch.setenv("MANGROVE_MAP_DEFAULT_BASEMAP", "local:No Good")
    with pytest.raises(ValueError, match="or local:NAME"):
        MapSettings()
