"""Monthly partitions of the tables that grow with time, on PostGIS.

``patrol_segments`` (by ``started_at``) and ``patrol_visits`` (by ``exited_at``: a month's effort
query then reads the months it asks for and only the few later visits that began before its end)
are declared ``PARTITION BY RANGE``, each with a DEFAULT partition that takes whatever no month
holds yet (and visits without times). Months are created ahead — at every start of the service and
by ``mangrove partitions create`` — so the default stays small; creating a month moves the rows
the default held for it. Old months are detached, written to a gzipped CSV (PostgreSQL's own COPY,
geometry as hex EWKB: ``COPY … FROM`` reads it back) with a manifest, checked, then dropped.

SpatiaLite keeps the same tables whole (a station laptop holds a county's years easily): every
operation here says so and changes nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

from patrol import audit

# table → the time column it is partitioned by
PARTITIONED = {"patrol_segments": "started_at", "patrol_visits": "exited_at"}
DEFAULT_AHEAD_MONTHS = 3
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class PartitionsUnavailable(Exception):
    """The database has no partitions to maintain (SpatiaLite, or a schema before them)."""


@dataclass(frozen=True)
class Partition:
    table: str  # the partitioned table
    name: str
    month: date | None  # None: the default partition
    rows: int  # PostgreSQL's estimate (exact after ANALYZE)
    bytes: int


def parse_month(raw: str) -> date:
    """``YYYY-MM`` → the first day of that month (ValueError naming the problem otherwise)."""
    match = _MONTH.match(raw.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"a month is written YYYY-MM (e.g. 2025-06), not {raw!r}")
    return date(int(match.group(1)), int(match.group(2)), 1)


def next_month(month: date) -> date:
    return date(month.year + (month.month == 12), month.month % 12 + 1, 1)


def partition_name(table: str, month: date) -> str:
    return f"{table}_p{month.year:04d}{month.month:02d}"


def _check_partitioned(conn: Connection) -> None:
    if conn.dialect.name != "postgresql":
        raise PartitionsUnavailable(
            "this database is SpatiaLite, which keeps patrol segments and visits in whole tables: "
            "partitions are kept only on PostGIS; nothing was changed"
        )
    found = set(
        conn.execute(
            text(
                "SELECT c.relname FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
                "WHERE c.relnamespace = 'public'::regnamespace"
            )
        ).scalars()
    )
    missing = sorted(set(PARTITIONED) - found)
    if missing:
        raise PartitionsUnavailable(
            f"this database has no partitioned {', '.join(missing)} (its schema is older than "
            "partitioning: run `mangrove db upgrade` first); nothing was changed"
        )


def list_partitions(conn: Connection) -> list[Partition]:
    _check_partitioned(conn)
    rows = conn.execute(
        text(
            "SELECT parent.relname, child.relname, pg_get_expr(child.relpartbound, child.oid), "
            "greatest(child.reltuples, 0)::bigint, pg_total_relation_size(child.oid) "
            "FROM pg_inherits i JOIN pg_class parent ON parent.oid = i.inhparent "
            "JOIN pg_class child ON child.oid = i.inhrelid "
            "WHERE parent.relname = ANY(:tables) ORDER BY parent.relname, child.relname"
        ),
        {"tables": list(PARTITIONED)},
    ).all()
    found = []
    for table, name, bound, estimate, size in rows:
        match = re.search(r"FROM \('(\d{4})-(\d{2})-01", bound or "")
        month = date(int(match.group(1)), int(match.group(2)), 1) if match else None
        found.append(Partition(table, name, month, int(estimate), int(size)))
    return found


def create_months(conn: Connection, first: date, last: date) -> list[str]:
    """Every month from ``first`` to ``last`` (inclusive) for each partitioned table; the names
    of the partitions created (existing ones are left alone). The caller's transaction."""
    _check_partitioned(conn)
    existing = {(p.table, p.month) for p in list_partitions(conn)}
    created = []
    month = date(first.year, first.month, 1)
    while month <= last:
        for table, column in PARTITIONED.items():
            if (table, month) not in existing:
                _create_month(conn, table, column, month)
                created.append(partition_name(table, month))
        month = next_month(month)
    return created


def _create_month(conn: Connection, table: str, column: str, month: date) -> None:
    """A month's partition, taking over what the default partition held of that month: built
    beside the table, filled, then attached (attaching checks the default holds none of it)."""
    name = partition_name(table, month)
    lo, hi = month.isoformat(), next_month(month).isoformat()
    bounds = {"lo": f"{lo} 00:00:00+00", "hi": f"{hi} 00:00:00+00"}
    conn.exec_driver_sql(f'CREATE TABLE "{name}" (LIKE "{table}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)')
    conn.execute(
        text(
            f'WITH moved AS (DELETE FROM "{table}_default" WHERE {column} >= CAST(:lo AS timestamptz) '
            f"AND {column} < CAST(:hi AS timestamptz) RETURNING *) "
            f'INSERT INTO "{name}" SELECT * FROM moved'
        ),
        bounds,
    )
    conn.exec_driver_sql(
        f"ALTER TABLE \"{table}\" ATTACH PARTITION \"{name}\" FOR VALUES FROM ('{bounds['lo']}') TO ('{bounds['hi']}')"
    )


