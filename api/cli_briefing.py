"""``mangrove briefing``: the monthly briefing (工作简报) of a side, town or station, written as PDF or
HTML (chosen by the output's suffix).

    mangrove briefing --month 2026-11 --side GD-LJ -o brief.pdf
    mangrove briefing --month 2026-11 --station LJ-S-GQ --as manager -o brief.html

Without ``--as`` the operator reads everything (as the other commands); with it, that user's rules
apply, exactly as in the API. Bad input is printed and the command exits with status 2 (see
``api.cli.main``).
"""

from __future__ import annotations

from pathlib import Path

FORMATS = {".pdf": "pdf", ".html": "html", ".htm": "html"}


def add_commands(commands) -> None:
    p = commands.add_parser(
        "briefing", help="the monthly briefing (工作简报) of a side, town or station, as PDF or HTML"
    )
    p.add_argument("--month", required=True, help="China-time month, e.g. 2026-11")
    p.add_argument("--side", help="GD-LJ or GX-HP (default: the user's side; the operator: both)")
    p.add_argument("--town", help="a town code, e.g. GQ")
    p.add_argument("--station", help="a station code, e.g. LJ-S-GQ")
    p.add_argument("--as", dest="as_user", metavar="USERNAME", help="what this user may see")
    p.add_argument("-o", "--output", required=True, help="the file to write: .pdf or .html")
    p.set_defaults(handler=cmd_briefing)


def cmd_briefing(args) -> int:
    from api.cli import CliError, _engine, _principal_of
    from patrol.briefing.collect import collect_briefing
    from patrol.briefing.render import render_html, to_pdf
    from patrol.db import make_session_factory
    from patrol.settings import get_settings

    out = Path(args.output)
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise CliError(f"cannot tell the format of {out}: name the output .pdf or .html")
    if not out.parent.is_dir():
        raise CliError(f"cannot write {out}: the folder {out.parent} does not exist")
    settings = get_settings()
    with make_session_factory(_engine())() as session:
        principal = _principal_of(session, args.as_user)
        briefing = collect_briefing(
            session,
            principal,
            settings,
            month=args.month,
            side=args.side,
            town=args.town,
            station=args.station,
        )
    html = render_html(briefing)
    data = to_pdf(html) if fmt == "pdf" else html.encode("utf-8")
    tmp = out.with_name(out.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(out)  # a reader never sees half a briefing
    state = "nothing to show" if briefing.empty else (
        f"{briefing.totals.patrols} patrols, {briefing.totals.km:.1f} km, {briefing.totals.incidents} incidents"
    )  # fmt: skip
    print(f"{out}: {len(data) / 1e6:.2f} MB, {briefing.title_zh} ({state})")
    return 0
