"""The audit trail: who changed what, when and from where — append-only and hash-chained.

Every write of the service (through the API, the pages or the command line) appends one entry in
the same transaction as the change, so a change and its entry are committed or rolled back
together. Each entry carries the SHA-256 of the one before it; its own hash covers every field,
so ``verify`` finds an entry that was changed, deleted or inserted behind the service's back and
names it. The chain's end (position and hash) is kept in ``audit_head``: appending updates that
row first, which serialises concurrent appenders on PostgreSQL (row lock) and SQLite (the write
lock), and makes a deleted newest entry visible too.

Triggers refuse UPDATE and DELETE on ``audit_log`` (and TRUNCATE on PostgreSQL). Someone with the
database owner's rights can drop them and rewrite the whole chain consistently; against that the
chain's head hash has to be kept elsewhere too (``mangrove audit verify`` prints it; backups carry
it).
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.orm import Session

from patrol.accounts import Principal
from patrol.errors import InvalidRequest, PermissionDenied, Problem
from patrol.models import AuditEntry, AuditHead, iso_utc

GENESIS = "0" * 64
HEAD_ID = 1
CHANNELS = ("api", "page", "cli")

# Only the benchmark turns this off, to measure the trail's cost beside the same operation
# without it (bench/bench_reliability.py). Nothing in the service does.
_recording: contextvars.ContextVar[bool] = contextvars.ContextVar("audit_recording", default=True)


@contextlib.contextmanager
def suspended() -> Iterator[None]:
    """For benchmarks only: writes in this block leave no entry."""
    token = _recording.set(False)
    try:
        yield
    finally:
        _recording.reset(token)


# --- values and hashes ---------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """A JSON-native copy of ``value``: what is stored is exactly what is hashed."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [jsonable(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    if hasattr(value, "item"):  # numpy scalars
        return jsonable(value.item())
    return str(value)


