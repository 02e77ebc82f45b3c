"""Track cleaning: each rule on a hand-made track, flags as a bitmask, nothing deleted, gap splitting.

Tracks are drawn in UTM 49N metres around a point on the Lianjiang coast (offsets from ``ORIGIN``)
and converted to WGS84, so distances and speeds can be checked by hand."""

import numpy as np
import pytest

from geodata.cleaning import (
    RULES,
    CleanedTrack,
    CleaningRules,
    Duplicate,
    Flag,
    ImpossibleSpeed,
    RepeatedTime,
    RuleContext,
    Transport,
    clean,
    describe_flags,
    metric_xy,
)
from geodata.crs import METRIC, WGS84, transformer
from geodata.errors import InputError
from geodata.fixes import TrackFixes

ORIGIN = metric_xy(110.0, 21.6)
T0 = np.datetime64("2026-03-02T00:30:00", "ms")
OK = 0


def track(xy, seconds=None, segment=None) -> TrackFixes:
    """Fixes at metre offsets ``xy`` from ORIGIN; ``seconds`` after T0 (None entries: no time)."""
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    lon, lat = transformer(METRIC, WGS84).transform(ORIGIN[0] + xy[:, 0], ORIGIN[1] + xy[:, 1])
    time = None
    if seconds is not None:
        time = [None if s is None else T0 + np.timedelta64(int(round(s * 1000)), "ms") for s in seconds]
    return TrackFixes.from_lists(lon, lat, time, segment=segment)


def walk(n, step=1.0, interval=1.0, timed=True):
    """A straight walk east: n fixes ``step`` metres and ``interval`` seconds apart."""
    xy = [(i * step, 0.0) for i in range(n)]
    return xy, ([i * interval for i in range(n)] if timed else None)


def flags_of(cleaned: CleanedTrack) -> list[int]:
    return [int(f) for f in cleaned.flags]


# --- a clean track and the invariants -------------------------------------------------------------------


def test_a_plain_walk_is_all_good_and_one_segment():
    cleaned = clean(track(*walk(100)), Transport.FOOT)
    assert cleaned.good.all()
    assert cleaned.fixes.segment.tolist() == [0] * 100
    assert cleaned.summary == {name: 0 for name in describe_flags(sum(Flag))}
    assert np.allclose(cleaned.x - ORIGIN[0], np.arange(100), atol=1e-6)


def test_nothing_is_deleted_or_reordered():
    xy, seconds = walk(50)
    xy[10] = (5000.0, 0.0)  # a spike
    seconds[20] = seconds[19]  # a duplicate time
    fixes = track(xy, seconds)
    fixes.lon[30], fixes.lat[30] = 0.0, 0.0  # zero island
    cleaned = clean(fixes, Transport.FOOT)
    assert len(cleaned.fixes) == len(cleaned.flags) == len(cleaned.x) == len(cleaned.y) == len(fixes)
    assert cleaned.fixes.lon is fixes.lon and cleaned.fixes.time is fixes.time
    assert cleaned.flags.dtype == np.uint16
    assert cleaned.good.sum() == 47
    assert cleaned.fixes.segment.dtype == np.int32


def test_empty_and_single_fix_tracks():
    empty = clean(TrackFixes.from_lists([], []), Transport.BOAT)
    assert len(empty.flags) == 0 and len(empty.fixes.segment) == 0
    one = clean(track([(0, 0)], [0]), Transport.FOOT)
    assert flags_of(one) == [OK] and one.fixes.segment.tolist() == [0]


# --- zero island and region -------------------------------------------------------------------------------


def test_zero_island_also_lies_out_of_region_two_flags_on_one_fix():
    fixes = track(*walk(4))
    fixes.lon[1], fixes.lat[1] = 0.0, 0.0
    fixes.lon[2], fixes.lat[2] = 4e-7, -3e-7  # "almost zero" from a device without a fix
    cleaned = clean(fixes, Transport.FOOT)
    both = int(Flag.ZERO_ISLAND | Flag.OUT_OF_REGION)
    assert flags_of(cleaned) == [OK, both, both, OK]
    assert cleaned.flag_names(1) == ["zero_island", "out_of_region"]
    assert describe_flags(cleaned.flags[1]) == ["zero_island", "out_of_region"]
    assert describe_flags(0) == []
    assert cleaned.summary["zero_island"] == 2 and cleaned.summary["out_of_region"] == 2


