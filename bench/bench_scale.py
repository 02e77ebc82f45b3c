"""Issue 13 at province scale on PostGIS: ingest through the real upload path with concurrent
uploaders, grid effort over 10,000 grids, "who was near here, when", and the incidents' first page,
measured along a growth curve and extrapolated to 100,000,000 fixes / 10,000,000 incidents.

    .venv/bin/python bench/bench_scale.py [--sizes 1000000,3000000,10000000]
                                          [--incident-sizes 1000000,3000000,10000000]
                                          [--skip-patrols] [--skip-incidents] [--keep]

Patrols (database ``scale_bench``, dropped at the end unless --keep): migrate, load the reference
places, teams and stations, replace the reference grids with 10,000 synthetic 500 m squares in a
40-cell-deep band along 125 km of coast (lon 109.0–110.2, lat ~21.45–21.74, a meandering shore;
inside the service region's bounding box, which cleaning enforces), one patrol member per
GD-LJ team, then for each size step write the new patrols as GPX files (3,600 fixes at 1 Hz; 80 %
foot walks at 0.9–1.4 m/s, 20 % boat runs at 3–5 m/s, smooth random headings folded back into the
band, 2 m GPS noise; spread evenly over 24 months, 2025-01…2026-12, whose monthly partitions are
created first with ``patrol.partitions.create_months``) and upload them through
``patrol.patrols.upload_patrol`` (one session and commit per file) from concurrent processes: the
first half of each step's files with 2 uploaders, the second half with 4. Each process builds its
engine and the grid index before the clock starts. Baselines in the same run over (up to 1 M
fixes of) the same files: a bare ``lxml.etree.iterparse`` pass (1 and 2 processes), and a
PostgreSQL COPY of the same points as plain rows (patrol, time, lon, lat) into a scratch table.

At each size: database and table sizes; ``patrol.effort.grid_effort`` for one month over all
grids (admin, coverage at the default 50 m swath, and without coverage) and its visits SQL run
bare; ``patrol.patrols.nearby_patrols`` (officer of GD-LJ, radius 300 m, a 6-hour interval
holding a time when a random patrol was within 200 m of the point) and its candidate SELECT bare.

Incidents (a second scratch database, ``scale_bench_incidents``): bench_incidents' loader and
world (32 reference grids, three years), grown step by step; the officer's first page — the default
``GET /api/v1/incidents`` page (no filter, newest first, 100) and one grid-month page — through
``patrol.incidents.query_incidents`` and its SQL run bare.

Last, a log-log fit per figure over the sizes measured and the extrapolation to the issue's sizes,
beside its targets: ingest ≥ 150,000 fixes/s with two workers; effort p95 ≤ 300 ms; near p95 ≤
200 ms; incidents first page p95 ≤ 20 ms.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
import shapely  # noqa: E402
import sqlalchemy  # noqa: E402
from sqlalchemy import event, insert, select, text  # noqa: E402

from geodata import reference  # noqa: E402,F401  (before any GDAL user; see bench_incidents)

PG_ADMIN_URL = os.environ.get(
    "MANGROVE_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PATROL_DB, INCIDENT_DB = "scale_bench", "scale_bench_incidents"
PASSWORD = "bench-password-1"
FIXES = 3600  # per patrol: an hour at 1 Hz
N_GRIDS, ROWS, CELL = 10_000, 40, 500.0
FIRST_MONTH, N_MONTHS = date(2025, 1, 1), 24
TARGETS = {"ingest": 150_000.0, "effort": 300.0, "near": 200.0, "incidents": 20.0}
SEED = 2026


def ms(values) -> tuple[float, float]:
    p50, p95 = np.percentile(np.asarray(values) * 1000, [50, 95])
    return float(p50), float(p95)


def month_of(i: int) -> date:
    m = FIRST_MONTH.month - 1 + i
    return date(FIRST_MONTH.year + m // 12, m % 12 + 1, 1)


def next_month(d: date) -> date:
    return date(d.year + (d.month == 12), d.month % 12 + 1, 1)


# --- the databases -----------------------------------------------------------------------------------


def admin_engine():
    return sqlalchemy.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


def create_database(name: str) -> str:
    admin = admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    admin.dispose()
    return url


def drop_database(name: str) -> None:
    admin = admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def make_settings(url: str, folder: Path):
    from patrol.settings import AuthSettings, Settings, StorageSettings

    settings = Settings()
    settings.auth = AuthSettings(secret_key="bench-secret-" + "x" * 40)
    settings.storage = StorageSettings(data_dir=folder, database_url=url)
    return settings


# --- 10,000 grids along a coast -------------------------------------------------------------------


class Lattice:
    """Columns of ROWS squares of CELL metres in UTM 49N, each column shifted north or south to
    follow a meandering shore: ``shift(x)`` is the south edge of the band at easting ``x``."""

    def __init__(self, n: int = N_GRIDS):
        from patrol.grids import project

        self.cols = -(-n // ROWS)
        self.n = n
        x0, y0 = project(109.0, 21.5)  # inside geodata.region.REGION_BBOX, which cleaning enforces
        self.x0, self.y0 = float(x0), float(y0)
        self.width, self.depth = self.cols * CELL, ROWS * CELL

    def shift(self, x):
        t = (np.asarray(x) - self.x0) / self.width
        return self.y0 + 4000 * np.sin(2 * np.pi * 3 * t) + 1500 * np.sin(2 * np.pi * 11 * t)

    def cells(self):
        """(code, column, metric polygon) of each grid."""
        out = []
        for i in range(self.n):
            j, k = divmod(i, ROWS)
            x = self.x0 + j * CELL
            y = float(self.shift(x + CELL / 2)) + k * CELL
            out.append((f"SC-{j:03d}-{k:02d}", j, shapely.box(x, y, x + CELL, y + CELL)))
        return out

    def fold(self, x, y):
        """Fold a free walk back into the band (a mirror at each edge)."""
        u = np.mod(x - self.x0, 2 * self.width)
        u = np.where(u > self.width, 2 * self.width - u, u)
        x = self.x0 + u
        base = self.shift(x)
        v = np.mod(y - base, 2 * self.depth)
        v = np.where(v > self.depth, 2 * self.depth - v, v)
        return x, base + v


def build_grids(session, lattice: Lattice) -> list[str]:
    """Replace the reference grids by the lattice's; the GD-LJ team codes, west to east."""
    from patrol.db import geometry_from_wkb
    from patrol.grids import unproject
    from patrol.models import Grid, Team

    teams = session.scalars(select(Team).where(Team.side == "GD-LJ").order_by(Team.code)).all()
    session.execute(text("DELETE FROM grids"))
    now = datetime.now(UTC)
    rows = []
    cells = lattice.cells()
    polys = shapely.transform(np.array([c[2] for c in cells]), unproject, interleaved=False)
    wkbs = shapely.to_wkb(np.array([shapely.MultiPolygon([p]) for p in polys]))
    for (code, j, _), wkb in zip(cells, wkbs):
        team = teams[j * len(teams) // lattice.cols]
        rows.append({
            "code": code, "name_zh": f"红树林网格 {code}", "name_en": f"mangrove grid {code}",
            "side": "GD-LJ", "town": team.town, "team": team.code, "station": team.station, "kind": "grid",
            "area_ha": CELL * CELL / 10_000, "source": "bench_scale synthetic lattice", "approximate": True,
            "version": 1, "created_at": now, "updated_at": now, "wkb": wkb,
        })  # fmt: skip
    session.execute(insert(Grid.__table__).values(geom=geometry_from_wkb("wkb")), rows)
    return [t.code for t in teams]


# --- patrols as GPX files ------------------------------------------------------------------------


def walk(lattice: Lattice, idx: int):
    """Patrol ``idx``: (lon, lat, epoch seconds, boat?, column of its start). Deterministic."""
    from patrol.grids import unproject

    rng = np.random.default_rng([SEED, idx])
    boat = bool(rng.random() < 0.2)
    speed = rng.uniform(3.0, 5.0) if boat else rng.uniform(0.9, 1.4)
    j, k = int(rng.integers(0, lattice.cols)), int(rng.integers(0, ROWS))
    sx = lattice.x0 + (j + 0.5) * CELL
    sy = float(lattice.shift(sx)) + (k + 0.5) * CELL
    heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.04, FIXES))
    x = sx + np.cumsum(speed * np.cos(heading))
    y = sy + np.cumsum(speed * np.sin(heading))
    x, y = lattice.fold(x, y)
    x, y = x + rng.normal(0, 2.0, FIXES), y + rng.normal(0, 2.0, FIXES)
    lon, lat = unproject(x, y)
    month = month_of(idx % N_MONTHS)
    days = (next_month(month) - month).days
    start = datetime(month.year, month.month, 1, tzinfo=UTC) + timedelta(
        days=int(rng.integers(0, days)),
        hours=float(rng.uniform(-2, 8)),  # 06:00–16:00 China time
    )
    start = start.replace(microsecond=0)
    if start.date() < month:
        start += timedelta(hours=10)
    seconds = start.timestamp() + np.arange(FIXES, dtype=np.float64)
    return np.asarray(lon), np.asarray(lat), seconds, boat, j


