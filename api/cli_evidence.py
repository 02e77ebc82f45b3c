"""``mangrove evidence-package`` and ``mangrove verify-package``: the evidence package of a joint
case, and the check of one received.

    mangrove evidence-package 7 -o case-7.zip --as officer-lj
    mangrove verify-package case-7.zip

The package is made as the user named by ``--as`` (required: the manifest names who made it, and
only participants of the case and admins may). ``verify-package`` exits 0 ("OK, N files
verified"), 1 naming each file changed, added or removed (or a manifest missing or unreadable),
2 for a file that is not a readable zip.
"""

from __future__ import annotations

import sys
from pathlib import Path

EXIT_TAMPERED = 1
EXIT_UNREADABLE = 2


def add_commands(commands) -> None:
    p = commands.add_parser(
        "evidence-package", help="a joint case's evidence package (zip) for prosecutors or the other side"
    )
    p.add_argument("case_id", type=int, metavar="CASE_ID", help="the joint case")
    p.add_argument("-o", "--output", required=True, help="the .zip file to write (must not exist)")
    p.add_argument(
        "--as", dest="as_user", required=True, metavar="USERNAME", help="a participant of the case"
    )
    p.set_defaults(handler=cmd_evidence_package)
    v = commands.add_parser(
        "verify-package",
        help="check an evidence package against its manifest: exit 0 intact, 1 altered, 2 unreadable",
    )
    v.add_argument("file", help="the package (.zip)")
    v.set_defaults(handler=cmd_verify_package)


def cmd_evidence_package(args) -> int:
    from api.cli import CliError, _engine, _principal_of
    from api.routes.evidence import map_renderer
    from patrol.db import make_session_factory
    from patrol.evidence.package import build_package
    from patrol.settings import get_settings

    out = Path(args.output)
    if out.exists():
        raise CliError(f"{out} exists already: choose a new file name for the package")
    if not out.parent.is_dir():
        raise CliError(f"cannot write {out}: the folder {out.parent} does not exist")
    settings = get_settings()
    with make_session_factory(_engine())() as session:
        principal = _principal_of(session, args.as_user)
        try:
            package = build_package(
                session, principal, args.case_id, settings, out, render_map=map_renderer(settings)
            )
            session.commit()
        except BaseException:
            out.unlink(missing_ok=True)  # no package without its audit entry
            raise
    files = len(package.manifest["files"])
    print(f"{out}: {package.size / 1e6:.2f} MB, {files} files, SHA-256 {package.sha256}")
    for name in package.manifest["missing_photos"]:
        print(f"  warning: {name} is missing from the photo store", file=sys.stderr)
    return 0


def cmd_verify_package(args) -> int:
    from patrol.evidence.verify import verify_package

    report = verify_package(args.file)
    if report.ok:
        print(f"OK, {report.verified} files verified")
        return 0
    for line in report.problems():
        print(line, file=sys.stderr)
    return EXIT_UNREADABLE if not report.readable else EXIT_TAMPERED
