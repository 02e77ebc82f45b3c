"""Time stamps in bulk: the common ``…Z`` form goes through numpy in one call; the rest one by one.

This module is the one place where time text from a file becomes a number (int64 milliseconds
since 1970 UTC, later ``datetime64[ms]``), and every value is checked here:

* a time outside ``EARLIEST`` … ``LATEST`` is refused (``BadTime`` names the limit): nothing later
  (Python ``datetime``, the databases, effort arithmetic) then meets a year 1 or a year 10000;
* a device's "no time" placeholder (``SENTINELS``: the 32-bit epoch minimum, the Unix epoch, the
  GPS epoch) is read as a missing time, and counted so that the reader can say so.

Readers collect the raw strings ("" where a fix has no time) in a ``TimeBuffer``; every
``CHUNK`` strings are converted, so memory holds at most one chunk of Python strings however long
the track is.
"""

from __future__ import annotations

import re
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
_EPOCH_SECONDS = re.compile(r"^\d{10}(?:\.\d+)?$")
_EPOCH_MS = re.compile(r"^\d{13}$")
_DIGITS = re.compile(r"^\d+(?:\.\d*)?$")
MAX_TIME_CHARS = 64  # longer text is no time stamp (and is not parsed at all)


def _ms(text: str) -> int:
    return int(np.datetime64(text, "ms").view(np.int64))


