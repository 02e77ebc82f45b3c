"""The `mangrove` command line: serve, demo, database, users, grids, patrols, effort, incidents,
maps and the audit trail.

Errors in the input are printed with every problem found, and the command exits with status 2;
an unreachable database exits with status 1. No traceback reaches the user.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from api import cli_analysis, cli_assessment, cli_briefing, cli_evidence, cli_export, cli_partitions
from geodata.errors import InputError
from geodata.gridfile import GRID_FIELDS, GridFileOptions
from patrol import migrate
from patrol.accounts import Principal, RoleGrant, create_user, list_users, role_labels, sign_in_states
from patrol.db import create_db_engine, make_session_factory
from patrol.errors import DomainError
from patrol.models import Role
from patrol.reference import load_reference
from patrol.settings import SettingsError, get_settings

EXIT_INPUT = 2
EXIT_UNAVAILABLE = 1


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_INPUT):
        super().__init__(message)
        self.code = code


def _engine():
    return create_db_engine(settings=get_settings())


def ensure_database(engine, *, demo: bool = False, patrol_days: int = 90) -> dict:
    """Bring the schema to the newest revision and load the reference (and demo) data."""
    from patrol.partitions import create_ahead

    migrate.upgrade(engine)
    with make_session_factory(engine)() as session:
        if demo:
            from patrol.demo import load_demo, load_demo_patrols

            summary = load_demo(session)
            if patrol_days:
                summary |= load_demo_patrols(session, get_settings().patrols, days=patrol_days)
        else:
            summary = load_reference(session)
        session.commit()
    create_ahead(engine)  # PostGIS: months ahead, and any month the default partitions hold rows of
    return summary


def _redacted_url(engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def record_settings_at_start(engine) -> int | None:
    """One ``setting.change`` audit entry when the behaviour settings differ from the last
    recorded ones (see ``patrol.settings_audit``): once per start, never per request."""
    from patrol.settings_audit import record_settings

    with make_session_factory(engine)() as session:
        seq = record_settings(session, _operator(), get_settings())
        session.commit()
    return seq


# --- commands --------------------------------------------------------------------------------------


def cmd_serve(args) -> int:
    import uvicorn

    from api import memory
    from api.app import create_app

    # Before any worker thread exists: glibc gives each thread up to 8 × cores arenas, each
    # keeping the memory a large upload once needed (bench/bench_memory_return.py).
    memory.configure(get_settings().server)
    tls_settings = get_settings().tls
    tls = tls_files(
        args.certfile if args.certfile is not None else tls_settings.certfile,
        args.keyfile if args.keyfile is not None else tls_settings.keyfile,
    )
    engine = _engine()
    ensure_database(engine, demo=args.demo, patrol_days=args.patrol_days)
    record_settings_at_start(engine)
    app = create_app(engine=engine)
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    scheme = "https" if tls else "http"
    base = f"{scheme}://{_url_host(shown)}:{args.port}"
    print(f"Mangrove Patrol on {_redacted_url(engine)}")
    print(f"  home / sign in:  {base}/")
    print(f"  grids (GeoJSON): {base}/api/v1/grids")
    print(f"  API docs:        {base}/docs   (OpenAPI: {base}/openapi.json)")
    print(f"  maps:            {base}/maps/station   {base}/maps/joint   (replays from the home page)")
    if args.demo:
        from patrol.demo import DEMO_PASSWORD, DEMO_USERS

        print(f"  demo users (password {DEMO_PASSWORD!r}): " + ", ".join(u.username for u in DEMO_USERS))
    if args.host in ("0.0.0.0", "::"):
        for address in _lan_addresses():
            print(f"  on the station's network: {scheme}://{address}:{args.port}/")
    if tls:
        print(f"  HTTPS with {tls[0]} (phones must trust the CA that signed it: see scripts/station-cert)")
    sys.stdout.flush()
    ssl_options = {"ssl_certfile": str(tls[0]), "ssl_keyfile": str(tls[1])} if tls else {}
    if args.workers > 1:
        # Each worker process builds its own app and engine from the same settings; nothing they
        # hold in memory outlives a change another worker makes (caches are keyed by what the
        # database holds: grid versions, the border's WKB, session rows read per request).
        engine.dispose()
        print(f"  {args.workers} worker processes, each with a pool of up to "
              f"{get_settings().storage.db_pool_size + get_settings().storage.db_max_overflow} connections")  # fmt: skip
        sys.stdout.flush()
        uvicorn.run(
            "api.app:create_app", factory=True, workers=args.workers, host=args.host, port=args.port,
            log_level="info", **ssl_options,
            # A worker imports the whole service before it answers the supervisor's ping (seconds on
            # a busy two-core machine); uvicorn's 5 s default killed and restarted such workers.
            timeout_worker_healthcheck=60,
        )  # fmt: skip
        return 0
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", **ssl_options)
    return 0


def _worker_count(raw: str) -> int:
    import argparse

    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--workers must be a whole number, not {raw!r}") from None
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"--workers must be between 1 and 64, not {value}")
    return value


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _lan_addresses() -> list[str]:
    """This machine's IPv4 addresses other than loopback (what a phone on the station's network
    types), best effort: none when they cannot be found."""
    import socket

    found: set[str] = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            found.add(info[4][0])
    except OSError:
        pass
    try:  # the address of the default route (no packet is sent)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))
            found.add(probe.getsockname()[0])
    except OSError:
        pass
    return sorted(a for a in found if not a.startswith("127."))


def tls_files(certfile, keyfile) -> tuple[Path, Path] | None:
    """(certificate, key) for HTTPS, checked: both given or neither, both readable, PEM, and the
    key the certificate's. None: plain HTTP. A CliError says what is wrong."""
    import ssl

    if certfile is None and keyfile is None:
        return None
    if certfile is None or keyfile is None:
        given, missing = ("--certfile", "--keyfile") if keyfile is None else ("--keyfile", "--certfile")
        raise CliError(
            f"{given} given without {missing}: HTTPS needs both the certificate and its key "
            "(MANGROVE_TLS_CERTFILE and MANGROVE_TLS_KEYFILE; make them with scripts/station-cert)"
        )
    cert, key = Path(certfile), Path(keyfile)
    for what, path in (("certificate", cert), ("key", key)):
        if not path.is_file():
            raise CliError(f"the TLS {what} file {path} does not exist")
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise CliError(f"the TLS {what} file {path} cannot be read: {exc.strerror}") from None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key, password=_no_passphrase)
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        if "KEY_VALUES_MISMATCH" in reason.upper():
            raise CliError(f"the key {key} does not belong to the certificate {cert}") from None
        raise CliError(
            f"cannot use {cert} with {key} for HTTPS ({reason}): give a PEM certificate and its "
            "unencrypted PEM private key"
        ) from None
    except ValueError as exc:  # the passphrase callback refused
        raise CliError(str(exc)) from None
    return cert, key


