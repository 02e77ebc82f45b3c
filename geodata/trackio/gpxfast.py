"""A fast path for plain GPX: the common shape of a device's track read straight from the bytes.

Most uploaded GPX files are a header and then tens of thousands of points written exactly alike:
``<trkpt lat="…" lon="…"><ele>…</ele><time>…</time></trkpt>``. ``read_gpx`` (lxml ``iterparse``)
spends about 5 µs of Python on each such point; this module reads them in bulk instead: a regular
expression cuts each block of the file into point records and other tokens, numpy converts the
numbers, and the times go through the same ``TimeBuffer`` as ever.

Nothing is taken on trust. Every byte also goes through libxml2, with the same safe options, behind
the same ``TagGuard``, in a SAX pass that builds no tree, so a malformed file is caught exactly as
before. Two checks libxml2 makes only while building a tree are made here: nesting depth and
namespace prefixes (none are allowed past the root's start tag, which a tree-building parser
reads). And the fast path gives up — ``read_fast`` returns None, and ``read_gpx`` reads the file
from the start — on anything it does not fully understand: another encoding, comments, CDATA,
processing instructions, prefixes, a point with other attributes or children, numbers or times
outside a strict form, routes, a file without track points, a libxml2 complaint, any refusal.
Whenever it does answer, the answer (fixes, segments, warnings, format label) is the one
``read_gpx`` gives; ``tests/geodata/test_gpx_fast.py`` compares the two on many shapes. It keeps no
line numbers: they only ever appear in refusals, and every refusal is left to ``read_gpx``.
"""

from __future__ import annotations

import re
from itertools import compress

import numpy as np
from lxml import etree

from geodata.errors import GeodataError
from geodata.fixes import TrackFixes
from geodata.trackio.sink import FixSink
from geodata.trackio.times import CHUNK, BadTime
from geodata.trackio.xmlsafe import SAFE, TagGuard

BLOCK = 1 << 22  # bytes scanned at a time (4 MiB): memory stays flat for any file size
MAX_DEPTH = 64  # deeper files are left to read_gpx (libxml2 refuses 256; GPX needs about 6)
_NUM = rb"[-+.0-9eE]"  # a number's characters: where float() and numpy agree (checked by converting)
# One point record and the blanks after it; possessive (++, *+) so that nothing backtracks. ``\s``
# also takes \f and \v, which XML refuses: libxml2 then does. Groups: the first attribute's name
# and value, the second's, the elevation, the time.
_RECORD = re.compile(
    rb"<trkpt\s++(l..)=\"(" + _NUM + rb"*+)\"\s++(l..)=\"(" + _NUM + rb"*+)\"\s*+>\s*+"
    rb"(?:<ele>\s*+(" + _NUM + rb"++)\s*+</ele>\s*+)?(?:<time>([^<&\r]*+)</time>\s*+)?</trkpt>\s*+"
)
_FIELDS = 7  # re.split's stride: the text before a record, then its six groups
# Between records: tags (quotes respected: ">" may be in an attribute value) and text.
_TOKEN = re.compile(rb"<[^>\"']*+(?:(?:\"[^\"]*+\"|'[^']*+')[^>\"']*+)*+>|[^<]++")
_QUOTED = re.compile(rb"\"[^\"]*\"|'[^']*'")
_TAG_NAME = re.compile(rb"<(/?)([^ \t\r\n/>]+)")
_ENCODING = re.compile(rb"^<\?xml[^>]*encoding[ \t\r\n]*=[ \t\r\n]*[\"']([A-Za-z0-9._-]+)[\"']")
_SEGMENT_ENDS = (b"trkseg", b"trk")


class _GiveUp(Exception):
    """The file is not of the plain shape this path reads: read_gpx reads it."""


class _Null:
    """A SAX target that keeps nothing: libxml2 checks the document and builds no tree."""

    def close(self) -> None:
        return None


