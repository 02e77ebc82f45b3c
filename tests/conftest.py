"""Test fixtures. Every test that touches the database runs once per backend: SpatiaLite (a file in
a temporary directory) and PostGIS (a throw-away database on the local server). PostGIS is not
optional: if it cannot be reached the whole run stops with an error instead of skipping.

``MANGROVE_TEST_BACKENDS=spatialite`` narrows a local run to one backend; CI clears it.
"""

from __future__ import annotations

import os
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from utils.databases import reset_database

from patrol import migrate
from patrol.db import create_db_engine, make_session_factory
from patrol.settings import AuthSettings, ImportSettings, Settings, StorageSettings

PG_ADMIN_URL = os.environ.get(
    "MANGROVE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = [b for b in os.environ.get("MANGROVE_TEST_BACKENDS", "spatialite,postgis").split(",") if b]


def pytest_sessionstart(session):
    if "postgis" not in BACKENDS:
        return
    try:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            available = conn.execute(
                text("SELECT count(*) FROM pg_available_extensions WHERE name = 'postgis'")
            ).scalar()
        admin.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure here means PostGIS tests cannot run
        pytest.exit(f"PostGIS tests cannot run: cannot connect to {PG_ADMIN_URL}: {exc}", returncode=3)
    if not available:
        pytest.exit("PostGIS tests cannot run: the postgis extension is not installed", returncode=3)


def make_settings(tmp_path, url: str) -> Settings:
    settings = Settings()
    settings.storage = StorageSettings(data_dir=tmp_path, database_url=url)
    settings.auth = AuthSettings(secret_key="test-secret-" + "x" * 32)
    settings.imports = ImportSettings(max_upload_bytes=2 * 1024 * 1024)
    return settings


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request, tmp_path_factory):
    """(name, url, engine) of a migrated, empty database of one backend, shared by the session."""
    name = request.param
    if name == "spatialite":
        url = f"sqlite:///{tmp_path_factory.mktemp('spatialite') / 'test.sqlite'}"
        drop = None
    else:
        db_name = f"mangrove_test_{uuid.uuid4().hex[:10]}"
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{db_name}"'))
        url = admin.url.set(database=db_name).render_as_string(hide_password=False)

        def drop():
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
            admin.dispose()

    settings = make_settings(tmp_path_factory.mktemp(f"data-{name}"), url)
    engine = create_db_engine(url, settings=settings)
    migrate.upgrade(engine)
    yield name, settings, engine
    engine.dispose()
    if drop:
        drop()


@pytest.fixture
def engine(backend):
    """A database holding only the reference geodata (clean at the start of each test)."""
    _, _, engine = backend
    reset_database(engine)
    return engine


@pytest.fixture
def sessions(engine):
    return make_session_factory(engine)


@pytest.fixture
def session(sessions):
    with sessions() as session:
        yield session


@pytest.fixture
def settings(backend):
    return backend[1]


@pytest.fixture
def configured(settings, monkeypatch):
    """Point the command line (``mangrove …``, which reads the environment) at the test database."""
    from patrol.settings import get_settings

    monkeypatch.setenv("MANGROVE_DATABASE_URL", settings.storage.resolved_database_url())
    monkeypatch.setenv("MANGROVE_DATA_DIR", str(settings.storage.data_dir))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def app(engine, settings):
    from api.app import create_app

    return create_app(settings=settings, engine=engine)


@pytest.fixture
def client(app):
    with TestClient(app) as client:
        yield client
