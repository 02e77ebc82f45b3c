"""Exports in the formats people use: GeoPackage and Shapefile for QGIS, KML/KMZ for Google Earth
and phone map apps (Ovital 奥维, Amap: ``datum=gcj02``), GPX for GPS units, CSV and XLSX for Excel.

``export`` checks the request, counts what matches (refusing more than ``MANGROVE_EXPORT_MAX_FEATURES``
with the count and how to narrow it), then writes one file in a folder the caller owns (and
removes): layers are read through the domain's own list functions (``layers.py``) page by page,
so a large export never sits whole in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import shapely
from sqlalchemy.orm import Session

from geodata.datum import Datum, wgs84_to_gcj02
from geodata.errors import InputError
from patrol.accounts import Principal
from patrol.errors import InvalidRequest
from patrol.exports import formats, xml
from patrol.exports.layers import LAYERS, ExportScope, Layer, build_layers
from patrol.incidents import CHINA, list_categories
from patrol.joint import can_see_cases
from patrol.settings import Settings

__all__ = ["FORMATS", "LAYERS", "ExportFile", "ExportOptions", "ExportScope", "export"]


@dataclass(frozen=True)
class Format:
    extension: str
    media_type: str
    write: Callable
    layers: tuple[str, ...]  # the layers it can hold
    default_layers: tuple[str, ...]
    datums: tuple[str, ...] = ("wgs84",)  # GIS formats declare EPSG:4326: never shifted
    encodings: tuple[str, ...] = ("UTF-8",)


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMATS: dict[str, Format] = {
    "gpkg": Format("gpkg", "application/geopackage+sqlite3", formats.write_gpkg, LAYERS, LAYERS),
    "shp": Format("zip", "application/zip", formats.write_shapefile, LAYERS, LAYERS, encodings=("UTF-8", "GBK")),
    "kml": Format("kml", "application/vnd.google-earth.kml+xml", xml.write_kml, LAYERS,
                  ("grids", "patrols", "incidents"), datums=("wgs84", "gcj02")),
    "kmz": Format("kmz", "application/vnd.google-earth.kmz", xml.write_kmz, LAYERS,
                  ("grids", "patrols", "incidents"), datums=("wgs84", "gcj02")),
    "gpx": Format("gpx", "application/gpx+xml", xml.write_gpx, ("patrols", "incidents"), ("patrols", "incidents")),
    "csv": Format("csv", "text/csv; charset=utf-8", formats.write_csv, LAYERS, ("incidents",),
                  datums=("wgs84", "gcj02")),
    "xlsx": Format("xlsx", XLSX, formats.write_xlsx, LAYERS, LAYERS, datums=("wgs84", "gcj02")),
}  # fmt: skip
ENCODING_NAMES = {"utf8": "UTF-8", "utf-8": "UTF-8", "gbk": "GBK", "cp936": "GBK", "gb2312": "GBK"}
NARROW = "time range (datetime=), grid=, town=, side=, category=, status=, bbox= or fewer layers="


@dataclass(frozen=True)
class ExportOptions:
    format: str
    layers: tuple[str, ...] = ()  # empty: the format's default layers
    datum: str = "wgs84"
    encoding: str = "utf-8"  # Shapefile text only


@dataclass
class ExportFile:
    path: Path
    media_type: str
    filename: str
    counts: dict[str, int] = field(default_factory=dict)


def _check(options: ExportOptions, principal: Principal) -> tuple[Format, tuple[str, ...], str, str]:
    fmt = FORMATS.get(options.format.lower())
    if fmt is None:
        raise InvalidRequest(
            f"unknown export format {options.format!r}: use one of {', '.join(FORMATS)}", field="format"
        )
    unknown = [name for name in options.layers if name not in LAYERS]
    if unknown:
        raise InvalidRequest(
            f"unknown layer(s) {', '.join(unknown)}: use {', '.join(LAYERS)}", field="layers"
        )
    cannot = [name for name in options.layers if name not in fmt.layers]
    if cannot:
        raise InvalidRequest(
            f"{options.format} cannot hold {', '.join(cannot)}: it holds {', '.join(fmt.layers)}",
            field="layers",
        )
    names = tuple(dict.fromkeys(options.layers))
    if not names:
        # Joint cases are for managers and officers: left out of a default export for others,
        # refused (403, by the domain) only when asked for by name.
        names = tuple(n for n in fmt.default_layers if n != "joint_cases" or can_see_cases(principal))
    try:
        datum = Datum.parse(options.datum)
    except InputError as exc:
        raise InvalidRequest(exc.message, field="datum") from None
    datum_name = "wgs84" if datum in (Datum.WGS84, Datum.CGCS2000) else datum.value
    if datum_name not in fmt.datums:
        raise InvalidRequest(
            f"{options.format} is written in {' or '.join(fmt.datums)} only"
            + (
                " (GIS files declare EPSG:4326; GCJ-02 is for KML, KMZ, CSV, XLSX)"
                if datum_name == "gcj02"
                else ""
            ),
            field="datum",
        )
    encoding = ENCODING_NAMES.get(options.encoding.strip().lower())
    if encoding is None or encoding not in fmt.encodings:
        raise InvalidRequest(
            f"encoding {options.encoding!r}: {options.format} is written in {' or '.join(fmt.encodings)}",
            field="encoding",
        )
    return fmt, names, datum_name, encoding


def _shifted(layer: Layer, datum: str) -> Layer:
    """The layer with its coordinates (geometry, and lon/lat columns) in ``datum``."""
    if datum == "wgs84":
        return layer

    def chunks():
        for chunk in layer.chunks():
            chunk = chunk.copy()

            def gcj02(coords: np.ndarray) -> np.ndarray:
                lon, lat = wgs84_to_gcj02(coords[:, 0], coords[:, 1])
                return np.column_stack([lon, lat])

            chunk.geometry = shapely.transform(chunk.geometry.values, gcj02)
            if "lon" in chunk.columns:
                chunk["lon"], chunk["lat"] = wgs84_to_gcj02(chunk["lon"].to_numpy(), chunk["lat"].to_numpy())
            yield chunk

    return Layer(layer.name, layer.count, chunks, layer.fixes)


def export(
    session: Session,
    principal: Principal,
    settings: Settings,
    scope: ExportScope,
    options: ExportOptions,
    folder: Path,
    *,
    now: datetime | None = None,
) -> ExportFile:
    """Write the export into ``folder`` (the caller removes it); its path, type and a file name."""
    now = now or datetime.now(UTC)
    fmt, names, datum, encoding = _check(options, principal)
    layers = build_layers(session, principal, settings, scope, names, now)
    counts = {layer.name: layer.count for layer in layers}
    total = sum(counts.values())
    cap = settings.exports.max_features
    if total > cap:
        each = ", ".join(f"{n} {c:,}" for n, c in counts.items())
        raise InvalidRequest(
            f"{total:,} features match ({each}), more than the export limit of {cap:,}: "
            f"narrow it with a {NARROW}"
        )
    layers = [_shifted(layer, datum) for layer in layers]
    local = now.astimezone(CHINA)  # the file name carries the users' clock
    stem = f"mangrove-{names[0] if len(names) == 1 else 'export'}-{local:%Y%m%d-%H%M}"
    extension = fmt.extension
    media_type = fmt.media_type
    if fmt.write is formats.write_csv and len(names) > 1:
        extension, media_type = "zip", "application/zip"  # one CSV per layer
    path = folder / f"{stem}.{extension}"
    context = formats.Context(
        title="红树林巡护导出 Mangrove Patrol export",
        datum=datum,
        encoding=encoding,
        category_labels={c["code"]: c["label_zh"] for c in list_categories(session, include_retired=True)},
        generated_at=now.astimezone(UTC).isoformat(timespec="seconds"),
    )
    fmt.write(layers, path, context)
    suffix = "-gcj02" if datum == "gcj02" else ""
    filename = f"{stem}{suffix}{'-shp' if fmt.write is formats.write_shapefile else ''}.{extension}"
    return ExportFile(path, media_type, filename, counts)