def test_out_of_region_and_nan_positions():
    fixes = track(*walk(4))
    fixes.lon[1], fixes.lat[1] = 116.404, 39.915  # Beijing
    fixes.lon[2] = np.nan
    cleaned = clean(fixes, Transport.FOOT)
    assert flags_of(cleaned) == [OK, Flag.OUT_OF_REGION, Flag.OUT_OF_REGION, OK]
    # The flagged fixes are ignored by the later rules: 0 → 3 is a slow walk, not a jump.
    assert cleaned.fixes.segment.tolist() == [0, 0, 0, 0]


# --- duplicates -------------------------------------------------------------------------------------------


def test_duplicates_same_time_same_place_and_same_time_elsewhere():
    xy = [(0, 0), (0, 0), (1, 0), (2, 0), (30, 0), (3, 0)]
    seconds = [0, 0, 1, 2, 2, 3]
    cleaned = clean(track(xy, seconds), Transport.FOOT)
    assert flags_of(cleaned) == [OK, Flag.DUPLICATE, OK, OK, Flag.DUPLICATE, OK]


def test_same_place_at_another_time_is_not_a_duplicate():
    cleaned = clean(track([(0, 0), (0, 0), (0, 0)], [0, 10, 20]), Transport.FOOT)
    assert cleaned.good.all()


def test_duplicates_without_time_are_repeated_positions():
    cleaned = clean(track([(0, 0), (0, 0), (5, 0), (5, 0), (5, 0), (9, 0)]), Transport.FOOT)
    assert flags_of(cleaned) == [OK, Flag.DUPLICATE, OK, Flag.DUPLICATE, Flag.DUPLICATE, OK]


def test_duplicate_compares_with_the_previous_good_fix():
    fixes = track([(0, 0), (1, 0), (2, 0)], [0, 1, 1])
    fixes.lon[1], fixes.lat[1] = 0.0, 0.0  # fix 1 is bad, so fix 2 is compared with fix 0
    cleaned = clean(fixes, Transport.FOOT)
    assert flags_of(cleaned) == [OK, Flag.ZERO_ISLAND | Flag.OUT_OF_REGION, OK]


def test_duplicate_rule_alone():
    ctx = RuleContext.build(track([(0, 0), (0, 0), (1, 0)], [0, 0, 1]), Transport.FOOT)
    assert Duplicate().apply(ctx).tolist() == [False, True, False]


# --- repeated times ------------------------------------------------------------------------------------------


def test_a_track_written_twice_counts_once():
    """Two copies of one flight (a KML with the same gx:Track twice): the second copy is flagged."""
    xy = [(i * 1.0, 0.0) for i in range(5)]
    cleaned = clean(track(xy + xy, [0, 1, 2, 3, 4] * 2, segment=[0] * 5 + [1] * 5), Transport.FOOT)
    assert flags_of(cleaned) == [OK] * 5 + [Flag.REPEATED] * 5


def test_a_time_repeated_later_in_the_same_segment_is_flagged_as_repeated():
    xy = [(i * 1.0, 0.0) for i in range(6)]
    cleaned = clean(track(xy, [0, 1, 2, 0, 1, 3]), Transport.FOOT)
    assert flags_of(cleaned) == [OK, OK, OK, Flag.REPEATED, Flag.REPEATED, OK]


def test_overlapping_segments_without_equal_times_are_not_repeats():
    cleaned = clean(track([(i, 0) for i in range(4)], [0, 2, 1, 3], segment=[0, 0, 1, 1]), Transport.FOOT)
    assert cleaned.good.all()


def test_repeated_time_rule_alone_keeps_the_first_in_file_order():
    ctx = RuleContext.build(
        track([(0, 0), (5, 0), (9, 0), (2, 0)], [3, 1, 2, 1], segment=[0, 0, 1, 1]), Transport.FOOT
    )
    assert RepeatedTime().apply(ctx).tolist() == [False, False, False, True]


# --- time running backwards --------------------------------------------------------------------------------


def test_time_running_backwards_flags_every_fix_earlier_than_the_latest_good_one():
    xy = [(i, 0) for i in range(7)]
    cleaned = clean(track(xy, [0, 10, 20, 15, 18, 30, 40]), Transport.FOOT)
    back = Flag.TIME_BACKWARDS
    assert flags_of(cleaned) == [OK, OK, OK, back, back, OK, OK]


def test_time_is_compared_within_a_file_segment_only():
    xy = [(i, 0) for i in range(4)]
    cleaned = clean(track(xy, [100, 110, 0, 10], segment=[0, 0, 1, 1]), Transport.FOOT)
    assert cleaned.good.all()
    assert cleaned.fixes.segment.tolist() == [0, 0, 1, 1]


def test_untimed_fixes_are_skipped_by_time_rules():
    xy = [(i, 0) for i in range(5)]
    cleaned = clean(track(xy, [0, None, 10, None, 5]), Transport.FOOT)
    assert flags_of(cleaned) == [OK, OK, OK, OK, Flag.TIME_BACKWARDS]


