"""Safe retries: a key chosen by the client makes a create happen once, however often it is sent.

Patrol members lose the signal in the field and send again. A create that carries a key (the API
reads it from the ``Idempotency-Key`` header, the service's own forms from a hidden field) runs
through :func:`run_once`:

- The first request with a key does its work; the response it gets (status, JSON body, location)
  is stored under (user, key) **in the same transaction** as the object it made, so a crash can
  never leave one without the other.
- A repeat by the same user with the same key and the same request gets that stored response back
  and creates nothing. The same key with a different request is refused
  (:class:`IdempotencyKeyReused`, 422). Keys are scoped per user: another user's equal key is
  another key.
- A refused request (bad input, not allowed, …) stores nothing: the client may fix the request and
  send it again under the same key.
- Concurrent repeats make one object. On PostgreSQL a transaction-scoped advisory lock on
  (user, key) is taken first, so a repeat waits until the first request commits and then answers
  with its response; if the first is still running after ``IN_PROGRESS_WAIT_S`` the repeat is told
  so (:class:`RequestInProgress`, 409). SQLite has one writer at a time: the repeat's writes wait
  for the first's commit, then its insert of the key fails on the unique (user, key) index, or the
  domain already refuses the copy (a photo attached twice); its transaction (with anything it
  made) is rolled back and it answers with the first's response. The unique index is the
  guarantee on both backends; the lock only spares the repeat its work.
- Keys are remembered for ``MANGROVE_IDEMPOTENCY_RETENTION_DAYS`` (default 30: the field app may
  be offline for days); expired keys are purged, a batch at a time, when a key is stored (at most
  every ``PURGE_EVERY_S`` per process). An expired key answers nothing: its request runs anew.

Nothing here knows HTTP: ``api.idempotency`` reads the header, fingerprints the request and turns a
stored response back into an HTTP response.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from patrol.errors import Conflict, DomainError, InputError
from patrol.models import IdempotencyKey, iso_utc

KEY_MAX_LENGTH = 255
# How long a repeat waits for a first request with its key that is still running (PostgreSQL).
IN_PROGRESS_WAIT_S = 15.0
PURGE_BATCH = 500
# Expired keys are purged when a key is stored, at most this often per process.
PURGE_EVERY_S = 600.0
_last_purge = float("-inf")  # time.monotonic() of this process's last purge
# The first half of the advisory lock's two-number id: keeps these locks apart from any others.
LOCK_SPACE = 0x1DE0


class InvalidIdempotencyKey(DomainError):
    title = "Invalid Idempotency-Key"
    status = 400


class IdempotencyKeyReused(DomainError):
    title = "Idempotency-Key already used"
    status = 422


class RequestInProgress(Conflict):
    title = "A request with this Idempotency-Key is still in progress"


@dataclass(frozen=True)
class StoredResponse:
    """What a create answered, as it is replayed: status, JSON body and where the object is."""

    status: int
    body: Any
    location: str | None = None


@dataclass(frozen=True)
class KeyedRequest:
    """One request under a client's key. ``fingerprint`` is a SHA-256 (hex) of what the request
    asks for (its content, method and path), to tell a true repeat from a reused key."""

    user_id: int
    key: str
    method: str
    path: str
    fingerprint: str


def check_key(key: str) -> str:
    """``key`` if it is 1–255 printable ASCII characters; InvalidIdempotencyKey naming the fault."""
    if not key:
        raise InvalidIdempotencyKey("the Idempotency-Key is empty; send 1 to 255 printable ASCII characters")
    if len(key) > KEY_MAX_LENGTH:
        raise InvalidIdempotencyKey(
            f"the Idempotency-Key has {len(key)} characters; at most {KEY_MAX_LENGTH} are allowed"
        )
    bad = next((i for i, ch in enumerate(key) if not " " <= ch <= "~"), None)
    if bad is not None:
        raise InvalidIdempotencyKey(
            f"the Idempotency-Key has {key[bad]!r} at position {bad + 1}: only printable ASCII "
            "characters are allowed (a UUID is a good key)"
        )
    return key


def run_once(
    session: Session,
    request: KeyedRequest | None,
    create: Callable[[], StoredResponse],
    *,
    retention: timedelta,
    undo: Callable[[], None] | None = None,
) -> tuple[StoredResponse, bool]:
    """Run ``create`` and commit, unless ``request``'s key already has a response: then return that.

    ``create`` makes the object in ``session`` without committing and returns the response to give
    (and to store). ``undo`` removes what ``create`` left outside the database (a photo file) when
    its transaction is rolled back. Returns (response, replayed). Without a key, ``create`` simply
    runs and commits."""
    if request is None:
        return _create_and_commit(session, create, undo, None), False
    wait_for_turn(session, request.user_id, request.key, IN_PROGRESS_WAIT_S)
    row = _stored_row(session, request)
    if row is not None and not _expired(row):
        earlier = _replay(row, request)
        session.rollback()  # ends the transaction, and with it the wait of any later repeat
        return earlier, True
    if row is not None:
        session.expunge(row)  # expired, deleted below; SQLite may give its id to the new row
    try:
        return _create_and_commit(session, create, undo, (request, retention, row is not None)), False
    except (IntegrityError, DomainError, InputError):
        # A repeat that committed meanwhile (SQLite) shows as the key's insert failing, or as the
        # domain refusing the copy ("this photo is already attached"). What the repeat made is
        # committed together with its key, so the key is visible now whenever that is the cause;
        # otherwise the refusal stands.
        earlier = stored_response(session, request)
        if earlier is None:
            raise
        session.rollback()
        return earlier, True


def _create_and_commit(session, create, undo, keyed) -> StoredResponse:
    committing = False
    try:
        response = create()
        if keyed is not None:
            _remember(session, *keyed, response)
        committing = True
        session.commit()
    except BaseException as exc:
        session.rollback()
        if undo is not None and not (committing and _connection_broke(exc)):
            undo()
        raise
    return response


def _connection_broke(exc: BaseException) -> bool:
    """A commit whose connection broke may have been stored: what ``undo`` would remove (a photo's
    file) is then kept. A file nothing points to is harmless; a photo row without its file is lost
    evidence."""
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def wait_for_turn(session: Session, user_id: int, key: str, wait_s: float) -> None:
    """Hold (user, key) for the rest of ``session``'s transaction, waiting up to ``wait_s`` for a
    request that holds it now; RequestInProgress after that. PostgreSQL only: on SQLite writers
    take turns anyway (see the module's notes)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    digest = hashlib.sha256(f"{user_id}\x00{key}".encode()).digest()
    params = {"space": LOCK_SPACE, "id": int.from_bytes(digest[:4], "big", signed=True)}
    try_lock = text("SELECT pg_try_advisory_xact_lock(CAST(:space AS integer), CAST(:id AS integer))")
    deadline = time.monotonic() + wait_s
    pause = 0.005
    while not session.scalar(try_lock, params):
        if time.monotonic() >= deadline:
            session.rollback()
            raise RequestInProgress(
                f"a request with the Idempotency-Key {_shown(key)} is still being processed; "
                "send it again in a few seconds to get its result"
            )
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def stored_response(session: Session, request: KeyedRequest) -> StoredResponse | None:
    """The response stored under ``request``'s user and key (None: none, or expired);
    IdempotencyKeyReused if the key was stored for a different request."""
    row = _stored_row(session, request)
    return None if row is None or _expired(row) else _replay(row, request)


def _stored_row(session: Session, request: KeyedRequest) -> IdempotencyKey | None:
    return session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.user_id == request.user_id, IdempotencyKey.key == request.key
        )
    )