# Accepted times: from the GPS epoch (no satellite fix is older) to the end of the century. Fixed
# bounds, not "now": a station laptop whose clock battery died must still accept today's tracks.
EARLIEST_TEXT, LATEST_TEXT = "1980-01-06T00:00:00Z", "2100-01-01T00:00:00Z"
EARLIEST, LATEST = _ms(EARLIEST_TEXT[:-1]), _ms(LATEST_TEXT[:-1])
# Placeholders devices write when they have no time (whole seconds; any fraction of that second
# matches, as some converters add one): the most negative 32-bit Unix time, the Unix epoch, and
# the GPS epoch (week 0 of a receiver without a fix).
SENTINELS = {
    "1901-12-13T20:45:52Z": "the 32-bit Unix time minimum",
    "1970-01-01T00:00:00Z": "the Unix epoch",
    "1980-01-06T00:00:00Z": "the GPS epoch",
}
_SENTINEL_S = np.array([_ms(t[:-1]) // 1000 for t in SENTINELS], dtype=np.int64)
_CHINA_S = 8 * 3600  # a placeholder written as China wall-clock time, read as naive


class BadTime(ValueError):
    """A time stamp that could not be read or is out of range; ``index`` is its position in the
    chunk, ``reason`` completes "the time '…' …" (e.g. "is not a date and time that can be read")."""

    def __init__(self, index: int, text: str, reason: str = "is not a date and time that can be read"):
        super().__init__(text)
        self.index = index
        self.text = text
        self.reason = reason


def excerpt(text: str, limit: int = 40) -> str:
    """``text`` quoted for a message, cut to ``limit`` characters: a refusal must stay short
    whatever the file holds."""
    text = str(text).strip()
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"… ({len(text):,} characters)"


def parse_times(strs: list[str]) -> tuple[np.ndarray, int, int]:
    """ISO-8601 strings ("" = missing) → (int64 ms since 1970 UTC, NaT pattern where missing;
    number of naive times, taken as UTC; number of placeholder times, read as missing).

    Raises ``BadTime`` for the first unreadable or out-of-range one."""
    ms = naive_mask = None
    if {s[-1:] for s in strs} <= {"Z", ""}:
        # The common case (every GPS writer's UTC form): strip the Z, let numpy parse all at once.
        # numpy would only *warn* about a zone offset and then ignore it, so a chunk with anything
        # that could be one ("+", or a "-" past the date) goes the slow path. (Not by turning
        # warnings into errors: the warning filters are process-wide, and a request parsing a
        # track must not turn another thread's harmless warning into a failure.)
        stripped = [s[:-1] for s in strs]
        if max(map(len, strs), default=0) <= MAX_TIME_CHARS and not any(
            "+" in s or s.count("-") > 2 for s in stripped
        ):
            try:
                ms = np.array(stripped, dtype="datetime64[ms]").view(np.int64)
                naive_mask = np.zeros(len(strs), dtype=bool)
            except (ValueError, OverflowError):
                ms = None  # something odd in the chunk: the slow path finds and names it
    if ms is None:
        ms = np.empty(len(strs), dtype=np.int64)
        naive_mask = np.zeros(len(strs), dtype=bool)
        for i, s in enumerate(strs):
            ms[i], naive_mask[i] = _parse_one(i, s)
    return _checked(strs, ms, naive_mask)


def _checked(strs: list[str], ms: np.ndarray, naive: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Placeholders become NaT; anything else outside EARLIEST … LATEST is refused."""
    known = ms != NAT
    seconds = np.floor_divide(ms, 1000)
    sentinel = known & (np.isin(seconds, _SENTINEL_S) | (naive & np.isin(seconds - _CHINA_S, _SENTINEL_S)))
    ms = np.where(sentinel, NAT, ms)
    known &= ~sentinel
    early = known & (ms < EARLIEST)
    late = known & (ms >= LATEST)
    if early.any() or late.any():
        i = int(np.flatnonzero(early | late)[0])
        reason = (
            f"is before {EARLIEST_TEXT[:10]}, the start of GPS time"
            if early[i]
            else f"is after {int(LATEST_TEXT[:4]) - 1}, the last year accepted"
        )
        raise BadTime(i, strs[i], f"{reason}; check the device's clock or the exporting app's settings")
    return ms, int(np.count_nonzero(naive & known)), int(np.count_nonzero(sentinel))


def _parse_one(i: int, text: str) -> tuple[int, bool]:
    s = text.strip()
    if not s:
        return NAT, False
    if len(s) > MAX_TIME_CHARS:
        raise BadTime(i, text, f"is longer than {MAX_TIME_CHARS} characters, so it is no time stamp")
    if not s[0].isascii() or not s[0].isdigit():  # numpy would read "now" and "today" as times
        raise BadTime(i, text)
    if _EPOCH_SECONDS.match(s):  # Unix time in seconds
        return round(float(s) * 1000), False
    if _EPOCH_MS.match(s):  # … or in milliseconds
        return int(s), False
    if _DIGITS.match(s):  # numpy would read 20260302 or a 14-digit count as a year
        reason = (
            f"is a number of {len(s.split('.')[0])} digits: neither Unix seconds (10 digits) nor "
            "milliseconds (13 digits), nor a date"
        )
        raise BadTime(i, text, reason)
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
        else:  # no offset (checked above), so nothing for numpy to ignore
            return int(np.datetime64(s, "ms").view(np.int64)), True
    except (ValueError, OverflowError) as exc:
        raise BadTime(i, text) from exc
    try:
        if dt.tzinfo is None:
            return (dt.replace(tzinfo=UTC) - _EPOCH) // _MS, True
        return (dt - _EPOCH) // _MS, False
    except OverflowError as exc:  # year 1 with a positive offset
        raise BadTime(i, text, f"is before {EARLIEST_TEXT[:10]}, the start of GPS time") from exc


def plain_utc_ms(raw: list[bytes]) -> np.ndarray | None:
    """Times all written exactly ``YYYY-MM-DDTHH:MM:SSZ`` (what most GPS loggers write) → int64 ms,
    computed with numpy arithmetic on the digits; None when any is written otherwise or names a
    day or time that does not exist, for ``parse_times`` to read (and name). Where this answers,
    the values are the ones ``parse_times`` gives (numpy's proleptic Gregorian calendar)."""
    n = len(raw)
    joined = b"".join(raw)
    if len(joined) != 20 * n:
        return None
    a = np.frombuffer(joined, dtype=np.uint8).reshape(n, 20)
    if not (
        (a[:, [4, 7]] == ord("-")).all()
        and (a[:, 10] == ord("T")).all()
        and (a[:, [13, 16]] == ord(":")).all()
        and (a[:, 19] == ord("Z")).all()
    ):
        return None
    d = a[:, [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]].astype(np.int64) - ord("0")
    if ((d < 0) | (d > 9)).any():
        return None
    year = d[:, 0] * 1000 + d[:, 1] * 100 + d[:, 2] * 10 + d[:, 3]
    month, day = d[:, 4] * 10 + d[:, 5], d[:, 6] * 10 + d[:, 7]
    hour, minute, second = d[:, 8] * 10 + d[:, 9], d[:, 10] * 10 + d[:, 11], d[:, 12] * 10 + d[:, 13]
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[np.clip(month, 0, 12)]
    month_days = month_days + (leap & (month == 2))
    if (
        (month < 1)
        | (month > 12)
        | (day < 1)
        | (day > month_days)
        | (hour > 23)
        | (minute > 59)
        | (second > 59)
    ).any():
        return None
    # Days since 1970-01-01 (H. Hinnant's days_from_civil).
    y = year - (month <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    doy = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468
    return ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000


class _Decoded:
    """``raw[i]`` as text, for a message (decoded only when one is made)."""

    def __init__(self, raw: list[bytes]):
        self.raw = raw

    def __getitem__(self, i: int) -> str:
        return self.raw[i].decode("utf-8", "replace")


class TimeBuffer:
    """Time strings as they come, converted to int64 ms in chunks. ``pending`` is public so that a
    reader's inner loop can append to it directly (``FixSink.flush_times`` converts them).
    ``naive`` and ``sentinels`` count the times read without a zone and the placeholders."""

    def __init__(self) -> None:
        self.ms = array("q")
        self.pending: list[str] = []
        self.naive = 0
        self.sentinels = 0

    def __len__(self) -> int:
        return len(self.ms) + len(self.pending)

    def convert(self, strs: list[str]) -> np.ndarray:
        """Parse ``strs`` (``BadTime.index`` counted within them), count them, return int64 ms."""
        ms, naive, sentinels = parse_times(strs)
        self.naive += naive
        self.sentinels += sentinels
        return ms

    def flush(self) -> None:
        """Convert the pending strings. Raises ``BadTime`` with ``index`` counted from the start."""
        if not self.pending:
            return
        try:
            ms = self.convert(self.pending)
        except BadTime as exc:
            raise BadTime(len(self.ms) + exc.index, exc.text, exc.reason) from None
        self.ms.frombytes(ms.tobytes())
        self.pending.clear()

    def extend_plain_utc(self, raw: list[bytes]) -> bool:
        """Append times given as bytes if every one is plain UTC (see ``plain_utc_ms``), checked
        and counted like any other; False (nothing appended) otherwise. Raises ``BadTime`` (index
        counted from the start) for a time outside the accepted years."""
        ms = plain_utc_ms(raw)
        if ms is None:
            return False
        try:
            ms, naive, sentinels = _checked(_Decoded(raw), ms, np.zeros(len(raw), dtype=bool))
        except BadTime as exc:
            self.flush()
            raise BadTime(len(self.ms) + exc.index, exc.text, exc.reason) from None
        self.naive += naive
        self.sentinels += sentinels
        self.extend_ms(ms)
        return True

    def extend_ms(self, values: np.ndarray) -> None:
        """Append times already converted by ``convert`` (int64 ms, NaT pattern where missing)."""
        self.flush()
        self.ms.frombytes(np.ascontiguousarray(values, dtype=np.int64).tobytes())

    def array(self) -> np.ndarray:
        self.flush()
        return np.frombuffer(self.ms, dtype=np.int64).view("datetime64[ms]")
