"""Building the evidence package of a joint case (see ``patrol.evidence``).

The zip is written member by member straight to a file (photos copied in chunks, each member
hashed as it is written), so a case with many photos is never held in memory; the manifest comes
last. The map is drawn by the caller (``render_map``): drawing maps is ``maps``' job, above this
layer.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.metadata
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import geopandas as gpd
import pyogrio
import shapely
from sqlalchemy import select
from sqlalchemy.orm import Session

from geodata.crs import WGS84
from patrol import audit, csvsafe
from patrol.accounts import Principal
from patrol.evidence.summary import render_summary
from patrol.evidence.verify import FORMAT, MANIFEST
from patrol.incidents import IncidentQuery, can_see_photos, incident_feature, query_incidents
from patrol.joint import joint_case_detail, participant_case
from patrol.map_data import JointMapData, joint_case_map_data
from patrol.models import Incident, IncidentPhoto, User, iso_utc
from patrol.settings import Settings

FORMAT_VERSION = 1
CHUNK = 1 << 20
ACTION_COLUMNS = ("id", "at", "by", "by_name", "mechanism", "mechanism_zh", "note")
# Already compressed: stored as they are.
STORED_SUFFIXES = (".jpg", ".png", ".webp", ".pdf")


def service_version() -> str:
    try:
        return importlib.metadata.version("mangrove-patrol")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that is not installed
        return "unknown"


@dataclass
class CasePhoto:
    incident_id: int
    photo_id: int
    file: Path  # the stored file
    name: str  # its path in the package
    content_type: str
    width: int
    height: int
    sent_sha256: str  # of the file as the reporter sent it (the stored one is re-encoded)
    uploaded_at: str
    uploaded_by: str
    present: bool


@dataclass
class CaseEvidence:
    case: dict[str, Any]  # patrol.joint.joint_case_detail
    incidents: list[dict[str, Any]]  # as the JSON API lists them (patrol.incidents.query_incidents)
    photos: list[CasePhoto]
    map_data: JointMapData
    generated_at: datetime
    generated_by: str


@dataclass
class Package:
    path: Path
    filename: str  # joint-case-<id>-<date>.zip
    size: int
    sha256: str
    manifest: dict[str, Any]


def package_filename(case_id: int, generated_at: datetime) -> str:
    return f"joint-case-{case_id}-{generated_at.astimezone(UTC):%Y-%m-%d}.zip"


# --- gathering ---------------------------------------------------------------------------------


def collect_case(
    session: Session, principal: Principal, case_id: int, settings: Settings, *, now: datetime | None = None
) -> CaseEvidence:
    """What the package of ``case_id`` holds, for a participant (or admin); others are refused
    as by ``patrol.joint.participant_case``."""
    now = now or datetime.now(UTC)
    participant_case(session, principal, case_id, to="download its evidence package")
    case = joint_case_detail(session, principal, case_id)
    incidents: list[dict[str, Any]] = []
    cursor = None
    while True:  # every page: a case is small, but the API's page limit still applies
        query = IncidentQuery(joint_case_id=case_id, sort="id", limit=10_000, cursor=cursor)
        page, cursor = query_incidents(session, principal, query, settings.incidents, now=now)
        incidents += page
        if cursor is None:
            break
    return CaseEvidence(
        case=case,
        incidents=incidents,
        photos=_photos(session, principal, [i["id"] for i in incidents], settings.photo_dir()),
        map_data=joint_case_map_data(session, principal, case, settings, now=now),
        generated_at=now,
        generated_by=principal.username,
    )


def _photos(
    session: Session, principal: Principal, incident_ids: list[int], photo_dir: Path
) -> list[CasePhoto]:
    rows = session.execute(
        select(IncidentPhoto, User.username)
        .join(User, User.id == IncidentPhoto.uploaded_by)
        .where(IncidentPhoto.incident_id.in_(incident_ids))
        .order_by(IncidentPhoto.incident_id, IncidentPhoto.id)
    ).all()
    incidents = {i.id: i for i in session.scalars(select(Incident).where(Incident.id.in_(incident_ids)))}
    root = photo_dir.resolve()
    photos = []
    for photo, uploader in rows:
        if not can_see_photos(principal, incidents[photo.incident_id]):
            continue  # a participant works every incident of the case; this is a second lock
        file = (photo_dir / photo.path).resolve()
        suffix = Path(photo.path).suffix.lower()
        photos.append(
            CasePhoto(
                incident_id=photo.incident_id,
                photo_id=photo.id,
                file=file,
                name=f"photos/{photo.incident_id}-{photo.id}{suffix}",
                content_type=photo.content_type,
                width=photo.width,
                height=photo.height,
                sent_sha256=photo.sha256,
                uploaded_at=iso_utc(photo.uploaded_at),
                uploaded_by=uploader,
                present=file.is_relative_to(root) and file.is_file(),
            )
        )
    return photos


# --- writing -----------------------------------------------------------------------------------


class _Writer:
    """Members written to a zip one after another, each hashed and measured as it goes."""

    def __init__(self, target: IO[bytes], when: datetime):
        self.zip = zipfile.ZipFile(target, "w", allowZip64=True)
        self.date_time = when.astimezone(UTC).timetuple()[:6]
        self.files: list[dict[str, Any]] = []

    @contextmanager
    def member(self, name: str) -> Iterator[Callable[[bytes], None]]:
        info = zipfile.ZipInfo(name, self.date_time)
        info.compress_type = zipfile.ZIP_STORED if name.endswith(STORED_SUFFIXES) else zipfile.ZIP_DEFLATED
        digest, size = hashlib.sha256(), 0
        with self.zip.open(info, "w", force_zip64=True) as out:

            def write(data: bytes) -> None:
                nonlocal size
                digest.update(data)
                size += len(data)
                out.write(data)

            yield write
        self.files.append({"path": name, "size": size, "sha256": digest.hexdigest()})

    def add_bytes(self, name: str, data: bytes) -> None:
        with self.member(name) as write:
            write(data)

    def add_file(self, name: str, path: Path) -> None:
        with self.member(name) as write, path.open("rb") as f:
            while chunk := f.read(CHUNK):
                write(chunk)


def _csv(columns: Iterable[str], rows: Iterable[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    buffer.write("\ufeff")  # so that Excel opens Chinese text as UTF-8
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(csvsafe.record({k: "" if v is None else v for k, v in row.items()}) for row in rows)
    return buffer.getvalue().encode("utf-8")


def _geojson(incidents: list[dict[str, Any]]) -> bytes:
    features = [incident_feature(item) for item in incidents]
    body = {"type": "FeatureCollection", "features": features}
    return json.dumps(body, ensure_ascii=False, indent=1).encode("utf-8")


def _kml(incidents: list[dict[str, Any]], labels, work: Path) -> Path:
    """The incidents as KML through GDAL's KML driver: placemarks named by id and category, their
    description the incident's (the driver takes the "description" field for it)."""
    # "incident_id", not "id": KML readers give the placemark's own id that name.
    frame = gpd.GeoDataFrame(
        [
            {("incident_id" if k == "id" else k): "" if v is None else str(v) for k, v in item.items()}
            for item in incidents
        ],
        geometry=shapely.points([[i["lon"], i["lat"]] for i in incidents]) if incidents else [],
        crs=WGS84,
    )
    if incidents:
        frame.insert(0, "Name", [f"#{i['id']} {labels.name('categories', i['category'])}" for i in incidents])
    path = work / "incidents.kml"
    pyogrio.write_dataframe(frame, path, driver="KML", layer="incidents")
    return path