def snapshot(obj: Any, fields: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """The listed attributes of an object, JSON-native, to compare before and after a change."""
    return {name: jsonable(getattr(obj, name)) for name in fields}


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """``{field: [before, after]}`` for the fields whose value differs."""
    return {
        name: [before.get(name), after.get(name)]
        for name in dict.fromkeys([*before, *after])
        if before.get(name) != after.get(name)
    }


def _canonical(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(
    *,
    seq: int,
    at: datetime,
    actor_id: int | None,
    actor: str,
    channel: str,
    address: str | None,
    action: str,
    object_type: str,
    object_id: str | None,
    changes: Any,
    prev_hash: str,
) -> str:
    fields = {
        "seq": seq,
        "at": _at_text(at),
        "actor_id": actor_id,
        "actor": actor,
        "channel": channel,
        "address": address,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "changes": changes,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(_canonical(fields)).hexdigest()


def _at_text(at: datetime) -> str:
    """Microsecond UTC text: both databases keep microseconds, so a stored time hashes the same."""
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _hash_of(entry: AuditEntry) -> str:
    return entry_hash(
        seq=entry.seq,
        at=entry.at,
        actor_id=entry.actor_id,
        actor=entry.actor,
        channel=entry.channel,
        address=entry.address,
        action=entry.action,
        object_type=entry.object_type,
        object_id=entry.object_id,
        changes=entry.changes,
        prev_hash=entry.prev_hash,
    )


# --- appending -----------------------------------------------------------------------------------

# Built once, on the tables: each append is three cached statements with parameters. (Building
# ORM-enabled statements per call cost ~2 ms, most of an incident transition's time on SQLite.)
_LOG, _HEAD = AuditEntry.__table__, AuditHead.__table__
_ADVANCE_HEAD = (
    update(_HEAD)
    .where(_HEAD.c.id == HEAD_ID)
    .values(seq=_HEAD.c.seq + 1)
    .returning(_HEAD.c.seq, _HEAD.c.hash)
)
_APPEND = insert(_LOG)
_SET_HEAD_HASH = update(_HEAD).where(_HEAD.c.id == HEAD_ID).values(hash=bindparam("new_hash"))


def record(
    session: Session,
    principal: Principal | None,
    action: str,
    object_type: str,
    object_id: Any = None,
    changes: dict[str, Any] | None = None,
    *,
    at: datetime | None = None,
) -> int | None:
    """Append one entry for a change made in ``session``'s transaction; returns its position.

    Call it after the change is made (it flushes the session first), as the last step before the
    caller commits: the head row stays locked until then. ``principal`` None is the service itself
    (e.g. a setting read at start-up)."""
    if not _recording.get():
        return None
    session.flush()
    now = at or datetime.now(UTC)
    seq, prev = session.execute(_ADVANCE_HEAD).one()
    values = {
        "seq": seq,
        "at": now,
        "actor_id": principal.user_id if principal and principal.user_id else None,
        "actor": (principal.username if principal else "service")[:80],
        "channel": principal.channel if principal else "cli",
        "address": (principal.address or None) if principal else None,
        "action": action,
        "object_type": object_type,
        "object_id": None if object_id is None else str(object_id)[:64],
        "changes": jsonable(changes) if changes else None,
        "prev_hash": prev,
    }
    values["hash"] = entry_hash(**values)
    if session.get_bind().dialect.name == "postgresql":
        # One round trip for the entry and the head (a data-modifying CTE); SQLite has none, and
        # its statements cost no round trip.
        appended = insert(_LOG).values(**values).returning(_LOG.c.hash).cte("appended")
        new_hash = select(appended.c.hash).scalar_subquery()
        session.execute(update(_HEAD).where(_HEAD.c.id == HEAD_ID).values(hash=new_hash))
    else:
        session.execute(_APPEND, values)
        session.execute(_SET_HEAD_HASH, {"new_hash": values["hash"]})
    return seq


def ensure_head(connection: Connection) -> None:
    """The head row of an empty chain, if there is none (a new or emptied database)."""
    exists = connection.execute(select(AuditHead.id).where(AuditHead.id == HEAD_ID)).first()
    if exists is None:
        connection.execute(insert(AuditHead).values(id=HEAD_ID, seq=0, hash=GENESIS))


# --- guards --------------------------------------------------------------------------------------

_SQLITE_GUARDS = (
    "CREATE TRIGGER IF NOT EXISTS audit_log_append_only_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_log_append_only_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_head_keep BEFORE DELETE ON audit_head "
    "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END",
)
_PG_GUARDS = (
    """CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'the audit trail is append-only'; END $$""",
    "DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log",
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_append_only()",
    "DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()",
    "DROP TRIGGER IF EXISTS audit_head_keep ON audit_head",
    "CREATE TRIGGER audit_head_keep BEFORE DELETE OR TRUNCATE ON audit_head "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()",
)


def install_guards(connection: Connection) -> None:
    """Triggers that refuse changing or removing entries (run by the migration)."""
    for statement in _SQLITE_GUARDS if connection.dialect.name == "sqlite" else _PG_GUARDS:
        connection.exec_driver_sql(statement)


def remove_guards(connection: Connection) -> None:
    """Drop the triggers — what the database owner (or an attacker with their rights) can do. The
    test suite uses it to empty the database between tests and to play the attacker; the chain's
    hashes still show what was done."""
    if connection.dialect.name == "sqlite":
        for name in ("audit_log_append_only_update", "audit_log_append_only_delete", "audit_head_keep"):
            connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
    else:
        for name, table in (
            ("audit_log_append_only", "audit_log"),
            ("audit_log_no_truncate", "audit_log"),
            ("audit_head_keep", "audit_head"),
        ):
            connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name} ON {table}")


# --- verifying -----------------------------------------------------------------------------------


@dataclass
class Finding:
    kind: str  # changed, deleted, inserted, head
    seq: int | None
    entry_id: int | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "seq": self.seq, "id": self.entry_id, "message": self.message}


@dataclass
class Verification:
    entries: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head": {"seq": self.head_seq, "hash": self.head_hash},
            "findings": [f.as_dict() for f in self.findings],
        }


