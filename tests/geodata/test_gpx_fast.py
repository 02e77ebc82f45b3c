"""``geodata.trackio.gpxfast``: the bulk GPX path answers exactly as the streaming reader does, or
gives up and leaves the file to it.

Every case is read twice through ``read_track``: as served (bulk path first) and with the bulk path
switched off; fixes, segments, warnings, format label — or the refusal, word for word — must be the
same. Each case also says whether the bulk path should take the file, so that a path that silently
gave up on everything would fail here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import geodata.trackfile as trackfile
from geodata.errors import GeodataError
from geodata.trackio import gpxfast
from geodata.trackio.times import plain_utc_ms

GPX11 = "http://www.topografix.com/GPX/1/1"


def doc(body: str, *, head: str | None = None, root: str | None = None, tail: str = "\n</gpx>\n") -> str:
    head = '<?xml version="1.0" encoding="UTF-8"?>\n' if head is None else head
    root = f'<gpx version="1.1" creator="t" xmlns="{GPX11}">' if root is None else root
    return f"{head}{root}\n{body}{tail}"


def points(n: int, *, start: int = 0, form: str = "{p}", seed: int = 1) -> str:
    """n track points 1 s apart near Gaoqiao; ``form`` wraps each point's text."""
    rng = np.random.default_rng(seed)
    lon = 109.76 + np.cumsum(rng.normal(0, 1e-5, n))
    lat = 21.52 + np.cumsum(rng.normal(0, 1e-5, n))
    out = []
    for i in range(n):
        s = start + i
        stamp = f"2026-03-02T{s // 3600 % 24:02d}:{s // 60 % 60:02d}:{s % 60:02d}Z"
        p = f'<trkpt lat="{lat[i]:.7f}" lon="{lon[i]:.7f}"><ele>{i % 7 - 2.5}</ele><time>{stamp}</time></trkpt>'
        out.append(form.format(p=p, lat=f"{lat[i]:.7f}", lon=f"{lon[i]:.7f}", t=stamp, i=i))
    return "\n".join(out)


def seg(body: str) -> str:
    return f"<trk><name>t</name><trkseg>\n{body}\n</trkseg></trk>"


def outcome(path: Path):
    try:
        fixes = trackfile.read_track(path)
    except GeodataError as exc:
        return ("refused", type(exc).__name__, exc.message, [p.as_dict() for p in exc.problems])
    return (
        "read",
        fixes.lon.tobytes(),
        fixes.lat.tobytes(),
        fixes.time.tobytes(),
        fixes.ele.tobytes(),
        fixes.segment.tolist(),
        fixes.source_format,
        fixes.naive_times,
        [w.as_dict() for w in fixes.warnings],
    )


def check(tmp_path: Path, monkeypatch, content: str | bytes, *, fast: bool, name: str = "t.gpx"):
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    taken = gpxfast.read_fast(path, max_fixes=5_000_000) is not None
    served = outcome(path)
    with monkeypatch.context() as m:
        m.setattr(trackfile, "read_fast", lambda *a, **k: None)
        streamed = outcome(path)
    assert served == streamed
    assert taken == fast, "the bulk path " + ("gave up" if fast else "took a file it should leave")
    return served


PLAIN = points(500)
TAKEN = {
    "plain": seg(PLAIN),
    "lon first": seg(points(50, form='<trkpt lon="{lon}" lat="{lat}"><time>{t}</time></trkpt>')),
    "lat and lon mixed": seg(
        points(30, form='<trkpt lon="{lon}" lat="{lat}"/>'.replace("/>", "></trkpt>"))
        + "\n"
        + points(30, start=40)
    ),
    "no elevation on some": seg(
        points(40, form='<trkpt lat="{lat}" lon="{lon}"><time>{t}</time></trkpt>')
        + "\n"
        + points(5, start=50)
    ),
    "no time on some": seg(
        points(20) + "\n" + points(5, start=30, form='<trkpt lat="{lat}" lon="{lon}"><ele>3</ele></trkpt>')
    ),
    "no children": seg(points(20, form='<trkpt lat="{lat}" lon="{lon}"></trkpt>')),
    "empty time": seg(points(20, form='<trkpt lat="{lat}" lon="{lon}"><time></time></trkpt>')),
    "indented, blanks in elevation": seg(
        points(
            20,
            form='  <trkpt   lat="{lat}"\n   lon="{lon}" >\n    <ele> 1.5e1 </ele>\n    <time>{t}</time>\n  </trkpt>',
        )
    ),
    "windows line ends": seg(PLAIN).replace("\n", "\r\n"),
    "several segments and tracks": seg(points(10))
    + seg(points(10, start=100))
    + "<trk><trkseg>"
    + points(5, start=300)
    + "</trkseg><trkseg/><trkseg>"
    + points(3, start=400)
    + "</trkseg></trk>",
    "points outside a segment": "<trk>" + points(5) + "<trkseg/>" + points(5, start=10) + "</trk>",
    "waypoints and metadata": '<metadata><name>A &amp; B</name><time>2026-03-01T00:00:00Z</time><link href="http://x?a=1&amp;b=&gt;"/></metadata>'
    + '<wpt lat="21.5" lon="109.7"><name>a > b</name></wpt>'
    + seg(points(20)),
    "a > in an attribute": '<trk><name a="x>y">t</name><trkseg>' + points(10) + "</trkseg></trk>",
    "times with fractions and zones": seg(
        points(10, form='<trkpt lat="{lat}" lon="{lon}"><time>{t}</time></trkpt>').replace(
            "Z</time>", ".250+08:00</time>"
        )
    ),
    "naive times": seg(
        points(10, form='<trkpt lat="{lat}" lon="{lon}"><time>{t}</time></trkpt>').replace(
            "Z</time>", "</time>"
        )
    ),
    "placeholder times": seg(
        points(5)
        + "\n"
        + points(3, form='<trkpt lat="{lat}" lon="{lon}"><time>1970-01-01T00:00:00Z</time></trkpt>')
    ),
    "no namespace": seg(PLAIN),
}


