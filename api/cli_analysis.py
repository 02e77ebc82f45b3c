"""``mangrove analysis …``: encounter rates, hot spots, recurring places and patrol priorities from
the command line, with the same checks and visibility as the API (``--as USER``)."""

from __future__ import annotations

import csv
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from patrol.analysis import reports
from patrol.analysis.priorities import priorities_report
from patrol.analysis.scope import analysis_scope, requested_period


def _scope(session, args):
    from api.cli import _principal_of
    from api.params import parse_datetime_interval
    from patrol.settings import get_settings

    settings = get_settings()
    principal = _principal_of(session, args.as_user)
    now = datetime.now(UTC)
    start, end = parse_datetime_interval(args.datetime)
    start, end = requested_period(start, end, now)
    scope = analysis_scope(
        session, principal, settings, start=start, end=end, side=args.side, town=args.town,
        station=args.station, grids=args.grid or (), categories=args.category or (), now=now,
    )  # fmt: skip
    return principal, settings, scope


def _session():
    from api.cli import _engine
    from patrol.db import make_session_factory

    return make_session_factory(_engine())()


def _write_rows(rows: list[dict], path: str) -> None:
    with open(path, "w", newline="", encoding="utf-8-sig") as f:  # BOM: Excel reads the Chinese right
        from patrol import csvsafe

        writer = csv.writer(f)
        if rows:
            writer.writerow(rows[0].keys())
        for row in rows:
            writer.writerow(csvsafe.row(["" if v is None else v for v in row.values()]))


def _emit(args, payload: dict, rows: list[dict], table) -> int:
    if args.output:
        if args.output.endswith(".csv"):
            _write_rows(rows, args.output)
        else:
            Path(args.output).write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    elif args.json:
        print(json.dumps(payload, ensure_ascii=False, indent=2))
    else:
        table()
    return 0


def cmd_rates(args) -> int:
    with _session() as session:
        principal, settings, scope = _scope(session, args)
        frame = reports.rates_report(session, principal, settings, scope)
    rows = reports.records(frame)

    def table():
        print(f"encounter rates {scope.label()} ({settings.analysis.confidence:.0%} Poisson intervals)")
        print(
            f"{'grid':<10} {'category':<20} {'n':>4} {'km':>8} {'hours':>7} {'per 10 km':>22} {'per 100 h':>24}"
        )
        for r in rows:
            print(f"{r['grid']:<10} {r['category']:<20} {r['incidents']:>4} {r['km']:>8.1f} {r['hours']:>7.1f} "
                  f"{_rate(r, 'per_10km'):>22} {_rate(r, 'per_100h'):>24}  {r.get('note') or ''}")  # fmt: skip

    return _emit(args, {"period": scope.label(), "rates": rows}, rows, table)


def _rate(row: dict, key: str) -> str:
    if row.get(key) is None:
        return "-"
    return f"{row[key]:.2f} ({row[key + '_low']:.2f}–{row[key + '_high']:.2f})"


def cmd_hotspots(args) -> int:
    with _session() as session:
        principal, settings, scope = _scope(session, args)
        spots = reports.hotspots_report(
            session, principal, settings, scope, cell_m=args.cell_m, shape=args.shape,
            normalise=args.normalise, correction=args.correction, alpha=args.alpha,
        )  # fmt: skip
    payload = reports.hotspots_geojson(spots, all_cells=args.all_cells)
    cells = (
        spots.cells
        if args.all_cells
        else spots.cells[(spots.cells["count"] > 0) | spots.cells["significant"]]
    )
    rows = reports.records(cells.drop(columns=["geometry", "x", "y"]))

    def table():
        print(f"hot spots {scope.label()}: {spots.method}; {payload['cells_tested']} cells of {spots.cell_m:g} m "
              f"({spots.shape}), {spots.incidents} incidents; {payload['hot']} hot, {payload['cold']} cold")  # fmt: skip
        for r in sorted((r for r in rows if r["significant"]), key=lambda r: -(r["z"] or 0)):
            print(f"  {r['kind']:<4} cell {r['cell']:>6} {r['grid'] or '-':<10} n={r['count']:<4} z={r['z']:.2f} "
                  f"p_adj={r['p_adjusted']:.4f}  {r['lon']:.5f},{r['lat']:.5f}")  # fmt: skip

    return _emit(args, payload, rows, table)


