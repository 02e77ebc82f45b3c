"""Incident photos: decoded in full, re-encoded clean, stored as files outside the database
(under ``photo_dir``), with the relative path recorded.

Nothing a client sends is stored as it came: every photo is decoded completely (a truncated or
corrupt one is refused by name) and written again from its pixels, so a stored photo can be
nothing but an image — not a JPEG that is also an HTML page, not a file with a payload after its
end. The EXIF orientation is applied to the pixels; all metadata is dropped (EXIF with its GPS
position, camera serial numbers and owner names, XMP, IPTC, comments, thumbnails) except the ICC
colour profile, which only says how to show the colours. Photos travel between the two sides: a
volunteer's whereabouts in EXIF are not theirs to read, and where and when the incident was seen
the service records itself. The SHA-256 of the file as sent is kept, for evidence (the reporter's
original can be shown to match) and to refuse the same photo twice.

A file is written before its row and removed again if the transaction fails, so a rejected photo
leaves neither a row nor a file behind.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy.orm import Session

from patrol import audit
from patrol.accounts import Principal
from patrol.errors import Conflict, InvalidRequest, NotFound, PermissionDenied
from patrol.incidents import OPEN, can_see_photos, can_work, get_incident
from patrol.models import IncidentPhoto
from patrol.settings import IncidentSettings

FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "WEBP": ("image/webp", "webp")}
MAX_PHOTOS = 10


class PhotoRejected(InvalidRequest):
    pass


@dataclass(frozen=True)
class CleanImage:
    """A photo re-encoded from its decoded pixels: nothing of the sent file but the image."""

    format: str  # JPEG, PNG or WEBP, as sent
    content_type: str
    extension: str
    width: int
    height: int
    data: bytes


# Re-encoding options: JPEG and WebP near the quality phones save at; PNG stays lossless.
SAVE_OPTIONS = {"JPEG": {"quality": 90}, "PNG": {}, "WEBP": {"quality": 90}}
SAVE_MODES = {"JPEG": ("L", "RGB", "CMYK"), "PNG": ("1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"),
              "WEBP": ("RGB", "RGBA")}  # fmt: skip


def clean_image(data: bytes, settings: IncidentSettings) -> CleanImage:
    """Decode a JPEG, PNG or WebP photo completely and encode it again without metadata (EXIF
    orientation applied); PhotoRejected names what is wrong with it."""
    if len(data) > settings.photo_max_bytes:
        raise PhotoRejected(
            f"the photo is {len(data) / 1e6:.1f} MB; the limit is {settings.photo_max_bytes / 1e6:.1f} MB"
        )
    if not data:
        raise PhotoRejected("the photo is empty")
    # (Pillow would pad a truncated image with grey if ImageFile.LOAD_TRUNCATED_IMAGES were set;
    # importing WeasyPrint sets it, so patrol.briefing.render puts it back.)
    # The pixel limit is checked here from the header, before any pixel is decoded (not by turning
    # Pillow's DecompressionBombWarning into an error: warning filters are process-wide, and one
    # request must not change how warnings behave in the others).
    try:
        with Image.open(io.BytesIO(data)) as image:
            fmt, (width, height) = image.format, image.size
            if fmt not in FORMATS:
                raise PhotoRejected(f"{fmt} images are not accepted: send JPEG, PNG or WebP")
            if width * height > settings.photo_max_pixels:
                raise PhotoRejected(f"the photo has {width}×{height} pixels, more than allowed")
            image.load()  # every pixel decoded: a truncated or corrupt file fails here
            clean = _reencoded(image, fmt)
    except PhotoRejected:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PhotoRejected("the file is not an image this service accepts (JPEG, PNG or WebP)") from None
    except Exception as exc:  # Pillow raises assorted errors for truncated or corrupt files
        what = "truncated" if "truncated" in str(exc) else "damaged"
        raise PhotoRejected(
            f"the photo is {what} and cannot be read in full ({type(exc).__name__}: {exc}); "
            "send the whole file again"
        ) from None
    content_type, extension = FORMATS[fmt]
    return CleanImage(fmt, content_type, extension, *clean)


def _reencoded(image: Image.Image, fmt: str) -> tuple[int, int, bytes]:
    """(width, height, file) of a decoded image written again upright, without its metadata."""
    icc = image.info.get("icc_profile")
    ImageOps.exif_transpose(image, in_place=True)
    if image.mode not in SAVE_MODES[fmt]:
        image = image.convert("RGBA" if "A" in image.getbands() and fmt != "JPEG" else "RGB")
    # Some encoders fall back on what was read (EXIF, XMP, text chunks): keep only a palette's
    # transparency, which is part of the pixels.
    image.info = {k: v for k, v in image.info.items() if k == "transparency"}
    out = io.BytesIO()
    options = SAVE_OPTIONS[fmt] | ({"icc_profile": icc} if icc else {})
    image.save(out, format=fmt, **options)  # no exif=, no xmp=: the metadata stays behind
    return image.width, image.height, out.getvalue()


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
    image = clean_image(data, settings)
    digest = hashlib.sha256(data).hexdigest()  # of the file as sent: evidence, and no photo twice
    same = session.query(IncidentPhoto.id).filter_by(incident_id=incident.id, sha256=digest).first()
    if same is not None:
        raise Conflict(f"this photo is already attached to incident {incident.id} (photo {same.id})")
    now = datetime.now(UTC)
    # A unique name per stored file: a rolled-back upload removes only its own file.
    name = f"{incident.id}-{digest[:16]}-{secrets.token_hex(4)}.{image.extension}"
    relative = Path(f"{now:%Y}") / f"{now:%m}" / name
    target = photo_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(image.data)
        os.replace(tmp, target)  # never a half-written file under the final name
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    photo = IncidentPhoto(
        incident_id=incident.id,
        path=relative.as_posix(),
        content_type=image.content_type,
        size_bytes=len(image.data),  # as stored
        width=image.width,
        height=image.height,
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
) -> tuple[Path, str, str]:
    """The stored file of a photo, its content type and the name to serve it under. Only its
    reporter and those who may work the incident read it (see ``can_see_photos``); others who see
    the incident, e.g. the other side's officers near the border, get 404 as if it did not exist."""
    incident = get_incident(session, principal, incident_id, settings)
    photo = session.get(IncidentPhoto, photo_id)
    if photo is None or photo.incident_id != incident_id or not can_see_photos(principal, incident):
        raise NotFound(f"no photo {photo_id} of incident {incident_id}")
    path = (photo_dir / photo.path).resolve()
    if not path.is_relative_to(photo_dir.resolve()) or not path.is_file():
        raise NotFound(f"the file of photo {photo_id} is missing from the photo store")
    return path, photo.content_type, f"incident-{incident_id}-photo-{photo_id}{path.suffix}"
