"""Raster tile files a station already has: MBTiles (SQLite) and PMTiles v3, behind one interface.

``open_tiles(path)`` reads the file's kind from its first bytes and returns a :class:`TileSource`:
``.metadata`` (name, format png|jpg|webp, bounds, min/max zoom, attribution), ``.tile(z, x, y)``
(the tile's bytes in XYZ numbering as Leaflet asks for them, or None) and ``.close()``. Reads are
thread-safe (one lock per open file; a tile read is a lookup and a copy).

Refused with a :class:`TileFileError` naming the problem: a file that is neither kind, a damaged
one, PMTiles of another version, and vector tiles (they need a style renderer the service does
not have). Knows nothing of patrols or where the service keeps the files.
"""

from __future__ import annotations

import mmap
import os
import sqlite3
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from geodata.errors import GeodataError

MAX_ZOOM = 30  # the deepest zoom any tile file can address here
MAX_TILE_BYTES = 8 * 1024 * 1024  # a raster tile is tens of kB; more is a damaged or hostile file
WORLD = (-180.0, -85.0511287798066, 180.0, 85.0511287798066)  # Web Mercator's extent
CONTENT_TYPES = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}
VECTOR_MESSAGE = "vector tiles need a style renderer; give a raster (PNG, JPEG or WebP) tile file"

_SQLITE_MAGIC = b"SQLite format 3\x00"
_PMTILES_MAGIC = b"PMTiles"
# Format names found in MBTiles metadata → ours.
_MBTILES_FORMATS = {"png": "png", "jpg": "jpg", "jpeg": "jpg", "webp": "webp"}
_VECTOR_FORMATS = {"pbf", "mvt", "mlt"}


class TileFileError(GeodataError):
    """A tile file that cannot be used; the message names the file and the problem."""

    title = "Unusable tile file"


@dataclass(frozen=True)
class TileMetadata:
    name: str
    format: str  # png, jpg or webp
    bounds: tuple[float, float, float, float]  # minlon, minlat, maxlon, maxlat (WGS84)
    minzoom: int
    maxzoom: int
    attribution: str = ""

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "format": self.format,
            "bounds": list(self.bounds),
            "minzoom": self.minzoom,
            "maxzoom": self.maxzoom,
            "attribution": self.attribution,
        }


def sniff_format(data: bytes) -> str | None:
    """png, jpg, webp, 'vector' (gzip-compressed protobuf) or None, from a tile's first bytes."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data.startswith(b"\x1f\x8b"):
        return "vector"
    return None


def in_range(z: int, x: int, y: int) -> bool:
    """Whether z/x/y names a tile of the XYZ scheme at all."""
    return 0 <= z <= MAX_ZOOM and 0 <= x < (1 << z) and 0 <= y < (1 << z)


class TileSource(ABC):
    """An open tile file. ``tile`` takes XYZ numbers (y from the north, as Leaflet asks)."""

    kind: str  # "mbtiles" or "pmtiles"
    metadata: TileMetadata

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._closed = False

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        """The tile's bytes, or None when the file has none there (or z/x/y names no tile)."""
        if not in_range(z, x, y):
            return None
        with self._lock:
            if self._closed:
                raise TileFileError(f"{self.path.name}: the tile file was closed")
            try:
                data = self._read(z, x, y)
            except TileFileError:
                raise
            except Exception as exc:  # the readers raise assorted errors on a damaged file
                raise TileFileError(
                    f"{self.path.name} is damaged: tile {z}/{x}/{y} cannot be read ({type(exc).__name__}: {exc})"
                ) from None
        if data is not None and len(data) > MAX_TILE_BYTES:
            raise TileFileError(
                f"{self.path.name}: tile {z}/{x}/{y} is {len(data)} bytes, more than a tile can be"
            )
        return data

    def sample(self) -> tuple[tuple[int, int, int], bytes]:
        """One tile of the file ((z, x, y), bytes), checked to be of the declared raster format."""
        with self._lock:
            try:
                found = self._first()
            except TileFileError:
                raise
            except Exception as exc:
                raise TileFileError(
                    f"{self.path.name} is damaged: its tiles cannot be read ({type(exc).__name__}: {exc})"
                ) from None
        if found is None:
            raise TileFileError(f"{self.path.name} holds no tiles")
        (z, x, y), data = found
        kind = sniff_format(data)
        if kind == "vector":
            raise TileFileError(f"{self.path.name}: {VECTOR_MESSAGE}")
        if kind != self.metadata.format:
            raise TileFileError(
                f"{self.path.name} says its tiles are {self.metadata.format.upper()} but tile {z}/{x}/{y} "
                f"is {kind.upper() if kind else 'not an image'}"
            )
        return (z, x, y), data

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._release()

    def __enter__(self) -> TileSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:  # a source dropped from a cache is closed when nothing uses it
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    @abstractmethod
    def _read(self, z: int, x: int, y: int) -> bytes | None: ...

    @abstractmethod
    def _first(self) -> tuple[tuple[int, int, int], bytes] | None: ...

    @abstractmethod
    def _release(self) -> None: ...


