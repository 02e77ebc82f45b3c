"""The export tests' scene: the briefing scene (three walks by ``member`` through LJ-GQ-03, incidents
of ``member`` in Lianjiang and of ``member-hp`` in Hepu) plus one joint case on the Hepu incident by
the border, and a description a spreadsheet would run as a formula."""

import pytest
from utils.briefing import seed_scene, who

from patrol.joint import open_joint_case
from patrol.models import Incident


@pytest.fixture
def scene(sessions, settings, tmp_path, monkeypatch):
    # Two incidents a page: every layer is written in several chunks, as a large export is.
    monkeypatch.setattr(settings.exports, "page_size", 2)
    month, ids = seed_scene(sessions, settings, tmp_path)
    with sessions() as session:
        session.get(Incident, ids["gq"]).description = '=HYPERLINK("http://x") 红树林被砍'
        case = open_joint_case(
            session, who(session, "officer-hp"), title="跨界排污 cross-border effluent",
            incident_ids=[ids["hp_near"]], participants=["officer-lj"], settings=settings.incidents,
        )  # fmt: skip
        session.commit()
        ids["case"] = case.id
    return month, ids
