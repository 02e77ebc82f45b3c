"""Checking an evidence package against its manifest, without extracting anything.

Every member is read as a stream and hashed; nothing is written to disk, and a name that could
point outside a folder (``../``, an absolute path, a backslash) is refused as such instead of
being read. A member whose size differs from the manifest's is reported changed without reading
it, so a zip bomb costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

FORMAT = "mangrove-patrol-joint-case-package"
MANIFEST = "manifest.json"
CHUNK = 1 << 20


@dataclass
class PackageReport:
    """What a check found. ``readable`` False: not a zip at all (nothing else is known)."""

    path: Path
    readable: bool = True
    verified: int = 0  # files whose size and SHA-256 match the manifest
    changed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)  # in the zip, not in the manifest
    removed: list[str] = field(default_factory=list)  # in the manifest, not in the zip
    unsafe: list[str] = field(default_factory=list)  # names that could escape a folder
    manifest_problem: str | None = None  # missing or unreadable
    manifest: dict | None = None

    @property
    def ok(self) -> bool:
        return (
            self.readable
            and self.manifest_problem is None
            and not (self.changed or self.added or self.removed or self.unsafe)
        )

    def problems(self) -> list[str]:
        """One line per finding, each naming its file."""
        if not self.readable:
            return [f"{self.path}: not a readable zip file"]
        lines = [f"manifest.json: {self.manifest_problem}"] if self.manifest_problem else []
        lines += [f"{name}: refused, the name could point outside the package" for name in self.unsafe]
        lines += [f"{name}: changed (its SHA-256 or size differs from the manifest)" for name in self.changed]
        lines += [f"{name}: added (in the zip, not in the manifest)" for name in self.added]
        lines += [f"{name}: removed (in the manifest, not in the zip)" for name in self.removed]
        return lines


def safe_name(name: str) -> bool:
    """A plain relative path inside the package: no ``..``, no absolute path, no backslash."""
    path = PurePosixPath(name)
    return (
        bool(name)
        and not path.is_absolute()
        and ".." not in path.parts
        and "\\" not in name
        and ":" not in name
    )


def _read_manifest(archive: zipfile.ZipFile, report: PackageReport) -> dict[str, dict] | None:
    """The manifest's files as path → entry, or None (and the problem noted)."""
    try:
        info = archive.getinfo(MANIFEST)
    except KeyError:
        report.manifest_problem = "missing: the package cannot be checked"
        return None
    try:
        with archive.open(info) as f:
            manifest = json.loads(f.read(16 << 20))
        files = manifest["files"]
        if manifest.get("format") != FORMAT or not isinstance(files, list):
            raise ValueError("not the manifest of a joint-case package")
        listed = {str(entry["path"]): entry for entry in files}
        if len(listed) != len(files):
            raise ValueError("a file is listed twice")
    except (ValueError, KeyError, TypeError, zipfile.BadZipFile, OSError) as exc:
        report.manifest_problem = f"unreadable ({exc})"
        return None
    report.manifest = manifest
    return listed


def _sha256(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str | None:
    """The member's SHA-256, or None when it cannot be read (a damaged member counts as changed)."""
    digest = hashlib.sha256()
    try:
        with archive.open(info) as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return None
    return digest.hexdigest()


def verify_package(path: str | Path) -> PackageReport:
    """Check every file of the package at ``path`` against its manifest."""
    report = PackageReport(Path(path))
    try:
        archive = zipfile.ZipFile(report.path)
    except (zipfile.BadZipFile, OSError):
        report.readable = False
        return report
    with archive:
        members = archive.infolist()
        names = [m.filename for m in members]
        report.unsafe = sorted({n for n in names if not safe_name(n)})
        listed = _read_manifest(archive, report)
        if listed is None:
            return report
        report.unsafe = sorted(set(report.unsafe) | {n for n in listed if not safe_name(n)})
        seen: set[str] = set()
        for info in members:
            name = info.filename
            if name == MANIFEST or name in report.unsafe or info.is_dir():
                continue
            if name in seen:  # a second member of the same name: which one would be extracted?
                report.added.append(name)
                continue
            seen.add(name)
            expected = listed.get(name)
            if expected is None:
                report.added.append(name)
            elif info.file_size != expected.get("size") or _sha256(archive, info) != expected.get("sha256"):
                report.changed.append(name)
            else:
                report.verified += 1
        report.removed = sorted(n for n in listed if n not in seen and n not in report.unsafe)
    return report
