"""A corpus of hostile and awkward track files, generated in code (nothing big is committed).

Each ``Hostile`` says what the service must answer: ``201`` (accepted as a patrol) or a 4xx status
with a fragment its problem detail must contain. ``big`` members are larger than the tests' upload
limit and are used by ``bench/bench_hostile.py`` only; they are written in pieces, never built
whole in memory.

The walk underneath is ``utils.tracks.crossing`` through grid LJ-GQ-03 (team LJ-T-GQ): 944 fixes,
2 s apart, about 31 minutes.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import BinaryIO

import numpy as np

from utils.tracks import crossing

GRID = "LJ-GQ-03"
GPX_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n<gpx version="1.1" creator="hostile" xmlns="http://www.topografix.com/GPX/1/1">\n'
KML_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="http://www.opengis.net/kml/2.2" '
    'xmlns:gx="http://www.google.com/kml/ext/2.2"><Document>\n'
)
MIB = 1024 * 1024


@dataclass(frozen=True)
class Hostile:
    name: str  # the test id
    filename: str  # as uploaded
    write: Callable[[BinaryIO], None]
    status: int  # 201: accepted; otherwise the 4xx expected
    names: str = ""  # a fragment of the refusal's detail (lower case), naming the problem
    big: bool = False  # bench only: over the tests' upload limit

    def content(self) -> bytes:
        buffer = io.BytesIO()
        self.write(buffer)
        return buffer.getvalue()


# --- the walk and its writers ------------------------------------------------------------------


@cache
def walk() -> tuple[np.ndarray, np.ndarray, tuple[datetime, ...]]:
    lon, lat, times, _ = crossing(GRID, speed=1.2, interval=2)
    return lon, lat, tuple(times)


def z(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def trkpt(x: float, y: float, when: str | None = None, extra: str = "") -> str:
    inner = (f"<time>{when}</time>" if when is not None else "") + extra
    return f'<trkpt lat="{y:.8f}" lon="{x:.8f}">{inner}</trkpt>\n'


def gpx_doc(segments: list[str], *, name: str = "walk", head: str = GPX_HEAD, extra: str = "") -> bytes:
    body = "".join(f"<trkseg>\n{s}</trkseg>\n" for s in segments)
    return f"{head}{extra}<trk><name>{name}</name>\n{body}</trk></gpx>\n".encode()


def walk_points(times: list[str] | None = None, *, count: int | None = None) -> str:
    """The walk's ``<trkpt>``s (the first ``count``), with ``times`` (default: its own, in UTC)."""
    lon, lat, _ = walk()
    times = stamps() if times is None else times
    return "".join(trkpt(x, y, w) for x, y, w in list(zip(lon, lat, times))[:count])


def stamps(**shift) -> list[str]:
    return [z(t + timedelta(**shift)) for t in walk()[2]]


def fixed(content: bytes | str) -> Callable[[BinaryIO], None]:
    data = content.encode() if isinstance(content, str) else content
    return lambda f: f.write(data)


def kml_track(whens: list[str], lon, lat) -> str:
    w = "".join(f"<when>{t}</when>" for t in whens)
    c = "".join(f"<gx:coord>{x:.8f} {y:.8f} 1</gx:coord>" for x, y in zip(lon, lat))
    return f"<Placemark><gx:Track>{w}{c}</gx:Track></Placemark>\n"


def kml_doc(body: str) -> bytes:
    return (KML_HEAD + body + "</Document></kml>\n").encode()


