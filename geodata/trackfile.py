"""Reading an uploaded GPS track (GPX, KML, KMZ, GeoJSON or CSV) into one ``TrackFixes``.

``read_track`` picks the format from the file name (``filename``, the user's own name, when
``path`` is a temporary file), or from the first bytes where the name says nothing, and hands
the file to a streaming reader in ``geodata.trackio``. Every refusal is a ``GeodataError`` whose
problems say what is wrong and where (fix number, line); an unknown format is ``UnsupportedFormat``
(HTTP 415). The security rules (no DTD or entities in XML, zip-bomb and path checks for KMZ,
size caps) live with the readers.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import numpy as np

from geodata.errors import GeodataError, InputError, Problem, UnsupportedFormat
from geodata.fixes import TrackFixes
from geodata.trackio.delimited import read_csv
from geodata.trackio.geojson import read_geojson
from geodata.trackio.gpx import read_gpx
from geodata.trackio.gpxfast import read_fast
from geodata.trackio.kml import open_kmz, read_kml
from geodata.trackio.sink import refuse
from geodata.trackio.xmlsafe import TagGuard, guarded, local_name, root_tag

__all__ = ["TRACK_FORMATS", "read_track"]

TRACK_FORMATS: dict[str, str] = {
    ".gpx": "GPX",
    ".kml": "KML",
    ".kmz": "KMZ",
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".csv": "CSV",
}
_BOM = b"\xef\xbb\xbf"
_BLANK = b" \t\r\n"


class NaiveTimes(StrEnum):
    """How to read times written without a zone. AUTO: China Standard Time in CSV (spreadsheets
    and Chinese apps write local time), UTC in GPX, KML and GeoJSON (their specifications say
    UTC, and devices that forget the "Z" still mean it)."""

    AUTO = "auto"
    UTC = "utc"
    CHINA = "china"

    @classmethod
    def parse(cls, text: str | NaiveTimes) -> NaiveTimes:
        """Raises ``InputError`` naming the accepted values for anything else."""
        key = str(text).strip().lower()
        aliases = {
            "cst": "china",
            "beijing": "china",
            "asia/shanghai": "china",
            "+08:00": "china",
            "z": "utc",
        }
        try:
            return cls(aliases.get(key, key))
        except ValueError:
            message = (
                f"unknown time zone {text!r} for times written without one: use auto (China time in "
                "CSV, UTC in GPX/KML/GeoJSON), utc or china"
            )
            raise InputError(
                message, [Problem("unknown-time-zone", message, {"value": str(text), "accepted": list(cls)})]
            ) from None


CHINA_OFFSET = np.timedelta64(8, "h")  # China Standard Time, no daylight saving


def read_track(
    path: str | Path,
    *,
    filename: str | None = None,
    max_fixes: int = 5_000_000,
    naive_times: NaiveTimes = NaiveTimes.AUTO,
) -> TrackFixes:
    """Read every fix of a track file, in file order, without loading the file whole."""
    path = Path(path)
    name = filename or path.name
    try:
        return _settle_naive_times(_read(path, name, max_fixes), naive_times)
    except GeodataError as exc:
        # Name the user's file, not our temporary copy, in every message (briefly, and without
        # control characters, whatever the name sent).
        shown = _shown_name(name)
        exc.message = f"{shown}: {exc.message}"
        exc.args = (exc.message,)
        for problem in exc.problems:
            problem.details.setdefault("file", shown)
        raise


def _shown_name(name: str, limit: int = 80) -> str:
    name = "".join("?" if not ch.isprintable() else ch for ch in str(name))
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _read(path: Path, name: str, max_fixes: int) -> TrackFixes:
    with open(path, "rb") as f:
        head = f.read(4096)
    if not head.lstrip(_BLANK).removeprefix(_BOM).lstrip(_BLANK) and len(head) < 4096:
        raise refuse("empty-file", "file is empty")

    kind = _detect(name, head)
    if kind == "KMZ":
        with open_kmz(path) as open_member:
            if local_name(root_tag(open_member)) != "kml":
                raise refuse("no-track", "no track in file: the document inside the KMZ is not KML")
            with TagGuard(open_member()) as member:
                return read_kml(member, max_fixes=max_fixes, source_format="KMZ")
    if kind == "XML":
        root = local_name(root_tag(lambda: open(path, "rb")))
        if root not in ("gpx", "kml"):
            raise _unsupported(f"an XML document of type <{root}>")
        if root == "gpx":
            # Plain GPX in bulk; anything else, or any doubt, the streaming reader from the start.
            fast = read_fast(path, max_fixes=max_fixes)
            if fast is not None:
                return fast
        with guarded(path) as source:
            if root == "gpx":
                return read_gpx(source, max_fixes=max_fixes)
            return read_kml(source, max_fixes=max_fixes)
    if kind == "GeoJSON":
        return read_geojson(path, max_fixes=max_fixes)
    return read_csv(path, max_fixes=max_fixes)


def _settle_naive_times(fixes: TrackFixes, rule: NaiveTimes) -> TrackFixes:
    """Readers take times without a zone as UTC; move them to China time where the rule says so,
    and always say what was done."""
    n = fixes.naive_times
    if not n:
        return fixes
    china = rule is NaiveTimes.CHINA or (rule is NaiveTimes.AUTO and fixes.source_format == "CSV")
    timed = int(fixes.has_time.sum())
    if china and n == timed:
        fixes.time = np.where(fixes.has_time, fixes.time - CHINA_OFFSET, fixes.time)
        message = (
            f"times without time zone read as China Standard Time, UTC+8 ({n:,} fixes); "
            "if the device wrote UTC, delete the patrol and upload it again with the time zone set to UTC"
        )
    elif china:
        message = (
            f"times without time zone taken as UTC ({n:,} fixes): the file mixes them with "
            f"{timed - n:,} times that name their zone, so they were not moved to China time"
        )
    else:
        message = (
            f"times without time zone taken as UTC ({n:,} fixes); if the device wrote local "
            "(Beijing) time, delete the patrol and upload it again with the time zone set to China"
        )
    fixes.warnings.append(Problem("naive-time", message, {"count": n}))
    return fixes


def _detect(name: str, head: bytes) -> str:
    """'XML' (GPX or KML: the root element decides), 'KMZ', 'GeoJSON' or 'CSV'."""
    if head.startswith(b"PK\x03\x04"):
        return "KMZ"  # also a KMZ someone renamed to .kml
    suffix = Path(name).suffix.lower()
    label = TRACK_FORMATS.get(suffix)
    if label in ("GPX", "KML"):
        return "XML"
    if label:
        return label
    text = head.removeprefix(_BOM).lstrip(_BLANK)
    if text.startswith(b"<"):
        return "XML"
    if text.startswith(b"{"):
        return "GeoJSON"
    raise _unsupported(f"a {suffix} file" if suffix else "a file without an extension")


def _unsupported(what: str) -> UnsupportedFormat:
    by_label: dict[str, list[str]] = {}
    for ext, label in TRACK_FORMATS.items():
        by_label.setdefault(label, []).append(ext)
    accepted = [f"{label} ({', '.join(exts)})" for label, exts in by_label.items()]
    message = f"unsupported track format: {what}; accepted formats are {', '.join(accepted[:-1])} and {accepted[-1]}"
    details = {"accepted": list(TRACK_FORMATS)}
    return UnsupportedFormat(message, problems=[Problem("unsupported-format", message, details)])