# --- impossible speed ------------------------------------------------------------------------------------


def spike_track(offset=300.0):
    """A walk at 1 m/s with a fix every minute; fix 5 lies ``offset`` m to the side (out and back)."""
    xy, seconds = walk(11, step=60.0, interval=60.0)
    xy[5] = (xy[5][0], offset)
    return track(xy, seconds)


def test_a_spike_on_foot_is_flagged_but_not_the_fix_after_it():
    cleaned = clean(spike_track(), Transport.FOOT)
    expected = [OK] * 11
    expected[5] = Flag.IMPOSSIBLE_SPEED
    assert flags_of(cleaned) == expected
    assert cleaned.fixes.segment.tolist() == [0] * 11


def test_the_same_displacement_by_boat_is_believable():
    cleaned = clean(spike_track(), Transport.BOAT)
    assert cleaned.good.all()


def test_speed_limits_come_from_the_rules():
    rules = CleaningRules(max_speed_mps={Transport.FOOT: 10.0, Transport.BOAT: 20.0})
    assert clean(spike_track(), "walk", rules).good.all()
    with pytest.raises(ValueError, match="boat"):
        CleaningRules(max_speed_mps={Transport.FOOT: 4.0}).max_speed(Transport.BOAT)


def test_gps_noise_while_standing_still_is_not_a_speed():
    rng = np.random.default_rng(1)
    # Independent jitter of 3 m per axis every second (real jitter is correlated, hence milder).
    xy = rng.normal(0, 3, size=(600, 2))
    cleaned = clean(track(xy, np.arange(600.0)), Transport.FOOT)
    assert cleaned.good.all()


def test_an_excursion_of_several_fixes_is_flagged_as_a_whole():
    xy, seconds = walk(40)
    for i in (10, 11, 12):
        xy[i] = (xy[i][0], 400.0 + i)
    cleaned = clean(track(xy, seconds), Transport.FOOT)
    assert np.flatnonzero(~cleaned.good).tolist() == [10, 11, 12]
    assert set(cleaned.flags[[10, 11, 12]]) == {Flag.IMPOSSIBLE_SPEED}


def test_consecutive_spikes_are_each_flagged():
    xy, seconds = walk(30)
    xy[10] = (10.0, 500.0)
    xy[12] = (12.0, -500.0)
    xy[20] = (20.0, 800.0)
    cleaned = clean(track(xy, seconds), Transport.FOOT)
    assert np.flatnonzero(~cleaned.good).tolist() == [10, 12, 20]


def test_a_bad_first_or_last_fix_is_flagged_not_the_rest():
    xy, seconds = walk(30)
    xy[0] = (-800.0, 300.0)  # a stale position before the receiver settled
    xy[-1] = (900.0, 900.0)
    cleaned = clean(track(xy, seconds), Transport.FOOT)
    assert np.flatnonzero(~cleaned.good).tolist() == [0, 29]
    assert cleaned.flags[0] == cleaned.flags[29] == Flag.IMPOSSIBLE_SPEED


def test_a_jump_between_two_long_stretches_splits_instead_of_flagging():
    xy, seconds = walk(60)
    xy[30:] = [(x + 5000.0, y) for x, y in xy[30:]]  # which side is wrong cannot be told
    cleaned = clean(track(xy, seconds), Transport.FOOT)
    assert cleaned.good.all()
    assert cleaned.fixes.segment.tolist() == [0] * 30 + [1] * 30


def test_speed_after_an_untimed_fix_uses_the_previous_timed_good_fix():
    xy = [(0, 0), (60, 0), (120, 300), (180, 0), (240, 0)]
    cleaned = clean(track(xy, [0, 60, 120, None, 240]), Transport.FOOT)
    assert flags_of(cleaned) == [OK, OK, Flag.IMPOSSIBLE_SPEED, OK, OK]


def test_speed_rule_alone():
    ctx = RuleContext.build(spike_track(), Transport.FOOT)
    assert np.flatnonzero(ImpossibleSpeed().apply(ctx)).tolist() == [5]
    ctx = RuleContext.build(spike_track(), Transport.BOAT)
    assert not ImpossibleSpeed().apply(ctx).any()


# --- tracks without time -----------------------------------------------------------------------------


def test_tracks_without_time_get_no_speed_or_time_flags():
    xy, _ = walk(20, step=400.0, timed=False)  # 400 m between fixes: fast or not, nobody knows
    cleaned = clean(track(xy), Transport.FOOT)
    assert cleaned.good.all()
    assert cleaned.fixes.segment.tolist() == [0] * 20


