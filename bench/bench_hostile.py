"""The hostile corpus against the real service: answers, time and the server's memory, per file.

    .venv/bin/python bench/bench_hostile.py [--backend spatialite|postgis|both] [--only NAME ...]
                                            [--no-big] [--max-upload-mib 110] [--glibc-defaults]

For each backend the service runs as it runs in production: ``uvicorn`` in a child process
(``api.app.create_app`` on a SpatiaLite file in a temporary directory, or on a throw-away PostGIS
database ``mangrove_bench_<random>`` on postgres@127.0.0.1:5432, dropped at the end), with
``MANGROVE_IMPORT_MAX_UPLOAD_BYTES`` at ``--max-upload-mib`` so that the big members (a 100 MB GPX,
a CSV with a 40 MB line, 30 MB GeoJSON…) reach the readers. Every member of ``tests/utils/hostile``
(``corpus(big=True)``) is written to a file, uploaded as a patrol member with ``httpx`` (streamed
from the file), and each accepted patrol is read back (the patrol, the list, its fixes as CSV)
and deleted.

Memory is the server process's, from ``/proc/PID/status``: the baseline is VmRSS after start-up
and one request; each file's peak is VmHWM after resetting it (``/proc/PID/clear_refs`` = 5)
just before the upload, read again after it (the upload's peak) and, reset once more, after the
read-back of an accepted patrol (shown apart). The corpus peak is the largest upload peak.
Target (issue 14): peak ≤ 500 MB over the whole corpus, never a 5xx.

The server sets up its allocator as ``mangrove serve`` does (``api.memory.configure``: a fixed
mmap threshold and two malloc arenas; freed memory trimmed after large bodies). Without that,
glibc keeps freed memory in its heap once it has raised its mmap threshold (it does so the first
time a large block is freed), so each big upload starts from the RSS the previous ones left:
``--glibc-defaults`` turns the three off, to show the difference.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from utils.hostile import corpus  # noqa: E402

PG_ADMIN_URL = os.environ.get(
    "MANGROVE_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
USER, PASSWORD = "bench-member", "bench-password-1"
TARGET_MB = 500
MB = 1024 * 1024


# --- the service, in a child process ----------------------------------------------------------------


def serve(port: int) -> None:
    """Child: migrate, load the reference data, add the patrol member, then serve on ``port``."""
    import uvicorn

    from api import memory
    from api.app import create_app
    from api.cli import ensure_database
    from patrol.accounts import RoleGrant, create_user
    from patrol.db import create_db_engine, make_session_factory
    from patrol.models import Role
    from patrol.settings import get_settings

    memory.configure(get_settings().server)  # as `mangrove serve` does
    engine = create_db_engine(settings=get_settings())
    ensure_database(engine)
    with make_session_factory(engine)() as session:
        grant = RoleGrant(Role.PATROL_MEMBER, team="LJ-T-GQ")
        create_user(session, username=USER, password=PASSWORD, side="GD-LJ", grants=[grant])
        session.commit()
    uvicorn.run(create_app(engine=engine), host="127.0.0.1", port=port, log_level="warning")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS


class Service:
    def __init__(self, backend: str, workdir: Path, max_upload: int):
        self.backend = backend
        self.env = {
            **os.environ,
            "MANGROVE_DATA_DIR": str(workdir / "data"),
            "MANGROVE_IMPORT_MAX_UPLOAD_BYTES": str(max_upload),
            "MANGROVE_AUTH_SECRET_KEY": "bench-secret-" + "x" * 32,
            "PYTHONPATH": str(ROOT),
        }
        self.drop = None
        if backend == "postgis":
            from sqlalchemy import create_engine, text

            name = f"mangrove_bench_{uuid.uuid4().hex[:10]}"
            admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            self.env["MANGROVE_DATABASE_URL"] = admin.url.set(database=name).render_as_string(
                hide_password=False
            )

            def drop():
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()

            self.drop = drop
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(workdir / f"server-{backend}.log", "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(self.port)],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait(self, client: httpx.Client, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the {self.backend} service stopped; see {self.log.name}")
            try:
                client.get(self.base + "/api/v1/grids", timeout=5)
                return
            except httpx.TransportError:
                time.sleep(0.5)
        raise SystemExit(f"the {self.backend} service did not start within {timeout:.0f} s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        if self.drop:
            self.drop()


# --- one backend ------------------------------------------------------------------------------------


def run(backend: str, members, workdir: Path, max_upload: int) -> dict:
    service = Service(backend, workdir, max_upload)
    results = []
    try:
        with httpx.Client(timeout=600) as client:
            service.wait(client)
            token = client.post(
                service.base + "/api/v1/auth/token", data={"username": USER, "password": PASSWORD}
            ).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            client.get(service.base + "/api/v1/patrols", headers=headers)
            pid = service.proc.pid
            baseline = status_kb(pid, "VmRSS") / 1024
            print(f"\n== {backend}: server pid {pid}, baseline RSS after start {baseline:.0f} MB")
            print(
                f"{'file':44} {'size':>9} {'answer':>6} {'upload s':>9} {'peak MB':>8} {'reads':>6} {'MB':>6}  detail"
            )
            (workdir / "files").mkdir(exist_ok=True)
            for number, item in enumerate(members):
                path = workdir / "files" / f"{number:03d}{Path(item.filename.replace(chr(0), '')).suffix}"
                with open(path, "wb") as f:
                    item.write(f)
                size = path.stat().st_size
                reset_peak(pid)
                t0 = time.perf_counter()
                with open(path, "rb") as f:
                    response = client.post(
                        service.base + "/api/v1/patrols", files={"file": (item.filename, f)}, headers=headers
                    )
                seconds = time.perf_counter() - t0
                peak = status_kb(pid, "VmHWM") / 1024
                reads, read_peak = "-", 0.0
                if response.status_code in (200, 201):
                    reset_peak(pid)
                    patrol = response.json()["id"]
                    codes = [
                        client.get(service.base + p, headers=headers).status_code
                        for p in (
                            f"/api/v1/patrols/{patrol}",
                            "/api/v1/patrols",
                            f"/api/v1/patrols/{patrol}/fixes",
                        )
                    ]
                    reads = "ok" if codes == [200, 200, 200] else "/".join(map(str, codes))
                    client.delete(service.base + f"/api/v1/patrols/{patrol}", headers=headers)
                    read_peak = status_kb(pid, "VmHWM") / 1024
                detail = response.json().get("detail", "") if response.status_code >= 300 else ""
                path.unlink()
                expected = response.status_code == item.status
                results.append((item, size, response.status_code, seconds, reads, peak, expected, read_peak))
                mark = "" if expected else f"  (expected {item.status})"
                shown_reads = f"{read_peak:6.0f}" if read_peak else "     -"
                print(
                    f"{item.name[:44]:44} {size / MB:8.2f}M {response.status_code:>6} {seconds:9.2f} {peak:8.0f} "
                    f"{reads:>6} {shown_reads}  {detail[:60]}{mark}",
                    flush=True,
                )
            final = status_kb(pid, "VmRSS") / 1024
    finally:
        service.stop()
    peak = max(r[5] for r in results)
    worst = max(results, key=lambda r: r[5])
    read_peak = max(r[7] for r in results)
    read_worst = max(results, key=lambda r: r[7])
    server_errors = [r[0].name for r in results if r[2] >= 500]
    unexpected = [r[0].name for r in results if not r[6]]
    print(f"-- {backend}: {len(results)} files, baseline {baseline:.0f} MB, peak {peak:.0f} MB "
          f"({peak / baseline:.2f}x baseline; largest for {worst[0].name}), RSS at the end {final:.0f} MB")  # fmt: skip
    print(f"   reading back the accepted patrols (patrol, list, fixes CSV): peak {read_peak:.0f} MB "
          f"(largest for {read_worst[0].name})")  # fmt: skip
    print(f"   5xx answers: {len(server_errors)} {server_errors or ''}; answers other than expected: "
          f"{len(unexpected)} {unexpected or ''}")  # fmt: skip
    met = peak <= TARGET_MB and not server_errors
    print(f"   target peak <= {TARGET_MB} MB and no 5xx: {'met' if met else 'NOT met'}")
    return {"backend": backend, "baseline": baseline, "peak": peak, "reads": read_peak, "errors": server_errors,
            "met": met}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--backend", choices=["spatialite", "postgis", "both"], default="both")
    parser.add_argument("--only", nargs="*", help="members whose name contains one of these")
    parser.add_argument("--no-big", action="store_true", help="leave out the members over 16 MB")
    parser.add_argument("--max-upload-mib", type=int, default=110)
    parser.add_argument(
        "--glibc-defaults",
        action="store_true",
        help="serve without the service's allocator settings (no fixed mmap threshold, glibc's "
        "arenas, no trim after large bodies)",
    )
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    members = [m for m in corpus(big=not args.no_big) if not args.only or any(o in m.name for o in args.only)]
    allocator = "glibc defaults" if args.glibc_defaults else "as mangrove serve sets it"
    print(f"machine: {platform.machine()}, Python {platform.python_version()}; {len(members)} corpus files; "
          f"upload limit {args.max_upload_mib} MiB; allocator: {allocator}")  # fmt: skip
    backends = ["spatialite", "postgis"] if args.backend == "both" else [args.backend]
    workdir = Path(tempfile.mkdtemp(prefix="bench-hostile-"))
    try:
        if args.glibc_defaults:  # the server inherits these
            os.environ.update(
                MANGROVE_SERVER_MALLOC_MMAP_THRESHOLD="0",
                MANGROVE_SERVER_MALLOC_ARENA_MAX="0",
                MANGROVE_SERVER_TRIM_MEMORY_AFTER_BYTES="0",
            )
        summary = [run(b, members, workdir, args.max_upload_mib * MB) for b in backends]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    for s in summary:
        print(f"{s['backend']:10} baseline {s['baseline']:5.0f} MB  upload peak {s['peak']:5.0f} MB  "
              f"read-back peak {s['reads']:5.0f} MB  "
              f"5xx {len(s['errors'])}  target {'met' if s['met'] else 'NOT met'}")  # fmt: skip
    return 0 if all(s["met"] for s in summary) else 1


if __name__ == "__main__":
    sys.exit(main())
