"""``geodata.trackfile.read_track``: every format, every refusal, and the streaming promises.

Files are written in ``tmp_path``; positions are in Lianjiang (lon ≈ 109.9, lat ≈ 21.6) unless
a test is about coordinates elsewhere.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from geodata.errors import GeodataError, InputError, UnsupportedFormat
from geodata.trackfile import TRACK_FORMATS, NaiveTimes, read_track
from geodata.trackio import jsonstream
from geodata.trackio import kml as kml_reader

GPX11 = "http://www.topografix.com/GPX/1/1"
GPX10 = "http://www.topografix.com/GPX/1/0"
KML22 = "http://www.opengis.net/kml/2.2"
GX = "http://www.google.com/kml/ext/2.2"


def ms(text: str) -> np.datetime64:
    return np.datetime64(text, "ms")


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def gpx(body: str, *, ns: str | None = GPX11, version: str = "1.1") -> str:
    xmlns = f' xmlns="{ns}"' if ns else ""
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<gpx version="{version}" creator="t"{xmlns}>\n{body}\n</gpx>\n'


def trkpt(lon: float, lat: float, when: str | None = None, ele: float | None = None) -> str:
    inner = (f"<ele>{ele}</ele>" if ele is not None else "") + (f"<time>{when}</time>" if when else "")
    return f'<trkpt lat="{lat}" lon="{lon}">{inner}</trkpt>'


def refused(path, **kwargs) -> GeodataError:
    with pytest.raises(GeodataError) as info:
        read_track(path, **kwargs)
    return info.value


def kinds(exc: GeodataError) -> list[str]:
    return [p.kind for p in exc.problems]


# -- GPX --------------------------------------------------------------------------------------------


def test_gpx11_segments_partial_times_and_elevation(tmp_path):
    body = (
        "<metadata><time>1970-01-01T00:00:00Z</time></metadata>"
        "<trk><trkseg>"
        + trkpt(109.90, 21.60, "2026-03-02T00:00:00Z", 1.5)
        + trkpt(109.91, 21.61)
        + trkpt(109.92, 21.62, "2026-03-02T00:00:02.250Z", 2.0)
        + "</trkseg><trkseg></trkseg><trkseg>"
        + trkpt(109.93, 21.63, "2026-03-02T00:10:00Z")
        + "</trkseg></trk>"
    )
    fixes = read_track(write(tmp_path, "walk.gpx", gpx(body)))
    assert fixes.source_format == "GPX 1.1"
    np.testing.assert_array_equal(fixes.lon, [109.90, 109.91, 109.92, 109.93])
    np.testing.assert_array_equal(fixes.lat, [21.60, 21.61, 21.62, 21.63])
    np.testing.assert_array_equal(fixes.segment, [0, 0, 0, 1])  # the empty trkseg is skipped
    assert fixes.segment.dtype == np.int32
    assert fixes.time.dtype == np.dtype("datetime64[ms]")
    np.testing.assert_array_equal(
        fixes.time,
        [
            ms("2026-03-02T00:00:00"),
            np.datetime64("NaT"),
            ms("2026-03-02T00:00:02.250"),
            ms("2026-03-02T00:10:00"),
        ],
    )
    np.testing.assert_array_equal(fixes.ele, [1.5, np.nan, 2.0, np.nan])
    assert fixes.warnings == []


def test_gpx10_time_zones_and_fractions(tmp_path):
    body = (
        "<trk><trkseg>"
        + trkpt(109.90, 21.60, "2026-03-02T08:00:00+08:00")
        + trkpt(109.91, 21.61, "2026-03-02T00:00:01.5Z")
        + trkpt(109.92, 21.62, "2026-03-01T19:00:02-05:00")
        + trkpt(109.93, 21.63, "2026-03-02T00:00:03.123456Z")
        + "</trkseg></trk>"
    )
    fixes = read_track(write(tmp_path, "walk.gpx", gpx(body, ns=GPX10, version="1.0")))
    assert fixes.source_format == "GPX 1.0"
    np.testing.assert_array_equal(
        fixes.time,
        [
            ms("2026-03-02T00:00:00"),
            ms("2026-03-02T00:00:01.500"),
            ms("2026-03-02T00:00:02"),
            ms("2026-03-02T00:00:03.123"),
        ],
    )
    assert fixes.warnings == []


def test_gpx_naive_times_are_utc_with_a_warning(tmp_path):
    body = (
        "<trk><trkseg>"
        + trkpt(109.9, 21.6, "2026-03-02T08:00:00")
        + trkpt(109.91, 21.6, "2026-03-02T08:00:05Z")
    )
    fixes = read_track(write(tmp_path, "walk.gpx", gpx(body + "</trkseg></trk>")))
    np.testing.assert_array_equal(fixes.time, [ms("2026-03-02T08:00:00"), ms("2026-03-02T08:00:05")])
    (warning,) = fixes.warnings
    assert warning.kind == "naive-time"
    assert "times without time zone taken as UTC" in warning.message
    assert warning.details["count"] == 1


def test_gpx_without_namespace_and_with_bom(tmp_path):
    body = "<trk><trkseg>" + trkpt(109.9, 21.6) + trkpt(109.91, 21.61) + "</trkseg></trk>"
    fixes = read_track(write(tmp_path, "walk.gpx", b"\xef\xbb\xbf" + gpx(body, ns=None).encode()))
    assert len(fixes) == 2
    assert np.isnat(fixes.time).all()


def test_gpx_other_namespaces_and_extensions_are_ignored(tmp_path):
    point = (
        '<trkpt lat="21.6" lon="109.9"><ele>3</ele><time>2026-03-02T00:00:00Z</time>'
        '<extensions><g:TrackPointExtension xmlns:g="urn:garmin"><g:hr>120</g:hr>'
        "<g:time>1999-01-01T00:00:00Z</g:time></g:TrackPointExtension></extensions></trkpt>"
    )
    fixes = read_track(write(tmp_path, "walk.gpx", gpx(f"<trk><trkseg>{point}</trkseg></trk>")))
    assert fixes.time[0] == ms("2026-03-02T00:00:00")
    assert fixes.ele[0] == 3


def test_gpx_route_is_read_when_there_is_no_track(tmp_path):
    body = (
        '<wpt lat="21.6" lon="109.9"/>'
        '<rte><rtept lat="21.60" lon="109.90"/><rtept lat="21.61" lon="109.91"/></rte>'
        '<rte><rtept lat="21.62" lon="109.92"/></rte>'
    )
    fixes = read_track(write(tmp_path, "plan.gpx", gpx(body)))
    np.testing.assert_array_equal(fixes.lon, [109.90, 109.91, 109.92])
    np.testing.assert_array_equal(fixes.segment, [0, 0, 1])
    assert [w.kind for w in fixes.warnings] == ["route-as-track"]


def test_gpx_track_wins_over_route(tmp_path):
    body = '<rte><rtept lat="21.5" lon="109.5"/></rte><trk><trkseg>' + trkpt(109.9, 21.6) + "</trkseg></trk>"
    fixes = read_track(write(tmp_path, "walk.gpx", gpx(body)))
    assert list(fixes.lon) == [109.9]
    assert fixes.warnings == []


def test_gpx_waypoints_only_is_no_track(tmp_path):
    body = '<wpt lat="21.6" lon="109.9"><name>nest</name></wpt><wpt lat="21.61" lon="109.91"/>'
    exc = refused(write(tmp_path, "marks.gpx", gpx(body)))
    assert kinds(exc) == ["no-track"]
    assert "no track in file: only 2 waypoints" in exc.message


def test_gpx_with_nothing_is_no_track(tmp_path):
    exc = refused(write(tmp_path, "none.gpx", gpx("<trk><trkseg></trkseg></trk>")))
    assert kinds(exc) == ["no-track"]


def test_many_fixes_cross_every_internal_chunk(tmp_path):
    """70,000 fixes: more than one time-conversion chunk and many sibling sweeps."""
    n = 70_000
    start = np.datetime64("2026-03-02T00:00:00", "s")
    stamps = np.datetime_as_string(start + np.arange(n), unit="s")
    body = "\n".join(
        f'<trkpt lat="{21.6 + i * 1e-6:.6f}" lon="{109.9 + i * 1e-6:.6f}"><time>{t}Z</time></trkpt>'
        for i, t in enumerate(stamps)
    )
    fixes = read_track(write(tmp_path, "long.gpx", gpx(f"<trk><trkseg>\n{body}\n</trkseg></trk>")))
    assert len(fixes) == n
    np.testing.assert_array_equal(fixes.time, (start + np.arange(n)).astype("datetime64[ms]"))
    np.testing.assert_allclose(fixes.lon, 109.9 + np.arange(n) * 1e-6, atol=1e-9)


# -- refusals common to all formats, shown on GPX ---------------------------------------------------


def test_empty_file_is_refused(tmp_path):
    for content in (b"", b"\xef\xbb\xbf", b"  \n\t\n"):
        exc = refused(write(tmp_path, "empty.gpx", content))
        assert kinds(exc) == ["empty-file"]
        assert "file is empty" in exc.message


def test_more_fixes_than_allowed_is_refused(tmp_path):
    body = "<trk><trkseg>" + "".join(trkpt(109.9, 21.6 + i * 1e-4) for i in range(5)) + "</trkseg></trk>"
    path = write(tmp_path, "walk.gpx", gpx(body))
    assert len(read_track(path, max_fixes=5)) == 5
    exc = refused(path, max_fixes=4)
    assert kinds(exc) == ["too-many-fixes"]
    assert "more than 4 fixes" in exc.message


def test_more_fixes_than_allowed_stops_early(tmp_path):
    """The limit is enforced while streaming, not after the whole file has been read."""
    n = 20_000
    body = "\n".join(trkpt(109.9, 21.6) for _ in range(n))
    path = write(tmp_path, "walk.gpx", gpx(f"<trk><trkseg>\n{body}\n</trkseg></trk>\n<bad"))
    exc = refused(path, max_fixes=1500)  # the broken end of the file is never reached
    assert kinds(exc) == ["too-many-fixes"]


def test_latitude_out_of_range_names_fix_and_line(tmp_path):
    body = "<trk><trkseg>\n" + trkpt(109.9, 21.6) + "\n" + trkpt(109.9, 95.5) + "\n</trkseg></trk>"
    exc = refused(write(tmp_path, "walk.gpx", gpx(body)))
    assert kinds(exc) == ["coordinate-out-of-range"]
    assert "fix 2" in exc.message and "line 5" in exc.message and "latitude 95.5" in exc.message
    assert exc.problems[0].details["fix"] == 2
    assert exc.problems[0].details["line"] == 5


def test_longitude_out_of_range_is_refused(tmp_path):
    body = "<trk><trkseg>" + trkpt(109.9, 21.6) + trkpt(190.0, 21.6) + trkpt(-200.0, 21.6) + "</trkseg></trk>"
    exc = refused(write(tmp_path, "walk.gpx", gpx(body)))
    assert kinds(exc) == ["coordinate-out-of-range", "coordinate-out-of-range"]
    assert "fix 2" in exc.message and "longitude 190" in exc.message and "1 more" in exc.message


@pytest.mark.parametrize("lat", ["NaN", "inf", "-Infinity"])
def test_non_finite_coordinates_are_refused(tmp_path, lat):
    body = "<trk><trkseg>" + trkpt(109.9, 21.6) + trkpt(109.9, lat) + "</trkseg></trk>"
    exc = refused(write(tmp_path, "walk.gpx", gpx(body)))
    assert kinds(exc) == ["bad-number"]
    assert "fix 2" in exc.message


@pytest.mark.parametrize(
    ("point", "what"),
    [
        ('<trkpt lat="21,6" lon="109.9"/>', "latitude"),
        ('<trkpt lat="21.6" lon="E109.9"/>', "longitude"),
        ('<trkpt lat="21.6"/>', "longitude"),
        ('<trkpt lat="21.6" lon="109.9"><ele>high</ele></trkpt>', "elevation"),
    ],
)
def test_unreadable_numbers_name_the_fix(tmp_path, point, what):
    body = "<trk><trkseg>\n" + trkpt(109.9, 21.6) + "\n" + point + "\n</trkseg></trk>"
    exc = refused(write(tmp_path, "walk.gpx", gpx(body)))
    assert kinds(exc) == ["bad-number"]
    assert "fix 2 (line 5)" in exc.message and what in exc.message


def test_unreadable_time_names_the_fix(tmp_path):
    body = "<trk><trkseg>" + trkpt(109.9, 21.6, "2026-03-02T00:00:00Z") + trkpt(109.9, 21.6, "yesterday")
    exc = refused(write(tmp_path, "walk.gpx", gpx(body + "</trkseg></trk>")))
    assert kinds(exc) == ["bad-time"]
    assert "fix 2" in exc.message and "'yesterday'" in exc.message


def test_swapped_longitude_and_latitude_are_refused(tmp_path):
    body = "<trk><trkseg>" + "".join(trkpt(21.6 + i * 1e-4, 109.9) for i in range(3)) + "</trkseg></trk>"
    exc = refused(write(tmp_path, "walk.gpx", gpx(body)))
    assert kinds(exc) == ["swapped-lon-lat"]
    assert "longitude and latitude look swapped" in exc.message


def test_tracks_elsewhere_are_not_called_swapped(tmp_path):
    """Only fixes that would land in Lianjiang/Hepu when swapped are suspicious."""
    body = "<trk><trkseg>" + trkpt(13.7, 45.3) + trkpt(13.71, 45.31) + "</trkseg></trk>"
    assert len(read_track(write(tmp_path, "istria.gpx", gpx(body)))) == 2


def test_malformed_xml_names_the_line(tmp_path):
    text = gpx("<trk><trkseg>\n" + trkpt(109.9, 21.6) + "\n</trk>")
    exc = refused(write(tmp_path, "broken.gpx", text))
    assert kinds(exc) == ["malformed-xml"]
    assert "not well-formed XML at line 5" in exc.message
    assert exc.problems[0].details["line"] == 5


def test_xml_beyond_the_parser_limits_is_refused(tmp_path):
    """huge_tree=False: nesting deeper than 256 (or a text over 10 MB) is refused, with the line."""
    deep = "<extensions>" + "<a>" * 300 + "</a>" * 300 + "</extensions>"
    exc = refused(write(tmp_path, "deep.gpx", gpx(deep)))
    assert kinds(exc) == ["xml-limit"]
    assert "line 3" in exc.message and "XML_PARSE_HUGE" not in exc.message


def test_truncated_xml_is_refused(tmp_path):
    text = gpx("<trk><trkseg>" + trkpt(109.9, 21.6) + "</trkseg></trk>")[:-20]
    assert kinds(refused(write(tmp_path, "cut.gpx", text))) == ["malformed-xml"]


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE gpx [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1"><trk><name>&lol9;</name><trkseg>
<trkpt lat="21.6" lon="109.9"><time>2026-03-02T00:00:00Z</time></trkpt></trkseg></trk></gpx>
"""


