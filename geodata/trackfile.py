"""Reading an uploaded GPS track (GPX, KML, KMZ, GeoJSON or CSV) into one ``TrackFixes``.

``read_track`` picks the format from the file name (``filename``, the user's own name, when
``path`` is a temporary file), or from the first bytes where the name says nothing, and hands
the file to a streaming reader in ``geodata.trackio``. Every refusal is a ``GeodataError`` whose
problems say what is wrong and where (fix number, line); an unknown format is ``UnsupportedFormat``
(HTTP 415). The security rules (no DTD or entities in XML, zip-bomb and path checks for KMZ,
size caps) live with the readers.
"""

from __future__ import annotations

from pathlib import Path

from geodata.errors import GeodataError, Problem, UnsupportedFormat
from geodata.fixes import TrackFixes
from geodata.trackio.delimited import read_csv
from geodata.trackio.geojson import read_geojson
from geodata.trackio.gpx import read_gpx
from geodata.trackio.kml import open_kmz, read_kml
from geodata.trackio.sink import refuse
from geodata.trackio.xmlsafe import local_name, root_tag

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


def read_track(path: str | Path, *, filename: str | None = None, max_fixes: int = 5_000_000) -> TrackFixes:
    """Read every fix of a track file, in file order, without loading the file whole."""
    path = Path(path)
    name = filename or path.name
    try:
        return _read(path, name, max_fixes)
    except GeodataError as exc:
        # Name the user's file, not our temporary copy, in every message.
        exc.message = f"{name}: {exc.message}"
        exc.args = (exc.message,)
        for problem in exc.problems:
            problem.details.setdefault("file", name)
        raise


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
            with open_member() as member:
                return read_kml(member, max_fixes=max_fixes, source_format="KMZ")
    if kind == "XML":
        root = local_name(root_tag(lambda: open(path, "rb")))
        if root == "gpx":
            return read_gpx(str(path), max_fixes=max_fixes)
        if root == "kml":
            return read_kml(str(path), max_fixes=max_fixes)
        raise _unsupported(f"an XML document of type <{root}>")
    if kind == "GeoJSON":
        return read_geojson(path, max_fixes=max_fixes)
    return read_csv(path, max_fixes=max_fixes)


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
