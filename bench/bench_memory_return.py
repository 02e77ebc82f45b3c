"""Memory given back after a large upload: the server's RSS before, at the peak of and after a
~48 MB GPX upload, in a real `mangrove serve` process (uvicorn, SpatiaLite), with and without the
mechanism, in one run.

    .venv/bin/python bench/bench_memory_return.py [--fixes 490000] [--uploads 1]

"without": MANGROVE_SERVER_TRIM_MEMORY_AFTER_BYTES=0 and MANGROVE_SERVER_MALLOC_ARENA_MAX=0 (glibc
as it comes). "with": the defaults — malloc_trim(0) after a request whose body was ≥ 8 MiB, and
two malloc arenas; "trim only" and "arenas only" show what each part does. RSS comes from
/proc/PID/status (VmRSS now, VmHWM the peak). Each server gets the same uploads (different files,
so each is a new patrol) after a small warm-up upload; "after" is read 3 s after the last.
Target: after the upload, the server is back near its baseline instead of at its peak.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_upload import walk_gpx  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CLI = "import sys; from api.cli import main; sys.exit(main(sys.argv[1:]))"
PASSWORD = "correct horse battery"  # the password policy refuses one holding the user name


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process, in MB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return tuple(int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_server(label: str, env_extra: dict[str, str], files: list[bytes]) -> dict[str, float]:
    data_dir = Path(tempfile.mkdtemp(prefix=f"bench-memory-{label}-"))
    env = os.environ | {
        "MANGROVE_DATA_DIR": str(data_dir),
        "MANGROVE_DATABASE_URL": f"sqlite:///{data_dir / 'bench.sqlite'}",
        "MANGROVE_AUTH_SECRET_KEY": "bench-" + "x" * 40,
        "MANGROVE_IMPORT_MAX_UPLOAD_BYTES": str(200 * 1024 * 1024),
        **env_extra,
    }
    env.pop("MALLOC_ARENA_MAX", None)
    subprocess.run(
        [sys.executable, "-c", CLI, "users", "add", "bench", "--side", "GD-LJ", "--role", "patrol_member:LJ-T-GQ",
         "--password-stdin"],
        input=PASSWORD + "\n", text=True, cwd=ROOT, env=env, check=True, capture_output=True,
    )  # fmt: skip
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", CLI, "serve", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                httpx.get(f"{base}/api/v1/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        token = httpx.post(
            f"{base}/api/v1/auth/token", data={"username": "bench", "password": PASSWORD}
        ).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        # Warm up: the first small upload loads the grid index and the readers.
        small = walk_gpx(2000, shift_s=10**8)
        assert httpx.post(
            f"{base}/api/v1/patrols", files={"file": ("w.gpx", small)}, headers=headers
        ).is_success
        time.sleep(1)
        baseline, _ = rss_mb(server.pid)
        started = time.perf_counter()
        for i, content in enumerate(files):
            answer = httpx.post(
                f"{base}/api/v1/patrols",
                files={"file": (f"big-{i}.gpx", content)},
                headers=headers,
                timeout=600,
            )
            assert answer.status_code == 201, answer.text[:300]
        seconds = time.perf_counter() - started
        time.sleep(3)
        after, peak = rss_mb(server.pid)
        return {"baseline": baseline, "peak": peak, "after": after, "seconds": seconds}
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--fixes",
        type=int,
        default=490_000,
        help="fixes per GPX (490,000 ≈ 48 MB; at most MANGROVE_PATROL_MAX_FIXES)",
    )
    parser.add_argument("--uploads", type=int, default=1)
    args = parser.parse_args()
    files = [walk_gpx(args.fixes, shift_s=i * 10**6) for i in range(args.uploads)]
    print(
        f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs"
    )
    print(f"{args.uploads} upload(s) of {len(files[0]) / 1e6:.1f} MB GPX ({args.fixes:,} fixes) each\n")
    no_trim, no_arena_cap = (
        {"MANGROVE_SERVER_TRIM_MEMORY_AFTER_BYTES": "0"},
        {"MANGROVE_SERVER_MALLOC_ARENA_MAX": "0"},
    )
    modes = {"without": no_trim | no_arena_cap, "trim only": no_arena_cap, "arenas only": no_trim, "with": {}}
    results = {label: run_server(label, extra, files) for label, extra in modes.items()}
    print(f"{'':11} {'baseline':>9} {'peak':>9} {'after':>9} {'kept':>9} {'upload s':>9}   (MB)")
    for label, r in results.items():
        kept = r["after"] - r["baseline"]
        print(
            f"{label:8} {r['baseline']:9.0f} {r['peak']:9.0f} {r['after']:9.0f} {kept:9.0f} {r['seconds']:9.1f}"
        )
    without, with_ = (results[k]["after"] - results[k]["baseline"] for k in ("without", "with"))
    print(f"\nmemory kept after the uploads: {with_:.0f} MB with the mechanism vs {without:.0f} MB without"
          f" ({without / max(with_, 1):.1f}× less)")  # fmt: skip


if __name__ == "__main__":
    main()
