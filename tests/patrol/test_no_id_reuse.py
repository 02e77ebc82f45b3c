"""Ids in links and tokens are never given to another object, on both backends: a deleted
patrol's replay link never shows a later patrol. SQLite needs AUTOINCREMENT for that (it would
reuse max + 1); migration 0008 rebuilds the existing tables with it, keeping every row, geometry
column, spatial index and foreign key."""

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from conftest import PG_ADMIN_URL
from sqlalchemy import func, select, text
from utils.databases import fresh_database
from utils.factories import add_users, auth
from utils.tracks import crossing, gpx

from patrol import migrate
from patrol.accounts import RoleGrant, create_user
from patrol.models import Role, User

MEMBER = [RoleGrant(Role.PATROL_MEMBER, team="LJ-T-GQ")]
NEVER_REUSED = ("users", "patrols", "joint_cases", "incidents", "incident_photos")


def upload(client, headers, name: str, step: int):
    lon, lat, times, _ = crossing("LJ-GQ-03")
    response = client.post(
        "/api/v1/patrols",
        files={"file": (name, gpx(lon[::step], lat[::step], times[::step]))},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_a_deleted_patrols_id_is_never_given_to_another(client, sessions):
    add_users(sessions, "member")
    member = auth(client, "member")
    upload(client, member, "first.gpx", 2)
    newest = upload(client, member, "second.gpx", 3)
    assert client.delete(f"/api/v1/patrols/{newest}", headers=member).status_code == 204
    again = upload(client, member, "third.gpx", 4)
    assert again > newest
    assert client.get(f"/maps/replay/patrol/{newest}", headers=member).status_code == 404


def test_a_deleted_users_id_is_never_given_to_another(sessions):
    """A user's id is in their tokens and session cookie."""
    with sessions() as session:
        gone = create_user(session, username="gone", password="a long password", side="GD-LJ", grants=MEMBER)
        session.commit()
        session.delete(gone)
        session.commit()
        after = create_user(
            session, username="after", password="a long password", side="GD-LJ", grants=MEMBER
        )
        session.commit()
        assert after.id > gone.id


def revision_before_0008() -> str:
    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS))
    return ScriptDirectory.from_config(config).get_revision("0008").down_revision


def insert_old_rows(conn) -> None:
    """A patrol (with its line, fixes and members), an incident with a photo in a joint case, and
    a second patrol deleted before the upgrade; written as SQL of the schema before 0008, in an
    empty database (every id starts at 1)."""
    point = "ST_GeomFromText('POINT(109.81 21.50)', 4326)"
    line = "ST_GeomFromText('MULTILINESTRING((109.80 21.49, 109.82 21.51))', 4326)"
    for sql in (
        "INSERT INTO sides (code, name_zh, name_en) VALUES ('GD-LJ', '广东·廉江', 'Lianjiang')",
        "INSERT INTO incident_categories (code, label_zh, label_en, sort_order, active) "
        "VALUES ('rubbish', '垃圾', 'Rubbish', 1, true)",
        "INSERT INTO users (username, display_name, side, password_hash, is_active, created_at) "
        "VALUES ('member', 'm', 'GD-LJ', 'x', true, '2026-03-01')",
        *(
            "INSERT INTO patrols (side, uploaded_by, uploaded_at, file_sha256, source_name, source_format, "
            "datum, transport, fix_count, flagged_count, distance_m, outside_distance_m, summary, geom) VALUES "
            f"('GD-LJ', 1, '2026-03-01', 'sha-{i}', 't.gpx', 'GPX', 'wgs84', 'foot', 2, 0, 2900, 0, '{{}}', {line})"
            for i in (1, 2)
        ),
        "INSERT INTO patrol_members (patrol_id, user_id) VALUES (1, 1)",
        "INSERT INTO patrol_fixes (patrol_id, fix_count, data) VALUES (1, 2, '\\x00')",
        "INSERT INTO joint_cases (title, status, opened_by, opened_at, version) "
        "VALUES ('case', 'open', 1, '2026-03-01', 1)",
        "INSERT INTO incidents (category, severity, level, description, observed_at, reported_at, "
        "reporter_id, patrol_id, lon, lat, geom, grid_match, side, border_distance_m, status, joint_case_id, "
        "accept_due, resolve_due, updated_at, version) VALUES ('rubbish', 'low', 'village', 'd', "
        f"'2026-03-01', '2026-03-01', 1, 1, 109.81, 21.50, {point}, 'none', 'GD-LJ', 5000, 'reported', 1, "
        "'2026-03-01', '2026-03-03', '2026-03-01', 1)",
        "INSERT INTO incident_photos (incident_id, path, content_type, size_bytes, width, height, sha256, "
        "uploaded_by, uploaded_at) VALUES (1, 'p.jpg', 'image/jpeg', 1, 1, 1, 'h', 1, '2026-03-01')",
        "DELETE FROM patrols WHERE id = 2",  # before the upgrade: this id may still come back once
    ):
        conn.execute(text(sql))


