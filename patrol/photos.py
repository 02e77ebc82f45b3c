"""Incident photos: checked to be real images of a sane size, stored as files outside the
database (under ``photo_dir``), with the relative path recorded.

A file is written before its row and removed again if the transaction fails, so a rejected photo
leaves neither a row nor a file behind.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import tempfile
import warnings
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from sqlalchemy.orm import Session

from patrol import audit
from patrol.accounts import Principal
from patrol.errors import Conflict, InvalidRequest, NotFound, PermissionDenied
from patrol.incidents import OPEN, can_work, get_incident
from patrol.models import IncidentPhoto
from patrol.settings import IncidentSettings

FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "WEBP": ("image/webp", "webp")}
MAX_PHOTOS = 10


class PhotoRejected(InvalidRequest):
    pass


def check_image(data: bytes, settings: IncidentSettings) -> tuple[str, str, int, int]:
    """(format, content type, width, height) of a JPEG, PNG or WebP image, or PhotoRejected."""
    if len(data) > settings.photo_max_bytes:
        raise PhotoRejected(
            f"the photo is {len(data) / 1e6:.1f} MB; the limit is {settings.photo_max_bytes / 1e6:.1f} MB"
        )
    if not data:
        raise PhotoRejected("the photo is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                fmt, (width, height) = image.format, image.size
                if width * height > settings.photo_max_pixels:
                    raise PhotoRejected(f"the photo has {width}×{height} pixels, more than allowed")
                image.verify()
    except PhotoRejected:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PhotoRejected("the file is not an image this service accepts (JPEG, PNG or WebP)") from None
    except Exception as exc:  # Pillow raises assorted errors for truncated or corrupt files
        raise PhotoRejected(f"the image is damaged and cannot be read ({type(exc).__name__})") from None
    if fmt not in FORMATS:
        raise PhotoRejected(f"{fmt} images are not accepted: send JPEG, PNG or WebP")
    return fmt, FORMATS[fmt][0], width, height


def add_photo(
    session: Session,
    principal: Principal,
    incident_id: int,
    data: bytes,
    settings: IncidentSettings,
    photo_dir: Path,
    *,
    audited: bool = True,
) -> tuple[IncidentPhoto, Path]:
    """Check and store one photo; returns the row and the file written (delete the file if the
    transaction is rolled back: see :func:`discard`). ``audited=False``: the caller records one
    audit entry for a larger operation (``incidents.report_with_photo``)."""
    incident = get_incident(session, principal, incident_id, settings)
    own = incident.reporter_id == principal.user_id and incident.status in OPEN
    if not (own or can_work(principal, incident)):
        raise PermissionDenied(
            "photos are added by the reporter while the incident is open, or by those working it"
        )
    count = session.query(IncidentPhoto).filter_by(incident_id=incident.id).count()
    if count >= MAX_PHOTOS:
        raise Conflict(f"incident {incident.id} has {MAX_PHOTOS} photos already")
    fmt, content_type, width, height = check_image(data, settings)
    digest = hashlib.sha256(data).hexdigest()
    same = session.query(IncidentPhoto.id).filter_by(incident_id=incident.id, sha256=digest).first()
    if same is not None:
        raise Conflict(f"this photo is already attached to incident {incident.id} (photo {same.id})")
    now = datetime.now(UTC)
    # A unique name per stored file: a rolled-back upload removes only its own file.
    name = f"{incident.id}-{digest[:16]}-{secrets.token_hex(4)}.{FORMATS[fmt][1]}"
    relative = Path(f"{now:%Y}") / f"{now:%m}" / name
    target = photo_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)  # never a half-written file under the final name
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    photo = IncidentPhoto(
        incident_id=incident.id,
        path=relative.as_posix(),
        content_type=content_type,
        size_bytes=len(data),
        width=width,
        height=height,
        sha256=digest,
        uploaded_by=principal.user_id,
        uploaded_at=now,
    )
    session.add(photo)
    try:  # the caller cannot discard a file it was not handed
        session.flush()
        if audited:
            keys = audit.snapshot(photo, ("incident_id", "sha256", "size_bytes", "content_type"))
            audit.record(session, principal, "photo.add", "photo", photo.id, audit.changes({}, keys))
    except BaseException:
        discard(target)
        raise
    return photo, target


def discard(path: Path | None) -> None:
    if path is not None:
        path.unlink(missing_ok=True)


def photo_file(
    session: Session,
    principal: Principal,
    incident_id: int,
    photo_id: int,
    settings: IncidentSettings,
    photo_dir: Path,
) -> tuple[Path, str]:
    get_incident(session, principal, incident_id, settings)
    photo = session.get(IncidentPhoto, photo_id)
    if photo is None or photo.incident_id != incident_id:
        raise NotFound(f"no photo {photo_id} of incident {incident_id}")
    path = (photo_dir / photo.path).resolve()
    if not path.is_relative_to(photo_dir.resolve()) or not path.is_file():
        raise NotFound(f"the file of photo {photo_id} is missing from the photo store")
    return path, photo.content_type
