"""Time stamps in bulk: the common ``…Z`` form goes through numpy in one call; the rest one by one.

Readers collect the raw strings ("" where a fix has no time) in a ``TimeBuffer``; every
``CHUNK`` strings are converted to int64 milliseconds, so memory holds at most one chunk of
Python strings however long the track is.
"""

from __future__ import annotations

import re
import warnings
from array import array
from datetime import UTC, datetime, timedelta

import numpy as np

NAT = np.iinfo(np.int64).min  # the int64 pattern of NaT
CHUNK = 65_536
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_OFFSET = re.compile(r"(?:[Zz]|[+-]\d\d(?::?\d\d)?)$")
_SLASHED = re.compile(
    r"^(\d{4})[/.](\d{1,2})[/.](\d{1,2})(?:[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2})(\.\d+)?)?)?$"
)
_EPOCH_DIGITS = re.compile(r"^\d{10}(?:\.\d+)?$|^\d{13}$")


class BadTime(ValueError):
    """A time stamp that could not be read; ``index`` is its position in the chunk."""

    def __init__(self, index: int, text: str):
        super().__init__(text)
        self.index = index
        self.text = text


def parse_times(strs: list[str]) -> tuple[np.ndarray, int]:
    """ISO-8601 strings ("" = missing) → (int64 ms since 1970 UTC, NaT pattern where missing;
    number of naive times, taken as UTC). Raises ``BadTime`` for the first unreadable one."""
    if {s[-1:] for s in strs} <= {"Z", ""}:
        # The common case (every GPS writer's UTC form): strip the Z, let numpy parse all at once.
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # numpy only warns about a time zone it would ignore
                return np.array([s[:-1] for s in strs], dtype="datetime64[ms]").view(np.int64), 0
        except (ValueError, UserWarning, DeprecationWarning):
            pass  # something odd in the chunk: the slow path finds and names it
    out = np.empty(len(strs), dtype=np.int64)
    naive = 0
    for i, s in enumerate(strs):
        ms, was_naive = _parse_one(i, s)
        out[i] = ms
        naive += was_naive
    return out, naive


def _parse_one(i: int, text: str) -> tuple[int, bool]:
    s = text.strip()
    if not s:
        return NAT, False
    if not s[0].isdigit():  # numpy would read "now" and "today" as times
        raise BadTime(i, text)
    if _EPOCH_DIGITS.match(s):  # Unix time: seconds (10 digits) or milliseconds (13)
        return (int(s) if len(s) == 13 else round(float(s) * 1000)), False
    m = _SLASHED.match(s)
    if m:  # 2026/3/2 8:05:00 — spreadsheet exports
        y, mo, d, h, mi, sec, frac = m.groups()
        try:
            dt = datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(sec or 0))
        except ValueError as exc:
            raise BadTime(i, text) from exc
        ms = (dt.replace(tzinfo=UTC) - _EPOCH) // _MS + int(float(frac or 0) * 1000)
        return ms, True
    try:
        if _OFFSET.search(s):
            if s[-1] in "Zz":
                s = s[:-1] + "+00:00"
            dt = datetime.fromisoformat(s)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                return int(np.datetime64(s, "ms").view(np.int64)), True
    except (ValueError, UserWarning, DeprecationWarning) as exc:
        raise BadTime(i, text) from exc
    if dt.tzinfo is None:
        return (dt.replace(tzinfo=UTC) - _EPOCH) // _MS, True
    return (dt - _EPOCH) // _MS, False


class TimeBuffer:
    """Time strings as they come, converted to int64 ms in chunks. ``pending`` is public so that a
    reader's inner loop can append to it directly (``FixSink.flush_times`` converts them)."""

    def __init__(self) -> None:
        self.ms = array("q")
        self.pending: list[str] = []
        self.naive = 0

    def __len__(self) -> int:
        return len(self.ms) + len(self.pending)

    def flush(self) -> None:
        """Convert the pending strings. Raises ``BadTime`` with ``index`` counted from the start."""
        if not self.pending:
            return
        try:
            ms, naive = parse_times(self.pending)
        except BadTime as exc:
            raise BadTime(len(self.ms) + exc.index, exc.text) from None
        self.ms.frombytes(ms.tobytes())
        self.naive += naive
        self.pending.clear()

    def extend_ms(self, values: np.ndarray) -> None:
        """Append already converted times (int64 ms, NaT pattern where missing)."""
        self.flush()
        self.ms.frombytes(np.ascontiguousarray(values, dtype=np.int64).tobytes())

    def array(self) -> np.ndarray:
        self.flush()
        return np.frombuffer(self.ms, dtype=np.int64).copy().view("datetime64[ms]")
