"""Backups: the database and the incident photos in one archive file, made while the service runs,
and restored into an empty database.

The archive is a tar file:

- ``manifest.json`` first: format version, backend, schema revision, when it was made, the audit
  chain's head (position and hash) in the snapshot, row counts, and the SHA-256 and size of every
  other member;
- ``database.sqlite`` — a SpatiaLite snapshot taken with SQLite's online backup API in one step:
  one read transaction, so it is consistent while writers go on (WAL lets them);
- or ``database.pgdump`` — ``pg_dump`` in its custom format, run on a snapshot exported from a
  repeatable-read transaction, the same snapshot in which the photos to include are listed;
- ``photos/<path>`` — every photo file the snapshot's rows refer to.

A restore checks every hash before it changes anything, refuses a database that holds data
(unless forced) and a backup of the other backend (no conversion: restore a SpatiaLite backup into
SpatiaLite, a PostGIS one into PostGIS), writes the photos, restores the database in one
transaction, brings its schema up to date and verifies the audit chain.

Audit: a backup appends ``backup.create`` to the live database after the archive is written (so it
names the archive's SHA-256; the archive itself ends at the entry before). A restore appends
``backup.restore`` to the restored database, after the chain it brought back has been verified.
With ``force``, the trail of the database that was replaced goes with it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import Engine, inspect, text

from patrol import audit, migrate
from patrol.accounts import Principal
from patrol.db import is_sqlite, make_session_factory, sqlite_driver
from patrol.errors import InvalidRequest
from patrol.models import Base, iso_utc
from patrol.settings import Settings

FORMAT = "mangrove-patrol-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PHOTOS = "photos/"
# Tables whose rows make a database "not empty" (the reference geodata alone does not), and what
# their rows are called in messages.
DATA_TABLES = {"users": "users", "patrols": "patrols", "incidents": "incidents", "joint_cases": "joint cases",
               "grid_imports": "grid imports", "audit_log": "audit entries"}  # fmt: skip
COUNTED = ("users", "patrols", "patrol_visits", "incidents", "incident_events", "incident_photos",
           "joint_cases", "grids", "audit_log")  # fmt: skip
CHUNK = 1 << 20


class BackupRefused(InvalidRequest):
    title = "Backup refused"


@dataclass
class BackupReport:
    path: Path
    size_bytes: int
    sha256: str
    manifest: dict[str, Any]


@dataclass
class RestoreReport:
    manifest: dict[str, Any]
    archive_sha256: str
    photos_written: int
    photos_kept: int  # already there with the same content
    replaced: dict[str, int]  # rows the target held before (with force)
    counts: dict[str, int]  # as restored, before the restore's own audit entry
    verification: audit.Verification
    findings: list[str] = field(default_factory=list)  # what does not match the manifest

    @property
    def ok(self) -> bool:
        return self.verification.ok and not self.findings


def backend_name(engine: Engine) -> str:
    return "spatialite" if is_sqlite(engine) else "postgis"


# --- making a backup ---------------------------------------------------------------------------


@dataclass
class _Snapshot:
    member: str  # database.sqlite or database.pgdump
    file: Path
    facts: dict[str, Any]


def create_backup(
    engine: Engine, settings: Settings, output: str | Path, principal: Principal
) -> BackupReport:
    """Write a backup of ``engine``'s database and the photos it refers to to ``output`` (a new
    file, written under a temporary name and renamed when complete), then record it in the trail."""
    output = Path(output)
    if output.exists():
        raise BackupRefused(f"{output} exists already: choose a new file name for the backup")
    if not output.parent.is_dir():
        raise BackupRefused(f"cannot write {output}: the folder {output.parent} does not exist")
    photo_dir = settings.photo_dir()
    with tempfile.TemporaryDirectory(prefix=".mangrove-backup-", dir=output.parent) as work:
        take = _snapshot_spatialite if is_sqlite(engine) else _snapshot_postgis
        snapshot = take(engine, Path(work))
        members = {snapshot.member: _file_entry(snapshot.file)}
        photos, missing = {}, []
        for relative in snapshot.facts["photo_paths"]:
            path = _inside(photo_dir, relative)
            if path is None or not path.is_file():
                missing.append(relative)
                continue
            photos[PHOTOS + relative] = path
            members[PHOTOS + relative] = _file_entry(path)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "backend": backend_name(engine),
            "schema_revision": snapshot.facts["revision"],
            "created_at": iso_utc(datetime.now(UTC)),
            "audit_head": snapshot.facts["audit_head"],
            "counts": snapshot.facts["counts"],
            "missing_photos": missing,
            "members": members,
        }
        _write_archive(output, manifest, {snapshot.member: snapshot.file, **photos})
    size, digest = output.stat().st_size, _sha256_of(output)
    with make_session_factory(engine)() as session:
        audit.record(
            session, principal, "backup.create", "backup", digest,
            {"file": [None, output.name], "bytes": [None, size], "backend": [None, manifest["backend"]],
             "audit_head_seq": [None, manifest["audit_head"]["seq"]], "photos": [None, len(photos)]},
        )  # fmt: skip
        session.commit()
    return BackupReport(output, size, digest, manifest)


def _snapshot_spatialite(engine: Engine, work: Path) -> _Snapshot:
    target = work / "database.sqlite"
    if not Path(engine.url.database).is_file():
        raise BackupRefused(f"there is no database at {engine.url.database}: nothing to back up")
    driver = sqlite_driver()
    source = driver.connect(engine.url.database, timeout=30)
    copy = driver.connect(target)
    try:
        # All pages in one step: one read transaction, a consistent snapshot; writers go on in WAL.
        source.backup(copy, pages=-1)
        # A single self-contained file (no -wal beside it), checked before it is archived.
        copy.execute("PRAGMA journal_mode=DELETE").fetchone()
        check = copy.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise BackupRefused(f"the database snapshot is damaged: {check}")
        facts = _facts(lambda sql: copy.execute(sql).fetchall())
    finally:
        copy.close()
        source.close()
    return _Snapshot("database.sqlite", target, facts)


def _snapshot_postgis(engine: Engine, work: Path) -> _Snapshot:
    target = work / "database.pgdump"
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        snapshot_id = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar()
        facts = _facts(lambda sql: conn.exec_driver_sql(sql).fetchall())
        # pg_dump reads the very snapshot this transaction holds open: the photos listed above.
        _run(["pg_dump", "--format=custom", f"--snapshot={snapshot_id}", f"--file={target}",
              "--dbname", _libpq_uri(engine)], engine)  # fmt: skip
        conn.rollback()
    return _Snapshot("database.pgdump", target, facts)


def _facts(query: Callable[[str], list]) -> dict[str, Any]:
    """What the manifest says about a snapshot, read from it with plain SQL."""
    try:
        revision = query("SELECT version_num FROM alembic_version")
    except Exception:  # noqa: BLE001 - no such table: nothing was ever migrated here
        raise BackupRefused("the database has no schema: there is nothing to back up") from None
    head = query(f"SELECT seq, hash FROM audit_head WHERE id = {audit.HEAD_ID}")
    return {
        "revision": revision[0][0] if revision else None,
        "audit_head": {"seq": head[0][0], "hash": head[0][1]} if head else {"seq": 0, "hash": audit.GENESIS},
        "counts": {t: query(f"SELECT count(*) FROM {t}")[0][0] for t in COUNTED},
        "photo_paths": [r[0] for r in query("SELECT path FROM incident_photos ORDER BY id")],
    }


def _write_archive(output: Path, manifest: dict[str, Any], files: dict[str, Path]) -> None:
    partial = output.with_name(output.name + ".part")
    mtime = datetime.now(UTC).timestamp()
    try:
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
            body = json.dumps(manifest, ensure_ascii=False, indent=2).encode()
            tar.addfile(_tarinfo(MANIFEST, len(body), mtime), io.BytesIO(body))
            for name, path in files.items():
                with path.open("rb") as f:
                    tar.addfile(_tarinfo(name, manifest["members"][name]["bytes"], mtime), f)
        with partial.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(partial, output)  # a backup file is complete or absent
    finally:
        partial.unlink(missing_ok=True)


def _tarinfo(name: str, size: int, mtime: float) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, mtime, 0o600
    return info


def _file_entry(path: Path) -> dict[str, Any]:
    return {"sha256": _sha256_of(path), "bytes": path.stat().st_size}


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# --- reading and checking an archive -------------------------------------------------------------


def read_manifest(archive: str | Path) -> dict[str, Any]:
    """The manifest of a backup file, or BackupRefused saying why it is not one."""
    archive = Path(archive)
    if not archive.is_file():
        raise BackupRefused(f"no such backup file: {archive}")
    try:
        with tarfile.open(archive, "r:*") as tar:
            member = tar.next()
            if member is None or member.name != MANIFEST or not member.isfile():
                raise BackupRefused(f"{archive} is not a Mangrove Patrol backup: it has no manifest")
            manifest = json.loads(tar.extractfile(member).read())
    except (tarfile.TarError, OSError, ValueError) as exc:
        raise BackupRefused(f"{archive} is not a readable backup ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupRefused(f"{archive} is not a Mangrove Patrol backup")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupRefused(
            f"{archive} is a backup of format version {manifest.get('format_version')}; "
            f"this version of Mangrove Patrol reads version {FORMAT_VERSION}"
        )
    return manifest


def _verify_archive(archive: Path) -> tuple[dict[str, Any], str]:
    """(manifest, SHA-256 of the archive) once every member matches the manifest exactly."""
    manifest = read_manifest(archive)
    listed: dict[str, dict] = manifest.get("members") or {}
    problems, seen = [], set()
    for name in listed:
        if name.startswith(PHOTOS):
            if _safe_relative(name.removeprefix(PHOTOS)) is None:
                problems.append(f"{name}: not a plain relative path")
        elif name not in ("database.sqlite", "database.pgdump"):
            problems.append(f"{name}: not a member a backup holds")
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            if member.name == MANIFEST:
                continue
            expected = listed.get(member.name)
            if expected is None or not member.isfile():
                problems.append(f"{member.name}: not listed in the manifest")
                continue
            if member.name in seen:
                problems.append(f"{member.name}: in the archive twice")
                continue
            seen.add(member.name)
            digest = hashlib.sha256()
            with tar.extractfile(member) as f:
                while chunk := f.read(CHUNK):
                    digest.update(chunk)
            if digest.hexdigest() != expected.get("sha256") or member.size != expected.get("bytes"):
                problems.append(f"{member.name}: its content does not match the manifest's SHA-256")
    problems += [f"{name}: listed in the manifest but missing" for name in sorted(set(listed) - seen)]
    if problems:
        raise BackupRefused(
            f"{archive} is damaged or was changed; nothing was restored: " + "; ".join(problems[:10])
        )
    return manifest, _sha256_of(archive)


def _safe_relative(relative: str) -> PurePosixPath | None:
    path = PurePosixPath(relative)
    if not relative or path.is_absolute() or ".." in path.parts or "\\" in relative:
        return None
    return path


def _inside(directory: Path, relative: str) -> Path | None:
    safe = _safe_relative(relative)
    if safe is None:
        return None
    path = (directory / safe).resolve()
    return path if path.is_relative_to(directory.resolve()) else None


# --- restoring ---------------------------------------------------------------------------------


def database_holds_data(engine: Engine) -> dict[str, int]:
    """Rows in the tables that hold users' data (empty for a new or only-migrated database)."""
    present = set(inspect(engine).get_table_names())
    counts = {}
    with engine.connect() as conn:
        for table in DATA_TABLES:
            if table in present:
                n = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()
                if n:
                    counts[table] = n
    return counts