def read_fast(path, *, max_fixes: int) -> TrackFixes | None:
    """The fixes of a plain GPX file, exactly as ``read_gpx`` reads them, or None (give up)."""
    try:
        with TagGuard(open(path, "rb")) as source:
            return _read(source, max_fixes)
    except (_GiveUp, GeodataError, etree.XMLSyntaxError, UnicodeDecodeError, ValueError, OverflowError):
        return None


def _read(source: TagGuard, max_fixes: int) -> TrackFixes:
    checker = etree.XMLParser(target=_Null(), **SAFE)
    sink = FixSink(max_fixes=max_fixes, source_format="GPX")
    scan = _Scan(sink)
    head = source.read(BLOCK)
    pending = scan.start(head)  # before libxml2's pass: a file of another shape costs little
    checker.feed(head)
    while True:
        block = source.read(BLOCK)
        if block:
            pending += block
        # Cut after the last point record's end: a record never straddles two scans.
        cut = pending.rfind(b"</trkpt>") + len(b"</trkpt>") if block else len(pending)
        if cut < len(b"</trkpt>") and block:
            cut = pending.rfind(b">") + 1
        scan.feed(pending[:cut])
        pending = pending[cut:]
        if block:
            checker.feed(block)
        if len(sink) > max_fixes:
            raise _GiveUp("too many fixes: read_gpx says so")
        if not block:
            break
    checker.close()
    if pending or scan.depth != 0 or not len(sink):
        raise _GiveUp("unbalanced, or no track points")
    sink.end_segment()
    sink.flush_times(full_chunks_only=False)
    sink.source_format = scan.label
    return sink.finish()


