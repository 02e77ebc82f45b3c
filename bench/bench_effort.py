"""Effort per grid with swath coverage, over the demo's 90 days, against the exact computation it
replaced, in one run.

    .venv/bin/python bench/bench_effort.py [--data-dir /tmp/bench-effort] [--patrol-days 90] [--no-exact]

Loads the demo (``mangrove demo --patrol-days N``) into a SpatiaLite file (kept in ``--data-dir``
for the next run), then times ``patrol.effort.grid_effort`` for every grid and all patrols:

* now: coverage estimated on a lattice of points per grid (``geodata.coverage``), swath 50 m and
  the largest allowed, 500 m;
* before (the baseline): the union of every visit line's buffer clipped to its grid, as
  ``patrol/effort.py`` did until issue 14 — swath 50 m only (500 m takes far longer).

Each measurement runs in a child process of its own: wall time and that process's peak RSS
(ru_maxrss), so one does not inherit the other's heap. Coverage of both methods is compared grid by
grid. Target (issue 14): the unfiltered call a patrol member can make takes a few seconds at most
and well under 500 MB.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _exact_coverage(session, visits, swath_width_m):
    """The pre-issue-14 computation: buffers of full-resolution lines, unioned per grid."""
    import numpy as np
    import shapely
    from sqlalchemy import func, select

    from geodata.crs import METRIC, WGS84, transformer
    from patrol.models import Grid

    visits = visits[visits.wkb.notna()]
    lines = shapely.from_wkb([bytes(w) for w in visits.wkb])
    to_metric = transformer(WGS84, METRIC)
    lines = shapely.transform(lines, lambda x, y: to_metric.transform(x, y), interleaved=False)
    swaths = shapely.buffer(lines, swath_width_m / 2, quad_segs=2)
    grid_ids = visits.grid_id.to_numpy()
    wanted = np.unique(grid_ids).tolist()
    wkbs = dict(
        session.execute(select(Grid.id, func.ST_AsBinary(Grid.geom)).where(Grid.id.in_(wanted))).all()
    )
    result = {}
    for gid in wanted:
        grid = shapely.transform(
            shapely.from_wkb(bytes(wkbs[gid])), lambda x, y: to_metric.transform(x, y), interleaved=False
        )
        swath = shapely.union_all(swaths[grid_ids == gid])
        result[gid] = float(shapely.area(shapely.intersection(swath, grid)) / shapely.area(grid))
    return result


def _measure(method: str, swath: float, queue) -> None:
    from patrol import effort
    from patrol.db import create_db_engine, make_session_factory
    from patrol.settings import get_settings

    if method == "exact":
        effort._coverage = _exact_coverage
    engine = create_db_engine(settings=get_settings())
    with make_session_factory(engine)() as session:
        started = time.perf_counter()
        rows = effort.grid_effort(session, effort.EffortFilter(), swath_width_m=swath)
        seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put((seconds, peak_mb, {r["code"]: r["coverage"] for r in rows}))


def measure(method: str, swath: float):
    queue = mp.get_context("fork").Queue()
    child = mp.get_context("fork").Process(target=_measure, args=(method, swath, queue))
    child.start()
    result = queue.get()
    child.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="/tmp/bench-effort")
    parser.add_argument("--patrol-days", type=int, default=90)
    parser.add_argument("--no-exact", action="store_true", help="leave out the slow baseline")
    args = parser.parse_args()
    os.environ["MANGROVE_DATA_DIR"] = args.data_dir
    os.environ.pop("MANGROVE_DATABASE_URL", None)
    Path(args.data_dir).mkdir(parents=True, exist_ok=True)
    if not (Path(args.data_dir) / "mangrove.sqlite").exists():
        subprocess.run(
            [str(ROOT / ".venv/bin/mangrove"), "demo", "--patrol-days", str(args.patrol_days)],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    from sqlalchemy import func, select

    from patrol.db import create_db_engine, make_session_factory
    from patrol.models import Patrol, PatrolVisit
    from patrol.settings import get_settings

    with make_session_factory(create_db_engine(settings=get_settings()))() as session:
        patrols = session.scalar(select(func.count()).select_from(Patrol))
        visits = session.scalar(select(func.count()).select_from(PatrolVisit))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, Python {platform.python_version()}")
    print(f"demo database: {patrols:,} patrols, {visits:,} grid visits ({args.data_dir})")
    now50 = measure("lattice", 50)
    now500 = measure("lattice", 500)
    print(f"now, lattice, swath  50 m:  {now50[0]:7.2f} s  peak {now50[1]:6.0f} MB")
    print(f"now, lattice, swath 500 m:  {now500[0]:7.2f} s  peak {now500[1]:6.0f} MB")
    if not args.no_exact:
        exact = measure("exact", 50)
        print(f"before, exact union, 50 m:  {exact[0]:7.2f} s  peak {exact[1]:6.0f} MB")
        print(f"speed-up: {exact[0] / now50[0]:.0f}x; memory: {exact[1] / now50[1]:.1f}x less")
        diffs = [abs(now50[2][code] - exact[2][code]) for code in exact[2]]
        worst = max(diffs)
        print(f"coverage, lattice against exact: largest difference {worst * 100:.2f} points "
              f"(mean {sum(diffs) / len(diffs) * 100:.2f}) over {len(diffs)} grids")  # fmt: skip
    met = now50[0] < 5 and now500[0] < 5 and max(now50[1], now500[1]) < 500
    print(f"target (a few seconds, < 500 MB, any allowed swath): {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
