"""The audit trail's chain: appended in the caller's transaction, refused changes by triggers, and
every changed, deleted or inserted entry found and named by ``verify`` — on both backends."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from patrol import audit
from patrol.accounts import Principal
from patrol.models import AuditEntry, AuditHead, Role

ALICE = Principal(
    user_id=7, username="alice", display_name="Alice", side="GD-LJ", roles=frozenset({Role.ADMIN}),
    channel="page", address="10.1.2.3",
)  # fmt: skip


def _append(sessions, n: int, action: str = "incident.transition") -> None:
    with sessions() as session:
        for i in range(n):
            audit.record(session, ALICE, action, "incident", i + 1, {"status": ["reported", "accepted"]})
        session.commit()


def test_entries_chain_from_the_genesis_hash_and_verify(sessions):
    _append(sessions, 5)
    with sessions() as session:
        entries = session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
        assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
        assert entries[0].prev_hash == audit.GENESIS
        assert all(b.prev_hash == a.hash for a, b in zip(entries, entries[1:]))
        first = entries[0]
        assert (first.actor, first.actor_id, first.channel, first.address) == ("alice", 7, "page", "10.1.2.3")
        assert first.changes == {"status": ["reported", "accepted"]}
        result = audit.verify(session)
        assert result.ok and result.entries == 5
        assert (result.head_seq, result.head_hash) == (5, entries[-1].hash)


def test_an_entry_is_written_or_rolled_back_with_its_change(sessions):
    with sessions() as session:
        audit.record(session, ALICE, "incident.report", "incident", 1)
        session.rollback()
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 0
        assert session.get(AuditHead, audit.HEAD_ID).seq == 0
        assert audit.verify(session).ok


def test_the_trail_refuses_updates_and_deletes(engine, sessions):
    _append(sessions, 2)
    for statement in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log WHERE seq = 1"):
        with engine.connect() as conn, pytest.raises(DBAPIError, match="append-only"):
            conn.execute(text(statement))
    with sessions() as session:
        assert audit.verify(session).ok


def _as_attacker(engine, *statements: str) -> None:
    with engine.begin() as conn:
        audit.remove_guards(conn)
        for statement in statements:
            conn.execute(text(statement))
        audit.install_guards(conn)


def _findings(sessions) -> list[audit.Finding]:
    with sessions() as session:
        return audit.verify(session).findings


def test_an_edited_entry_is_named(engine, sessions):
    _append(sessions, 4)
    _as_attacker(engine, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    [finding] = _findings(sessions)
    assert (finding.kind, finding.seq) == ("changed", 2)
    assert "entry 2" in finding.message and "mallory" in finding.message


def test_an_edited_entry_with_a_recomputed_hash_is_named(engine, sessions):
    """Rewriting the hash too only moves the break to the link from the next entry."""
    _append(sessions, 4)
    with sessions() as session:
        e = session.scalar(select(AuditEntry).where(AuditEntry.seq == 2))
        forged = audit.entry_hash(
            seq=e.seq, at=e.at, actor_id=e.actor_id, actor="mallory", channel=e.channel, address=e.address,
            action=e.action, object_type=e.object_type, object_id=e.object_id, changes=e.changes,
            prev_hash=e.prev_hash,
        )  # fmt: skip
    _as_attacker(engine, f"UPDATE audit_log SET actor = 'mallory', hash = '{forged}' WHERE seq = 2")
    [finding] = _findings(sessions)
    assert (finding.kind, finding.seq) == ("changed", 2)


def test_a_deleted_entry_is_named(engine, sessions):
    _append(sessions, 4)
    _as_attacker(engine, "DELETE FROM audit_log WHERE seq = 3")
    [finding] = _findings(sessions)
    assert (finding.kind, finding.seq) == ("deleted", 3)
    assert "entry 3 deleted" in finding.message


def test_a_deleted_newest_entry_is_named(engine, sessions):
    _append(sessions, 4)
    _as_attacker(engine, "DELETE FROM audit_log WHERE seq = 4")
    [finding] = _findings(sessions)
    assert (finding.kind, finding.seq) == ("deleted", 4)


def test_an_inserted_entry_is_named(engine, sessions):
    _append(sessions, 3)
    with sessions() as session:
        last = session.scalar(select(AuditEntry).where(AuditEntry.seq == 3))
        at = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
        # A well-formed entry, hashed and linked as the service would: only the head betrays it.
        forged = audit.entry_hash(
            seq=4, at=at, actor_id=None, actor="mallory", channel="api", address=None,
            action="incident.close", object_type="incident", object_id="9", changes=None, prev_hash=last.hash,
        )  # fmt: skip
        session.add(
            AuditEntry(
                seq=4, at=at, actor_id=None, actor="mallory", channel="api", address=None,
                action="incident.close", object_type="incident", object_id="9", changes=None,
                prev_hash=last.hash, hash=forged,
            )
        )  # fmt: skip
        session.commit()
    [finding] = _findings(sessions)
    assert (finding.kind, finding.seq) == ("inserted", 4)
    assert "mallory" in finding.message


def test_an_entry_inserted_before_the_start_is_named(engine, sessions):
    _append(sessions, 2)
    _as_attacker(
        engine,
        "INSERT INTO audit_log (seq, at, actor, channel, action, object_type, prev_hash, hash) "
        f"VALUES (0, '2026-01-01 00:00:00', 'mallory', 'api', 'user.create', 'user', '{audit.GENESIS}', 'x')",
    )
    kinds = {(f.kind, f.seq) for f in _findings(sessions)}
    assert ("inserted", 0) in kinds


def test_concurrent_appenders_keep_one_chain(sessions):
    """Writers in parallel transactions (threads, own sessions) still form one unbroken chain."""
    errors = []

    def worker():
        try:
            for _ in range(10):
                _append(sessions, 1)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with sessions() as session:
        result = audit.verify(session)
        assert result.ok, result.findings
        assert result.entries == result.head_seq == 40


def test_values_are_stored_as_they_are_hashed():
    assert audit.jsonable({"at": datetime(2026, 3, 1, 8, tzinfo=UTC), "n": 2.5, "s": {"b", "a"}}) == {
        "at": "2026-03-01T08:00:00Z",
        "n": 2.5,
        "s": ["a", "b"],
    }
    assert audit.changes({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": None}) == {"b": [2, 3]}
