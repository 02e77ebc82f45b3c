"""Engine factory: one URL setting picks SpatiaLite (embedded file, the default) or PostGIS.

Surviving faults, per backend:

PostGIS — a connection is tested before each use (``pool_pre_ping``); one that fails invalidates
the whole pool, so after a server restart every old connection is replaced and the service
recovers by itself. While the server is down, connecting fails within ``PG_CONNECT_TIMEOUT_S``
and the request answers 503 (``api.problems``).

SpatiaLite — WAL lets readers go on while one writer writes. Writers take turns: a writer that
finds the write lock taken waits up to ``SQLITE_BUSY_TIMEOUT_S`` (then 503, never "database is
locked" in a page). The driver's own transaction handling is kept on purpose: it sends BEGIN
(deferred) just before a transaction's first INSERT, UPDATE or DELETE, and runs reads before that
outside any transaction. So every write transaction starts with a write, which takes the write
lock at once, waiting for it with the busy timeout; a transaction never holds a read snapshot that
it later has to upgrade, the case where SQLite gives up at once with SQLITE_BUSY_SNAPSHOT instead
of waiting (``tests/faults/test_concurrency.py`` shows it). Write paths compute everything first
and write last, so the lock is held for milliseconds. ``synchronous=FULL``: every commit is on
disk before the upload is acknowledged, even if the station laptop loses power at once (NORMAL
would be enough for a process crash, not for a power cut); bench/bench_reliability.py measures
the cost.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import shapely
from geoalchemy2.admin.dialects.sqlite import init_spatialite
from sqlalchemy import Engine, LargeBinary, bindparam, create_engine, event, func
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from patrol.errors import InvalidRequest
from patrol.models import SRID
from patrol.settings import Settings, get_settings

log = logging.getLogger("mangrove.db")


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


SQLITE_BUSY_TIMEOUT_S = 30.0
PG_CONNECT_TIMEOUT_S = 5


def create_db_engine(
    url: str | None = None,
    settings: Settings | None = None,
    *,
    busy_timeout_s: float = SQLITE_BUSY_TIMEOUT_S,
) -> Engine:
    settings = settings or get_settings()
    url = url or settings.storage.resolved_database_url()
    if is_sqlite(url):
        engine = _spatialite_engine(
            url, settings.storage.spatialite_library, busy_timeout_s, settings.storage.db_pool_timeout_s
        )
    else:
        engine = create_engine(
            url,
            pool_pre_ping=True,
            pool_size=settings.storage.db_pool_size,
            max_overflow=settings.storage.db_max_overflow,
            pool_timeout=settings.storage.db_pool_timeout_s,  # then 503, not a request left hanging
            connect_args=_postgres_session(settings),
        )
    event.listen(engine, "before_cursor_execute", refuse_nul_text)
    return engine


def refuse_nul_text(conn, cursor, statement, parameters, context, executemany) -> None:
    """The backstop behind the API's control-character check: text holding a NUL byte, which
    PostgreSQL cannot store (it failed as a 500), is refused as bad input on both backends.
    ``parameters`` is one set (a dict or a tuple) or many (a list of them); written as plain loops
    because bulk inserts pass tens of thousands of rows."""
    if not parameters:
        return
    for item in parameters.values() if parameters.__class__ is dict else parameters:
        kind = item.__class__
        if kind is str:
            if "\x00" in item:
                _refuse_nul()
        elif kind is dict or kind is tuple or kind is list:
            for value in item.values() if kind is dict else item:
                if value.__class__ is str:
                    if "\x00" in value:
                        _refuse_nul()
                elif value.__class__ is list and any(v.__class__ is str and "\x00" in v for v in value):
                    _refuse_nul()  # an array parameter (PostgreSQL)


def _refuse_nul() -> None:
    raise InvalidRequest("text holding a NUL character (U+0000) cannot be stored; remove it")


def _postgres_session(settings: Settings) -> dict:
    """Set on every PostgreSQL connection the service opens: no statement runs longer than
    MANGROVE_DB_STATEMENT_TIMEOUT_S (a runaway query is cancelled, its connection and locks freed)."""
    milliseconds = round(settings.storage.db_statement_timeout_s * 1000)
    # A server that does not answer at all (not refusing: gone from the network) fails fast.
    args: dict = {"connect_timeout": PG_CONNECT_TIMEOUT_S}
    if milliseconds:
        args["options"] = f"-c statement_timeout={milliseconds}"
    return args


def _spatialite_engine(url: str, library: str, busy_timeout_s: float, pool_timeout_s: float = 30) -> Engine:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise ValueError("SpatiaLite needs a database file; in-memory databases are not supported")
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        module=sqlite_driver(),
        # timeout: the busy timeout, how long a writer waits for another's write lock.
        connect_args={"check_same_thread": False, "timeout": busy_timeout_s},
        pool_timeout=pool_timeout_s,
    )

    @event.listens_for(engine, "connect")
    def _prepare(dbapi_conn, _record):
        dbapi_conn.enable_load_extension(True)
        dbapi_conn.load_extension(library)
        dbapi_conn.enable_load_extension(False)  # nothing else may load native code later
        # WAL lets the map pages read while an upload writes; FULL makes each commit durable
        # before it is acknowledged (see the module docstring); foreign keys are off by default.
        dbapi_conn.execute("PRAGMA journal_mode=WAL")
        dbapi_conn.execute("PRAGMA synchronous=FULL")
        dbapi_conn.execute("PRAGMA foreign_keys=ON")
        # WGS84 mode: only the WGS84-related SRIDs (incl. UTM); the full EPSG load takes seconds.
        init_spatialite(dbapi_conn, transaction=True, init_mode="WGS84")

    return engine


class ServiceSession(Session):
    """A session whose ``close()`` survives a connection that died after the work was done.

    Closing rolls back whatever is still open; if the server cut the connection meanwhile (a
    restart), that rollback fails although the request has already been answered. The connection
    is then discarded instead: the server has rolled back anything uncommitted already, and both
    PostgreSQL and SQLite drop uncommitted work with the connection, so nothing is lost or kept."""

    def close(self) -> None:
        try:
            super().close()
        except DBAPIError as exc:
            log.warning("discarding a database connection that failed while closing: %s", exc.orig)
            self.invalidate()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, class_=ServiceSession, expire_on_commit=False)


def geometry_from_wkb(value):
    """A geometry value for inserts, sent as WKB. GeoAlchemy2 sends shapes to SpatiaLite as EWKT
    text, which SpatiaLite parses ~100× slower than WKB: 0.19 s for a 36,000-vertex patrol line.
    ``value`` is a shapely geometry, or a bind parameter name for executemany rows of WKB bytes."""
    if isinstance(value, str):
        return func.ST_GeomFromWKB(bindparam(value, type_=LargeBinary), SRID)
    return func.ST_GeomFromWKB(shapely.to_wkb(value), SRID)