def bbox_ids(conn, backend_name: str, table: str) -> list[int]:
    if backend_name == "spatialite":
        where = (
            f"id IN (SELECT rowid FROM SpatialIndex WHERE f_table_name = '{table}' "
            "AND search_frame = BuildMbr(109.7, 21.4, 109.9, 21.6, 4326))"
        )
    else:
        where = "geom && ST_MakeEnvelope(109.7, 21.4, 109.9, 21.6, 4326)"
    return [r[0] for r in conn.execute(text(f"SELECT id FROM {table} WHERE {where} ORDER BY id"))]


def test_the_migration_keeps_rows_geometry_indexes_and_foreign_keys(backend, tmp_path):
    name, settings, _ = backend
    with fresh_database(name, settings, tmp_path, PG_ADMIN_URL) as engine:
        migrate.upgrade(engine, revision_before_0008())
        with engine.begin() as conn:
            insert_old_rows(conn)
        migrate.upgrade(engine)
        with engine.begin() as conn:
            assert conn.execute(text("SELECT count(*) FROM patrol_fixes")).scalar() == 1
            assert conn.execute(text("SELECT count(*) FROM patrol_members")).scalar() == 1
            assert conn.execute(text("SELECT patrol_id, joint_case_id FROM incidents")).one() == (1, 1)
            assert conn.execute(text("SELECT incident_id FROM incident_photos")).scalar() == 1
            assert bbox_ids(conn, name, "patrols") == [1] and bbox_ids(conn, name, "incidents") == [1]
            length = conn.execute(text("SELECT ST_Length(geom) FROM patrols WHERE id = 1")).scalar()
            assert length == pytest.approx(0.028284, abs=1e-5)
            if name == "spatialite":
                assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
                assert conn.execute(text("PRAGMA foreign_key_check")).all() == []
                for table, column in (("patrols", "geom"), ("incidents", "geom")):
                    assert (
                        conn.execute(text(f"SELECT CheckSpatialIndex('{table}', '{column}')")).scalar() == 1
                    )
                for table in NEVER_REUSED:
                    create = conn.execute(
                        text(f"SELECT sql FROM sqlite_master WHERE name = '{table}'")
                    ).scalar()
                    assert "AUTOINCREMENT" in create, table
            # Foreign keys still act: deleting the patrol removes its fixes, the incident keeps going.
            conn.execute(text("DELETE FROM patrol_members WHERE patrol_id = 1"))
            conn.execute(text("DELETE FROM patrols WHERE id = 1"))
            assert conn.execute(text("SELECT count(*) FROM patrol_fixes")).scalar() == 0
            assert conn.execute(text("SELECT patrol_id FROM incidents")).scalar() is None
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO patrols (side, uploaded_by, uploaded_at, file_sha256, source_name, source_format, "
                    "datum, transport, fix_count, flagged_count, distance_m, outside_distance_m, summary) VALUES "
                    "('GD-LJ', 1, '2026-03-02', 'sha-3', 't.gpx', 'GPX', 'wgs84', 'foot', 2, 0, 1, 0, '{}')"
                )
            )
            assert conn.execute(text("SELECT max(id) FROM patrols")).scalar() > 1  # 1 is never given again
        migrate.downgrade(engine, revision_before_0008())  # and back, for a roll-back
        migrate.upgrade(engine)
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(User)).scalar() == 1