@pytest.mark.parametrize("suffix", [".gpx", ".kml"])
def test_billion_laughs_is_refused_before_any_expansion(tmp_path, suffix):
    exc = refused(write(tmp_path, f"lol{suffix}", BILLION_LAUGHS.replace("gpx", suffix[1:])))
    assert kinds(exc) == ["xml-dtd"]
    assert "XML with a DTD or entities is not accepted" in exc.message


@pytest.mark.parametrize("target", ["file:///etc/passwd", "SECRET"])
def test_external_entity_is_refused_and_nothing_is_read(tmp_path, target):
    secret = write(tmp_path, "secret.txt", "the-secret-content\n")
    url = secret.as_uri() if target == "SECRET" else target
    text = (
        f'<?xml version="1.0"?>\n<!DOCTYPE gpx [<!ENTITY xxe SYSTEM "{url}">]>\n'
        f'<gpx version="1.1" xmlns="{GPX11}"><trk><name>&xxe;</name><trkseg>'
        '<trkpt lat="21.6" lon="109.9"><time>&xxe;</time></trkpt></trkseg></trk></gpx>'
    )
    exc = refused(write(tmp_path, "xxe.gpx", text))
    assert kinds(exc) == ["xml-dtd"]
    everything = repr(exc.message) + repr([p.as_dict() for p in exc.problems])
    assert "the-secret-content" not in everything and "root:" not in everything


