"""The demo season of incidents: found on the demo patrols and near the border, handled in time
order by the right people, loaded once."""

from datetime import UTC, datetime

from sqlalchemy import func, select

from patrol.demo import load_demo, load_demo_patrols
from patrol.demo.incidents import load_demo_incidents
from patrol.incidents import aware, overdue_clause
from patrol.joint import MECHANISMS
from patrol.models import (
    Incident,
    IncidentEvent,
    JointCase,
    JointCaseAction,
    JointCaseParticipant,
    Patrol,
    User,
)

DAYS = 21  # three weeks of patrols keep the test quick; the border stories scale to the season


def test_demo_season_of_incidents(sessions, settings):
    with sessions() as session:
        load_demo(session)
        summary = load_demo_patrols(
            session, settings.patrols, days=DAYS, incident_settings=settings.incidents
        )
        session.commit()
    now = datetime.now(UTC)

    with sessions() as session:
        incidents = session.scalars(select(Incident).order_by(Incident.id)).all()
        assert summary["incidents_created"] == len(incidents) > 12  # the border stories and more
        # Idempotent: a database with incidents gets no more, from either entry point.
        assert load_demo_incidents(session, days=DAYS, settings=settings.incidents) == 0
        again = load_demo_patrols(session, settings.patrols, days=DAYS, incident_settings=settings.incidents)
        assert again["incidents_created"] == 0 and again["patrols_created"] == 0
        assert session.scalar(select(func.count(Incident.id))) == len(incidents)

        users = dict(session.execute(select(User.id, User.username)).all())
        sides = dict(session.execute(select(User.id, User.side)).all())
        assert {i.side for i in incidents} == {"GD-LJ", "GX-HP"}
        assert session.scalar(select(func.count(Incident.id)).where(overdue_clause(now))) > 0
        resolved = [i for i in incidents if i.resolved_at is not None]
        assert any(aware(i.resolved_at) <= aware(i.resolve_due) for i in resolved)  # on time
        assert any(aware(i.resolved_at) > aware(i.resolve_due) for i in resolved)  # late
        assert any(i.accepted_at and aware(i.accepted_at) > aware(i.accept_due) for i in incidents)
        assert {i.status for i in incidents} >= {"closed", "rejected", "duplicate", "reported"}
        assert any(i.referred_to and i.referred_to != i.side for i in incidents)
        assert sum(i.border_distance_m <= 2000 for i in incidents) >= 8

        # Found on patrols: the patrol exists, was walked by the reporter, and the finding was
        # made during it and reported a few minutes later.
        on_patrols = [i for i in incidents if i.patrol_id is not None]
        assert on_patrols
        for incident in on_patrols:
            patrol = session.get(Patrol, incident.patrol_id)
            assert patrol is not None
            assert patrol.uploaded_by == incident.reporter_id
            assert aware(patrol.started_at) <= aware(incident.observed_at) <= aware(patrol.ended_at)
            assert incident.grid_match == "inside"

        for incident in incidents:
            events = session.scalars(
                select(IncidentEvent)
                .where(IncidentEvent.incident_id == incident.id)
                .order_by(IncidentEvent.id)
            ).all()
            times = [aware(e.at) for e in events]
            assert times == sorted(times), f"incident {incident.id}: history out of time order"
            assert events[0].action == "reported" and times[-1] <= now
            assert aware(incident.observed_at) <= aware(incident.reported_at) == times[0]
            resolvers = [e.actor_id for e in events if e.action == "resolve"]
            for close in (e for e in events if e.action == "close"):
                assert close.actor_id != resolvers[-1] or users[close.actor_id] == "admin"
            for event in events:
                if event.action in ("reject", "reopen"):
                    assert event.note
            if incident.status == "duplicate":
                assert session.get(Incident, incident.duplicate_of) is not None

        cases = session.scalars(select(JointCase)).all()
        assert 2 <= len(cases) <= 3
        mechanisms = set()
        for case in cases:
            members = session.scalars(
                select(JointCaseParticipant.user_id).where(JointCaseParticipant.case_id == case.id)
            ).all()
            assert {"lj-officer", "hp-officer"} <= {users[m] for m in members}
            assert {sides[m] for m in members} == {"GD-LJ", "GX-HP"}
            assert session.scalar(select(func.count(Incident.id)).where(Incident.joint_case_id == case.id))
            actions = session.scalars(select(JointCaseAction).where(JointCaseAction.case_id == case.id)).all()
            assert actions
            assert all(aware(case.opened_at) <= aware(a.at) <= now for a in actions)
            mechanisms |= {a.mechanism for a in actions}
        assert mechanisms == set(MECHANISMS)
