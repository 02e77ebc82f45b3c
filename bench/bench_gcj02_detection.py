"""How reliably an upload declared WGS84 but recorded in GCJ-02 is caught, by walk duration.

    .venv/bin/python bench/bench_gcj02_detection.py [--walks 300] [--noise 4] [--seed 14]

Synthetic patrols as the demo makes them (``patrol.demo.patrols``): 70 % on foot along the
mangrove edge of one of the team's grids (15–40 m inside its boundary, 0.9–1.3 m/s), 30 % by boat
along a creek through the team's grids (3–5 m/s); a fix every 1, 2, 3 or 5 s; GPS noise of
``--noise`` m (σ) wandering over a minute. Each walk of each duration is uploaded twice in
thought: as recorded (WGS84, declared WGS84: a warning is a false alarm) and as a Chinese map app
exports it (GCJ-02, declared WGS84: a warning is a detection). Two criteria are compared on the
same walks:

* before: the share of fixes inside a grid grows by ≥ 25 points when the offset is undone;
* now (``patrol.patrols.gcj02_suspected``): that, or — on foot — the share inside a grid and within
  60 m of its edge grows by ≥ 30 points while ≥ 80 % lies inside grids.

Target (issue 14): name the shortest track for which detection is reliable (≥ 95 % detected,
≤ 1 % false alarms).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geodata import reference  # noqa: E402
from geodata.assign import GridIndex  # noqa: E402
from geodata.crs import METRIC, WGS84, transformer  # noqa: E402
from geodata.datum import gcj02_to_wgs84, wgs84_to_gcj02  # noqa: E402
from patrol.demo.patrols import _creek, _edge_walk, _wandering_noise  # noqa: E402
from patrol.patrols import SHIFT_SUSPECT_GAIN, gcj02_suspected, grid_fit  # noqa: E402

MINUTES = (1, 2, 5, 10, 15, 20, 30, 60)
TARGET_DETECTED, TARGET_FALSE = 0.95, 0.01


def walk(rng, grids, minutes: float, boat: bool, noise_m: float) -> tuple[np.ndarray, np.ndarray]:
    """A walk (or boat run) of ``minutes`` by a random team, as WGS84 lon/lat."""
    teams = sorted(set(grids.team))
    team_grids = grids[grids.team == teams[int(rng.integers(len(teams)))]]
    interval = float(rng.choice([1, 2, 3, 5]))
    x, y = (_creek if boat else _edge_walk)(rng, team_grids)
    speed = rng.uniform(3.0, 5.0) if boat else rng.uniform(0.9, 1.3)
    route = shapely.linestrings(x, y)
    n = max(2, int(minutes * 60 / interval))
    along = (rng.uniform(0, shapely.length(route)) + np.arange(n) * speed * interval) % shapely.length(route)
    points = shapely.line_interpolate_point(route, along)
    window = max(2, int(60 / interval))
    px = shapely.get_x(points) + _wandering_noise(rng, n, sigma_m=noise_m, window=window)
    py = shapely.get_y(points) + _wandering_noise(rng, n, sigma_m=noise_m, window=window)
    lon, lat = transformer(METRIC, WGS84).transform(px, py)
    return np.asarray(lon), np.asarray(lat)


def before(lon, lat, index) -> bool:
    """The criterion on main before this change: the inside share alone."""
    step = max(1, len(lon) // 2000)
    lon, lat = lon[::step], lat[::step]
    return (
        grid_fit(*gcj02_to_wgs84(lon, lat), index).inside - grid_fit(lon, lat, index).inside
        >= SHIFT_SUSPECT_GAIN
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--walks", type=int, default=300, help="walks per duration (both transports)")
    parser.add_argument("--noise", type=float, default=4.0, help="GPS noise, metres (σ)")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    grids = reference.load_grids().to_crs(METRIC)
    index = GridIndex(grids.code.values, grids.geometry.values)  # metric, as the service's
    print(f"{args.walks} walks per duration (about 70 % on foot, 30 % by boat), GPS noise {args.noise:g} m, "
          f"seed {args.seed}; grids: {len(grids)}")  # fmt: skip
    print("detected = GCJ-02 track declared WGS84 gets looks-gcj02; false = a true WGS84 track gets it")
    print(f"{'minutes':>7} | {'foot: detected':>16} {'false':>17} | {'boat: detected':>16} {'false':>17} | "
          f"{'all: detected':>16} {'false':>17}")  # fmt: skip
    print(f"{'':>7} | {'before → now':>16} {'before → now':>17} | {'before → now':>16} {'before → now':>17} | "
          f"{'before → now':>16} {'before → now':>17}")  # fmt: skip
    started = time.perf_counter()
    met: dict[str, list[bool]] = {"foot": [], "all": []}
    for minutes in MINUTES:
        tally = {mode: np.zeros((2, 2)) for mode in ("foot", "boat")}  # [criterion, truth] → warnings
        counts = {"foot": 0, "boat": 0}
        for _ in range(args.walks):
            boat = bool(rng.random() < 0.3)
            mode = "boat" if boat else "foot"
            lon, lat = walk(rng, grids, minutes, boat, args.noise)
            shifted = wgs84_to_gcj02(lon, lat)
            transport = "boat" if boat else "foot"
            tally[mode][0, 0] += before(lon, lat, index)
            tally[mode][0, 1] += before(*shifted, index)
            tally[mode][1, 0] += gcj02_suspected(lon, lat, index, transport)[0]
            tally[mode][1, 1] += gcj02_suspected(*shifted, index, transport)[0]
            counts[mode] += 1
        rate = {m: tally[m] / max(counts[m], 1) for m in tally}
        total = (tally["foot"] + tally["boat"]) / args.walks

        def cell(r, truth):
            return f"{r[0, truth]:6.1%} → {r[1, truth]:6.1%}"

        print(f"{minutes:>7} | {cell(rate['foot'], 1):>16} {cell(rate['foot'], 0):>17} | "
              f"{cell(rate['boat'], 1):>16} {cell(rate['boat'], 0):>17} | {cell(total, 1):>16} {cell(total, 0):>17}")  # fmt: skip
        for mode, r in (("foot", rate["foot"]), ("all", total)):
            met[mode].append(bool(r[1, 1] >= TARGET_DETECTED and r[1, 0] <= TARGET_FALSE))
    print(f"({time.perf_counter() - started:.0f} s)")
    for mode, label in (
        ("foot", "foot patrols along the mangrove edge"),
        ("all", "all patrols (boat runs included)"),
    ):
        # The shortest duration from which every longer one meets the target too.
        found = next((m for k, m in enumerate(MINUTES) if all(met[mode][k:])), None)
        verdict = f"from {found} minutes" if found is not None else f"not within {MINUTES[-1]} minutes"
        print(
            f"reliable (≥ {TARGET_DETECTED:.0%} detected, ≤ {TARGET_FALSE:.0%} false alarms) for {label}: {verdict}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