def test_any_doctype_is_refused_even_without_entities(tmp_path):
    text = '<?xml version="1.0"?>\n<!DOCTYPE gpx SYSTEM "http://example.invalid/gpx.dtd">\n' + gpx("")
    assert kinds(
        refused(write(tmp_path, "dtd.gpx", text.replace('<?xml version="1.0" encoding="UTF-8"?>\n', "")))
    ) == ["xml-dtd"]


def test_doctype_in_another_encoding_is_refused(tmp_path):
    text = '<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE gpx [<!ENTITY a "b">]>\n<gpx>&a;</gpx>'
    assert kinds(refused(write(tmp_path, "u16.gpx", text.encode("utf-16")))) == ["xml-dtd"]


def test_html_doctype_inside_a_description_is_not_a_dtd(tmp_path):
    body = (
        "<trk><desc><![CDATA[<!DOCTYPE html><p>patrol</p>]]></desc><trkseg>"
        + trkpt(109.9, 21.6)
        + "</trkseg></trk>"
    )
    assert len(read_track(write(tmp_path, "desc.gpx", gpx(body)))) == 1


# -- format detection -------------------------------------------------------------------------------


def test_track_formats():
    assert TRACK_FORMATS == {
        ".gpx": "GPX",
        ".kml": "KML",
        ".kmz": "KMZ",
        ".geojson": "GeoJSON",
        ".json": "GeoJSON",
        ".csv": "CSV",
    }


