"""XML from users, read safely: no DTD, no entities, no network, no huge text nodes, and streamed.

A document type declaration is refused outright, before the body is parsed: it is the doorway for
entity expansion ("billion laughs") and external entities (``file:///etc/passwd``), and no GPS
track needs one. The prolog is read with a pull parser and the raw bytes are checked too, so that
neither a declaration in an odd encoding nor one libxml2 would skip gets through.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import BinaryIO

from lxml import etree

from geodata.trackio.sink import refuse

# Every parser that touches user XML gets these.
SAFE = {"resolve_entities": False, "no_network": True, "load_dtd": False, "huge_tree": False}
# libxml2's own limits without XML_PARSE_HUGE, named in refusals.
MAX_DEPTH = 256
MAX_TEXT_BYTES = 10_000_000
MAX_TAG_BYTES = 64 * 1024  # a start or end tag with its attributes (see TagGuard)
PROLOG_LIMIT = 1024 * 1024  # the root element must start within the first MiB
_DECLARATION = re.compile(rb"<!(?:DOCTYPE|ENTITY)")
_ELEMENT_START = re.compile(rb"<[^?!]")
_LONG_TAG = re.compile(rb"<[^!?][^>]{%d}" % MAX_TAG_BYTES)
_TRAILING_POSITION = re.compile(r",? line \d+, column \d+\s*$")

Opener = Callable[[], BinaryIO]


def dtd_refused() -> Exception:
    return refuse(
        "xml-dtd",
        "XML with a DTD or entities is not accepted: the file declares a document type "
        "(<!DOCTYPE …>), which GPS tracks never need; export it again without one",
    )


def root_tag(open_source: Opener) -> str:
    """Read up to the root element's start tag, refuse any DTD/entity declaration, return the tag."""
    parser = etree.XMLPullParser(events=("start",), **SAFE)
    seen = 0
    in_prolog = True
    with open_source() as f:
        while seen < PROLOG_LIMIT:
            chunk = f.read(16384)
            if in_prolog:  # a quick look at the raw bytes before the first element, for ASCII-like encodings
                body = _ELEMENT_START.search(chunk)
                if _DECLARATION.search(chunk, 0, body.start() if body else len(chunk)):
                    raise dtd_refused()
                in_prolog = body is None
            if not chunk:
                _close(parser)  # raises the parser's own complaint (empty document, …)
                break
            seen += len(chunk)
            try:
                parser.feed(chunk)
            except etree.XMLSyntaxError as exc:
                raise malformed(exc) from None
            for _, element in parser.read_events():
                docinfo = element.getroottree().docinfo
                if docinfo.doctype or docinfo.internalDTD is not None:
                    raise dtd_refused()
                return element.tag
    raise refuse("malformed-xml", "the file is not XML with a root element in its first MiB")


def _close(parser: etree.XMLPullParser) -> None:
    try:
        parser.close()
    except etree.XMLSyntaxError as exc:
        raise malformed(exc) from None


def malformed(exc: etree.XMLSyntaxError):
    """lxml's syntax error as a ``GeodataError`` that names the line (and column)."""
    line, column = exc.position if exc.position else (exc.lineno, 0)
    what = _TRAILING_POSITION.sub("", exc.msg or str(exc)).strip()
    where = f"line {line}, column {column}" if column else f"line {line}"
    if "XML_PARSE_HUGE" in what:  # huge_tree=False: a text over 10 MB or nesting over 256 deep
        what = re.sub(r",? (?:try|use) XML_PARSE_HUGE( option)?", "", what).strip()
        if "depth" in what.lower():
            advice = f"elements are nested more than {MAX_DEPTH} deep, which no GPS track needs"
        else:
            advice = (
                f"a text or attribute longer than {MAX_TEXT_BYTES // 1_000_000} MB; a single LineString of "
                "several hundred thousand points is: split it into several"
            )
        return refuse(
            "xml-limit",
            f"the file goes beyond a safety limit of the XML reader at {where} ({what}): {advice}",
            line=line,
            column=column,
        )
    return refuse(
        "malformed-xml", f"the file is not well-formed XML at {where}: {what}", line=line, column=column
    )


def iterparse(source, tag=None) -> etree.iterparse:
    """Streaming ``end`` events (filtered by ``tag`` if given) with the safe options. ``source``
    should be a ``TagGuard``."""
    return etree.iterparse(source, events=("end",), tag=tag, **SAFE)


class TagGuard:
    """A binary reader in front of lxml that refuses a start or end tag longer than
    ``MAX_TAG_BYTES`` before the parser sees it: libxml2 stops a tag only at 10 MB, and a tag of
    two million short attributes costs it 500 MB first. (``<!…>`` and ``<?…?>`` are not tags.)"""

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self.tail = b""  # a tag begun but not ended in what was read
        self.newlines = 0  # before ``tail``

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n if n and n > 0 else 65536)
        window = self.tail + data
        found = _LONG_TAG.search(window)
        if found:
            line = self.newlines + window.count(b"\n", 0, found.start()) + 1
            raise refuse(
                "xml-limit",
                f"the tag starting on line {line} is longer than {MAX_TAG_BYTES:,} bytes (a GPS track's "
                "are a few dozen): the file is not a track",
                line=line,
                limit=MAX_TAG_BYTES,
            )
        # Only a tag still open at the end can grow too long with the next read.
        start = window.rfind(b"<")
        keep = window[start:] if start > window.rfind(b">") else b""
        self.newlines += window.count(b"\n", 0, len(window) - len(keep))
        self.tail = keep
        return data

    def close(self) -> None:
        self.raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def guarded(path) -> TagGuard:
    """``path`` opened for lxml behind a ``TagGuard``."""
    return TagGuard(open(path, "rb"))  # noqa: SIM115 (closed by the caller's with)


def local_name(tag) -> str:
    """'{ns}trkpt' → 'trkpt'; '' for comments and processing instructions (whose tag is a function)."""
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def drop_previous(element) -> None:
    """Free the already handled siblings before ``element`` (``clear`` alone leaves empty shells)."""
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]