def cmd_recurring(args) -> int:
    with _session() as session:
        principal, settings, scope = _scope(session, args)
        places = reports.recurring_report(session, principal, settings, scope, distance_m=args.distance_m,
                                          min_months=args.min_months)  # fmt: skip
    rows = reports.records(places.drop(columns=["x", "y"], errors="ignore"))

    def table():
        print(f"recurring places {scope.label()}: {len(rows)}")
        for r in rows:
            print(f"  {r['category']:<20} {r['count']:>3} incidents in {len(r['months'])} months "
                  f"({', '.join(r['months'])}) at {r['lon']:.5f},{r['lat']:.5f} {' '.join(r.get('grids') or [])}")  # fmt: skip

    return _emit(args, {"period": scope.label(), "places": rows}, rows, table)


def cmd_priorities(args) -> int:
    with _session() as session:
        principal, settings, scope = _scope(session, args)
        frame = priorities_report(session, principal, settings, scope, limit=args.limit)
    rows = reports.records(frame)

    def table():
        print(f"{'#':>3} {'grid':<10} {'score':>5}  why")
        for r in rows:
            print(f"{r['rank']:>3} {r['grid']:<10} {r['score']:>5.1f}  {'; '.join(r['reasons']) or '-'}")

    return _emit(args, {"grids": rows}, rows, table)


def add_commands(commands) -> None:
    analysis = commands.add_parser(
        "analysis", help="encounter rates, hot spots, recurring places, patrol priorities"
    ).add_subparsers(dest="analysis_command", required=True)

    def common(p):
        p.add_argument(
            "--datetime", help="period, e.g. 2026-11 or 2026-09-01/2026-11-30 (default: last 90 days)"
        )
        p.add_argument("--side")
        p.add_argument("--town")
        p.add_argument("--station")
        p.add_argument("--grid", action="append", help="grid code, repeatable")
        p.add_argument("--category", action="append", help="incident category, repeatable")
        p.add_argument("--as", dest="as_user", metavar="USERNAME", help="analyse as this user may see")
        p.add_argument("--json", action="store_true")
        p.add_argument("-o", "--output", help="write to a file: .csv for rows, anything else JSON/GeoJSON")

    rates = analysis.add_parser("rates", help="incidents per 10 km and per 100 patrol-hours, with intervals")
    common(rates)
    rates.set_defaults(handler=cmd_rates)
    hot = analysis.add_parser("hotspots", help="Getis-Ord Gi* hot spots on a metric cell grid")
    common(hot)
    hot.add_argument("--cell-m", type=float, help="cell size in metres (default 250)")
    hot.add_argument("--shape", choices=["hex", "square"], default="hex")
    hot.add_argument("--normalise", choices=["effort"], help="test incidents per km patrolled in each cell")
    hot.add_argument("--correction", choices=["fdr_bh", "bonferroni", "none"], default="fdr_bh")
    hot.add_argument("--alpha", type=float)
    hot.add_argument("--all-cells", action="store_true", help="every tested cell in the output file")
    hot.set_defaults(handler=cmd_hotspots)
    rec = analysis.add_parser("recurring", help="the same kind of incident coming back to a place")
    common(rec)
    rec.add_argument("--distance-m", type=float)
    rec.add_argument("--min-months", type=int)
    rec.set_defaults(handler=cmd_recurring)
    pri = analysis.add_parser("priorities", help="grids ranked for next week's patrols, with reasons")
    common(pri)
    pri.add_argument("--limit", type=int)
    pri.set_defaults(handler=cmd_priorities)
