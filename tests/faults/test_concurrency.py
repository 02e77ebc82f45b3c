"""Many writers and readers at once: every request is answered, none with "database is locked"
or a 503, and no write waits on a read (see patrol/db.py for why SQLite's locking allows it)."""

from __future__ import annotations

import threading
import time

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select
from utils.browser import serving
from utils.factories import add_users, auth
from utils.faults import hold_write_lock
from utils.phone import Crowd, TrackFiles, sign_in, track_file, upload_track

from api.app import create_app
from patrol.db import create_db_engine
from patrol.grids import metric_grid_index
from patrol.models import User

WRITERS = 8
UPLOADS = 16


def test_eight_phones_uploading_while_lists_are_read_all_get_answers(app, sessions):
    add_users(sessions, "member")
    with serving(app) as url:
        token = sign_in(url, "member")
        crowd = Crowd(url, token, WRITERS, TrackFiles(limit=UPLOADS)).start()
        reads: list[int] = []

        def read_lists():
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
                while True:
                    reads.append(c.get("/api/v1/patrols", params={"limit": 20}).status_code)
                    reads.append(c.get("/api/v1/incidents").status_code)
                    if not crowd.running():
                        break

        readers = [threading.Thread(target=read_lists) for _ in range(2)]
        for reader in readers:
            reader.start()
        crowd.join()
        for reader in readers:
            reader.join(60)
    assert len(crowd.acknowledged()) == UPLOADS
    assert {a.status for a in crowd.log} <= {201}, [a.body for a in crowd.log if a.status != 201][:3]
    assert reads and set(reads) == {200}


def test_each_worker_thread_splits_tracks_with_its_own_prepared_polygons(sessions):
    """GEOS prepared geometries are not thread-safe: uploads in the service's worker threads that
    shared one grid index crashed the whole process (a segmentation fault in the test above). The
    cached index is shared; each thread tests points against its own prepared copy."""

    def polygons_seen_by_a_thread() -> tuple:
        with sessions() as session:
            index = metric_grid_index(session)[0]
            return index, index.polygons, metric_grid_index(session)[0].polygons

    seen = {}
    for n in (1, 2):  # one after the other: a second thread must not be handed the first's copy
        thread = threading.Thread(target=lambda n=n: seen.update({n: polygons_seen_by_a_thread()}))
        thread.start()
        thread.join()
    (index, first, again), (same_index, other, _) = seen[1], seen[2]
    assert index is same_index  # one index (and lattice) for all threads, built once per grid change
    assert first is again  # a thread reuses its own copy
    assert first is not other and first[0] is not other[0]


def test_a_writer_waits_for_the_write_lock_instead_of_failing(spatialite, settings, sessions):
    add_users(sessions, "member")
    app = create_app(settings=settings, engine=create_db_engine(settings=settings, busy_timeout_s=10))
    with TestClient(app) as client:
        headers = auth(client, "member")
        lock = hold_write_lock(spatialite)
        other_writer = threading.Timer(1.0, lock.rollback)  # finishes within a second
        other_writer.start()
        began = time.monotonic()
        assert upload_track(client, headers).status_code == 201
        assert time.monotonic() - began >= 0.9
        other_writer.join()
        lock.close()


def test_a_session_that_read_before_another_commit_can_still_write(sessions):
    """SQLite would refuse this write at once (SQLITE_BUSY_SNAPSHOT, "database is locked" without
    waiting) if the read had opened the transaction; the driver opens it at the first write."""
    add_users(sessions, "member")
    with sessions() as session:
        member = session.scalar(select(User).where(User.username == "member"))
        add_users(sessions, "admin")  # another connection writes and commits meanwhile
        member.display_name = "M"
        session.commit()
    with sessions() as session:
        assert session.scalar(select(User.display_name).where(User.username == "member")) == "M"


def test_the_same_file_sent_by_several_phones_at_once_makes_one_patrol(app, sessions):
    """Two crew members upload the same track at the same moment: one upload creates the patrol,
    the others are answered with it (200), never a 500 from the unique file hash."""
    add_users(sessions, "member")
    name, content = track_file(0)
    with serving(app) as url:
        token = sign_in(url, "member")
        answers: list[httpx.Response] = []
        start = threading.Barrier(4)

        def send():
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
                start.wait()
                answers.append(c.post("/api/v1/patrols", files={"file": (name, content)}))

        senders = [threading.Thread(target=send) for _ in range(4)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(60)
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 201], [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
