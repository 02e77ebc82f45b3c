"""The `mangrove quotas` and `mangrove assessment` commands (added to the parser by ``api.cli``).

``quotas list`` prints every active grid's quota; ``quotas set GRID --patrols N --km X`` and
``quotas clear GRID`` change one (as the operator, audited as ``cli:<login>``). ``assessment
--month YYYY-MM [--by member] [--side S] [--as USER] [-o FILE.csv|FILE.xlsx]`` prints the ranked
table, or writes it in the format its file's suffix names. Errors exit with status 2.
"""

from __future__ import annotations

import json
from pathlib import Path


def add_commands(commands) -> None:
    quotas = commands.add_parser("quotas", help="monthly patrol quotas per grid").add_subparsers(
        dest="quotas_command", required=True
    )
    ql = quotas.add_parser("list", help="every active grid's quota: its own or the default")
    ql.add_argument("--json", action="store_true")
    ql.set_defaults(handler=cmd_quotas_list)
    qs = quotas.add_parser("set", help="give a grid its own quota")
    qs.add_argument("grid", metavar="GRID", help="grid code, e.g. LJ-GQ-03")
    qs.add_argument(
        "--patrols", type=float, required=True, metavar="N", help="patrols a month (whole number)"
    )
    qs.add_argument("--km", type=float, required=True, metavar="X", help="kilometres a month")
    qs.set_defaults(handler=cmd_quotas_set)
    qc = quotas.add_parser("clear", help="clear a grid's own quota: back to the default")
    qc.add_argument("grid", metavar="GRID")
    qc.set_defaults(handler=cmd_quotas_clear)

    a = commands.add_parser("assessment", help="monthly assessment (考核) of teams or members, ranked")
    a.add_argument("--month", required=True, help="China-time calendar month, YYYY-MM")
    a.add_argument("--by", choices=("team", "member"), default="team")
    a.add_argument("--side")
    a.add_argument("--as", dest="as_user", metavar="USERNAME", help="see what this user may see")
    a.add_argument("-o", "--output", metavar="FILE", help="write FILE.csv or FILE.xlsx instead of a table")
    a.add_argument("--json", action="store_true")
    a.set_defaults(handler=cmd_assessment)


def _session():
    from api.cli import _engine
    from patrol.db import make_session_factory

    return make_session_factory(_engine())()


def _print_quotas(rows) -> None:
    print(f"{'grid':<10} {'team':<8} {'patrols':>7} {'km':>9}  source")
    for r in rows:
        print(
            f"{r['code']:<10} {r['team'] or '-':<8} {r['patrols_per_month']:>7} {r['km_per_month']:>9.1f}  "
            f"{r['source']}" + (f" ({r['updated_by']})" if r["updated_by"] else "")
        )


def cmd_quotas_list(args) -> int:
    from patrol.analysis.quotas import effective_quotas, quota_records
    from patrol.settings import get_settings

    with _session() as session:
        rows = quota_records(effective_quotas(session, get_settings().analysis))
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        _print_quotas(rows)
    return 0


def _quota_of(session, code: str) -> list[dict]:
    from patrol.analysis.quotas import effective_quotas, quota_records
    from patrol.settings import get_settings

    return quota_records(effective_quotas(session, get_settings().analysis, [code], include_retired=True))


def cmd_quotas_set(args) -> int:
    from api.cli import _operator
    from patrol.analysis.quotas import set_quota

    patrols = int(args.patrols) if args.patrols.is_integer() else args.patrols
    with _session() as session:
        changed = set_quota(session, _operator(), args.grid, patrols, args.km)
        session.commit()
        _print_quotas(_quota_of(session, args.grid))
    if not changed:
        print("(unchanged)")
    return 0


def cmd_quotas_clear(args) -> int:
    from api.cli import _operator
    from patrol.analysis.quotas import clear_quota

    with _session() as session:
        changed = clear_quota(session, _operator(), args.grid)
        session.commit()
        _print_quotas(_quota_of(session, args.grid))
    if not changed:
        print("(the grid had no quota of its own)")
    return 0


def _pct(value) -> str:
    return "-" if value is None else f"{value:.0%}"


def cmd_assessment(args) -> int:
    from api.cli import CliError, _principal_of
    from api.routes.assessment import assessment_csv, assessment_workbook
    from patrol.analysis.assessment import RANKING, assessment
    from patrol.settings import get_settings

    out = Path(args.output) if args.output else None
    if out is not None:
        if out.suffix.lower() not in (".csv", ".xlsx"):
            raise CliError(f"-o {out}: the file must end in .csv or .xlsx (the format is taken from it)")
        if not out.parent.is_dir():
            raise CliError(f"cannot write {out}: the folder {out.parent} does not exist")
    with _session() as session:
        rows = assessment(
            session, _principal_of(session, args.as_user), get_settings(), args.month, args.by, args.side
        )
    if out is not None:
        if out.suffix.lower() == ".csv":
            data = assessment_csv(rows, args.by).encode("utf-8")
        else:
            data = assessment_workbook(rows, args.month, args.by, args.side)
        tmp = out.with_name(out.name + ".part")
        tmp.write_bytes(data)
        tmp.replace(out)
        print(f"{out}: {len(rows)} {args.by}s, {args.month}, ranked by {RANKING[args.by]}")
        return 0
    if args.json:
        print(json.dumps({"month": args.month, "by": args.by, "ranking": RANKING[args.by], "rows": rows},
                         ensure_ascii=False, indent=2))  # fmt: skip
        return 0
    who = "team" if args.by == "team" else "username"
    print(
        f"{'rank':>4} {who:<14} {'patrols':>7} {'days':>4} {'km':>8} {'hours':>6} {'quota':>9} "
        f"{'found':>5} {'resp':>5} {'resolv':>6}"
    )
    for r in rows:
        quota = f"{r['grids_meeting_quota']}/{r['grids_assigned']}"
        print(
            f"{r['rank']:>4} {r[who]:<14} {r['patrols']:>7} {r['patrol_days']:>4} {r['km']:>8.2f} "
            f"{r['hours']:>6.1f} {quota:>9} {r['incidents_found']:>5} {_pct(r['response_rate']):>5} "
            f"{_pct(r['resolution_rate']):>6}"
        )
    print(f"{args.month}, ranked by {RANKING[args.by]}")
    return 0