def gpx_bytes(lon, lat, seconds) -> bytes:
    stamps = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s")
    body = "".join(
        f'<trkpt lat="{la:.7f}" lon="{lo:.7f}"><ele>1.0</ele><time>{t}Z</time></trkpt>\n'
        for lo, la, t in zip(lon.tolist(), lat.tolist(), stamps.tolist())
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<gpx version="1.1" creator="bench_scale" '
        'xmlns="http://www.topografix.com/GPX/1/1">\n<trk><name>patrol</name><trkseg>\n'
        + body
        + "</trkseg></trk></gpx>\n"
    ).encode()


def write_files(lattice: Lattice, first: int, last: int, folder: Path, teams: list[str]) -> list[tuple]:
    """Plan rows (path, username, boat) for patrols first…last-1, their GPX written to ``folder``."""
    plan = []
    for idx in range(first, last):
        lon, lat, seconds, boat, j = walk(lattice, idx)
        path = folder / f"p{idx:06d}.gpx"
        path.write_bytes(gpx_bytes(lon, lat, seconds))
        team = teams[j * len(teams) // lattice.cols]
        plan.append((str(path), f"m-{team.lower()}", boat))
    return plan


# --- the uploaders -------------------------------------------------------------------------------


def _uploader_main(url: str, folder: str, jobs: list[tuple], barrier, results) -> None:
    try:
        _upload_all(url, folder, jobs, barrier, results)
    except BaseException:
        import traceback

        results.put(("failed", traceback.format_exc()))
        barrier.abort()
        raise


def _upload_all(url: str, folder: str, jobs: list[tuple], barrier, results) -> None:
    from geodata.cleaning import Transport
    from patrol.accounts import Principal
    from patrol.db import create_db_engine, make_session_factory
    from patrol.grids import metric_grid_index
    from patrol.models import User
    from patrol.patrols import UploadOptions, upload_patrol
    from patrol.settings import PatrolSettings

    engine = create_db_engine(url, settings=make_settings(url, Path(folder)))
    factory = make_session_factory(engine)
    settings = PatrolSettings()
    principals = {}
    with factory() as session:
        index, _ = metric_grid_index(session)  # built before the clock starts, as a running service has it
        index.assign_index(np.array([0.0] * 30_000), np.array([0.0] * 30_000))  # and its lattice
        for username in {j[1] for j in jobs}:
            user = session.scalar(select(User).where(User.username == username))
            principals[username] = Principal.of(user)
    barrier.wait()
    fixes, latencies, created = 0, [], 0
    for path, username, boat in jobs:
        started = time.perf_counter()
        with factory() as session:
            result = upload_patrol(
                session, path, filename=Path(path).name, principal=principals[username],
                options=UploadOptions(transport=Transport.BOAT if boat else Transport.FOOT), settings=settings,
            )  # fmt: skip
            session.commit()
        latencies.append(time.perf_counter() - started)
        fixes += result.summary["fixes"]
        created += result.created
    results.put((fixes, created, latencies))
    engine.dispose()


def upload_concurrently(url: str, folder: Path, plan: list[tuple], workers: int) -> dict:
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(workers + 1)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_uploader_main, args=(url, str(folder), plan[w::workers], barrier, results))
        for w in range(workers)
    ]
    for p in procs:
        p.start()
    barrier.wait()
    started = time.perf_counter()
    got = [results.get() for _ in procs]
    failed = [g[1] for g in got if g[0] == "failed"]
    if failed:
        raise RuntimeError("an uploader failed:\n" + failed[0])
    wall = time.perf_counter() - started
    for p in procs:
        p.join()
        assert p.exitcode == 0, f"an uploader failed ({p.exitcode})"
    fixes = sum(g[0] for g in got)
    created = sum(g[1] for g in got)
    assert created == len(plan), (created, len(plan))
    latencies = [x for g in got for x in g[2]]
    return {"workers": workers, "patrols": len(plan), "fixes": fixes, "wall": wall, "rate": fixes / wall,
            "upload_p50": ms(latencies)[0], "upload_p95": ms(latencies)[1]}  # fmt: skip


