"""Engine factory: one URL setting picks SpatiaLite (embedded file, the default) or PostGIS."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import shapely
from geoalchemy2.admin.dialects.sqlite import init_spatialite
from sqlalchemy import Engine, LargeBinary, bindparam, create_engine, event, func
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from patrol.models import SRID
from patrol.settings import Settings, get_settings


def sqlite_driver():
    """The DB-API module used for SQLite.

    Many CPython builds (the pyenv ones here included) lack ``enable_load_extension``, without which
    mod_spatialite cannot be loaded; pysqlite3 ships its own SQLite with extension loading enabled.
    """
    if hasattr(sqlite3.Connection, "enable_load_extension"):
        return sqlite3
    try:
        from pysqlite3 import dbapi2
    except ImportError as exc:  # pragma: no cover - depends on the platform
        raise RuntimeError(
            "This Python's sqlite3 cannot load extensions and pysqlite3 is not installed; "
            "install pysqlite3-binary or use a Python built with loadable SQLite extensions"
        ) from exc
    return dbapi2


def is_sqlite(engine_or_url) -> bool:
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(str(engine_or_url))
    return url.get_backend_name() == "sqlite"


def create_db_engine(url: str | None = None, settings: Settings | None = None) -> Engine:
    settings = settings or get_settings()
    url = url or settings.storage.resolved_database_url()
    if is_sqlite(url):
        return _spatialite_engine(
            url, settings.storage.spatialite_library, settings.storage.db_pool_timeout_s
        )
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
        pool_timeout=settings.storage.db_pool_timeout_s,  # then 503, not a request left hanging
        connect_args=_postgres_session(settings),
    )


def _postgres_session(settings: Settings) -> dict:
    """Set on every PostgreSQL connection the service opens: no statement runs longer than
    MANGROVE_DB_STATEMENT_TIMEOUT_S (a runaway query is cancelled, its connection and locks freed)."""
    milliseconds = round(settings.storage.db_statement_timeout_s * 1000)
    return {"options": f"-c statement_timeout={milliseconds}"} if milliseconds else {}


def _spatialite_engine(url: str, library: str, pool_timeout_s: float = 30) -> Engine:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise ValueError("SpatiaLite needs a database file; in-memory databases are not supported")
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        module=sqlite_driver(),
        connect_args={"check_same_thread": False, "timeout": 30},
        pool_timeout=pool_timeout_s,
    )

    @event.listens_for(engine, "connect")
    def _prepare(dbapi_conn, _record):
        dbapi_conn.enable_load_extension(True)
        dbapi_conn.load_extension(library)
        dbapi_conn.enable_load_extension(False)  # nothing else may load native code later
        # WAL lets the map pages read while an upload writes; foreign keys are off by default.
        dbapi_conn.execute("PRAGMA journal_mode=WAL")
        dbapi_conn.execute("PRAGMA synchronous=NORMAL")
        dbapi_conn.execute("PRAGMA foreign_keys=ON")
        # WGS84 mode: only the WGS84-related SRIDs (incl. UTM); the full EPSG load takes seconds.
        init_spatialite(dbapi_conn, transaction=True, init_mode="WGS84")

    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def geometry_from_wkb(value):
    """A geometry value for inserts, sent as WKB. GeoAlchemy2 sends shapes to SpatiaLite as EWKT
    text, which SpatiaLite parses ~100× slower than WKB: 0.19 s for a 36,000-vertex patrol line.
    ``value`` is a shapely geometry, or a bind parameter name for executemany rows of WKB bytes."""
    if isinstance(value, str):
        return func.ST_GeomFromWKB(bindparam(value, type_=LargeBinary), SRID)
    return func.ST_GeomFromWKB(shapely.to_wkb(value), SRID)