def restore_backup(
    engine: Engine, settings: Settings, archive: str | Path, principal: Principal, *, force: bool = False
) -> RestoreReport:
    """Restore ``archive`` into ``engine``'s database and the photo folder. Nothing changes unless
    the archive is intact, of this backend and schema lineage, and the database is empty (or
    ``force``)."""
    archive = Path(archive)
    manifest, archive_sha256 = _verify_archive(archive)
    backend = backend_name(engine)
    if manifest["backend"] != backend:
        raise BackupRefused(
            f"{archive} is a backup of a {_label(manifest['backend'])} database and the configured database "
            f"is {_label(backend)}; backups are not converted: restore it into a {_label(manifest['backend'])} "
            "database (MANGROVE_DATABASE_URL)"
        )
    _check_revision(manifest["schema_revision"])
    held = database_holds_data(engine)
    if held and not force:
        rows = ", ".join(f"{n} {DATA_TABLES[table]}" for table, n in held.items())
        raise BackupRefused(
            f"the database {engine.url.render_as_string(hide_password=True)} is not empty ({rows}); "
            "restoring would replace it: use --force to replace it (back it up first)"
        )
    photo_dir = settings.photo_dir()
    photos = _plan_photos(manifest, photo_dir, force)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix=".mangrove-restore-") as work:
        database = _extract(archive, ("database.sqlite", "database.pgdump"), Path(work))
        try:
            written = _write_photos(archive, photos, photo_dir)
            if backend == "spatialite":
                _restore_spatialite(engine, database)
            else:
                _restore_postgis(engine, database, Path(work))
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
    engine.dispose()  # no pooled connection may still see the replaced database
    migrate.upgrade(engine)  # a backup made before a schema change is brought up to date
    with make_session_factory(engine)() as session:
        verification = audit.verify(session)
        counts = {t: session.scalar(text(f"SELECT count(*) FROM {t}")) for t in COUNTED}
        findings = []
        head = {"seq": verification.head_seq, "hash": verification.head_hash}
        if head != manifest["audit_head"]:
            findings.append(f"the audit head is {head}, the manifest says {manifest['audit_head']}")
        findings += [
            f"{t}: {counts[t]} rows restored, the manifest says {manifest['counts'].get(t)}"
            for t in COUNTED
            if counts[t] != manifest["counts"].get(t)
        ]
        audit.record(
            session, principal, "backup.restore", "backup", archive_sha256,
            {"file": [None, archive.name], "created_at": [None, manifest["created_at"]],
             "backend": [None, backend], "schema_revision": [None, manifest["schema_revision"]],
             "audit_head_seq": [None, manifest["audit_head"]["seq"]], "audit_verified": [None, verification.ok],
             "photos": [None, len(photos)], "replaced": [None, held or None]},
        )  # fmt: skip
        session.commit()
    return RestoreReport(
        manifest=manifest,
        archive_sha256=archive_sha256,
        photos_written=len(written),
        photos_kept=len(photos) - len(written),
        replaced=held,
        counts=counts,
        verification=verification,
        findings=findings,
    )