# --- baselines over the same files ---------------------------------------------------------------


def _bare_pass(path: str) -> int:
    from lxml import etree

    n = 0
    for _, element in etree.iterparse(path, events=("end",)):
        n += element.tag.endswith("trkpt")
        element.clear()
    return n


def iterparse_rate(paths: list[str], workers: int) -> float:
    started = time.perf_counter()
    if workers == 1:
        n = sum(_bare_pass(p) for p in paths)
    else:
        with mp.get_context("fork").Pool(workers) as pool:
            n = sum(pool.map(_bare_pass, paths, chunksize=4))
    return n / (time.perf_counter() - started)


def copy_rate(engine, lattice: Lattice, indices: list[int]) -> float:
    """COPY the same points (patrol, time, lon, lat) as plain rows into a scratch table."""
    buffers = []
    n = 0
    for idx in indices:
        lon, lat, seconds, _, _ = walk(lattice, idx)
        stamps = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s")
        buffers.append(
            "".join(
                f"{idx}\t{t}Z\t{lo!r}\t{la!r}\n"
                for t, lo, la in zip(stamps.tolist(), lon.tolist(), lat.tolist())
            )
        )
        n += len(lon)
    raw = engine.raw_connection()
    try:
        cur = raw.driver_connection.cursor()
        cur.execute("CREATE TABLE bench_plain_fixes (patrol integer, t timestamptz, lon float8, lat float8)")
        raw.driver_connection.commit()
        started = time.perf_counter()
        with cur.copy("COPY bench_plain_fixes FROM STDIN") as copy:
            for b in buffers:
                copy.write(b)
        raw.driver_connection.commit()
        rate = n / (time.perf_counter() - started)
        cur.execute("DROP TABLE bench_plain_fixes")
        raw.driver_connection.commit()
    finally:
        raw.close()
    return rate


