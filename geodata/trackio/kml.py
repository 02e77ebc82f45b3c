"""KML (2.0–2.3, with or without the ``gx:`` extensions) and KMZ.

Tracks are ``gx:Track`` / KML 2.3 ``Track`` (``when`` + ``coord`` pairs), inside ``gx:MultiTrack``
or not, and ``LineString`` (also as parts of a ``MultiGeometry``); each is one segment. Point
placemarks alone are not a track.

Where a file has timed tracks, its ``LineString``s are left out (with a warning): GPS apps and
GPSBabel export each track twice, once as ``gx:Track`` and once as a drawn path, and reading both
would walk every metre twice.

Every element is handled at its own end event and cleared at once, so memory stays flat.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import PurePosixPath

import numpy as np
from lxml import etree

from geodata.fixes import TrackFixes
from geodata.trackio.sink import FixSink, refuse
from geodata.trackio.times import CHUNK, NAT, BadTime, excerpt
from geodata.trackio.xmlsafe import drop_previous, iterparse, local_name, malformed

# KMZ guards: far above a real track, far below what would hurt the server.
MAX_KMZ_ENTRIES = 1000
MAX_KML_BYTES = 256 * 1024 * 1024  # uncompressed size of the KML read from a KMZ
MAX_KMZ_RATIO = 200  # uncompressed/compressed; deflate tops out near 1000 on crafted input

DROP_EVERY = 1024
NAN = float("nan")
_COMMA_SPACE = re.compile(r"\s*,\s*")  # "lon, lat" is invalid KML but common


def read_kml(source, *, max_fixes: int, source_format: str = "KML") -> TrackFixes:
    """Read a KML document (path or binary file object). The DTD check must already have been done."""
    tracks = FixSink(max_fixes=max_fixes, source_format=source_format)
    lines = FixSink(max_fixes=max_fixes, source_format=source_format, where_label="coordinates from line")
    names: dict = {}
    points = 0
    track = _TrackState(tracks)
    handled = 0
    try:
        for _, el in iterparse(source):
            tag = el.tag
            local = names.get(tag)
            if local is None:
                local = names[tag] = local_name(tag)
            if local == "coord":  # only a Track has <coord>
                track.coord(el.text, el.sourceline)
            elif local == "when":  # a Track's, or a TimeStamp's (taken back when the TimeStamp ends)
                track.when(el.text)
            elif local == "TimeStamp" and len(el):  # its <when> is still there, cleared
                track.forget_when()
            elif local == "Track":
                track.end(el.sourceline)
            elif local == "coordinates":
                parent = el.getparent()
                plocal = local_name(parent.tag) if parent is not None else ""
                if plocal == "LineString":
                    _add_line(lines, el.text or "", el.sourceline)
                elif plocal == "Point":
                    points += 1
            el.clear()
            handled += 1
            # Sweeping cleared siblings costs a few calls: done at once for the rare large elements,
            # every DROP_EVERY elements for the many small ones.
            if not handled % DROP_EVERY or (local != "when" and local != "coord"):
                drop_previous(el)
    except etree.XMLSyntaxError as exc:
        raise malformed(exc) from None
    if track.ncoord:  # <gx:coord>s outside any <gx:Track>: read as one more track
        track.end(track.last_line)

    if len(tracks):
        if len(lines):
            tracks.warn(
                "lines-ignored",
                f"the file has timed tracks (gx:Track) and also {len(lines):,} points of untimed "
                "lines (LineString); only the timed tracks were read, as GPS apps draw the same "
                "track again as a line",
                count=len(lines),
            )
        return tracks.finish()
    if len(lines):
        return lines.finish()
    if points:
        plural = "point" if points == 1 else "points"
        raise refuse("no-track", f"no track in file: only {points} placemark {plural}", points=points)
    raise refuse("no-track", "no track in file: it has no LineString or gx:Track")


class _TrackState:
    """One ``Track`` being read: ``coord``s go straight into the sink, ``when``s are converted in
    chunks and joined to them when the track ends (writers put all ``when``s first)."""

    def __init__(self, sink: FixSink):
        self.sink = sink
        self._reset()

    def _reset(self) -> None:
        self.start = len(self.sink)  # first fix of this track in the sink
        self.pending: list[str] = []
        self.times: list[np.ndarray] = []
        self.ncoord = 0
        self.nwhen = 0
        self.empty: list[int] = []  # positions (among this track's coords) of empty <coord/>
        self.last_line = 0

    def when(self, text: str | None) -> None:
        if len(self.pending) >= CHUNK:  # before appending, so that forget_when can always undo
            self._convert()
        self.pending.append(text or "")
        self.nwhen += 1

    def forget_when(self) -> None:
        """Take back the last ``when``: it was a TimeStamp's, not this track's."""
        if self.pending:
            self.pending.pop()
            self.nwhen -= 1

    def _convert(self) -> None:
        try:
            ms = self.sink.times.convert(self.pending)
        except BadTime as exc:
            i = self.start + sum(len(t) for t in self.times) + exc.index
            i = min(i, len(self.sink) - 1) if len(self.sink) else 0
            raise self.sink.bad_time(i, exc.text, exc.reason) from None
        self.times.append(ms)
        self.pending = []

    def coord(self, text: str | None, line: int) -> None:
        sink = self.sink
        parts = text.split() if text else ()
        self.ncoord += 1
        self.last_line = line
        if not parts:
            # A time without a position (OpenTracks writes these at pauses): skip it, and do not
            # join the fixes either side of it into one line.
            self.empty.append(self.ncoord - 1)
            sink.end_segment()
            return
        try:
            if len(parts) == 3:
                ele = float(parts[2])
            elif len(parts) == 2:
                ele = NAN
            else:
                raise ValueError
            lon, lat = float(parts[0]), float(parts[1])
        except ValueError:
            sink.lines.append(line)
            raise sink.bad_value(len(sink.lon), "coordinate", text) from None
        sink.lines.append(line)
        sink.lon.append(lon)
        sink.lat.append(lat)
        sink.ele.append(ele)
        if not self.ncoord % 1024:
            sink.check_count()

    def end(self, line: int) -> None:
        sink = self.sink
        if self.nwhen and self.nwhen != self.ncoord:
            raise refuse(
                "track-mismatch",
                f"the track ending on line {line} has {self.nwhen} times (<when>) but "
                f"{self.ncoord} positions (<coord>); they must pair up",
                line=line,
            )
        kept = len(sink) - self.start
        if self.nwhen:
            self._convert()
            ms = np.concatenate(self.times)
            if self.empty:
                ms = np.delete(ms, self.empty)
            sink.times.extend_ms(ms)
        else:
            sink.times.extend_ms(np.full(kept, NAT, dtype=np.int64))
        if self.empty:
            sink.warn(
                "position-missing",
                f"{len(self.empty)} times without a position (empty <coord/>) in the track ending on "
                f"line {line} were skipped",
                line=line,
                count=len(self.empty),
            )
        sink.end_segment()
        self._reset()


def _add_line(sink: FixSink, text: str, line: int) -> None:
    """A LineString's ``lon,lat[,alt]`` tuples, parsed in one numpy call, as one segment."""
    raw = text
    text = _COMMA_SPACE.sub(",", text.strip())
    tuples = text.split()
    if not tuples:
        return
    commas = text.count(",")
    dims = 3 if commas == 2 * len(tuples) else 2 if commas == len(tuples) else 0
    try:
        if not dims:
            raise ValueError  # tuples of mixed sizes: the slow path sorts them out
        values = np.array(text.replace(",", " ").split(), dtype=np.float64).reshape(-1, dims)
    except ValueError:
        values = _parse_tuples(sink, raw, line)
    ele = values[:, 2] if values.shape[1] == 3 else np.full(len(values), np.nan)
    sink.extend(values[:, 0], values[:, 1], ele, line)
    sink.end_segment()


