"""The readers' limits and hostile input: every refusal names the fix, line or feature and the
limit; device placeholders are missing times; nothing reaches an exception of Python's.

(The same classes of file go through the whole upload in ``tests/api/test_hostile_uploads.py``.)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from geodata.errors import GeodataError
from geodata.trackfile import read_track
from geodata.trackio import delimited, jsonstream
from geodata.trackio.times import SENTINELS

GPX_HEAD = (
    '<?xml version="1.0"?>\n<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>\n'
)
KML_HEAD = (
    '<kml xmlns="http://www.opengis.net/kml/2.2" xmlns:gx="http://www.google.com/kml/ext/2.2"><Document>'
)


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def gpx(times: list[str]) -> str:
    points = "".join(
        f'<trkpt lat="21.6" lon="{109.9 + i / 1e4}"><time>{t}</time></trkpt>\n' for i, t in enumerate(times)
    )
    return GPX_HEAD + points + "</trkseg></trk></gpx>\n"


def refused(path) -> GeodataError:
    with pytest.raises(GeodataError) as info:
        read_track(path)
    return info.value


# -- times -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stamp", "limit"),
    [
        ("10000-01-01T00:00:00Z", "after 2099"),
        ("0001-01-01T00:00:00Z", "before 1980-01-06"),
        ("1979-12-31T23:59:59+08:00", "before 1980-01-06"),
        ("2100-01-01T00:00:00Z", "after 2099"),
    ],
)
def test_a_time_outside_the_gps_era_is_refused_naming_the_fix_and_the_limit(tmp_path, stamp, limit):
    exc = refused(write(tmp_path, "t.gpx", gpx(["2026-03-02T00:00:00Z", stamp])))
    assert exc.problems[0].kind == "bad-time"
    assert f"fix 2 (line 4): the time {stamp!r} is {limit}" in exc.message


def test_the_first_and_last_accepted_times():
    from geodata.trackio.times import parse_times

    ms, _, _ = parse_times(["1980-01-06T00:00:01Z", "2099-12-31T23:59:59Z"])
    assert ms.view("datetime64[ms]").astype(str).tolist() == [
        "1980-01-06T00:00:01.000",
        "2099-12-31T23:59:59.000",
    ]


def test_year_one_in_a_csv_without_a_zone_is_refused(tmp_path):
    text = "time,lon,lat\n2026-03-02 08:00:00,109.9,21.6\n0001-01-01 00:00:00,109.9,21.6\n"
    exc = refused(write(tmp_path, "t.csv", text))
    assert "fix 2 (line 3): the time '0001-01-01 00:00:00' is before 1980-01-06" in exc.message


@pytest.mark.parametrize(("stamp", "digits"), [("17724114000000", 14), ("20260302", 8), ("177241140", 9)])
def test_a_number_that_is_neither_unix_seconds_nor_milliseconds_is_refused(tmp_path, stamp, digits):
    exc = refused(write(tmp_path, "t.csv", f"time,lon,lat\n{stamp},109.9,21.6\n"))
    assert f"is a number of {digits} digits: neither Unix seconds (10 digits) nor milliseconds" in exc.message


def test_unix_seconds_and_milliseconds_are_read(tmp_path):
    fixes = read_track(
        write(tmp_path, "t.csv", "time,lon,lat\n1772409600,109.9,21.6\n1772409601500,109.9,21.6\n")
    )
    assert fixes.time.astype(str).tolist() == ["2026-03-02T00:00:00.000", "2026-03-02T00:00:01.500"]


def test_device_placeholders_are_missing_times_with_a_warning(tmp_path):
    stamps = [
        "1901-12-13T20:45:52.2073437Z",
        "1970-01-01T00:00:00Z",
        "1980-01-06T00:00:00Z",
        "2026-03-02T00:00:00Z",
    ]
    fixes = read_track(write(tmp_path, "t.gpx", gpx(stamps)))
    assert np.isnat(fixes.time).tolist() == [True, True, True, False]
    warning = next(w for w in fixes.warnings if w.kind == "placeholder-time")
    assert warning.details["count"] == 3 and all(t in warning.message for t in SENTINELS)


def test_a_placeholder_written_as_china_time_in_a_csv_is_missing_too(tmp_path):
    text = "time,lon,lat\n1970-01-01 08:00:00,109.9,21.6\n2026-03-02 08:00:00,109.91,21.6\n"
    fixes = read_track(write(tmp_path, "t.csv", text))
    assert np.isnat(fixes.time).tolist() == [True, False]


def test_the_second_after_a_placeholder_is_a_time_and_so_refused(tmp_path):
    exc = refused(write(tmp_path, "t.gpx", gpx(["1970-01-01T00:00:01Z"])))
    assert "is before 1980-01-06" in exc.message


def test_a_huge_time_text_is_refused_in_a_short_message(tmp_path):
    exc = refused(write(tmp_path, "t.gpx", gpx(["2" * 1_000_000])))
    assert "longer than 64 characters" in exc.message and len(exc.message) < 300


# -- CSV -------------------------------------------------------------------------------------------


def test_a_csv_line_over_the_limit_is_refused_naming_the_line_and_the_limit(tmp_path):
    text = "time,lon,lat\n2026-03-02T00:00:00Z,109.9,21.6\n" + "9" * 100_000 + "\n"
    exc = refused(write(tmp_path, "t.csv", text))
    assert exc.problems[0].kind == "line-too-long"
    assert exc.problems[0].details == {"line": 3, "limit": delimited.MAX_LINE_CHARS, "file": "t.csv"}
    assert "line 3 is longer than 65,536 characters" in exc.message


def test_a_csv_line_of_exactly_the_limit_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(delimited, "MAX_LINE_CHARS", 40)
    row = "2026-03-02T00:00:00Z,109.9,21.6"
    row += "," * (40 - len(row) - 1) + "\n"  # 40 characters with its newline
    assert len(read_track(write(tmp_path, "t.csv", "time,lon,lat\n" + row))) == 1


@pytest.mark.parametrize("where", ["header", "row"])
def test_a_csv_with_too_many_columns_is_refused(tmp_path, where):
    header = "time,lon,lat" + ",x" * (1500 if where == "header" else 0)
    row = "2026-03-02T00:00:00Z,109.9,21.6" + ",1" * (1500 if where == "row" else 0)
    exc = refused(write(tmp_path, "t.csv", f"{header}\n{row}\n"))
    assert exc.problems[0].kind == "too-many-columns"
    assert f"line {1 if where == 'header' else 2} has" in exc.message and "at most 1,000" in exc.message


def test_an_unclosed_quote_is_refused_naming_its_line(tmp_path):
    rows = "".join(f"2026-03-02T00:00:{i % 60:02d}Z,109.9,21.6,{'x' * 1000}\n" for i in range(200))
    text = 'time,lon,lat,note\n2026-03-02T00:00:00Z,109.9,21.6,"never closed\n' + rows
    exc = refused(write(tmp_path, "t.csv", text))
    assert exc.problems[0].kind == "field-too-long" and "unclosed quote" in exc.message


# -- GeoJSON ---------------------------------------------------------------------------------------


def line_feature(**properties) -> dict:
    coords = [[109.9, 21.6], [109.91, 21.61]]
    return {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": coords},
        "properties": properties,
    }


def test_a_geojson_integer_of_thousands_of_digits_is_refused_naming_line_and_column(tmp_path):
    text = '{"type": "Feature",\n "properties": {"id": 1' + "0" * 5000 + '},\n "geometry": null}'
    exc = refused(write(tmp_path, "t.geojson", text))
    assert exc.problems[0].kind == "number-too-long"
    assert "the number at line 2, column 23 has 5,001 digits" in exc.message and "at most 40" in exc.message


def test_geojson_nested_100000_deep_is_refused(tmp_path):
    exc = refused(write(tmp_path, "t.geojson", "[" * 100_000 + "]" * 100_000))
    assert exc.problems[0].kind == "json-too-deep" and "line 1" in exc.message


def test_geojson_geometry_collections_nested_too_deep_are_refused(tmp_path):
    inner = json.dumps(line_feature()["geometry"])
    text = '{"type": "GeometryCollection", "geometries": [' * 20 + inner + "]}" * 20
    exc = refused(write(tmp_path, "t.geojson", text))
    assert exc.problems[0].kind == "geometry-too-deep" and "more than 8" in exc.message


def test_geojson_members_of_the_wrong_type_are_skipped_or_named(tmp_path):
    odd = line_feature()
    odd["properties"] = ["not", "an", "object"]
    doc = {"type": "FeatureCollection", "features": [7, "x", None, odd]}
    assert len(read_track(write(tmp_path, "odd.geojson", json.dumps(doc)))) == 2
    exc = refused(write(tmp_path, "f.geojson", json.dumps({"type": "FeatureCollection", "features": 5})))
    assert exc.problems[0].kind == "no-track"
    exc = refused(write(tmp_path, "c.geojson", json.dumps({"type": "MultiLineString", "coordinates": 7})))
    assert "feature 1: the coordinates are not a list of positions" in exc.message


def test_a_bad_point_does_not_matter_when_the_file_has_lines(tmp_path):
    point = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": "here"},
        "properties": {"time": "soon"},
    }
    doc = {"type": "FeatureCollection", "features": [point, line_feature()]}
    fixes = read_track(write(tmp_path, "t.geojson", json.dumps(doc)))
    assert len(fixes) == 2 and [w.kind for w in fixes.warnings] == ["points-ignored"]
    doc["features"] = [point]
    assert "fix 1 (feature 1): the position" in refused(write(tmp_path, "p.geojson", json.dumps(doc))).message


def test_geojson_errors_name_the_line_across_read_boundaries(tmp_path, monkeypatch):
    monkeypatch.setattr(jsonstream, "READ_BYTES", 5)
    text = '{"type": "FeatureCollection",\n "features": [\n' + json.dumps(line_feature()) + ",\n  ]}"
    exc = refused(write(tmp_path, "t.geojson", text))
    assert exc.problems[0].kind == "malformed-json" and "at line 4, column 3" in exc.message


def test_brackets_inside_strings_do_not_confuse_the_streaming(tmp_path, monkeypatch):
    monkeypatch.setattr(jsonstream, "READ_BYTES", 7)
    features = [line_feature(name="[[[{{{ walk", note=']]} \\" [') for _ in range(3)]
    fixes = read_track(
        write(tmp_path, "t.geojson", json.dumps({"type": "FeatureCollection", "features": features}))
    )
    assert len(fixes) == 6 and fixes.segment.tolist() == [0, 0, 1, 1, 2, 2]


def test_geojson_trailing_data_is_refused(tmp_path):
    exc = refused(write(tmp_path, "t.geojson", json.dumps(line_feature()) + " {}"))
    assert "Extra data" in exc.message


def test_warnings_of_one_kind_are_counted_after_five(tmp_path):
    features = [line_feature(coordTimes=["2026-03-02T00:00:00Z"]) for _ in range(12)]
    fixes = read_track(
        write(tmp_path, "t.geojson", json.dumps({"type": "FeatureCollection", "features": features}))
    )
    assert [w.kind for w in fixes.warnings] == ["times-ignored"] * 6
    assert fixes.warnings[-1].message == "… and 7 more warnings like these"


# -- KML and XML -----------------------------------------------------------------------------------


def test_kml_coords_outside_any_track_are_read_as_one(tmp_path):
    coords = "".join(f"<gx:coord>{109.9 + i / 1e4} 21.6 0</gx:coord>" for i in range(3))
    fixes = read_track(
        write(tmp_path, "t.kml", f"{KML_HEAD}<Placemark>{coords}</Placemark></Document></kml>")
    )
    assert len(fixes) == 3 and np.isnat(fixes.time).all()


def test_xml_nested_too_deep_is_refused_naming_the_limit(tmp_path):
    text = GPX_HEAD.replace("<trk>", "<extensions>" + "<a>" * 300 + "</a>" * 300 + "</extensions><trk>")
    exc = refused(write(tmp_path, "t.gpx", text + "</trkseg></trk></gpx>"))
    assert exc.problems[0].kind == "xml-limit" and "nested more than 256 deep" in exc.message


def test_a_file_name_in_a_message_is_short_and_printable(tmp_path):
    path = write(tmp_path, "t.gpx", "")
    with pytest.raises(GeodataError) as info:
        read_track(path, filename="\x00\x1b[31m" + "红" * 500 + ".gpx")
    shown = info.value.problems[0].details["file"]
    assert len(shown) == 80 and shown.startswith("??[31m红") and info.value.message.startswith(shown)


def test_a_tag_of_a_million_attributes_is_refused_before_the_parser_holds_it(tmp_path):
    attributes = " ".join(f'a{i}="1"' for i in range(20_000))
    text = GPX_HEAD + f'<trkpt lat="21.6" lon="109.9"\n {attributes}/>' + "</trkseg></trk></gpx>"
    exc = refused(write(tmp_path, "t.gpx", text))
    assert exc.problems[0].kind == "xml-limit"
    assert "the tag starting on line 3 is longer than 65,536 bytes" in exc.message


def test_long_comments_and_cdata_are_not_tags(tmp_path):
    long_text = "x" * 100_000
    body = f'<!-- {long_text} --><trkpt lat="21.6" lon="109.9"><desc><![CDATA[{long_text}]]></desc></trkpt>'
    assert len(read_track(write(tmp_path, "t.gpx", GPX_HEAD + body + "</trkseg></trk></gpx>"))) == 1
