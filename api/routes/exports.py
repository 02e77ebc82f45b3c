"""Exports: GeoPackage, Shapefile, KML/KMZ, GPX, CSV and XLSX of grids, effort, patrols, incidents
and joint cases, with the incident list's filters; each layer holds only what the caller may see."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from api.deps import NowDep, SessionDep, SettingsDep, SignedIn
from api.openapi import content
from api.routes.incidents import Filters
from patrol.exports import FORMATS, LAYERS, ExportOptions, ExportScope, export

router = APIRouter(prefix="/api/v1", tags=["exports"])


def split_layers(values: list[str] | None) -> tuple[str, ...]:
    """``layers=grids&layers=incidents`` or ``layers=grids,incidents``."""
    return tuple(name.strip() for value in values or () for name in value.split(",") if name.strip())


@router.get(
    "/exports/{format}",
    summary="Download grids, effort, patrols, incidents and joint cases as GeoPackage, Shapefile (zip), "
    "KML, KMZ, GPX, CSV or XLSX",
    responses={200: content(*sorted({f.media_type for f in FORMATS.values()} | {"application/zip"}),
                            description="The file")},
)  # fmt: skip
def download(
    format: str,
    session: SessionDep,
    settings: SettingsDep,
    principal: SignedIn,
    now: NowDep,
    query: Filters,
    layers: Annotated[
        list[str] | None,
        Query(description=f"{', '.join(LAYERS)}; repeatable or comma-separated (default: the format's)"),
    ] = None,
    team: Annotated[str | None, Query(description="patrols and effort of one team")] = None,
    member: Annotated[str | None, Query(description="patrols and effort of one member (username)")] = None,
    datum: Annotated[
        str, Query(description="wgs84 (default) or gcj02 for Amap/Ovital (KML, KMZ, CSV, XLSX)")
    ] = "wgs84",
    encoding: Annotated[str, Query(description="Shapefile text: utf-8 (default) or gbk")] = "utf-8",
):
    options = ExportOptions(format=format, layers=split_layers(layers), datum=datum, encoding=encoding)
    folder = Path(tempfile.mkdtemp(prefix="mangrove-export-"))
    try:
        result = export(
            session,
            principal,
            settings,
            ExportScope(query, team=team, member=member),
            options,
            folder,
            now=now,
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    # Streamed from the file, which is removed once sent.
    return FileResponse(
        result.path,
        media_type=result.media_type,
        filename=result.filename,
        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
    )
