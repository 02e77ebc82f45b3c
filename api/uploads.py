"""Saving uploads to disk with a size limit, without holding the whole file in memory."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import UploadFile

from geodata.errors import InputError

CHUNK = 1024 * 1024


class UploadTooLarge(InputError):
    title = "Upload too large"
    status = 413


class EmptyUpload(InputError):
    title = "Empty upload"
    status = 422


def safe_filename(name: str | None, default: str = "upload") -> str:
    """Keep the extension (formats are recognised by it) but nothing that could be a path."""
    base = Path(name or default).name
    base = re.sub(r"[^\w.\-]", "_", base).lstrip(".")
    return base or default


def human_size(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB" if n >= 1024 * 1024 else f"{n / 1024:.0f} KiB"


async def save_upload(upload: UploadFile, directory: Path, max_bytes: int) -> Path:
    path = directory / safe_filename(upload.filename)
    written = 0
    with path.open("wb") as out:
        while chunk := await upload.read(CHUNK):
            written += len(chunk)
            if written > max_bytes:
                raise UploadTooLarge(
                    f"{upload.filename!r} is larger than the limit of {human_size(max_bytes)} "
                    "(MANGROVE_IMPORT_MAX_UPLOAD_BYTES)"
                )
            out.write(chunk)
    if written == 0:
        raise EmptyUpload(f"{upload.filename!r} is empty")
    return path
