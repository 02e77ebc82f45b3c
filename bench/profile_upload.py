"""Where the time of one patrol upload goes: wall-clock per stage of ``upload_patrol``, in one run.

    .venv/bin/python bench/profile_upload.py [--fixes 36000] [--repeats 5] [--cprofile 0]

The same 10-hour walk as ``bench_upload.py`` (its ``walk_gpx``), uploaded into a throw-away
SpatiaLite file ``--repeats`` times (distinct files) after one warm-up upload that builds the grid
index. Each stage is timed by wrapping the function ``upload_patrol`` calls (no profiler overhead
on the Python code inside it); nested stages are shown indented, and each line's share is of the
whole upload including the commit. "rest" is what the stages listed do not cover (ORM objects,
the INSERTs, the audit record). ``--cprofile N`` also prints cProfile's top N by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import pstats
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_upload import bare_pass, upload_setup, walk_gpx  # noqa: E402

_totals: dict[tuple[str, ...], float] = defaultdict(float)
_stack: list[str] = []


def timed(label: str, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        _stack.append(label)
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            _totals[tuple(_stack)] += time.perf_counter() - start
            _stack.pop()

    return wrapper


def instrument() -> None:
    """Wrap the stages where they are looked up (module globals and class attributes)."""
    import geodata.split as split
    import geodata.trackfile as trackfile
    import geodata.trackio.sink as sink
    import geodata.trackio.times as times
    import patrol.patrols as patrols
    from geodata.assign import GridIndex
    from geodata.trackio import gpx, xmlsafe

    for name, label in [
        ("file_sha256", "sha256 of the file"),
        ("read_track", "read (geodata.trackfile)"),
        ("to_wgs84", "datum (geodata.datum)"),
        ("clean", "cleaning (geodata.cleaning)"),
        ("metric_grid_index", "grid index lookup (patrol.grids)"),
        ("_shift_warnings", "gcj02_suspected check"),
        ("split_by_polygons", "split by grid (geodata.split)"),
        ("_per_grid_summary", "per-grid summary"),
        ("_patrol_lines", "lines + simplification"),
        ("_pack_fixes", "_pack_fixes (fixes blob)"),
        ("_visit_rows", "visit rows (WKB, dicts)"),
    ]:
        if hasattr(patrols, name):
            setattr(patrols, name, timed(label, getattr(patrols, name)))
    trackfile.root_tag = timed("root tag + DTD check", trackfile.root_tag)
    trackfile.read_gpx = timed("GPX reader (lxml iterparse)", trackfile.read_gpx)
    if hasattr(trackfile, "read_fast"):
        trackfile.read_fast = timed("GPX bulk reader (gpxfast)", trackfile.read_fast)
    if hasattr(sink, "FixSink"):
        sink.FixSink.finish = timed("checks + arrays (FixSink.finish)", sink.FixSink.finish)
    times.TimeBuffer.convert = timed("time strings → int64", times.TimeBuffer.convert)
    patrols._simplified = timed("simplification", patrols._simplified)
    GridIndex.settled_legs = timed("lattice: settled legs", GridIndex.settled_legs)
    GridIndex.assign_index = timed("GridIndex.assign_index", GridIndex.assign_index)
    GridIndex.query = timed("STRtree query of legs", GridIndex.query)
    split._cut = timed("exact cuts (_cut)", split._cut)
    split._visit_lines = timed("visit lines", split._visit_lines)
    _ = gpx, xmlsafe


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fixes", type=int, default=36_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cprofile", type=int, default=0, help="also print cProfile's top N")
    args = parser.parse_args()

    from patrol.patrols import UploadOptions
    from patrol.settings import PatrolSettings

    instrument()
    import patrol.patrols as patrols

    folder, factory, principal, files = upload_setup(args.fixes, args.repeats + 1, prefix="profile-upload-")

    upload = timed("upload_patrol", patrols.upload_patrol)

    def one(path: Path) -> None:
        with factory() as session:
            upload(session, path, filename=path.name, principal=principal, options=UploadOptions(),
                   settings=PatrolSettings())  # fmt: skip
            timed("commit", session.commit)()

    one(files[0])  # builds the grid index and its lattice
    _totals.clear()
    bare = min(_bare(files[0]) for _ in range(args.repeats))
    start = time.perf_counter()
    for path in files[1:]:
        one(path)
    per_upload = (time.perf_counter() - start) / args.repeats

    print(f"{args.fixes:,} fixes, mean of {args.repeats} uploads: {per_upload * 1000:.1f} ms per upload; "
          f"bare lxml iterparse (best of {args.repeats}) {bare * 1000:.1f} ms, ratio {per_upload / bare:.2f}x")  # fmt: skip
    whole = sum(v for k, v in _totals.items() if len(k) == 1)
    children: dict[tuple[str, ...], float] = defaultdict(float)
    for key, value in _totals.items():
        if len(key) > 1:
            children[key[:-1]] += value
    for key in sorted(_totals, key=lambda k: [_order(k[: i + 1]) for i in range(len(k))]):
        value = _totals[key] / args.repeats
        print(f"  {'  ' * (len(key) - 1)}{key[-1]:<{44 - 2 * len(key)}} {value * 1000:8.1f} ms  "
              f"{_totals[key] / whole:6.1%}")  # fmt: skip
        if key in children and len(key) == 1:
            rest = (_totals[key] - children[key]) / args.repeats
            print(f"    {'rest (ORM, INSERTs, audit, small steps)':<40} {rest * 1000:8.1f} ms  "
                  f"{rest * args.repeats / whole:6.1%}")  # fmt: skip

    if args.cprofile:
        profile = cProfile.Profile()
        for i in range(args.repeats):
            path = folder / f"walk-profiled-{i}.gpx"  # a file not uploaded yet: the whole pipeline
            path.write_bytes(walk_gpx(args.fixes, shift_s=1000 + i))
            with factory() as session:
                profile.enable()
                patrols.upload_patrol(session, path, filename=path.name, principal=principal,
                                      options=UploadOptions(), settings=PatrolSettings())  # fmt: skip
                profile.disable()
                session.rollback()
        pstats.Stats(profile).sort_stats("cumulative").print_stats(args.cprofile)


_first_seen: dict[tuple[str, ...], int] = {}


def _order(key: tuple[str, ...]) -> int:
    return _first_seen.setdefault(key, len(_first_seen))


def _bare(path: Path) -> float:
    start = time.perf_counter()
    bare_pass(path)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
