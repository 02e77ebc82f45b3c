"""The `mangrove` command line: serve, demo, database, users and grids.

Errors in the input are printed with every problem found, and the command exits with status 2;
an unreachable database exits with status 1. No traceback reaches the user.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable, Sequence

from sqlalchemy.exc import OperationalError

from geodata.errors import InputError
from geodata.gridfile import GRID_FIELDS, GridFileOptions
from patrol import migrate
from patrol.accounts import RoleGrant, create_user, list_users
from patrol.db import create_db_engine, make_session_factory
from patrol.errors import DomainError
from patrol.models import Role
from patrol.reference import load_reference
from patrol.settings import get_settings

EXIT_INPUT = 2
EXIT_UNAVAILABLE = 1


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_INPUT):
        super().__init__(message)
        self.code = code


def _engine():
    return create_db_engine(settings=get_settings())


def ensure_database(engine, *, demo: bool = False) -> dict:
    """Bring the schema to the newest revision and load the reference (and demo) data."""
    migrate.upgrade(engine)
    with make_session_factory(engine)() as session:
        if demo:
            from patrol.demo import load_demo

            summary = load_demo(session)
        else:
            summary = load_reference(session)
        session.commit()
    return summary


def _redacted_url(engine) -> str:
    return engine.url.render_as_string(hide_password=True)


# --- commands --------------------------------------------------------------------------------------


def cmd_serve(args) -> int:
    import uvicorn

    from api.app import create_app

    engine = _engine()
    ensure_database(engine, demo=args.demo)
    app = create_app(engine=engine)
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    base = f"http://{shown}:{args.port}"
    print(f"Mangrove Patrol on {_redacted_url(engine)}")
    print(f"  home / sign in:  {base}/")
    print(f"  grids (GeoJSON): {base}/api/v1/grids")
    print(f"  API docs:        {base}/docs   (OpenAPI: {base}/openapi.json)")
    if args.demo:
        from patrol.demo import DEMO_PASSWORD, DEMO_USERS

        print(f"  demo users (password {DEMO_PASSWORD!r}): " + ", ".join(u.username for u in DEMO_USERS))
    sys.stdout.flush()
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def cmd_demo(args) -> int:
    from patrol.demo import DEMO_PASSWORD, DEMO_USERS

    engine = _engine()
    summary = ensure_database(engine, demo=True)
    print(
        f"demo data loaded into {_redacted_url(engine)}: {summary['grids_total']} grids, "
        f"{len(summary['users_created'])} new demo users"
    )
    for user in DEMO_USERS:
        print(f"  {user.username:<14} {', '.join(g.role.value for g in user.grants):<20} {user.display_name}")
    print(f"demo password for all: {DEMO_PASSWORD}")
    return 0


def cmd_db_upgrade(args) -> int:
    engine = _engine()
    summary = ensure_database(engine)
    print(
        f"schema at revision {migrate.current_revision(engine)} on {_redacted_url(engine)}; "
        f"{summary['grids_total']} grids"
    )
    return 0


def cmd_db_current(args) -> int:
    engine = _engine()
    print(f"{migrate.current_revision(engine) or '(empty database)'} (head: {migrate.head_revision()})")
    return 0


def parse_role(value: str) -> RoleGrant:
    """``ROLE[:SCOPE]``: patrol_member:LJ-T-GQ, station_manager:LJ-S-GQ, enforcement_officer, admin."""
    name, _, scope = value.partition(":")
    try:
        role = Role(name.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"unknown role {name!r}; one of: {', '.join(r.value for r in Role)}"
        ) from None
    scope = scope.strip() or None
    if role is Role.PATROL_MEMBER:
        return RoleGrant(role, team=scope)
    if role is Role.STATION_MANAGER:
        return RoleGrant(role, station=scope)
    if scope:
        raise argparse.ArgumentTypeError(f"role {role.value} takes no scope, got {scope!r}")
    return RoleGrant(role)


def _read_password(args) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password: ")
        if password != getpass.getpass("again: "):
            raise CliError("the two passwords differ")
    return password


def cmd_users_add(args) -> int:
    engine = _engine()
    migrate.upgrade(engine)
    password = _read_password(args)
    with make_session_factory(engine)() as session:
        load_reference(session)
        user = create_user(
            session,
            username=args.username,
            password=password,
            side=args.side,
            grants=args.role,
            display_name=args.display_name,
        )
        session.commit()
        roles = ", ".join(
            r.role + (f":{r.team or r.station}" if (r.team or r.station) else "") for r in user.roles
        )
        print(f"created user {user.username} ({user.side}; {roles})")
    return 0


def cmd_users_list(args) -> int:
    engine = _engine()
    with make_session_factory(engine)() as session:
        for user in list_users(session):
            roles = ", ".join(
                r.role + (f":{r.team or r.station}" if (r.team or r.station) else "") for r in user.roles
            )
            state = "" if user.is_active else " (disabled)"
            print(f"{user.username:<20} {user.side:<6} {roles}{state}")
    return 0


def parse_field_mapping(value: str) -> tuple[str, str]:
    field, sep, attribute = value.partition("=")
    if not sep or not field.strip() or not attribute.strip():
        raise argparse.ArgumentTypeError(f"expected FIELD=ATTRIBUTE (e.g. code=网格编号), got {value!r}")
    if field.strip() not in GRID_FIELDS:
        raise argparse.ArgumentTypeError(f"unknown field {field!r}; fields: {', '.join(GRID_FIELDS)}")
    return field.strip(), attribute.strip()


def cmd_grids_import(args) -> int:
    from patrol.grids import import_grids

    engine = _engine()
    ensure_database(engine)
    options = GridFileOptions(
        field_map=dict(args.map or []),
        layer=args.layer,
        assume_crs=args.crs,
        repair=args.repair,
        overlap_tolerance_m2=args.overlap_tolerance
        if args.overlap_tolerance is not None
        else get_settings().imports.overlap_tolerance_m2,
    )
    with make_session_factory(engine)() as session:
        report = import_grids(
            session, args.file, options, side=args.side, imported_by="cli", dry_run=args.dry_run
        )
        if args.dry_run:
            session.rollback()
        else:
            session.commit()
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        return 0
    verb = "would import" if args.dry_run else "imported"
    print(
        f"{verb} {args.file} ({report.source_format}, {report.source_crs}) for {report.side}: "
        f"{len(report.created)} new, {len(report.updated)} updated, {len(report.unchanged)} unchanged, "
        f"{len(report.retired)} retired; {report.total_area_ha:.2f} ha in all"
    )
    for item in report.repaired:
        print(f"  repaired: {item['message']}")
    for item in report.warnings:
        print(f"  warning: {item['message']}")
    return 0


def cmd_grids_list(args) -> int:
    from patrol.grids import list_grids

    engine = _engine()
    with make_session_factory(engine)() as session:
        for grid in list_grids(session, side=args.side):
            print(
                f"{grid.code:<10} {grid.town or '-':<4} {grid.team or '-':<8} {grid.area_ha:>9.2f} ha  {grid.name_zh}"
            )
    return 0


# --- parser ----------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mangrove", description="Mangrove Patrol: grid patrol service")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the web service (migrates the database first)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--demo", action="store_true", help="load the demo data first")
    serve.set_defaults(handler=cmd_serve)

    demo = commands.add_parser("demo", help="load the demo data into the configured database (idempotent)")
    demo.set_defaults(handler=cmd_demo)

    db = commands.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="migrate to the newest schema and load the reference geodata").set_defaults(
        handler=cmd_db_upgrade
    )
    db.add_parser("current", help="show the schema revision").set_defaults(handler=cmd_db_current)

    users = commands.add_parser("users", help="accounts").add_subparsers(dest="users_command", required=True)
    add = users.add_parser("add", help="create a user")
    add.add_argument("username")
    add.add_argument("--side", required=True, help="GD-LJ (Guangdong·Lianjiang) or GX-HP (Guangxi·Hepu)")
    add.add_argument(
        "--role",
        action="append",
        type=parse_role,
        required=True,
        help="ROLE[:SCOPE], repeatable: patrol_member:TEAM, station_manager:STATION, "
        "enforcement_officer, admin",
    )
    add.add_argument("--display-name")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.set_defaults(handler=cmd_users_add)
    users.add_parser("list", help="list users").set_defaults(handler=cmd_users_list)

    grids = commands.add_parser("grids", help="protection grids").add_subparsers(
        dest="grids_command", required=True
    )
    imp = grids.add_parser("import", help="replace a side's grids from a survey file (all or nothing)")
    imp.add_argument(
        "file", help="GeoJSON, GeoPackage, zipped Shapefile (.zip), Shapefile (.shp), KML or KMZ"
    )
    imp.add_argument("--side", default="GD-LJ", help="whose grids the file holds (default GD-LJ)")
    imp.add_argument("--layer", help="layer name, for files with several layers")
    imp.add_argument("--crs", help="CRS to assume when the file declares none, e.g. EPSG:4525")
    imp.add_argument(
        "--map",
        action="append",
        type=parse_field_mapping,
        metavar="FIELD=ATTRIBUTE",
        help="which attribute holds a field, repeatable; fields: " + ", ".join(GRID_FIELDS),
    )
    imp.add_argument(
        "--repair", action="store_true", help="repair invalid polygons (reported) instead of refusing"
    )
    imp.add_argument(
        "--overlap-tolerance",
        type=float,
        metavar="M2",
        help="overlaps up to this many m² are warnings, not errors",
    )
    imp.add_argument("--dry-run", action="store_true", help="validate and report, change nothing")
    imp.add_argument("--json", action="store_true", help="print the report as JSON")
    imp.set_defaults(handler=cmd_grids_import)
    lst = grids.add_parser("list", help="list the active grids")
    lst.add_argument("--side")
    lst.set_defaults(handler=cmd_grids_list)
    return parser


def _print_error(message: str, problems: Sequence = ()) -> None:
    print(f"mangrove: error: {message}", file=sys.stderr)
    for problem in problems:
        print(f"  - {problem.message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable = args.handler
    try:
        return handler(args)
    except (InputError, DomainError) as exc:
        _print_error(exc.message, exc.problems)
        return EXIT_INPUT
    except CliError as exc:
        _print_error(str(exc))
        return exc.code
    except OperationalError as exc:
        _print_error(f"cannot use the database: {exc.orig}")
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
