"""kill -9 during uploads on SpatiaLite: the real service (a child process) is killed at random
moments while phones upload, five times. After each kill the database file is consistent, the
audit chain verifies, and every upload acknowledged before the kill is there whole."""

from __future__ import annotations

import random
import time

from sqlalchemy import func, select, text
from utils.faults import prepare_database, settings_for, upload_problems
from utils.phone import Crowd, TrackFiles, sign_in
from utils.service import Service

from patrol import audit
from patrol.db import create_db_engine, make_session_factory
from patrol.models import Patrol

ROUNDS = 5
PHONES = 3


def check_database(url: str, data_dir, acknowledged: dict[str, int]) -> tuple[str, bool, list[str], int]:
    """(integrity_check, audit chain ok, problems of the acknowledged uploads, patrols stored),
    read as the next start of the service would: the first connection recovers the WAL."""
    engine = create_db_engine(url, settings=settings_for(url, data_dir))
    try:
        with make_session_factory(engine)() as session:
            integrity = session.scalar(text("PRAGMA integrity_check"))
            chain = audit.verify(session)
            problems = upload_problems(session, acknowledged)
            stored = session.scalar(select(func.count(Patrol.id)))
    finally:
        engine.dispose()
    return integrity, chain.ok, problems, stored


def test_every_acknowledged_upload_survives_kill_9(tmp_path):
    url = f"sqlite:///{tmp_path / 'mangrove.sqlite'}"
    wal = tmp_path / "mangrove.sqlite-wal"
    prepare_database(url, tmp_path, "member")
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    service = Service(url, tmp_path)
    service.start()
    crowd = Crowd(service.url, sign_in(service.url, "member"), PHONES, TrackFiles(), max_pause_s=0.2)
    crowd.start()
    rounds = []
    try:
        for _ in range(ROUNDS):
            time.sleep(rng.uniform(0.5, 2.5))
            service.kill()
            acknowledged = crowd.acknowledged()  # every answer that came before the kill
            wal_kb = wal.stat().st_size // 1024 if wal.exists() else 0  # the log the next start reads
            integrity, chain_ok, problems, stored = check_database(url, tmp_path, acknowledged)
            rounds.append((len(acknowledged), stored, wal_kb))
            assert integrity == "ok", f"seed {seed}: {integrity}"
            assert chain_ok, f"seed {seed}: the audit chain does not verify"
            assert not problems, f"seed {seed}: {problems}"
            service.start()
    finally:
        crowd.finish()
        service.stop()

    integrity, chain_ok, problems, stored = check_database(url, tmp_path, crowd.acknowledged())
    cut = sum(a.status is None and a.body != "ConnectError" for a in crowd.log)
    print(
        f"\nseed {seed}: after each kill (acknowledged, stored, KiB of WAL): {rounds}; "
        f"{cut} uploads cut off mid-request; "
        f"in the end {len(crowd.acknowledged())} acknowledged, {stored} stored, "
        f"{sum(o.created is False for o in crowd.outcomes)} answered with the patrol stored before a kill"
    )
    assert integrity == "ok" and chain_ok and not problems, problems
    assert not crowd.unacknowledged(), [o.answers[-1] for o in crowd.unacknowledged()]
    assert stored == len(crowd.acknowledged())
    assert not [a for a in crowd.log if a.status not in (None, 200, 201)], "an upload was refused"
    assert "Traceback" not in service.log()