def test_unknown_format_is_415_and_names_the_accepted_ones(tmp_path):
    with pytest.raises(UnsupportedFormat) as info:
        read_track(write(tmp_path, "track.fit", b"\x0e\x10\x43\x08binary"))
    assert info.value.status == 415
    message = info.value.message
    for label in ("GPX (.gpx)", "KML (.kml)", "KMZ (.kmz)", "GeoJSON (.geojson, .json)", "CSV (.csv)"):
        assert label in message
    assert "track.fit" in message and ".fit file" in message


def test_xml_of_another_kind_is_unsupported(tmp_path):
    with pytest.raises(UnsupportedFormat) as info:
        read_track(write(tmp_path, "activity.xml", '<TrainingCenterDatabase xmlns="urn:tcx"/>'))
    assert "<TrainingCenterDatabase>" in info.value.message


def test_filename_decides_format_and_names_the_file(tmp_path):
    """Uploads arrive as temporary files; the user's file name picks the format and is quoted."""
    csv_text = "lon,lat\n109.9,21.6\n109.9,95\n"
    path = write(tmp_path, "upload-3f2a.tmp", csv_text)
    exc = refused(path, filename="巡护轨迹.csv")
    assert exc.message.startswith("巡护轨迹.csv: ")
    assert exc.problems[0].details["file"] == "巡护轨迹.csv"
    assert "upload-3f2a" not in exc.message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (gpx("<trk><trkseg>" + trkpt(109.9, 21.6) + "</trkseg></trk>"), "GPX 1.1"),
        (f'<kml xmlns="{KML22}"><Placemark><LineString><coordinates>109.9,21.6 109.91,21.61</coordinates>'
         "</LineString></Placemark></kml>", "KML"),
        ('{"type": "LineString", "coordinates": [[109.9, 21.6], [109.91, 21.61]]}', "GeoJSON"),
    ],
)  # fmt: skip
def test_format_is_sniffed_without_a_useful_extension(tmp_path, content, expected):
    for name in ("upload", "upload.dat"):
        assert read_track(write(tmp_path, name, content)).source_format == expected


def test_kml_named_gpx_is_read_as_kml(tmp_path):
    kml = f'<kml xmlns="{KML22}"><Placemark><LineString><coordinates>109.9,21.6</coordinates></LineString></Placemark></kml>'
    assert read_track(write(tmp_path, "walk.gpx", kml)).source_format == "KML"


# -- KML and KMZ ------------------------------------------------------------------------------------


