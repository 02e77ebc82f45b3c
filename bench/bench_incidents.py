"""Incident queries over HTTP at 1,000,000 incidents, beside the bare SQL of the same queries, in one run.

    .venv/bin/python bench/bench_incidents.py [--rows 1000000] [--backend spatialite|postgis|both]
                                              [--requests 240] [--warmup 30] [--no-candidates] [--keep]

For each backend (a SpatiaLite file in a temporary directory; a throw-away PostGIS database
``mangrove_bench_<random>`` on postgres@127.0.0.1:5432, dropped at the end): migrate, load the
reference geodata, create an enforcement officer of GD-LJ (the realistic caller), an admin and the
patrol members and officers who report, then bulk-load ``--rows`` incidents in chunks (SQLite:
DB-API executemany with ``ST_GeomFromWKB(?, 4326)``; PostgreSQL: COPY with EWKB hex), with the
secondary indexes, the spatial index and the foreign keys dropped during the load and made again
afterwards from their own saved definitions (the schema is checked to be exactly what the migration
made), then ANALYZE. Incidents: 94 % drawn inside one of the 32 reference grids (weighted, both
sides), the rest anywhere around them and placed as the service places them (inside / nearest
within 300 m / none, side from the border); observed over three years, ids in time order; statuses
follow age (old ones mostly closed), due times and response times consistent with them.

The real app (``api.app.create_app``) then runs under uvicorn in a background thread, and a
keep-alive ``httpx.Client`` with a bearer token from ``POST /api/v1/auth/token`` measures, after a
warm-up, ``--requests`` requests each of:

- ``GET /api/v1/incidents?grid=CODE&datetime=YYYY-MM-01/YYYY-MM-DD&limit=100`` over 8 GD-LJ grids
  × 6 months (the first page of one grid and one month);
- ``GET /api/v1/incidents/counts`` (all grids, no filter) and ``…/counts?datetime=<a month>``;

as the officer (the targets) and as the admin (for comparison). Beside each, the SQL statement the
app itself emits for that request (captured from ``query_incidents`` / ``counts_by_grid`` with an
engine event, so it includes the officer's visibility filter) is run with the same parameters on a
raw DB-API connection and fetched whole. Then the API path is taken apart in process (token check,
domain call, GeoJSON + JSON rendering) to show where the time goes. Last, a candidate index
(``ix_incidents_grid_observed`` widened by the visibility columns) replaces the original, the same
requests run again (on PostGIS also with ``random_page_cost = 1.1``), and the original is restored
(``--no-candidates`` skips this).
Targets (issue 4): first page p95 ≤ 20 ms; counts for all grids ≤ 200 ms (p95); API ≤ 3× bare SQL.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import shapely
import sqlalchemy
from sqlalchemy import event, insert, select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from utils.browser import serving  # noqa: E402  (uvicorn in a thread, as the browser tests use it)

# Imported before any SpatiaLite connection exists: importing it (pyogrio's bundled GDAL) after
# mod_spatialite is loaded corrupts the heap at interpreter exit ("double free or corruption").
from geodata import reference

N_GRIDS_LISTED = 8
LIST_GRIDS = ("LJ-GQ-01", "LJ-GQ-05", "LJ-YZ-02", "LJ-YZ-06", "LJ-CB-03", "LJ-AP-02", "LJ-LD-01", "LJ-LD-03")
PG_ADMIN_URL = os.environ.get(
    "MANGROVE_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PASSWORD = "bench-password-1"
US = 1_000_000  # microseconds per second
HOUR, DAY = 3600 * US, 86400 * US
CATEGORIES = ("cutting", "aquaculture", "fishing_digging", "pollution", "rubbish", "cordgrass", "pests",
              "fire", "bird_disturbance", "facilities", "other")  # fmt: skip
CATEGORY_P = (0.16, 0.14, 0.2, 0.08, 0.18, 0.09, 0.05, 0.01, 0.03, 0.04, 0.02)
SEVERITIES, SEVERITY_P = ("low", "medium", "high", "critical"), (0.35, 0.45, 0.17, 0.03)
LEVELS, LEVEL_P, LEVEL_DAYS = ("village", "town", "county"), (0.6, 0.3, 0.1), (2, 3, 4)
DESCRIPTIONS = (
    "", "", "发现有人在林区砍伐红树，已制止并拍照。", "新围塘约 2 亩，疑似未经审批的养殖。",
    "退潮时多人在光滩挖沙虫，数量约 10 人。", "排污口有异味，水体发黑。", "海漂垃圾堆积在林缘，约 50 米。",
    "互花米草新斑块，面积约 30 平方米。", "团水虱危害，部分白骨壤枯死。", "宣传牌被风刮倒，需要更换。",
    "Fence damaged along the dike, about 20 m.", "Boat with nets inside the core zone at dawn.",
    "Plastic and foam on the flats after the storm; needs a clean-up team.",
    "Smoke seen behind the stand, no flames by the time we arrived.",
    "Birdwatchers with drones flushing the egret colony; asked them to leave.",
    "巡护中发现新建鸭棚，靠近幼林，已通知村委。" * 2, "核实群众举报：夜间电鱼。", "其他情况，详见照片。",
)  # fmt: skip


# --- small helpers ---------------------------------------------------------------------------------


def percentiles(times_s: list[float]) -> tuple[float, float, float]:
    p50, p95, p99 = np.percentile(np.asarray(times_s) * 1000, [50, 95, 99])
    return float(p50), float(p95), float(p99)


def fmt_p(times_s: list[float]) -> str:
    p50, p95, p99 = percentiles(times_s)
    return f"p50 {p50:8.2f}  p95 {p95:8.2f}  p99 {p99:8.2f} ms"


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "cpu"


def mem_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            return int(line.split()[1]) / 1024 / 1024
    return float("nan")


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return float("nan")


def months(now: datetime) -> list[tuple[str, str]]:
    """Six whole months spread over the three years, as (datetime interval, month) query values."""
    picks = []
    for back in (1, 8, 12, 17, 23, 30):
        y, m = now.year, now.month - back
        while m <= 0:
            y, m = y - 1, m + 12
        last = (date(y + m // 12, m % 12 + 1, 1) - timedelta(days=1)).day
        picks.append((f"{y:04d}-{m:02d}-01/{y:04d}-{m:02d}-{last:02d}", f"{y:04d}-{m:02d}"))
    return picks


# --- the backends ----------------------------------------------------------------------------------


@dataclass
class Backend:
    name: str
    settings: object
    engine: sqlalchemy.Engine
    where: str
    folder: Path
    drop: object = None
    versions: str = ""


def open_backend(name: str, keep: bool) -> Backend:
    from patrol.db import create_db_engine
    from patrol.settings import AuthSettings, Settings, StorageSettings

    folder = Path(tempfile.mkdtemp(prefix=f"bench-incidents-{name}-"))
    settings = Settings()
    settings.auth = AuthSettings(secret_key="bench-secret-" + "x" * 40)
    if name == "spatialite":
        url = f"sqlite:///{folder}/bench.sqlite"
        settings.storage = StorageSettings(data_dir=folder, database_url=url)
        engine = create_db_engine(url, settings=settings)
        return Backend(name, settings, engine, f"SpatiaLite file {folder}/bench.sqlite", folder)
    db_name = f"mangrove_bench_{uuid.uuid4().hex[:10]}"
    admin = sqlalchemy.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{db_name}"'))
    url = admin.url.set(database=db_name).render_as_string(hide_password=False)
    settings.storage = StorageSettings(data_dir=folder, database_url=url)
    engine = create_db_engine(url, settings=settings)

    def drop():
        if keep:
            return
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        admin.dispose()

    return Backend(name, settings, engine, f"PostGIS database {db_name}", folder, drop)


def backend_versions(backend: Backend) -> str:
    with backend.engine.connect() as conn:
        if backend.name == "spatialite":
            sqlite_v, spatialite_v = conn.execute(text("SELECT sqlite_version(), spatialite_version()")).one()
            return f"SQLite {sqlite_v}, SpatiaLite {spatialite_v}"
        pg = conn.execute(text("SHOW server_version")).scalar()
        postgis = conn.execute(text("SELECT postgis_lib_version()")).scalar()
        shared = conn.execute(text("SHOW shared_buffers")).scalar()
        workers = conn.execute(text("SHOW max_parallel_workers_per_gather")).scalar()
        return f"PostgreSQL {pg.split()[0]}, PostGIS {postgis}, shared_buffers {shared}, parallel workers/gather {workers}"


# --- reference data, users, generated incidents -------------------------------------------------


@dataclass
class World:
    officer_id: int
    admin_id: int
    reporters: dict[str, np.ndarray]  # side -> user ids
    grid_ids: np.ndarray  # in reference order
    grid_codes: np.ndarray
    grid_sides: np.ndarray
    grid_towns: np.ndarray
    pools: list[np.ndarray]  # per grid: (k, 2) lon/lat inside it
    weights: np.ndarray
    bbox: tuple[float, float, float, float]
    metric_index: object
    metric_ids: np.ndarray
    border: object
    border_metric: object
    joint_case_ids: np.ndarray
    now_us: int
    start_us: int


def setup_world(backend: Backend, seed: int) -> World:
    from patrol.accounts import RoleGrant, create_user
    from patrol.db import make_session_factory
    from patrol.grids import metric_grid_index
    from patrol.incidents import _border_metric
    from patrol.models import Grid, JointCase, Role
    from patrol.reference import load_reference

    factory = make_session_factory(backend.engine)
    rng = np.random.default_rng(seed)
    with factory() as session:
        load_reference(session)
        officer = create_user(session, username="bench-officer", password=PASSWORD, side="GD-LJ",
                              grants=[RoleGrant(Role.ENFORCEMENT_OFFICER)])  # fmt: skip
        admin = create_user(session, username="bench-admin", password=PASSWORD, side="GD-LJ",
                            grants=[RoleGrant(Role.ADMIN)])  # fmt: skip
        reporters: dict[str, list[int]] = {"GD-LJ": [officer.id], "GX-HP": []}
        for side in ("GD-LJ", "GX-HP"):
            user = create_user(session, username=f"officer-{side.lower()}", password=PASSWORD, side=side,
                               grants=[RoleGrant(Role.ENFORCEMENT_OFFICER)])  # fmt: skip
            reporters[side].append(user.id)
        for team in reference.load_places()["teams"]:
            for i in range(3):
                user = create_user(
                    session, username=f"{team['code'].lower()}-{i}", password=PASSWORD, side=team["side"],
                    grants=[RoleGrant(Role.PATROL_MEMBER, team=team["code"])],
                )  # fmt: skip
                reporters[team["side"]].append(user.id)
        session.commit()
        opened = datetime.now(UTC) - timedelta(days=400)
        session.execute(
            insert(JointCase),
            [
                {"title": f"joint case {i}", "status": "open" if i % 3 else "closed", "opened_by": officer.id,
                 "opened_at": opened + timedelta(days=10 * i), "version": 1}
                for i in range(30)
            ],
        )  # fmt: skip
        session.commit()
        joint_case_ids = np.array(session.scalars(select(JointCase.id)).all())
        rows = session.execute(select(Grid.id, Grid.code, Grid.side, Grid.town).order_by(Grid.code)).all()
        metric_index, metric_ids = metric_grid_index(session)
        border, border_metric = _border_metric(session)
        officer_id, admin_id = officer.id, admin.id

    grids = reference.load_grids().set_index("code").loc[[r.code for r in rows]]
    pools = []
    for polygon in grids.geometry.values:  # random points inside each grid, drawn from by index
        minx, miny, maxx, maxy = polygon.bounds
        shapely.prepare(polygon)
        found = []
        while sum(len(f) for f in found) < 20_000:
            x, y = rng.uniform(minx, maxx, 60_000), rng.uniform(miny, maxy, 60_000)
            keep = shapely.contains_xy(polygon, x, y)
            found.append(np.column_stack([x[keep], y[keep]]))
        pools.append(np.concatenate(found)[:20_000])
    weights = rng.gamma(2.0, 1.0, len(rows))  # some grids far busier than others
    minx, miny, maxx, maxy = grids.total_bounds
    now = datetime.now(UTC).replace(microsecond=0)
    now_us = int(now.timestamp()) * US
    return World(
        officer_id=officer_id,
        admin_id=admin_id,
        reporters={k: np.array(v) for k, v in reporters.items()},
        grid_ids=np.array([r.id for r in rows]),
        grid_codes=np.array([r.code for r in rows], dtype=object),
        grid_sides=np.array([r.side for r in rows], dtype=object),
        grid_towns=np.array([r.town for r in rows], dtype=object),
        pools=pools,
        weights=weights / weights.sum(),
        bbox=(minx - 0.02, miny - 0.02, maxx + 0.02, maxy + 0.02),
        metric_index=metric_index,
        metric_ids=metric_ids,
        border=border,
        border_metric=border_metric,
        joint_case_ids=joint_case_ids,
        now_us=now_us,
        start_us=now_us - 3 * 365 * DAY,
    )


def incident_chunks(world: World, rows: int, chunk: int, seed: int):
    """Dicts of column arrays, ``chunk`` rows at a time, ids (1…rows) in order of observation."""
    from geodata.assign import NO_GRID
    from geodata.border import EAST, side_of_border
    from patrol.grids import project

    n_chunks = -(-rows // chunk)
    span = world.now_us - HOUR - world.start_us
    for c in range(n_chunks):
        rng = np.random.default_rng([seed, c])
        n = min(chunk, rows - c * chunk)
        first_id = c * chunk + 1
        # when: uniform days in this chunk's slice of the three years, daytime hours (China time)
        lo = world.start_us + span * c // n_chunks
        hi = world.start_us + span * (c + 1) // n_chunks
        t = rng.integers(lo, hi, n)
        local_day = (t + 8 * HOUR) // DAY * DAY - 8 * HOUR
        hour = np.clip(rng.normal(11.5, 3.2, n), 5.0, 21.5)
        observed = np.clip(local_day + (hour * HOUR).astype(np.int64), lo, hi - 1)
        observed.sort()
        reported = np.minimum(
            observed + US * (60 + rng.exponential(40 * 60, n)).astype(np.int64), world.now_us
        )

        # where: most inside a grid, the rest around the grids, placed as the service places them
        lon, lat = np.empty(n), np.empty(n)
        grid_index = np.full(n, NO_GRID, dtype=np.int64)
        inside = rng.random(n) < 0.94
        chosen = rng.choice(len(world.pools), size=int(inside.sum()), p=world.weights)
        picks = np.empty((len(chosen), 2))
        for g in np.unique(chosen):
            at = chosen == g
            picks[at] = world.pools[g][rng.integers(0, len(world.pools[g]), int(at.sum()))]
        lon[inside], lat[inside] = picks[:, 0], picks[:, 1]
        grid_index[inside] = chosen
        out = ~inside
        minx, miny, maxx, maxy = world.bbox
        lon[out], lat[out] = rng.uniform(minx, maxx, int(out.sum())), rng.uniform(miny, maxy, int(out.sum()))
        lon, lat = np.round(lon, 6), np.round(lat, 6)
        x, y = project(lon, lat)
        match = np.where(inside, "inside", "none").astype(object)
        distance = np.where(inside, 0.0, np.nan)
        if out.any():
            ids_by_code = dict(zip(world.grid_ids, range(len(world.grid_ids))))
            found = world.metric_index.assign_index(x[out], y[out])
            near, near_d = world.metric_index.nearest(x[out], y[out], 300.0)
            where_out = np.flatnonzero(out)
            hit = found != NO_GRID
            grid_index[where_out[hit]] = [ids_by_code[i] for i in world.metric_ids[found[hit]]]
            match[where_out[hit]], distance[where_out[hit]] = "inside", 0.0
            close = ~hit & (near != NO_GRID)
            grid_index[where_out[close]] = [ids_by_code[i] for i in world.metric_ids[near[close]]]
            match[where_out[close]], distance[where_out[close]] = "near", np.round(near_d[close], 1)
        has_grid = grid_index != NO_GRID
        grid_id = np.where(has_grid, world.grid_ids[np.maximum(grid_index, 0)], -1)
        east = side_of_border(lon, lat, world.border) == EAST
        side = np.where(has_grid, world.grid_sides[np.maximum(grid_index, 0)],
                        np.where(east, "GD-LJ", "GX-HP")).astype(object)  # fmt: skip
        town = np.where(has_grid, world.grid_towns[np.maximum(grid_index, 0)], None).astype(object)
        border_m = np.round(shapely.distance(world.border_metric, shapely.points(x, y)), 1)

        # what and who
        category = np.asarray(CATEGORIES, dtype=object)[rng.choice(len(CATEGORIES), n, p=CATEGORY_P)]
        severity = np.asarray(SEVERITIES, dtype=object)[rng.choice(4, n, p=SEVERITY_P)]
        level_i = rng.choice(3, n, p=LEVEL_P)
        level = np.asarray(LEVELS, dtype=object)[level_i]
        description = np.asarray(DESCRIPTIONS, dtype=object)[rng.integers(0, len(DESCRIPTIONS), n)]
        reporter = np.empty(n, dtype=np.int64)
        for s in ("GD-LJ", "GX-HP"):
            at = side == s
            reporter[at] = world.reporters[s][rng.integers(0, len(world.reporters[s]), int(at.sum()))]

        # how it went: old incidents mostly closed, recent ones still open; times consistent
        accept_due = reported + 4 * HOUR
        resolve_due = reported + np.asarray(LEVEL_DAYS)[level_i] * DAY
        age_days = (world.now_us - reported) / DAY
        u = rng.random(n)
        # target status by age; then times; then anything that would lie in the future is not yet done
        old = age_days > 10
        status = np.select(
            [u < 0.70, u < 0.78, u < 0.85, u < 0.90, u < 0.94, u < 0.97],
            ["closed", "resolved", "rejected", "duplicate", "in_progress", "accepted"], "reported",
        ).astype(object)  # fmt: skip
        recent = np.select(
            [u < 0.25, u < 0.40, u < 0.47, u < 0.50, u < 0.70, u < 0.85],
            ["closed", "resolved", "rejected", "duplicate", "in_progress", "accepted"], "reported",
        ).astype(object)  # fmt: skip
        status = np.where(old, status, recent)
        responded = reported + (US * rng.uniform(5 * 60, 6 * 3600, n)).astype(np.int64)  # some after the 4 h
        resolved = responded + (US * rng.uniform(2 * 3600, 5 * 86400, n)).astype(np.int64)
        closed = resolved + (US * rng.uniform(3600, 2 * 86400, n)).astype(np.int64)
        status = np.where((status == "closed") & (closed > world.now_us), "resolved", status)
        status = np.where((status == "resolved") & (resolved > world.now_us), "in_progress", status)
        late = responded > world.now_us
        status = np.where(late & (status != "reported"), "reported", status)
        dup_of = first_id + np.arange(n) - rng.integers(1, 500, n)
        status = np.where((status == "duplicate") & (dup_of < 1), "rejected", status)
        answered = status != "reported"
        accepted = np.isin(status, ["accepted", "in_progress", "resolved", "closed"])
        done = np.isin(status, ["resolved", "closed"])
        is_closed = status == "closed"
        updated = np.where(answered, responded, reported)
        updated = np.where(done, resolved, updated)
        updated = np.where(is_closed, closed, updated)

        near_border = border_m < 3000
        other = np.where(side == "GD-LJ", "GX-HP", "GD-LJ").astype(object)
        referred = np.where(near_border & (rng.random(n) < 0.05), other, None).astype(object)
        joint = np.where(near_border & (rng.random(n) < 0.02),
                         world.joint_case_ids[rng.integers(0, len(world.joint_case_ids), n)], -1)  # fmt: skip

        yield {
            "id": np.arange(first_id, first_id + n),
            "category": category, "severity": severity, "level": level, "description": description,
            "observed_at": observed, "reported_at": reported, "reporter_id": reporter, "patrol_id": None,
            "lon": lon, "lat": lat, "grid_id": (grid_id, has_grid), "grid_match": match,
            "grid_distance_m": (distance, ~np.isnan(distance)), "side": side, "town": town,
            "border_distance_m": border_m, "status": status,
            "duplicate_of": (dup_of, status == "duplicate"), "referred_to": referred,
            "joint_case_id": (joint, joint >= 0), "accept_due": accept_due, "resolve_due": resolve_due,
            "responded_at": (responded, answered), "accepted_at": (responded, accepted),
            "resolved_at": (resolved, done), "closed_at": (closed, is_closed), "updated_at": updated,
            "version": np.ones(n, dtype=np.int64),
        }  # fmt: skip


COLUMNS = (
    "id", "category", "severity", "level", "description", "observed_at", "reported_at", "reporter_id",
    "patrol_id", "lon", "lat", "geom", "grid_id", "grid_match", "grid_distance_m", "side", "town",
    "border_distance_m", "status", "duplicate_of", "referred_to", "joint_case_id", "accept_due",
    "resolve_due", "responded_at", "accepted_at", "resolved_at", "closed_at", "updated_at", "version",
)  # fmt: skip
TIMES = {"observed_at", "reported_at", "accept_due", "resolve_due", "responded_at", "accepted_at",
         "resolved_at", "closed_at", "updated_at"}  # fmt: skip


def column_values(name: str, value, n: int, *, pg: bool) -> list:
    """Python values for one column as the DB-API (SQLite) or COPY text (PostgreSQL) wants them."""
    mask = None
    if isinstance(value, tuple):
        value, mask = value
    if value is None:
        return [None] * n
    if name in TIMES:
        stamps = np.datetime_as_string(np.asarray(value).astype("datetime64[us]"), unit="us")
        # SQLAlchemy stores SQLite DateTime as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC, naive)
        out = [s.replace("T", " ") + "+00" if pg else s.replace("T", " ") for s in stamps.tolist()]
    else:
        out = value.tolist()
    if mask is not None:
        out = [v if m else None for v, m in zip(out, mask.tolist())]
    return out


# --- bulk load ----------------------------------------------------------------------------------


def load_spatialite(backend: Backend, chunks, stats: dict) -> None:
    """executemany in chunks with the b-tree indexes, the R*Tree and the FK checks off; then
    rebuild both indexes from their saved definitions, check the foreign keys, ANALYZE."""
    raw = backend.engine.raw_connection()
    con = raw.driver_connection
    con.execute("PRAGMA foreign_keys=OFF")  # checked afterwards with foreign_key_check
    con.execute("PRAGMA cache_size=-262144")  # 256 MiB while loading and indexing (this connection only)
    indexes = con.execute(
        "SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name='incidents' AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in indexes:
        con.execute(f'DROP INDEX "{name}"')
    con.execute("SELECT DisableSpatialIndex('incidents', 'geom')")
    con.execute('DROP TABLE "idx_incidents_geom"')
    con.commit()
    placeholders = ", ".join("ST_GeomFromWKB(?, 4326)" if c == "geom" else "?" for c in COLUMNS)
    sql = f"INSERT INTO incidents ({', '.join(COLUMNS)}) VALUES ({placeholders})"
    generate = insert_s = 0.0
    start = time.perf_counter()
    for data in chunks:
        n = len(data["id"])
        cols = []
        for c in COLUMNS:
            if c == "geom":
                cols.append(shapely.to_wkb(shapely.points(data["lon"], data["lat"])).tolist())
            else:
                cols.append(column_values(c, data[c], n, pg=False))
        mid = time.perf_counter()
        con.executemany(sql, zip(*cols))
        con.commit()
        end = time.perf_counter()
        generate += mid - start
        insert_s += end - mid
        start = end
    stats["generate"], stats["insert"] = generate, insert_s
    start = time.perf_counter()
    for _, ddl in indexes:
        con.execute(ddl)
    con.commit()
    stats["b-tree indexes"] = time.perf_counter() - start
    start = time.perf_counter()
    con.execute("SELECT CreateSpatialIndex('incidents', 'geom')")  # builds the R*Tree from the rows
    con.commit()
    stats["spatial index"] = time.perf_counter() - start
    start = time.perf_counter()
    bad = con.execute("PRAGMA foreign_key_check(incidents)").fetchmany(5)
    stats["FK check"] = time.perf_counter() - start
    assert not bad, f"foreign keys broken: {bad}"
    start = time.perf_counter()
    con.execute("ANALYZE")
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    stats["ANALYZE"] = time.perf_counter() - start
    raw.invalidate()  # this connection's PRAGMAs differ from the service's: do not pool it
    backend.engine.dispose()


def load_postgis(backend: Backend, chunks, stats: dict) -> None:
    """COPY in chunks with the secondary indexes (GiST included) and foreign keys dropped; then
    make them again from their saved definitions (the keys validate every row), VACUUM ANALYZE."""
    raw = backend.engine.raw_connection()
    con = raw.driver_connection
    cur = con.cursor()
    cur.execute("SET maintenance_work_mem = '1GB'")
    cur.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = 'incidents'::regclass AND NOT x.indisprimary"
    )
    indexes = cur.fetchall()
    cur.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'incidents'::regclass AND contype = 'f'"
    )
    keys = cur.fetchall()
    for name, _ in keys:
        cur.execute(f'ALTER TABLE incidents DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        cur.execute(f'DROP INDEX "{name}"')
    con.commit()
    generate = insert_s = 0.0
    start = time.perf_counter()
    for data in chunks:
        n = len(data["id"])
        cols = []
        for c in COLUMNS:
            if c == "geom":
                points = shapely.set_srid(shapely.points(data["lon"], data["lat"]), 4326)
                cols.append(shapely.to_wkb(points, hex=True, include_srid=True).tolist())
            elif c in ("lon", "lat", "border_distance_m"):
                cols.append([repr(v) for v in data[c].tolist()])
            else:
                cols.append(column_values(c, data[c], n, pg=True))
        buffer = io.StringIO()
        for row in zip(*cols):
            buffer.write("\t".join("\\N" if v is None else str(v) for v in row))
            buffer.write("\n")
        mid = time.perf_counter()
        with cur.copy(f"COPY incidents ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            copy.write(buffer.getvalue())
        con.commit()
        end = time.perf_counter()
        generate += mid - start
        insert_s += end - mid
        start = end
    stats["generate"], stats["insert"] = generate, insert_s
    cur.execute("SELECT setval(pg_get_serial_sequence('incidents', 'id'), (SELECT max(id) FROM incidents))")
    start = time.perf_counter()
    for _, ddl in indexes:
        if "gist" not in ddl:
            cur.execute(ddl)
    con.commit()
    stats["b-tree indexes"] = time.perf_counter() - start
    start = time.perf_counter()
    for _, ddl in indexes:
        if "gist" in ddl:
            cur.execute(ddl)
    con.commit()
    stats["spatial index"] = time.perf_counter() - start
    start = time.perf_counter()
    for name, ddl in keys:
        cur.execute(f'ALTER TABLE incidents ADD CONSTRAINT "{name}" {ddl}')
    con.commit()
    stats["FK check"] = time.perf_counter() - start
    start = time.perf_counter()
    con.autocommit = True
    cur.execute("VACUUM ANALYZE")  # what autovacuum would have done by the time anyone queries
    stats["ANALYZE"] = time.perf_counter() - start
    raw.invalidate()
    backend.engine.dispose()


def schema_snapshot(backend: Backend) -> list:
    with backend.engine.connect() as conn:
        if backend.name == "spatialite":
            rows = conn.execute(text(
                "SELECT type, name, tbl_name, sql FROM sqlite_master "
                "WHERE tbl_name = 'incidents' OR name LIKE 'idx_incidents_geom%' ORDER BY type, name"
            )).all()  # fmt: skip
            rows += conn.execute(text(
                "SELECT f_table_name, f_geometry_column, geometry_type, coord_dimension, srid, spatial_index_enabled "
                "FROM geometry_columns WHERE f_table_name = 'incidents'"
            )).all()  # fmt: skip
        else:
            rows = conn.execute(text(
                "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'incidents'::regclass ORDER BY 1"
            )).all()  # fmt: skip
            rows += conn.execute(text(
                "SELECT conname, pg_get_constraintdef(oid), convalidated FROM pg_constraint "
                "WHERE conrelid = 'incidents'::regclass ORDER BY conname"
            )).all()  # fmt: skip
        return [tuple(r) for r in rows]


# --- the server and the client ----------------------------------------------------------------------


def timed_get(client, url: str, params: dict):
    start = time.perf_counter()
    response = client.get(url, params=params)
    elapsed = time.perf_counter() - start
    assert response.status_code == 200, (url, params, response.status_code, response.text[:300])
    return elapsed, response


# --- capturing the SQL the app emits, and running it bare ---------------------------------------


class Capture:
    def __init__(self, engine):
        self.engine = engine
        self.statements: list[tuple[str, object]] = []

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._hook)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._hook)

    def _hook(self, conn, cursor, statement, parameters, context, executemany):
        self.statements.append((statement, parameters))


def bare_runner(backend: Backend):
    """(run(statement, params) -> rows, close): a raw DB-API connection of the same backend."""
    raw = backend.engine.raw_connection()
    con = raw.driver_connection

    def run(statement, params):
        cur = con.cursor()
        cur.execute(statement, params)
        rows = cur.fetchall()
        cur.close()
        return rows

    def end():
        con.rollback()  # as the pool does when a session's connection goes back

    return run, end, raw.close


# --- the measurements -------------------------------------------------------------------------------


@dataclass
class Figure:
    label: str
    api: list[float] = field(default_factory=list)
    bare: list[float] = field(default_factory=list)

    def line(self) -> str:
        api, bare = percentiles(self.api), percentiles(self.bare)
        return (f"  {self.label:<24} API {fmt_p(self.api)}\n  {'':<24} SQL {fmt_p(self.bare)}"
                f"   API/SQL: p50 {api[0] / bare[0]:5.2f}x, p95 {api[1] / bare[1]:5.2f}x")  # fmt: skip


URLS = {"list": "/api/v1/incidents", "counts": "/api/v1/incidents/counts",
        "counts-month": "/api/v1/incidents/counts"}  # fmt: skip


def iso_fast(value):
    """Scratch copy of ``patrol.incidents._iso`` that formats a UTC value without two datetime
    copies: naive (SQLite) values are UTC already."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat() + "Z"


