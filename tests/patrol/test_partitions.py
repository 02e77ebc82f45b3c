"""What grows with time is partitioned by month on PostGIS; SpatiaLite keeps whole tables.

Months are created ahead and for whatever the default partition holds; old months are detached,
written out, checked and dropped — and the written file reads back into the table. The migration
that brought the pieces cuts them from each stored patrol's fixes, both ways."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, date, datetime, timedelta

import pytest
from conftest import PG_ADMIN_URL
from sqlalchemy import select, text
from utils.databases import fresh_database
from utils.factories import add_users, auth
from utils.nearby import T0, near, upload, wander
from utils.tracks import gpx

from patrol import migrate
from patrol.accounts import Principal
from patrol.models import PatrolSegment, PatrolVisit, User
from patrol.partitions import PartitionsUnavailable, create_ahead, list_partitions, parse_month
from patrol.patrols import UploadOptions, upload_patrol

postgis_only = pytest.mark.usefixtures("_postgis")


@pytest.fixture
def _postgis(backend):
    if backend[0] != "postgis":
        pytest.skip("partitions are kept on PostGIS only")


def march_walks(client, sessions):
    add_users(sessions, "admin", "member")
    walks = [wander(i, grid="LJ-GQ-03", minutes=20, start=T0 + timedelta(days=i)) for i in range(3)]
    return [upload(client, auth(client, "member"), *w, f"walk-{i}") for i, w in enumerate(walks)], walks


def rows_in(engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f'SELECT count(*) FROM "{table}"')).scalar()


@postgis_only
def test_a_new_database_has_both_tables_partitioned_with_a_default(engine):
    with engine.connect() as conn:
        parts = list_partitions(conn)
    assert {(p.table, p.name) for p in parts if p.month is None} == {
        ("patrol_segments", "patrol_segments_default"),
        ("patrol_visits", "patrol_visits_default"),
    }


@postgis_only
def test_creating_months_moves_what_the_default_held_and_queries_answer_the_same(client, sessions, engine):
    ids, walks = march_walks(client, sessions)
    lon, lat, _ = walks[1]
    before = near(
        client, auth(client, "admin"), float(lon[3]), float(lat[3]), 200, T0, T0 + timedelta(days=5)
    ).json()
    segments = rows_in(engine, "patrol_segments")
    # Earlier tests (a service start) may have made some of these months on the shared database.
    create_ahead(engine, months=2, now=datetime(2026, 12, 3, tzinfo=UTC))
    with engine.connect() as conn:
        names = {p.name for p in list_partitions(conn)}
    assert {"patrol_segments_p202603", "patrol_visits_p202603", "patrol_segments_p202612",
            "patrol_segments_p202701", "patrol_segments_p202702"} <= names  # fmt: skip
    assert rows_in(engine, "patrol_segments_default") == 0 and rows_in(engine, "patrol_visits_default") == 0
    assert rows_in(engine, "patrol_segments_p202603") == segments
    after = near(
        client, auth(client, "admin"), float(lon[3]), float(lat[3]), 200, T0, T0 + timedelta(days=5)
    ).json()
    assert after == before and after["features"]
    # Again: nothing to do.
    assert create_ahead(engine, months=2, now=datetime(2026, 12, 3, tzinfo=UTC)) == []
    # The planner reads only the asked month's partition for a query within it.
    with engine.connect() as conn:
        plan = "\n".join(
            conn.execute(
                text(
                    "EXPLAIN SELECT count(*) FROM patrol_segments WHERE started_at >= '2026-03-02' "
                    "AND started_at < '2026-03-03'"
                )
            ).scalars()
        )
    assert "patrol_segments_p202603" in plan and "p202612" not in plan and "default" not in plan


@postgis_only
def test_archiving_writes_each_old_month_then_drops_it_and_the_file_reads_back(
    client, sessions, engine, configured, tmp_path, capsys
):
    from api.cli import main

    ids, walks = march_walks(client, sessions)
    create_ahead(engine, months=0, now=datetime(2026, 12, 3, tzinfo=UTC))
    segments, visits = rows_in(engine, "patrol_segments_p202603"), rows_in(engine, "patrol_visits_p202603")
    lon, lat, _ = walks[0]
    asked = (float(lon[3]), float(lat[3]), 200, T0, T0 + timedelta(days=5))
    found = near(client, auth(client, "admin"), *asked).json()["features"]
    assert found

    assert main(["partitions", "archive", "--before", "2026-04", "--to", str(tmp_path / "archive")]) == 0
    out = capsys.readouterr().out
    assert "patrol_segments_p202603" in out and "dropped" in out
    with engine.connect() as conn:
        names = {p.name for p in list_partitions(conn)}
    assert "patrol_segments_p202603" not in names and "patrol_visits_p202603" not in names
    assert near(client, auth(client, "admin"), *asked).json()["features"] == []
    manifest = json.loads((tmp_path / "archive" / "patrol_segments_p202603.json").read_text())
    assert manifest["rows"] == segments and manifest["month"] == "2026-03"
    data = tmp_path / "archive" / "patrol_segments_p202603.csv.gz"
    with gzip.open(data, "rt") as f:
        assert sum(1 for _ in f) == segments + 1  # a header and the rows
    import hashlib

    assert hashlib.sha256(data.read_bytes()).hexdigest() == manifest["sha256"]
    with sessions() as session:
        from patrol.models import AuditEntry

        entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "partition.archive")).all()
    assert {e.object_id for e in entries} >= {"patrol_segments_p202603", "patrol_visits_p202603"}
    assert json.loads((tmp_path / "archive" / "patrol_visits_p202603.json").read_text())["rows"] == visits

    # Restoring: the month again, then PostgreSQL's COPY reads the file back.
    create_ahead(engine, months=0, now=datetime(2026, 3, 1, tzinfo=UTC))
    with engine.begin() as conn:
        cursor = conn.connection.driver_connection.cursor()
        with cursor.copy("COPY patrol_segments FROM STDIN WITH (FORMAT csv, HEADER)") as copy:
            copy.write(gzip.decompress(data.read_bytes()))
    assert near(client, auth(client, "admin"), *asked).json()["features"] == found


@pytest.mark.parametrize(
    "args, message",
    [
        (["partitions", "archive", "--before", "2026-13", "--to", "x"], "YYYY-MM"),
        (["partitions", "archive", "--before", "2999-01", "--to", "x"], "future"),
        (["partitions", "create", "--ahead", "-1"], "--ahead"),
    ],
)
def test_bad_partition_commands_are_refused_and_change_nothing(configured, args, message, capsys):
    from api.cli import main

    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_spatialite_says_it_keeps_whole_tables_and_changes_nothing(
    backend, engine, configured, capsys, tmp_path
):
    from api.cli import main

    if backend[0] != "spatialite":
        pytest.skip("the SpatiaLite answer")
    with engine.connect() as conn:
        tables = set(conn.execute(text("SELECT name FROM sqlite_master")).scalars())
        with pytest.raises(PartitionsUnavailable, match="SpatiaLite"):
            list_partitions(conn)
    for args in (["partitions", "list"], ["partitions", "create"],
                 ["partitions", "archive", "--before", "2026-01", "--to", str(tmp_path / "a")]):  # fmt: skip
        assert main(args) == 2, args
        assert "SpatiaLite" in capsys.readouterr().err
    with engine.connect() as conn:
        assert set(conn.execute(text("SELECT name FROM sqlite_master")).scalars()) == tables
    assert not (tmp_path / "a").exists()
    assert create_ahead(engine) == []  # what the service does at start: nothing


def test_a_schema_before_partitioning_is_named_and_left_alone(backend, tmp_path):
    name, settings, _ = backend
    if name != "postgis":
        pytest.skip("PostGIS: SpatiaLite has no partitions at any revision")
    with fresh_database(name, settings, tmp_path, PG_ADMIN_URL) as engine:
        migrate.upgrade(engine, "0009")
        with engine.connect() as conn, pytest.raises(PartitionsUnavailable, match="mangrove db upgrade"):
            list_partitions(conn)
        assert create_ahead(engine) == []
        with pytest.raises(PartitionsUnavailable):
            create_ahead(engine, strict=True)
        assert migrate.current_revision(engine) == "0009"


def test_the_migration_cuts_pieces_from_stored_fixes_and_moves_visits_both_ways(backend, tmp_path):
    """Pieces written at upload == pieces the migration cuts from the stored fixes; the visits
    survive the move into (and out of) the partitioned table."""
    from utils.factories import PASSWORD, STANDARD_USERS

    from patrol.accounts import create_user
    from patrol.db import make_session_factory
    from patrol.reference import load_reference

    name, settings, _ = backend
    with fresh_database(name, settings, tmp_path, PG_ADMIN_URL) as engine:
        migrate.upgrade(engine)
        sessions = make_session_factory(engine)
        with sessions() as session:
            load_reference(session)
            side, grants = STANDARD_USERS["member"]
            create_user(session, username="member", password=PASSWORD, side=side, grants=grants)
            session.commit()
            principal = Principal.of(session.scalar(select(User).where(User.username == "member")))
            for i in range(2):
                path = tmp_path / f"walk-{i}.gpx"
                path.write_bytes(
                    gpx(*wander(20 + i, grid="LJ-GQ-03", minutes=25, start=T0 + timedelta(days=40 * i)))
                )
                upload_patrol(session, path, filename=path.name, principal=principal, options=UploadOptions(),
                              settings=settings.patrols)  # fmt: skip
            session.commit()

        def pieces():
            with sessions() as session:
                return [
                    (r.patrol_id, r.seq, r.started_at, r.ended_at, r.fix_count, bytes(r.times))
                    for r in session.scalars(
                        select(PatrolSegment).order_by(PatrolSegment.patrol_id, PatrolSegment.seq)
                    )
                ]

        def visits():
            with sessions() as session:
                return session.execute(
                    select(
                        PatrolVisit.id, PatrolVisit.patrol_id, PatrolVisit.grid_id, PatrolVisit.distance_m
                    ).order_by(PatrolVisit.id)
                ).all()

        written, visited = pieces(), visits()
        assert written and visited
        migrate.downgrade(engine, "0009")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM patrol_visits")).scalar() == len(visited)
        migrate.upgrade(engine)
        again = pieces()
        assert len(again) == len(written)
        for new, old in zip(again, written):
            assert new == old, (new[:5], old[:5])
        assert visits() == visited
        if name == "postgis":
            with engine.connect() as conn:
                months = {p.month for p in list_partitions(conn) if p.table == "patrol_segments"}
                assert {date(2026, 3, 1), date(2026, 4, 1)} <= months
                assert conn.execute(text("SELECT count(*) FROM patrol_segments_default")).scalar() == 0
            # New visits still get fresh ids after the move.
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO patrol_visits (patrol_id, seq, distance_m) VALUES (1, 99, 1)"))
                assert (
                    conn.execute(text("SELECT max(id) FROM patrol_visits")).scalar()
                    == max(v[0] for v in visited) + 1
                )


def test_months_are_written_yyyy_mm():
    assert parse_month("2025-06") == date(2025, 6, 1)
    for bad in ("2025-6", "2025-00", "June", "2025-06-01"):
        with pytest.raises(ValueError, match="YYYY-MM"):
            parse_month(bad)
