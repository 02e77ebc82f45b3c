"""The monthly assessment (考核) at volume, on SpatiaLite and PostGIS.

    .venv/bin/python bench/bench_assessment.py [--patrols 20000] [--backends spatialite,postgis]

A fresh database with the demo accounts; ``--patrols`` patrols in November 2026 spread over the
six teams' members (each with 3 visits in its team's grids) and as many incidents, bulk-inserted
(no tracks: the assessment reads only the stored summaries). Then ``assessment`` for the month,
by team and by member, best of 3, with the number of SQL statements it sent (fixed: it does not
loop over teams). PostGIS databases are created on the shared server
(``MANGROVE_TEST_POSTGRES_URL``, default 127.0.0.1:5432) and dropped afterwards.

Measured (2 shared cores, under other workers' load; 20,000 patrols, 60,000 visits, 20,000
incidents in the month), best of 3, 6 statements each:
  SpatiaLite: by team 478 ms, by member 527 ms (an earlier run: 0.8–1.0 s under heavier load);
  PostGIS:    by team 575 ms, by member 749 ms.
The demo's own month (≈80 patrols, 30 incidents) takes 30–45 ms on SpatiaLite. About a third is
SQL, a third turning rows into frames, the rest pandas grouping.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geoalchemy2 import WKTElement  # noqa: E402
from sqlalchemy import create_engine, event, insert, select, text  # noqa: E402

from patrol import migrate  # noqa: E402
from patrol.accounts import Principal  # noqa: E402
from patrol.analysis.assessment import assessment  # noqa: E402
from patrol.db import create_db_engine, make_session_factory  # noqa: E402
from patrol.demo import load_demo  # noqa: E402
from patrol.models import Grid, Incident, Patrol, PatrolMember, PatrolVisit, Role, UserRole  # noqa: E402
from patrol.settings import Settings, StorageSettings  # noqa: E402

PG_ADMIN_URL = os.environ.get(
    "MANGROVE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
ADMIN = Principal(user_id=0, username="bench", display_name="bench", side="", roles=frozenset({Role.ADMIN}))


def fill(session, n: int) -> None:
    rnd = random.Random(1)
    members = session.execute(
        select(UserRole.user_id, UserRole.team).where(UserRole.role == Role.PATROL_MEMBER.value)
    ).all()
    grids: dict[str, list[int]] = {}
    for gid, team in session.execute(select(Grid.id, Grid.team)).all():
        grids.setdefault(team, []).append(gid)
    start = datetime(2026, 10, 31, 16, tzinfo=UTC)  # 1 Nov 00:00 China time
    patrols, crews, visits, incidents = [], [], [], []
    for pid in range(1, n + 1):
        uid, team = rnd.choice(members)
        t = start + timedelta(seconds=rnd.uniform(0, 29 * 86400))
        patrols.append(
            dict(id=pid, side="GD-LJ" if team.startswith("LJ") else "GX-HP", team=team, uploaded_by=uid,
                 uploaded_at=t, file_sha256=f"{pid:064x}", source_name="x.gpx", source_format="gpx",
                 datum="wgs84", transport="foot", started_at=t, ended_at=t + timedelta(hours=2), fix_count=100,
                 flagged_count=0, distance_m=5000.0, duration_s=7200.0, outside_distance_m=0.0,
                 outside_duration_s=0.0, summary={})
        )  # fmt: skip
        crews.append(dict(patrol_id=pid, user_id=uid))
        for seq, g in enumerate(rnd.sample(grids[team], 3)):
            visits.append(dict(patrol_id=pid, grid_id=g, seq=seq, entered_at=t, exited_at=t, distance_m=1500.0,
                               duration_s=1800.0))  # fmt: skip
        seen = t + timedelta(hours=1)
        incidents.append(
            dict(category="rubbish", severity="low", level="village", description="", observed_at=seen,
                 reported_at=seen, reporter_id=uid, lon=109.8, lat=21.5,
                 geom=WKTElement("POINT(109.8 21.5)", srid=4326), grid_match="none", side="GD-LJ",
                 border_distance_m=9999.0, status="reported", accept_due=seen + timedelta(hours=4),
                 resolve_due=seen + timedelta(days=2), updated_at=seen)
        )  # fmt: skip
    for model, rows in (
        (Patrol, patrols),
        (PatrolMember, crews),
        (PatrolVisit, visits),
        (Incident, incidents),
    ):
        session.execute(insert(model), rows)
    session.commit()


def run(name: str, url: str, n: int, data_dir: Path) -> None:
    settings = Settings()
    settings.storage = StorageSettings(data_dir=data_dir, database_url=url)
    engine = create_db_engine(url, settings=settings)
    migrate.upgrade(engine)
    with make_session_factory(engine)() as session:
        load_demo(session)
        session.commit()
        t = time.perf_counter()
        fill(session, n)
        print(
            f"{name}: {n} patrols, {3 * n} visits, {n} incidents inserted in {time.perf_counter() - t:.1f} s"
        )
        statements: list[str] = []
        event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
        for by in ("team", "member"):
            best = float("inf")
            for _ in range(3):
                statements.clear()
                t = time.perf_counter()
                rows = assessment(
                    session, ADMIN, settings, "2026-11", by, now=datetime(2026, 12, 15, tzinfo=UTC)
                )
                best = min(best, time.perf_counter() - t)
            print(
                f"{name}: by {by}: best of 3 {best * 1000:.0f} ms, {len(statements)} statements, {len(rows)} rows, "
                f"{sum(r['patrols'] for r in rows)} patrols, {sum(r['incidents_found'] for r in rows)} incidents"
            )
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patrols", type=int, default=20_000)
    parser.add_argument("--backends", default="spatialite,postgis")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            if backend == "spatialite":
                run(backend, f"sqlite:///{tmp}/bench.sqlite", args.patrols, Path(tmp))
                continue
            db = f"mangrove_bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{db}"'))
            try:
                run(
                    backend,
                    admin.url.set(database=db).render_as_string(hide_password=False),
                    args.patrols,
                    Path(tmp),
                )
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
                admin.dispose()


if __name__ == "__main__":
    main()
