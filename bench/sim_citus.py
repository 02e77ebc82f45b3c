"""Issue 13 part 6: a province spread over Citus workers — simulated, without Citus.

    .venv/bin/python bench/sim_citus.py [--members 6000] [--years 3] [--shards 32] [--nodes 2,4,8]
                                        [--pruning-incidents 1000000] [--no-pruning]

Citus is not installed here and must not be. What is MEASURED and what is SIMULATED:

1. Measured: bytes per row (heap + TOAST + every index, ``pg_total_relation_size``) of each table
   the design distributes, on the local PostGIS, in a scratch database ``citus_sim`` made and
   dropped by this script. Rows are shaped like ``patrol/models.py`` plus the distribution column
   ``side`` (the county code): patrol lines are synthetic 3,600-fix walks cut by the service's own
   ``_patrol_lines`` (full line and ≤ 2,000-vertex copy), fix blobs are the service's own
   ``_pack_fixes`` archive, ``patrol_segments`` is the table the space–time query will use.
2. Measured: which of 32 hash shards each county lands in, with PostgreSQL's own ``hashtext``
   (the hash Citus uses for a text/varchar distribution column) and Citus's split of the int32
   hash space into equal ranges; shards placed round-robin on the workers as
   ``create_distributed_table`` does. Row-id distribution is sampled with ``hashint8``.
3. Simulated (synthetic, clearly not real data): 21 coastal counties of Guangdong and Guangxi with
   members spread Zipf-like (``--zipf``) over an assumed size order; uploads, incidents and their
   children per member; a query mix by assumed fractions. Volumes = rows × measured bytes/row.
4. Stand-in (optional): on one PostgreSQL, incidents LIST-partitioned by county: a county query
   prunes to one partition as Citus would route it to one shard; a province-wide one reads all 21.
   This shows pruning on one node, not network or worker costs.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import psycopg
import shapely

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from patrol.grids import project  # noqa: E402
from patrol.patrols import _pack_fixes, _patrol_lines  # noqa: E402

DB = "citus_sim"
SERVER = os.environ.get("CITUS_SIM_SERVER", "host=127.0.0.1 port=5432 user=postgres")

# 21 county-level units with mangroves along the Guangxi → Guangdong coast, west to east (an
# approximate chain: each borders the next; Hepu–Lianjiang is the provincial border). The order of
# sizes (largest first) is an assumption loosely following mangrove area, not data.
COAST = [
    "GX-DX", "GX-FC", "GX-GK", "GX-QN", "GX-HC", "GX-YH", "GX-TSG", "GX-HP",
    "GD-LJ", "GD-SX", "GD-LZ", "GD-XW", "GD-MZ", "GD-PT", "GD-WC", "GD-DB",
    "GD-YX", "GD-TS", "GD-XH", "GD-JW", "GD-FT",
]  # fmt: skip
SIZE_ORDER = [
    "GD-LZ", "GD-LJ", "GX-HP", "GD-XW", "GD-SX", "GX-QN", "GD-MZ", "GD-PT", "GD-TS", "GX-YH",
    "GX-TSG", "GX-GK", "GD-WC", "GD-DB", "GX-FC", "GD-YX", "GD-XH", "GX-DX", "GX-HC", "GD-JW",
    "GD-FT",
]  # fmt: skip
NEIGHBOURS = {c: {COAST[i - 1]} if i else set() for i, c in enumerate(COAST)}
for i, c in enumerate(COAST[:-1]):
    NEIGHBOURS[c].add(COAST[i + 1])

# The query mix: (label, fraction of requests, scope). Fractions are assumptions, stated in the doc.
MIX = [
    ("upload a patrol (write)", 0.10, "county"),
    ("report an incident (write)", 0.05, "county"),
    ("member: own patrols", 0.15, "county"),
    ("manager: station's patrols", 0.10, "county"),
    ("officer: incident list (county + neighbours)", 0.20, "neighbours"),
    ("patrol or incident by id", 0.20, "county"),
    ("grid effort, one county, one month", 0.05, "county"),
    ("patrols near a point", 0.05, "near"),
    ("joint case (two counties)", 0.03, "pair"),
    ("province-wide admin list / assessment", 0.07, "all"),
]


def connect(dbname: str = "postgres", autocommit: bool = True) -> psycopg.Connection:
    return psycopg.connect(f"{SERVER} dbname={dbname}", autocommit=autocommit)


# --- 1. bytes per row, measured ------------------------------------------------------------------

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE TABLE patrols (
  id bigint, side varchar(8), team varchar(16), uploaded_by bigint, uploaded_at timestamptz,
  file_sha256 varchar(64), source_name varchar(256), source_format varchar(32), datum varchar(16),
  transport varchar(8), started_at timestamptz, ended_at timestamptz, fix_count int, flagged_count int,
  distance_m float8, duration_s float8, outside_distance_m float8, outside_duration_s float8, notes text,
  summary json, geom geometry(MultiLineString, 4326), geom_simplified geometry(MultiLineString, 4326),
  PRIMARY KEY (side, id), UNIQUE (side, file_sha256));
CREATE INDEX ON patrols (side); CREATE INDEX ON patrols (team); CREATE INDEX ON patrols (started_at);
CREATE INDEX ON patrols (ended_at); CREATE INDEX ON patrols USING gist (geom);
CREATE TABLE patrol_fixes (side varchar(8), patrol_id bigint, fix_count int, data bytea,
  PRIMARY KEY (side, patrol_id));
CREATE TABLE patrol_members (side varchar(8), patrol_id bigint, user_id bigint,
  PRIMARY KEY (side, patrol_id, user_id));
CREATE INDEX ON patrol_members (user_id);
CREATE TABLE patrol_visits (id bigint, side varchar(8), patrol_id bigint, grid_id int, seq int,
  entered_at timestamptz, exited_at timestamptz, distance_m float8, duration_s float8,
  geom geometry(LineString, 4326), PRIMARY KEY (side, id));
CREATE INDEX ON patrol_visits (patrol_id); CREATE INDEX ON patrol_visits (grid_id, entered_at);
CREATE TABLE patrol_segments (side varchar(8), patrol_id bigint, seq int, started_at timestamptz,
  ended_at timestamptz, fix_ms int[], geom geometry(LineString, 4326),
  PRIMARY KEY (side, patrol_id, seq));
CREATE INDEX ON patrol_segments USING gist (geom); CREATE INDEX ON patrol_segments (started_at);
CREATE TABLE incidents (
  id bigint, side varchar(8), category varchar(32), severity varchar(8), level varchar(8),
  description text, observed_at timestamptz, reported_at timestamptz, reporter_id bigint, patrol_id bigint,
  lon float8, lat float8, geom geometry(Point, 4326), grid_id int, grid_match varchar(8),
  grid_distance_m float8, town varchar(8), border_distance_m float8, status varchar(16),
  duplicate_of bigint, referred_to varchar(8), joint_case_id bigint, accept_due timestamptz,
  resolve_due timestamptz, responded_at timestamptz, accepted_at timestamptz, resolved_at timestamptz,
  closed_at timestamptz, updated_at timestamptz, version int, PRIMARY KEY (side, id));
CREATE INDEX ON incidents (grid_id, observed_at, id, side, referred_to, joint_case_id,
  border_distance_m, reporter_id);
CREATE INDEX ON incidents (side, observed_at, id); CREATE INDEX ON incidents (observed_at, id);
CREATE INDEX ON incidents (status, resolve_due); CREATE INDEX ON incidents (reporter_id);
CREATE INDEX ON incidents (joint_case_id); CREATE INDEX ON incidents USING gist (geom);
CREATE TABLE incident_events (id bigint, side varchar(8), incident_id bigint, at timestamptz,
  actor_id bigint, action varchar(16), from_status varchar(16), to_status varchar(16), note text,
  details json, PRIMARY KEY (side, id));
CREATE INDEX ON incident_events (incident_id);
CREATE TABLE incident_photos (id bigint, side varchar(8), incident_id bigint, path varchar(256),
  content_type varchar(32), size_bytes int, width int, height int, sha256 varchar(64),
  uploaded_by bigint, uploaded_at timestamptz, PRIMARY KEY (side, id));
CREATE INDEX ON incident_photos (incident_id);
CREATE TABLE audit_log (id bigint, side varchar(8), seq bigint, at timestamptz, actor_id bigint,
  actor varchar(80), channel varchar(8), address varchar(64), action varchar(48),
  object_type varchar(32), object_id varchar(64), changes json, prev_hash varchar(64),
  hash varchar(64), PRIMARY KEY (side, id), UNIQUE (side, seq));
CREATE INDEX ON audit_log (object_type, object_id, seq); CREATE INDEX ON audit_log (actor, seq);
CREATE INDEX ON audit_log (at);
CREATE TABLE grids (id int PRIMARY KEY, code varchar(32) UNIQUE, name_zh varchar(128),
  name_en varchar(160), side varchar(8), town varchar(8), team varchar(16), station varchar(16),
  kind varchar(8), area_ha float8, source varchar(256), approximate bool, version int,
  created_at timestamptz, updated_at timestamptz, retired_at timestamptz,
  geom geometry(MultiPolygon, 4326));
CREATE INDEX ON grids (side); CREATE INDEX ON grids (town); CREATE INDEX ON grids USING gist (geom);
CREATE TABLE users (id bigint PRIMARY KEY, username varchar(64) UNIQUE, display_name varchar(128),
  side varchar(8), password_hash varchar(256), is_active bool, created_at timestamptz);
"""