def zipped(members: dict[str, bytes], method=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def geojson_line(coords, times=None, **extra) -> dict:
    props = {"coordTimes": times} if times is not None else {}
    return {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": coords},
        "properties": props,
        **extra,
    }


def walk_coords(dims: int = 2) -> list[list[float]]:
    lon, lat, _ = walk()
    return [[round(float(x), 8), round(float(y), 8), *([2.5] * (dims - 2))] for x, y in zip(lon, lat)]


def csv_doc(header: str, rows: list[str], *, encoding="utf-8") -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode(encoding)


def csv_walk_rows(time_of=None) -> list[str]:
    lon, lat, times = walk()
    time_of = time_of or z
    return [f"{time_of(t)},{x:.8f},{y:.8f}" for x, y, t in zip(lon, lat, times)]


# --- big members, written in pieces ---------------------------------------------------------------


def _big_gpx(target_bytes: int, name: str = "walk") -> Callable[[BinaryIO], None]:
    """A valid walk, back and forth along the crossing, 1 s apart, until the file has ``target_bytes``."""

    def write(f: BinaryIO) -> None:
        lon, lat, _ = walk()
        start = walk()[2][0]
        f.write(f"{GPX_HEAD}<trk><name>{name}</name><trkseg>\n".encode())
        written, i = 0, 0
        order = np.r_[np.arange(len(lon)), np.arange(len(lon))[::-1]]
        while written < target_bytes:
            block = []
            for k in order:
                block.append(trkpt(lon[k], lat[k], z(start + timedelta(seconds=i))))
                i += 1
            data = "".join(block).encode()
            f.write(data)
            written += len(data)
        f.write(b"</trkseg></trk></gpx>\n")

    return write


def _repeat(head: bytes, piece: bytes, count: int, tail: bytes = b"") -> Callable[[BinaryIO], None]:
    def write(f: BinaryIO) -> None:
        f.write(head)
        step = max(1, MIB // max(len(piece), 1))
        for done in range(0, count, step):
            f.write(piece * min(step, count - done))
        f.write(tail)

    return write


def _big_geojson_points(target_bytes: int) -> Callable[[BinaryIO], None]:
    def write(f: BinaryIO) -> None:
        lon, lat, times = walk()
        f.write(b'{"type":"FeatureCollection","features":[\n')
        written, i, first = 0, 0, True
        while written < target_bytes:
            k = i % len(lon)
            feature = {
                "type": "Feature",
                "geometry": {
                    "type": "Point",
                    "coordinates": [round(float(lon[k]), 8), round(float(lat[k]), 8)],
                },
                "properties": {"time": z(times[0] + timedelta(seconds=i))},
            }
            data = (b"" if first else b",\n") + json.dumps(feature).encode()
            f.write(data)
            written += len(data)
            first = False
            i += 1
        f.write(b"\n]}\n")

    return write


def _big_geojson_line(target_bytes: int) -> Callable[[BinaryIO], None]:
    def write(f: BinaryIO) -> None:
        lon, lat, _ = walk()
        f.write(b'{"type":"Feature","properties":{},"geometry":{"type":"LineString","coordinates":[')
        written, i = 0, 0
        order = np.r_[np.arange(len(lon)), np.arange(len(lon))[::-1]]
        while written < target_bytes:
            data = ",".join(f"[{lon[k]:.8f},{lat[k]:.8f}]" for k in order).encode()
            f.write((b"," if i else b"") + data)
            written += len(data)
            i += 1
        f.write(b"]}}\n")

    return write


def _max_csv(count: int) -> Callable[[BinaryIO], None]:
    """``count`` fixes 1 s apart, in the shortest rows a CSV track can have (Unix seconds)."""

    def write(f: BinaryIO) -> None:
        lon, lat, times = walk()
        start = int(times[0].timestamp())
        order = np.r_[np.arange(len(lon)), np.arange(len(lon))[::-1]]
        rows = [f"{lon[k]:.6f},{lat[k]:.6f}" for k in order]
        f.write(b"time,lon,lat\n")
        for first in range(0, count, len(rows)):
            block = range(first, min(count, first + len(rows)))
            f.write("".join(f"{start + i},{rows[i % len(rows)]}\n" for i in block).encode())

    return write


def _many_fixes_kmz(count: int) -> Callable[[BinaryIO], None]:
    """A KMZ whose KML holds ``count`` fixes: the walk again and again, one LineString each time,
    a little shifted each time (so that deflate packs it like a real track, not like a bomb)."""

    def write(f: BinaryIO) -> None:
        lon, lat, _ = walk()
        with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as archive, archive.open("doc.kml", "w") as member:
            member.write(KML_HEAD.encode())
            for p in range(count // len(lon) + 1):
                coords = " ".join(f"{x + p * 1e-6:.7f},{y - p * 1e-6:.7f}" for x, y in zip(lon, lat))
                member.write(
                    f"<Placemark><LineString><coordinates>{coords}</coordinates></LineString></Placemark>\n".encode()
                )
            member.write(b"</Document></kml>")

    return write


def _zip_bomb(expanded: int) -> Callable[[BinaryIO], None]:
    """A KMZ whose doc.kml claims (and holds) ``expanded`` bytes of spaces: deflate shrinks them ~1000×."""

    def write(f: BinaryIO) -> None:
        with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as archive:
            with archive.open("doc.kml", "w", force_zip64=True) as member:
                member.write(KML_HEAD.encode())
                chunk = b" " * MIB
                for _ in range(expanded // MIB):
                    member.write(chunk)
                member.write(b"</Document></kml>")

    return write


# --- the corpus ------------------------------------------------------------------------------------


def corpus(*, big: bool = False) -> Iterator[Hostile]:
    """Every member (``big=True``: the bench's big ones too)."""
    yield from _gpx()
    yield from _kml()
    yield from _geojson()
    yield from _csv()
    yield from _other()
    if big:
        yield from _big()


def _gpx() -> Iterator[Hostile]:
    lon, lat, times = walk()
    points = walk_points()
    yield Hostile("gpx-plain-walk", "walk.gpx", fixed(gpx_doc([points])), 201)
    yield Hostile(
        "gpx-segment-of-one-fix",
        "one-fix-segment.gpx",
        fixed(gpx_doc([trkpt(lon[0], lat[0], z(times[0])), walk_points(stamps(minutes=1))])),
        201,
    )
    one_each = [trkpt(x, y, z(t)) for x, y, t in zip(lon, lat, times)]
    yield Hostile(
        "gpx-every-fix-its-own-segment", "one-per-segment.gpx", fixed(gpx_doc(one_each)), 422, "single fix"
    )
    # Fix 401 two hours after fix 400, the rest two hours after that: a segment of one fix.
    late = stamps(hours=4)
    late_points = "".join(trkpt(x, y, w) for x, y, w in list(zip(lon, lat, late))[401:])
    head = "".join(trkpt(x, y, z(t)) for x, y, t in list(zip(lon, lat, times))[:400])
    lone = trkpt(lon[400], lat[400], z(times[400] + timedelta(hours=2)))
    yield Hostile(
        "gpx-fix-isolated-between-two-long-gaps",
        "isolated.gpx",
        fixed(gpx_doc([head + lone + late_points])),
        201,
    )
    yield Hostile(
        "gpx-times-in-year-10000",
        "y10000.gpx",
        fixed(
            gpx_doc([walk_points([t.replace(year=2026).strftime("10000-%m-%dT%H:%M:%SZ") for t in times])])
        ),
        422,
        "after 2099",
    )
    yield Hostile(
        "gpx-times-in-year-one",
        "y1.gpx",
        fixed(gpx_doc([walk_points([t.strftime("0001-%m-%dT%H:%M:%SZ") for t in times])])),
        422,
        "before 1980",
    )
    yield Hostile(
        "gpx-14-digit-epoch-times",
        "epoch14.gpx",
        fixed(gpx_doc([walk_points([str(int(t.timestamp() * 10000)) for t in times])])),
        422,
        "14 digits",
    )
    yield Hostile(
        "gpx-32-bit-epoch-minimum-times",
        "sentinel-1901.gpx",
        fixed(gpx_doc([walk_points(["1901-12-13T20:45:52Z"] * len(times))])),
        201,
    )
    yield Hostile(
        "gpx-unix-epoch-times",
        "sentinel-1970.gpx",
        fixed(gpx_doc([walk_points(["1970-01-01T00:00:00Z"] * len(times))])),
        201,
    )
    yield Hostile(
        "gpx-time-that-is-not-a-time",
        "now.gpx",
        fixed(gpx_doc([walk_points(["now"] * len(times))])),
        422,
        "not a date",
    )
    yield Hostile(
        "gpx-megabyte-long-time",
        "long-time.gpx",
        fixed(gpx_doc([trkpt(lon[0], lat[0], "2" * MIB) + walk_points()])),
        422,
        "longer than 64 characters",
    )
    yield Hostile(
        "gpx-reversed-times",
        "reversed.gpx",
        fixed(gpx_doc([walk_points(list(reversed(stamps())))])),
        422,
        "usable",
    )
    still = "".join(trkpt(lon[0], lat[0], z(t)) for t in times)
    yield Hostile("gpx-standing-still", "still.gpx", fixed(gpx_doc([still])), 201)
    yield Hostile("gpx-two-fixes", "two.gpx", fixed(gpx_doc([walk_points(count=2)])), 201)
    doubled = "".join(trkpt(x, y, z(t)) * 2 for x, y, t in zip(lon, lat, times))
    yield Hostile("gpx-every-fix-twice", "doubled.gpx", fixed(gpx_doc([doubled])), 201)
    yield Hostile(
        "gpx-all-fixes-at-null-island",
        "null-island.gpx",
        fixed(gpx_doc(["".join(trkpt(0.0, 0.0, z(t)) for t in times)])),
        422,
        "usable",
    )
    corners = [(180.0, 90.0), (-180.0, -90.0), (180.0, -90.0), (-180.0, 90.0)] * 10
    yield Hostile(
        "gpx-coordinates-at-plus-minus-180-90",
        "corners.gpx",
        fixed(gpx_doc(["".join(trkpt(x, y, z(times[i])) for i, (x, y) in enumerate(corners))])),
        422,
        "usable",
    )
    yield Hostile(
        "gpx-latitude-beyond-90",
        "lat91.gpx",
        fixed(gpx_doc([trkpt(lon[0], 91.0, z(times[0])) + walk_points()])),
        422,
        "beyond ±90",
    )
    yield Hostile(
        "gpx-nan-and-infinity",
        "nan.gpx",
        fixed(
            gpx_doc([walk_points() + '<trkpt lat="NaN" lon="Infinity"></trkpt>']).replace(
                b"</trkpt>\n</trkseg>", b"</trkpt></trkseg>"
            )
        ),
        422,
        "not a finite number",
    )
    yield Hostile(
        "gpx-latitude-of-5000-digits",
        "digits.gpx",
        fixed(gpx_doc([f'<trkpt lat="2{"0" * 5000}" lon="109.9"></trkpt>' + walk_points()])),
        422,
        "not a finite number",
    )
    yield Hostile(
        "gpx-elevation-not-a-number",
        "ele.gpx",
        fixed(gpx_doc([trkpt(lon[0], lat[0], z(times[0]), "<ele>" + "x" * 100_000 + "</ele>")])),
        422,
        "elevation",
    )
    yield Hostile(
        "gpx-very-long-chinese-track-name",
        "long-name.gpx",
        fixed(gpx_doc([points], name="红树林巡护" * 100_000)),
        201,
    )
    yield Hostile(
        "gpx-very-long-chinese-file-name", "红树林巡护" * 60 + ".gpx", fixed(gpx_doc([points], name="x")), 201
    )
    yield Hostile(
        "gpx-file-name-with-control-characters",
        "walk\x00\x1b[31m\r\n.gpx",
        fixed(gpx_doc([points], name="y")),
        201,
    )
    yield Hostile(
        "gpx-long-description",
        "description.gpx",
        fixed(
            gpx_doc(
                [points],
                name="d",
                extra="<metadata><desc>" + "<![CDATA[" + "<b>" * 200_000 + "]]></desc></metadata>",
            )
        ),
        201,
    )
    mixed = "".join(
        trkpt(x, y, z(t), "<ele>3.5</ele>" if i % 2 else "")
        for i, (x, y, t) in enumerate(zip(lon, lat, times))
    )
    yield Hostile("gpx-mixed-2d-and-3d", "mixed.gpx", fixed(gpx_doc([mixed])), 201)
    segments = [
        "".join(
            trkpt(lon[k], lat[k], z(times[0] + timedelta(seconds=2 * (3 * s + j))))
            for j, k in enumerate((s % 900, s % 900 + 1, s % 900 + 2))
        )
        for s in range(3000)
    ]
    yield Hostile("gpx-3000-segments", "segments.gpx", fixed(gpx_doc(segments)), 201)
    yield Hostile(
        "gpx-nested-300-deep",
        "deep.gpx",
        fixed(gpx_doc([points], extra="<extensions>" + "<a>" * 300 + "</a>" * 300 + "</extensions>")),
        422,
        "nested more than 256",
    )
    attributes = " ".join(f'a{i}="1"' for i in range(200_000))
    yield Hostile(
        "gpx-a-tag-of-200000-attributes",
        "attributes.gpx",
        fixed(gpx_doc([f'<trkpt lat="21.5" lon="109.8" {attributes}/>' + points])),
        422,
        "longer than 65,536 bytes",
    )
    laughs = (
        '<?xml version="1.0"?>\n<!DOCTYPE gpx [<!ENTITY a "hahahahahahahahahaha">'
        + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9))
        + "]>\n"
    )
    yield Hostile(
        "gpx-billion-laughs",
        "laughs.gpx",
        fixed(gpx_doc([points], head=laughs + '<gpx version="1.1">', name="&j;")),
        422,
        "dtd",
    )
    yield Hostile(
        "gpx-external-entity",
        "xxe.gpx",
        fixed(
            gpx_doc(
                [points],
                head='<?xml version="1.0"?>\n<!DOCTYPE gpx [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<gpx version="1.1">',
                name="&x;",
            )
        ),
        422,
        "dtd",
    )
    yield Hostile(
        "gpx-nul-byte",
        "nul.gpx",
        fixed(gpx_doc([points]).replace(b"<trkseg>", b"<trkseg>\x00", 1)),
        422,
        "not well-formed",
    )
    yield Hostile("gpx-utf8-bom", "bom.gpx", fixed(b"\xef\xbb\xbf" + gpx_doc([points])), 201)
    utf16 = gpx_doc([points]).decode().replace('encoding="UTF-8"', 'encoding="UTF-16"')
    yield Hostile("gpx-utf16", "utf16.gpx", fixed(utf16.encode("utf-16")), 201)
    yield Hostile(
        "gpx-latin1-bytes-declared-utf8",
        "latin1.gpx",
        fixed(gpx_doc([points], name="Mangrove").replace(b"Mangrove", "Manglé".encode("latin-1"))),
        422,
        "not well-formed",
    )
    yield Hostile("gpx-empty-file", "empty.gpx", fixed(b""), 422, "empty")
    yield Hostile("gpx-only-whitespace-and-bom", "blank.gpx", fixed(b"\xef\xbb\xbf \n\t\n"), 422, "empty")
    yield Hostile("gpx-truncated", "cut.gpx", fixed(gpx_doc([points])[:5000]), 422, "not well-formed")
    yield Hostile(
        "gpx-only-waypoints",
        "wpt.gpx",
        fixed(GPX_HEAD + '<wpt lat="21.6" lon="109.9"/></gpx>'),
        422,
        "no track",
    )


def _kml() -> Iterator[Hostile]:
    lon, lat, times = walk()
    whens = stamps()
    track = kml_track(whens, lon, lat)
    yield Hostile("kml-plain-walk", "walk.kml", fixed(kml_doc(track)), 201)
    yield Hostile("kml-two-copies-of-one-flight", "twice.kml", fixed(kml_doc(track + track)), 201)
    singles = "".join(kml_track([w], [x], [y]) for w, x, y in zip(whens, lon, lat))
    yield Hostile("kml-every-fix-its-own-track", "singles.kml", fixed(kml_doc(singles)), 422, "single fix")
    stray = "".join(f"<gx:coord>{x:.8f} {y:.8f} 1</gx:coord>" for x, y in zip(lon, lat))
    yield Hostile(
        "kml-coords-outside-any-track", "stray.kml", fixed(kml_doc(f"<Placemark>{stray}</Placemark>")), 201
    )
    yield Hostile(
        "kml-when-and-coord-unpaired",
        "unpaired.kml",
        fixed(kml_doc(kml_track(whens[:-1], lon, lat))),
        422,
        "pair up",
    )
    coords = " ".join(f"{x:.8f},{y:.8f}" + (",2" if i % 3 else "") for i, (x, y) in enumerate(zip(lon, lat)))
    yield Hostile(
        "kml-linestring-mixed-2d-3d",
        "mixed.kml",
        fixed(
            kml_doc(f"<Placemark><LineString><coordinates>{coords}</coordinates></LineString></Placemark>")
        ),
        201,
    )
    yield Hostile(
        "kml-billion-laughs",
        "laughs.kml",
        fixed(
            '<?xml version="1.0"?>\n<!DOCTYPE kml [<!ENTITY a "ha">'
            + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9))
            + ']>\n<kml xmlns="http://www.opengis.net/kml/2.2"><Document><name>&j;</name></Document></kml>'
        ),
        422,
        "dtd",
    )
    yield Hostile(
        "kml-year-10000",
        "y10000.kml",
        fixed(kml_doc(kml_track([w.replace("2026", "10000", 1) for w in whens], lon, lat))),
        422,
        "after 2099",
    )
    yield Hostile("kmz-plain-walk", "walk.kmz", fixed(zipped({"doc.kml": kml_doc(track)})), 201)
    yield Hostile("kmz-zip-bomb", "bomb.kmz", _zip_bomb(64 * MIB), 422, "zip bomb")
    yield Hostile(
        "kmz-member-outside-the-archive",
        "slip.kmz",
        fixed(zipped({"../../evil.kml": kml_doc(track)})),
        422,
        "outside",
    )
    yield Hostile(
        "kmz-with-3000-entries",
        "entries.kmz",
        fixed(
            zipped({f"f{i}.txt": b"" for i in range(3000)} | {"doc.kml": kml_doc(track)}, zipfile.ZIP_STORED)
        ),
        422,
        "entries",
    )
    yield Hostile("kmz-not-a-zip", "broken.kmz", fixed(b"PK\x03\x04" + b"\x00" * 200), 422, "zip")
    yield Hostile(
        "kmz-holding-a-kmz",
        "nested.kmz",
        fixed(zipped({"inner.kmz": zipped({"doc.kml": kml_doc(track)})})),
        422,
        "no track",
    )


