"""Exports of 220,022 incidents: wall time and peak memory (max RSS) of ``mangrove export`` per
format, each in its own process, against the floor of the same command exporting only the 32 grids
(imports, database, settings: what every export pays).

    .venv/bin/python bench/bench_export.py [--keep] [--copies 10000]

Data (SpatiaLite, bench/out/export.sqlite, reused with --keep): 30 days of demo data (78 patrols,
22 incidents), then every incident copied --copies times by one INSERT … SELECT (22 × (1 + 10,000)
= 220,022 incidents). Peak memory staying near the floor shows that incidents are streamed page by
page rather than held whole.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
DB_DIR = OUT / "export-db"
RUN = "import sys; sys.path.insert(0, sys.argv[1]); from api.cli import main; sys.exit(main(sys.argv[2:]))"
CASES = [
    ("floor: grids only (gpkg)", ["gpkg", "--layers", "grids"], "gpkg"),
    ("gpkg", ["gpkg", "--layers", "incidents"], "gpkg"),
    ("shp (zip)", ["shp", "--layers", "incidents"], "zip"),
    ("csv", ["csv", "--layers", "incidents"], "csv"),
    ("xlsx", ["xlsx", "--layers", "incidents"], "xlsx"),
    ("kmz, gcj02", ["kmz", "--layers", "incidents", "--datum", "gcj02"], "kmz"),
    ("gpx, 78 patrols' tracks", ["gpx", "--layers", "patrols"], "gpx"),
]


def mangrove(*args: str) -> tuple[float, float]:
    """Run ``mangrove ARGS`` in a new process: (seconds, max RSS in MB)."""
    env = {**os.environ, "MANGROVE_DATA_DIR": str(DB_DIR)}
    t0 = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", RUN, str(ROOT), *args], env=env, stdout=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"mangrove {' '.join(args)} failed")
    return seconds, usage.ru_maxrss / 1024


def build(copies: int) -> None:
    from sqlalchemy import inspect, text

    DB_DIR.mkdir(parents=True, exist_ok=True)
    mangrove("db", "upgrade")
    mangrove("demo", "--patrol-days", "30")
    sys.path.insert(0, str(ROOT))
    os.environ["MANGROVE_DATA_DIR"] = str(DB_DIR)
    from patrol.db import create_db_engine
    from patrol.settings import get_settings

    engine = create_db_engine(settings=get_settings())
    columns = [c["name"] for c in inspect(engine).get_columns("incidents") if c["name"] != "id"]
    names = ", ".join(columns)
    with engine.begin() as conn:
        conn.execute(
            text(
                f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {copies}) "
                f"INSERT INTO incidents ({names}) SELECT {names} FROM incidents, n"
            )
        )
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keep", action="store_true", help="reuse bench/out/export-db")
    parser.add_argument("--copies", type=int, default=10_000)
    args = parser.parse_args()
    if not (args.keep and (DB_DIR / "mangrove.sqlite").exists()):
        if DB_DIR.exists():
            for file in DB_DIR.iterdir():
                file.unlink()
        build(args.copies)
    print(f"{'export':<28} {'seconds':>8} {'max RSS MB':>11} {'file MB':>8}")
    for label, command, suffix in CASES:
        out = OUT / f"export.{suffix}"
        seconds, rss = mangrove("export", *command, "-o", str(out))
        print(f"{label:<28} {seconds:>8.1f} {rss:>11.0f} {out.stat().st_size / 1e6:>8.1f}")
        out.unlink()


if __name__ == "__main__":
    main()
