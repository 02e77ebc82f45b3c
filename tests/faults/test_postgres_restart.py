"""Uploads while PostgreSQL restarts: the real service (a child process) on a PostGIS cluster of the
test's own, phones uploading distinct tracks all along, the cluster restarted and then stopped for
a few seconds. Nothing acknowledged is lost, nothing is stored twice, nothing answers 500, and
the service serves again by itself once the database is back."""

from __future__ import annotations

import time

from sqlalchemy import func, select
from utils.faults import prepare_database, settings_for, upload_problems
from utils.pgcluster import own_cluster
from utils.phone import Crowd, HealthProbe, TrackFiles, sign_in
from utils.service import Service

from patrol.db import create_db_engine, make_session_factory
from patrol.models import Patrol

PHONES = 4
DOWN_S = 3.0


def test_uploads_survive_a_postgres_restart_and_a_stop(tmp_path):
    with own_cluster("restart") as cluster:
        url = cluster.create_postgis_database("mangrove")
        prepare_database(url, tmp_path, "member")
        with Service(url, tmp_path) as service:
            probe = HealthProbe(service.url).start()
            crowd = Crowd(service.url, sign_in(service.url, "member"), PHONES, TrackFiles()).start()
            try:
                time.sleep(2)  # uploads under way
                restarted_at = _timed(cluster.restart)
                after_restart_s = probe.serving_again_after(restarted_at)
                time.sleep(2)
                stopped_at = time.monotonic()
                cluster.stop()
                time.sleep(DOWN_S)
                started_at = _timed(cluster.start)
                after_start_s = probe.serving_again_after(started_at)
                time.sleep(2)  # uploads after the recovery
            finally:
                crowd.finish()
                probe.stop()
            log = service.log()

        engine = create_db_engine(url, settings=settings_for(url, tmp_path))
        with make_session_factory(engine)() as session:
            stored = session.scalar(select(func.count(Patrol.id)))
            problems = upload_problems(session, crowd.acknowledged())
        engine.dispose()

    answers = crowd.log + probe.log
    down = [a for a in answers if stopped_at <= a.at <= started_at]
    unavailable = [a for a in answers if a.status == 503]
    server_errors = [a for a in answers if a.status and a.status >= 500 and a.status != 503]
    acknowledged = crowd.acknowledged()
    outage_s = _outage(probe.log, stopped_at)
    print(
        f"\n{len(acknowledged)} uploads acknowledged, {stored} patrols stored, "
        f"{len(problems)} problems; {len(crowd.log)} upload requests: "
        f"{sum(a.status == 503 for a in crowd.log)} × 503, {sum(a.status is None for a in crowd.log)} "
        f"without answer, {len(server_errors)} × other 5xx; serving again {after_restart_s:.2f} s after "
        f"the restart, {after_start_s:.2f} s after the start that followed {DOWN_S:.0f} s down "
        f"(out of service {outage_s:.2f} s in all); {sum(o.created is False for o in crowd.outcomes)} "
        "uploads stored before their answer was lost were answered with the first patrol on a retry"
    )
    assert not server_errors, server_errors[:3]
    assert "Traceback" not in log
    assert not crowd.unacknowledged(), [o.answers[-1] for o in crowd.unacknowledged()]
    assert not problems, problems
    assert stored == len(acknowledged)  # none lost, none extra
    assert any(a.status == 503 for a in down), "nothing answered 503 while the database was down"
    for answer in unavailable:
        assert answer.retry_after and answer.retry_after.isdigit(), answer
        assert answer.content_type == "application/problem+json", answer
    assert after_restart_s < 10 and after_start_s < 10


def _outage(log, since: float) -> float:
    """Seconds from the first failed health check after ``since`` to the next 200."""
    failed = next(a.at for a in log if a.at >= since and a.status != 200)
    return next(a.at for a in log if a.at > failed and a.status == 200) - failed


def _timed(action) -> float:
    """Run ``action``; the time it returned."""
    action()
    return time.monotonic()
