"""``mangrove export``: grids, effort, patrols, incidents and joint cases as GeoPackage, Shapefile
(zip), KML, KMZ, GPX, CSV or XLSX, with the incident list's filters.

    mangrove export gpkg -o patrol.gpkg --datetime 2026-11
    mangrove export kmz -o ovital.kmz --layers grids,incidents --datum gcj02 --as officer
    mangrove export shp -o old-gis.zip --encoding gbk --side GD-LJ

Without ``--as`` the operator reads everything (as the other commands); with it, that user's rules
apply, exactly as in the API. The file appears whole or not at all.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from patrol.exports import FORMATS, LAYERS


def add_commands(commands) -> None:
    p = commands.add_parser(
        "export", help="export layers as GeoPackage, Shapefile, KML/KMZ, GPX, CSV or XLSX"
    )
    p.add_argument("format", help=", ".join(FORMATS))
    p.add_argument("-o", "--output", required=True, help="the file to write")
    p.add_argument("--layers", action="append", help=f"{', '.join(LAYERS)} (comma-separated or repeated)")
    p.add_argument("--datetime", help="instant or interval, e.g. 2026-03-01/2026-03-31 (China dates)")
    p.add_argument("--grid", action="append", help="grid code, repeatable")
    p.add_argument("--town", action="append", help="town code, repeatable")
    p.add_argument("--side", help="GD-LJ or GX-HP")
    p.add_argument("--category", action="append", help="incident category, repeatable")
    p.add_argument("--status", action="append", help="incident status, repeatable")
    p.add_argument("--overdue", action="store_true", help="only overdue incidents")
    p.add_argument("--bbox", help="minlon,minlat,maxlon,maxlat")
    p.add_argument("--team", help="patrols and effort of one team")
    p.add_argument("--member", help="patrols and effort of one member (username)")
    p.add_argument("--datum", default="wgs84", help="wgs84 or gcj02 (KML, KMZ, CSV, XLSX for Amap/Ovital)")
    p.add_argument("--encoding", default="utf-8", help="Shapefile text: utf-8 or gbk")
    p.add_argument("--as", dest="as_user", metavar="USERNAME", help="what this user may see")
    p.set_defaults(handler=cmd_export)


def cmd_export(args) -> int:
    from api.cli import CliError, _engine, _incident_query, _principal_of
    from api.routes.exports import split_layers
    from patrol.db import make_session_factory
    from patrol.exports import ExportOptions, ExportScope, export
    from patrol.settings import get_settings

    out = Path(args.output)
    if not out.parent.is_dir():
        raise CliError(f"cannot write {out}: the folder {out.parent} does not exist")
    settings = get_settings()
    options = ExportOptions(
        format=args.format, layers=split_layers(args.layers), datum=args.datum, encoding=args.encoding
    )
    folder = Path(tempfile.mkdtemp(prefix="mangrove-export-"))
    try:
        with make_session_factory(_engine())() as session:
            principal = _principal_of(session, args.as_user)
            scope = ExportScope(_incident_query(args), team=args.team, member=args.member)
            result = export(session, principal, settings, scope, options, folder)
        # Copied beside the output first, then renamed: a reader never sees half a file.
        part = out.with_name(out.name + ".part")
        try:
            shutil.copyfile(result.path, part)
            part.replace(out)
        except OSError as exc:
            part.unlink(missing_ok=True)
            raise CliError(f"cannot write {out}: {exc.strerror}") from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    each = ", ".join(f"{n} {c}" for n, c in result.counts.items())
    print(f"{out}: {out.stat().st_size / 1e6:.2f} MB ({each})")
    return 0
