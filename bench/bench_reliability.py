"""Reliability under load, on SpatiaLite and PostGIS, each figure beside its baseline in one run.

    .venv/bin/python bench/bench_reliability.py [--seconds 15] [--repeats 40] [--backends spatialite,postgis]

1. Sustained uploads: the real service (``mangrove serve`` in a child process) on a fresh
   database, 1, 4 and 16 clients uploading distinct GPX walks (≈2,300 fixes at 1 Hz) over real
   HTTP for ``--seconds`` each: uploads/s and fixes/s. Meanwhile an officer lists incidents
   (``GET /api/v1/incidents``, 1,000 stored) every 100 ms: p50/p95 of that query under load,
   against the same query on the idle service (the baseline).
2. The audit trail's cost, in process: an upload and an incident transition each committed with
   their audit entry and without it (``patrol.audit.suspended()``), alternating, ``--repeats``
   times each: median and interquartile range, and the overhead of the median (target ≤ 5 %).
3. SpatiaLite's ``synchronous=FULL`` (every acknowledged commit on disk, even on a power cut)
   against NORMAL, on the same upload and transition, alternating.

PostGIS databases are created on the shared server (``MANGROVE_TEST_POSTGRES_URL``, default
127.0.0.1:5432) and dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import httpx  # noqa: E402
import psycopg  # noqa: E402
from sqlalchemy import event, select  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from utils.faults import prepare_database, settings_for  # noqa: E402
from utils.phone import sign_in, track_file  # noqa: E402
from utils.places import inside  # noqa: E402
from utils.service import Service  # noqa: E402

from patrol import audit  # noqa: E402
from patrol.accounts import Principal  # noqa: E402
from patrol.db import create_db_engine, make_session_factory  # noqa: E402
from patrol.incidents import IncidentReport, report_incident, transition  # noqa: E402
from patrol.models import AuditHead, User  # noqa: E402
from patrol.patrols import UploadOptions, upload_patrol  # noqa: E402

PG_ADMIN = os.environ.get(
    "MANGROVE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
CLIENTS = (1, 4, 16)
INCIDENTS = 1000
USERS = ("member", "officer-lj")


# --- databases -----------------------------------------------------------------------------------


@contextmanager
def fresh_database(backend: str, work: Path):
    """The URL of a new database of ``backend``, migrated, with the reference data, two users
    and 1,000 incidents; dropped afterwards."""
    if backend == "spatialite":
        url = f"sqlite:///{work / 'bench.sqlite'}"
        drop = None
    else:
        admin = make_url(PG_ADMIN)
        name = f"mangrove_bench_{uuid.uuid4().hex[:8]}"
        params = {"host": admin.host, "port": admin.port, "user": admin.username, "autocommit": True}
        with psycopg.connect(**params, password=admin.password) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = admin.set(database=name).render_as_string(hide_password=False)

        def drop():
            with psycopg.connect(**params, password=admin.password) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    try:
        prepare_database(url, work, *USERS)
        engine = create_db_engine(url, settings=settings_for(url, work))
        sessions = make_session_factory(engine)
        with sessions() as session:
            member = principal(session, "member")
            lon, lat = inside("LJ-GQ-03")
            for _ in range(INCIDENTS):
                report_incident(
                    session, member, IncidentReport("rubbish", lon, lat), settings_for(url, work).incidents
                )
            session.commit()
        engine.dispose()
        yield url
    finally:
        if drop:
            drop()


def principal(session, name: str) -> Principal:
    return Principal.of(session.scalars(select(User).where(User.username == name)).one(), channel="api")


# --- 1. sustained uploads with incident queries alongside --------------------------------------


class Lister(threading.Thread):
    """GET /api/v1/incidents every ``pace_s``; latencies in ms."""

    def __init__(self, url: str, token: str, pace_s: float = 0.1):
        super().__init__(daemon=True)
        self.url, self.token, self.pace_s = url, token, pace_s
        self.stop, self.ms, self.failed = threading.Event(), [], 0

    def run(self):
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=120) as client:
            while not self.stop.is_set():
                began = time.perf_counter()
                status = client.get("/api/v1/incidents", params={"limit": 50}).status_code
                self.ms.append((time.perf_counter() - began) * 1000)
                self.failed += status != 200
                self.stop.wait(max(0.0, self.pace_s - (time.perf_counter() - began)))


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def sustained(url: str, work: Path, seconds: float) -> list[str]:
    lines = []
    with Service(url, work / "service") as service:
        upload_token, officer_token = sign_in(service.url, "member"), sign_in(service.url, "officer-lj")
        with httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {upload_token}"}) as c:
            name, data = track_file(10_000, interval=1.0, prefix="warm")
            assert c.post("/api/v1/patrols", files={"file": (name, data)}, timeout=120).status_code == 201
        idle = Lister(service.url, officer_token)
        idle.start()
        time.sleep(min(seconds, 10))
        idle.stop.set()
        idle.join()
        lines.append(
            f"  incident list, idle service:  p50 {p(idle.ms, 50):7.1f} ms  p95 {p(idle.ms, 95):7.1f} ms"
            f"  ({len(idle.ms)} queries)"
        )
        for clients in CLIENTS:
            done, fixes, failed = upload_load(service.url, upload_token, clients, seconds, f"c{clients}")
            lister = done.pop("lister")
            lines.append(
                f"  {clients:>2} clients: {done['n'] / done['elapsed']:6.2f} uploads/s "
                f"{fixes / done['elapsed']:9,.0f} fixes/s ({done['n']} uploads, {failed} failed); "
                f"incident list p50 {p(lister.ms, 50):7.1f} ms p95 {p(lister.ms, 95):7.1f} ms "
                f"({p(lister.ms, 95) / p(idle.ms, 95):.1f}x idle; {lister.failed} failed)"
            )
    return lines


def upload_load(url: str, token: str, clients: int, seconds: float, prefix: str):
    counter = iter(range(10**6))
    lock = threading.Lock()
    results = {"n": 0, "fixes": 0, "failed": 0}
    stop_at = time.monotonic() + seconds

    def client():
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=300) as c:
            while time.monotonic() < stop_at:
                with lock:
                    i = next(counter)
                name, data = track_file(i, interval=1.0, prefix=prefix)
                response = c.post("/api/v1/patrols", files={"file": (name, data)})
                with lock:
                    if response.status_code == 201:
                        results["n"] += 1
                        results["fixes"] += response.json()["fixes"]
                    else:
                        results["failed"] += 1

    lister = Lister(url, sign_in(url, "officer-lj"))
    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.monotonic()
    lister.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    lister.stop.set()
    lister.join()
    return {"n": results["n"], "elapsed": elapsed, "lister": lister}, results["fixes"], results["failed"]


# --- 2 and 3. the same operation two ways, alternating -------------------------------------------


def alternate(a: Callable[[int], float], b: Callable[[int], float], repeats: int) -> tuple[list, list]:
    """Timings of ``a(i)`` and ``b(i)``, interleaved (ab, ba, ab …) so drift hits both alike."""
    xs, ys = [], []
    for i in range(repeats):
        if i % 2:
            ys.append(b(2 * i))
            xs.append(a(2 * i + 1))
        else:
            xs.append(a(2 * i))
            ys.append(b(2 * i + 1))
    return xs, ys


def summary(label: str, with_: list[float], without: list[float], target: float | None = None) -> str:
    def iqr(v):
        q = statistics.quantiles(v, n=4)
        return f"{statistics.median(v):7.2f} ms (IQR {q[0]:.2f}–{q[2]:.2f})"

    overhead = statistics.median(with_) / statistics.median(without) - 1
    verdict = (
        "" if target is None else ("  target ≤ 5 %: met" if overhead <= target else "  target ≤ 5 %: NOT met")
    )
    return f"  {label}: {iqr(with_)} vs {iqr(without)}  overhead {overhead:+.1%}{verdict}"


class Operations:
    """An upload and an incident transition, committed, timed in ms; fresh files and incidents."""

    def __init__(self, engine, settings, work: Path, tag: str, repeats: int):
        self.sessions, self.settings, self.work, self.tag = make_session_factory(engine), settings, work, tag
        with self.sessions() as session:
            self.member, self.officer = principal(session, "member"), principal(session, "officer-lj")
            lon, lat = inside("LJ-GQ-01")
            self.incidents = [
                report_incident(
                    session, self.member, IncidentReport("rubbish", lon, lat), settings.incidents
                ).id
                for _ in range(2 * repeats + 2)
            ]
            session.commit()
        self.files = []
        for i in range(2 * repeats + 2):
            name, data = track_file(20_000 + i, interval=1.0, prefix=f"{tag}")
            (work / name).write_bytes(data)
            self.files.append(work / name)
        self.records_itself = self._domain_records()

    def _domain_records(self) -> bool:
        """Whether the domain functions write their audit entry themselves (then the bench does
        not add one): probed with the last file and incident."""
        with self.sessions() as session:
            before = session.scalar(select(AuditHead.seq))
            upload_patrol(session, self.files.pop(), filename="probe.gpx", principal=self.member,
                          options=UploadOptions(), settings=self.settings.patrols)  # fmt: skip
            moved = session.scalar(select(AuditHead.seq)) != before
            session.rollback()
        return moved

    def upload(self, i: int) -> float:
        path = self.files[i]
        began = time.perf_counter()
        with self.sessions() as session:
            result = upload_patrol(session, path, filename=path.name, principal=self.member,
                                   options=UploadOptions(), settings=self.settings.patrols)  # fmt: skip
            if not self.records_itself:
                audit.record(session, self.member, "patrol.upload", "patrol", result.patrol_id)
            session.commit()
        return (time.perf_counter() - began) * 1000

    def accept(self, i: int) -> float:
        incident_id = self.incidents[i]
        began = time.perf_counter()
        with self.sessions() as session:
            incident = transition(
                session, self.officer, incident_id, "accept", self.settings.incidents, version=1
            )
            if not self.records_itself:
                audit.record(session, self.officer, "incident.transition", "incident", incident.id,
                             {"status": ["reported", incident.status]})  # fmt: skip
            session.commit()
        return (time.perf_counter() - began) * 1000


def without_audit(operation: Callable[[int], float]) -> Callable[[int], float]:
    def run(i: int) -> float:
        with audit.suspended():
            return operation(i)

    return run


def audit_overhead(url: str, work: Path, repeats: int) -> list[str]:
    engine = create_db_engine(url, settings=settings_for(url, work))
    ops = Operations(engine, settings_for(url, work), work, "audit", repeats)
    ops.upload(2 * repeats)  # warm: grid index, statement caches
    lines = [f"  (the domain functions record their entry themselves: {ops.records_itself})"]
    for label, operation in (("upload", ops.upload), ("transition", ops.accept)):
        with_, without = alternate(operation, without_audit(operation), repeats)
        lines.append(summary(f"{label:<10} with audit vs without", with_, without, target=0.05))
    engine.dispose()
    return lines


def synchronous_cost(url: str, work: Path, repeats: int) -> list[str]:
    full = create_db_engine(url, settings=settings_for(url, work))
    normal = create_db_engine(url, settings=settings_for(url, work))

    @event.listens_for(normal, "connect")
    def _normal(dbapi_conn, _record):  # registered after patrol.db's own listener: overrides FULL
        dbapi_conn.execute("PRAGMA synchronous=NORMAL")

    settings = settings_for(url, work)
    on_full = Operations(full, settings, work, "full", repeats)
    on_normal = Operations(normal, settings, work, "normal", repeats)
    on_full.upload(2 * repeats)
    on_normal.upload(2 * repeats)
    lines = []
    for label, a, b in (
        ("upload", on_full.upload, on_normal.upload),
        ("transition", on_full.accept, on_normal.accept),
    ):
        with_, without = alternate(a, b, repeats)
        lines.append(summary(f"{label:<10} synchronous=FULL vs NORMAL", with_, without))
    full.dispose()
    normal.dispose()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=15, help="each upload load lasts this long")
    parser.add_argument("--repeats", type=int, default=40, help="timings of each operation, each way")
    parser.add_argument("--backends", default="spatialite,postgis")
    args = parser.parse_args()
    import shapely

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"shapely {shapely.__version__}; load average at start {os.getloadavg()[0]:.1f}")  # fmt: skip
    for backend in args.backends.split(","):
        print(f"\n{backend}")
        with tempfile.TemporaryDirectory(prefix="bench-reliability-") as tmp:
            work = Path(tmp)
            with fresh_database(backend, work) as url:
                for line in sustained(url, work, args.seconds):
                    print(line, flush=True)
                for line in audit_overhead(url, work, args.repeats):
                    print(line, flush=True)
                if backend == "spatialite":
                    for line in synchronous_cost(url, work, args.repeats):
                        print(line, flush=True)


if __name__ == "__main__":
    main()
