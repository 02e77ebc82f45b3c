"""The station's own basemaps: the list of tile sets and their tiles, for the maps (``local:NAME``)
and any other Leaflet or tile client on the station's network."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from api.deps import Public, SettingsDep
from api.openapi import IMAGES, content
from geodata.tiles import MAX_ZOOM
from patrol.tilesets import TileStore

router = APIRouter(tags=["tiles"])

# Tiles change only when an operator replaces a set: a day in the browser's cache, revalidated by
# ETag (the tile's content hash) after that.
CACHE_CONTROL = "public, max-age=86400"

Zoom = Annotated[int, Path(ge=0, le=MAX_ZOOM, description="zoom level")]
Column = Annotated[int, Path(ge=0, le=(1 << MAX_ZOOM) - 1, description="x, from the west (0 to 2^z − 1)")]
Row = Annotated[int, Path(ge=0, le=(1 << MAX_ZOOM) - 1, description="y, from the north (0 to 2^z − 1)")]


def store(settings) -> TileStore:
    return TileStore(settings.tile_dir())


@router.get("/api/v1/tiles", summary="The station's tile sets (basemaps local:NAME)")
def tilesets(settings: SettingsDep, _: Public):
    return {"tilesets": [t.as_dict() for t in store(settings).usable()]}


def _etag(data: bytes) -> str:
    return '"' + hashlib.blake2b(data, digest_size=16).hexdigest() + '"'


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    # Weak comparison (RFC 9110 §13.1.2): W/"x" matches "x".
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


@router.get(
    "/tiles/{name}/{z}/{x}/{y}",
    summary="One tile of a station tile set (XYZ numbering, as Leaflet asks)",
    responses={
        200: content(*IMAGES, description="The tile"),
        304: {"description": "Not modified: the tile is the one the client holds (If-None-Match)"},
    },
)
async def tile(name: str, z: Zoom, x: Column, y: Row, request: Request, settings: SettingsDep, _: Public):
    data, content_type = await run_in_threadpool(store(settings).tile, name, z, x, y)
    etag = _etag(data)
    headers = {"Cache-Control": CACHE_CONTROL, "ETag": etag}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=content_type, headers=headers)
