"""Reading a station's raster tile files: MBTiles (TMS rows flipped to XYZ) and PMTiles v3, one
interface, and clear refusals of what cannot be a raster basemap."""

from __future__ import annotations

import sqlite3
import threading

import pytest
from utils.tiles import (
    BOUNDS,
    colour,
    pixel,
    tile_image,
    vector_tile,
    write_mbtiles,
    write_pmtiles,
    xyz_tiles,
)

from geodata.tiles import WORLD, TileFileError, open_tiles


@pytest.fixture(params=["mbtiles", "pmtiles"])
def tile_file(request, tmp_path):
    if request.param == "mbtiles":
        return write_mbtiles(tmp_path / "station.mbtiles")
    return write_pmtiles(tmp_path / "station.pmtiles")


def test_metadata_of_both_kinds(tile_file):
    with open_tiles(tile_file) as source:
        meta = source.metadata
        assert source.kind == tile_file.suffix[1:]
        assert (meta.format, meta.minzoom, meta.maxzoom) == ("png", 1, 3)
        assert meta.bounds == pytest.approx(BOUNDS)
        assert meta.attribution == "© test tiles" and meta.name
        assert meta.content_type == "image/png"


def test_every_tile_is_the_one_drawn_for_its_xyz_position(tile_file):
    """Each tile has its own colour: a missed TMS flip (or x/y swap) would show another's."""
    with open_tiles(tile_file) as source:
        for z, x, y in xyz_tiles():
            data = source.tile(z, x, y)
            assert data is not None and pixel(data) == colour(z, x, y), (z, x, y)


def test_mbtiles_rows_are_stored_tms_and_read_xyz(tmp_path):
    path = write_mbtiles(tmp_path / "t.mbtiles", [(2, 1, 0)])  # XYZ row 0: the northernmost
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT tile_row FROM tiles").fetchall() == [(3,)]
    with open_tiles(path) as source:
        assert pixel(source.tile(2, 1, 0)) == colour(2, 1, 0)
        assert source.tile(2, 1, 3) is None


def test_missing_and_impossible_tiles_are_none(tile_file):
    with open_tiles(tile_file) as source:
        assert source.tile(5, 0, 0) is None  # a zoom the file does not hold
        assert source.tile(2, 4, 0) is None  # x beyond 2^z - 1
        assert source.tile(-1, 0, 0) is None and source.tile(31, 0, 0) is None


def test_a_sample_tile_is_checked_against_the_declared_format(tile_file):
    with open_tiles(tile_file) as source:
        (z, x, y), data = source.sample()
        assert pixel(data) == colour(z, x, y)


def test_reads_from_many_threads_at_once(tile_file):
    source = open_tiles(tile_file)
    wrong = []

    def read():
        for z, x, y in xyz_tiles() * 3:
            if pixel(source.tile(z, x, y)) != colour(z, x, y):
                wrong.append((z, x, y))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    source.close()
    assert wrong == []
    with pytest.raises(TileFileError, match="closed"):
        source.tile(1, 0, 0)


def test_jpeg_and_webp_tiles(tmp_path):
    jpg = write_mbtiles(tmp_path / "j.mbtiles", fmt="jpg")
    webp = write_pmtiles(
        tmp_path / "w.pmtiles", tile_type="WEBP", data=lambda z, x, y: tile_image(z, x, y, "WEBP")
    )
    for path, fmt, mime in ((jpg, "jpg", "image/jpeg"), (webp, "webp", "image/webp")):
        with open_tiles(path) as source:
            assert (source.metadata.format, source.metadata.content_type) == (fmt, mime)
            source.sample()


def test_mbtiles_without_metadata_reads_format_and_zooms_from_its_tiles(tmp_path):
    path = write_mbtiles(
        tmp_path / "old.mbtiles",
        metadata={k: None for k in ("format", "minzoom", "maxzoom", "bounds", "name", "attribution")},
    )
    with open_tiles(path) as source:
        meta = source.metadata
        assert (meta.format, meta.minzoom, meta.maxzoom, meta.bounds, meta.name) == (
            "png",
            1,
            3,
            WORLD,
            "old",
        )


# --- refusals ------------------------------------------------------------------------------------


def test_vector_tiles_are_refused_with_the_reason(tmp_path):
    vector_mb = write_mbtiles(tmp_path / "v.mbtiles", fmt="pbf", data=lambda z, x, y: vector_tile())
    vector_pm = write_pmtiles(tmp_path / "v.pmtiles", tile_type="MVT", data=lambda z, x, y: vector_tile())
    undeclared = write_mbtiles(
        tmp_path / "u.mbtiles", metadata={"format": None}, data=lambda z, x, y: vector_tile()
    )
    for path in (vector_mb, vector_pm, undeclared):
        with pytest.raises(TileFileError, match="vector tiles need a style renderer; give a raster"):
            open_tiles(path)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "neither an MBTiles nor a PMTiles file"),
        (b"<html>not tiles</html>", "neither an MBTiles nor a PMTiles file"),
        (b"PMTiles\x02" + b"\x00" * 200, "PMTiles version 2; only version 3"),
        (b"PMTiles\x03" + b"\x00" * 20, "not a usable PMTiles v3 file|damaged|cut short"),
        (b"SQLite format 3\x00" + b"\x00" * 200, "not a usable MBTiles file|cannot be opened"),
    ],
)
def test_files_that_are_not_tile_files_are_refused(tmp_path, content, words):
    path = tmp_path / "bad.mbtiles"
    path.write_bytes(content)
    with pytest.raises(TileFileError, match=words):
        open_tiles(path)


def test_a_truncated_pmtiles_file_is_refused(tmp_path):
    path = write_pmtiles(tmp_path / "cut.pmtiles")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(TileFileError):
        with open_tiles(path) as source:
            source.sample()


def test_sqlite_that_is_not_mbtiles_and_other_problems(tmp_path):
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE patrols (id INTEGER)")
    with pytest.raises(TileFileError, match="not MBTiles: it has no tiles table"):
        open_tiles(other)
    with pytest.raises(TileFileError, match="format 'avif' are not supported"):
        open_tiles(write_mbtiles(tmp_path / "a.mbtiles", metadata={"format": "avif"}))
    with pytest.raises(TileFileError, match="bounds"):
        open_tiles(write_mbtiles(tmp_path / "b.mbtiles", metadata={"bounds": "west,south"}))
    with pytest.raises(TileFileError, match="holds no tiles"):
        with open_tiles(
            write_mbtiles(tmp_path / "e.mbtiles", [], metadata={"minzoom": "1", "maxzoom": "2"})
        ) as s:
            s.sample()
    lying = write_mbtiles(tmp_path / "l.mbtiles", metadata={"format": "jpg"})  # PNG tiles inside
    with pytest.raises(TileFileError, match="says its tiles are JPG but tile .* is PNG"):
        with open_tiles(lying) as source:
            source.sample()
    with pytest.raises(TileFileError, match="no such file"):
        open_tiles(tmp_path / "nothing.pmtiles")
    with pytest.raises(TileFileError, match="is a folder"):
        open_tiles(tmp_path)