def _label(backend: str) -> str:
    return {"spatialite": "SpatiaLite", "postgis": "PostGIS"}.get(backend, repr(backend))


def _check_revision(revision: str | None) -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS))
    try:
        ScriptDirectory.from_config(config).get_revision(revision)
    except CommandError:
        raise BackupRefused(
            f"the backup's schema revision {revision!r} is unknown to this version of Mangrove Patrol "
            f"(which knows up to {migrate.head_revision()}): restore it with the version that made it"
        ) from None


def _plan_photos(manifest: dict[str, Any], photo_dir: Path, force: bool) -> dict[str, Path]:
    """member name → target path of the photos to write; refuses files in the way."""
    plan, clashes = {}, []
    for name, entry in manifest["members"].items():
        if not name.startswith(PHOTOS):
            continue
        target = _inside(photo_dir, name.removeprefix(PHOTOS))
        if target is None:
            raise BackupRefused(f"{name}: the photo would land outside the photo folder")
        if target.exists():
            if target.is_file() and _sha256_of(target) == entry["sha256"]:
                continue
            if not force:
                clashes.append(str(target))
                continue
        plan[name] = target
    if clashes:
        raise BackupRefused(
            f"{len(clashes)} photo file(s) with other content are in the way in {photo_dir} "
            f"(e.g. {clashes[0]}): use --force to overwrite them"
        )
    return plan