# --- capturing a statement to run it bare ------------------------------------------------------------


class Capture:
    def __init__(self, engine):
        self.engine, self.statements = engine, []

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._hook)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._hook)

    def _hook(self, conn, cursor, statement, parameters, context, executemany):
        self.statements.append((statement, parameters))


def bare_times(engine, statements: list[tuple], repeats: int = 1) -> list[float]:
    raw = engine.raw_connection()
    times = []
    try:
        con = raw.driver_connection
        for _ in range(repeats):
            for statement, params in statements:
                cur = con.cursor()
                started = time.perf_counter()
                cur.execute(statement, params)
                cur.fetchall()
                times.append(time.perf_counter() - started)
                cur.close()
                con.rollback()
    finally:
        raw.close()
    return times


# --- measurements at one size ----------------------------------------------------------------------


def sizes(engine) -> dict:
    with engine.connect() as conn:
        out = {"database": int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar())}
        for table in ("patrol_fixes", "patrols"):
            out[table] = int(conn.execute(text(f"SELECT pg_total_relation_size('{table}')")).scalar())
        for table in ("patrol_segments", "patrol_visits"):
            out[table] = int(
                conn.execute(
                    text(f"SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('{table}')")
                ).scalar()
            )
        out["rows"] = {
            t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar()
            for t in ("patrols", "patrol_segments", "patrol_visits")
        }
        out["default_rows"] = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM patrol_segments_default) + (SELECT count(*) FROM patrol_visits_default)"
            )
        ).scalar()
    return out


def measure_effort(engine, factory, rng, runs: int) -> dict:
    from patrol.effort import EffortFilter, grid_effort
    from patrol.settings import PatrolSettings

    swath = PatrolSettings().swath_width_m  # the service's default swath
    picks = [month_of(int(m)) for m in rng.integers(0, N_MONTHS, runs)]
    filters = [
        EffortFilter(start=datetime(m.year, m.month, 1, tzinfo=UTC),
                     end=datetime(next_month(m).year, next_month(m).month, 1, tzinfo=UTC))
        for m in picks
    ]  # fmt: skip
    out: dict = {}
    with factory() as s:  # warm: the first call reads the grids into the cache
        rows = grid_effort(s, filters[0], swath_width_m=swath, coverage=False)
        assert len(rows) == N_GRIDS, len(rows)
    for coverage in (True, False):
        times, patrolled, captured = [], [], []
        for i, flt in enumerate(filters):
            with factory() as s:
                if i < 3 and not coverage:
                    with Capture(engine) as cap:
                        grid_effort(s, flt, swath_width_m=swath, coverage=False)
                    captured += [st for st in cap.statements if "FROM patrol_visits" in st[0]]
                started = time.perf_counter()
                rows = grid_effort(s, flt, swath_width_m=swath, coverage=coverage)
                times.append(time.perf_counter() - started)
            patrolled.append(sum(r["patrols"] > 0 for r in rows))
        out["coverage" if coverage else "plain"] = ms(times)
        out["grids_patrolled"] = int(np.median(patrolled))
        if captured:
            out["bare"] = ms(bare_times(engine, captured, repeats=3))
            out["bare_params"] = len(captured[0][1]) if hasattr(captured[0][1], "__len__") else 0
    return out