def test_an_untimed_out_and_back_spike_is_a_jump():
    xy, _ = walk(10, step=20.0, timed=False)
    xy[4] = (80.0, 2500.0)
    cleaned = clean(track(xy), Transport.BOAT)
    expected = [OK] * 10
    expected[4] = Flag.JUMP
    assert flags_of(cleaned) == expected
    assert cleaned.fixes.segment.tolist() == [0] * 10


# --- gap splitting ---------------------------------------------------------------------------------------


def test_gap_split_on_time():
    xy = [(i, 0) for i in range(6)]
    seconds = [0, 1, 2, 2 + 601, 2 + 602, 2 + 602 + 300]  # 10 min 1 s, then 5 min
    cleaned = clean(track(xy, seconds), Transport.FOOT)
    assert cleaned.good.all()
    assert cleaned.fixes.segment.tolist() == [0, 0, 0, 1, 1, 1]


def test_gap_split_keeps_file_segments_and_numbers_on():
    xy = [(i, 0) for i in range(6)]
    seconds = [0, 1, 2, 3, 1000, 1001]
    cleaned = clean(track(xy, seconds, segment=[0, 0, 1, 1, 1, 1]), Transport.FOOT)
    assert cleaned.fixes.segment.tolist() == [0, 0, 1, 1, 2, 2]


def test_gap_split_on_distance_without_time():
    xy = [(0, 0), (10, 0), (1510, 0), (1520, 0), (2300, 0), (2310, 0)]  # 1.5 km, then 780 m
    cleaned = clean(track(xy), Transport.FOOT)
    assert cleaned.good.all()
    assert cleaned.fixes.segment.tolist() == [0, 0, 1, 1, 1, 1]


def test_gap_split_ignores_flagged_fixes():
    xy = [(i, 0) for i in range(5)]
    fixes = track(xy, [0, 1, 2, 3, 4])
    fixes.lon[2], fixes.lat[2] = 0.0, 0.0
    cleaned = clean(fixes, Transport.FOOT)
    assert cleaned.fixes.segment.tolist() == [0] * 5
    assert CleaningRules().gap_split_s == 600 and CleaningRules().gap_split_m == 1000


# --- a long track -----------------------------------------------------------------------------------------


def test_a_long_track_with_scattered_faults():
    n = 36_000
    rng = np.random.default_rng(7)
    heading = np.cumsum(rng.normal(0, 0.05, n))
    xy = np.column_stack([np.cumsum(np.cos(heading)), np.cumsum(np.sin(heading))])  # 1 m/s, 1 Hz
    seconds = np.arange(n, dtype=float)
    spikes = np.arange(500, n - 500, 1000)
    xy[spikes, 1] += 3000.0
    seconds[spikes + 1] = seconds[spikes + 1] + 0.5  # keep times unique when a spike is nudged
    seconds[spikes + 200] = seconds[spikes + 199]  # a duplicate time after every spike
    cleaned = clean(track(xy, seconds), Transport.FOOT)
    assert np.flatnonzero(cleaned.flags == Flag.IMPOSSIBLE_SPEED).tolist() == spikes.tolist()
    assert np.flatnonzero(cleaned.flags == Flag.DUPLICATE).tolist() == (spikes + 200).tolist()
    assert cleaned.good.sum() == n - 2 * len(spikes)
    assert cleaned.fixes.segment.max() == 0


# --- transport ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, transport",
    [
        ("foot", Transport.FOOT),
        ("Walk", Transport.FOOT),
        ("on foot", Transport.FOOT),
        ("on-foot", Transport.FOOT),
        ("步行", Transport.FOOT),
        ("徒步", Transport.FOOT),
        ("boat", Transport.BOAT),
        ("By Boat", Transport.BOAT),
        ("船", Transport.BOAT),
        (Transport.BOAT, Transport.BOAT),
    ],
)
def test_transport_parse_accepts(text, transport):
    assert Transport.parse(text) is transport


@pytest.mark.parametrize("text", ["car", "", None, "bicycle"])
def test_transport_parse_rejects_and_names_the_accepted_values(text):
    with pytest.raises(InputError) as caught:
        Transport.parse(text)
    assert "foot" in caught.value.message and "boat" in caught.value.message
    assert caught.value.problems[0].kind == "unknown-transport"


def test_rules_run_in_the_documented_order():
    assert [rule.flag for rule in RULES] == [
        Flag.ZERO_ISLAND,
        Flag.OUT_OF_REGION,
        Flag.DUPLICATE,
        Flag.REPEATED,
        Flag.TIME_BACKWARDS,
        Flag.IMPOSSIBLE_SPEED,
        Flag.JUMP,
    ]
