"""Track cleaning: small rules that *flag* bad fixes (never delete them), then gap splitting.

Modelled on movingpandas' cleaner/splitter classes (one class per rule, each testable alone) and on
ecoscope, which flags fixes instead of dropping them so that a patrol's raw record stays complete and
every decision can be shown to the person who uploaded it.

``clean`` runs the rules of ``RULES`` in a fixed order. Each rule sees a ``RuleContext``: the
track's arrays, metric coordinates (UTM 49N) and ``good``, the fixes no earlier rule has flagged. It
returns a boolean mask; its flag is OR-ed into those fixes' bitmask and they stop being good. Rules
about a single position (zero island, out of region) judge every fix, so a fix at (0, 0) carries
both ZERO_ISLAND and OUT_OF_REGION; rules comparing a fix with its predecessor compare it with the
previous *good* fix of the same file segment. Fixes without time are skipped by the time-based rules:
their speed is unknown, never invented. Finally ``GapSplit`` starts a new segment where consecutive
good fixes are too far apart in time (or, without time, in distance), renumbering ``segment``.

Everything is vectorised over the track. The one Python loop, in ``ImpossibleSpeed``, runs over the
legs that are already too fast (none in a clean track, a handful in a typical one).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntFlag, StrEnum

import numpy as np

from geodata.crs import METRIC, WGS84, transformer
from geodata.errors import InputError, Problem
from geodata.fixes import TrackFixes
from geodata.region import in_region

ZERO_ISLAND_DEG = 1e-6  # |lon| and |lat| below this: the (0, 0) "Null Island" of a device without a fix


class Transport(StrEnum):
    """How the patrol moved; it sets the highest believable speed."""

    FOOT = "foot"
    BOAT = "boat"

    @classmethod
    def parse(cls, text: str | Transport) -> Transport:
        """``text`` as a transport: "foot", "walk", "on foot", "步行", "徒步", "boat", "by boat", "船"…

        Raises ``InputError`` naming the accepted values otherwise."""
        if isinstance(text, Transport):
            return text
        key = re.sub(r"[\s\-_.]+", "", str(text or "")).lower()
        if key in _TRANSPORT_ALIASES:
            return _TRANSPORT_ALIASES[key]
        message = f"unknown transport {text!r}: use foot (walk, 步行) or boat (船)"
        raise InputError(
            message,
            [Problem("unknown-transport", message, {"value": str(text), "accepted": [t.value for t in cls]})],
        )


_TRANSPORT_ALIASES: dict[str, Transport] = {
    **dict.fromkeys(
        ["foot", "onfoot", "byfoot", "walk", "walking", "hike", "hiking", "步行", "徒步", "走路", "步巡"],
        Transport.FOOT,
    ),
    **dict.fromkeys(["boat", "byboat", "ship", "vessel", "船", "乘船", "坐船", "船巡"], Transport.BOAT),
}


class Flag(IntFlag):
    """Why a fix is not used. A fix may carry several (a bitmask); 0 means good."""

    ZERO_ISLAND = 1  # at (0, 0): a device reporting before it had a position
    OUT_OF_REGION = 2  # outside the service region's bounding box (also NaN coordinates)
    DUPLICATE = 4  # same time as the previous good fix (or, both without time, the same position)
    TIME_BACKWARDS = 8  # earlier than a previous good fix of the same segment
    IMPOSSIBLE_SPEED = 16  # reached at a speed the transport cannot do: a spike or a short excursion
    JUMP = 32  # without usable time, far from both neighbours that are close together: a spike
    REPEATED = 64  # the time of an earlier good fix elsewhere in the file: a second copy of the track


def describe_flags(flags: int) -> list[str]:
    """Names of the flags set in one fix's bitmask, e.g. ``["zero_island", "out_of_region"]``."""
    value = int(flags)
    return [flag.name.lower() for flag in Flag if value & flag]


@dataclass(frozen=True)
class CleaningRules:
    """Thresholds of the cleaning rules (see ``patrol.settings`` for the deployed values)."""

    # Highest believable speed: on foot a brisk walk or jog on mudflats with margin; by boat a small
    # outboard boat at full throttle (20 m/s ≈ 39 knots).
    max_speed_mps: Mapping[str, float] = field(
        default_factory=lambda: {Transport.FOOT: 4.0, Transport.BOAT: 20.0}
    )
    gap_split_s: float = 600.0  # a new segment after more than 10 minutes without a fix
    gap_split_m: float = 1000.0  # … or, where time is unknown, after a jump of more than 1 km
    # GPS noise allowed on every leg: a leg is too fast only if longer than max speed × time + this,
    # so the jitter of a phone logging every second while standing still is not a speed.
    noise_m: float = 20.0
    # The longest run of consecutive fixes the speed rule treats as one excursion (a spike of several
    # fixes) and the longest start or end of a segment it will flag when it is cut off by a jump.
    max_outlier_fixes: int = 10

    def max_speed(self, transport: Transport | str) -> float:
        transport = Transport.parse(transport)
        if transport not in self.max_speed_mps:
            raise ValueError(f"CleaningRules.max_speed_mps has no speed for {transport.value!r}")
        return float(self.max_speed_mps[transport])


