"""GPX parsing: ``read_track`` against a bare lxml iterparse pass, and its peak memory, in one run.

    .venv/bin/python bench/bench_track_parse.py [--fixes 36000] [--mb 100] [--repeats 3]

A GPX 1.1 walk (10 hours at 1 Hz by default, every fix with ``ele`` and ``time``) is written to a
temporary directory. The baseline is the least any streaming reader must do: ``lxml.etree.iterparse``
over the same file, clearing each element, nothing else. Both are timed best of ``--repeats``.
Then a ~``--mb`` MB GPX is read in a fresh subprocess that prints its peak RSS (``VmHWM``, and
``ru_maxrss``, which on Linux also counts what the child inherited from this process), both
after the imports and after reading.
Targets: ≥ 50 % of the bare pass's throughput; ≤ 300 MB peak RSS for a 100 MB GPX.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lxml
import numpy as np
from lxml import etree

from geodata.trackfile import read_track

MIN_RATIO = 0.5
MAX_RSS_MB = 300
HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<gpx version="1.1" creator="bench" '
    'xmlns="http://www.topografix.com/GPX/1/1">\n<trk><name>bench</name><trkseg>\n'
)
TAIL = "</trkseg></trk></gpx>\n"


def write_gpx(path: Path, n: int, seed: int = 7) -> None:
    """n fixes at 1 Hz: a random walk (~1 m steps) on the Gaoqiao mudflats, in 100,000-fix blocks."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2026-03-02T00:00:00", "s")
    lon0, lat0 = 109.76, 21.52
    with open(path, "w", encoding="utf-8") as f:
        f.write(HEAD)
        for first in range(0, n, 100_000):
            k = min(100_000, n - first)
            lon = lon0 + np.cumsum(rng.normal(0, 1e-5, k))
            lat = lat0 + np.cumsum(rng.normal(0, 1e-5, k))
            lon0, lat0 = lon[-1], lat[-1]
            ele = rng.normal(1.5, 0.8, k)
            stamps = np.datetime_as_string(start + first + np.arange(k), unit="s")
            f.write(
                "".join(
                    f'<trkpt lat="{la:.7f}" lon="{lo:.7f}"><ele>{e:.1f}</ele><time>{t}Z</time></trkpt>\n'
                    for lo, la, e, t in zip(lon.tolist(), lat.tolist(), ele.tolist(), stamps.tolist())
                )
            )
        f.write(TAIL)


def bare_pass(path: Path) -> None:
    for _, element in etree.iterparse(str(path), events=("end",)):
        element.clear()


def best_of(repeats: int, fn):
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result


# ru_maxrss is not enough on Linux: a child started from this (larger) process inherits the parent's
# figure across fork+exec. VmHWM, the peak RSS of the child's own address space, is exact; both
# are printed, and VmHWM is judged (ru_maxrss where /proc is missing).
CHILD = """
import resource, sys

def peaks():
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    try:
        with open("/proc/self/status") as status:
            hwm = next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmHWM:"))
    except OSError:
        hwm = maxrss
    return hwm, maxrss

from geodata.trackfile import read_track
baseline = peaks()
fixes = read_track(sys.argv[1])
print(len(fixes), *baseline, *peaks())
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fixes", type=int, default=36_000)
    parser.add_argument("--mb", type=int, default=100, help="size of the GPX for the memory check")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    print(
        f"machine: {platform.machine()}, Python {platform.python_version()}, lxml {lxml.__version__} "
        f"(libxml2 {'.'.join(map(str, etree.LIBXML_VERSION))}), numpy {np.__version__}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "walk.gpx"
        write_gpx(path, args.fixes)
        mb = path.stat().st_size / 1e6
        bare_time, _ = best_of(args.repeats, lambda: bare_pass(path))
        ours_time, fixes = best_of(args.repeats, lambda: read_track(path))
        assert len(fixes) == args.fixes and not np.isnat(fixes.time).any() and not np.isnan(fixes.ele).any()
        ratio = bare_time / ours_time
        print(f"speed: GPX 1.1, {args.fixes:,} fixes with time and ele, {mb:.1f} MB; best of {args.repeats}")
        for label, seconds in (("bare lxml iterparse + clear", bare_time), ("read_track", ours_time)):
            print(
                f"  {label:<28} {seconds * 1000:8.1f} ms  {args.fixes / seconds:>12,.0f} fixes/s  "
                f"{mb / seconds:7.1f} MB/s"
            )
        print(f"  read_track throughput = {ratio:.0%} of the bare pass (target >= {MIN_RATIO:.0%})")

        big = Path(tmp) / "big.gpx"
        per_fix = mb / args.fixes
        write_gpx(big, int(args.mb / per_fix), seed=8)
        big_mb = big.stat().st_size / 1e6
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(big)], capture_output=True, text=True, check=True
        ).stdout
        count, baseline_mb, baseline_maxrss, peak_mb, peak_maxrss = map(int, out.split())
        print(f"memory: read_track on a {big_mb:.0f} MB GPX ({count:,} fixes) in a fresh process")
        print(f"  peak RSS after imports {baseline_mb} MB; peak RSS after reading {peak_mb} MB (VmHWM)")
        print(
            f"  ru_maxrss: {baseline_maxrss} MB after imports, {peak_maxrss} MB after reading "
            "(includes what the child inherited from this process)"
        )
        print(f"  target: peak RSS <= {MAX_RSS_MB} MB")

    met = ratio >= MIN_RATIO and peak_mb <= MAX_RSS_MB and big_mb >= 0.95 * args.mb
    print(
        f"targets {'met' if met else 'NOT met'}: speed {ratio:.0%} >= {MIN_RATIO:.0%}, peak RSS {peak_mb} MB <= {MAX_RSS_MB} MB"
    )


if __name__ == "__main__":
    main()
