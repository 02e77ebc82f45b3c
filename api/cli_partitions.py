"""``mangrove partitions`` (monthly partitions of what grows, on PostGIS) and ``mangrove patrols
near`` (who was near a point, when).

    mangrove partitions list
    mangrove partitions create --ahead 6
    mangrove partitions archive --before 2025-01 --to /srv/archive
    mangrove patrols near --lon 109.66 --lat 21.52 --radius-m 300 --datetime 2026-03-01/2026-03-02

On SpatiaLite, or a database whose schema predates partitioning, the partition commands say so and
exit 2 without changing anything.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path


def add_commands(commands) -> None:
    parts = commands.add_parser(
        "partitions", help="monthly partitions of patrol segments and visits (PostGIS)"
    ).add_subparsers(dest="partitions_command", required=True)
    parts.add_parser("list", help="each partition with its rows (estimate) and size").set_defaults(
        handler=cmd_partitions_list
    )
    create = parts.add_parser(
        "create", help="this month and the next N (and months the default holds rows of)"
    )
    create.add_argument("--ahead", type=int, default=3, metavar="N", help="months after this one (default 3)")
    create.set_defaults(handler=cmd_partitions_create)
    archive = parts.add_parser(
        "archive",
        help="detach the months before a month, write each to a gzipped CSV with a manifest, drop it",
    )
    archive.add_argument("--before", required=True, metavar="YYYY-MM", help="months before this one")
    archive.add_argument("--to", required=True, metavar="DIR", help="folder for the archive files")
    archive.add_argument("--keep", action="store_true", help="keep each detached table after writing it")
    archive.set_defaults(handler=cmd_partitions_archive)


def add_near_command(patrols) -> None:
    near = patrols.add_parser("near", help="patrols that came within a radius of a point during an interval")
    near.add_argument("--lon", type=float, required=True)
    near.add_argument("--lat", type=float, required=True)
    near.add_argument("--radius-m", type=float, required=True, help="metres (at most 5,000)")
    near.add_argument(
        "--datetime", required=True, help="interval, e.g. 2026-03-01T06:00/2026-03-01T18:00 (China time)"
    )
    near.add_argument("--as", dest="as_user", metavar="USERNAME", help="see what this user may see")
    near.add_argument("--json", action="store_true")
    near.set_defaults(handler=cmd_patrols_near)


def _unavailable(exc) -> Exception:
    from api.cli import CliError

    return CliError(str(exc))


def cmd_partitions_list(args) -> int:
    from api.cli import _engine
    from patrol.partitions import PartitionsUnavailable, list_partitions

    try:
        with _engine().connect() as conn:
            found = list_partitions(conn)
    except PartitionsUnavailable as exc:
        raise _unavailable(exc) from None
    print(f"{'table':<16} {'partition':<26} {'month':<8} {'rows (est.)':>12} {'MB':>9}")
    for p in found:
        month = p.month.isoformat()[:7] if p.month else "default"
        print(f"{p.table:<16} {p.name:<26} {month:<8} {p.rows:>12,} {p.bytes / 1e6:>9.1f}")
    return 0


def cmd_partitions_create(args) -> int:
    from api.cli import CliError, _engine
    from patrol.partitions import PartitionsUnavailable, create_ahead

    if not 0 <= args.ahead <= 120:
        raise CliError(f"--ahead must be between 0 and 120 months, not {args.ahead}")
    try:
        created = create_ahead(_engine(), months=args.ahead, strict=True)
    except PartitionsUnavailable as exc:
        raise _unavailable(exc) from None
    print(
        f"created {len(created)} partitions" + (": " + ", ".join(created) if created else " (all were there)")
    )
    return 0


def cmd_partitions_archive(args) -> int:
    from api.cli import CliError, _engine, _operator
    from patrol.partitions import PartitionsUnavailable, archive_before, parse_month

    try:
        before = parse_month(args.before)
    except ValueError as exc:
        raise CliError(f"--before: {exc}") from None
    if before > date.today().replace(day=1):
        raise CliError(f"--before {args.before} is in the future: only past months can be archived")
    target = Path(args.to)
    if target.exists() and not target.is_dir():
        raise CliError(f"--to {target} is a file, not a folder")
    try:
        done = archive_before(_engine(), before, target, drop=not args.keep, principal=_operator())
    except PartitionsUnavailable as exc:
        raise _unavailable(exc) from None
    if not done:
        print(f"no partitions before {args.before}: nothing archived")
        return 0
    for item in done:
        print(f"{item.partition}: {item.rows:,} rows → {item.path} (SHA-256 {item.sha256[:16]}…)")
    print(f"{len(done)} partitions archived" + (" and kept detached" if args.keep else " and dropped"))
    return 0


def cmd_patrols_near(args) -> int:
    from api.cli import _engine, _local_minute, _principal_of
    from api.params import parse_datetime_interval
    from patrol.db import make_session_factory
    from patrol.patrols import nearby_patrols, nearby_properties
    from patrol.segments import NearQuery, check_near_query

    start, end = parse_datetime_interval(args.datetime)
    check_near_query(args.lon, args.lat, args.radius_m, start, end)
    with make_session_factory(_engine())() as session:
        principal = _principal_of(session, args.as_user)
        rows = [
            nearby_properties(item)
            for item in nearby_patrols(
                session, principal, NearQuery(args.lon, args.lat, args.radius_m, start, end)
            )
        ]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    print(f"{'patrol':>7}  {'closest (China time)':<20} {'metres':>7}  {'team':<8} members")
    for r in rows:
        print(
            f"{r['patrol_id']:>7}  {_local_minute(r['closest_at']):<20} {r['distance_m']:>7.1f}  "
            f"{r['team'] or '-':<8} {', '.join(r['members'])}"
        )
    print(f"{len(rows)} patrols within {args.radius_m:g} m")
    return 0