def _no_passphrase():
    raise ValueError(
        "the TLS key is protected by a passphrase: give an unencrypted key (the service starts unattended)"
    )


def cmd_demo(args) -> int:
    from patrol.demo import DEMO_PASSWORD, DEMO_USERS

    engine = _engine()
    summary = ensure_database(engine, demo=True, patrol_days=args.patrol_days)
    print(
        f"demo data loaded into {_redacted_url(engine)}: {summary['grids_total']} grids, "
        f"{len(summary['users_created'])} new demo users, {summary.get('patrols_created', 0)} new patrols, "
        f"{summary.get('incidents_created', 0)} new incidents"
    )
    for user in DEMO_USERS:
        print(f"  {user.username:<14} {', '.join(g.role.value for g in user.grants):<20} {user.display_name}")
    print(f"demo password for all: {DEMO_PASSWORD}")
    return 0


def cmd_db_upgrade(args) -> int:
    engine = _engine()
    summary = ensure_database(engine)
    if record_settings_at_start(engine) is not None:
        print(
            "settings changed since they were last recorded: see `mangrove audit list --action setting.change`"
        )
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
            by=_operator(),
        )
        session.commit()
        print(f"created user {user.username} ({user.side}; {', '.join(role_labels(user))})")
    return 0


def cmd_users_list(args) -> int:
    engine = _engine()
    with make_session_factory(engine)() as session:
        users = list_users(session)
        states = sign_in_states(session, users)
        for user in users:
            flags = [] if user.is_active else ["disabled"]
            state = states.get(user.username)
            if state and state.locked:
                flags.append("locked: mangrove users unlock " + user.username)
            elif state and state.failures:
                flags.append(f"{state.failures} failed sign-ins")
            note = f" ({'; '.join(flags)})" if flags else ""
            print(f"{user.username:<20} {user.side:<6} {', '.join(role_labels(user))}{note}")
    return 0


def cmd_users_passwd(args) -> int:
    from patrol.accounts import set_password

    password = _read_password(args)
    with make_session_factory(_engine())() as session:
        ended = set_password(session, _operator(), args.username, password)
        session.commit()
    print(f"password of {args.username} changed; {ended} session(s) ended")
    return 0


def cmd_users_enable(args, *, active: bool = True) -> int:
    from patrol.accounts import update_user

    with make_session_factory(_engine())() as session:
        update_user(session, _operator(), args.username, is_active=active)
        session.commit()
    print(f"{args.username} {'enabled' if active else 'disabled; its sessions have ended'}")
    return 0


def cmd_users_disable(args) -> int:
    return cmd_users_enable(args, active=False)


def cmd_users_delete(args) -> int:
    from patrol.accounts import delete_user

    with make_session_factory(_engine())() as session:
        delete_user(session, _operator(), args.username)
        session.commit()
    print(f"{args.username} deleted")
    return 0


def cmd_users_unlock(args) -> int:
    from patrol.accounts import unlock_user

    with make_session_factory(_engine())() as session:
        was = unlock_user(session, _operator(), args.username)
        session.commit()
    if was.locked:
        print(f"{args.username} unlocked (after {was.failures} failed sign-ins)")
    else:
        print(f"{args.username} was not locked; its {was.failures} failed sign-in(s) are forgotten")
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
        max_features=get_settings().imports.max_grid_features,
    )
    with make_session_factory(engine)() as session:
        report = import_grids(
            session, args.file, options, side=args.side, imported_by="cli", dry_run=args.dry_run,
            principal=_operator(),
        )  # fmt: skip
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


TRACK_SUFFIXES = (".gpx", ".kml", ".kmz", ".geojson", ".json", ".csv")