def measure_near(engine, factory, lattice: Lattice, n_patrols: int, rng, runs: int) -> dict:
    from patrol.accounts import Principal
    from patrol.grids import project, unproject
    from patrol.models import Patrol, User
    from patrol.patrols import nearby_patrols
    from patrol.segments import NearQuery

    with factory() as s:
        officer = Principal.of(s.scalar(select(User).where(User.username == "bench-officer")))
        ids = dict(s.execute(select(Patrol.source_name, Patrol.id)).all())
    queries, owners = [], []
    for idx in rng.integers(0, n_patrols, runs):
        lon, lat, seconds, _, _ = walk(lattice, int(idx))
        i = int(rng.integers(0, FIXES))
        x, y = project(lon[i], lat[i])
        angle, dist = rng.uniform(0, 2 * np.pi), rng.uniform(0, 200)
        qlon, qlat = unproject(x + dist * np.cos(angle), y + dist * np.sin(angle))
        start = datetime.fromtimestamp(seconds[i] - rng.uniform(0, 6 * 3600), UTC)
        queries.append(NearQuery(float(qlon), float(qlat), 300.0, start, start + timedelta(hours=6)))
        owners.append(ids[f"p{int(idx):06d}.gpx"])
    with factory() as s:
        nearby_patrols(s, officer, queries[0])  # warm
    times, found, hits, captured = [], [], 0, []
    for q, owner in zip(queries, owners):
        with factory() as s:
            started = time.perf_counter()
            result = nearby_patrols(s, officer, q)
            times.append(time.perf_counter() - started)
        found.append(len(result))
        hits += owner in {r.approach.patrol_id for r in result}
    for q in queries:
        with factory() as s, Capture(engine) as cap:
            nearby_patrols(s, officer, q)
        captured += [st for st in cap.statements if "FROM patrol_segments" in st[0]]
    assert len(captured) == len(queries), len(captured)
    return {"api": ms(times), "bare": ms(bare_times(engine, captured)), "found_median": float(np.median(found)),
            "hit_share": hits / len(queries)}  # fmt: skip


# --- the patrol growth curve -----------------------------------------------------------------------