# --- MBTiles -------------------------------------------------------------------------------------


class MBTiles(TileSource):
    """MBTiles 1.x: a SQLite file with ``metadata`` (name, value) and ``tiles`` (zoom_level,
    tile_column, tile_row, tile_data) in TMS numbering: tile_row = 2^z − 1 − y."""

    kind = "mbtiles"

    def __init__(self, path: Path):
        super().__init__(path)
        try:
            # Read-only; one connection shared by threads under the source's lock.
            self._db = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise TileFileError(f"{self.path.name} cannot be opened as MBTiles: {exc}") from None
        try:
            self.metadata = self._read_metadata()
        except TileFileError:
            self._db.close()
            raise
        except sqlite3.Error as exc:
            self._db.close()
            raise TileFileError(f"{self.path.name} is not a usable MBTiles file: {exc}") from None

    def _read_metadata(self) -> TileMetadata:
        names = {
            row[0]
            for row in self._db.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
        }
        if "tiles" not in names:
            raise TileFileError(f"{self.path.name} is a SQLite file but not MBTiles: it has no tiles table")
        meta: dict[str, str] = {}
        if "metadata" in names:
            for name, value in self._db.execute("SELECT name, value FROM metadata"):
                if isinstance(name, str) and value is not None:
                    meta[name.strip().lower()] = str(value).strip()
        declared = meta.get("format", "").lower()
        if declared in _VECTOR_FORMATS:
            raise TileFileError(f"{self.path.name}: {VECTOR_MESSAGE}")
        if declared:
            if declared not in _MBTILES_FORMATS:
                raise TileFileError(
                    f"{self.path.name}: tiles of format {declared!r} are not supported; "
                    "give a raster (PNG, JPEG or WebP) tile file"
                )
            fmt = _MBTILES_FORMATS[declared]
        else:  # older files do not say: the first tile does
            row = self._db.execute("SELECT tile_data FROM tiles LIMIT 1").fetchone()
            kind = sniff_format(bytes(row[0] or b"")) if row else None
            if kind == "vector":
                raise TileFileError(f"{self.path.name}: {VECTOR_MESSAGE}")
            if kind is None:
                raise TileFileError(
                    f"{self.path.name} names no tile format and its tiles are not PNG, JPEG or WebP images"
                )
            fmt = kind
        minzoom, maxzoom = meta.get("minzoom"), meta.get("maxzoom")
        if minzoom is None or maxzoom is None:
            low, high = self._db.execute("SELECT MIN(zoom_level), MAX(zoom_level) FROM tiles").fetchone()
            if low is None:
                raise TileFileError(f"{self.path.name} holds no tiles")
            minzoom = low if minzoom is None else minzoom
            maxzoom = high if maxzoom is None else maxzoom
        return TileMetadata(**_checked_zooms(self.path.name, meta, fmt, self.path.stem, minzoom, maxzoom))

    def _read(self, z: int, x: int, y: int) -> bytes | None:
        row = self._db.execute(
            "SELECT CASE WHEN length(tile_data) <= ? THEN tile_data END, length(tile_data) FROM tiles "
            "WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?",
            (MAX_TILE_BYTES, z, x, (1 << z) - 1 - y),
        ).fetchone()
        if row is None:
            return None
        if row[0] is None and row[1]:
            raise TileFileError(
                f"{self.path.name}: tile {z}/{x}/{y} is {row[1]} bytes, more than a tile can be"
            )
        return bytes(row[0]) if row[0] is not None else None

    def _first(self):
        row = self._db.execute(
            "SELECT zoom_level, tile_column, tile_row, substr(tile_data, 1, ?) FROM tiles LIMIT 1",
            (MAX_TILE_BYTES,),
        ).fetchone()
        if row is None:
            return None
        z, x, tms_y, data = row
        return (int(z), int(x), (1 << int(z)) - 1 - int(tms_y)), bytes(data or b"")

    def _release(self) -> None:
        self._db.close()


