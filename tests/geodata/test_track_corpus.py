"""Conformance: every real-world track in ``shared/corpus/tracks`` reads as GDAL reads it.

GDAL (through pyogrio) is the oracle. GPX: the ``track_points`` layer (``route_points`` for a file
with only a route) gives the number of fixes, their positions, elevations and times, and its
``track_fid``/``track_seg_id`` the segments. KML: GDAL here reads KML with its LIBKML driver, which
turns both ``LineString`` and ``gx:Track`` into line features; the fixes are the vertices of those
lines, over all layers. Four documented differences are bridged in the oracle, not hidden:

* a file with timed tracks (LIBKML fills ``begin`` for a ``gx:Track``) also holding untimed lines:
  GPS apps draw the same track twice, and we read only the timed one (warning "lines-ignored");
* an empty ``<gx:coord/>`` (a time with no position) becomes a vertex at 0, 0 in GDAL; we skip it;
* LIBKML does not read the KML 2.3 ``<Track>`` (no ``gx:`` prefix): the oracle then reads the same
  file with the elements renamed to ``gx:Track``/``gx:coord``;
* a device's "no time" placeholder (1901-12-13T20:45:52, the 32-bit Unix minimum; 1970-01-01T00:00:00;
  the GPS epoch 1980-01-06T00:00:00; any fraction of those seconds) is a time to GDAL and a missing
  time to us (``geodata.trackio.times.SENTINELS``): the oracle's placeholders become NaT.

The corpus lives outside the repository (its files carry their projects' licences): it is found at
``$MANGROVE_CORPUS_DIR/tracks``, else ``X/shared/corpus`` beside the checkout ``X/main``; where it is
missing the whole module is skipped and says so.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from geodata.errors import GeodataError
from geodata.trackfile import read_track
from geodata.trackio.times import SENTINELS

PLACEHOLDERS = pd.to_datetime([t[:-1] for t in SENTINELS])

CORPUS = (
    Path(os.environ["MANGROVE_CORPUS_DIR"]) if os.environ.get("MANGROVE_CORPUS_DIR")
    else Path(__file__).resolve().parents[3] / "shared" / "corpus"
) / "tracks"  # fmt: skip
FILES = sorted(p for p in CORPUS.glob("*") if p.suffix in (".gpx", ".kml")) if CORPUS.is_dir() else []

pytestmark = pytest.mark.skipif(
    not FILES, reason=f"track corpus not found at {CORPUS}: conformance against GDAL was NOT checked"
)


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyogrio warns about measured geometries, field types…
        return fn(*args, **kwargs)


def gdal_gpx(path: Path) -> dict | None:
    """GDAL's fixes for a GPX file: track points, else route points, else None."""
    for layer in ("track_points", "route_points"):
        if _quiet(pyogrio.read_info, path, layer=layer, force_feature_count=True)["features"]:
            df = _quiet(pyogrio.read_dataframe, path, layer=layer)
            fid = "track_fid" if layer == "track_points" else "route_fid"
            seg = (
                df[fid].astype(str)
                + "/"
                + (df["track_seg_id"].astype(str) if layer == "track_points" else "")
            )
            times = pd.to_datetime(df["time"], utc=True).astype("datetime64[ms, UTC]").dt.tz_localize(None)
            times = times.where(~times.dt.floor("s").isin(PLACEHOLDERS))
            return {
                "lon": shapely.get_x(df.geometry.values),
                "lat": shapely.get_y(df.geometry.values),
                "ele": df["ele"].to_numpy(dtype=float),
                "time": times.to_numpy(dtype="datetime64[ms]"),
                "segments": seg.nunique(),
            }
    return None


def gdal_kml(path: Path, tmp_path: Path) -> dict | None:
    """GDAL's fixes for a KML file: the vertices of its line features (see the module docstring)."""
    lines, timed = [], []
    for layer, _ in _quiet(pyogrio.list_layers, path):
        df = _quiet(pyogrio.read_dataframe, path, layer=layer)
        for geom, begin in zip(df.geometry, df["begin"]):
            if geom is not None and geom.geom_type in ("LineString", "MultiLineString"):
                lines.append(geom)
                if not pd.isna(begin):
                    timed.append(geom)
    if not lines and "<Track>" in path.read_text(encoding="utf-8"):
        return gdal_kml(_kml23_as_gx(path, tmp_path), tmp_path)
    if not lines:
        return None
    parts = [part for geom in (timed or lines) for part in shapely.get_parts(geom)]
    xyz = np.concatenate([shapely.get_coordinates(p, include_z=True) for p in parts])
    placeholder = (xyz[:, 0] == 0) & (xyz[:, 1] == 0)
    return {"lon": xyz[~placeholder, 0], "lat": xyz[~placeholder, 1], "segments": len(parts)}


def _kml23_as_gx(path: Path, tmp_path: Path) -> Path:
    text = re.sub(r"<(/?)(Track|coord)>", r"<\1gx:\2>", path.read_text(encoding="utf-8"))
    text = re.sub(r"<kml ", '<kml xmlns:gx="http://www.google.com/kml/ext/2.2" ', text, count=1)
    renamed = tmp_path / f"gx-{path.name}"
    renamed.write_text(text, encoding="utf-8")
    return renamed


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_corpus_file_reads_as_gdal_reads_it(path: Path, tmp_path: Path):
    oracle = gdal_gpx(path) if path.suffix == ".gpx" else gdal_kml(path, tmp_path)
    if oracle is None:
        # GDAL finds no track or route points: only waypoints or placemarks. We must refuse it.
        with pytest.raises(GeodataError) as refused:
            read_track(path)
        assert [p.kind for p in refused.value.problems] == ["no-track"]
        assert "no track in file" in refused.value.message
        return

    fixes = read_track(path)
    assert len(fixes) == len(oracle["lon"])
    np.testing.assert_allclose(fixes.lon, oracle["lon"], atol=1e-9)
    np.testing.assert_allclose(fixes.lat, oracle["lat"], atol=1e-9)
    assert len(np.unique(fixes.segment)) == oracle["segments"]
    if "ele" in oracle:
        np.testing.assert_allclose(fixes.ele, oracle["ele"], atol=1e-6, equal_nan=True)
        np.testing.assert_array_equal(fixes.time, oracle["time"])


def test_corpus_is_the_one_described():
    """The corpus README lists each file; a file added without a note should be noticed."""
    readme = (CORPUS / "README.md").read_text(encoding="utf-8")
    assert all(p.name in readme for p in FILES)