def _expired(row: IdempotencyKey) -> bool:
    return _as_utc(row.expires_at) <= datetime.now(UTC)


def _replay(row: IdempotencyKey, request: KeyedRequest) -> StoredResponse:
    if row.fingerprint != request.fingerprint:
        used_for = f"{row.method} {row.path}"
        if (row.method, row.path) == (request.method, request.path):
            used_for += " with other content"
        raise IdempotencyKeyReused(
            f"the Idempotency-Key {_shown(request.key)} was used on {iso_utc(row.created_at)} for "
            f"{used_for}; a different request needs a new key"
        )
    return StoredResponse(row.status, row.body, row.location)


def _remember(
    session: Session, request: KeyedRequest, retention: timedelta, had_expired: bool, response: StoredResponse
):
    global _last_purge
    now = datetime.now(UTC)
    if time.monotonic() - _last_purge >= PURGE_EVERY_S:
        _last_purge = time.monotonic()
        purge_expired(session, now)
    if had_expired:
        # This key's own expired row would block the insert. Deleted only while still expired: a
        # copy that replaced it meanwhile keeps its row, and this insert then collides with it.
        session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.user_id == request.user_id,
                IdempotencyKey.key == request.key,
                IdempotencyKey.expires_at <= now,
            ),
            execution_options={"synchronize_session": False},
        )
    session.add(
        IdempotencyKey(
            user_id=request.user_id,
            key=request.key,
            method=request.method,
            path=request.path[:256],
            fingerprint=request.fingerprint,
            status=response.status,
            body=response.body,
            location=response.location,
            created_at=now,
            expires_at=now + retention,
        )
    )
    session.flush()  # the unique (user, key) index speaks here, before the commit


def purge_expired(session: Session, now: datetime | None = None) -> int:
    """Delete up to PURGE_BATCH expired keys in ``session``'s transaction; returns how many.
    Rows another transaction is deleting are skipped (PostgreSQL), never waited for."""
    now = now or datetime.now(UTC)
    expired = (
        select(IdempotencyKey.id)
        .where(IdempotencyKey.expires_at <= now)
        .order_by(IdempotencyKey.id)
        .limit(PURGE_BATCH)
        .with_for_update(skip_locked=True)
    )
    result = session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.id.in_(expired)),
        execution_options={"synchronize_session": False},
    )
    return result.rowcount


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _shown(key: str) -> str:
    return repr(key if len(key) <= 40 else key[:37] + "...")