def _zoom(filename: str, what: str, value) -> int:
    try:
        zoom = int(float(value))
    except (TypeError, ValueError):
        raise TileFileError(f"{filename}: its {what} {value!r} is not a whole number") from None
    if not 0 <= zoom <= MAX_ZOOM:
        raise TileFileError(f"{filename}: its {what} {zoom} is outside 0–{MAX_ZOOM}")
    return zoom


def _checked_zooms(filename, meta, fmt, stem, minzoom, maxzoom) -> dict:
    low, high = _zoom(filename, "minzoom", minzoom), _zoom(filename, "maxzoom", maxzoom)
    if low > high:
        raise TileFileError(f"{filename}: its minzoom {low} is above its maxzoom {high}")
    return {
        "name": meta.get("name") or stem,
        "format": fmt,
        "bounds": _bounds(filename, meta.get("bounds")),
        "minzoom": low,
        "maxzoom": high,
        "attribution": meta.get("attribution", ""),
    }


def _bounds(filename: str, text: str | None) -> tuple[float, float, float, float]:
    if not text:
        return WORLD
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    return _checked_bounds(filename, values, text)


def _checked_bounds(filename: str, values: tuple, shown) -> tuple[float, float, float, float]:
    if len(values) != 4 or not all(v == v for v in values):
        raise TileFileError(f"{filename}: its bounds {shown!r} are not minlon,minlat,maxlon,maxlat")
    minlon, minlat, maxlon, maxlat = values
    if not (-180 <= minlon < maxlon <= 180 and -90 <= minlat < maxlat <= 90):
        raise TileFileError(
            f"{filename}: its bounds {shown!r} are not a WGS84 box (minlon,minlat,maxlon,maxlat)"
        )
    return (max(minlon, WORLD[0]), max(minlat, WORLD[1]), min(maxlon, WORLD[2]), min(maxlat, WORLD[3]))


# --- PMTiles -------------------------------------------------------------------------------------