def incident_row_fast(r, now):
    """Scratch copy of ``patrol.incidents.incident_row`` using ``iso_fast`` (same output)."""
    from patrol.incidents import overdue_state

    return {
        "id": r.id, "category": r.category, "severity": r.severity, "level": r.level, "status": r.status,
        "overdue": overdue_state(r, now), "description": r.description,
        "observed_at": iso_fast(r.observed_at), "reported_at": iso_fast(r.reported_at),
        "reporter": r.reporter, "lon": r.lon, "lat": r.lat, "grid": r.grid, "grid_match": r.grid_match,
        "grid_distance_m": r.grid_distance_m, "side": r.side, "town": r.town,
        "border_distance_m": r.border_distance_m, "referred_to": r.referred_to,
        "joint_case_id": r.joint_case_id, "duplicate_of": r.duplicate_of, "patrol_id": r.patrol_id,
        "accept_due": iso_fast(r.accept_due), "resolve_due": iso_fast(r.resolve_due),
        "responded_at": iso_fast(r.responded_at), "resolved_at": iso_fast(r.resolved_at),
        "closed_at": iso_fast(r.closed_at), "version": r.version,
    }  # fmt: skip


class Runner:
    """The app under uvicorn, a keep-alive client with tokens, a raw DB-API connection, and the
    statements the domain functions emit for each request."""

    def __init__(self, backend: Backend, world: World, args, client, factory):
        from api.routes.incidents import incident_query
        from patrol.accounts import principal_for_secret

        self.backend, self.world, self.args, self.client, self.factory = backend, world, args, client, factory
        self.incident_query = incident_query
        self.rng = np.random.default_rng(args.seed)
        self.months = months(datetime.fromtimestamp(world.now_us / US, UTC))
        self.tokens, self.principals = {}, {}
        for who in ("officer", "admin"):
            r = client.post("/api/v1/auth/token", data={"username": f"bench-{who}", "password": PASSWORD})
            assert r.status_code == 200, r.text
            self.tokens[who] = r.json()["access_token"]
            with factory() as s:
                self.principals[who] = principal_for_secret(
                    s, self.tokens[who], kind="token", channel="api", address=None
                )
        self.run, self.end, self.close = bare_runner(backend)
        self._captured: dict = {}

    def reconnect(self) -> None:
        """A new raw connection (after the schema or a database setting changed)."""
        self.close()
        self.run, self.end, self.close = bare_runner(self.backend)

    def items(self, kind: str):
        """(request params, (grid, datetime) for incident_query) of each distinct request."""
        if kind == "list":
            return [
                ({"grid": g, "datetime": m, "limit": 100}, ([g], m))
                for g in LIST_GRIDS
                for m, _ in self.months
            ]
        if kind == "counts":
            return [({}, (None, None))]
        return [({"datetime": mm}, (None, mm)) for _, mm in self.months]

    def order(self, kind: str, n: int):
        return self.rng.permutation(np.resize(np.arange(len(self.items(kind))), n))

    def query(self, grid, interval):
        # the route's dependency is async (it does no I/O): run its coroutine to the end here
        q = asyncio.run(self.incident_query(grid, None, None, None, None, None, interval, None, None, False))
        q.limit = 100
        return q

    def domain(self, kind: str, who: str, grid, interval):
        from patrol.incidents import counts_by_grid, query_incidents

        with self.factory() as s:
            if kind == "list":
                return query_incidents(
                    s, self.principals[who], self.query(grid, interval), self.backend.settings.incidents
                )[0]
            return counts_by_grid(
                s, self.principals[who], self.query(grid, interval), self.backend.settings.incidents
            )

    def captured(self, kind: str, who: str):
        """Per distinct request: (main statement, all statements, what the domain call answered)."""
        key = (kind, who)
        if key not in self._captured:
            out = []
            for _, qa in self.items(kind):
                with Capture(self.backend.engine) as cap:
                    result = self.domain(kind, who, *qa)
                main = [st for st in cap.statements if "FROM incidents" in st[0]]
                assert len(main) == 1, main
                out.append((main[0], cap.statements, result))
            self._captured[key] = out
        return self._captured[key]

    def get(self, who: str, url: str, params: dict):
        start = time.perf_counter()
        response = self.client.get(
            url, params=params, headers={"Authorization": f"Bearer {self.tokens[who]}"}
        )
        elapsed = time.perf_counter() - start
        assert response.status_code == 200, (url, params, response.status_code, response.text[:300])
        return elapsed, response

    def check(self, kind: str, who: str) -> None:
        """Sanity: the API answers what the bare SQL and the domain call answer, request by request."""
        for (params, _), (main, _, result) in zip(self.items(kind), self.captured(kind, who)):
            body = self.get(who, URLS[kind], params)[1].json()
            rows = self.run(*main)
            self.end()
            if kind == "list":
                assert body["numberReturned"] == min(len(rows), 100) == len(result), (
                    body["numberReturned"],
                    len(rows),
                )
                assert not rows or body["features"][0]["id"] == rows[0][0] == result[0]["id"]
            else:
                assert body["total"] == sum(r[3] for r in rows) == sum(r["count"] for r in result)

    def figure(
        self, kind: str, who: str, requests: int, warmup: int, label: str | None = None, api=True
    ) -> Figure:
        items, captured = self.items(kind), self.captured(kind, who)
        order = self.order(kind, requests + warmup)
        fig = Figure(label or f"{kind} as {who}")
        if api:
            for i, k in enumerate(order):
                elapsed, _ = self.get(who, URLS[kind], items[k][0])
                if i >= warmup:
                    fig.api.append(elapsed)
        for i, k in enumerate(order):
            statement, params = captured[k][0]
            start = time.perf_counter()
            self.run(statement, params)
            elapsed = time.perf_counter() - start
            self.end()
            if i >= warmup:
                fig.bare.append(elapsed)
        return fig

    def floor(self, requests: int, warmup: int) -> list[float]:
        """GET /api/v1/auth/me as the officer: token check, user and roles, a tiny JSON body."""
        times = []
        for i in range(requests + warmup):
            elapsed, _ = self.get("officer", "/api/v1/auth/me", {})
            if i >= warmup:
                times.append(elapsed)
        return times

    def breakdown(self, kind: str, api_p50: float, budget_s: float = 30.0) -> dict[str, float]:
        """Medians (ms) of the officer's API path taken apart in process, same requests as measured."""
        from fastapi.responses import JSONResponse

        from api.routes.incidents import GEOJSON
        from patrol.accounts import principal_for_secret
        from patrol.incidents import LIST_COLUMNS, _filters, incident_row
        from patrol.models import Grid, Incident, User

        items, captured = self.items(kind), self.captured(kind, "officer")
        parts: dict[str, list[float]] = {}

        def add(name, seconds):
            parts.setdefault(name, []).append(seconds)

        deadline = time.perf_counter() + budget_s
        for k in self.order(kind, 120):
            if time.perf_counter() > deadline and len(parts.get("auth", [])) >= 10:
                break
            start = time.perf_counter()
            with self.factory() as s:
                principal_for_secret(s, self.tokens["officer"], kind="token", channel="api", address=None)
            add("auth", time.perf_counter() - start)
            start = time.perf_counter()
            result = self.domain(kind, "officer", *items[k][1])
            add("domain", time.perf_counter() - start)
            start = time.perf_counter()
            for statement, params in captured[k][1]:
                self.run(statement, params)
            add("domain sql", time.perf_counter() - start)
            self.end()
            if kind == "list":
                # the rows as query_incidents gets them (a scratch copy of its select), then to dicts
                now = datetime.now(UTC)
                with self.factory() as s:
                    clauses = _filters(
                        s,
                        self.principals["officer"],
                        self.query(*items[k][1]),
                        self.backend.settings.incidents,
                        now,
                    )
                    rows = s.execute(
                        select(*LIST_COLUMNS, Grid.code.label("grid"), User.username.label("reporter"))
                        .outerjoin(Grid, Grid.id == Incident.grid_id).join(User, User.id == Incident.reporter_id)
                        .where(*clauses).order_by(Incident.observed_at.desc(), Incident.id.desc()).limit(101)
                    ).all()[:100]  # fmt: skip
                start = time.perf_counter()
                dicts = [incident_row(r, now) for r in rows]
                add("rows to dicts", time.perf_counter() - start)
                start = time.perf_counter()
                fast = [incident_row_fast(r, now) for r in rows]
                add("rows to dicts, fast", time.perf_counter() - start)
                assert fast == dicts, "the scratch row formatter differs"
            start = time.perf_counter()
            if kind == "list":
                features = [
                    {"type": "Feature", "id": item["id"],
                     "geometry": {"type": "Point", "coordinates": [round(item["lon"], 7), round(item["lat"], 7)]},
                     "properties": item}
                    for item in result
                ]  # fmt: skip
                body = {
                    "type": "FeatureCollection",
                    "features": features,
                    "numberReturned": len(features),
                    "links": [],
                }
                JSONResponse(body, media_type=GEOJSON)
            else:
                JSONResponse({"grids": result, "total": sum(r["count"] for r in result)})
            add("render", time.perf_counter() - start)
        m = {name: statistics.median(v) * 1000 for name, v in parts.items()}
        m["rest"] = api_p50 - m["auth"] - m["domain"] - m["render"]
        return m