@pytest.mark.parametrize("case", sorted(TAKEN))
def test_the_bulk_path_reads_plain_gpx_as_the_stream_does(tmp_path, monkeypatch, case):
    root = '<gpx version="1.0">' if case == "no namespace" else None
    result = check(tmp_path, monkeypatch, doc(TAKEN[case], root=root), fast=True)
    assert result[0] == "read"


def test_segments_across_blocks_and_time_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(gpxfast, "BLOCK", 997)  # blocks that cut records, tags and text anywhere
    body = "".join(seg(points(n, start=1000 * k, seed=k)) for k, n in enumerate([70, 1, 0, 300, 2]))
    result = check(tmp_path, monkeypatch, doc(body + '<wpt lat="1" lon="2"/>'), fast=True)
    assert result[5] == np.repeat(np.arange(4), [70, 1, 300, 2]).tolist()
    import geodata.trackio.sink as sink

    for module in (gpxfast, sink):  # where each reader converts its times in chunks
        monkeypatch.setattr(module, "CHUNK", 64)
    check(tmp_path, monkeypatch, doc(seg(points(300).replace("Z</time>", "</time>"))), fast=True)


GIVEN_UP = {
    "single quotes": seg(points(5, form="<trkpt lat='{lat}' lon='{lon}'></trkpt>")),
    "extensions": seg(
        points(
            5, form='<trkpt lat="{lat}" lon="{lon}"><time>{t}</time><extensions><x>1</x></extensions></trkpt>'
        )
    ),
    "other children": seg(
        points(5, form='<trkpt lat="{lat}" lon="{lon}"><time>{t}</time><sat>7</sat></trkpt>')
    ),
    "another attribute": seg(points(5, form='<trkpt lat="{lat}" lon="{lon}" id="{i}"></trkpt>')),
    "self-closing point": seg(points(5, form='<trkpt lat="{lat}" lon="{lon}"/>')),
    "comment": '<!-- <trkpt lat="1" lon="2"></trkpt> -->' + seg(PLAIN),
    "cdata": seg(points(3, form='<trkpt lat="{lat}" lon="{lon}"><time><![CDATA[{t}]]></time></trkpt>')),
    "processing instruction": "<?x a>b?>" + seg(PLAIN),
    "reference in a number": seg(points(3, form='<trkpt lat="{lat}" lon="&#49;09.8"></trkpt>')),
    "prefixed points": seg(
        points(
            3, form='<g:trkpt xmlns:g="http://www.topografix.com/GPX/1/1" lat="{lat}" lon="{lon}"></g:trkpt>'
        )
    ),
    "namespace declared later": f'<trk xmlns="{GPX11}">' + "<trkseg>" + points(3) + "</trkseg></trk>",
    "route only": "<rte>" + points(5).replace("trkpt", "rtept") + "</rte>",
    "route and track": "<rte>" + points(5).replace("trkpt", "rtept") + "</rte>" + seg(points(5)),
    "waypoints only": '<wpt lat="21.5" lon="109.7"/>',
    "nothing": "",
    "infinite elevation": seg(points(3) + '<trkpt lat="21.5" lon="109.7"><ele>1e999</ele></trkpt>'),
    "bad number": seg(points(3) + '<trkpt lat="21.5" lon="10-9"></trkpt>'),
    "empty number": seg(points(3) + '<trkpt lat="" lon="109.7"></trkpt>'),
    "latitude out of range": seg(points(3) + '<trkpt lat="95" lon="109.7"></trkpt>'),
    "time before GPS": seg(
        points(3) + '<trkpt lat="21.5" lon="109.7"><time>1979-01-01T00:00:00Z</time></trkpt>'
    ),
    "no such day": seg(points(3) + '<trkpt lat="21.5" lon="109.7"><time>2026-02-29T00:00:00Z</time></trkpt>'),
    "unreadable time": seg(points(3) + '<trkpt lat="21.5" lon="109.7"><time>soon</time></trkpt>'),
    "mismatched tags": seg(points(3)) + "</trkseg>",
    "undeclared prefix later": seg(points(3)) + "<x:y/>",
    "unknown entity": seg(points(3)) + "<name>&nope;</name>",
    "control character": seg(points(3)) + "<name>\x01</name>",
    "nested too deep": "<a>" * 300 + "</a>" * 300 + seg(points(3)),
    "nested 100 deep": "<a>" * 100 + "</a>" * 100 + seg(points(3)),
    "content after the root": seg(points(3)) + "</gpx><gpx>",
    "truncated": seg(points(30))[:-40],
}