def _geojson() -> Iterator[Hostile]:
    coords = walk_coords()
    times = stamps()
    plain = json.dumps(geojson_line(coords, times))
    yield Hostile("geojson-plain-walk", "walk.geojson", fixed(plain), 201)
    yield Hostile(
        "geojson-integer-of-5000-digits",
        "bigint.geojson",
        fixed(plain.replace('"properties": {', '"properties": {"id": 1' + "0" * 5000 + ", ", 1)),
        422,
        "digits",
    )
    yield Hostile(
        "geojson-coordinate-of-5000-digits",
        "bigfloat.geojson",
        fixed(plain.replace(f"[[{coords[0][0]}, ", "[[1" + "0" * 5000 + ".5, ", 1)),
        422,
        "not a finite number",
    )
    yield Hostile(
        "geojson-nested-100000-deep", "deep.geojson", fixed("[" * 100_000 + "]" * 100_000), 422, "nested"
    )
    yield Hostile(
        "geojson-properties-nested-100000-deep",
        "deep-props.geojson",
        fixed(
            plain.replace('"properties": {', '"properties": {"x": ' + "[" * 100_000 + "]" * 100_000 + ", ", 1)
        ),
        422,
        "nested",
    )
    yield Hostile(
        "geojson-nan-and-infinity",
        "nan.geojson",
        fixed(json.dumps(geojson_line([*coords, [float("nan"), float("inf")]]))),
        422,
        "not a finite number",
    )
    yield Hostile(
        "geojson-properties-not-an-object",
        "props.geojson",
        fixed(
            json.dumps(
                {
                    "type": "Feature",
                    "geometry": {"type": "LineString", "coordinates": coords},
                    "properties": [1, 2],
                }
            )
        ),
        201,
    )
    yield Hostile(
        "geojson-features-not-a-list",
        "features.geojson",
        fixed(json.dumps({"type": "FeatureCollection", "features": 5})),
        422,
        "no track",
    )
    yield Hostile(
        "geojson-coordinates-not-a-list",
        "coords.geojson",
        fixed(json.dumps({"type": "MultiLineString", "coordinates": 7})),
        422,
        "coordinates",
    )
    line = json.dumps({"type": "LineString", "coordinates": coords})
    nested = '{"type": "GeometryCollection", "geometries": [' * 300 + line + "]}" * 300
    yield Hostile("geojson-geometry-collections-300-deep", "gc.geojson", fixed(nested), 422, "nested")
    yield Hostile(
        "geojson-positions-of-wrong-shape",
        "shape.geojson",
        fixed(json.dumps(geojson_line([[[1, 2]], "x", {"a": 1}]))),
        422,
        "not [lon, lat",
    )
    mixed = [c + [2.5] if i % 2 else c for i, c in enumerate(coords)]
    yield Hostile(
        "geojson-mixed-2d-and-3d", "mixed.geojson", fixed(json.dumps(geojson_line(mixed, times))), 201
    )
    parts = [coords[i : i + 3] for i in range(0, 900, 3)] * 10
    yield Hostile(
        "geojson-3000-part-multilinestring",
        "parts.geojson",
        fixed(json.dumps({"type": "MultiLineString", "coordinates": parts})),
        201,
    )
    yield Hostile(
        "geojson-14-digit-epoch-times",
        "epoch14.geojson",
        fixed(
            json.dumps(
                geojson_line(coords, [int(datetime.fromisoformat(t).timestamp() * 10000) for t in times])
            )
        ),
        422,
        "14 digits",
    )
    lon, lat, when = walk()
    points = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [float(x), float(y)]},
            "properties": {"time": z(t)},
        }
        for x, y, t in zip(lon, lat, when)
    ]
    yield Hostile(
        "geojson-timed-points-each-twice",
        "points.geojson",
        fixed(json.dumps({"type": "FeatureCollection", "features": [p for p in points for _ in (0, 1)]})),
        201,
    )
    yield Hostile(
        "geojson-lone-surrogate-in-a-time",
        "surrogate.geojson",
        fixed(plain.replace(times[5], "\\ud800", 1)),
        422,
        "not a date",
    )
    yield Hostile("geojson-empty-object", "empty.geojson", fixed("{}"), 422, "no track")
    yield Hostile("geojson-not-json", "text.geojson", fixed("hello"), 422, "not valid json")
    yield Hostile("geojson-utf16", "utf16.geojson", fixed(plain.encode("utf-16")), 201)
    yield Hostile("geojson-utf8-bom", "bom.geojson", fixed(b"\xef\xbb\xbf" + plain.encode()), 201)
    yield Hostile(
        "geojson-raw-nul-in-a-string",
        "nul.geojson",
        fixed(plain.replace('"Feature"', '"Feat\x00ure"', 1)),
        422,
        "not valid json",
    )


