"""The export tests' scene, built once per backend and module (every test only reads
it): the briefing scene (three walks by ``member`` through LJ-GQ-03, incidents of ``member`` in
Lianjiang and of ``member-hp`` in Hepu), one joint case on the Hepu incident by the border, and a
description a spreadsheet would run as a formula. Tests here must not use the function-scoped
``engine``/``sessions``/``client`` fixtures: those empty the database."""

from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from utils.briefing import seed_scene, who
from utils.databases import reset_database
from utils.factories import auth

from patrol.db import make_session_factory
from patrol.joint import open_joint_case
from patrol.models import Incident


@dataclass
class Scene:
    client: Any
    sessions: Any
    settings: Any
    month: str
    ids: dict[str, int]
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    def auth(self, user: str) -> dict[str, str]:
        if user not in self.headers:  # a sign-in hashes a password: once per user
            self.headers[user] = auth(self.client, user)
        return self.headers[user]


@pytest.fixture(scope="module")
def scene(backend, tmp_path_factory):
    from api.app import create_app

    _, settings, engine = backend
    reset_database(engine)
    sessions = make_session_factory(engine)
    month, ids = seed_scene(sessions, settings, tmp_path_factory.mktemp("exports"))
    with sessions() as session:
        session.get(Incident, ids["gq"]).description = '=HYPERLINK("http://x") 红树林被砍'
        case = open_joint_case(
            session, who(session, "officer-hp"), title="跨界排污 cross-border effluent",
            incident_ids=[ids["hp_near"]], participants=["officer-lj"], settings=settings.incidents,
        )  # fmt: skip
        session.commit()
        ids["case"] = case.id
    # Two incidents a page: every layer is written in several chunks, as a large export is.
    page_size = settings.exports.page_size
    settings.exports.page_size = 2
    with TestClient(create_app(settings=settings, engine=engine)) as client:
        yield Scene(client, sessions, settings, month, ids)
    settings.exports.page_size = page_size