def _track_files(paths: Sequence[str]) -> list[Path]:
    """Files named, plus track files found (recursively) in folders named, in name order."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TRACK_SUFFIXES)
        elif path.is_file():
            found.append(path)
        else:
            raise CliError(f"no such file or folder: {raw}")
    if not found:
        raise CliError("no track files found (looked for " + ", ".join(TRACK_SUFFIXES) + ")")
    return found


class Progress:
    """A one-line progress bar on a terminal, plain lines otherwise (logs, CI)."""

    def __init__(self, total: int, stream=None):
        self.total, self.done, self.stream = total, 0, stream or sys.stderr
        self.tty = self.stream.isatty()

    def step(self, label: str) -> None:
        self.done += 1
        if self.tty:
            filled = int(30 * self.done / self.total)
            bar = "#" * filled + "." * (30 - filled)
            self.stream.write(f"\r[{bar}] {self.done}/{self.total} {label[:40]:<40}")
            if self.done == self.total:
                self.stream.write("\n")
            self.stream.flush()


def cmd_patrols_upload(args) -> int:
    from geodata.cleaning import Transport
    from geodata.datum import Datum
    from geodata.trackfile import NaiveTimes
    from patrol.accounts import Principal
    from patrol.models import User
    from patrol.patrols import UploadOptions, upload_patrol

    files = _track_files(args.paths)
    options = UploadOptions(
        datum=Datum.parse(args.datum),
        transport=Transport.parse(args.transport),
        team=args.team,
        members=tuple(args.member or ()),
        notes=args.notes,
        naive_times=NaiveTimes.parse(args.time_zone),
    )
    engine = _engine()
    ensure_database(engine)
    settings = get_settings()
    factory = make_session_factory(engine)
    with factory() as session:
        user = session.scalar(select(User).where(User.username == args.as_user))
        if user is None:
            raise CliError(f"unknown user {args.as_user!r} (--as): the patrol is uploaded in their name")
        principal = Principal.of(user, channel="cli")
    progress = Progress(len(files))
    failed = 0
    results = []
    for path in files:
        # One transaction per file: a bad file is reported and skipped, the others still load.
        with factory() as session:
            try:
                result = upload_patrol(
                    session, path, filename=path.name, principal=principal, options=options,
                    settings=settings.patrols,
                )  # fmt: skip
                session.commit()
            except (InputError, DomainError) as exc:
                session.rollback()
                failed += 1
                progress.step(path.name)
                _print_error(f"{path}: {exc.message}", exc.problems)
                continue
        progress.step(path.name)
        results.append((path, result))
    for path, result in results:
        grids = ", ".join(
            f"{g['grid']} {g['km']:.2f} km" for g in result.summary.get("grids", []) if g["grid"]
        )
        state = "new" if result.created else "already uploaded"
        print(f"{path.name}: patrol {result.patrol_id} ({state}); {grids or 'no grid visited'}")
        for warning in result.summary.get("warnings", []):
            print(f"  warning: {warning['message']}")
    print(f"{len(results)} uploaded, {failed} refused")
    return EXIT_INPUT if failed else 0


def _operator() -> Principal:
    """Whoever runs the CLI on the server has database access, so reads are not filtered. The
    audit trail names them by their login on the server."""
    return Principal(
        user_id=0,
        username=f"cli:{_os_user()}",
        display_name="command line",
        side="",
        roles=frozenset({Role.ADMIN}),
        channel="cli",
    )


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def cmd_patrols_list(args) -> int:
    from api.params import parse_datetime_interval
    from patrol.patrols import PatrolQuery, list_patrols, patrol_properties

    start, end = parse_datetime_interval(args.datetime)
    query = PatrolQuery(
        start=start, end=end, side=args.side, team=args.team, member=args.member, grid=args.grid,
        limit=args.limit,
    )  # fmt: skip
    with make_session_factory(_engine())() as session:
        patrols, _, members, total = list_patrols(session, _operator(), query)
        rows = [patrol_properties(p, members.get(p.id, [])) for p in patrols]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2, default=str))
        return 0
    print(
        f"{'id':>6}  {'started (China time)':<16}  {'team':<8} {'by':<5} {'km':>7} {'min':>6} {'flagged':>7}  members"
    )
    for r in rows:
        print(
            f"{r['id']:>6}  {_local_minute(r['started_at']):<16}  {r['team'] or '-':<8} {r['transport']:<5} "
            f"{r['distance_km']:>7.2f} {r['duration_min'] or 0:>6.0f} {r['flagged_fixes']:>7}  {', '.join(r['members'])}"
        )
    print(f"{len(rows)} of {total} patrols")
    return 0


def cmd_patrols_show(args) -> int:
    from patrol.patrols import get_patrol, member_names, patrol_properties

    with make_session_factory(_engine())() as session:
        patrol = get_patrol(session, _operator(), args.id)
        props = patrol_properties(patrol, member_names(session, [patrol.id]).get(patrol.id, []))
    print(json.dumps(props, ensure_ascii=False, indent=2, default=str))
    return 0


def cmd_patrols_delete(args) -> int:
    from patrol.patrols import delete_patrol

    with make_session_factory(_engine())() as session:
        delete_patrol(session, _operator(), args.id)
        session.commit()
    print(f"patrol {args.id} deleted")
    return 0


def cmd_effort(args) -> int:
    from api.params import parse_datetime_interval
    from patrol.effort import EffortFilter, grid_effort, unpatrolled_grids

    engine = _engine()
    settings = get_settings()
    with make_session_factory(engine)() as session:
        if args.unpatrolled is not None:
            rows = unpatrolled_grids(session, days=args.unpatrolled, side=args.side, town=args.town)
            if args.json:
                print(json.dumps(rows, ensure_ascii=False, indent=2))
            for r in rows if not args.json else []:
                since = "never patrolled" if r["last_patrolled"] is None else f"{r['days_since']} days ago"
                print(f"{r['code']:<10} {r['town'] or '-':<4} {since}")
            return 0
        start, end = parse_datetime_interval(args.datetime)
        flt = EffortFilter(
            start=start, end=end, side=args.side, town=args.town, team=args.team, member=args.member
        )
        rows = grid_effort(session, flt, swath_width_m=settings.patrols.swath_width_m)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    print(
        f"{'grid':<10} {'patrols':>7} {'days':>5} {'km':>8} {'hours':>7} {'pers-h':>7} {'cover':>6}  last patrolled (China time)"
    )
    for r in rows:
        print(
            f"{r['code']:<10} {r['patrols']:>7} {r['patrol_days']:>5} {r['km']:>8.2f} {r['hours'] or 0:>7.1f} "
            f"{r['person_hours'] or 0:>7.1f} {r['coverage'] or 0:>6.0%}  {_local_minute(r['last_patrolled'])}"
        )
    return 0


# --- incidents -----------------------------------------------------------------------------------


def _principal_of(session, username: str | None) -> Principal:
    """``--as USER`` acts as that user (their rules apply); without it the operator reads all."""
    from patrol.models import User

    if username is None:
        return _operator()
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise CliError(f"unknown user {username!r} (--as)")
    return Principal.of(user, channel="cli")


def _incident_query(args):
    from api.params import parse_bbox, parse_datetime_interval
    from patrol.incidents import IncidentQuery

    start, end = parse_datetime_interval(args.datetime)
    return IncidentQuery(
        grids=tuple(args.grid or ()), towns=tuple(args.town or ()), side=args.side,
        categories=tuple(args.category or ()), statuses=tuple(args.status or ()),
        overdue=True if args.overdue else None, start=start, end=end, bbox=parse_bbox(args.bbox),
    )  # fmt: skip


def cmd_incidents_report(args) -> int:
    from datetime import datetime

    from patrol.incidents import IncidentReport, incident_detail, report_incident

    settings = get_settings()
    with make_session_factory(_engine())() as session:
        principal = _principal_of(session, args.as_user)
        try:
            observed = datetime.fromisoformat(args.observed_at) if args.observed_at else None
        except ValueError:
            raise CliError(f"--observed-at {args.observed_at!r} is not an ISO date-time") from None
        incident = report_incident(
            session, principal,
            IncidentReport(category=args.category, lon=args.lon, lat=args.lat, description=args.note or "",
                           severity=args.severity, level=args.level, observed_at=observed, patrol_id=args.patrol),
            settings.incidents,
        )  # fmt: skip
        session.commit()
        detail = incident_detail(session, principal, incident.id, settings.incidents)
    where = detail["grid"] or "no grid"
    if detail["grid_match"] == "near":
        where = f"near {detail['grid']} ({detail['grid_distance_m']:.0f} m outside)"
    print(f"incident {detail['id']}: {detail['category']} in {where}, {detail['side']}")
    print(
        f"  answer by {_local_minute(detail['accept_due'])}, resolve by {_local_minute(detail['resolve_due'])} (China time)"
    )
    return 0


def cmd_incidents_list(args) -> int:
    import csv

    from patrol import csvsafe
    from patrol.incidents import query_incidents

    settings = get_settings()
    query = _incident_query(args)
    query.limit = args.limit
    with make_session_factory(_engine())() as session:
        items, _ = query_incidents(session, _principal_of(session, args.as_user), query, settings.incidents)
    if args.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(items[0]) if items else ["id"])
        writer.writeheader()
        writer.writerows(csvsafe.record(item) for item in items)
        return 0
    print(f"{'id':>7}  {'observed (China)':<16}  {'grid':<10} {'category':<16} {'status':<11} overdue")
    for i in items:
        print(
            f"{i['id']:>7}  {_local_minute(i['observed_at']):<16}  {i['grid'] or '-':<10} {i['category']:<16} "
            f"{i['status']:<11} {i['overdue'] or ''}"
        )
    print(f"{len(items)} incidents shown (--limit {args.limit})")
    return 0


def cmd_incidents_show(args) -> int:
    from patrol.incidents import incident_detail

    with make_session_factory(_engine())() as session:
        detail = incident_detail(
            session, _principal_of(session, args.as_user), args.id, get_settings().incidents
        )
    print(json.dumps(detail, ensure_ascii=False, indent=2))
    return 0


def cmd_incidents_act(args) -> int:
    from patrol.incidents import get_incident, transition

    settings = get_settings()
    with make_session_factory(_engine())() as session:
        principal = _principal_of(session, args.as_user)
        version = args.version or get_incident(session, principal, args.id, settings.incidents).version
        incident = transition(
            session, principal, args.id, args.action, settings.incidents,
            version=version, note=args.note, duplicate_of=args.duplicate_of, level=args.level,
        )  # fmt: skip
        session.commit()
        print(f"incident {incident.id} is now {incident.status} (version {incident.version})")
    return 0


def cmd_incidents_stats(args) -> int:
    from patrol.incident_stats import incident_stats

    with make_session_factory(_engine())() as session:
        rows = incident_stats(
            session,
            _principal_of(session, args.as_user),
            _incident_query(args),
            get_settings().incidents,
            by=args.by,
        )
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0

    def pct(v):
        return "-" if v is None else f"{v:.0%}"

    print(
        f"{args.by:<10} {'count':>6} {'resp':>5} {'onT-r':>6} {'resolv':>6} {'onT-s':>6} {'med-acc-h':>9} {'med-res-h':>9} {'overdue':>7}"
    )
    for r in rows:
        print(
            f"{r[args.by] or '-':<10} {r['count']:>6} {pct(r['response_rate']):>5} {pct(r['on_time_response_rate']):>6} "
            f"{pct(r['resolution_rate']):>6} {pct(r['on_time_resolution_rate']):>6} "
            f"{r['median_hours_to_accept'] or '-':>9} {r['median_hours_to_resolve'] or '-':>9} {r['open_overdue']:>7}"
        )
    return 0


def cmd_incidents_categories(args) -> int:
    from patrol.incidents import add_category, list_categories

    with make_session_factory(_engine())() as session:
        if args.add:
            code, zh, en = args.add
            add_category(session, _operator(), code, zh, en)
            session.commit()
        for c in list_categories(session):
            print(f"{c['code']:<18} {c['label_zh']}  {c['label_en']}")
    return 0


# --- the station's tile sets --------------------------------------------------------------------


def _tile_store():
    from patrol.tilesets import TileStore

    return TileStore(get_settings().tile_dir())


def cmd_tiles_add(args) -> int:
    from patrol.tilesets import add_tileset

    store = _tile_store()
    with make_session_factory(_engine())() as session:
        tileset = add_tileset(
            session, _operator(), store, Path(args.file), name=args.name, link=args.link, replace=args.replace
        )
    meta = tileset.metadata
    how = f"linked to {Path(args.file).resolve()}" if args.link else f"copied to {tileset.path}"
    print(
        f"tile set {tileset.name}: {tileset.kind} {meta.format.upper()}, zoom {meta.minzoom}–{meta.maxzoom}, "
        f"bounds {', '.join(f'{v:.4f}' for v in meta.bounds)}; {how}"
    )
    print(f"  on the maps as basemap local:{tileset.name}; tiles at /tiles/{tileset.name}/{{z}}/{{x}}/{{y}}")
    return 0


def cmd_tiles_list(args) -> int:
    store = _tile_store()
    rows = store.survey()
    if args.json:
        print(
            json.dumps(
                [
                    t.as_dict() | {"path": str(path), "linked": t.linked}
                    if t
                    else {"name": name, "path": str(path), "problem": problem}
                    for name, path, t, problem in rows
                ],
                ensure_ascii=False,
                indent=2,
            )
        )
        return 0
    if not rows:
        print(f"no tile sets in {store.directory} (add one with `mangrove tiles add FILE`)")
        return 0
    for name, path, t, problem in rows:
        if t is None:
            print(f"{name:<20} NOT SERVED: {problem}")
            continue
        m = t.metadata
        link = f" → {path.resolve()}" if t.linked else ""
        print(
            f"{name:<20} {t.kind:<7} {m.format:<4} z{m.minzoom}–{m.maxzoom:<3} "
            f"{','.join(f'{v:.3f}' for v in m.bounds)}  {m.name}{link}"
        )
    print(f"{len(rows)} tile set(s) in {store.directory}")
    return 0


def cmd_tiles_remove(args) -> int:
    from patrol.tilesets import remove_tileset

    with make_session_factory(_engine())() as session:
        path = remove_tileset(session, _operator(), _tile_store(), args.name)
    kept = f" (the linked file {path.resolve()} is kept)" if path.is_symlink() else ""
    print(f"tile set {args.name} removed{kept}")
    return 0


# --- backups -------------------------------------------------------------------------------------


def cmd_backup(args) -> int:
    from patrol.backup import create_backup

    report = create_backup(_engine(), get_settings(), args.output, _operator())
    m = report.manifest
    photos = sum(name.startswith("photos/") for name in m["members"])
    print(
        f"{report.path}: {report.size_bytes / 1e6:.1f} MB, {m['backend']} at schema {m['schema_revision']}, "
        f"{m['counts']['patrols']} patrols, {m['counts']['incidents']} incidents, {photos} photos; "
        f"audit head {m['audit_head']['seq']} {m['audit_head']['hash'][:16]}…"
    )
    print(f"sha256 {report.sha256}")
    for path in m["missing_photos"]:
        print(f"  warning: photo {path} is referenced but missing from the photo folder")
    return 0


def cmd_restore(args) -> int:
    from patrol.backup import DATA_TABLES, restore_backup

    report = restore_backup(_engine(), get_settings(), args.file, _operator(), force=args.force)
    m, v = report.manifest, report.verification
    print(
        f"restored {args.file} (made {m['created_at']}, {m['backend']}, schema {m['schema_revision']}): "
        f"{report.counts['patrols']} patrols, {report.counts['incidents']} incidents, "
        f"{report.photos_written} photos written ({report.photos_kept} already there)"
    )
    if report.replaced:
        print("  replaced: " + ", ".join(f"{n} {DATA_TABLES[t]}" for t, n in report.replaced.items()))
    state = "verifies" if v.ok else "DOES NOT VERIFY"
    print(
        f"audit chain {state}: {v.entries} entries, head {v.head_seq} {v.head_hash[:16]}… (+1: this restore)"
    )
    for finding in v.findings:
        print(f"  {finding.message}", file=sys.stderr)
    for finding in report.findings:
        print(f"  {finding}", file=sys.stderr)
    return 0 if report.ok else EXIT_INPUT


# --- audit trail -----------------------------------------------------------------------------------

EXIT_TAMPERED = 3


def _audit_engine():
    """The engine, if its database holds an audit trail; exit 1 otherwise."""
    from sqlalchemy import inspect
    from sqlalchemy.exc import DBAPIError

    engine = _engine()
    try:
        ready = inspect(engine).has_table("audit_head")
    except DBAPIError as exc:
        raise CliError(f"cannot use the database: {exc.orig}", EXIT_UNAVAILABLE) from None
    if not ready:
        raise CliError(
            f"{_redacted_url(engine)} has no audit trail yet: run `mangrove db upgrade`", EXIT_UNAVAILABLE
        )
    return engine


def parse_object(value: str) -> tuple[str, str | None]:
    """``TYPE[:ID]``: incident, incident:42, joint_case:3."""
    kind, sep, object_id = value.partition(":")
    if not kind.strip() or (sep and not object_id.strip()):
        raise argparse.ArgumentTypeError(f"expected TYPE or TYPE:ID (e.g. incident:42), got {value!r}")
    return kind.strip(), object_id.strip() or None


def cmd_audit_list(args) -> int:
    from api.params import parse_datetime_interval
    from patrol.audit import AuditQuery, list_entries

    start, end = parse_datetime_interval(args.datetime)
    kind, object_id = args.object or (None, None)
    query = AuditQuery(
        actor=args.actor, actions=tuple(args.action or ()), object_type=kind, object_id=object_id,
        channel=args.channel, start=start, end=end, before=args.before, limit=args.limit,
    )  # fmt: skip
    with make_session_factory(_audit_engine())() as session:
        items, next_before = list_entries(session, _operator(), query)
    if args.json:
        print(json.dumps({"entries": items, "next_before": next_before}, ensure_ascii=False, indent=2))
        return 0
    print(
        f"{'seq':>7}  {'at (China time)':<16}  {'actor':<16} {'from':<4} {'address':<15} {'action':<24} object"
    )
    for e in items:
        target = e["object_type"] + (f":{e['object_id']}" if e["object_id"] else "")
        print(
            f"{e['seq']:>7}  {_local_minute(e['at']):<16}  {e['actor']:<16} {e['channel']:<4} "
            f"{e['address'] or '-':<15} {e['action']:<24} {target}"
        )
        for name, (before, after) in (e["changes"] or {}).items():
            print(f"{'':>9}{name}: {_short(before)} → {_short(after)}")
    more = f"; older: --before {next_before}" if next_before else ""
    print(f"{len(items)} entries shown (--limit {args.limit}){more}")
    return 0


def _short(value, width: int = 60) -> str:
    text = (
        "-"
        if value is None
        else json.dumps(value, ensure_ascii=False)
        if not isinstance(value, str)
        else value
    )
    return text if len(text) <= width else text[: width - 1] + "…"


def cmd_audit_verify(args) -> int:
    from patrol.audit import verify

    with make_session_factory(_audit_engine())() as session:
        result = verify(session)
    for finding in result.findings:
        print(f"{finding.kind}: {finding.message}")
    print(f"{result.entries} entries checked; head: entry {result.head_seq}, hash {result.head_hash}")
    if result.ok:
        print("the audit trail is intact")
        return 0
    print(f"the audit trail was tampered with: {len(result.findings)} finding(s)")
    return EXIT_TAMPERED


# --- parser ----------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mangrove", description="Mangrove Patrol: grid patrol service")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the web service (migrates the database first)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--demo", action="store_true", help="load the demo data first")
    serve.add_argument(
        "--workers", type=_worker_count, default=1, metavar="N",
        help="worker processes (default 1; PostGIS: up to the cores, SpatiaLite: one writer at a time)",
    )  # fmt: skip
    serve.add_argument("--patrol-days", type=int, default=90, help="days of synthetic demo patrols (0: none)")
    serve.add_argument(
        "--certfile", metavar="FILE", help="PEM certificate for HTTPS (default MANGROVE_TLS_CERTFILE)"
    )
    serve.add_argument("--keyfile", metavar="FILE", help="its PEM private key (default MANGROVE_TLS_KEYFILE)")
    serve.set_defaults(handler=cmd_serve)

    demo = commands.add_parser("demo", help="load the demo data into the configured database (idempotent)")
    demo.add_argument("--patrol-days", type=int, default=90, help="days of synthetic patrols (0: none)")
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
    users.add_parser("list", help="list users (disabled and locked ones are marked)").set_defaults(
        handler=cmd_users_list
    )
    passwd = users.add_parser("passwd", help="set a user's password; their sessions end")
    passwd.add_argument("username")
    passwd.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    passwd.set_defaults(handler=cmd_users_passwd)
    for name, handler, text in (
        ("disable", cmd_users_disable, "disable an account: it cannot sign in and its sessions end"),
        ("enable", cmd_users_enable, "enable a disabled account"),
        ("delete", cmd_users_delete, "delete an account nothing refers to (else: disable it)"),
        ("unlock", cmd_users_unlock, "lift the lock after too many failed sign-ins"),
    ):
        command = users.add_parser(name, help=text)
        command.add_argument("username")
        command.set_defaults(handler=handler)

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

    patrols = commands.add_parser("patrols", help="patrol tracks").add_subparsers(
        dest="patrols_command", required=True
    )
    up = patrols.add_parser(
        "upload", help="upload track files or folders of them (GPX, KML/KMZ, GeoJSON, CSV)"
    )
    up.add_argument("paths", nargs="+", metavar="PATH")
    up.add_argument(
        "--as", dest="as_user", required=True, metavar="USERNAME", help="who uploads (member or manager)"
    )
    up.add_argument(
        "--datum", default="wgs84", help="wgs84 (also CGCS2000), gcj02 (Amap/Gaode) or bd09 (Baidu)"
    )
    up.add_argument("--transport", default="foot", help="foot or boat")
    up.add_argument("--team", help="team credited (default: the first member's team)")
    up.add_argument(
        "--member", action="append", metavar="USERNAME", help="who walked it, repeatable (default: --as)"
    )
    up.add_argument("--notes")
    up.add_argument(
        "--time-zone",
        default="auto",
        help="times written without a zone: auto (China time in CSV), utc, china",
    )
    up.set_defaults(handler=cmd_patrols_upload)
    ls = patrols.add_parser("list", help="patrols, newest first")
    ls.add_argument("--datetime", help="instant or interval, e.g. 2026-03-01/2026-03-31 (local dates)")
    ls.add_argument("--side")
    ls.add_argument("--team")
    ls.add_argument("--member")
    ls.add_argument("--grid")
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=cmd_patrols_list)
    show = patrols.add_parser("show", help="one patrol's summary: grids visited, flags, warnings")
    show.add_argument("id", type=int)
    show.set_defaults(handler=cmd_patrols_show)
    rm = patrols.add_parser("delete", help="delete a wrong upload so that the file can be uploaded again")
    rm.add_argument("id", type=int)
    rm.set_defaults(handler=cmd_patrols_delete)
    cli_partitions.add_near_command(patrols)

    effort = commands.add_parser("effort", help="patrol effort per grid, or grids not patrolled lately")
    effort.add_argument("--datetime", help="instant or interval, e.g. 2026-03-01/2026-03-31 (local dates)")
    effort.add_argument("--side")
    effort.add_argument("--town")
    effort.add_argument("--team")
    effort.add_argument("--member")
    effort.add_argument(
        "--unpatrolled", type=int, metavar="DAYS", help="list grids not patrolled for DAYS days"
    )
    effort.add_argument("--json", action="store_true")
    effort.set_defaults(handler=cmd_effort)

    maps_cmd = commands.add_parser(
        "maps", help="export a map to one self-contained HTML file (works offline)"
    ).add_subparsers(dest="maps_command", required=True)

    def map_options(p):
        p.add_argument("-o", "--output", required=True, help="the HTML file to write")
        p.add_argument(
            "--basemap",
            help="none (default, offline), osm, tianditu, satellite, amap or local:NAME "
            "(a station tile set: needs --link-base)",
        )
        p.add_argument("--as", dest="as_user", metavar="USERNAME", help="show what this user may see")
        p.add_argument(
            "--link-base",
            metavar="URL",
            help="service address for links to incidents and for the tiles of a local:NAME basemap",
        )

    st_map = maps_cmd.add_parser(
        "station", help="grids by effort, tracks, incidents of a station, town or grids"
    )
    map_options(st_map)
    st_map.add_argument("--station")
    st_map.add_argument("--town")
    st_map.add_argument("--grid", action="append", help="grid code, repeatable")
    st_map.add_argument("--from", dest="start", metavar="DATE", help="first China day (default: 30 days ago)")
    st_map.add_argument("--to", dest="end", metavar="DATE", help="last China day (default: today)")
    st_map.add_argument("--metric", default="patrols", choices=["patrols", "km_per_ha", "hours_per_ha"])
    st_map.add_argument("--unpatrolled-days", type=int, help="mark grids not patrolled for this many days")
    st_map.set_defaults(handler=cmd_maps_station)
    jt_map = maps_cmd.add_parser("joint", help="both sides, the border, joint cases and referred incidents")
    map_options(jt_map)
    jt_map.add_argument("--from", dest="start", metavar="DATE")
    jt_map.add_argument("--to", dest="end", metavar="DATE")
    jt_map.add_argument("--category", action="append")
    jt_map.add_argument("--status", action="append")
    jt_map.set_defaults(handler=cmd_maps_joint)
    rp_map = maps_cmd.add_parser("replay", help="a patrol, or a team's day, played over time")
    map_options(rp_map)
    rp_map.add_argument("--patrol", type=int)
    rp_map.add_argument("--team")
    rp_map.add_argument("--day", help="China date, with --team")
    rp_map.set_defaults(handler=cmd_maps_replay)

    incidents = commands.add_parser(
        "incidents", help="incidents: report, list by grid, act, statistics"
    ).add_subparsers(dest="incidents_command", required=True)

    def filters(p):
        p.add_argument("--grid", action="append", help="grid code, repeatable")
        p.add_argument("--town", action="append")
        p.add_argument("--side")
        p.add_argument("--category", action="append")
        p.add_argument("--status", action="append")
        p.add_argument("--overdue", action="store_true", help="only overdue incidents")
        p.add_argument("--datetime", help="observation time: 2026-03, 2026-03-01/2026-03-31 (China dates)")
        p.add_argument("--bbox", help="minlon,minlat,maxlon,maxlat")
        p.add_argument("--as", dest="as_user", metavar="USERNAME", help="see what this user sees")

    rep = incidents.add_parser("report", help="report an incident at a point")
    rep.add_argument("--as", dest="as_user", required=True, metavar="USERNAME")
    rep.add_argument("--lon", type=float, required=True)
    rep.add_argument("--lat", type=float, required=True)
    rep.add_argument("--category", required=True)
    rep.add_argument("--severity", default="medium")
    rep.add_argument("--level", default="village", help="village, town or county (the resolve time limit)")
    rep.add_argument("--observed-at", help="ISO time (default now)")
    rep.add_argument("--patrol", type=int, help="id of the patrol it was found on")
    rep.add_argument("--note")
    rep.set_defaults(handler=cmd_incidents_report)
    lst_i = incidents.add_parser("list", help="incidents by grid, newest first")
    filters(lst_i)
    lst_i.add_argument("--limit", type=int, default=50)
    lst_i.add_argument("--csv", action="store_true")
    lst_i.set_defaults(handler=cmd_incidents_list)
    show_i = incidents.add_parser("show", help="one incident with its history")
    show_i.add_argument("id", type=int)
    show_i.add_argument("--as", dest="as_user", metavar="USERNAME")
    show_i.set_defaults(handler=cmd_incidents_show)
    act_i = incidents.add_parser("act", help="accept, start, resolve, close, reject, duplicate, reopen")
    act_i.add_argument("id", type=int)
    act_i.add_argument("action")
    act_i.add_argument("--as", dest="as_user", required=True, metavar="USERNAME")
    act_i.add_argument("--version", type=int, help="the version you read (default: the current one)")
    act_i.add_argument("--note")
    act_i.add_argument("--duplicate-of", type=int)
    act_i.add_argument("--level")
    act_i.set_defaults(handler=cmd_incidents_act)
    st = incidents.add_parser("stats", help="response, on-time and resolution rates")
    filters(st)
    st.add_argument("--by", default="grid", help="grid, town, side or month")
    st.add_argument("--json", action="store_true")
    st.set_defaults(handler=cmd_incidents_stats)
    cat = incidents.add_parser("categories", help="list (or --add CODE ZH EN) incident categories")
    cat.add_argument("--add", nargs=3, metavar=("CODE", "LABEL_ZH", "LABEL_EN"))
    cat.set_defaults(handler=cmd_incidents_categories)

    tiles = commands.add_parser(
        "tiles", help="the station's offline basemaps: raster MBTiles or PMTiles files"
    ).add_subparsers(dest="tiles_command", required=True)
    t_add = tiles.add_parser(
        "add", help="check a raster tile file (.mbtiles, .pmtiles) and add it as basemap local:NAME"
    )
    t_add.add_argument("file", help="an MBTiles or PMTiles v3 file of PNG, JPEG or WebP tiles")
    t_add.add_argument("--name", help="a–z, 0–9, '-', '_', at most 40 (default: the file's name)")
    t_add.add_argument(
        "--link", action="store_true", help="link to the file where it is instead of copying it"
    )
    t_add.add_argument("--replace", action="store_true", help="replace a tile set of that name")
    t_add.set_defaults(handler=cmd_tiles_add)
    t_list = tiles.add_parser("list", help="the tile sets, and any file that cannot be served")
    t_list.add_argument("--json", action="store_true")
    t_list.set_defaults(handler=cmd_tiles_list)
    t_rm = tiles.add_parser("remove", help="remove a tile set (a linked file itself is kept)")
    t_rm.add_argument("name")
    t_rm.set_defaults(handler=cmd_tiles_remove)

    backup = commands.add_parser(
        "backup", help="write the database and the photos to one backup file (while the service runs)"
    )
    backup.add_argument("-o", "--output", required=True, help="the backup file to write (a new file)")
    backup.set_defaults(handler=cmd_backup)
    restore = commands.add_parser(
        "restore",
        help="restore a backup into the configured, empty database and the photo folder (stop the service first)",
    )
    restore.add_argument("file", help="a file written by mangrove backup")
    restore.add_argument(
        "--force", action="store_true", help="replace a database that holds data (and photos in the way)"
    )
    restore.set_defaults(handler=cmd_restore)
    audit = commands.add_parser(
        "audit", help="the audit trail: list entries, verify the chain"
    ).add_subparsers(dest="audit_command", required=True)
    al = audit.add_parser("list", help="entries, newest first")
    al.add_argument("--actor", help="user name as recorded (cli:LOGIN for the command line)")
    al.add_argument("--action", action="append", help="e.g. incident.transition, repeatable")
    al.add_argument("--object", type=parse_object, metavar="TYPE[:ID]", help="e.g. incident or incident:42")
    al.add_argument("--channel", help="api, page or cli")
    al.add_argument("--datetime", help="instant or interval, e.g. 2026-03-01/2026-03-31 (China dates)")
    al.add_argument("--limit", type=int, default=50)
    al.add_argument("--before", type=int, metavar="SEQ", help="entries before this position (older)")
    al.add_argument("--json", action="store_true")
    al.set_defaults(handler=cmd_audit_list)
    audit.add_parser(
        "verify", help="check the chain: exit 0 intact, 3 changed/deleted/inserted entries, 1 no database"
    ).set_defaults(handler=cmd_audit_verify)
    cli_analysis.add_commands(commands)
    cli_assessment.add_commands(commands)  # quotas, assessment
    cli_briefing.add_commands(commands)
    cli_export.add_commands(commands)
    cli_evidence.add_commands(commands)  # evidence-package, verify-package
    cli_partitions.add_commands(commands)  # partitions list/create/archive
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
    except SettingsError as exc:
        _print_error(str(exc))
        return EXIT_INPUT
    except CliError as exc:
        _print_error(str(exc))
        return exc.code
    except OperationalError as exc:
        _print_error(f"cannot use the database: {exc.orig}")
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        return 130


# --- maps -------------------------------------------------------------------------------------------


def _map_period(args):
    from api.params import parse_datetime_interval

    if not args.start and not args.end:
        return None, None
    return parse_datetime_interval(f"{args.start or '..'}/{args.end or '..'}")


def _write_map(args, build) -> int:
    """Build a map (``build(session, principal, base)`` → (folium map, title)) and write it as one
    self-contained HTML file: Leaflet and the map code inlined, nothing fetched when opened."""
    from maps.assets import to_html
    from maps.base import basemap

    settings = get_settings()
    name = args.basemap or settings.maps.default_basemap
    local = None
    if name.startswith("local:"):
        # The tiles stay in the service: an exported map fetches them from it, so it needs its address.
        if not args.link_base:
            raise CliError(
                f"the basemap {name} is served by the running service: give --link-base with its "
                "address (e.g. --link-base https://station.local:8443) to export a map using it, or "
                "--basemap none for a map that needs nothing"
            )
        if not args.link_base.startswith(("http://", "https://")):
            raise CliError(f"--link-base must be an http:// or https:// address, got {args.link_base!r}")
        local = {t.name: t.metadata for t in _tile_store().usable()}
    try:
        base = basemap(
            name, tianditu_key=settings.maps.tianditu_key, local=local, url_base=args.link_base or ""
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    with make_session_factory(_engine())() as session:
        m, title = build(session, _principal_of(session, args.as_user), settings, base)
    html = to_html(m, self_contained=True, title=title)
    out = Path(args.output)
    if not out.parent.is_dir():
        raise CliError(f"cannot write {out}: the folder {out.parent} does not exist")
    tmp = out.with_name(out.name + ".part")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out)  # a reader never sees half a map
    print(f"{out}: {len(html.encode()) / 1e6:.2f} MB, {title}")
    return 0


def _incident_link(args) -> str:
    return args.link_base.rstrip("/") + "/incidents/" if args.link_base else ""


def cmd_maps_station(args) -> int:
    from maps.station import station_map
    from patrol.map_data import StationMapQuery, station_map_data

    start, end = _map_period(args)

    def build(session, principal, settings, base):
        query = StationMapQuery(
            station=args.station, town=args.town, grids=tuple(args.grid or ()), start=start, end=end,
            unpatrolled_days=args.unpatrolled_days,
        )  # fmt: skip
        data = station_map_data(session, principal, query, settings)
        m = station_map(
            data,
            base,
            metric=args.metric,
            decimals=settings.maps.coordinate_decimals,
            link=_incident_link(args),
        )
        return m, f"巡护地图 Station map · {data.title}"

    return _write_map(args, build)


def cmd_maps_joint(args) -> int:
    from maps.joint import joint_map
    from patrol.map_data import JointMapQuery, joint_map_data

    start, end = _map_period(args)

    def build(session, principal, settings, base):
        query = JointMapQuery(
            start=start, end=end, categories=tuple(args.category or ()), statuses=tuple(args.status or ())
        )
        data = joint_map_data(session, principal, query, settings)
        m = joint_map(data, base, decimals=settings.maps.coordinate_decimals, link=_incident_link(args))
        return m, "联合执法图 Joint enforcement map"

    return _write_map(args, build)


def cmd_maps_replay(args) -> int:
    from datetime import date

    from maps.replay import replay_map
    from patrol.map_data import replay_data

    if (args.patrol is None) == (args.team is None):
        raise CliError("give --patrol ID, or --team CODE with --day YYYY-MM-DD")
    day = None
    if args.team:
        try:
            day = date.fromisoformat(args.day or "")
        except ValueError:
            raise CliError(f"--team needs --day as a date such as 2026-03-01, got {args.day!r}") from None

    def build(session, principal, settings, base):
        data = replay_data(session, principal, settings, patrol_id=args.patrol, team=args.team, day=day)
        return replay_map(data, base, decimals=settings.maps.coordinate_decimals), data.title

    return _write_map(args, build)


def _local_minute(iso: str | None) -> str:
    """An ISO instant as China Standard Time to the minute, for tables."""
    if iso is None:
        return "-"
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.fromisoformat(iso).astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")


# Last, so that `python -m api.cli` sees every command defined above (the maps commands too).
if __name__ == "__main__":
    sys.exit(main())