def kml(body: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="{KML22}" xmlns:gx="{GX}"><Document>\n{body}\n</Document></kml>\n'


def test_kml_linestring_with_and_without_altitude(tmp_path):
    body = (
        "<Placemark><name>a</name><LineString><coordinates>\n"
        "  109.90,21.60,3.5\n  109.91,21.61,4\n</coordinates></LineString></Placemark>"
        "<Placemark><LineString><coordinates>109.92, 21.62 109.93,21.63</coordinates></LineString></Placemark>"
        "<Placemark><Point><coordinates>109.0,21.0</coordinates></Point></Placemark>"
        "<Placemark><Polygon><outerBoundaryIs><LinearRing><coordinates>1,1 2,2 1,2 1,1</coordinates>"
        "</LinearRing></outerBoundaryIs></Polygon></Placemark>"
    )
    fixes = read_track(write(tmp_path, "lines.kml", kml(body)))
    np.testing.assert_array_equal(fixes.lon, [109.90, 109.91, 109.92, 109.93])
    np.testing.assert_array_equal(fixes.ele, [3.5, 4.0, np.nan, np.nan])
    np.testing.assert_array_equal(fixes.segment, [0, 0, 1, 1])
    assert np.isnat(fixes.time).all()


def test_kml_multigeometry_parts_are_segments(tmp_path):
    body = (
        "<Placemark><MultiGeometry>"
        "<LineString><coordinates>109.90,21.60 109.91,21.61</coordinates></LineString>"
        "<LineString><coordinates>109.92,21.62 109.93,21.63 109.94,21.64</coordinates></LineString>"
        "</MultiGeometry></Placemark>"
    )
    fixes = read_track(write(tmp_path, "multi.kml", kml(body)))
    np.testing.assert_array_equal(fixes.segment, [0, 0, 1, 1, 1])


def gx_track(times: list[str], coords: list[str], prefix: str = "gx:") -> str:
    whens = "".join(f"<when>{t}</when>\n" for t in times)
    points = "".join(f"<{prefix}coord>{c}</{prefix}coord>\n" if c else f"<{prefix}coord/>\n" for c in coords)
    return f"<{prefix}Track>\n<altitudeMode>absolute</altitudeMode>\n{whens}{points}</{prefix}Track>"


def test_kml_gx_track_and_multitrack(tmp_path):
    one = gx_track(
        ["2026-03-02T00:00:00Z", "2026-03-02T08:00:05+08:00"], ["109.90 21.60 2", "109.91 21.61 3"]
    )
    two = gx_track(["2026-03-02T00:01:00.5Z"], ["109.92 21.62"])
    body = (
        f"<Placemark><TimeStamp><when>1999-01-01T00:00:00Z</when></TimeStamp>{one}</Placemark>"
        f"<Placemark><gx:MultiTrack>{two}{one}</gx:MultiTrack></Placemark>"
    )
    fixes = read_track(write(tmp_path, "tracks.kml", kml(body)))
    np.testing.assert_array_equal(fixes.lon, [109.90, 109.91, 109.92, 109.90, 109.91])
    np.testing.assert_array_equal(fixes.segment, [0, 0, 1, 2, 2])
    np.testing.assert_array_equal(fixes.ele, [2, 3, np.nan, 2, 3])
    expected = ["2026-03-02T00:00:00", "2026-03-02T00:00:05", "2026-03-02T00:01:00.500"]
    np.testing.assert_array_equal(fixes.time[:3], [ms(t) for t in expected])


@pytest.mark.parametrize("namespace", ["http://www.opengis.net/kml/2.2", "http://www.opengis.net/kml/2.3"])
def test_kml23_track_without_gx_prefix(tmp_path, namespace):
    track = gx_track(
        ["2010-05-28T02:02:09Z", "2010-05-28T02:02:35Z"], ["109.90 21.60 156", "109.91 21.61 152"], ""
    )
    text = f'<kml xmlns="{namespace}" version="2.3"><Placemark id="PM005">{track}</Placemark></kml>'
    fixes = read_track(write(tmp_path, "kml23.kml", text))
    assert len(fixes) == 2
    assert fixes.time[1] == ms("2010-05-28T02:02:35")


def test_kml_empty_coord_is_skipped_and_splits(tmp_path):
    track = gx_track(
        ["2026-03-02T00:00:00Z", "2026-03-02T00:00:01Z", "2026-03-02T00:00:02Z", "2026-03-02T00:00:03Z"],
        ["", "109.90 21.60", "", "109.91 21.61"],
    )
    fixes = read_track(write(tmp_path, "pauses.kml", kml(f"<Placemark>{track}</Placemark>")))
    np.testing.assert_array_equal(fixes.time, [ms("2026-03-02T00:00:01"), ms("2026-03-02T00:00:03")])
    np.testing.assert_array_equal(fixes.segment, [0, 1])
    assert [w.kind for w in fixes.warnings] == ["position-missing"]


def test_kml_timed_tracks_win_over_lines_of_the_same_walk(tmp_path):
    track = gx_track(["2026-03-02T00:00:00Z", "2026-03-02T00:00:01Z"], ["109.90 21.60", "109.91 21.61"])
    line = "<LineString><coordinates>109.90,21.60 109.91,21.61</coordinates></LineString>"
    body = f"<Placemark>{track}</Placemark><Folder><Placemark>{line}</Placemark></Folder>"
    fixes = read_track(write(tmp_path, "both.kml", kml(body)))
    assert len(fixes) == 2 and not np.isnat(fixes.time).any()
    assert [w.kind for w in fixes.warnings] == ["lines-ignored"]


def test_kml_track_with_unpaired_when_and_coord_is_refused(tmp_path):
    track = gx_track(["2026-03-02T00:00:00Z"], ["109.90 21.60", "109.91 21.61"])
    exc = refused(write(tmp_path, "odd.kml", kml(f"<Placemark>{track}</Placemark>")))
    assert kinds(exc) == ["track-mismatch"]


def test_kml_points_alone_are_no_track(tmp_path):
    body = "".join(
        f"<Placemark><Point><coordinates>109.9,21.{i}</coordinates></Point></Placemark>" for i in range(3)
    )
    exc = refused(write(tmp_path, "points.kml", kml(body)))
    assert kinds(exc) == ["no-track"]
    assert "only 3 placemark points" in exc.message


@pytest.mark.parametrize(
    ("coordinates", "line"), [("\n109.9,21.6\n109.9,north\n", 5), ("109.9,21.6,1,2", 3)]
)  # fmt: skip
def test_kml_bad_coordinates_name_fix_and_line(tmp_path, coordinates, line):
    body = f"<Placemark><LineString><coordinates>{coordinates}</coordinates></LineString></Placemark>"
    exc = refused(write(tmp_path, "bad.kml", kml(body)))
    assert kinds(exc) == ["bad-number"]
    assert f"line {line}" in exc.message


def test_kml_bad_gx_coord_names_fix_and_line(tmp_path):
    track = gx_track(["2026-03-02T00:00:00Z", "2026-03-02T00:00:01Z"], ["109.90 21.60", "109.91"])
    exc = refused(write(tmp_path, "bad.kml", kml(f"<Placemark>{track}</Placemark>")))
    assert kinds(exc) == ["bad-number"]
    assert "fix 2 (line 8)" in exc.message


def test_kml_latitude_out_of_range_names_the_coordinates(tmp_path):
    body = "<Placemark><LineString><coordinates>109.9,21.6 109.9,91</coordinates></LineString></Placemark>"
    exc = refused(write(tmp_path, "far.kml", kml(body)))
    assert kinds(exc) == ["coordinate-out-of-range"]
    assert "fix 2 (coordinates from line 3)" in exc.message


LINE_KML = kml(
    "<Placemark><LineString><coordinates>109.90,21.60 109.91,21.61 109.92,21.62</coordinates></LineString></Placemark>"
)


def kmz(tmp_path: Path, members: dict[str, str | bytes], name: str = "walk.kmz") -> Path:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, content in members.items():
            archive.writestr(member, content)
    return path


def test_kmz_reads_doc_kml(tmp_path):
    path = kmz(tmp_path, {"files/other.kml": kml(""), "doc.kml": LINE_KML, "files/icon.png": b"\x89PNG"})
    fixes = read_track(path)
    assert fixes.source_format == "KMZ"
    assert len(fixes) == 3


def test_kmz_reads_the_first_kml_when_there_is_no_doc_kml(tmp_path):
    assert len(read_track(kmz(tmp_path, {"images/a.png": b"x", "tracks/walk.kml": LINE_KML}))) == 3


@pytest.mark.parametrize(
    "member", ["../evil.kml", "/etc/evil.kml", "a/../../evil.kml", "..\\evil.kml", "C:/x.kml"]
)
def test_kmz_with_unsafe_member_names_is_refused(tmp_path, member):
    exc = refused(kmz(tmp_path, {"doc.kml": LINE_KML, member: LINE_KML}))
    assert kinds(exc) == ["unsafe-archive"]


def test_kmz_zip_bomb_is_refused_before_reading(tmp_path, monkeypatch):
    padding = " " * (20 * 1024 * 1024)  # 20 MiB of spaces deflate ~1000:1
    path = kmz(tmp_path, {"doc.kml": LINE_KML.replace("<Document>", "<Document>" + padding)})
    opened = []
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *a, **k: opened.append(a) or pytest.fail("read"))
    exc = refused(path)
    assert kinds(exc) == ["zip-bomb"]
    assert opened == []