def _parse_tuples(sink: FixSink, text: str, line: int) -> np.ndarray:
    """One tuple at a time, to accept mixed 2D/3D tuples and to name the line of a bad one."""
    rows = []
    for offset, text_line in enumerate(text.split("\n")):
        for tup in _COMMA_SPACE.sub(",", text_line).split():
            parts = tup.split(",")
            try:
                if len(parts) not in (2, 3):
                    raise ValueError
                rows.append([float(p) for p in parts] + [np.nan] * (3 - len(parts)))
            except ValueError:
                i = len(sink) + len(rows)
                message = (
                    f"fix {i + 1} (line {line + offset}): the coordinate {excerpt(tup)} is not lon,lat[,alt]"
                )
                raise refuse("bad-number", message, fix=i + 1, line=line + offset) from None
    return np.array(rows, dtype=np.float64)


class _CappedReader:
    """A zip member read no further than ``limit`` bytes, whatever its header claims."""

    def __init__(self, raw, limit: int):
        self.raw = raw
        self.left = limit

    def read(self, n: int = -1) -> bytes:
        try:
            data = self.raw.read(16384 if n is None or n < 0 else n)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise refuse("bad-archive", f"the KMZ archive is damaged ({exc})") from None
        self.left -= len(data)
        if self.left < 0:
            raise refuse("archive-too-large", "the KML inside the KMZ is larger than its archive entry says")
        return data

    def close(self) -> None:
        self.raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextmanager
