"""The domain rules the desk pages draw on: which actions a user may take on an incident now
(``available_actions``, the same rules ``transition``/``refer``/``add_incident`` enforce), what
changed after a version someone read (``changed_since``), and a resolution with its photos as one
operation with one audit entry."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from sqlalchemy import func, select
from utils.audit import entry_count, newest
from utils.factories import add_users
from utils.places import inside

from patrol.accounts import Principal
from patrol.incidents import (
    IncidentReport,
    available_actions,
    changed_since,
    incident_detail,
    refer,
    report_incident,
    resolve_with_photos,
    transition,
)
from patrol.models import Incident, IncidentPhoto, User
from patrol.photos import PhotoRejected

GQ03 = inside("LJ-GQ-03")


@pytest.fixture
def people(sessions):
    add_users(sessions, "admin", "member", "manager", "officer-lj", "officer-hp")
    with sessions() as session:
        return {u.username: Principal.of(u) for u in session.scalars(select(User))}


def new_incident(session, people, settings) -> Incident:
    incident = report_incident(
        session, people["member"], IncidentReport("rubbish", *GQ03), settings.incidents
    )
    session.flush()
    return incident


def step(session, people, settings, incident, user, action, **extra) -> None:
    transition(
        session, people[user], incident.id, action, settings.incidents, version=incident.version, **extra
    )
    session.flush()


def test_the_actions_offered_follow_the_state_and_the_role(session, people, settings):
    incident = new_incident(session, people, settings)
    offered = lambda user: available_actions(session, people[user], incident)  # noqa: E731
    assert offered("manager") == ["accept", "reject", "duplicate", "refer", "joint"]
    assert offered("member") == [] and offered("officer-hp") == []  # reporter; the other side
    step(session, people, settings, incident, "manager", "accept")
    assert offered("officer-lj") == ["start", "resolve", "reject", "duplicate", "refer", "joint"]
    step(session, people, settings, incident, "manager", "resolve")
    assert offered("manager") == ["joint", "reopen"]  # the resolver does not verify their own work
    assert offered("officer-lj") == ["close", "joint", "reopen"]
    assert offered("admin") == ["close", "joint", "reopen"]
    step(session, people, settings, incident, "officer-lj", "close")
    assert offered("manager") == ["joint"] and offered("admin") == ["joint", "reopen"]


def test_a_referred_incident_is_offered_to_the_other_side(session, people, settings):
    incident = new_incident(session, people, settings)
    refer(session, people["manager"], incident.id, "GX-HP", settings.incidents, version=incident.version)
    session.flush()
    assert "refer" not in available_actions(session, people["manager"], incident)
    assert available_actions(session, people["officer-hp"], incident)[0] == "accept"


def test_what_changed_since_a_version(session, people, settings):
    incident = new_incident(session, people, settings)
    step(session, people, settings, incident, "manager", "accept", level="county")
    refer(session, people["manager"], incident.id, "GX-HP", settings.incidents, version=incident.version)
    session.flush()
    step(session, people, settings, incident, "officer-hp", "start")
    detail = incident_detail(session, people["admin"], incident.id, settings.incidents)
    since = changed_since(detail, 1)
    assert [e["action"] for e in since["events"]] == ["accept", "refer", "start"]
    assert since["fields"] == {
        "status": ["reported", "in_progress"],
        "level": ["village", "county"],
        "referred_to": [None, "GX-HP"],
    }
    assert changed_since(detail, 3)["fields"] == {"status": ["accepted", "in_progress"]}
    assert changed_since(detail, detail["version"]) == {"version": 4, "events": [], "fields": {}}
    assert changed_since(detail, 99)["events"] == [] and changed_since(detail, -5)["version"] == 1


def png(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (10, 8), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_resolution_with_photos_is_one_entry_or_nothing(session, sessions, people, settings):
    incident = new_incident(session, people, settings)
    step(session, people, settings, incident, "manager", "accept")
    session.commit()
    before = entry_count(sessions)
    root = settings.photo_dir()  # shared by the session's tests: compare, do not expect it empty
    files = lambda: {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()  # noqa: E731
    stored = files()
    with pytest.raises(PhotoRejected, match="photo 2"):
        resolve_with_photos(
            session, people["manager"], incident.id, settings.incidents, version=incident.version,
            note="done", photos=[png((1, 2, 3)), b"not an image"], photo_dir=settings.photo_dir(),
        )  # fmt: skip
    session.rollback()
    assert files() == stored  # the first photo's file is removed too
    assert entry_count(sessions) == before
    _, written = resolve_with_photos(
        session, people["manager"], incident.id, settings.incidents, version=incident.version,
        note="done", photos=[png((1, 2, 3)), png((4, 5, 6))], photo_dir=settings.photo_dir(),
    )  # fmt: skip
    session.commit()
    assert len(written) == 2 and all(p.exists() for p in written)
    assert session.scalar(select(func.count()).select_from(IncidentPhoto)) == 2
    assert entry_count(sessions) == before + 1
    [entry] = newest(sessions)
    assert entry.changes["status"] == ["accepted", "resolved"] and len(entry.changes["photos"][1]) == 2