def test_kmz_declared_size_over_the_cap_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(kml_reader, "MAX_KML_BYTES", 100)
    assert kinds(refused(kmz(tmp_path, {"doc.kml": LINE_KML}))) == ["archive-too-large"]


def test_kmz_reader_caps_the_bytes_actually_read():
    reader = kml_reader._CappedReader(io.BytesIO(b"x" * 100), limit=64)
    assert reader.read(50) == b"x" * 50
    with pytest.raises(GeodataError) as info:
        reader.read(50)
    assert kinds(info.value) == ["archive-too-large"]


def test_kmz_with_damaged_data_is_refused(tmp_path):
    path = kmz(tmp_path, {"doc.kml": LINE_KML * 20})
    data = bytearray(path.read_bytes())
    start = data.index(b"doc.kml") + len(b"doc.kml")
    for i in range(start + 20, start + 60):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    assert kinds(refused(path)) in (["bad-archive"], ["malformed-xml"])


def test_kmz_that_is_not_a_zip_is_refused(tmp_path):
    assert kinds(refused(write(tmp_path, "walk.kmz", b"not a zip at all"))) == ["bad-archive"]


def test_kmz_without_kml_is_no_track(tmp_path):
    assert kinds(refused(kmz(tmp_path, {"readme.txt": "hello"}))) == ["no-track"]


def test_kmz_with_a_dtd_is_refused(tmp_path):
    assert kinds(refused(kmz(tmp_path, {"doc.kml": BILLION_LAUGHS.replace("gpx", "kml")}))) == ["xml-dtd"]


# -- GeoJSON ----------------------------------------------------------------------------------------


