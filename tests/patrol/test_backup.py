"""Backups: `mangrove backup` while writes go on, `mangrove restore` into an empty database — the
same rows, byte-identical photos, a verified audit chain — and every refusal before anything
changes (a database holding data, a changed archive, the other backend, an unknown schema)."""

from __future__ import annotations

import io
import json
import tarfile
import threading
import time
import uuid
from pathlib import Path

import pytest
from geoalchemy2 import Geometry
from PIL import Image
from sqlalchemy import create_engine, func, select, text
from utils.factories import add_users
from utils.phone import track_file
from utils.places import inside

from api.cli import main as cli
from patrol import audit
from patrol.accounts import Principal
from patrol.backup import COUNTED, read_manifest
from patrol.db import create_db_engine, make_session_factory
from patrol.incidents import IncidentReport, report_incident
from patrol.joint import open_joint_case
from patrol.models import AuditEntry, Base, IncidentPhoto, User
from patrol.patrols import UploadOptions, upload_patrol
from patrol.photos import add_photo
from patrol.settings import get_settings


def who(session, name: str) -> Principal:
    return Principal.of(session.scalars(select(User).where(User.username == name)).one())


def jpeg(shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (shade, 120, 60)).save(buffer, format="JPEG")
    return buffer.getvalue()


def upload(sessions, settings, tmp_path: Path, i: int) -> int:
    name, data = track_file(i, prefix="backup")
    path = tmp_path / name
    path.write_bytes(data)
    with sessions() as session:
        member = who(session, "member")
        result = upload_patrol(session, path, filename=name, principal=member, options=UploadOptions(),
                               settings=settings.patrols)  # fmt: skip
        audit.record(session, member, "patrol.upload", "patrol", result.patrol_id)
        session.commit()
    return result.patrol_id


def make_data(sessions, settings, tmp_path: Path) -> None:
    """Patrols, incidents with photos, a joint case, and their audit entries."""
    add_users(sessions, "member", "officer-lj", "officer-hp")
    for i in range(2):
        upload(sessions, settings, tmp_path, i)
    with sessions() as session:
        member, officer = who(session, "member"), who(session, "officer-lj")
        lon, lat = inside("LJ-GQ-03")
        incidents = []
        for shade in (10, 200):
            incident = report_incident(
                session, member, IncidentReport("rubbish", lon, lat), settings.incidents
            )
            add_photo(session, member, incident.id, jpeg(shade), settings.incidents, settings.photo_dir())
            audit.record(session, member, "incident.report", "incident", incident.id)
            incidents.append(incident.id)
        case = open_joint_case(session, officer, title="联合巡查 joint patrol", incident_ids=incidents[:1],
                               participants=["officer-hp"], settings=settings.incidents)  # fmt: skip
        audit.record(session, officer, "joint_case.open", "joint_case", case.id)
        session.commit()


class Writer(threading.Thread):
    """Keeps committing small writes (incident reports) until stopped; notes when each landed."""

    def __init__(self, sessions, settings):
        super().__init__(daemon=True)
        self.sessions, self.settings = sessions, settings
        self.stop, self.committed = threading.Event(), []

    def run(self):
        lon, lat = inside("LJ-GQ-01")
        while not self.stop.is_set():
            with self.sessions() as session:
                member = who(session, "member")
                incident = report_incident(
                    session, member, IncidentReport("rubbish", lon, lat), self.settings.incidents
                )
                audit.record(session, member, "incident.report", "incident", incident.id)
                session.commit()
            self.committed.append(time.monotonic())


@pytest.fixture
def use(monkeypatch, settings):
    """``use(url, photo_dir)`` points the command line at a database and photo folder."""

    def point(url: str, photo_dir: Path) -> None:
        monkeypatch.setenv("MANGROVE_DATABASE_URL", url)
        monkeypatch.setenv("MANGROVE_DATA_DIR", str(settings.storage.data_dir))
        monkeypatch.setenv("MANGROVE_INCIDENT_PHOTO_DIR", str(photo_dir))
        monkeypatch.setenv("MANGROVE_AUTH_SECRET_KEY", settings.auth.secret_key)
        get_settings.cache_clear()

    yield point
    get_settings.cache_clear()