@dataclass
class RuleContext:
    """What a rule sees. ``good`` is updated by ``clean`` after each rule."""

    lon: np.ndarray
    lat: np.ndarray
    x: np.ndarray  # metres, UTM 49N
    y: np.ndarray
    time_ms: np.ndarray  # int64 milliseconds since the epoch; meaningless where not ``timed``
    timed: np.ndarray  # bool
    run: np.ndarray  # int64: the file segment, as consecutive runs numbered from 0
    good: np.ndarray  # bool: not flagged by an earlier rule
    max_speed_mps: float
    rules: CleaningRules

    @classmethod
    def build(
        cls, fixes: TrackFixes, transport: Transport | str, rules: CleaningRules = CleaningRules()
    ) -> RuleContext:
        """The context for a track with every fix still good (to run a rule on its own)."""
        n = len(fixes)
        lon = np.asarray(fixes.lon, dtype=float)
        lat = np.asarray(fixes.lat, dtype=float)
        time = np.asarray(fixes.time).astype("datetime64[ms]", copy=False)
        segment = np.asarray(fixes.segment)
        x, y = metric_xy(lon, lat)
        run = np.zeros(n, dtype=np.int64)
        if n:
            run[1:] = np.cumsum(segment[1:] != segment[:-1])
        return cls(
            lon=lon,
            lat=lat,
            x=x,
            y=y,
            time_ms=time.view(np.int64),
            timed=~np.isnat(time),
            run=run,
            good=np.ones(n, dtype=bool),
            max_speed_mps=rules.max_speed(transport),
            rules=rules,
        )

    @property
    def seconds(self) -> np.ndarray:
        return np.where(self.timed, self.time_ms / 1000.0, np.nan)

    def pairs(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Indices (a, b) of consecutive fixes among ``mask`` that lie in the same file segment."""
        idx = np.flatnonzero(mask)
        a, b = idx[:-1], idx[1:]
        same = self.run[a] == self.run[b]
        return a[same], b[same]

    def distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.hypot(self.x[b] - self.x[a], self.y[b] - self.y[a])

    def too_fast(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Mask of legs a → b longer than max speed × time + noise (False where a time is unknown)."""
        seconds = self.seconds
        dt = seconds[b] - seconds[a]
        return self.distance(a, b) > self.max_speed_mps * dt + self.rules.noise_m


# --- the rules, in the order they run ------------------------------------------------------------------


class ZeroIsland:
    """A position at (0, 0), exactly or within 1e-6°."""

    flag = Flag.ZERO_ISLAND

    def apply(self, ctx: RuleContext) -> np.ndarray:
        return (np.abs(ctx.lon) < ZERO_ISLAND_DEG) & (np.abs(ctx.lat) < ZERO_ISLAND_DEG)


class OutOfRegion:
    """Outside ``geodata.region.REGION_BBOX`` (NaN coordinates included)."""

    flag = Flag.OUT_OF_REGION

    def apply(self, ctx: RuleContext) -> np.ndarray:
        return ~in_region(ctx.lon, ctx.lat)


class Duplicate:
    """The same time as the previous good fix (whatever the position: the later one is flagged), or,
    when both have no time, the same position."""

    flag = Flag.DUPLICATE

    def apply(self, ctx: RuleContext) -> np.ndarray:
        # Comparing with the previous good fix or with the previous *kept* one gives the same answer:
        # "same time" and "same untimed position" are equivalence relations.
        a, b = ctx.pairs(ctx.good)
        timed_a, timed_b = ctx.timed[a], ctx.timed[b]
        same_time = timed_a & timed_b & (ctx.time_ms[a] == ctx.time_ms[b])
        same_place = ~timed_a & ~timed_b & (ctx.lon[a] == ctx.lon[b]) & (ctx.lat[a] == ctx.lat[b])
        out = np.zeros(len(ctx.lon), dtype=bool)
        out[b[same_time | same_place]] = True
        return out


class RepeatedTime:
    """The same time as an earlier good fix anywhere before it in the file (another segment, or
    further back in the same one): the second copy of a track written twice, as a KML holding the
    same flight in two ``gx:Track``s. One person is in one place at a time, so the later copy is
    flagged and its metres and minutes count once. (Consecutive equal times are ``Duplicate``'s.)"""

    flag = Flag.REPEATED

    def apply(self, ctx: RuleContext) -> np.ndarray:
        out = np.zeros(len(ctx.lon), dtype=bool)
        idx = np.flatnonzero(ctx.good & ctx.timed)
        if idx.size < 2:
            return out
        order = np.argsort(ctx.time_ms[idx], kind="stable")  # equal times stay in file order
        times = ctx.time_ms[idx][order]
        again = np.r_[False, times[1:] == times[:-1]]
        out[idx[order[again]]] = True
        return out


class TimeBackwards:
    """Earlier than the previous good fix with a time in the same file segment.

    Flagging every fix earlier than the latest time seen so far in its segment is the same as
    comparing each with the previous kept fix, since the kept times never decrease."""

    flag = Flag.TIME_BACKWARDS

    def apply(self, ctx: RuleContext) -> np.ndarray:
        out = np.zeros(len(ctx.lon), dtype=bool)
        idx = np.flatnonzero(ctx.good & ctx.timed)
        if idx.size < 2:
            return out
        # A running maximum per segment: rank the times, put the segment in front (segments are
        # consecutive runs, so the key only grows across a segment boundary) and accumulate.
        _, rank = np.unique(ctx.time_ms[idx], return_inverse=True)
        run = ctx.run[idx]
        key = run * idx.size + rank.reshape(-1)
        latest_before = np.maximum.accumulate(key)[:-1]
        back = (run[1:] == run[:-1]) & (key[1:] < latest_before)
        out[idx[1:][back]] = True
        return out


class ImpossibleSpeed:
    """Reached from the previous good fix faster than the transport can move.

    Only the fixes that are wrong are flagged, not the good fix after them. For every too-fast leg
    a → b (in order, skipping those already explained), the rule looks up to ``max_outlier_fixes``
    fixes ahead for the first fix j reachable from a: then b … j-1 were an excursion (a spike of one
    or more fixes) and are flagged, unless the fixes of the segment before a are fewer (a bad start,
    e.g. a stale position before the receiver settled), which are flagged instead. With no way back,
    the shorter side of the jump is flagged if it has at most ``max_outlier_fixes`` fixes (a bad
    start or end of a segment); otherwise the jump is left alone and ``GapSplit`` cuts the segment
    there, since which side is wrong cannot be told.
    """

    flag = Flag.IMPOSSIBLE_SPEED

    def apply(self, ctx: RuleContext) -> np.ndarray:
        out = np.zeros(len(ctx.lon), dtype=bool)
        idx = np.flatnonzero(ctx.good & ctx.timed)
        if idx.size < 2:
            return out
        flagged = _speed_outliers(
            ctx.x[idx],
            ctx.y[idx],
            ctx.time_ms[idx] / 1000.0,
            ctx.run[idx],
            ctx.max_speed_mps,
            ctx.rules.noise_m,
            ctx.rules.max_outlier_fixes,
        )
        out[idx[flagged]] = True
        return out


def _speed_outliers(x, y, t, run, max_speed, noise, max_fixes) -> np.ndarray:
    """The speed rule on the timed good fixes alone (times non-decreasing within each run)."""
    n = len(x)
    flagged = np.zeros(n, dtype=bool)
    same = run[1:] == run[:-1]
    fast = same & (np.hypot(np.diff(x), np.diff(y)) > max_speed * np.diff(t) + noise)
    legs = np.flatnonzero(fast)
    if not legs.size:
        return flagged
    run_starts = np.flatnonzero(np.r_[True, ~same])
    run_ends = np.r_[run_starts[1:], n]
    run_of = np.cumsum(np.r_[True, ~same]) - 1

    def reachable(a: int, js: np.ndarray) -> np.ndarray:
        return np.hypot(x[js] - x[a], y[js] - y[a]) <= max_speed * (t[js] - t[a]) + noise

    resume = 0  # legs before this fix are already explained
    piece_start = 0  # first fix after the last flagged start or unexplained jump
    for k in legs.tolist():
        if k < resume:
            continue
        b = k + 1
        run_start, run_end = run_starts[run_of[k]], run_ends[run_of[k]]
        lo = max(run_start, piece_start)
        before = k - lo + 1  # fixes a side of the jump: lo … k and b … run_end - 1
        after = run_end - b
        window = np.arange(b + 1, min(run_end, b + 1 + max_fixes))
        back = window[reachable(k, window)] if window.size else window
        if back.size and not before < back[0] - b:
            flagged[b : back[0]] = True  # an excursion b … j-1, back at j
            resume = back[0]
        elif back.size or (before <= max_fixes and before < after):
            flagged[lo:b] = True  # a bad start of the segment
            resume = piece_start = b
        elif after <= max_fixes:
            flagged[b:run_end] = True  # a bad end of the segment
            resume = run_end
        else:
            resume = piece_start = b  # a jump between two long stretches: GapSplit cuts here
    return flagged


class Jump:
    """Without usable time on either leg, more than ``gap_split_m`` from both the previous and the
    next good fix while those two are within ``gap_split_m`` of each other: an out-and-back spike.
    (Longer untimed jumps are not judged; ``GapSplit`` cuts the segment there.)"""

    flag = Flag.JUMP

    def apply(self, ctx: RuleContext) -> np.ndarray:
        out = np.zeros(len(ctx.lon), dtype=bool)
        idx = np.flatnonzero(ctx.good)
        if idx.size < 3:
            return out
        p, i, q = idx[:-2], idx[1:-1], idx[2:]
        limit = ctx.rules.gap_split_m
        timed = ctx.timed
        spike = (
            (ctx.run[p] == ctx.run[i])
            & (ctx.run[i] == ctx.run[q])
            & ~(timed[p] & timed[i])
            & ~(timed[i] & timed[q])
            & (ctx.distance(p, i) > limit)
            & (ctx.distance(i, q) > limit)
            & (ctx.distance(p, q) <= limit)
        )
        out[i[spike]] = True
        return out


RULES = (ZeroIsland(), OutOfRegion(), Duplicate(), RepeatedTime(), TimeBackwards(), ImpossibleSpeed(), Jump())


class GapSplit:
    """Where a new segment starts among the good fixes: after a time gap over ``gap_split_s``; where
    either fix has no time, after a jump over ``gap_split_m``; and at a too-fast leg the speed rule
    could not explain."""

    def apply(self, ctx: RuleContext) -> np.ndarray:
        out = np.zeros(len(ctx.lon), dtype=bool)
        a, b = ctx.pairs(ctx.good)
        both_timed = ctx.timed[a] & ctx.timed[b]
        seconds = ctx.seconds
        dt = seconds[b] - seconds[a]
        split = np.where(
            both_timed,
            (dt > ctx.rules.gap_split_s) | ctx.too_fast(a, b),
            ctx.distance(a, b) > ctx.rules.gap_split_m,
        )
        out[b[split]] = True
        return out


# --- the pipeline ----------------------------------------------------------------------------------------


@dataclass
class CleanedTrack:
    """Every fix of the track with its flags. ``fixes`` holds the input arrays (WGS84) except
    ``segment``, renumbered after gap splitting; ``x``/``y`` are UTM 49N metres."""

    fixes: TrackFixes
    flags: np.ndarray  # uint16 bitmask of ``Flag`` per fix, 0 = good
    x: np.ndarray
    y: np.ndarray

    @property
    def good(self) -> np.ndarray:
        return self.flags == 0

    @property
    def summary(self) -> dict[str, int]:
        """How many fixes carry each flag (a fix with two flags counts under both)."""
        return {flag.name.lower(): int(np.count_nonzero(self.flags & flag)) for flag in Flag}

    def flag_names(self, i: int) -> list[str]:
        return describe_flags(self.flags[i])


def metric_xy(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 lon/lat → UTM 49N (EPSG:32649) metres."""
    x, y = transformer(WGS84, METRIC).transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    return np.asarray(x, dtype=float), np.asarray(y, dtype=float)


def clean(
    fixes: TrackFixes, transport: Transport | str, rules: CleaningRules = CleaningRules()
) -> CleanedTrack:
    """Flag the bad fixes of a WGS84 track and split it at gaps. Nothing is removed or reordered."""
    ctx = RuleContext.build(fixes, transport, rules)
    n = len(fixes)
    flags = np.zeros(n, dtype=np.uint16)
    for rule in RULES:
        mask = rule.apply(ctx)
        flags[mask] |= np.uint16(rule.flag)
        ctx.good &= ~mask

    starts = GapSplit().apply(ctx)
    if n:
        starts[0] = True
        starts[1:] |= ctx.run[1:] != ctx.run[:-1]
    new_segment = (np.cumsum(starts) - 1).astype(np.int32)
    cleaned = TrackFixes(
        lon=fixes.lon,
        lat=fixes.lat,
        time=fixes.time,
        ele=fixes.ele,
        segment=new_segment,
        source_format=fixes.source_format,
        warnings=list(fixes.warnings),
    )
    return CleanedTrack(fixes=cleaned, flags=flags, x=ctx.x, y=ctx.y)
