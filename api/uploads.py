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


MAX_NAME_BYTES = 200  # file systems allow 255 bytes in a name; a long Chinese name passes that


def safe_filename(name: str | None, default: str = "upload") -> str:
    """Keep the extension (formats are recognised by it) but nothing that could be a path, and
    no more than ``MAX_NAME_BYTES`` bytes of UTF-8."""
    base = Path(name or default).name
    base = re.sub(r"[^\w.\-]", "_", base).lstrip(".")
    stem, dot, suffix = base.rpartition(".") if "." in base else (base, "", "")
    suffix = (dot + suffix)[:16]
    stem = stem.encode()[: MAX_NAME_BYTES - len(suffix.encode())].decode("utf-8", "ignore")
    return (stem + suffix) or default


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