BREAKDOWN_LABELS = {
    "auth": "token check: JWT + user + roles (2 SELECTs)",
    "domain": "domain call (query_incidents / counts_by_grid)",
    "domain sql": "  of which its SQL run bare (grid lookup + main)",
    "rows to dicts": "  of which rows -> dicts (incident_row x 100)",
    "rows to dicts, fast": "  (scratch incident_row with a faster _iso)",
    "render": "GeoJSON features + JSONResponse rendering",
    "rest": "HTTP (h11), FastAPI, middleware, client: the rest",
}


def print_breakdown(kind: str, api_p50: float, m: dict[str, float]) -> None:
    print(f"  where the officer's {kind} request goes (medians in process, ms; API p50 {api_p50:.2f}):")
    for name, label in BREAKDOWN_LABELS.items():
        if name in m:
            value = f"{m[name]:8.2f}" if m[name] >= 0 else "   noise"
            print(f"    {label:<52} {value}")


# --- a candidate index, measured on a scratch copy of the schema -------------------------------------

# ix_incidents_grid_observed widened with the five columns of the visibility filter, so that the
# counts of a manager or officer read only the index (SQLite has no INCLUDE; plain key columns work on
# both backends and keep the (grid_id, observed_at, id) prefix the first page uses).
CANDIDATE_NAME = "ix_incidents_grid_observed"
CANDIDATE_COLUMNS = ("grid_id", "observed_at", "id", "side", "referred_to", "joint_case_id", "border_distance_m",
                     "reporter_id")  # fmt: skip


