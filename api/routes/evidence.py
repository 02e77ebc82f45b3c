"""The evidence package of a joint case: ``GET /api/v1/joint-cases/{id}/package``, a zip for
prosecutors and the other province (``patrol.evidence``). Participants of the case and admins only;
each download is in the audit trail."""

from __future__ import annotations

import os
import tempfile
from functools import partial
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from api.deps import NowDep, SessionDep, SettingsDep, SignedIn
from api.openapi import content
from api.params import RowId
from maps.joint import offline_joint_page
from patrol.evidence.package import build_package
from patrol.settings import Settings

router = APIRouter(prefix="/api/v1", tags=["incidents"])
ZIP = "application/zip"


def map_renderer(settings: Settings):
    """How a package draws its map: the joint map, self-contained (shared with the CLI)."""
    return partial(offline_joint_page, decimals=settings.maps.coordinate_decimals)


@router.get(
    "/joint-cases/{case_id}/package",
    summary="The evidence package of a joint case (zip; participants and admins)",
    responses={
        200: content(ZIP, description="summary (HTML, PDF), map, incidents, photos, actions, manifest")
    },
)
def joint_case_package(
    case_id: RowId, session: SessionDep, settings: SettingsDep, principal: SignedIn, now: NowDep
):
    """Everything about the case in one zip, with a manifest of every file's SHA-256 (check it
    with ``mangrove verify-package``). Those who may not see joint cases get 404, as for any case;
    managers and officers who are not participants get 403. Each download is audited."""
    fd, name = tempfile.mkstemp(prefix="joint-case-", suffix=".zip")
    os.close(fd)
    path = Path(name)
    try:
        package = build_package(
            session, principal, case_id, settings, path, render_map=map_renderer(settings), now=now
        )
        session.commit()
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    # Streamed from the file in chunks, and removed once sent.
    return FileResponse(
        path,
        media_type=ZIP,
        filename=package.filename,
        headers={"Cache-Control": "no-store", "X-Content-SHA256": package.sha256},
        background=BackgroundTask(path.unlink, missing_ok=True),
    )