def run_patrols(args, folder: Path) -> list[dict]:
    from patrol import migrate
    from patrol.accounts import RoleGrant, create_user
    from patrol.db import create_db_engine, make_session_factory
    from patrol.models import Role
    from patrol.partitions import create_months
    from patrol.reference import load_reference

    url = create_database(PATROL_DB)
    engine = create_db_engine(url, settings=make_settings(url, folder))
    steps = []
    try:
        migrate.upgrade(engine)
        with engine.connect() as conn:
            print(f"  {conn.execute(text('SELECT version()')).scalar().split(',')[0]}, PostGIS "
                  f"{conn.execute(text('SELECT postgis_lib_version()')).scalar()}, shared_buffers "
                  f"{conn.execute(text('SHOW shared_buffers')).scalar()}, work_mem {conn.execute(text('SHOW work_mem')).scalar()}")  # fmt: skip
        lattice = Lattice()
        factory = make_session_factory(engine)
        started = time.perf_counter()
        with factory() as s:
            load_reference(s)
            teams = build_grids(s, lattice)
            for team in teams:
                create_user(s, username=f"m-{team.lower()}", password=PASSWORD, side="GD-LJ",
                            grants=[RoleGrant(Role.PATROL_MEMBER, team=team)])  # fmt: skip
            create_user(s, username="bench-officer", password=PASSWORD, side="GD-LJ",
                        grants=[RoleGrant(Role.ENFORCEMENT_OFFICER)])  # fmt: skip
            s.commit()
        with engine.begin() as conn:
            created = create_months(conn, FIRST_MONTH, month_of(N_MONTHS - 1))
        with engine.begin() as conn:
            conn.execute(text("ANALYZE grids"))
        print(f"  {N_GRIDS:,} grids ({lattice.cols} columns x {ROWS} of {CELL:.0f} m), {len(teams)} teams, "
              f"{len(created)} monthly partitions in {time.perf_counter() - started:.1f} s")  # fmt: skip
        engine.dispose()
        done = 0
        rng = np.random.default_rng(SEED)
        for target in args.sizes:
            total = -(-target // FIXES)
            if total <= done:
                continue
            step_dir = folder / f"step-{total}"
            step_dir.mkdir()
            t0 = time.perf_counter()
            plan = write_files(lattice, done, total, step_dir, teams)
            gpx_s = time.perf_counter() - t0
            half = len(plan) // 2
            print(f"\n== {total:,} patrols ({total * FIXES:,} fixes): wrote {len(plan):,} GPX files "
                  f"({sum(Path(p[0]).stat().st_size for p in plan) / 1e6:,.0f} MB) in {gpx_s:.1f} s")  # fmt: skip
            ingest = [
                upload_concurrently(url, folder, plan[:half], 2),
                upload_concurrently(url, folder, plan[half:], 4),
            ]
            for r in ingest:
                print(f"  ingest, {r['workers']} uploaders: {r['patrols']:,} patrols, {r['fixes']:,} fixes in "
                      f"{r['wall']:.1f} s = {r['rate']:,.0f} fixes/s; one upload p50 {r['upload_p50']:.0f} ms, "
                      f"p95 {r['upload_p95']:.0f} ms")  # fmt: skip
            sample = plan[: max(1, 1_000_000 // FIXES)]
            paths = [p[0] for p in sample]
            base1 = iterparse_rate(paths, 1)
            base2 = iterparse_rate(paths, 2)
            copy = copy_rate(engine, lattice, list(range(done, done + len(sample))))
            print(f"  baselines over {len(sample) * FIXES:,} of the same fixes: lxml iterparse {base1:,.0f} fixes/s "
                  f"(1 process), {base2:,.0f} (2); COPY as plain rows {copy:,.0f} fixes/s")  # fmt: skip
            print(f"  ingest with 2 uploaders = {ingest[0]['rate'] / base2:.3f}x the 2-process iterparse pass, "
                  f"{ingest[0]['rate'] / copy:.3f}x COPY")  # fmt: skip
            t0 = time.perf_counter()
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))
            vacuum_s = time.perf_counter() - t0
            shutil.rmtree(step_dir)
            done = total
            size = sizes(engine)
            fixes_m = done * FIXES / 1e6
            print(f"  VACUUM ANALYZE {vacuum_s:.1f} s; rows: " + ", ".join(f"{k} {v:,}" for k, v in size["rows"].items())
                  + f" (in default partitions: {size['default_rows']:,})")  # fmt: skip
            print("  size: " + ", ".join(f"{k} {size[k] / 1e6:,.0f} MB ({size[k] / 1e6 / fixes_m:,.1f} MB per M fixes)"
                                          for k in ("database", "patrol_fixes", "patrol_segments", "patrol_visits", "patrols")))  # fmt: skip
            eff = measure_effort(engine, factory, rng, args.effort_runs)
            print(f"  effort, one month, {N_GRIDS:,} grids ({eff['grids_patrolled']:,} patrolled): with coverage "
                  f"p50 {eff['coverage'][0]:.0f} p95 {eff['coverage'][1]:.0f} ms; without p50 {eff['plain'][0]:.0f} "
                  f"p95 {eff['plain'][1]:.0f} ms; its visits SQL bare p50 {eff['bare'][0]:.0f} p95 {eff['bare'][1]:.0f} ms "
                  f"({eff['bare_params']:,} bound parameters)")  # fmt: skip
            near = measure_near(engine, factory, lattice, done, rng, args.near_runs)
            print(f"  near (300 m, 6 h): p50 {near['api'][0]:.1f} p95 {near['api'][1]:.1f} ms; candidate SELECT bare "
                  f"p50 {near['bare'][0]:.1f} p95 {near['bare'][1]:.1f} ms; {near['found_median']:.0f} patrols found "
                  f"(median), the walked patrol among them in {near['hit_share']:.0%}")  # fmt: skip
            steps.append({"fixes": done * FIXES, "patrols": done, "ingest": ingest, "iterparse1": base1,
                          "iterparse2": base2, "copy": copy, "size": size, "effort": eff, "near": near})  # fmt: skip
            engine.dispose()
    finally:
        engine.dispose()
        if not args.keep:
            drop_database(PATROL_DB)
    return steps


# --- the incident growth curve ---------------------------------------------------------------------


def run_incidents(args, folder: Path) -> list[dict]:
    import bench_incidents as bi

    from patrol import migrate
    from patrol.accounts import Principal
    from patrol.db import create_db_engine, make_session_factory
    from patrol.incidents import IncidentQuery, query_incidents
    from patrol.models import User

    url = create_database(INCIDENT_DB)
    settings = make_settings(url, folder)
    engine = create_db_engine(url, settings=settings)
    backend = bi.Backend("postgis", settings, engine, f"PostGIS database {INCIDENT_DB}", folder)
    steps = []
    try:
        migrate.upgrade(engine)
        world = bi.setup_world(backend, SEED)
        loaded = 0
        for k, target in enumerate(args.incident_sizes):
            if target <= loaded:
                continue
            stats: dict = {}
            offset = loaded

            def shifted(chunks, offset=offset):
                for data in chunks:  # ids continue after what is loaded
                    data["id"] = data["id"] + offset
                    dup, mask = data["duplicate_of"]
                    data["duplicate_of"] = (dup + offset, mask)
                    yield data

            t0 = time.perf_counter()
            bi.load_postgis(
                backend, shifted(bi.incident_chunks(world, target - loaded, 250_000, SEED + k)), stats
            )
            load_s = time.perf_counter() - t0
            loaded = target
            with engine.connect() as conn:
                n = conn.execute(text("SELECT count(*) FROM incidents")).scalar()
                size = conn.execute(text("SELECT pg_total_relation_size('incidents')")).scalar()
            assert n == loaded, (n, loaded)
            print(f"\n== {n:,} incidents: +{target - offset:,} in {load_s:.0f} s (generate {stats['generate']:.0f} s, "
                  f"COPY {stats['insert']:.0f} s = {(target - offset) / stats['insert']:,.0f} rows/s, indexes "
                  f"{stats['b-tree indexes'] + stats['spatial index']:.0f} s, FK {stats['FK check']:.0f} s, "
                  f"VACUUM ANALYZE {stats['ANALYZE']:.0f} s); incidents {size / 1e6:,.0f} MB")  # fmt: skip
            factory = make_session_factory(engine)
            with factory() as s:
                officer = Principal.of(s.scalar(select(User).where(User.username == "bench-officer")))
            now = datetime.fromtimestamp(world.now_us / 1e6, UTC)
            month = bi.months(now)[1][0].split("/")
            from api.routes.incidents import incident_query

            pages = {"default page": IncidentQuery()}
            gm = incident_query(
                ["LJ-GQ-05"], None, None, None, None, None, "/".join(month), None, None, False
            )
            gm.limit = 100
            pages["grid-month page"] = gm
            result = {"incidents": n, "load_s": load_s}
            for label, q in pages.items():
                with factory() as s:
                    with Capture(engine) as cap:
                        rows, _ = query_incidents(s, officer, q, settings.incidents)
                main = [st for st in cap.statements if "FROM incidents" in st[0]]
                times = []
                for _ in range(args.incident_runs + 5):
                    with factory() as s:
                        started = time.perf_counter()
                        query_incidents(s, officer, q, settings.incidents)
                        times.append(time.perf_counter() - started)
                times = times[5:]
                bare = bare_times(engine, main, repeats=args.incident_runs + 5)[5:]
                result[label] = (ms(times), ms(bare), len(rows))
                print(f"  {label:<16} ({len(rows)} rows): query_incidents p50 {ms(times)[0]:.2f} p95 {ms(times)[1]:.2f} ms; "
                      f"its SQL bare p50 {ms(bare)[0]:.2f} p95 {ms(bare)[1]:.2f} ms")  # fmt: skip
            steps.append(result)
            engine.dispose()
    finally:
        engine.dispose()
        if not args.keep:
            drop_database(INCIDENT_DB)
    return steps


# --- fits and the extrapolation ------------------------------------------------------------------------


def fit(xs, ys, at: float) -> tuple[float, float]:
    """(log-log slope, value at ``at``) from a least-squares line through log x, log y."""
    lx, ly = np.log(np.asarray(xs, float)), np.log(np.maximum(np.asarray(ys, float), 1e-9))
    if len(xs) < 2:
        return float("nan"), float(ys[-1])
    slope, icept = np.polyfit(lx, ly, 1)
    return float(slope), float(math.exp(icept + slope * math.log(at)))


def report(patrols: list[dict], incidents: list[dict]) -> None:
    print("\n== summary")
    if patrols:
        print(
            "  fixes        patrols  ingest 2w/s  ingest 4w/s  iterparse2/s   COPY/s  DB MB  MB/M fixes  "
            "effort p50/p95 (cov)  effort p95 (no cov)  near p50/p95  near SQL p95"
        )
        for s in patrols:
            print(f"  {s['fixes']:>11,} {s['patrols']:>7,} {s['ingest'][0]['rate']:>12,.0f} {s['ingest'][1]['rate']:>12,.0f} "
                  f"{s['iterparse2']:>13,.0f} {s['copy']:>8,.0f} {s['size']['database'] / 1e6:>6,.0f} "
                  f"{s['size']['database'] / 1e6 / (s['fixes'] / 1e6):>11,.1f}  {s['effort']['coverage'][0]:>8,.0f} / "
                  f"{s['effort']['coverage'][1]:>6,.0f}  {s['effort']['plain'][1]:>19,.0f}  {s['near']['api'][0]:>5.1f} / "
                  f"{s['near']['api'][1]:>5.1f}  {s['near']['bare'][1]:>12.1f}")  # fmt: skip
        xs = [s["fixes"] for s in patrols]
        target_x = 100_000_000
        print(f"  extrapolated to {target_x:,} fixes (log-log least squares over {len(xs)} sizes):")
        for label, ys, target, higher in (
            (
                "ingest, 2 uploaders (fixes/s)",
                [s["ingest"][0]["rate"] for s in patrols],
                TARGETS["ingest"],
                True,
            ),
            (
                "ingest, 4 uploaders (fixes/s)",
                [s["ingest"][1]["rate"] for s in patrols],
                TARGETS["ingest"],
                True,
            ),
            ("database size (MB)", [s["size"]["database"] / 1e6 for s in patrols], None, False),
            (
                "effort p95, coverage (ms)",
                [s["effort"]["coverage"][1] for s in patrols],
                TARGETS["effort"],
                False,
            ),
            (
                "effort p95, no coverage (ms)",
                [s["effort"]["plain"][1] for s in patrols],
                TARGETS["effort"],
                False,
            ),
            ("effort visits SQL bare p95 (ms)", [s["effort"]["bare"][1] for s in patrols], None, False),
            ("near p95 (ms)", [s["near"]["api"][1] for s in patrols], TARGETS["near"], False),
            ("near candidate SQL bare p95 (ms)", [s["near"]["bare"][1] for s in patrols], None, False),
        ):
            slope, value = fit(xs, ys, target_x)
            verdict = ""
            if target is not None:
                ok = value >= target if higher else value <= target
                verdict = f"  target {'>=' if higher else '<='} {target:,.0f}: {'met' if ok else 'NOT met'}"
            print(f"    {label:<34} slope {slope:+.2f}  -> {value:>12,.1f}{verdict}")
    if incidents:
        print("  incidents     default page p50/p95 (SQL p95)   grid-month page p50/p95 (SQL p95)   load s")
        for s in incidents:
            d, g = s["default page"], s["grid-month page"]
            print(f"  {s['incidents']:>11,}   {d[0][0]:6.2f} / {d[0][1]:6.2f} ({d[1][1]:6.2f})       "
                  f"{g[0][0]:6.2f} / {g[0][1]:6.2f} ({g[1][1]:6.2f})          {s['load_s']:6.0f}")  # fmt: skip
        xs = [s["incidents"] for s in incidents]
        print(f"  extrapolated to 10,000,000 incidents (log-log over {len(xs)} sizes):")
        for label in ("default page", "grid-month page"):
            for i, kind in ((0, "query_incidents"), (1, "SQL bare")):
                slope, value = fit(xs, [s[label][i][1] for s in incidents], 10_000_000)
                verdict = f"  target <= 20: {'met' if value <= 20 else 'NOT met'}" if i == 0 else ""
                print(f"    {label + ' p95, ' + kind:<36} slope {slope:+.2f}  -> {value:8.2f} ms{verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ints = lambda s: [int(float(v)) for v in s.split(",") if v]  # noqa: E731
    parser.add_argument("--sizes", type=ints, default=[1_000_000, 3_000_000, 10_000_000], help="fixes")
    parser.add_argument("--incident-sizes", type=ints, default=[1_000_000, 3_000_000, 10_000_000])
    parser.add_argument("--effort-runs", type=int, default=10)
    parser.add_argument("--near-runs", type=int, default=50)
    parser.add_argument("--incident-runs", type=int, default=100)
    parser.add_argument("--skip-patrols", action="store_true")
    parser.add_argument("--skip-incidents", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases")
    args = parser.parse_args()
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    print(f"machine: {cpu}, {os.cpu_count()} vCPU, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB "
          f"(shared with other jobs; load average at start {os.getloadavg()[0]:.1f}); Python {platform.python_version()}")  # fmt: skip
    folder = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        patrols = [] if args.skip_patrols else run_patrols(args, folder)
        incidents = [] if args.skip_incidents else run_incidents(args, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report(patrols, incidents)


if __name__ == "__main__":
    main()