def feature(geometry: dict, **properties) -> dict:
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def test_geojson_lines_are_segments_with_elevation(tmp_path):
    doc = {
        "type": "FeatureCollection",
        "features": [
            feature({"type": "LineString", "coordinates": [[109.90, 21.60, 1.0], [109.91, 21.61, 2.0]]}),
            feature({"type": "Point", "coordinates": [109.0, 21.0]}, name="nest"),
            feature(
                {
                    "type": "MultiLineString",
                    "coordinates": [[[109.92, 21.62], [109.93, 21.63]], [[109.94, 21.64], [109.95, 21.65]]],
                }
            ),
            feature(None),
        ],
    }
    fixes = read_track(write(tmp_path, "walk.geojson", json.dumps(doc)))
    assert fixes.source_format == "GeoJSON"
    np.testing.assert_array_equal(fixes.lon, [109.90, 109.91, 109.92, 109.93, 109.94, 109.95])
    np.testing.assert_array_equal(fixes.segment, [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(fixes.ele, [1, 2, np.nan, np.nan, np.nan, np.nan])


def test_geojson_bare_geometry_and_coord_times(tmp_path):
    bare = {"type": "LineString", "coordinates": [[109.90, 21.60], [109.91, 21.61]]}
    assert len(read_track(write(tmp_path, "bare.json", json.dumps(bare)))) == 2
    timed = feature(bare, coordTimes=["2026-03-02T00:00:00Z", "2026-03-02T00:00:05Z"])
    fixes = read_track(write(tmp_path, "timed.geojson", json.dumps(timed)))
    np.testing.assert_array_equal(fixes.time, [ms("2026-03-02T00:00:00"), ms("2026-03-02T00:00:05")])


@pytest.mark.parametrize("key", ["time", "Timestamp", "datetime", "时间", "when"])
def test_geojson_timed_points_form_one_segment_in_file_order(tmp_path, key):
    stamps = ["2026-03-02T00:00:10Z", "2026-03-02T00:00:00Z", 1772409605]  # not sorted; epoch seconds too
    doc = {
        "type": "FeatureCollection",
        "features": [
            feature({"type": "Point", "coordinates": [lon, 21.6, 5.0]}, **{key: t})
            for lon, t in zip([109.90, 109.91, 109.92], stamps)
        ],
    }
    fixes = read_track(write(tmp_path, "points.geojson", json.dumps(doc, ensure_ascii=False)))
    np.testing.assert_array_equal(fixes.lon, [109.90, 109.91, 109.92])
    np.testing.assert_array_equal(fixes.segment, [0, 0, 0])
    np.testing.assert_array_equal(
        fixes.time, [ms("2026-03-02T00:00:10"), ms("2026-03-02T00:00:00"), ms("2026-03-02T00:00:05")]
    )


def test_geojson_untimed_points_are_no_track(tmp_path):
    doc = {
        "type": "FeatureCollection",
        "features": [feature({"type": "Point", "coordinates": [109.9, 21.6]})],
    }
    exc = refused(write(tmp_path, "points.geojson", json.dumps(doc)))
    assert kinds(exc) == ["no-track"]


def test_geojson_invalid_json_names_the_line(tmp_path):
    exc = refused(write(tmp_path, "broken.geojson", '{"type": "LineString",\n "coordinates": [[1, 2],\n}'))
    assert kinds(exc) == ["malformed-json"]
    assert "line 3" in exc.message


def test_geojson_non_finite_and_bad_positions_are_refused(tmp_path):
    text = '{"type": "LineString", "coordinates": [[109.9, 21.6], [109.9, NaN]]}'
    exc = refused(write(tmp_path, "nan.geojson", text))
    assert kinds(exc) == ["bad-number"] and "fix 2" in exc.message
    doc = feature({"type": "LineString", "coordinates": [[109.9, 21.6], [109.9, 21.6], ["x"]]})
    exc = refused(write(tmp_path, "bad.geojson", json.dumps(doc)))
    assert kinds(exc) == ["bad-number"] and "fix 3 (feature 1)" in exc.message


def test_geojson_is_streamed_one_feature_at_a_time_under_a_cap_per_feature(tmp_path, monkeypatch):
    """The file as a whole has no size cap (only the upload's); one feature may hold at most
    MAX_VALUE_CHARS characters."""
    monkeypatch.setattr(jsonstream, "MAX_VALUE_CHARS", 400)
    monkeypatch.setattr(jsonstream, "READ_BYTES", 64)  # many reads, features cut across them
    small = [
        feature({"type": "Point", "coordinates": [109.9 + i / 1e4, 21.6]}, time=f"2026-03-02T00:00:{i:02d}Z")
        for i in range(40)
    ]
    fixes = read_track(
        write(tmp_path, "points.geojson", json.dumps({"type": "FeatureCollection", "features": small}))
    )
    assert len(fixes) == 40 and fixes.time[-1] == ms("2026-03-02T00:00:39")
    big = feature({"type": "LineString", "coordinates": [[109.9, 21.6 + i / 1e4] for i in range(100)]})
    doc = json.dumps({"type": "FeatureCollection", "features": [small[0], big]}, indent=1)
    exc = refused(write(tmp_path, "big.geojson", doc))
    assert kinds(exc) == ["feature-too-large"]
    second_feature = [n for n, line in enumerate(doc.split("\n"), 1) if line == "  {"][1]
    assert exc.problems[0].details["line"] == second_feature
    assert f"feature starting at line {second_feature}, column 3 is larger than 400 characters" in exc.message


# -- CSV --------------------------------------------------------------------------------------------


def test_csv_english_header_with_segments(tmp_path):
    text = (
        "Track,Time,Latitude,Longitude,Elevation (m)\n"
        "1,2026-03-02T00:00:00Z,21.60,109.90,1.5\n"
        "1,2026-03-02T00:00:05Z,21.61,109.91,\n"
        "\n"
        "2,,21.62,109.92,2\n"
    )
    fixes = read_track(write(tmp_path, "walk.csv", text))
    assert fixes.source_format == "CSV"
    np.testing.assert_array_equal(fixes.lon, [109.90, 109.91, 109.92])
    np.testing.assert_array_equal(fixes.segment, [0, 0, 1])
    np.testing.assert_array_equal(fixes.ele, [1.5, np.nan, 2.0])
    np.testing.assert_array_equal(
        fixes.time, [ms("2026-03-02T00:00:00"), ms("2026-03-02T00:00:05"), np.datetime64("NaT")]
    )
    assert fixes.warnings == []


CHINESE_CSV = "巡护轨迹导出\n序号,定位时间,经度(°),纬度(°),海拔\n1,2026-03-02 08:00:00,109.90,21.60,3\n2,2026/3/2 8:00:05,109.91,21.61,4\n"


def test_csv_chinese_header_utf8_with_bom(tmp_path):
    fixes = read_track(write(tmp_path, "轨迹.csv", b"\xef\xbb\xbf" + CHINESE_CSV.encode()))
    np.testing.assert_array_equal(fixes.lat, [21.60, 21.61])
    # 08:00 Beijing time, written without a zone, is 00:00 UTC.
    np.testing.assert_array_equal(fixes.time, [ms("2026-03-02T00:00:00"), ms("2026-03-02T00:00:05")])
    assert [w.kind for w in fixes.warnings] == ["naive-time"]
    assert "read as China Standard Time" in fixes.warnings[0].message


def test_the_uploader_says_how_to_read_times_without_a_zone(tmp_path):
    csv_path = write(tmp_path, "轨迹.csv", CHINESE_CSV.encode())
    as_utc = read_track(csv_path, naive_times=NaiveTimes.parse("UTC"))
    np.testing.assert_array_equal(as_utc.time, [ms("2026-03-02T08:00:00"), ms("2026-03-02T08:00:05")])
    body = "<trk><trkseg>" + trkpt(109.9, 21.6, "2026-03-02T08:00:00") + "</trkseg></trk>"
    gpx_path = write(tmp_path, "walk.gpx", gpx(body))
    assert read_track(gpx_path).time[0] == ms("2026-03-02T08:00:00")  # GPX: UTC by its spec
    assert read_track(gpx_path, naive_times=NaiveTimes.parse("china")).time[0] == ms("2026-03-02T00:00:00")
    with pytest.raises(InputError, match="auto.*utc.*china"):
        NaiveTimes.parse("mars time")


def test_mixed_zoned_and_naive_times_are_not_moved(tmp_path):
    text = "lon,lat,time\n109.90,21.60,2026-03-02 08:00:00\n109.91,21.61,2026-03-02T00:00:05Z\n"
    fixes = read_track(write(tmp_path, "mixed.csv", text.encode()))
    np.testing.assert_array_equal(fixes.time, [ms("2026-03-02T08:00:00"), ms("2026-03-02T00:00:05")])
    assert "not moved to China time" in fixes.warnings[0].message


def test_csv_gb18030_is_read_with_a_warning(tmp_path):
    fixes = read_track(write(tmp_path, "轨迹.csv", CHINESE_CSV.encode("gb18030")))
    assert len(fixes) == 2
    assert sorted(w.kind for w in fixes.warnings) == ["encoding", "naive-time"]
    assert "GB18030" in next(w.message for w in fixes.warnings if w.kind == "encoding")


def test_csv_neither_utf8_nor_gb18030_names_offset_and_line(tmp_path):
    exc = refused(write(tmp_path, "walk.csv", b"lon,lat\n109.9,21.6\n109.9,21.6 \xff\xff\n"))
    assert kinds(exc) == ["encoding"]
    assert "not UTF-8 text" in exc.message
    assert exc.problems[0].details["offset"] == 30 and exc.problems[0].details["line"] == 3


def test_csv_semicolon_with_decimal_commas(tmp_path):
    fixes = read_track(write(tmp_path, "walk.csv", "LAT;LNG;ALT\n21,60;109,90;1,5\n21,61;109,91;2\n"))
    np.testing.assert_array_equal(fixes.lon, [109.90, 109.91])
    np.testing.assert_array_equal(fixes.ele, [1.5, 2.0])


def test_csv_tab_separated_utf16_from_excel(tmp_path):
    text = "x\ty\tdate_time\n109.90\t21.60\t2026-03-02T00:00:00+08:00\n"
    fixes = read_track(write(tmp_path, "walk.csv", text.encode("utf-16")))
    assert fixes.lon[0] == 109.90 and fixes.time[0] == ms("2026-03-01T16:00:00")


def test_csv_without_position_columns_is_refused(tmp_path):
    exc = refused(write(tmp_path, "walk.csv", "a,b\n1,2\n"))
    assert kinds(exc) == ["no-columns"]
    assert "'a,b'" in exc.message


def test_csv_header_only_is_no_track(tmp_path):
    assert kinds(refused(write(tmp_path, "walk.csv", "lon,lat\n"))) == ["no-track"]


def test_csv_bad_value_names_fix_and_line(tmp_path):
    exc = refused(write(tmp_path, "walk.csv", "lon,lat\n109.9,21.6\n\n109°54',21.6\n"))
    assert kinds(exc) == ["bad-number"]
    assert "fix 2 (line 4)" in exc.message and "longitude" in exc.message


def test_csv_short_row_is_refused(tmp_path):
    exc = refused(write(tmp_path, "walk.csv", "lon,lat,time\n109.9,21.6,\n109.9\n"))
    assert kinds(exc) == ["bad-row"] and "fix 2 (line 3)" in exc.message


def test_csv_swapped_columns_are_refused(tmp_path):
    exc = refused(write(tmp_path, "walk.csv", "lon,lat\n21.6,109.9\n21.61,109.91\n"))
    assert kinds(exc) == ["swapped-lon-lat"]


# Streaming speed and peak memory on a 100 MB GPX are measured by bench/bench_track_parse.py.
