"""Shared by the fault tests: a database made ready for a service subprocess, and the check that
every acknowledged upload is stored whole."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from patrol import migrate
from patrol.db import create_db_engine, make_session_factory, sqlite_driver
from patrol.models import AuditEntry, Patrol, PatrolFixes, PatrolMember, PatrolVisit
from patrol.reference import load_reference
from patrol.settings import AuthSettings, Settings, StorageSettings
from utils.factories import add_users


def settings_for(url: str, data_dir: Path) -> Settings:
    settings = Settings()
    settings.storage = StorageSettings(data_dir=data_dir, database_url=url)
    settings.auth = AuthSettings(secret_key="fault-test-secret-" + "x" * 32)
    return settings


def prepare_database(url: str, data_dir: Path, *users: str) -> None:
    """Migrated, with the reference geodata and the given standard test users."""
    engine = create_db_engine(url, settings=settings_for(url, data_dir))
    try:
        migrate.upgrade(engine)
        sessions = make_session_factory(engine)
        with sessions() as session:
            load_reference(session)
            session.commit()
        add_users(sessions, *users)
    finally:
        engine.dispose()


def upload_problems(session, acknowledged: dict[str, int]) -> list[str]:
    """What is wrong with the stored uploads: an acknowledged file (name → patrol id) missing or
    incomplete (its row, fixes blob, visits, members and its one audit entry),
    or a file stored twice. Empty when all is well."""
    problems = []
    names = Counter(session.scalars(select(Patrol.source_name)))
    problems += [f"{name} is stored {n} times" for name, n in names.items() if n > 1]
    for name, patrol_id in sorted(acknowledged.items()):
        patrol = session.get(Patrol, patrol_id)
        if patrol is None or patrol.source_name != name:
            problems.append(f"{name}: acknowledged as patrol {patrol_id}, which is not stored")
            continue
        fixes = session.get(PatrolFixes, patrol_id)
        if fixes is None:
            problems.append(f"{name}: patrol {patrol_id} has no fixes")
        else:
            with np.load(io.BytesIO(fixes.data)) as data:
                if len(data["lon"]) != patrol.fix_count:
                    problems.append(f"{name}: {len(data['lon'])} fixes stored of {patrol.fix_count}")
        visits = session.scalar(select(func.count()).where(PatrolVisit.patrol_id == patrol_id))
        expected = sum(g["visits"] for g in patrol.summary["grids"])
        if visits != expected:
            problems.append(f"{name}: {visits} visits stored of {expected}")
        if not session.scalar(select(func.count()).where(PatrolMember.patrol_id == patrol_id)):
            problems.append(f"{name}: patrol {patrol_id} has no members")
        entry = select(func.count()).where(
            AuditEntry.object_type == "patrol", AuditEntry.object_id == str(patrol_id)
        )
        if session.scalar(entry) != 1:
            problems.append(f"{name}: patrol {patrol_id} has {session.scalar(entry)} audit entries, not 1")
    return problems


def hold_write_lock(engine):
    """A raw connection to ``engine``'s SQLite file inside a write transaction, as another
    writer in the middle of its work (``rollback()`` it to let go; usable from any thread)."""
    conn = sqlite_driver().connect(engine.url.database, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    return conn
