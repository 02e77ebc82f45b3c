"""A JSON document read piece by piece: the outer object and one array in it are walked here, and
each of their values is decoded on its own by the ``json`` module (its C decoder), so memory holds
one value — one GeoJSON feature — at a time instead of the whole document.

Limits, each refused with a ``GeodataError`` naming the place and the limit:

* a single value (a feature) of more than ``MAX_VALUE_CHARS`` characters;
* nesting deeper than the interpreter allows the decoder (about 1,000 levels);
* an integer of more than ``MAX_INT_DIGITS`` digits (Python refuses over 4,300 and converting
  even those costs time; no coordinate or time needs more than 13). Long *floats* are harmless:
  they become a number or infinity, which the reader then refuses as not finite.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import numpy as np

from geodata.trackio.sink import refuse

MAX_VALUE_CHARS = 16 * 1024 * 1024
MAX_INT_DIGITS = 40
READ_BYTES = 1024 * 1024
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_BRACKETS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')
_NEAR_END = 16  # a decoding error this close to the end of the text read so far may be a cut-off
SCAN_CHARS = 1024 * 1024
_BRACKET_STEP = np.zeros(256, dtype=np.int8)
_BRACKET_STEP[[ord("["), ord("{")]] = 1
_BRACKET_STEP[[ord("]"), ord("}")]] = -1


def _size(chars: int) -> str:
    return f"{chars // 2**20} MiB" if chars >= 2**20 else f"{chars:,} characters"


class _IntTooLong(ValueError):
    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _IntTooLong(text)
    return int(text)


_DECODER = json.JSONDecoder(parse_int=_int)


class JsonStream:
    """The text of a binary JSON file, read in pieces and decoded one value at a time.

    ``pos`` indexes ``buf``, the text not yet consumed (plus a little before it); ``line``/``column``
    say where ``buf`` starts in the file, for messages."""

    def __init__(self, f: BinaryIO, *, what: str = "feature"):
        self.f = f
        self.what = what
        head = f.read(4)
        encoding = json.detect_encoding(head)  # UTF-8 (BOM or not), UTF-16 or UTF-32, as json.loads does
        self.decoder = codecs.getincrementaldecoder(encoding)()
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.line = 1  # of buf[0]
        self.column = 1  # of buf[0]
        self.offset = 0  # bytes read so far, for encoding errors
        self._scanned = self._depth = 0  # bracket scan of a big value (see _closes)
        self._decode(head)
        if self.buf.startswith("\ufeff"):
            self.buf = self.buf[1:]

    # -- reading ----------------------------------------------------------------------------------

    def _decode(self, data: bytes) -> None:
        try:
            self.buf += self.decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            at = self.offset + exc.start - len(self.decoder.getstate()[0])
            raise refuse(
                "encoding",
                f"not UTF-8 text: the byte at offset {max(at, 0)} is not valid UTF-8",
                offset=max(at, 0),
            ) from None
        self.offset += len(data)
        self.eof = not data

    def _more(self, limit: int | None = None) -> bool:
        """Read about as much again as is pending (at least ``READ_BYTES``, at most ``limit``);
        False at the end."""
        if self.eof:
            return False
        if self.pos:
            done = self.buf[: self.pos]
            newlines = done.count("\n")
            self.line += newlines
            self.column = (self.column if not newlines else 1) + len(done) - (done.rfind("\n") + 1)
            self.buf = self.buf[self.pos :]
            self.pos = 0
        size = max(READ_BYTES, len(self.buf))
        self._decode(self.f.read(size if limit is None else max(1, min(size, limit))))
        return True

    def where(self, pos: int) -> tuple[int, int]:
        """(line, column) of ``buf[pos]``."""
        newlines = self.buf.count("\n", 0, pos)
        if newlines:
            return self.line + newlines, pos - self.buf.rfind("\n", 0, pos)
        return self.line, self.column + pos

    def peek(self) -> str:
        """The next character that is not white space ("" at the end), without consuming it."""
        while True:
            self.pos = _WHITESPACE.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return ""

    def expect(self, chars: str) -> str:
        """Consume one of ``chars`` (after white space) and return it; refuse anything else."""
        ch = self.peek()
        if not ch or ch not in chars:
            found = f"{ch!r}" if ch else "the end of the file"
            wanted = " or ".join(repr(c) for c in chars)
            raise self._malformed(self.pos, f"Expecting {wanted}, found {found}")
        self.pos += 1
        return ch

    def value(self) -> Any:
        """Decode the next value (after white space), reading more text until it is complete."""
        self.peek()
        while True:
            start = self.pos
            try:
                value, end = _DECODER.raw_decode(self.buf, start)
            except json.JSONDecodeError as exc:
                cut_off = exc.pos >= len(self.buf) - _NEAR_END or exc.msg.startswith("Unterminated string")
                if cut_off and self._grow(start):
                    # A big value: read on without decoding until its brackets close (each failed
                    # decode of megabytes of text would cost its objects in memory).
                    self._scanned, self._depth = 0, 0
                    while not self.eof and not self._closes() and self._grow(self.pos):
                        pass
                    continue
                raise self._malformed(exc.pos, exc.msg) from None
            except _IntTooLong as exc:
                line, column = self.where(self.buf.find(exc.text, start))
                raise refuse(
                    "number-too-long",
                    f"the number at line {line}, column {column} has {len(exc.text.lstrip('-')):,} digits "
                    f"({exc.text[:20]}…); at most {MAX_INT_DIGITS} are read in an integer",
                    line=line,
                    column=column,
                    limit=MAX_INT_DIGITS,
                ) from None
            except RecursionError:
                raise self._too_deep(start) from None
            if end == len(self.buf) and self._grow(start):
                continue  # a number may go on in the text not yet read
            self.pos = end
            return value

    def _closes(self) -> bool:
        """Whether the array or object at ``pos`` closes in the text read so far, scanning only
        what was not scanned before. Brackets inside strings count too: a guess that the decode
        then confirms (or the size limit ends)."""
        if self.buf[self.pos : self.pos + 1] not in ("[", "{"):
            return True  # a string or a number: nothing to count
        while self.pos + self._scanned < len(self.buf):
            at = self.pos + self._scanned
            piece = self.buf[at : at + SCAN_CHARS]
            steps = _BRACKET_STEP[np.frombuffer(piece.encode("utf-8", "surrogatepass"), dtype=np.uint8)]
            depth = self._depth + np.cumsum(steps, dtype=np.int64)
            if depth.size and (depth <= 0).any():
                return True
            self._depth = int(depth[-1]) if depth.size else self._depth
            self._scanned += len(piece)
        return False

    def _grow(self, start: int) -> bool:
        """Read more for the value starting at ``buf[start]``; refuse it once over the size limit."""
        pending = len(self.buf) - start
        if pending > MAX_VALUE_CHARS:
            line, column = self.where(start)
            raise refuse(
                "feature-too-large",
                f"the {self.what} starting at line {line}, column {column} is larger than "
                f"{_size(MAX_VALUE_CHARS)}, the most one {self.what} may have; split the track into "
                "several features or files",
                line=line,
                column=column,
                limit=MAX_VALUE_CHARS,
            )
        self.pos = start
        # Never more than the limit (+1, to know it is passed) in the buffer: a failed decode of the
        # text read so far costs memory too.
        return self._more(limit=MAX_VALUE_CHARS + 1 - pending)

    # -- walking ----------------------------------------------------------------------------------

    def members(self, streamed: str, on_item: Callable[[Any], None]) -> dict[str, Any] | None:
        """Walk the outer object: every member is decoded and returned, except ``streamed``, an
        array whose items are decoded one by one and handed to ``on_item`` (a non-array value of
        that name is returned like the others). None if the document is valid JSON but no object."""
        if self.peek() != "{":
            self.value()
            if self.peek():
                raise self._malformed(self.pos, "Extra data")
            return None
        self.expect("{")
        members: dict[str, Any] = {}
        if self.peek() == "}":
            self.pos += 1
        else:
            while True:
                key = self.value()
                if not isinstance(key, str):
                    raise self._malformed(self.pos, "Expecting property name enclosed in double quotes")
                self.expect(":")
                if key == streamed and self.peek() == "[":
                    for item in self._items():
                        on_item(item)
                else:
                    members[key] = self.value()
                if self.expect(",}") == "}":
                    break
        if self.peek():
            raise self._malformed(self.pos, "Extra data")
        return members

    def _items(self) -> Iterator[Any]:
        self.expect("[")
        if self.peek() == "]":
            self.pos += 1
            return
        while True:
            yield self.value()
            if self.expect(",]") == "]":
                return

    # -- refusals ---------------------------------------------------------------------------------

    def _malformed(self, pos: int, msg: str):
        line, column = self.where(pos)
        return refuse(
            "malformed-json",
            f"the file is not valid JSON at line {line}, column {column}: {msg}",
            line=line,
            column=column,
        )

    def _too_deep(self, start: int):
        """Where the nesting passed ~1,000 levels (brackets inside strings skipped), for the message."""
        depth, at = 0, start
        for match in _BRACKETS.finditer(self.buf, start):
            token = match.group()
            if token in "[{":
                depth += 1
                if depth > 900:
                    at = match.start()
                    break
            elif token in "]}":
                depth -= 1
        line, column = self.where(at)
        return refuse(
            "json-too-deep",
            f"the JSON is nested more than about 1,000 levels deep at line {line}, column {column}; "
            "GeoJSON needs fewer than 10",
            line=line,
            column=column,
        )