def _csv() -> Iterator[Hostile]:
    lon, lat, times = walk()
    rows = csv_walk_rows()
    yield Hostile("csv-plain-walk", "walk.csv", fixed(csv_doc("time,lon,lat", rows)), 201)
    yield Hostile(
        "csv-year-one-without-zone",
        "y1.csv",
        fixed(csv_doc("time,lon,lat", csv_walk_rows(lambda t: t.strftime("0001-%m-%d %H:%M:%S")))),
        422,
        "before 1980",
    )
    yield Hostile(
        "csv-14-digit-epoch-times",
        "epoch14.csv",
        fixed(csv_doc("time,lon,lat", csv_walk_rows(lambda t: str(int(t.timestamp() * 10000))))),
        422,
        "14 digits",
    )
    yield Hostile(
        "csv-8-digit-dates",
        "yyyymmdd.csv",
        fixed(csv_doc("time,lon,lat", csv_walk_rows(lambda t: t.strftime("%Y%m%d")))),
        422,
        "8 digits",
    )
    yield Hostile(
        "csv-32-bit-epoch-minimum-in-china-time",
        "sentinel.csv",
        fixed(csv_doc("time,lon,lat", csv_walk_rows(lambda t: "1901-12-14 04:45:52"))),
        201,
    )
    yield Hostile(
        "csv-one-huge-field",
        "field.csv",
        fixed(csv_doc("time,lon,lat,note", [rows[0] + "," + "x" * 200_000, *(r + ",ok" for r in rows[1:])])),
        422,
        "longer than 65,536",
    )
    yield Hostile(
        "csv-one-3-mb-line",
        "line.csv",
        fixed(csv_doc("time,lon,lat", ["9" * (3 * MIB), *rows])),
        422,
        "line 2 is longer",
    )
    yield Hostile(
        "csv-a-million-columns",
        "columns.csv",
        fixed(csv_doc("time,lon,lat," + ",".join(f"c{i}" for i in range(1_000_000)), rows)),
        422,
        "line 1 is longer",
    )
    yield Hostile(
        "csv-2000-columns",
        "columns2000.csv",
        fixed(csv_doc("time,lon,lat" + "," * 2000, [r + "," * 2000 for r in rows])),
        422,
        "columns",
    )
    yield Hostile(
        "csv-2000-columns-after-the-header",
        "columns-rows.csv",
        fixed(csv_doc("time,lon,lat", [rows[0] + "," * 2000, *rows[1:]])),
        422,
        "2,003 columns",
    )
    yield Hostile(
        "csv-unclosed-quote",
        "quote.csv",
        fixed(
            csv_doc(
                "time,lon,lat,note",
                [rows[0] + ',"open', *(r + ",x" for r in rows[1:]), *(["y" * 1000] * 200)],
            )
        ),
        422,
        "unclosed quote",
    )
    yield Hostile(
        "csv-nul-bytes",
        "nul.csv",
        fixed(csv_doc("time,lon,lat", [r.replace(",", ",\x00", 1) for r in rows])),
        422,
        "not a number",
    )
    yield Hostile(
        "csv-gb18030",
        "gb.csv",
        fixed(csv_doc("时间,经度,纬度,备注", [r + ",红树林" for r in rows], encoding="gb18030")),
        201,
    )
    yield Hostile(
        "csv-utf16-tabs",
        "utf16.csv",
        fixed(csv_doc("time\tlon\tlat", [r.replace(",", "\t") for r in rows], encoding="utf-16")),
        201,
    )
    yield Hostile(
        "csv-each-fix-repeated-later",
        "repeated.csv",
        fixed(csv_doc("segment,time,lon,lat", [f"1,{r}" for r in rows] + [f"2,{r}" for r in rows])),
        201,
    )
    yield Hostile("csv-header-only", "header.csv", fixed("time,lon,lat\n"), 422, "no rows")
    yield Hostile("csv-no-position-columns", "nocols.csv", fixed("a,b,c\n1,2,3\n"), 422, "no header row")
    yield Hostile("csv-binary-noise", "noise.csv", fixed(bytes(range(256)) * 40), 422, "")