def create_ahead(
    engine: Engine, *, months: int = DEFAULT_AHEAD_MONTHS, now: datetime | None = None, strict: bool = False
) -> list[str]:
    """This month, the next ``months``, and every month the default partitions hold rows of (a
    demo season, an old track uploaded late), for each partitioned table: what the service does at
    each start. Without partitions (SpatiaLite, an older schema) nothing is done, and ``strict``
    says why by raising ``PartitionsUnavailable``."""
    if engine.dialect.name != "postgresql" and not strict:
        return []
    today = (now or datetime.now(UTC)).date()
    first = date(today.year, today.month, 1)
    last = first
    for _ in range(months):
        last = next_month(last)
    with engine.begin() as conn:
        try:
            _check_partitioned(conn)
        except PartitionsUnavailable:
            if strict:
                raise
            return []
        created = []
        for month in sorted(_months_in_defaults(conn)):
            created += create_months(conn, month, month)
        return created + create_months(conn, first, last)


def _months_in_defaults(conn: Connection) -> set[date]:
    months: set[date] = set()
    for table, column in PARTITIONED.items():
        rows = conn.exec_driver_sql(
            f"SELECT DISTINCT date_trunc('month', {column} AT TIME ZONE 'UTC') FROM \"{table}_default\" "
            f"WHERE {column} IS NOT NULL"
        ).scalars()
        months |= {date(m.year, m.month, 1) for m in rows}
    return months


@dataclass(frozen=True)
class Archived:
    partition: str
    rows: int
    path: Path
    sha256: str


def archive_before(
    engine: Engine, before: date, directory: Path, *, drop: bool = True, principal=None
) -> list[Archived]:
    """Detach every month before ``before``, write each to ``directory`` and (``drop``) drop it.

    One partition at a time, each in its own transaction: the file is written and its rows counted
    against the table before the table is dropped; a failure leaves that month attached."""
    with engine.connect() as conn:
        months = [p for p in list_partitions(conn) if p.month is not None and p.month < before]
    if not months:
        return []
    directory.mkdir(parents=True, exist_ok=True)
    done = []
    for part in months:
        path = directory / f"{part.name}.csv.gz"
        with engine.begin() as conn:
            conn.exec_driver_sql(f'ALTER TABLE "{part.table}" DETACH PARTITION "{part.name}"')
            expected = conn.exec_driver_sql(f'SELECT count(*) FROM "{part.name}"').scalar_one()
            written, digest = _copy_out(conn, part.name, path)
            if written != expected:
                raise RuntimeError(f"{part.name}: wrote {written} rows of {expected}; nothing dropped")
            if drop:
                conn.exec_driver_sql(f'DROP TABLE "{part.name}"')
            # Rows leave the live database: the trail says which, where to, and the file's hash.
            with Session(bind=conn) as session:
                audit.record(
                    session, principal, "partition.archive", "partition", part.name,
                    {"rows": [written, None], "file": [str(path), None], "sha256": [digest, None],
                     "dropped": [drop, None]},
                )  # fmt: skip
        manifest = {
            "table": part.table,
            "partition": part.name,
            "month": part.month.isoformat()[:7],
            "rows": written,
            "file": path.name,
            "sha256": digest,
            "format": "PostgreSQL COPY CSV with a header; geometry as hex EWKB",
            "restore": f"\\copy {part.table} FROM PROGRAM 'gzip -dc {path.name}' WITH (FORMAT csv, HEADER)",
            "archived_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        (directory / f"{part.name}.json").write_text(json.dumps(manifest, indent=2) + "\n")
        done.append(Archived(part.name, written, path, digest))
    return done


def _copy_out(conn: Connection, table: str, path: Path) -> tuple[int, str]:
    """COPY the table into a gzipped CSV; its data rows and the file's SHA-256."""
    cursor = conn.connection.driver_connection.cursor()
    lines = 0
    tmp = path.with_suffix(path.suffix + ".part")
    with gzip.open(tmp, "wb", compresslevel=6) as out:
        with cursor.copy(f'COPY "{table}" TO STDOUT WITH (FORMAT csv, HEADER)') as copy:
            for chunk in copy:
                out.write(chunk)
                lines += bytes(chunk).count(b"\n")
    tmp.replace(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    # Data rows: lines less the header (no field holds a newline: bytea and EWKB are hex).
    return lines - 1, digest