def open_kmz(path) -> Iterator[Callable[[], _CappedReader]]:
    """Check a KMZ archive and yield a function that opens its KML (``doc.kml`` or the first one).

    Refuses unsafe member names (``../``, absolute paths) and zip bombs, judged by the declared
    sizes before anything is decompressed; the reader then also caps the bytes actually read.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise refuse("bad-archive", f"the KMZ file is not a readable zip archive ({exc})") from None
    with archive:
        yield _checked_member(archive)


def _checked_member(archive: zipfile.ZipFile) -> Callable[[], _CappedReader]:
    infos = archive.infolist()
    if len(infos) > MAX_KMZ_ENTRIES:
        raise refuse("bad-archive", f"the KMZ archive has {len(infos):,} entries; at most {MAX_KMZ_ENTRIES}")
    for info in infos:
        name = info.filename.replace("\\", "/")
        if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in PurePosixPath(name).parts:
            raise refuse(
                "unsafe-archive",
                f"the KMZ archive has an entry named {info.filename!r} that points outside the archive",
                entry=info.filename,
            )
    kmls = [i for i in infos if not i.is_dir() and i.filename.lower().endswith(".kml")]
    if not kmls:
        raise refuse("no-track", "no track in file: the KMZ archive holds no .kml document")
    info = next((i for i in kmls if i.filename.lower() == "doc.kml"), kmls[0])
    if info.file_size > MAX_KML_BYTES:
        raise refuse(
            "archive-too-large",
            f"the KML inside the KMZ is {info.file_size / 2**20:,.0f} MiB uncompressed; "
            f"at most {MAX_KML_BYTES // 2**20} MiB",
            entry=info.filename,
        )
    if info.file_size > MAX_KMZ_RATIO * max(info.compress_size, 1):
        raise refuse(
            "zip-bomb",
            f"the KML inside the KMZ would expand {info.file_size / max(info.compress_size, 1):,.0f} times; "
            "that is a zip bomb, not a track",
            entry=info.filename,
        )

    def open_member():
        try:
            return _CappedReader(archive.open(info), info.file_size)
        except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError) as exc:
            # damaged header, unknown compression method, or encrypted
            raise refuse("bad-archive", f"the KMZ archive cannot be opened ({exc})") from None

    return open_member