def _other() -> Iterator[Hostile]:
    yield Hostile(
        "unknown-extension", "walk.exe", fixed(b"MZ\x90\x00" + b"\x00" * 100), 415, "unsupported track format"
    )
    yield Hostile(
        "html-named-gpx",
        "page.gpx",
        fixed("<html><body><script>alert(1)</script></body></html>"),
        415,
        "<html>",
    )
    yield Hostile(
        "jpeg-named-kml", "photo.kml", fixed(b"\xff\xd8\xff\xe0" + b"\x00" * 500), 422, "not well-formed"
    )


def _big() -> Iterator[Hostile]:
    """Members over the tests' upload limit: the bench uploads them with its own limit."""
    rows = "".join(r + "\n" for r in csv_walk_rows()).encode()
    yield Hostile(
        "csv-one-40-mb-line",
        "line40.csv",
        _repeat(b"time,lon,lat\n", b"9" * MIB, 40, b"\n" + rows),
        422,
        "line 2 is longer",
        big=True,
    )
    yield Hostile(
        "csv-million-columns-in-every-row",
        "columns-big.csv",
        _repeat(b"time,lon,lat\n", b"1," * 1_000_000 + b"\n", 10),
        422,
        "line 2 is longer",
        big=True,
    )
    yield Hostile(
        "gpx-a-tag-of-2-million-attributes",
        "attributes2m.gpx",
        _repeat(
            GPX_HEAD.encode() + b'<trk><trkseg><trkpt lat="21.5" lon="109.8" ',
            b'a="1" ' * 1000,
            2000,
            b"/></trkseg></trk></gpx>",
        ),
        422,
        "longer than 65,536 bytes",
        big=True,
    )
    yield Hostile("gpx-40-mb-walk", "big40.gpx", _big_gpx(40 * MIB), 201, big=True)
    yield Hostile(
        "gpx-100-mb-walk", "big100.gpx", _big_gpx(100 * MIB), 422, "more than 500,000 fixes", big=True
    )
    yield Hostile("csv-the-most-fixes-allowed", "max.csv", _max_csv(500_000), 201, big=True)
    yield Hostile(
        "kmz-of-600000-fixes", "many.kmz", _many_fixes_kmz(600_000), 422, "more than 500,000 fixes", big=True
    )
    yield Hostile(
        "gpx-12-mb-chinese-track-name",
        "name12.gpx",
        _repeat(
            GPX_HEAD.encode() + b"<trk><name>", "红树林巡护".encode() * 1000, 900, b"</name></trk></gpx>"
        ),
        422,
        "10 mb",
        big=True,
    )
    yield Hostile(
        "kml-linestring-of-12-mb",
        "line12.kml",
        _repeat(
            KML_HEAD.encode() + b"<Placemark><LineString><coordinates>",
            b"109.9,21.6 " * 10_000,
            110,
            b"</coordinates></LineString></Placemark></Document></kml>",
        ),
        422,
        "10 mb",
        big=True,
    )
    yield Hostile(
        "geojson-30-mb-timed-points", "points30.geojson", _big_geojson_points(30 * MIB), 201, big=True
    )
    yield Hostile(
        "geojson-30-mb-line",
        "line30.geojson",
        _big_geojson_line(30 * MIB),
        422,
        "larger than 16 mib",
        big=True,
    )
    yield Hostile("geojson-10-mb-line", "line10.geojson", _big_geojson_line(10 * MIB), 201, big=True)
    yield Hostile("kmz-zip-bomb-of-1-gb", "bomb1g.kmz", _zip_bomb(1024 * MIB), 422, "zip bomb", big=True)