class _Scan:
    def __init__(self, sink: FixSink):
        self.sink = sink
        self.depth = 0
        self.label = "GPX"

    def start(self, head: bytes) -> bytes:
        """Check the prolog and the root's start tag; return the bytes after it."""
        if head.startswith(b"\xef\xbb\xbf"):
            raise _GiveUp("a byte-order mark")  # libxml2's line and column count differ; rare
        declared = _ENCODING.match(head)
        if declared and declared.group(1).lower() not in (b"utf-8", b"utf8", b"us-ascii", b"ascii"):
            raise _GiveUp("not UTF-8")
        root = head.find(b"<", head.find(b"?>") + 2 if head.startswith(b"<?xml") else 0)
        if root < 0 or head.startswith(b"<!", root) or head.startswith(b"<?", root):
            raise _GiveUp("comment or declaration before the root")
        end = _TOKEN.match(head, root)
        if end is None or not end.group().startswith(b"<"):
            raise _GiveUp("no root start tag in the first block")
        tag = end.group()
        if tag.endswith(b"/>") or _TAG_NAME.match(tag).group(2) != b"gpx":
            raise _GiveUp("root")
        # A tree-building parser reads the root's start tag (closed at once): the namespace errors
        # libxml2 reports only while building a tree are raised for it as read_gpx would raise them.
        reader = etree.XMLPullParser(events=("start",), **SAFE)
        reader.feed(head[: end.end()] + b"</gpx>")
        root_element = next(iter(reader.read_events()))[1]
        reader.close()
        version = root_element.get("version")
        self.label = f"GPX {version}" if version in ("1.0", "1.1") else "GPX"
        self.depth = 1
        return head[end.end() :]

    def feed(self, text: bytes) -> None:
        if not text:
            return
        # A comment or CDATA may hide anything; a processing instruction may hold a ">". (A
        # reference, "&…;", can only be in text or attributes this path does not read: a record
        # admits none.)
        if b"<!" in text or b"<?" in text:
            raise _GiveUp("comments, CDATA or processing instructions")
        if b"\r" in text and text.count(b"\r") != text.count(b"\r\n"):
            raise _GiveUp("bare carriage returns")  # libxml2 counts their lines its own way
        parts = _RECORD.split(text)
        gaps = parts[0::_FIELDS]  # gaps[i]: what comes before record i (empty between most)
        bounds = []  # records before which a segment ends
        for i in compress(range(len(gaps)), gaps):  # the non-empty ones, found in C
            if self._other(gaps[i]):
                bounds.append(i)
        self._add(parts, len(gaps) - 1, bounds)

    def _other(self, gap: bytes) -> bool:
        """Check what lies between two records; True if a track segment ends in it."""
        if b"<trkp" in gap or b"<rte" in gap:
            raise _GiveUp("a point this path does not read, or a route")
        tokens = _TOKEN.findall(gap)
        if sum(map(len, tokens)) != len(gap):
            raise _GiveUp("does not tile into tokens")
        ends = False
        for token in tokens:
            if token[:1] != b"<":
                continue
            closing, name = _TAG_NAME.match(token).groups()
            names = _QUOTED.sub(b"", token)  # the tag's name and attribute names
            if b":" in names or b"xmlns" in names:
                raise _GiveUp("namespace prefixes or declarations past the root")
            if name in (b"trkpt", b"rtept", b"rte") or name.startswith(b"trkp"):
                raise _GiveUp(f"a {name.decode(errors='replace')} this path does not read")
            empty = token.endswith(b"/>")
            if closing:
                self.depth -= 1
            elif not empty:
                self.depth += 1
                if self.depth > MAX_DEPTH:
                    raise _GiveUp("deep nesting")
            if (closing or empty) and name in _SEGMENT_ENDS:
                ends = True
        return ends

    def _add(self, parts: list[bytes], count: int, bounds: list[int]) -> None:
        sink = self.sink
        if not count:
            for _ in bounds:
                sink.end_segment()
            return
        first, second = parts[1::_FIELDS], parts[3::_FIELDS]
        if first.count(b"lat") == count and second.count(b"lon") == count:
            lat = np.array(parts[2::_FIELDS], dtype=np.float64)
            lon = np.array(parts[4::_FIELDS], dtype=np.float64)
        else:  # "lon" first in some or all
            lat_first = np.array([name == b"lat" for name in first])
            names_ok = np.where(
                lat_first,
                np.array(second) == b"lon",
                (np.array(first) == b"lon") & (np.array(second) == b"lat"),
            )
            if not names_ok.all():
                raise _GiveUp("attributes other than lat and lon")
            a = np.array(parts[2::_FIELDS], dtype=np.float64)
            b = np.array(parts[4::_FIELDS], dtype=np.float64)
            lat, lon = np.where(lat_first, a, b), np.where(lat_first, b, a)
        ele_text = parts[5::_FIELDS]
        missing = ele_text.count(None)
        if not missing:
            ele = np.array(ele_text, dtype=np.float64)
        else:
            ele = np.full(count, np.nan)
            has = np.array([e is not None for e in ele_text])
            if missing < count:
                ele[has] = np.array([e for e in ele_text if e is not None], dtype=np.float64)
        times = parts[6::_FIELDS]
        plain = None not in times  # every fix has a time element (else "" for those without)
        if not plain:
            times = [b"" if t is None else t for t in times]
        done = 0
        for end in [*bounds, count]:
            end = min(end, count)
            if end > done:
                sink.lon.frombytes(lon[done:end].tobytes())
                sink.lat.frombytes(lat[done:end].tobytes())
                sink.ele.frombytes(ele[done:end].tobytes())
                if not (plain and _plain_times(sink, times[done:end])):
                    _add_times(sink, [t.decode() for t in times[done:end]])
                done = end
            if end < count or end in bounds:
                sink.end_segment()


def _plain_times(sink: FixSink, raw: list[bytes]) -> bool:
    """Times all plain UTC, appended in one go (checked as ever); False if not all are."""
    try:
        return sink.times.extend_plain_utc(raw)
    except BadTime as exc:
        raise sink.bad_time(exc.index, exc.text, exc.reason) from None


def _add_times(sink: FixSink, strs: list[str]) -> None:
    """Pending times, converted in the chunks read_gpx converts them in (every ``CHUNK``)."""
    pending = sink.times.pending
    while strs:
        room = CHUNK - len(pending)
        pending.extend(strs[:room])
        strs = strs[room:]
        if len(pending) >= CHUNK:
            sink.flush_times(full_chunks_only=False)
