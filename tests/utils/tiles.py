"""Small tile files for tests: PNG tiles drawn with Pillow (a different colour per z/x/y), written
as MBTiles with sqlite3 and as PMTiles with the ``pmtiles`` package's writer."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

from PIL import Image

# Around Lianjiang's mangroves: three zoom levels, a few tiles each.
BOUNDS = (109.6, 21.3, 110.2, 21.8)


def colour(z: int, x: int, y: int) -> tuple[int, int, int]:
    return ((z * 40) % 256, (x * 7) % 256, (y * 13) % 256)


def tile_image(z: int, x: int, y: int, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour(z, x, y)).save(buffer, format=fmt)
    return buffer.getvalue()


def pixel(data: bytes) -> tuple[int, int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB").getpixel((0, 0))


def xyz_tiles(zooms=(1, 2, 3)) -> list[tuple[int, int, int]]:
    """Every tile of the whole world at a few low zooms (XYZ: y from the north)."""
    return [(z, x, y) for z in zooms for x in range(1 << z) for y in range(1 << z)]


def write_mbtiles(
    path: Path,
    tiles=None,
    *,
    fmt: str = "png",
    metadata: dict | None = None,
    data=None,
) -> Path:
    """An MBTiles file; tiles are XYZ and stored TMS (row flipped). ``data(z, x, y)`` → bytes."""
    tiles = xyz_tiles() if tiles is None else tiles
    data = data or (
        lambda z, x, y: tile_image(z, x, y, {"png": "PNG", "jpg": "JPEG", "webp": "WEBP"}.get(fmt, "PNG"))
    )
    meta = {
        "name": "Lianjiang test",
        "format": fmt,
        "bounds": ",".join(map(str, BOUNDS)),
        "minzoom": str(min(t[0] for t in tiles)) if tiles else "0",
        "maxzoom": str(max(t[0] for t in tiles)) if tiles else "0",
        "attribution": "© test tiles",
    } | (metadata or {})
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
    db.execute(
        "CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB)"
    )
    db.executemany("INSERT INTO metadata VALUES (?, ?)", [(k, v) for k, v in meta.items() if v is not None])
    db.executemany(
        "INSERT INTO tiles VALUES (?, ?, ?, ?)",
        [(z, x, (1 << z) - 1 - y, data(z, x, y)) for z, x, y in tiles],
    )
    db.commit()
    db.close()
    return path


def write_pmtiles(
    path: Path, tiles=None, *, tile_type: str = "PNG", metadata: dict | None = None, data=None
) -> Path:
    from pmtiles.tile import Compression, TileType, zxy_to_tileid
    from pmtiles.writer import write

    tiles = xyz_tiles() if tiles is None else tiles
    data = data or (lambda z, x, y: tile_image(z, x, y))
    with write(path) as writer:
        for tile_id, (z, x, y) in sorted((zxy_to_tileid(*t), t) for t in tiles):
            writer.write_tile(tile_id, data(z, x, y))
        writer.finalize(
            {
                "tile_type": TileType[tile_type],
                "tile_compression": Compression.NONE if tile_type != "MVT" else Compression.GZIP,
                "min_lon_e7": int(BOUNDS[0] * 1e7),
                "min_lat_e7": int(BOUNDS[1] * 1e7),
                "max_lon_e7": int(BOUNDS[2] * 1e7),
                "max_lat_e7": int(BOUNDS[3] * 1e7),
                "center_zoom": 2,
                "center_lon_e7": int(109.9 * 1e7),
                "center_lat_e7": int(21.5 * 1e7),
            },
            {"name": "Hepu test", "attribution": "© test tiles"} | (metadata or {}),
        )
    return path


def vector_tile() -> bytes:
    import gzip

    return gzip.compress(b"\x1a\x00", mtime=0)  # an empty layer list, as protobuf, gzipped


__all__ = ["BOUNDS", "colour", "pixel", "tile_image", "write_mbtiles", "write_pmtiles", "xyz_tiles"]