def _label(entry: AuditEntry) -> str:
    return f"entry {entry.seq} (id {entry.id}, {entry.action} by {entry.actor} at {iso_utc(entry.at)})"


def verify(session: Session, *, batch: int = 5000) -> Verification:
    """Walk the whole chain in order and name every entry that was changed, deleted or inserted."""
    result = Verification()
    head = session.get(AuditHead, HEAD_ID)
    if head is None:
        result.findings.append(Finding("head", None, None, "the chain head (audit_head) is missing"))
    expected_seq, expected_prev = 1, GENESIS
    previous: AuditEntry | None = None
    query = select(AuditEntry).order_by(AuditEntry.seq, AuditEntry.id).execution_options(yield_per=batch)
    for entry in session.scalars(query):
        result.entries += 1
        if entry.seq < expected_seq:
            result.findings.append(
                Finding(
                    "inserted",
                    entry.seq,
                    entry.id,
                    f"{_label(entry)} was inserted: position {entry.seq} "
                    + ("comes before the chain's start" if entry.seq < 1 else "is taken already"),
                )
            )
            continue  # the chain goes on from the entry before it
        if entry.seq > expected_seq:
            missing = (
                f"entry {expected_seq}"
                if entry.seq == expected_seq + 1
                else f"entries {expected_seq}–{entry.seq - 1}"
            )
            result.findings.append(
                Finding(
                    "deleted", expected_seq, None, f"{missing} deleted: the chain jumps to {_label(entry)}"
                )
            )
        elif (
            entry.prev_hash != expected_prev and previous is not None and _hash_of(previous) == previous.hash
        ):
            # Both entries match their own hashes, yet the link is broken: this entry was written
            # after the real entry before it, so that one was rewritten with a recomputed hash. (A
            # previous entry that fails its own hash is reported below, once.)
            result.findings.append(
                Finding(
                    "changed",
                    previous.seq,
                    previous.id,
                    f"{_label(previous)} was changed and its hash recomputed: "
                    f"entry {entry.seq} no longer follows it",
                )
            )
        elif entry.prev_hash != expected_prev and previous is None:
            result.findings.append(
                Finding(
                    "changed", entry.seq, entry.id, f"{_label(entry)} does not start from the chain's start"
                )
            )
        if _hash_of(entry) != entry.hash:
            result.findings.append(
                Finding(
                    "changed",
                    entry.seq,
                    entry.id,
                    f"{_label(entry)} was changed: it no longer matches its hash",
                )
            )
        expected_seq, expected_prev, previous = entry.seq + 1, entry.hash, entry
    last_seq = expected_seq - 1
    if head is not None:
        result.head_seq, result.head_hash = head.seq, head.hash
        if head.seq > last_seq:
            gone = f"entry {head.seq}" if head.seq == last_seq + 1 else f"entries {last_seq + 1}–{head.seq}"
            result.findings.append(
                Finding("deleted", last_seq + 1, None, f"{gone} deleted: the chain head is at {head.seq}")
            )
        elif head.seq < last_seq:
            result.findings.append(
                Finding(
                    "inserted",
                    previous.seq,
                    previous.id,
                    f"{_label(previous)} was inserted: the chain head ends at entry {head.seq}",
                )
            )
        elif previous is not None and head.hash != previous.hash:
            result.findings.append(
                Finding(
                    "changed",
                    previous.seq,
                    previous.id,
                    f"{_label(previous)} does not match the chain head's hash: it was replaced",
                )
            )
    return result


# --- reading -------------------------------------------------------------------------------------


