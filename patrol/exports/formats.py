"""GeoPackage and Shapefile through GDAL (pyogrio), CSV and XLSX for spreadsheets.

Every writer takes the layers (``patrol.exports.layers.Layer``), a path to write and the export's
context, and writes chunk by chunk: the first chunk of a layer creates it, later chunks are appended.

Shapefile field names: dBASE allows 10 characters. GDAL would cut longer names itself
(``observed_at`` → ``observed_a``), silently and differently per layer, so the names are shortened
here, deliberately, with ``SHORT_NAMES``; every zip carries ``fields.csv`` (layer, short name, full
name) so that nobody has to guess. Text longer than 254 bytes (dBASE's limit) is cut by GDAL; the
GeoPackage keeps it whole.
"""

from __future__ import annotations

import csv
import io
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pyogrio
import shapely

from patrol import csvsafe
from patrol.exports.layers import SCHEMAS, Layer

# Full name → Shapefile name (≤ 10 characters), the same in every layer that has the field.
SHORT_NAMES = {
    "approximate": "approx",
    "patrol_days": "patrol_day",
    "person_hours": "person_h",
    "last_patrolled": "last_patrl",
    "distance_km": "dist_km",
    "duration_min": "dur_min",
    "outside_grids_km": "outside_km",
    "flagged_fixes": "flagged",
    "source_name": "src_name",
    "source_format": "src_format",
    "uploaded_at": "uploaded",
    "description": "descr",
    "observed_at": "observed",
    "reported_at": "reported",
    "grid_distance_m": "grid_dist",
    "border_distance_m": "border_m",
    "referred_to": "referred",
    "joint_case_id": "joint_case",
    "duplicate_of": "dup_of",
    "resolve_due": "resolv_due",
    "responded_at": "responded",
    "resolved_at": "resolved",
    "participants": "particip",
    "incident_count": "incidents",
    "last_action_at": "last_at",
    "last_mechanism": "last_mech",
}
EXCEL_CELL_CHARS = 32_767  # the most text one Excel cell holds
TOO_LONG_FOR_EXCEL = "(too long for one Excel cell: export GeoPackage or CSV for this outline)"


@dataclass(frozen=True)
class Context:
    """What every writer may need besides the layers."""

    title: str
    datum: str  # wgs84 or gcj02 (coordinates are already converted)
    encoding: str  # of Shapefile text: UTF-8 or GBK
    category_labels: dict[str, str]  # category code → Chinese label
    generated_at: str  # ISO UTC


def shapefile_name(column: str) -> str:
    return SHORT_NAMES.get(column, column)


def _chunks_or_empty(layer: Layer) -> Iterator[gpd.GeoDataFrame]:
    """The layer's chunks; one empty chunk when it has none, so that the layer still exists."""
    wrote = False
    for chunk in layer.chunks():
        wrote = True
        yield chunk
    if not wrote:
        yield layer.empty()


def _write_ogr(layer: Layer, path: Path, driver: str, name: str | None, rename=None, **options) -> None:
    first = True
    for chunk in _chunks_or_empty(layer):
        if rename:
            chunk = chunk.rename(columns=rename)
        with warnings.catch_warnings():
            # GDAL says when it launders a name; ours are already short enough.
            warnings.filterwarnings("ignore", message="Normalized/laundered field name")
            pyogrio.write_dataframe(
                chunk, path, layer=name, driver=driver, geometry_type=layer.geometry_type,
                promote_to_multi=False, append=not first, **options,
            )  # fmt: skip
        first = False


def write_gpkg(layers: list[Layer], path: Path, context: Context) -> None:
    """One GeoPackage, one table per layer (named as the layer)."""
    for layer in layers:
        _write_ogr(layer, path, "GPKG", layer.name)


def write_shapefile(layers: list[Layer], path: Path, context: Context) -> None:
    """A zip with one ``mangrove_<layer>.shp`` set (shp, shx, dbf, prj, cpg) per layer and fields.csv."""
    folder = path.parent / "shp"
    folder.mkdir()
    for layer in layers:
        _write_ogr(
            layer, folder / f"mangrove_{layer.name}.shp", "ESRI Shapefile", None,
            rename=shapefile_name, encoding=context.encoding,
        )  # fmt: skip
    fields = io.StringIO()
    writer = csv.writer(fields)
    writer.writerow(["layer", "shapefile_field", "full_name"])
    for layer in layers:
        writer.writerows([layer.name, shapefile_name(c), c] for c in SCHEMAS[layer.name])
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.iterdir()):
            archive.write(file, file.name)
        archive.writestr("fields.csv", "\ufeff" + fields.getvalue())


# --- spreadsheets -----------------------------------------------------------------------------------


def _table_header(layer: Layer) -> list[str]:
    columns = list(SCHEMAS[layer.name])
    return columns if "lon" in columns else [*columns, "wkt"]


def _table_rows(layer: Layer, *, excel: bool) -> Iterator[list]:
    """Rows of plain values: attributes, then WKT for layers that are not points with lon/lat."""
    columns = list(SCHEMAS[layer.name])
    with_wkt = "lon" not in columns
    for chunk in layer.chunks():
        frame = chunk[columns].astype(object).where(chunk[columns].notna(), None)
        wkt = shapely.to_wkt(chunk.geometry.values, rounding_precision=7) if with_wkt else None
        for i, row in enumerate(frame.itertuples(index=False, name=None)):
            values = list(row)
            if with_wkt:
                text = wkt[i]
                values.append(TOO_LONG_FOR_EXCEL if excel and text and len(text) > EXCEL_CELL_CHARS else text)
            yield values


def _write_csv_layer(layer: Layer, out) -> None:
    writer = csv.writer(out)
    out.write("\ufeff")  # so that Excel opens Chinese text as UTF-8
    writer.writerow(_table_header(layer))
    for row in _table_rows(layer, excel=False):
        writer.writerow(csvsafe.row(["" if v is None else v for v in row]))


def write_csv(layers: list[Layer], path: Path, context: Context) -> None:
    """One layer: one CSV. Several: a zip of one CSV per layer."""
    if len(layers) == 1:
        with open(path, "w", newline="", encoding="utf-8") as out:
            _write_csv_layer(layers[0], out)
        return
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for layer in layers:
            with archive.open(f"mangrove_{layer.name}.csv", "w") as member:
                with io.TextIOWrapper(member, encoding="utf-8", newline="") as out:
                    _write_csv_layer(layer, out)


def _xlsx_cell(value):
    if value is None or isinstance(value, bool | int | float):
        return value
    return csvsafe.cell(str(value))


def write_xlsx(layers: list[Layer], path: Path, context: Context) -> None:
    """One sheet per layer, written row by row (openpyxl's write-only mode keeps no sheet in memory)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    book = Workbook(write_only=True)
    for layer in layers:
        sheet = book.create_sheet(title=layer.name)
        sheet.freeze_panes = "A2"
        header = []
        for name in _table_header(layer):
            cell = WriteOnlyCell(sheet, value=name)
            cell.font = Font(bold=True)
            header.append(cell)
        sheet.append(header)
        for row in _table_rows(layer, excel=True):
            sheet.append([_xlsx_cell(v) for v in row])
    book.save(path)
