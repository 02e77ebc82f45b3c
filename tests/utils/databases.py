"""Databases for tests: emptied back to the reference geodata, or a fresh one of its own for a test
that must migrate from an older revision (both backends)."""

from __future__ import annotations

import uuid
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, text

from patrol import audit
from patrol.db import create_db_engine, make_session_factory
from patrol.models import Base
from patrol.reference import load_reference


def reset_database(engine: Engine) -> None:
    """Only the reference geodata left. The audit trail refuses deletes; the suite empties it as the
    database owner would."""
    with engine.begin() as conn:
        audit.remove_guards(conn)
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
        audit.ensure_head(conn)
        audit.install_guards(conn)
    with make_session_factory(engine)() as session:
        load_reference(session)
        session.commit()


@contextmanager
def fresh_database(backend_name: str, settings, tmp_path, admin_url: str):
    """An empty database (no schema) of the backend under test; yields its engine."""
    if backend_name == "spatialite":
        engine = create_db_engine(f"sqlite:///{tmp_path / 'fresh.sqlite'}", settings=settings)
        try:
            yield engine
        finally:
            engine.dispose()
        return
    name = f"mangrove_fresh_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_db_engine(
        admin.url.set(database=name).render_as_string(hide_password=False), settings=settings
    )
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