def original_index_ddl(backend: Backend) -> str:
    with backend.engine.connect() as conn:
        if backend.name == "spatialite":
            return conn.execute(
                text("SELECT sql FROM sqlite_master WHERE name = :n"), {"n": CANDIDATE_NAME}
            ).scalar()
        return conn.execute(
            text("SELECT indexdef FROM pg_indexes WHERE indexname = :n"), {"n": CANDIDATE_NAME}
        ).scalar()


def swap_index(backend: Backend, ddl: str, settings_sql: str | None = None) -> float:
    start = time.perf_counter()
    with backend.engine.begin() as conn:
        conn.execute(text(f"DROP INDEX {CANDIDATE_NAME}"))
        conn.execute(text(ddl))
        conn.execute(text("ANALYZE incidents"))
    backend.engine.dispose()  # fresh connections (and plans) for the app and the bare runner
    return time.perf_counter() - start


def measure(backend: Backend, world: World, args) -> dict:
    import httpx

    from api.app import create_app
    from patrol.db import make_session_factory

    app = create_app(settings=backend.settings, engine=backend.engine)
    factory = make_session_factory(backend.engine)
    out: dict = {"figures": {}, "breakdown": {}, "candidate": {}}
    with serving(app) as base, httpx.Client(base_url=base, trust_env=False, timeout=120) as client:
        runner = Runner(backend, world, args, client, factory)
        try:
            out["floor"] = runner.floor(args.requests, args.warmup)
            print(f"  {'GET /auth/me (floor)':<24} API {fmt_p(out['floor'])}")
            for who in ("officer", "admin"):
                for kind in ("list", "counts", "counts-month"):
                    runner.check(kind, who)
                    fig = runner.figure(kind, who, args.requests, args.warmup)
                    out["figures"][(kind, who)] = fig
                    print(fig.line())
            out["list_rows"] = [len(c[2]) for c in runner.captured("list", "officer")]
            out["counts_total"] = sum(r["count"] for r in runner.captured("counts", "officer")[0][2])
            for kind in ("list", "counts"):
                api_p50 = percentiles(out["figures"][(kind, "officer")].api)[0]
                out["breakdown"][kind] = (api_p50, runner.breakdown(kind, api_p50))
                print_breakdown(kind, api_p50, out["breakdown"][kind][1])

            if not args.no_candidates:
                original = original_index_ddl(backend)
                widened = f"CREATE INDEX {CANDIDATE_NAME} ON incidents ({', '.join(CANDIDATE_COLUMNS)})"
                built = swap_index(backend, widened)
                runner.reconnect()
                print(f"  candidate: {CANDIDATE_NAME} widened to ({', '.join(CANDIDATE_COLUMNS)}), "
                      f"rebuilt in {built:.1f} s; the same requests again, as the officer:")  # fmt: skip
                variants = [("", None)]
                if backend.name == "postgis":
                    variants.append((" +rpc1.1", "random_page_cost = 1.1"))
                for suffix, setting in variants:
                    if setting:
                        with backend.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                            db = backend.engine.url.database
                            conn.execute(text(f'ALTER DATABASE "{db}" SET {setting}'))
                        backend.engine.dispose()
                        runner.reconnect()
                    for kind in ("list", "counts", "counts-month"):
                        runner.check(kind, "officer")
                        fig = runner.figure(kind, "officer", args.candidate_requests, 10, f"{kind}{suffix}")
                        out["candidate"][(kind, suffix)] = fig
                        print(fig.line())
                    if setting:
                        with backend.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                            conn.execute(
                                text(f'ALTER DATABASE "{backend.engine.url.database}" RESET random_page_cost')
                            )
                swap_index(backend, original)
                runner.reconnect()
                out["candidate_built"] = built
        finally:
            runner.close()
    return out


