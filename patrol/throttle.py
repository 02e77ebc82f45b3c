"""Login throttling per account name and per client address, kept in the database so that every
service process (and the pages and the API alike) shares one count.

- The first ``free_attempts`` failures of an account name cost nothing; after that each attempt
  must wait 1, 2, 4 … seconds (at most ``max_delay_seconds``) after the one before. A client
  address gets ``address_free_attempts`` (a station's phones may share one address).
- After ``lock_after_failures`` failures in a row an account name is locked until an admin unlocks
  it. Addresses are never locked, only slowed down: locking one could lock out a whole station.
- A name that exists and a name that does not are counted, slowed down and locked alike, so the
  answers tell nothing about which accounts exist.
- An attempt is counted *before* its password is checked (and the count undone if it succeeds),
  so a burst of parallel attempts cannot all slip through in the time one hash takes.
- A successful sign-in clears the account's count; failures are forgotten after
  ``forget_after_minutes`` without another one. A lock is kept until an admin lifts it.

Failed attempts live only here, not in the audit trail: they are written by anonymous callers,
and an audit entry per failure would let anyone grow the trail as fast as they can post. The lock
of an account is an audited event (``user.lock``).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, case, delete, null, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from patrol.errors import AccountLocked, TooManyAttempts
from patrol.models import LoginThrottle
from patrol.settings import AuthSettings

ACCOUNT = "account"
ADDRESS = "address"


def account_subject(name: str) -> str:
    """How an account name is kept: a hash of the name as typed, lower-cased (people sometimes type
    their password into the name field; that must not be stored in clear)."""
    return hashlib.sha256(name.strip().lower().encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Attempt:
    """One sign-in attempt: the account name typed and the client's address (None: unknown)."""

    name: str
    address: str | None

    def subjects(self, settings: AuthSettings) -> list[tuple[str, str, int]]:
        """(scope, subject, free failures) for each count this attempt belongs to."""
        found = [(ACCOUNT, account_subject(self.name), settings.free_attempts)]
        if self.address:
            found.append((ADDRESS, self.address[:64], settings.address_free_attempts))
        return found


def delay_seconds(failures: int, free: int, cap: int) -> int:
    """The wait after ``failures`` failures: none for the first ``free - 1``, then 1, 2, 4 … ≤ cap."""
    if failures < free:
        return 0
    exponent = failures - free
    return cap if exponent >= 30 else min(2**exponent, cap)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def check(session: Session, attempt: Attempt, settings: AuthSettings, now: datetime) -> None:
    """Refuse the attempt before its password is looked at: AccountLocked if the name is locked,
    TooManyAttempts (with the seconds to wait) while the name or the address is slowed down."""
    subjects = attempt.subjects(settings)
    rows = session.execute(
        select(
            LoginThrottle.scope,
            LoginThrottle.last_failed_at,
            LoginThrottle.blocked_until,
            LoginThrottle.locked_at,
        ).where(or_(*(and_(LoginThrottle.scope == s, LoginThrottle.subject == k) for s, k, _ in subjects)))
    ).all()
    forget_before = now - timedelta(minutes=settings.forget_after_minutes)
    waits: dict[str, float] = {}
    for row in rows:
        if row.scope == ACCOUNT and row.locked_at is not None:
            raise locked_error(settings)
        blocked_until = _aware(row.blocked_until)
        if blocked_until is not None and blocked_until > now and _aware(row.last_failed_at) >= forget_before:
            waits[row.scope] = (blocked_until - now).total_seconds()
    if waits:
        wait = max(1, math.ceil(max(waits.values())))
        whose = " and ".join(
            {ACCOUNT: "for this account name", ADDRESS: "from this address"}[scope] for scope in sorted(waits)
        )
        raise TooManyAttempts(
            f"too many failed sign-ins {whose}: wait {wait} second{'s' if wait != 1 else ''} "
            "before trying again",
            retry_after=wait,
        )


def locked_error(settings: AuthSettings) -> AccountLocked:
    return AccountLocked(
        f"this account is locked after {settings.lock_after_failures} failed sign-ins; "
        "ask an administrator to unlock it"
    )


