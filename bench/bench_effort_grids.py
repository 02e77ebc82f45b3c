"""Grid effort for one month over a province's grids: the visits query with every grid id as a bound
parameter (before) against the grids as a subquery (now), alternating in one process, on a database
left by ``bench_scale.py --keep``.

    .venv/bin/python bench/bench_effort_grids.py BEFORE_EFFORT_PY [--url URL] [--runs 10]

BEFORE_EFFORT_PY: ``patrol/effort.py`` as it was (e.g. ``git show d0a92f1:patrol/effort.py > /tmp/before.py``).
Both modules answer every month's rows; they are checked equal before timing.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from patrol import effort as now  # noqa: E402
from patrol.db import create_db_engine, make_session_factory  # noqa: E402


def difference(a: list[dict], b: list[dict]) -> float:
    """The largest difference between two effort answers' numbers; anything else must be equal."""
    assert len(a) == len(b) and [r["code"] for r in a] == [r["code"] for r in b]
    worst = 0.0
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for key in x:
            if isinstance(x[key], float) and isinstance(y[key], float):
                worst = max(worst, abs(x[key] - y[key]))
            else:
                assert x[key] == y[key], (x["code"], key, x[key], y[key])
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/scale_bench")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument(
        "--months", type=int, default=1,
        help="months per window: N months at size S hold about as many visits as one month at N x S",
    )  # fmt: skip
    args = parser.parse_args()
    spec = importlib.util.spec_from_file_location("effort_before", args.before)
    before = importlib.util.module_from_spec(spec)
    sys.modules["effort_before"] = before  # its dataclasses look their module up
    spec.loader.exec_module(before)
    factory = make_session_factory(create_db_engine(args.url))
    starts = np.linspace(0, 24 - args.months, args.runs).round().astype(int).tolist()  # months from 2025-01
    k = args.months
    pairs = [
        (
            datetime(2025 + m // 12, m % 12 + 1, 1, tzinfo=UTC),
            datetime(2025 + (m + k) // 12, (m + k) % 12 + 1, 1, tzinfo=UTC),
        )
        for m in starts
    ]
    worst = 0.0
    times: dict[str, dict[bool, list[float]]] = {
        "before": {True: [], False: []},
        "now": {True: [], False: []},
    }
    for coverage in (False, True):
        for start, end in pairs:
            for name, module in (("before", before), ("now", now)):
                flt = module.EffortFilter(start=start, end=end)
                with factory() as s:
                    started = time.perf_counter()
                    rows = module.grid_effort(s, flt, swath_width_m=50.0, coverage=coverage)
                    times[name][coverage].append(time.perf_counter() - started)
                if name == "before":
                    expected = rows
                else:
                    worst = max(worst, difference(expected, rows))
    print(
        f"{len(expected):,} grids; {len(pairs)} windows of {k} month(s) each; largest difference between the versions' "
        f"numbers {worst:g} (rounding of a float sum at most), every other value equal"
    )
    for coverage in (False, True):
        for name in ("before", "now"):
            p50, p95 = np.percentile(np.asarray(times[name][coverage]) * 1000, [50, 95])
            print(
                f"  {'with' if coverage else 'without'} coverage, {name:<6}: p50 {p50:7.0f} ms  p95 {p95:7.0f} ms"
            )


if __name__ == "__main__":
    main()