# --- one backend, end to end -----------------------------------------------------------------------


def run_backend(name: str, args) -> dict:
    from patrol import migrate

    backend = open_backend(name, args.keep)
    try:
        migrate.upgrade(backend.engine)
        backend.versions = backend_versions(backend)
        print(f"\n== {name}: {backend.where}")
        print(f"   {backend.versions}")
        world = setup_world(backend, args.seed)
        before = schema_snapshot(backend)
        stats: dict[str, float] = {}
        start = time.perf_counter()
        chunks = incident_chunks(world, args.rows, args.chunk, args.seed)
        (load_spatialite if name == "spatialite" else load_postgis)(backend, chunks, stats)
        load_s = time.perf_counter() - start
        after = schema_snapshot(backend)
        assert before == after, "the schema after the load differs from the migration's"
        with backend.engine.connect() as conn:
            n = conn.execute(text("SELECT count(*) FROM incidents")).scalar()
            assert n == args.rows, n
            mix = dict(
                conn.execute(text("SELECT grid_match, count(*) FROM incidents GROUP BY grid_match")).all()
            )
            sides = dict(conn.execute(text("SELECT side, count(*) FROM incidents GROUP BY side")).all())
            statuses = dict(
                conn.execute(text("SELECT status, count(*) FROM incidents GROUP BY status")).all()
            )
            if name == "spatialite":
                size = Path(backend.engine.url.database).stat().st_size
                spatial = conn.execute(text("SELECT count(*) FROM idx_incidents_geom")).scalar()
                assert spatial == n, (spatial, n)
            else:
                size = conn.execute(text("SELECT pg_total_relation_size('incidents')")).scalar()
        rate = args.rows / stats["insert"]
        print(f"  loaded {args.rows:,} incidents in {load_s:.1f} s: generate {stats['generate']:.1f} s, "
              f"insert {stats['insert']:.1f} s ({rate:,.0f} rows/s), b-tree indexes {stats['b-tree indexes']:.1f} s, "
              f"spatial index {stats['spatial index']:.1f} s, FK check {stats['FK check']:.1f} s, "
              f"ANALYZE {stats['ANALYZE']:.1f} s; {size / 1e6:,.0f} MB; schema as migrated: yes")  # fmt: skip
        print("  placement: " + ", ".join(f"{k} {v / n:.1%}" for k, v in sorted(mix.items()))
              + "; sides: " + ", ".join(f"{k} {v / n:.1%}" for k, v in sorted(sides.items()))
              + "; statuses: " + ", ".join(f"{k} {v / n:.1%}" for k, v in sorted(statuses.items(), key=lambda kv: -kv[1])))  # fmt: skip
        result = measure(backend, world, args)
        rows = result.pop("list_rows")
        print(f"  list pages: {len(rows)} grid-months, rows per page {min(rows)}–{max(rows)}; "
              f"officer sees {result['counts_total']:,} of {n:,} incidents")  # fmt: skip
        assert schema_snapshot(backend) == before, (
            "the schema after the measurements differs from the migration's"
        )
        result.update(load_s=load_s, stats=stats, size=size, versions=backend.versions)
        return result
    finally:
        backend.engine.dispose()
        if backend.drop:
            backend.drop()
        if args.keep:
            print(f"  kept {backend.where} (data directory {backend.folder})")
        else:
            shutil.rmtree(backend.folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("spatialite", "postgis", "both"), default="both")
    parser.add_argument("--requests", type=int, default=240, help="measured requests per figure")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--chunk", type=int, default=100_000)
    parser.add_argument(
        "--candidate-requests", type=int, default=60, help="per figure with the candidate index"
    )
    parser.add_argument("--no-candidates", action="store_true")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--keep", action="store_true", help="keep the databases (for EXPLAIN by hand)")
    args = parser.parse_args()

    import fastapi
    import httpx
    import uvicorn

    print(f"machine: {platform.machine()}, {cpu_model()}, {os.cpu_count()} vCPU, {mem_gib():.0f} GiB; "
          f"Python {platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}, FastAPI {fastapi.__version__}, "
          f"uvicorn {uvicorn.__version__}, httpx {httpx.__version__}")  # fmt: skip
    print(f"incidents: {args.rows:,}; {args.requests} measured requests per figure after {args.warmup} warm-up; "
          f"list: {len(LIST_GRIDS)} GD-LJ grids x 6 months, limit 100")  # fmt: skip
    backends = ("spatialite", "postgis") if args.backend == "both" else (args.backend,)
    results = {name: run_backend(name, args) for name in backends}

    print("\nsummary (officer of GD-LJ; ms; API/SQL = ratio of API to bare SQL, at p50 and at p95)")
    targets = (("list", "first page, one grid and month", 20.0), ("counts", "counts, all grids", 200.0),
               ("counts-month", "counts, all grids, one month", 200.0))  # fmt: skip
    verdicts = []
    for name, result in results.items():
        for kind, label, target in targets:
            fig = result["figures"][(kind, "officer")]
            api, bare = percentiles(fig.api), percentiles(fig.bare)
            ratio50, ratio95 = api[0] / bare[0], api[1] / bare[1]
            ok_time, ok_ratio = api[1] <= target, max(ratio50, ratio95) <= 3.0
            verdicts.append((name, label, ok_time, ok_ratio))
            print(f"  {name:<10} {label:<30} API p95 {api[1]:8.2f} (target <= {target:.0f}: "
                  f"{'met' if ok_time else 'NOT met'}); SQL p95 {bare[1]:8.2f}; API/SQL {ratio50:.2f}x, "
                  f"{ratio95:.2f}x (target <= 3x: {'met' if ok_ratio else 'NOT met'})")  # fmt: skip
        floor = percentiles(result["floor"])
        list_bare = percentiles(result["figures"][("list", "officer")].bare)
        print(f"  {name:<10} {'floor: GET /auth/me':<30} API p50 {floor[0]:8.2f}, p95 {floor[1]:.2f} "
              f"= {floor[0] / list_bare[0]:.1f}x the first page's bare SQL p50 before any work")  # fmt: skip
        for (kind, suffix), fig in result["candidate"].items():
            api, bare = percentiles(fig.api), percentiles(fig.bare)
            before = percentiles(result["figures"][(kind, "officer")].api)
            print(f"  {name:<10} {'  with the widened index' + suffix:<30} {kind:<12} API p95 {api[1]:8.2f} "
                  f"(was {before[1]:.2f}); SQL p95 {bare[1]:8.2f}; API/SQL {api[0] / bare[0]:.2f}x, "
                  f"{api[1] / bare[1]:.2f}x")  # fmt: skip
    missed = [f"{n} {label} ({'time' if not t else ''}{' and ' if not t and not r else ''}{'ratio' if not r else ''})"
              for n, label, t, r in verdicts if not (t and r)]  # fmt: skip
    print(f"peak RSS of this process: {peak_rss_mb():,.0f} MB")
    print("targets (schema as migrated): " + ("all met" if not missed else "NOT met: " + "; ".join(missed)))


if __name__ == "__main__":
    main()