def write_package(evidence: CaseEvidence, target: IO[bytes], *, map_html: str) -> dict[str, Any]:
    """Write the package to ``target`` (a binary file open for writing); returns the manifest."""
    case = evidence.case
    labels = evidence.map_data.labels
    writer = _Writer(target, evidence.generated_at)
    with writer.zip, tempfile.TemporaryDirectory(prefix="mangrove-evidence-") as work:
        html, pdf = render_summary(evidence)
        writer.add_bytes("summary.html", html.encode("utf-8"))
        writer.add_bytes("summary.pdf", pdf)
        writer.add_bytes("map.html", map_html.encode("utf-8"))
        writer.add_bytes("incidents.geojson", _geojson(evidence.incidents))
        columns = list(evidence.incidents[0]) if evidence.incidents else ["id"]
        writer.add_bytes("incidents.csv", _csv(columns, evidence.incidents))
        writer.add_file("incidents.kml", _kml(evidence.incidents, labels, Path(work)))
        for photo in evidence.photos:
            if photo.present:
                writer.add_file(photo.name, photo.file)
        actions = case["actions"]
        writer.add_bytes("actions.json", json.dumps(actions, ensure_ascii=False, indent=1).encode("utf-8"))
        writer.add_bytes("actions.csv", _csv(ACTION_COLUMNS, actions))
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "case_id": case["id"],
            "case_title": case["title"],
            "generated_at": iso_utc(evidence.generated_at),
            "generated_by": evidence.generated_by,
            "service_version": service_version(),
            "files": writer.files,
            "missing_photos": [p.name for p in evidence.photos if not p.present],
        }
        writer.add_bytes(MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8"))
        writer.files.pop()  # the manifest does not list itself
    return manifest


def build_package(
    session: Session,
    principal: Principal,
    case_id: int,
    settings: Settings,
    output: Path,
    *,
    render_map: Callable[[JointMapData, str], str],
    now: datetime | None = None,
) -> Package:
    """Write the package of ``case_id`` to ``output`` (complete or absent: written under a
    temporary name first) and record the download in the audit trail. The caller commits, and
    deletes ``output`` if the commit fails. ``render_map(data, title)`` draws the map page."""
    evidence = collect_case(session, principal, case_id, settings, now=now)
    title = f"联合案件 Joint case #{case_id} · {evidence.case['title']}"
    map_html = render_map(evidence.map_data, title)
    fd, partial = tempfile.mkstemp(prefix=f".{output.name}-", suffix=".part", dir=output.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            manifest = write_package(evidence, f, map_html=map_html)
        os.replace(partial, output)
    finally:
        Path(partial).unlink(missing_ok=True)
    digest = hashlib.sha256()
    with output.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    package = Package(
        path=output,
        filename=package_filename(case_id, evidence.generated_at),
        size=output.stat().st_size,
        sha256=digest.hexdigest(),
        manifest=manifest,
    )
    logged = {
        "package": package.filename,
        "sha256": package.sha256,
        "bytes": package.size,
        "files": len(manifest["files"]),
        "incidents": [i["id"] for i in evidence.incidents],
    }
    audit.record(session, principal, "joint_case.package", "joint_case", case_id, audit.changes({}, logged))
    return package
