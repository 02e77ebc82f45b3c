"""A small demo season (three weeks of patrols, incidents, joint cases) loaded once per module and
backend, for tests that only read it (maps, OGC API). Import the fixtures into a conftest:
``from utils.demo import demo, demo_client, demo_loaded``."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from patrol.db import make_session_factory
from patrol.demo import load_demo, load_demo_patrols
from patrol.models import Incident, Patrol
from utils.databases import reset_database

DAYS = 21


@dataclass
class DemoWorld:
    name: str
    settings: object
    engine: object
    sessions: object
    patrols: int
    incidents: int


def _load(engine, settings) -> tuple[int, int]:
    reset_database(engine)
    with make_session_factory(engine)() as session:
        load_demo(session)
        load_demo_patrols(session, settings.patrols, days=DAYS, incident_settings=settings.incidents)
        session.commit()
        return session.scalar(select(func.count(Patrol.id))), session.scalar(select(func.count(Incident.id)))


@pytest.fixture(scope="module")
def demo_loaded(backend):
    name, settings, engine = backend
    patrols, incidents = _load(engine, settings)
    return DemoWorld(name, settings, engine, make_session_factory(engine), patrols, incidents)


@pytest.fixture
def demo(demo_loaded):
    """The demo season; reloaded if a test elsewhere emptied the shared database in between."""
    with demo_loaded.sessions() as session:
        if session.scalar(select(func.count(Patrol.id))) != demo_loaded.patrols:
            demo_loaded.patrols, demo_loaded.incidents = _load(demo_loaded.engine, demo_loaded.settings)
    return demo_loaded


@pytest.fixture
def demo_client(demo):
    from api.app import create_app

    with TestClient(create_app(settings=demo.settings, engine=demo.engine)) as client:
        yield client