def _write_photos(archive: Path, plan: dict[str, Path], photo_dir: Path) -> list[Path]:
    written: list[Path] = []
    if not plan:
        return written
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                target = plan.get(member.name)
                if target is None:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with _replacing(target) as out, tar.extractfile(member) as f:
                    shutil.copyfileobj(f, out, CHUNK)
                written.append(target)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return written


@contextmanager
def _replacing(target: Path) -> Iterator[io.BufferedWriter]:
    """A file written under a temporary name beside ``target`` and renamed over it when done."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".restore-")
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _extract(archive: Path, names: tuple[str, ...], work: Path) -> Path:
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            if member.name in names:
                target = work / member.name
                with target.open("wb") as out, tar.extractfile(member) as f:
                    shutil.copyfileobj(f, out, CHUNK)
                return target
    raise BackupRefused(f"{archive} holds no database")  # not reached: the manifest was checked


def _restore_spatialite(engine: Engine, snapshot: Path) -> None:
    engine.dispose()
    driver = sqlite_driver()
    source = driver.connect(snapshot)
    target = driver.connect(engine.url.database, timeout=30)
    try:
        # The backup API the other way round: the whole file replaced in one write transaction,
        # under SQLite's own locking (a failure leaves the target as it was).
        source.backup(target, pages=-1)
    finally:
        target.close()
        source.close()


def _restore_postgis(engine: Engine, dump: Path, work: Path) -> None:
    """The dump's SQL, after dropping this schema's tables, in ONE transaction (psql -1): the
    database is restored whole or left as it was. The PostGIS extension is kept if present
    (created if not); comments are skipped (COMMENT ON EXTENSION needs its owner)."""
    restore_sql = work / "restore.sql"
    _run(["pg_restore", "--no-owner", "--no-privileges", "--no-comments", f"--file={restore_sql}", str(dump)],
         engine)  # fmt: skip
    script = work / "script.sql"
    tables = [t.name for t in Base.metadata.sorted_tables] + ["alembic_version"]
    with script.open("w") as out, restore_sql.open() as dumped:
        # A service still connected and busy makes the drops wait: fail clearly instead.
        out.write("SET client_min_messages = warning;\nSET lock_timeout = '10s';\n")
        out.write("".join(f'DROP TABLE IF EXISTS public."{t}" CASCADE;\n' for t in tables))
        out.write("DROP FUNCTION IF EXISTS public.audit_append_only() CASCADE;\n")
        shutil.copyfileobj(dumped, out, CHUNK)
    engine.dispose()
    _run(["psql", "--no-psqlrc", "--quiet", "--single-transaction", "--set=ON_ERROR_STOP=1",
          f"--file={script}", "--dbname", _libpq_uri(engine)], engine)  # fmt: skip


def _libpq_uri(engine: Engine) -> str:
    """The database as a libpq URI for pg_dump, pg_restore and psql; the password goes through
    the environment (PGPASSWORD), never the command line."""
    return engine.url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)


def _run(command: list[str], engine: Engine) -> None:
    tool = command[0]
    if shutil.which(tool) is None:
        raise BackupRefused(f"{tool} is not installed: install the PostgreSQL client (postgresql-client)")
    env = dict(os.environ)
    if engine.url.password:
        env["PGPASSWORD"] = str(engine.url.password)
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        message = " ".join((done.stderr or done.stdout).split())[:1000]
        raise BackupRefused(f"{tool} failed (exit {done.returncode}): {message}")