def walk(rng, n: int, step_s: float, speed: float, lon0: float, lat0: float):
    """A synthetic track: heading wanders, GPS noise of a few metres; lon/lat near Lianjiang."""
    heading = np.cumsum(rng.normal(0, 0.25, n))
    step = speed * step_s * rng.uniform(0.5, 1.5, n)
    x = np.cumsum(step * np.cos(heading)) + rng.normal(0, 3, n)
    y = np.cumsum(step * np.sin(heading)) + rng.normal(0, 3, n)
    lat = lat0 + y / 111_320
    lon = lon0 + x / (111_320 * math.cos(math.radians(lat0)))
    return lon, lat


def ewkb(geom) -> str:
    return shapely.to_wkb(shapely.set_srid(geom, 4326), hex=True, include_srid=True)


def copy_rows(conn, table: str, columns: str, rows) -> None:
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def measure_row_bytes(args, rng) -> dict[str, dict]:
    """Load each table with synthetic rows in the scratch database; bytes per row from its size."""
    n_big, n_small = args.sample_patrols, args.sample_rows
    fixes, step_s = args.fixes_per_patrol, args.fix_interval_s
    t0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    with connect(DB) as conn:
        conn.execute(SCHEMA)

        def patrol_rows():
            for i in range(n_big):
                lon, lat = walk(
                    rng, fixes, step_s, 1.2, 109.8 + rng.uniform(0, 0.3), 21.5 + rng.uniform(0, 0.2)
                )
                x, y = project(lon, lat)
                segment = np.zeros(fixes, dtype=np.int32)
                line, simple = _patrol_lines(lon, lat, x, y, segment, args.simplify_tolerance_m)
                times = (np.datetime64("2026-01-01T00:00:00") + np.arange(fixes) * int(step_s)).astype(
                    "datetime64[ms]"
                )
                blob = _pack_fixes(
                    SimpleNamespace(
                        lon=lon, lat=lat, time=times, ele=np.full(fixes, np.nan), segment=segment
                    ),
                    SimpleNamespace(
                        fixes=SimpleNamespace(segment=segment, lon=lon, lat=lat),
                        flags=np.zeros(fixes, dtype=np.uint16),
                    ),
                )
                start = datetime.fromtimestamp(t0 + i * 3600, UTC)
                end = datetime.fromtimestamp(t0 + i * 3600 + fixes * step_s, UTC)
                summary = {
                    "flags": {"speed": 3, "jump": 1},
                    "warnings": [],
                    "grids": [f"LJ-{k:02d}" for k in range(4)],
                }
                yield i, start, end, ewkb(line), ewkb(simple), blob, summary

        ps = time.perf_counter()
        with conn.cursor() as cur:
            pc = cur.copy("COPY patrols (id, side, team, uploaded_by, uploaded_at, file_sha256, source_name, "
                           "source_format, datum, transport, started_at, ended_at, fix_count, flagged_count, "
                           "distance_m, duration_s, outside_distance_m, outside_duration_s, summary, geom, "
                           "geom_simplified) FROM STDIN")  # fmt: skip
            blobs = []
            with pc as copy:
                for i, start, end, line, simple, blob, summary in patrol_rows():
                    copy.write_row((i, "GD-LJ", "LJ-T1", 1 + i % 500, end, f"{rng.bytes(32).hex()}",
                                    f"track-{i}.gpx", "gpx", "wgs84", "foot", start, end, fixes, 4,
                                    6200.5, fixes * step_s, 310.2, 240.0,
                                    psycopg.types.json.Json(summary), line, simple))  # fmt: skip
                    blobs.append((i, blob))
            copy_rows(conn, "patrol_fixes", "side, patrol_id, fix_count, data",
                      (("GD-LJ", i, fixes, b) for i, b in blobs))  # fmt: skip
        print(
            f"  loaded {n_big:,} patrols and their fix blobs in {time.perf_counter() - ps:.1f} s", flush=True
        )

        # Visits: the track cut by grid; each visit's line holds fixes / visits vertices.
        per_visit = max(2, fixes // args.visits_per_patrol)
        n_visits = n_small // 5

        def visit_rows():
            for i in range(n_visits):
                lon, lat = walk(rng, per_visit, step_s, 1.2, 109.9, 21.6)
                yield (i, "GD-LJ", i // args.visits_per_patrol, 1 + i % 10_000, i % args.visits_per_patrol,
                       datetime.fromtimestamp(t0 + i * 600, UTC), datetime.fromtimestamp(t0 + i * 600 + 500, UTC),
                       1034.2, 500.0, ewkb(shapely.linestrings(lon, lat)))  # fmt: skip

        copy_rows(conn, "patrol_visits", "id, side, patrol_id, grid_id, seq, entered_at, exited_at, distance_m, "
                  "duration_s, geom", visit_rows())  # fmt: skip

        seg = args.segment_fixes
        offsets = list(range(0, seg * int(step_s) * 1000, int(step_s) * 1000))

        def segment_rows():
            for i in range(n_small):
                lon, lat = walk(rng, seg, step_s, 1.2, 109.9, 21.6)
                start = t0 + i * seg * step_s
                yield ("GD-LJ", i // 36, i % 36, datetime.fromtimestamp(start, UTC),
                       datetime.fromtimestamp(start + (seg - 1) * step_s, UTC), offsets,
                       ewkb(shapely.linestrings(lon, lat)))  # fmt: skip

        copy_rows(
            conn,
            "patrol_segments",
            "side, patrol_id, seq, started_at, ended_at, fix_ms, geom",
            segment_rows(),
        )
        copy_rows(conn, "patrol_members", "side, patrol_id, user_id",
                  (("GD-LJ", i // 2, 1 + (i * 7919) % 50_000) for i in range(n_small)))  # fmt: skip

        def incident_rows():
            for i in range(n_small):
                lon, lat = 109.8 + rng.uniform(0, 0.4), 21.4 + rng.uniform(0, 0.3)
                at = datetime.fromtimestamp(t0 + i * 300, UTC)
                yield (i, "GD-LJ", "cutting", "medium", "town",
                       "Fresh stumps of mangrove along the creek, about 20 trees; boat tracks in the mud.",
                       at, at, 1 + i % 5000, i // 3, lon, lat, ewkb(shapely.Point(lon, lat)), 1 + i % 10_000,
                       "inside", 0.0, "LJ-GZ", rng.uniform(0, 40_000), "resolved", None, None, None, at, at, at,
                       at, at, at, at, 4)  # fmt: skip

        copy_rows(conn, "incidents", "id, side, category, severity, level, description, observed_at, reported_at, "
                  "reporter_id, patrol_id, lon, lat, geom, grid_id, grid_match, grid_distance_m, town, "
                  "border_distance_m, status, duplicate_of, referred_to, joint_case_id, accept_due, resolve_due, "
                  "responded_at, accepted_at, resolved_at, closed_at, updated_at, version", incident_rows())  # fmt: skip
        copy_rows(conn, "incident_events", "id, side, incident_id, at, actor_id, action, from_status, to_status, note, details",
                  ((i, "GD-LJ", i // 4, datetime.fromtimestamp(t0 + i * 60, UTC), 1 + i % 5000, "transition",
                    "accepted", "resolved", "Checked on site with the town officer.",
                    psycopg.types.json.Json({"level": "town"})) for i in range(n_small)))  # fmt: skip
        copy_rows(conn, "incident_photos", "id, side, incident_id, path, content_type, size_bytes, width, height, "
                  "sha256, uploaded_by, uploaded_at",
                  ((i, "GD-LJ", i // 2, f"2026/01/{i % 28 + 1:02d}/{rng.bytes(16).hex()}.jpg", "image/jpeg",
                    412_000, 2048, 1536, rng.bytes(32).hex(), 1 + i % 5000, datetime.fromtimestamp(t0 + i, UTC))
                   for i in range(n_small)))  # fmt: skip
        copy_rows(conn, "audit_log", "id, side, seq, at, actor_id, actor, channel, address, action, object_type, "
                  "object_id, changes, prev_hash, hash",
                  ((i, "GD-LJ", i + 1, datetime.fromtimestamp(t0 + i * 30, UTC), 1 + i % 5000, f"member{i % 5000}",
                    "api", "10.0.0.12", "incident.transition", "incident", str(i // 4),
                    psycopg.types.json.Json({"status": ["accepted", "resolved"], "level": ["town", "town"]}),
                    rng.bytes(32).hex(), rng.bytes(32).hex()) for i in range(n_small)))  # fmt: skip

        def grid_rows():
            for i in range(args.sample_grids):
                lon, lat = 109.5 + rng.uniform(0, 2), 21.3 + rng.uniform(0, 0.5)
                angles = np.sort(rng.uniform(0, 2 * np.pi, args.grid_vertices - 1))
                r = rng.uniform(0.004, 0.01) * rng.uniform(0.7, 1.0, angles.size)
                ring = np.column_stack([lon + r * np.cos(angles), lat + r * np.sin(angles)])
                poly = shapely.MultiPolygon([shapely.Polygon(ring)])
                now = datetime.fromtimestamp(t0, UTC)
                yield (i, f"LJ-{i:05d}", "红树林保护网格", f"Mangrove grid {i}", "GD-LJ", "LJ-GZ", "LJ-T1", "LJ-S1",
                       "grid", 35.2, "grids-2026.gpkg", False, 1, now, now, None, ewkb(poly))  # fmt: skip

        copy_rows(conn, "grids", "id, code, name_zh, name_en, side, town, team, station, kind, area_ha, source, "
                  "approximate, version, created_at, updated_at, retired_at, geom", grid_rows())  # fmt: skip
        copy_rows(conn, "users", "id, username, display_name, side, password_hash, is_active, created_at",
                  ((i, f"member{i}", f"巡护员 {i}", "GD-LJ", "$argon2id$v=19$m=65536,t=3,p=4$" + rng.bytes(48).hex(),
                    True, datetime.fromtimestamp(t0, UTC)) for i in range(args.sample_users)))  # fmt: skip
        conn.execute("VACUUM ANALYZE")
        sizes = {}
        for table in ("patrols", "patrol_fixes", "patrol_members", "patrol_visits", "patrol_segments", "incidents",
                      "incident_events", "incident_photos", "audit_log", "grids", "users"):  # fmt: skip
            rows, total = conn.execute(
                f"SELECT count(*), pg_total_relation_size('{table}') FROM {table}"
            ).fetchone()
            sizes[table] = {"rows": rows, "bytes": total, "per_row": total / rows}
    return sizes


# --- 2. the province, synthetic ------------------------------------------------------------------


def province(args) -> dict[str, float]:
    """Members per county: Zipf-like over the assumed size order."""
    weights = np.array([1 / (r + 1) ** args.zipf for r in range(len(SIZE_ORDER))])
    members = np.round(args.members * weights / weights.sum())
    return dict(zip(SIZE_ORDER, members.tolist(), strict=True))


def county_rows(args, members: float) -> dict[str, float]:
    """Rows per table for one county over ``--years``: the synthetic rates of the doc."""
    days = 365 * args.years
    patrols = members * args.uploads_per_member_day * days
    incidents = members * args.incidents_per_member_year * args.years
    return {
        "patrols": patrols,
        "patrol_fixes": patrols,
        "patrol_members": patrols * args.crew,
        "patrol_visits": patrols * args.visits_per_patrol,
        "patrol_segments": patrols * math.ceil(args.fixes_per_patrol / args.segment_fixes),
        "incidents": incidents,
        "incident_events": incidents * args.events_per_incident,
        "incident_photos": incidents * args.photos_per_incident,
        "audit_log": patrols + incidents * (1 + args.events_per_incident),
    }


def citus_shard(hash_value: int, shard_count: int) -> int:
    """Citus splits the int32 hash space into equal ranges, shard i covering [min_i, max_i]."""
    width = 2**32 // shard_count
    return min((hash_value + 2**31) // width, shard_count - 1)


def county_shards(shard_count: int) -> dict[str, int]:
    with connect() as conn:
        return {
            c: citus_shard(conn.execute("SELECT hashtext(%s)", (c,)).fetchone()[0], shard_count)
            for c in COAST
        }


def id_shard_fractions(shard_count: int, sample: int) -> np.ndarray:
    """The share of ids 1..sample in each shard when a table is distributed by its bigint id."""
    with connect() as conn:
        hashes = np.array([h for (h,) in conn.execute(
            "SELECT hashint8(i) FROM generate_series(1, %s::bigint) i", (sample,)).fetchall()])  # fmt: skip
    shards = np.minimum((hashes + 2**31) // (2**32 // shard_count), shard_count - 1)
    return np.bincount(shards, minlength=shard_count) / sample


def rebalance_by_size(shard_bytes: np.ndarray, placement: np.ndarray, nodes: int) -> np.ndarray:
    """A greedy stand-in for ``rebalance_table_shards(rebalance_strategy := 'by_disk_size')``: move
    the shard that best evens the most and least loaded nodes while that lowers the maximum."""
    placement = placement.copy()
    for _ in range(1000):
        load = np.bincount(placement, weights=shard_bytes, minlength=nodes)
        hi, lo = int(load.argmax()), int(load.argmin())
        best, best_max = None, load[hi]
        for s in np.flatnonzero(placement == hi):
            new_max = max(load[hi] - shard_bytes[s], load[lo] + shard_bytes[s])
            if new_max < best_max - 1e-9:
                best, best_max = s, new_max
        if best is None:
            return placement
        placement[best] = lo
    return placement


def lpt(sizes: np.ndarray, nodes: int) -> np.ndarray:
    """Each county isolated in a shard of its own (``isolate_tenant_to_new_shard``), then placed
    largest first on the least loaded node: about the best any county-keyed placement can do."""
    placement = np.zeros(len(sizes), dtype=int)
    load = np.zeros(nodes)
    for i in np.argsort(-sizes, kind="stable"):
        placement[i] = int(load.argmin())
        load[placement[i]] += sizes[i]
    return placement


def skew(load: np.ndarray) -> float:
    return float(load.max() / load.mean())


def fanout(shards_of, members: dict[str, float], shard_count: int, near_border: float) -> list[tuple]:
    """Expected shards touched per query type; county-scoped queries weighted by county members."""
    total = sum(members.values())
    rows = []
    for label, fraction, scope in MIX:
        expected, single = 0.0, 0.0
        for c, m in members.items():
            w = m / total
            if scope == "county":
                options = [(1.0, {c})]
            elif scope == "neighbours":
                options = [(1.0, {c} | NEIGHBOURS[c])]
            elif scope == "near":
                near = [(near_border / len(NEIGHBOURS[c]), {c, n}) for n in NEIGHBOURS[c]]
                options = [(1 - near_border, {c}), *near]
            elif scope == "pair":
                options = [(1 / len(NEIGHBOURS[c]), {c, n}) for n in NEIGHBOURS[c]]
            else:
                options = [(1.0, None)]
            for p, counties in options:
                n = shard_count if counties is None else len(shards_of(counties))
                expected += w * p * n
                single += w * p * (n == 1)
        rows.append((label, fraction, expected, single))
    return rows


# --- 4. the stand-in: LIST partitions by county on one server ----------------------------------


def pruning_stand_in(args, members: dict[str, float]) -> list[str]:
    out = []
    counties = list(members)
    share = np.array([members[c] for c in counties]) / sum(members.values())
    n = args.pruning_incidents
    with connect(DB) as conn:
        conn.execute(
            "CREATE TABLE inc_plain (id bigint, side varchar(8), observed_at timestamptz, status varchar(16), "
            "grid_id int, description text, PRIMARY KEY (side, id))"
        )
        conn.execute("CREATE TABLE inc_part (LIKE inc_plain INCLUDING ALL) PARTITION BY LIST (side)")
        for c in counties:
            conn.execute(f"CREATE TABLE \"inc_part_{c}\" PARTITION OF inc_part FOR VALUES IN ('{c}')")
        conn.execute("CREATE TEMP TABLE county_share (side varchar(8), lo float8, hi float8)")
        edges = np.concatenate([[0.0], np.cumsum(share)])
        edges[-1] = 1.0
        copy_rows(conn, "county_share", "side, lo, hi", zip(counties, edges[:-1], edges[1:], strict=True))
        started = time.perf_counter()
        conn.execute(
            "INSERT INTO inc_plain SELECT i, s.side, timestamptz '2024-01-01' + (i %% 1000003) * interval '94 s', "
            "(ARRAY['reported','accepted','resolved','closed'])[1 + i %% 4], 1 + i %% 10000, "
            "'Fresh stumps of mangrove along the creek.' FROM generate_series(1, %s) i "
            "JOIN county_share s ON (hashint4(i)::float8 + 2147483648) / 4294967296 >= s.lo "
            "AND (hashint4(i)::float8 + 2147483648) / 4294967296 < s.hi",
            (n,),
        )
        conn.execute("INSERT INTO inc_part SELECT * FROM inc_plain")
        for table in ("inc_plain", "inc_part"):
            conn.execute(f"CREATE INDEX ON {table} (side, observed_at DESC, id DESC)")
            conn.execute(f"CREATE INDEX ON {table} (observed_at)")
        conn.execute("VACUUM ANALYZE inc_plain")
        conn.execute("VACUUM ANALYZE inc_part")
        out.append(f"  loaded {n:,} incidents twice (plain, and LIST-partitioned by county) in "
                   f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        month = "observed_at >= '2025-03-01' AND observed_at < '2025-04-01'"
        small = SIZE_ORDER[len(SIZE_ORDER) // 2]
        queries = [
            ("county first page (50)", f"SELECT id FROM {{t}} WHERE side = '{small}' ORDER BY observed_at DESC, id DESC LIMIT 50"),
            ("county count, one month", f"SELECT count(*) FROM {{t}} WHERE side = '{small}' AND {month}"),
            ("province count, one month", f"SELECT count(*) FROM {{t}} WHERE {month}"),
            ("province first page (50)", "SELECT id FROM {t} ORDER BY observed_at DESC, id DESC LIMIT 50"),
        ]  # fmt: skip
        for label, sql in queries:
            plan = conn.execute("EXPLAIN (FORMAT JSON) " + sql.format(t="inc_part")).fetchone()[0]
            touched = len(set(_relations(plan[0]["Plan"])))
            timing = {}
            for table in ("inc_plain", "inc_part"):
                q = sql.format(t=table)
                for _ in range(3):
                    conn.execute(q).fetchall()
                samples = []
                for _ in range(args.pruning_repeats):
                    s = time.perf_counter()
                    conn.execute(q).fetchall()
                    samples.append((time.perf_counter() - s) * 1000)
                timing[table] = statistics.median(samples)
            out.append(f"  {label:28s} partitions read {touched:>2d}/21   plain p50 {timing['inc_plain']:7.2f} ms"
                       f"   partitioned p50 {timing['inc_part']:7.2f} ms   ratio {timing['inc_part'] / timing['inc_plain']:.2f}")  # fmt: skip
    return out


def _relations(node: dict):
    if "Relation Name" in node:
        yield node["Relation Name"]
    for child in node.get("Plans", []):
        yield from _relations(child)


# --- the report ----------------------------------------------------------------------------------


def gib(b: float) -> str:
    return f"{b / 2**30:,.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=6000, help="patrol members in the province")
    parser.add_argument("--zipf", type=float, default=1.0, help="exponent of members per county by rank")
    parser.add_argument("--uploads-per-member-day", type=float, default=0.15)
    parser.add_argument("--incidents-per-member-year", type=float, default=12)
    parser.add_argument("--years", type=float, default=3)
    parser.add_argument("--fixes-per-patrol", type=int, default=3600)
    parser.add_argument("--fix-interval-s", type=float, default=5)
    parser.add_argument("--crew", type=float, default=2.0, help="members per patrol")
    parser.add_argument("--visits-per-patrol", type=int, default=6)
    parser.add_argument("--segment-fixes", type=int, default=100, help="fixes per patrol_segments row")
    parser.add_argument("--events-per-incident", type=float, default=4)
    parser.add_argument("--photos-per-incident", type=float, default=1.5)
    parser.add_argument("--simplify-tolerance-m", type=float, default=5.0)
    parser.add_argument("--near-border", type=float, default=0.10,
                        help="share of 'patrols near a point' within the radius of a neighbouring county")  # fmt: skip
    parser.add_argument("--shards", type=int, default=32)
    parser.add_argument("--id-sample", type=int, default=200_000, help="ids hashed to sample row-id shards")
    parser.add_argument("--nodes", default="2,4,8")
    parser.add_argument(
        "--sample-patrols", type=int, default=2000, help="patrol rows measured (3,600-vertex lines)"
    )
    parser.add_argument(
        "--sample-rows", type=int, default=100_000, help="rows measured of each smaller table"
    )
    parser.add_argument("--sample-grids", type=int, default=10_000)
    parser.add_argument("--grid-vertices", type=int, default=200)
    parser.add_argument("--sample-users", type=int, default=20_000)
    parser.add_argument("--pruning-incidents", type=int, default=1_000_000)
    parser.add_argument("--pruning-repeats", type=int, default=30)
    parser.add_argument("--no-pruning", action="store_true")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    nodes_list = [int(n) for n in args.nodes.split(",")]

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} vCPU; "
          f"Python {platform.python_version()}; run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")  # fmt: skip
    with connect() as conn:
        print("server:", conn.execute("SELECT version()").fetchone()[0].split(" on ")[0])
        conn.execute(f"DROP DATABASE IF EXISTS {DB}")
        conn.execute(f"CREATE DATABASE {DB}")
    try:
        print(
            "\n1. MEASURED bytes per row (pg_total_relation_size / rows: heap + TOAST + indexes), scratch DB citus_sim"
        )
        started = time.perf_counter()
        sizes = measure_row_bytes(args, rng)
        for table, s in sizes.items():
            print(
                f"  {table:16s} {s['rows']:>9,} rows  {s['bytes'] / 2**20:9.1f} MiB  {s['per_row']:>10,.0f} B/row"
            )
        print(f"  (measured in {time.perf_counter() - started:.0f} s)")
        pruning = [] if args.no_pruning else pruning_stand_in(args, province(args))
    finally:
        with connect() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {DB}")

    members = province(args)
    per_county = {}
    for c, m in members.items():
        rows = county_rows(args, m)
        per_county[c] = (m, rows, sum(rows[t] * sizes[t]["per_row"] for t in rows))
    total_bytes = sum(b for _, _, b in per_county.values())
    reference = sizes["grids"]["bytes"] + sizes["users"]["bytes"] * args.members / args.sample_users
    print(f"\n2. SIMULATED province (synthetic): {len(members)} counties, {args.members:,} members, Zipf s={args.zipf}, "
          f"{args.years:g} years, {args.uploads_per_member_day} uploads/member/day, "
          f"{args.fixes_per_patrol:,} fixes/patrol, {args.incidents_per_member_year:g} incidents/member/year")  # fmt: skip
    print(f"  {'county':7s} {'members':>7s} {'patrols':>11s} {'fixes':>15s} {'incidents':>10s} {'segments':>12s} "
          f"{'GiB':>8s} {'share':>6s}")  # fmt: skip
    for c in SIZE_ORDER:
        m, rows, b = per_county[c]
        print(f"  {c:7s} {m:>7,.0f} {rows['patrols']:>11,.0f} {rows['patrols'] * args.fixes_per_patrol:>15,.0f} "
              f"{rows['incidents']:>10,.0f} {rows['patrol_segments']:>12,.0f} {gib(b):>8s} {b / total_bytes:>6.1%}")  # fmt: skip
    all_rows = {t: sum(r[t] for _, r, _ in per_county.values()) for t in next(iter(per_county.values()))[1]}
    print(f"  {'total':7s} {args.members:>7,} {all_rows['patrols']:>11,.0f} "
          f"{all_rows['patrols'] * args.fixes_per_patrol:>15,.0f} {all_rows['incidents']:>10,.0f} "
          f"{all_rows['patrol_segments']:>12,.0f} {gib(total_bytes):>8s}")  # fmt: skip
    print("  by table (GiB): " + ", ".join(f"{t} {gib(all_rows[t] * sizes[t]['per_row'])}" for t in all_rows))
    print(f"  reference tables copied to every node: grids ({args.sample_grids:,}) + users ({args.members:,}) "
          f"= {reference / 2**20:,.0f} MiB")  # fmt: skip

    shard_of = county_shards(args.shards)
    used = sorted(set(shard_of.values()))
    county_bytes = np.array([per_county[c][2] for c in COAST])
    shard_bytes = np.zeros(args.shards)
    for c, b in zip(COAST, county_bytes, strict=True):
        shard_bytes[shard_of[c]] += b
    shared = {s: [c for c in COAST if shard_of[c] == s] for s in used}
    print(f"\n3. Placement. county → shard by hashtext (as Citus, {args.shards} shards): {len(used)} of {args.shards} "
          f"shards hold data; shards holding 2+ counties: "
          + ("; ".join("+".join(v) for v in shared.values() if len(v) > 1) or "none"))  # fmt: skip
    id_fractions = id_shard_fractions(args.shards, args.id_sample)
    print("  skew = largest node / mean node, by bytes")
    print(f"  {'distribution':64s} " + " ".join(f"{f'N={n}':>7s}" for n in nodes_list))
    round_robin = {n: np.arange(args.shards) % n for n in nodes_list}
    lines = {
        "county, hash 32 shards, round-robin (create_distributed_table)": [],
        "county, then rebalanced by disk size (greedy stand-in)": [],
        "county, every county isolated, largest first (best case)": [],
        "row id (patrol id / incident id), hash 32 shards": [],
    }
    for n in nodes_list:
        rr = round_robin[n]
        lines["county, hash 32 shards, round-robin (create_distributed_table)"].append(
            skew(np.bincount(rr, weights=shard_bytes, minlength=n))
        )
        moved = rebalance_by_size(shard_bytes, rr, n)
        lines["county, then rebalanced by disk size (greedy stand-in)"].append(
            skew(np.bincount(moved, weights=shard_bytes, minlength=n))
        )
        lines["county, every county isolated, largest first (best case)"].append(
            skew(np.bincount(lpt(county_bytes, n), weights=county_bytes, minlength=n))
        )
        lines["row id (patrol id / incident id), hash 32 shards"].append(
            skew(np.bincount(rr, weights=id_fractions * total_bytes, minlength=n)))  # fmt: skip
    for label, values in lines.items():
        print(f"  {label:64s} " + " ".join(f"{v:7.2f}" for v in values))
    largest = county_bytes.max() / total_bytes
    print(f"  largest county holds {largest:.1%} of the bytes: no county-keyed placement beats skew "
          + ", ".join(f"{max(largest * n, 1):.2f} (N={n})" for n in nodes_list))  # fmt: skip
    biggest_node = {n: max(largest, 1 / n) * total_bytes for n in nodes_list}
    print("  bytes on the fullest node, best county placement: "
          + ", ".join(f"N={n} {gib(b)} GiB" for n, b in biggest_node.items()))  # fmt: skip

    print(
        f"\n4. Query fan-out (synthetic mix; 'near' crosses into a neighbour {args.near_border:.0%} of the time)"
    )
    print(f"  {'':46s} {'':>5s} {'county key':>19s} {'row-id key':>19s}")
    print(f"  {'query':46s} {'share':>5s} {'shards':>10s} {'1 shard':>8s} {'shards':>10s} {'1 shard':>8s}")
    by_county = fanout(lambda cs: {shard_of[c] for c in cs}, members, args.shards, args.near_border)
    row_id_scope = {
        "upload a patrol (write)": 1,
        "report an incident (write)": 1,
        "patrol or incident by id": 1,
    }
    summary = {"county": [0.0, 0.0], "row": [0.0, 0.0]}
    for label, fraction, expected, single in by_county:
        row_shards = row_id_scope.get(label, args.shards)
        print(
            f"  {label:46s} {fraction:>5.0%} {expected:>10.2f} {single:>8.0%} {row_shards:>10d} {row_shards == 1:>8.0%}"
        )
        summary["county"][0] += fraction * expected
        summary["county"][1] += fraction * single
        summary["row"][0] += fraction * row_shards
        summary["row"][1] += fraction * (row_shards == 1)
    print(f"  {'the mix (mean shards, share on one shard)':46s} {'':>5s} {summary['county'][0]:>10.2f} "
          f"{summary['county'][1]:>8.0%} {summary['row'][0]:>10.2f} {summary['row'][1]:>8.0%}")  # fmt: skip
    print("  (officer list as the service filters TODAY — an OR with no county term — would read all "
          f"{args.shards} shards; see docs/scale.md)")  # fmt: skip

    if pruning:
        print(f"\n5. STAND-IN on one PostgreSQL (not Citus): incidents LIST-partitioned by county vs one table, "
              f"{args.pruning_repeats} runs each, median")  # fmt: skip
        for line in pruning:
            print(line)


if __name__ == "__main__":
    main()