def _upsert(session: Session):
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def reserve(session: Session, attempt: Attempt, settings: AuthSettings, now: datetime) -> None:
    """Count the attempt as a failure until it is known to succeed, and slow down the next one if
    this count calls for it. The caller commits before checking the password."""
    forget_before = now - timedelta(minutes=settings.forget_after_minutes)
    insert = _upsert(session)
    for scope, subject, free in attempt.subjects(settings):
        statement = insert(LoginThrottle).values(scope=scope, subject=subject, failures=1, last_failed_at=now)
        forgotten = LoginThrottle.last_failed_at < forget_before
        statement = statement.on_conflict_do_update(
            index_elements=[LoginThrottle.scope, LoginThrottle.subject],
            set_={
                "failures": _case(forgotten, 1, LoginThrottle.failures + 1),
                "blocked_until": _case(forgotten, None, LoginThrottle.blocked_until),
                "last_failed_at": now,
            },
        ).returning(LoginThrottle.failures)
        failures = session.execute(statement).scalar_one()
        wait = delay_seconds(failures, free, settings.max_delay_seconds)
        if wait:
            until = now + timedelta(seconds=wait)
            session.execute(
                update(LoginThrottle)
                .where(LoginThrottle.scope == scope, LoginThrottle.subject == subject)
                .where(or_(LoginThrottle.blocked_until.is_(None), LoginThrottle.blocked_until < until))
                .values(blocked_until=until)
            )


def _case(condition, then, otherwise):
    return case((condition, null() if then is None else then), else_=otherwise)


def failed(session: Session, attempt: Attempt, settings: AuthSettings, now: datetime) -> bool:
    """The attempt failed (it is counted already). True when this failure locks the account name."""
    locked = session.execute(
        update(LoginThrottle)
        .where(
            LoginThrottle.scope == ACCOUNT,
            LoginThrottle.subject == account_subject(attempt.name),
            LoginThrottle.failures >= settings.lock_after_failures,
            LoginThrottle.locked_at.is_(None),
        )
        .values(locked_at=now)
        .returning(LoginThrottle.subject)
    ).first()
    return locked is not None


def succeeded(session: Session, attempt: Attempt, settings: AuthSettings) -> None:
    """The attempt succeeded: the account's count starts again, the address's loses this attempt."""
    session.execute(
        delete(LoginThrottle).where(
            LoginThrottle.scope == ACCOUNT, LoginThrottle.subject == account_subject(attempt.name)
        )
    )
    if not attempt.address:
        return
    where = (LoginThrottle.scope == ADDRESS, LoginThrottle.subject == attempt.address[:64])
    left = session.execute(
        update(LoginThrottle)
        .where(*where, LoginThrottle.failures > 0)
        .values(failures=LoginThrottle.failures - 1)
        .returning(LoginThrottle.failures)
    ).scalar()
    if left is not None and left < settings.address_free_attempts:
        session.execute(update(LoginThrottle).where(*where).values(blocked_until=None))


@dataclass(frozen=True)
class AccountThrottle:
    failures: int
    locked: bool


def unlock(session: Session, name: str) -> AccountThrottle:
    """Lift the lock and the count of an account name; what there was before."""
    subject = account_subject(name)
    row = session.execute(
        select(LoginThrottle.failures, LoginThrottle.locked_at).where(
            LoginThrottle.scope == ACCOUNT, LoginThrottle.subject == subject
        )
    ).first()
    session.execute(
        delete(LoginThrottle).where(LoginThrottle.scope == ACCOUNT, LoginThrottle.subject == subject)
    )
    return AccountThrottle(row.failures, row.locked_at is not None) if row else AccountThrottle(0, False)


def account_states(session: Session, names: list[str]) -> dict[str, AccountThrottle]:
    """The failure count and lock of each of these account names that has any."""
    by_subject = {account_subject(n): n for n in names}
    rows = session.execute(
        select(LoginThrottle.subject, LoginThrottle.failures, LoginThrottle.locked_at).where(
            LoginThrottle.scope == ACCOUNT, LoginThrottle.subject.in_(list(by_subject))
        )
    ).all()
    return {by_subject[r.subject]: AccountThrottle(r.failures, r.locked_at is not None) for r in rows}


def purge(session: Session, settings: AuthSettings, now: datetime) -> int:
    """Forget counts that have lapsed (never a lock). Run now and then (at each sign-in)."""
    forget_before = now - timedelta(minutes=settings.forget_after_minutes)
    result = session.execute(
        delete(LoginThrottle).where(
            LoginThrottle.locked_at.is_(None),
            LoginThrottle.last_failed_at < forget_before,
            or_(LoginThrottle.blocked_until.is_(None), LoginThrottle.blocked_until < now),
        )
    )
    return result.rowcount or 0
