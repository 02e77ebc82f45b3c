"""Incident time limits and statistics on a hand-made set, with the clock under the test's control."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from utils.factories import add_users
from utils.places import inside

from patrol.accounts import Principal
from patrol.incident_stats import incident_stats
from patrol.incidents import IncidentQuery, IncidentReport, query_incidents, report_incident, transition
from patrol.models import User
from patrol.settings import IncidentSettings

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Lianjiang
RULES = IncidentSettings()
H = timedelta(hours=1)
D = timedelta(days=1)


def who(session, name) -> Principal:
    return Principal.of(session.scalars(select(User).where(User.username == name)).one())


def new(session, member, *, level="village", code="LJ-GQ-03", at=T0):
    lon, lat = inside(code)
    return report_incident(
        session, member, IncidentReport(category="rubbish", lon=lon, lat=lat, level=level), RULES, now=at
    )


def step(session, actor, incident, action, at, **extra):
    return transition(session, actor, incident.id, action, RULES, version=incident.version, now=at, **extra)


def test_time_limits_follow_the_handling_level(sessions):
    add_users(sessions, "member", "manager")
    with sessions() as session:
        member, manager = who(session, "member"), who(session, "manager")
        village, county = new(session, member), new(session, member, level="county")
        assert village.accept_due == T0 + 4 * H
        assert (village.resolve_due, county.resolve_due) == (T0 + 2 * D, T0 + 4 * D)
        # Raised to town level when accepted: three days from the report.
        step(session, manager, village, "accept", T0 + H, level="town")
        assert village.resolve_due == T0 + 3 * D


def test_overdue_means_unanswered_after_4_hours_or_unresolved_after_the_limit(sessions):
    add_users(sessions, "member", "manager")
    with sessions() as session:
        member, manager = who(session, "member"), who(session, "manager")
        unanswered = new(session, member)
        answered = new(session, member)
        step(session, manager, answered, "accept", T0 + H)
        session.commit()

        def overdue_ids(now):
            items, _ = query_incidents(session, manager, IncidentQuery(overdue=True), RULES, now=now)
            return {i["id"]: i["overdue"] for i in items}

        assert overdue_ids(T0 + 3 * H) == {}
        assert overdue_ids(T0 + 5 * H) == {unanswered.id: "accept"}
        assert overdue_ids(T0 + 2 * D + H) == {unanswered.id: "accept", answered.id: "resolve"}
        step(session, manager, answered, "resolve", T0 + 2 * D + 2 * H)
        assert overdue_ids(T0 + 3 * D) == {unanswered.id: "accept"}


def test_statistics_on_a_hand_made_set(sessions):
    """A: answered in 1 h, resolved in 1 day (on time). B: answered at 5 h, resolved at 3 days
    (both late, village level). C: rejected at 2 h. D: never answered. E: reported an hour before
    'now' (not due yet, counts in nothing but count). Now = 4 days after T0."""
    add_users(sessions, "member", "manager", "officer-lj")
    now = T0 + 4 * D
    with sessions() as session:
        member, manager, officer = who(session, "member"), who(session, "manager"), who(session, "officer-lj")
        a, b, c, d = (new(session, member) for _ in range(4))
        e = new(session, member, at=now - H)
        step(session, manager, a, "accept", T0 + H)
        step(session, manager, a, "resolve", T0 + D)
        step(session, officer, a, "close", T0 + D + H)
        step(session, manager, b, "accept", T0 + 5 * H)
        step(session, manager, b, "resolve", T0 + 3 * D)
        step(session, manager, c, "reject", T0 + 2 * H, note="不是红树林 not mangrove")
        session.commit()
        assert d.status == e.status == "reported"
        (row,) = incident_stats(session, manager, IncidentQuery(), RULES, by="grid", now=now)
    assert row == {
        "grid": "LJ-GQ-03",
        "count": 5,
        "responded": 3,
        "response_rate": 0.6,
        "on_time_response_rate": 0.5,  # A and C of A, B, C, D (E is not due yet)
        "resolved": 2,
        "resolution_rate": 0.5,  # A, B of the actionable A, B, D, E
        "on_time_resolution_rate": round(1 / 3, 4),  # A of A, B, D (E is not due yet)
        "median_hours_to_accept": 3.0,  # 1 h and 5 h
        "median_hours_to_resolve": 48.0,  # 24 h and 72 h
        "open_overdue": 1,  # D
    }


def test_statistics_group_by_town_side_and_month(sessions):
    add_users(sessions, "member", "member-hp", "admin")
    with sessions() as session:
        member, hepu, admin = who(session, "member"), who(session, "member-hp"), who(session, "admin")
        new(session, member)
        new(session, member, code="LJ-AP-02", at=T0 + 31 * D)
        new(session, hepu, code="HP-SK-02")
        session.commit()
        by_side = incident_stats(session, admin, IncidentQuery(), RULES, by="side", now=T0 + 40 * D)
        by_month = incident_stats(session, admin, IncidentQuery(), RULES, by="month", now=T0 + 40 * D)
        by_town = incident_stats(session, admin, IncidentQuery(), RULES, by="town", now=T0 + 40 * D)
    assert [(r["side"], r["count"]) for r in by_side] == [("GD-LJ", 2), ("GX-HP", 1)]
    assert [(r["month"], r["count"]) for r in by_month] == [("2026-03", 2), ("2026-04", 1)]
    assert {r["town"]: r["count"] for r in by_town} == {"AP": 1, "GQ": 1, "SK": 1}


def test_nothing_to_count_is_an_empty_list(sessions):
    add_users(sessions, "admin")
    with sessions() as session:
        assert incident_stats(session, who(session, "admin"), IncidentQuery(), RULES, now=T0) == []
        with pytest.raises(Exception, match="unknown grouping"):
            incident_stats(session, who(session, "admin"), IncidentQuery(), RULES, by="weather", now=T0)
