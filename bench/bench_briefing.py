"""The monthly briefing for one month of a year of demo data: time to build it (data and analyses,
figures, HTML, PDF), against two baselines measured in the same run on the same data:

* bare queries: only the frames the briefing starts from (grids, visits, incidents, effort for the
  month and the previous one) — the floor no briefing can go below;
* naive per-grid loop: the per-grid numbers a hand-written report would gather with one query per
  grid and question (visits, km, incidents by status), no analyses, no figures.

    .venv/bin/python bench/bench_briefing.py [--keep] [--runs 3] [--month YYYY-MM]

Data (SpatiaLite, built once into bench/out/briefing-year.sqlite and reused with --keep): the same
year as bench/bench_maps.py — synthetic patrols of the six teams through the real upload pipeline
(5 per team-week, ≥ 1,500) and 10,000 incidents bulk-loaded as in bench_incidents.py. The briefing
is the last full China-time month (or --month) for both sides, as an admin sees it, and for
Lianjiang as its enforcement officer sees it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

import geodata.reference  # noqa: E402,F401  (before any connection loads mod_spatialite)

OUT = ROOT / "bench" / "out"
DB = OUT / "briefing-year.sqlite"
LIMIT_S = 10.0


def last_full_month() -> str:
    from patrol.effort import LOCAL_TIME

    today = datetime.now(LOCAL_TIME)
    return f"{today.year - (today.month == 1)}-{(today.month - 2) % 12 + 1:02d}"


def build(session, principal, settings, month, side):
    """The briefing, timed per stage: (seconds per stage, briefing, pdf bytes)."""
    from patrol.briefing import figures
    from patrol.briefing.collect import collect_briefing
    from patrol.briefing.render import render_html, to_pdf

    t0 = time.perf_counter()
    briefing = collect_briefing(session, principal, settings, month=month, side=side)
    t1 = time.perf_counter()
    images = figures.all_figures(briefing)
    t2 = time.perf_counter()
    html = render_html(briefing, images=images)
    t3 = time.perf_counter()
    pdf = to_pdf(html)
    t4 = time.perf_counter()
    return (
        {"data": t1 - t0, "figures": t2 - t1, "html": t3 - t2, "pdf": t4 - t3, "total": t4 - t0},
        briefing,
        pdf,
    )


def bare_queries(session, principal, settings, month, side) -> float:
    from patrol.analysis.data import effort_frame, grids_frame, incidents_frame, visits_frame
    from patrol.analysis.scope import analysis_scope, month_bounds, previous_month

    t0 = time.perf_counter()
    for m in (month, previous_month(month)):
        start, end = month_bounds(m)
        scope = analysis_scope(session, principal, settings, start=start, end=end, side=side)
        grids_frame(session, scope)
        visits_frame(session, scope)
        incidents_frame(session, principal, scope, settings)
        effort_frame(session, scope, settings)
    return time.perf_counter() - t0


def naive_loop(session, principal, settings, month, side) -> tuple[float, int]:
    """One query per grid and question, as a first hand-written report would (ORM, no frames)."""
    from sqlalchemy import func, select

    from patrol.analysis.scope import month_bounds, previous_month
    from patrol.incidents import visible_clause
    from patrol.models import Grid, Incident, PatrolVisit

    t0 = time.perf_counter()
    queries = 0
    visible = visible_clause(principal, settings.incidents)
    for m in (month, previous_month(month)):
        start, end = month_bounds(m)
        grids = session.scalars(
            select(Grid).where(Grid.retired_at.is_(None), *([Grid.side == side] if side else []))
        )
        queries += 1
        for grid in grids.all():
            in_month = (
                PatrolVisit.grid_id == grid.id,
                PatrolVisit.entered_at >= start,
                PatrolVisit.entered_at < end,
            )
            session.scalar(select(func.count(func.distinct(PatrolVisit.patrol_id))).where(*in_month))
            session.scalar(select(func.coalesce(func.sum(PatrolVisit.distance_m), 0)).where(*in_month))
            session.scalar(select(func.coalesce(func.sum(PatrolVisit.duration_s), 0)).where(*in_month))
            clauses = [Incident.grid_id == grid.id, Incident.observed_at >= start, Incident.observed_at < end]
            if visible is not None:
                clauses.append(visible)
            for incident in session.scalars(select(Incident).where(*clauses)):
                _ = (incident.status, incident.category, incident.responded_at, incident.accept_due)
            queries += 4
    return time.perf_counter() - t0, queries


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keep", action="store_true", help="reuse bench/out/briefing-year.sqlite if present")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--month", help="YYYY-MM (default: the last full month, China time)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)

    import bench_maps

    bench_maps.DB = DB  # the same year of data, in this bench's own file
    settings = bench_maps.settings_for(DB)
    if not (args.keep and DB.exists()):
        print("building a year of demo data (once; --keep reuses it) …", flush=True)
        timings = bench_maps.build_year(settings)
        print(f"  incidents {timings['incidents_s']:.1f} s, patrols {timings['patrols_s']:.1f} s")

    from sqlalchemy import func, select

    from patrol import migrate
    from patrol.accounts import Principal
    from patrol.db import create_db_engine, make_session_factory
    from patrol.models import Incident, Patrol, Role, User

    engine = create_db_engine(settings=settings)
    migrate.upgrade(engine)  # a kept file may predate the newest schema
    sessions = make_session_factory(engine)
    month = args.month or last_full_month()
    with sessions() as session:
        n_patrols = session.scalar(select(func.count(Patrol.id)))
        n_incidents = session.scalar(select(func.count(Incident.id)))
        admin = Principal.of(session.scalar(select(User).where(User.username == "admin")))
        officer = session.scalar(
            select(User).where(User.side == "GD-LJ", User.roles.any(role=Role.ENFORCEMENT_OFFICER))
        )
        cases = [("admin, both sides", admin, None)]
        if officer is not None:
            cases.append((f"officer {officer.username}, GD-LJ", Principal.of(officer), None))
        results = {}
        # The first briefing after start also imports the analysis stack (scipy, esda, libpysal,
        # matplotlib, WeasyPrint) and loads the font: timed apart, as a service pays it once.
        cold, _, _ = build(session, cases[0][1], settings, month, cases[0][2])
        for label, principal, side in cases:
            runs, bare, naive = [], [], []
            for _ in range(args.runs):
                stages, briefing, pdf = build(session, principal, settings, month, side)
                runs.append(stages)
                bare.append(bare_queries(session, principal, settings, month, side))
                naive_s, queries = naive_loop(session, principal, settings, month, side)
                naive.append(naive_s)
            results[label] = (runs, bare, naive, queries, briefing, pdf)
            (OUT / f"briefing-{month}-{label.split(',')[0].replace(' ', '-')}.pdf").write_bytes(pdf)

    import bench_incidents as bi

    print(
        f"\nmachine: {bi.cpu_model()}, {os.cpu_count()} CPUs, {bi.mem_gib():.0f} GiB; {datetime.now(UTC):%Y-%m-%d}"
    )
    print(
        f"data: {n_patrols:,} patrols, {n_incidents:,} incidents in the database; month {month}; {args.runs} runs"
    )
    print(f"first briefing after start (imports, font): {cold['total']:.2f} s")
    ok = True
    for label, (runs, bare, naive, queries, briefing, pdf) in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"\n{label}: {briefing.totals.patrols} patrols, {briefing.totals.km:.0f} km, "
              f"{briefing.totals.incidents} incidents in the month; {len(briefing.grids)} grids; "
              f"PDF {len(pdf) / 1e6:.2f} MB; notes: {briefing.notes or 'none'}")  # fmt: skip
        print(
            f"  {'briefing, total (median)':34}{med['total']:>8.2f} s   runs: "
            + ", ".join(f"{r['total']:.2f}" for r in runs)
        )
        for stage in ("data", "figures", "html", "pdf"):
            print(f"    {stage:32}{med[stage]:>8.2f} s")
        b, n = statistics.median(bare), statistics.median(naive)
        print(f"  {'baseline: bare data queries':34}{b:>8.2f} s   (briefing / bare {med['total'] / b:.1f}×)")
        print(
            f"  {'baseline: naive per-grid loop':34}{n:>8.2f} s   ({queries} queries; numbers only, no analyses)"
        )
        ok = ok and med["total"] <= LIMIT_S
    print(f"\n  built in ≤ {LIMIT_S:g} s: {'met' if ok else 'NOT met'}")
    print(
        f"  ≥ 1,500 patrols and ≥ 10,000 incidents: {'met' if n_patrols >= 1500 and n_incidents >= 10_000 else 'NOT met'}"
    )
    engine.dispose()


if __name__ == "__main__":
    main()
