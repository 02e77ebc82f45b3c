"""The stored-response store behind safe retries, at the moments a live race makes rare: a copy of
a request whose first one commits while the copy is still working answers with the first's
response, and whatever the copy made is rolled back and undone."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from utils.factories import add_users

from patrol.errors import Conflict
from patrol.idempotency import KeyedRequest, StoredResponse, run_once
from patrol.models import IdempotencyKey, User

DAY = timedelta(days=1)
FIRST = StoredResponse(201, {"id": 7, "href": "/api/v1/incidents/1/photos/7"}, None)


@pytest.fixture
def request_of_member(sessions) -> KeyedRequest:
    add_users(sessions, "member")
    with sessions() as session:
        user_id = session.scalar(select(User.id).where(User.username == "member"))
    return KeyedRequest(user_id, "photo-1", "POST", "/api/v1/incidents/1/photos", "f" * 64)


def first_copy_commits(sessions, request: KeyedRequest) -> None:
    """The first copy of the request finishes: its key and response are committed (with its
    object, which these tests do not need)."""
    now = datetime.now(UTC)
    with sessions() as other:
        other.add(
            IdempotencyKey(
                user_id=request.user_id, key=request.key, method=request.method, path=request.path,
                fingerprint=request.fingerprint, status=FIRST.status, body=FIRST.body,
                location=FIRST.location, created_at=now, expires_at=now + DAY,
            )
        )  # fmt: skip
        other.commit()


def keys(sessions) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(IdempotencyKey))


def test_a_copy_the_domain_refuses_because_the_first_just_committed_gets_the_first_response(
    sessions, request_of_member
):
    def create():
        first_copy_commits(sessions, request_of_member)
        raise Conflict("this photo is already attached to incident 1 (photo 7)")

    with sessions() as session:
        assert run_once(session, request_of_member, create, retention=DAY) == (FIRST, True)


def test_a_copy_whose_key_insert_collides_is_rolled_back_and_undone(sessions, request_of_member, tmp_path):
    made = tmp_path / "photo.png"

    def create():
        made.write_bytes(b"the copy's file")
        first_copy_commits(sessions, request_of_member)
        return StoredResponse(201, {"id": 8}, None)

    with sessions() as session:
        answer = run_once(session, request_of_member, create, retention=DAY, undo=made.unlink)
    assert answer == (FIRST, True)
    assert not made.exists() and keys(sessions) == 1


def test_a_refusal_with_no_first_copy_stands_and_stores_nothing(sessions, request_of_member):
    def create():
        raise Conflict("this photo is already attached to incident 1 (photo 3)")

    with sessions() as session, pytest.raises(Conflict, match="photo 3"):
        run_once(session, request_of_member, create, retention=DAY)
    assert keys(sessions) == 0


class BrokenDuringCommit(OperationalError):
    def __init__(self):
        super().__init__("COMMIT", {}, Exception("server closed the connection unexpectedly"))
        self.connection_invalidated = True


@pytest.mark.parametrize("stored", [True, False], ids=["stored", "not-stored"])
def test_a_file_is_kept_when_the_connection_breaks_during_the_commit(sessions, tmp_path, stored):
    """Whether the commit was stored is unknown when the connection broke during it: the photo's
    file stays, so a stored row never points to a missing file (an unreferenced file is harmless)."""
    made = tmp_path / "photo.png"
    with sessions() as session:
        commit = session.commit

        def commit_then_break():
            if stored:
                commit()
            raise BrokenDuringCommit()

        session.commit = commit_then_break
        with pytest.raises(OperationalError):
            run_once(
                session, None, lambda: made.write_bytes(b"photo") and FIRST, retention=DAY, undo=made.unlink
            )
    assert made.exists()


def test_a_file_is_removed_when_the_commit_is_refused(sessions, tmp_path):
    made = tmp_path / "photo.png"
    with sessions() as session:
        session.commit = lambda: (_ for _ in ()).throw(IntegrityError("COMMIT", {}, Exception("refused")))
        with pytest.raises(IntegrityError):
            run_once(
                session, None, lambda: made.write_bytes(b"photo") and FIRST, retention=DAY, undo=made.unlink
            )
    assert not made.exists()