class PMTiles(TileSource):
    """PMTiles v3, read through the ``pmtiles`` package (``pmtiles.reader.Reader``) from a
    memory map of the file."""

    kind = "pmtiles"

    def __init__(self, path: Path):
        from pmtiles.reader import Reader
        from pmtiles.tile import Compression, TileType

        super().__init__(path)
        try:
            with open(self.path, "rb") as f:
                self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as exc:
            raise TileFileError(f"{self.path.name} cannot be read: {exc}") from None
        self._reader = Reader(self._bytes)
        try:
            header = self._reader.header()
            meta = self._reader.metadata() if header["metadata_length"] else {}
        except Exception as exc:  # noqa: BLE001 - pmtiles raises assorted errors on damaged files
            self._map.close()
            raise TileFileError(
                f"{self.path.name} is not a usable PMTiles v3 file ({type(exc).__name__}: {exc})"
            ) from None
        try:
            self.metadata = self._from_header(
                header, meta if isinstance(meta, dict) else {}, TileType, Compression
            )
        except TileFileError:
            self._map.close()
            raise
        self._header = header

    def _bytes(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset + length > len(self._map):
            raise TileFileError(f"{self.path.name} is damaged or cut short: it points past its end")
        return self._map[offset : offset + length]

    def _from_header(self, header, meta, TileType, Compression) -> TileMetadata:
        name = self.path.name
        tile_type = header["tile_type"]
        if tile_type in (TileType.MVT, TileType.MLT):
            raise TileFileError(f"{name}: {VECTOR_MESSAGE}")
        formats = {TileType.PNG: "png", TileType.JPEG: "jpg", TileType.WEBP: "webp"}
        if tile_type not in formats:
            raise TileFileError(
                f"{name}: tiles of type {tile_type.name} are not supported; "
                "give a raster (PNG, JPEG or WebP) tile file"
            )
        if header["tile_compression"] not in (Compression.NONE, Compression.UNKNOWN):
            raise TileFileError(
                f"{name}: its tiles are {header['tile_compression'].name}-compressed, which raster tiles never are"
            )
        values = tuple(header[k] / 1e7 for k in ("min_lon_e7", "min_lat_e7", "max_lon_e7", "max_lat_e7"))
        bounds = (
            WORLD if values == (0, 0, 0, 0) else _checked_bounds(name, values, ",".join(map(str, values)))
        )
        low, high = _zoom(name, "min_zoom", header["min_zoom"]), _zoom(name, "max_zoom", header["max_zoom"])
        if low > high:
            raise TileFileError(f"{name}: its min_zoom {low} is above its max_zoom {high}")
        return TileMetadata(
            name=str(meta.get("name") or self.path.stem),
            format=formats[tile_type],
            bounds=bounds,
            minzoom=low,
            maxzoom=high,
            attribution=str(meta.get("attribution") or ""),
        )

    def _read(self, z: int, x: int, y: int) -> bytes | None:
        data = self._reader.get(z, x, y)
        return bytes(data) if data is not None else None

    def _first(self):
        from pmtiles.reader import all_tiles

        for (z, x, y), data in all_tiles(self._bytes):
            return (z, x, y), bytes(data[:MAX_TILE_BYTES])
        return None

    def _release(self) -> None:
        self._map.close()


# --- opening --------------------------------------------------------------------------------------


def open_tiles(path: str | os.PathLike) -> TileSource:
    """The tile file at ``path``, MBTiles or PMTiles v3 (told apart by their first bytes)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except IsADirectoryError:
        raise TileFileError(f"{path.name} is a folder, not a tile file") from None
    except FileNotFoundError:
        raise TileFileError(f"no such file: {path}") from None
    except OSError as exc:
        raise TileFileError(f"{path.name} cannot be read: {exc.strerror or exc}") from None
    if head.startswith(_SQLITE_MAGIC):
        return MBTiles(path)
    if head.startswith(_PMTILES_MAGIC):
        version = head[7] if len(head) > 7 else None
        if version != 3:
            raise TileFileError(
                f"{path.name} is PMTiles version {version}; only version 3 is read "
                "(convert it with `pmtiles convert`)"
            )
        return PMTiles(path)
    raise TileFileError(
        f"{path.name} is neither an MBTiles nor a PMTiles file; give a raster tile file (.mbtiles or .pmtiles)"
    )


__all__ = [
    "CONTENT_TYPES",
    "MBTiles",
    "PMTiles",
    "TileFileError",
    "TileMetadata",
    "TileSource",
    "in_range",
    "open_tiles",
    "sniff_format",
]