@pytest.fixture
def empty_database(backend, tmp_path):
    """The URL of a new, empty database of the test's backend (nothing in it, not even PostGIS)."""
    name, settings, engine = backend
    if name == "spatialite":
        yield f"sqlite:///{tmp_path / 'restored.sqlite'}"
        return
    database = f"mangrove_restore_{uuid.uuid4().hex[:10]}"
    admin = create_engine(engine.url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{database}"'))
    yield engine.url.set(database=database).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    admin.dispose()


def table_rows(engine, table, where=None) -> dict:
    """Every row of ``table`` keyed by primary key; geometries as WKB."""
    columns = [
        func.ST_AsBinary(c).label(c.name) if isinstance(c.type, Geometry) else c for c in table.columns
    ]
    query = select(*columns)
    if where is not None:
        query = query.where(where)
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    key = [c.name for c in table.primary_key.columns]
    return {tuple(r[k] for k in key): {k: bytes(v) if isinstance(v, memoryview) else v for k, v in r.items()}
            for r in rows}  # fmt: skip


def test_a_backup_made_while_writes_go_on_restores_the_same_rows_photos_and_trail(
    engine, sessions, settings, tmp_path, use, empty_database
):
    make_data(sessions, settings, tmp_path)
    writer = Writer(sessions, settings)
    writer.start()
    archive = tmp_path / "mangrove.backup"
    use(str(engine.url.render_as_string(hide_password=False)), settings.photo_dir())
    time.sleep(0.3)
    began = time.monotonic()
    assert cli(["backup", "-o", str(archive)]) == 0
    ended = time.monotonic()
    time.sleep(0.3)
    writer.stop.set()
    writer.join()
    assert any(began < t < ended for t in writer.committed), "no write landed during the backup"

    manifest = read_manifest(archive)
    restored_photos = tmp_path / "restored-photos"
    use(empty_database, restored_photos)
    assert cli(["restore", str(archive)]) == 0
    restored = create_db_engine(empty_database, settings=get_settings())

    # Same counts as the snapshot; every row the same as in the source (which went on growing).
    with make_session_factory(restored)() as session:
        counts = {t: session.scalar(text(f"SELECT count(*) FROM {t}")) for t in COUNTED}
        assert counts == manifest["counts"] | {"audit_log": manifest["counts"]["audit_log"] + 1}
        assert counts["patrols"] == 2 and counts["incident_photos"] == 2 and counts["joint_cases"] == 1
    head = manifest["audit_head"]["seq"]
    for table in Base.metadata.sorted_tables:
        if table.name == "audit_head":
            continue
        where = table.c.seq <= head if table.name == "audit_log" else None
        copy = table_rows(restored, table, where)
        source = table_rows(engine, table, where)
        assert copy == {k: source[k] for k in copy}, table.name
        assert len(copy) == manifest["counts"].get(table.name, len(copy))
    # Photos byte for byte, in the restored photo folder.
    with make_session_factory(restored)() as session:
        for path in session.scalars(select(IncidentPhoto.path)):
            assert (restored_photos / path).read_bytes() == (settings.photo_dir() / path).read_bytes()
        # The trail verifies; the restore is its newest entry, the backup the source's.
        assert audit.verify(session).ok
        last = session.scalar(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1))
        assert (last.action, last.seq) == ("backup.restore", head + 1)
    restored.dispose()
    with sessions() as session:
        made = session.scalar(select(AuditEntry).where(AuditEntry.action == "backup.create"))
        assert made.object_id == last.object_id and made.changes["audit_head_seq"] == [None, head]


def test_a_database_holding_data_is_replaced_only_when_forced(
    engine, sessions, settings, tmp_path, use, capsys
):
    make_data(sessions, settings, tmp_path)
    archive = tmp_path / "mangrove.backup"
    use(str(engine.url.render_as_string(hide_password=False)), settings.photo_dir())
    assert cli(["backup", "-o", str(archive)]) == 0
    add_users(sessions, "admin")  # a change after the backup
    before = {t.name: table_rows(engine, t) for t in Base.metadata.sorted_tables}
    capsys.readouterr()

    assert cli(["restore", str(archive)]) == 2
    error = capsys.readouterr().err
    assert "is not empty" in error and "users" in error and "--force" in error
    assert {t.name: table_rows(engine, t) for t in Base.metadata.sorted_tables} == before

    assert cli(["restore", str(archive), "--force"]) == 0
    with sessions() as session:
        assert session.scalar(select(User.id).where(User.username == "admin")) is None
        assert audit.verify(session).ok


def rewrite(archive: Path, change) -> Path:
    """A copy of ``archive`` with ``change(name, data) -> data`` applied to each member."""
    copy = archive.with_name(f"changed-{uuid.uuid4().hex[:8]}-{archive.name}")
    with tarfile.open(archive) as src, tarfile.open(copy, "w") as dst:
        for member in src:
            data = change(member.name, src.extractfile(member).read())
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
    return copy


def manifest_with(**changes):
    def change(name, data):
        return json.dumps(json.loads(data) | changes).encode() if name == "manifest.json" else data

    return change


def test_a_changed_or_foreign_archive_is_refused_before_anything_changes(
    engine, sessions, settings, tmp_path, use, empty_database, capsys
):
    make_data(sessions, settings, tmp_path)
    archive = tmp_path / "mangrove.backup"
    use(str(engine.url.render_as_string(hide_password=False)), settings.photo_dir())
    assert cli(["backup", "-o", str(archive)]) == 0
    assert cli(["backup", "-o", str(archive)]) == 2  # never over an earlier backup
    assert "exists already" in capsys.readouterr().err

    photo = next(n for n in read_manifest(archive)["members"] if n.startswith("photos/"))
    other = "postgis" if read_manifest(archive)["backend"] == "spatialite" else "spatialite"
    cases = {
        "a changed photo": (rewrite(archive, lambda n, d: d[:-1] + b"!" if n == photo else d), photo),
        "another backend": (rewrite(archive, manifest_with(backend=other)), "backups are not converted"),
        "an unknown schema": (rewrite(archive, manifest_with(schema_revision="9999")), "'9999' is unknown"),
        "not a backup": (Path(__file__), "not a readable backup"),
    }
    restored_photos = tmp_path / "restored-photos"
    use(empty_database, restored_photos)
    for case, (changed, says) in cases.items():
        assert cli(["restore", str(changed)]) == 2, case
        assert says in capsys.readouterr().err, case
    assert not restored_photos.exists()
    target = create_db_engine(empty_database, settings=get_settings())
    with target.connect() as conn:
        assert "users" not in target.dialect.get_table_names(conn)
    target.dispose()
