"""The station's own basemaps: raster tile files (MBTiles, PMTiles) kept in the tile folder
(``Settings.tile_dir()``, default ``<data dir>/tiles``) as ``NAME.mbtiles`` or ``NAME.pmtiles``.

The folder is the registry: what is in it is what the service serves, so every worker process
sees the same sets. Open files are cached per process keyed by the file's identity (device,
inode, modification time, size, following a link), so a set replaced or changed on disk is
opened afresh on the next request, never served stale.

Adding and removing a set change a file and append an audit entry together: the new file is
written under a temporary name first, the entry committed, then the file renamed into place (a
rename within one folder); a refusal or a failed commit leaves neither.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from geodata.tiles import TileFileError, TileMetadata, TileSource, in_range, open_tiles
from patrol import audit
from patrol.accounts import Principal
from patrol.errors import Conflict, DomainError, InvalidRequest, NotFound
from patrol.settings import TILESET_NAME

log = logging.getLogger("mangrove.tiles")
SUFFIXES = (".mbtiles", ".pmtiles")
TILE_URL = "/tiles/{name}/{{z}}/{{x}}/{{y}}"


class TileStoreError(DomainError):
    """The tile folder cannot be written or read (permissions, a full disk)."""

    title = "Tile folder unusable"
    status = 503


@dataclass(frozen=True)
class Tileset:
    name: str  # the store's name for it (the file name's stem), used in URLs and basemap choices
    path: Path
    kind: str  # mbtiles or pmtiles
    metadata: TileMetadata
    linked: bool = False  # a symbolic link to a file kept elsewhere

    def as_dict(self) -> dict:
        meta = self.metadata
        return {
            "name": self.name,
            "title": meta.name,
            "kind": self.kind,
            "format": meta.format,
            "bounds": list(meta.bounds),
            "minzoom": meta.minzoom,
            "maxzoom": meta.maxzoom,
            "attribution": meta.attribution,
            "tiles": TILE_URL.format(name=self.name),
        }


def check_name(name: str) -> str:
    if not TILESET_NAME.fullmatch(name or ""):
        raise InvalidRequest(
            f"bad tile set name {name!r}: use 1 to 40 of a–z, 0–9, '-' and '_' (e.g. lianjiang-2024)"
        )
    return name


# --- open files, per process ---------------------------------------------------------------------

_cache: dict[str, tuple[tuple, TileSource]] = {}
_cache_lock = threading.Lock()


def _identity(path: Path) -> tuple:
    st = path.stat()  # follows a link: a link re-pointed or its target replaced is a new identity
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def open_cached(path: Path) -> TileSource:
    """The open source of ``path``, opened again if the file changed since it was opened."""
    key = str(path)
    identity = _identity(path)
    with _cache_lock:
        held = _cache.get(key)
        if held is not None and held[0] == identity:
            return held[1]
    source = open_tiles(path)  # outside the lock: opening a large file must not hold up the others
    with _cache_lock:
        _cache[key] = (identity, source)  # the replaced source closes once no request holds it
    return source


def forget(path: Path) -> None:
    with _cache_lock:
        _cache.pop(str(path), None)


# --- the store -------------------------------------------------------------------------------------


class TileStore:
    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def files(self) -> dict[str, Path]:
        """{name: path} of the tile files in the folder (well-named ones; a name's MBTiles wins)."""
        found: dict[str, Path] = {}
        try:
            entries = sorted(self.directory.iterdir())
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise TileStoreError(f"cannot read the tile folder {self.directory}: {exc.strerror}") from None
        for path in entries:
            if path.suffix in SUFFIXES and TILESET_NAME.fullmatch(path.stem):
                found.setdefault(path.stem, path)
        return found

    def path_of(self, name: str) -> Path:
        path = self.files().get(name) if TILESET_NAME.fullmatch(name or "") else None
        if path is None:
            raise NotFound(f"no tile set {name!r}: see `mangrove tiles list`")
        return path

    def get(self, name: str) -> Tileset:
        path = self.path_of(name)
        try:
            source = open_cached(path)
        except FileNotFoundError:
            raise NotFound(
                f"the tile set {name!r} links to a file that is gone: remove it or add it again"
            ) from None
        return Tileset(name, path, source.kind, source.metadata, path.is_symlink())

    def usable(self) -> list[Tileset]:
        """Every set that opens; one that does not is logged and left out (``mangrove tiles list``
        names its problem)."""
        sets = []
        for name in self.files():
            try:
                sets.append(self.get(name))
            except (TileFileError, NotFound, OSError) as exc:
                log.warning("tile set %s is not served: %s", name, getattr(exc, "message", exc))
        return sets

    def survey(self) -> list[tuple[str, Path, Tileset | None, str | None]]:
        """(name, path, set or None, problem or None) of every file, for listing."""
        rows = []
        for name, path in self.files().items():
            try:
                rows.append((name, path, self.get(name), None))
            except (TileFileError, NotFound) as exc:
                rows.append((name, path, None, exc.message))
            except OSError as exc:
                rows.append((name, path, None, str(exc)))
        return rows

    def tile(self, name: str, z: int, x: int, y: int) -> tuple[bytes, str]:
        """(bytes, content type) of a tile; NotFound names what is missing."""
        if not in_range(z, x, y):
            raise InvalidRequest(f"no tile {z}/{x}/{y}: at zoom z, x and y run from 0 to 2^z − 1 (z ≤ 30)")
        tileset = self.get(name)
        meta = tileset.metadata
        if not meta.minzoom <= z <= meta.maxzoom:
            raise NotFound(f"the tile set {name!r} has zoom levels {meta.minzoom}–{meta.maxzoom}, not {z}")
        try:
            data = open_cached(tileset.path).tile(z, x, y)
        except FileNotFoundError:
            raise NotFound(f"the tile set {name!r} was removed meanwhile") from None
        if data is None:
            raise NotFound(f"the tile set {name!r} has no tile {z}/{x}/{y}")
        return data, meta.content_type


# --- adding and removing -----------------------------------------------------------------------------


def add_tileset(
    session: Session,
    principal: Principal,
    store: TileStore,
    source: Path,
    *,
    name: str | None = None,
    link: bool = False,
    replace: bool = False,
) -> Tileset:
    """Check a tile file (it opens, its metadata reads, a tile of it is an image of its format),
    then copy it into the store atomically, or link to it (``link``), as NAME (default: the
    file's stem in lower case). An existing NAME is refused unless ``replace``. Commits the session: the audit
    entry and the file go in together."""
    source = Path(source)
    if not source.is_file():
        raise InvalidRequest(f"no such file: {source}")
    name = check_name(name if name is not None else source.stem.lower())
    with open_tiles(source) as checked:
        checked.sample()
        kind, meta = checked.kind, checked.metadata
    existing = store.files().get(name)
    if existing is not None and not replace:
        raise Conflict(
            f"a tile set named {name!r} exists already: give --replace to replace it, or another --name"
        )
    target = store.directory / f"{name}.{kind}"
    try:
        store.directory.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=store.directory, prefix=".adding-")) / target.name
    except OSError as exc:
        raise TileStoreError(f"cannot write the tile folder {store.directory}: {exc.strerror}") from None
    try:
        if link:
            os.symlink(source.resolve(), tmp)
        else:
            shutil.copyfile(source, tmp)
            with open_tiles(tmp) as copied:  # what will be served, read back
                copied.sample()
        changes = {
            "file": source.name,
            "kind": kind,
            "format": meta.format,
            "bounds": list(meta.bounds),
            "zoom": [meta.minzoom, meta.maxzoom],
            "size_bytes": source.stat().st_size,
            "linked": link,
        }
        if existing is not None:
            changes["replaced"] = existing.name
        audit.record(session, principal, "tileset.add", "tileset", name, audit.changes({}, changes))
        session.commit()
    except OSError as exc:
        session.rollback()
        _remove_tmp(tmp)
        raise TileStoreError(f"cannot write {target}: {exc.strerror or exc}") from None
    except BaseException:
        session.rollback()
        _remove_tmp(tmp)
        raise
    os.replace(tmp, target)
    _remove_tmp(tmp)
    if existing is not None and existing != target:  # e.g. NAME.mbtiles replaced by NAME.pmtiles
        existing.unlink(missing_ok=True)
        forget(existing)
    forget(target)
    return store.get(name)


def _remove_tmp(tmp: Path) -> None:
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    with_dir = tmp.parent
    if with_dir.name.startswith(".adding-"):
        shutil.rmtree(with_dir, ignore_errors=True)


def remove_tileset(session: Session, principal: Principal, store: TileStore, name: str) -> Path:
    """Remove a set from the store (a linked file itself is left where it is). Commits."""
    check_name(name)
    path = store.path_of(name)
    linked = path.is_symlink()
    audit.record(
        session,
        principal,
        "tileset.remove",
        "tileset",
        name,
        audit.changes({"file": path.name, "linked": linked}, {}),
    )
    session.commit()
    path.unlink(missing_ok=True)
    forget(path)
    return path