@pytest.mark.parametrize("case", sorted(GIVEN_UP))
def test_the_bulk_path_leaves_other_files_to_the_stream(tmp_path, monkeypatch, case):
    tail = "" if case == "content after the root" else "\n</gpx>\n"
    content = doc(GIVEN_UP[case], tail=tail + ("</gpx>" if case == "content after the root" else ""))
    check(tmp_path, monkeypatch, content, fast=False)


@pytest.mark.parametrize(
    "case, content",
    [
        ("bom", b"\xef\xbb\xbf" + doc(seg(PLAIN)).encode()),
        ("latin-1", doc(seg(PLAIN), head='<?xml version="1.0" encoding="ISO-8859-1"?>\n').encode()),
        ("bare carriage returns", doc(seg(PLAIN)).replace("\n", "\r").encode()),
        ("undeclared prefix on the root", doc(seg(PLAIN), root='<gpx version="1.1" x:y="1">').encode()),
        (
            "prefixed root",
            doc(seg(PLAIN), root=f'<g:gpx xmlns:g="{GPX11}" version="1.1">', tail="</g:gpx>").encode(),
        ),
        (
            "doctype",
            doc(seg(PLAIN), head='<?xml version="1.0"?>\n<!DOCTYPE gpx [<!ENTITY a "b">]>\n').encode(),
        ),
        ("invalid utf-8", doc(seg(points(3))).encode().replace(b"<name>t</name>", b"<name>\xff</name>")),
        ("long tag", doc(seg(points(3))).encode().replace(b"<name>", b"<name " + b'a="1" ' * 20_000 + b">")),
    ],
)
def test_the_bulk_path_leaves_odd_encodings_and_refusals_to_the_stream(tmp_path, monkeypatch, case, content):
    check(tmp_path, monkeypatch, content, fast=False)


def test_too_many_fixes_is_left_to_the_stream(tmp_path, monkeypatch):
    path = tmp_path / "t.gpx"
    path.write_text(doc(seg(points(50))))
    assert gpxfast.read_fast(path, max_fixes=49) is None
    assert gpxfast.read_fast(path, max_fixes=50) is not None
    with pytest.raises(GeodataError, match="more than 49 fixes"):
        trackfile.read_track(path, max_fixes=49)


def test_plain_utc_times_are_numpy_s_reading_of_them():
    rng = np.random.default_rng(3)
    seconds = rng.integers(-62_000_000_000, 4_000_000_000, 5000)  # years 5 to 2096, leap days included
    text = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s")
    raw = [t.encode() + b"Z" for t in text]
    assert np.array_equal(plain_utc_ms(raw), seconds * 1000)
    for odd in [b"2026-02-29T00:00:00Z", b"2024-13-01T00:00:00Z", b"2024-01-01T24:00:00Z", b"2024-01-01T00:60:00Z",
                b"2024-01-01T00:00:60Z", b"2024-01-00T00:00:00Z", b"2024-01-01t00:00:00Z", b"2024-01-01T00:00:00+",
                b"2024-1-01T00:00:00Z", b"20x4-01-01T00:00:00Z"]:  # fmt: skip
        assert plain_utc_ms([*raw[:3], odd]) is None
    assert plain_utc_ms([b"2024-02-29T23:59:59Z"]).tolist() == [
        int(np.datetime64("2024-02-29T23:59:59", "ms").astype(np.int64))
    ]
