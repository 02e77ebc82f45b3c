"""Helpers for account tests: a clock the test moves, and counts of audit entries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from patrol.models import AuditEntry


class Clock:
    """The time the service sees (``app.state.clock``), moved by the test instead of sleeping."""

    def __init__(self, start: datetime | None = None):
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


def audit_count(sessions) -> int:
    with sessions() as session:
        return session.scalar(select(func.count(AuditEntry.id)))


def audit_actions_since(sessions, count: int) -> list[str]:
    """The actions of the entries after the first ``count``, in order."""
    with sessions() as session:
        return list(
            session.scalars(select(AuditEntry.action).where(AuditEntry.seq > count).order_by(AuditEntry.seq))
        )


def last_audit_entry(sessions) -> AuditEntry:
    with sessions() as session:
        return session.scalar(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1))