def entry_dict(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "at": iso_utc(entry.at),
        "actor": entry.actor,
        "actor_id": entry.actor_id,
        "channel": entry.channel,
        "address": entry.address,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "changes": entry.changes,
        "hash": entry.hash,
    }


@dataclass
class AuditQuery:
    """Filters of the trail's listing; entries come newest first, ``before`` a position to page."""

    actor: str | None = None
    actions: tuple[str, ...] = ()
    object_type: str | None = None
    object_id: str | None = None
    channel: str | None = None
    start: datetime | None = None  # at or after
    end: datetime | None = None  # before
    before: int | None = None  # entries before this position (the next page)
    limit: int = 100


MAX_LIMIT = 1000
_ACTION = re.compile(r"^[a-z][a-z_]*\.[a-z][a-z_]*$")
_OBJECT_TYPE = re.compile(r"^[a-z][a-z_]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _check_query(q: AuditQuery) -> None:
    """Every bad filter at once, each naming its parameter."""
    problems: list[Problem] = []

    def bad(parameter: str, message: str) -> None:
        problems.append(Problem("bad-filter", f"{parameter}: {message}", {"parameter": parameter}))

    if q.actor is not None and (not q.actor or len(q.actor) > 80 or _CONTROL.search(q.actor)):
        bad("actor", "a user name (or cli:LOGIN, service) of 1–80 printable characters")
    for action in q.actions:
        if not _ACTION.match(action):
            bad("action", f"{action[:60]!r} is not an action such as incident.transition")
    if q.object_type is not None and not _OBJECT_TYPE.match(q.object_type):
        bad("object_type", f"{q.object_type[:60]!r} is not an object type such as incident")
    if q.object_id is not None:
        if q.object_type is None:
            bad("object_id", "give object_type too: ids are unique only within a type")
        if not q.object_id or len(q.object_id) > 64 or _CONTROL.search(q.object_id):
            bad("object_id", "an id of 1–64 printable characters")
    if q.channel is not None and q.channel not in CHANNELS:
        bad("channel", f"{q.channel[:20]!r} is not one of {', '.join(CHANNELS)}")
    if not 1 <= q.limit <= MAX_LIMIT:
        bad("limit", f"must be between 1 and {MAX_LIMIT}, got {q.limit}")
    if q.before is not None and q.before < 1:
        bad("before", f"must be a position of 1 or more, got {q.before}")
    if problems:
        raise InvalidRequest("bad audit filter: " + "; ".join(p.message for p in problems), problems)


def list_entries(
    session: Session, principal: Principal, q: AuditQuery
) -> tuple[list[dict[str, Any]], int | None]:
    """One page of entries, newest first, and the position to ask ``before`` for the next page
    (None at the end). Admins only."""
    if not principal.is_admin:
        raise PermissionDenied("only an admin may read the audit trail")
    _check_query(q)
    query = select(AuditEntry)
    if q.actor is not None:
        query = query.where(AuditEntry.actor == q.actor)
    if q.actions:
        query = query.where(AuditEntry.action.in_(q.actions))
    if q.object_type is not None:
        query = query.where(AuditEntry.object_type == q.object_type)
    if q.object_id is not None:
        query = query.where(AuditEntry.object_id == q.object_id)
    if q.channel is not None:
        query = query.where(AuditEntry.channel == q.channel)
    # Stored as UTC (SQLite keeps the wall time without its zone): bounds go in as UTC too.
    if q.start is not None:
        query = query.where(AuditEntry.at >= q.start.astimezone(UTC))
    if q.end is not None:
        query = query.where(AuditEntry.at < q.end.astimezone(UTC))
    if q.before is not None:
        query = query.where(AuditEntry.seq < q.before)
    rows = session.scalars(query.order_by(AuditEntry.seq.desc()).limit(q.limit + 1)).all()
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    return [entry_dict(e) for e in rows], (rows[-1].seq if more else None)
