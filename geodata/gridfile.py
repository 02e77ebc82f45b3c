"""Reading and validating an official grid survey file (any OGR format, any CRS).

``read_grid_file`` returns the grids as a GeoDataFrame in WGS84 with the project's attribute names,
or raises ``GeodataError`` listing the problems found. It never touches the database: callers
validate first and write only what passed (see ``patrol.grids.import_grids``).

What one file may cost is bounded: at most ``max_features`` features are read (the count is
checked before the features are), overlapping pairs are collected only up to a limit, and a refusal
lists the first ``MAX_LISTED_PROBLEMS`` problems and says how many more there are. Messages name
the file by the name it was uploaded under, never by where the server keeps it.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from geodata.crs import METRIC, WGS84
from geodata.errors import GeodataError, Problem, UnsupportedFormat
from geodata.region import REGION_BBOX

GRID_FIELDS = ("code", "name_zh", "name_en", "town", "team", "station")
# The longest value of each field the database keeps; longer ones are refused, never cut.
FIELD_LENGTHS = {"code": 32, "name_zh": 128, "name_en": 160, "town": 64, "team": 64, "station": 64}

# Attribute names recognised without a field map (compared case-insensitively), in order of preference.
DEFAULT_NAMES: dict[str, tuple[str, ...]] = {
    "code": ("code", "grid_code", "gridcode", "grid_id", "网格编号", "网格代码", "编号", "代码"),
    "name_zh": ("name_zh", "名称", "网格名称", "name_cn", "中文名"),
    "name_en": ("name_en", "english_name", "英文名"),
    "town": ("town", "town_code", "镇", "乡镇", "镇街"),
    "team": ("team", "team_code", "队伍", "巡护队"),
    "station": ("station", "station_code", "管理站", "保护站"),
}

FORMATS = {
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".gpkg": "GeoPackage",
    ".shp": "ESRI Shapefile",
    ".kml": "KML",
    ".kmz": "KMZ",
    ".zip": "zip archive",
}
# Dataset files looked for inside a zip archive (a zipped Shapefile, usually).
ZIP_MEMBER_FORMATS = (".shp", ".gpkg", ".geojson", ".json", ".kml")

# Zip-bomb guards: far above any real survey, far below what would hurt the server.
MAX_ZIP_ENTRIES = 1000
MAX_ZIP_UNCOMPRESSED = 512 * 1024 * 1024
MAX_ZIP_RATIO = 200

POLYGONAL = ("Polygon", "MultiPolygon")

# A refusal lists this many problems and counts the rest (one file once produced 478,151).
MAX_LISTED_PROBLEMS = 100
# Overlapping pairs are collected up to this many: enough to refuse, bounded in time and memory
# (10,000 copies of one polygon would be 50 million pairs).
MAX_OVERLAP_PAIRS = 10_000


@dataclass(frozen=True)
class GridFileOptions:
    """How to read a survey: which attribute holds which field, which layer, which CRS to assume."""

    field_map: Mapping[str, str] = field(default_factory=dict)  # field → attribute name in the file
    layer: str | None = None
    assume_crs: str | None = None  # used only when the file declares no CRS
    repair: bool = False  # repair invalid polygons (reported) instead of refusing them
    overlap_tolerance_m2: float = 1.0  # overlaps up to this area are warnings (digitising slivers)
    max_features: int = 10_000  # a file holding more is refused before its features are read


@dataclass
class GridFileResult:
    grids: gpd.GeoDataFrame  # EPSG:4326, GRID_FIELDS + area_ha, 2D CCW MultiPolygons, sorted by code
    source_crs: str
    source_format: str
    repaired: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


def read_grid_file(
    path: str | Path, options: GridFileOptions | None = None, *, name: str | None = None
) -> GridFileResult:
    """Read, reproject and validate a grid survey; raise ``GeodataError`` naming the problems.

    ``name`` is what the user calls the file (the name it was uploaded under); messages use it,
    and never show where the server keeps the file."""
    options = options or GridFileOptions()
    path = Path(path)
    name = name or path.name
    try:
        return _read_grid_file(path, name, options)
    except GeodataError as exc:
        scrub = _path_scrubber(path, name)
        problems = [Problem(p.kind, scrub(p.message), p.details) for p in exc.problems]
        raise type(exc)(scrub(exc.message), listed(problems)) from None


def _read_grid_file(path: Path, name: str, options: GridFileOptions) -> GridFileResult:
    unknown_fields = sorted(set(options.field_map) - set(GRID_FIELDS))
    if unknown_fields:
        raise GeodataError(
            f"unknown field(s) {', '.join(unknown_fields)} in the field map; fields: {', '.join(GRID_FIELDS)}"
        )
    source, source_format = _dataset_path(path, name, options.layer)
    frame = _read(source, name, source_format, options.layer, options.max_features)
    warnings: list[Problem] = []
    frame, source_crs = _with_crs(frame, options.assume_crs, warnings)
    attributes = _attributes(frame, options.field_map)
    geometries, repaired = _polygons(frame.geometry.values, attributes["code"], options.repair, warnings)

    wgs84 = gpd.GeoSeries(geometries, crs=frame.crs).to_crs(WGS84).values
    grids = gpd.GeoDataFrame(attributes, geometry=np.asarray(wgs84), crs=WGS84)
    _check_region(grids)
    grids, more_warnings = validate_grids(grids, options.overlap_tolerance_m2)
    warnings += more_warnings
    return GridFileResult(grids, source_crs, source_format, repaired, warnings)


def listed(problems: list[Problem], limit: int = MAX_LISTED_PROBLEMS) -> list[Problem]:
    """The first ``limit`` problems, and one more entry saying how many were left out."""
    if len(problems) <= limit:
        return problems
    more = len(problems) - limit
    return problems[:limit] + [
        Problem(
            "more-problems", f"… and {more:,} more not listed ({len(problems):,} in all)", {"count": more}
        )
    ]


def _path_scrubber(path: Path, name: str):
    """Replace where the server keeps the file (as GDAL and the OS write it) by the file's name,
    and its folder (in the names of files beside it) by nothing."""
    replacements: dict[str, str] = {}
    for where in {path, path.absolute(), path.resolve()}:
        replacements |= {f"/vsizip/{where}": name, f"/vsizip//{where}": name, str(where): name}
        replacements |= {f"{where.parent}/": "", str(where.parent): ""}
    pattern = re.compile("|".join(re.escape(s) for s in sorted(replacements, key=len, reverse=True)))

    def scrub(text: str) -> str:
        return pattern.sub(lambda match: replacements[match.group(0)], text)

    return scrub


def validate_grids(
    grids: gpd.GeoDataFrame, overlap_tolerance_m2: float = 1.0
) -> tuple[gpd.GeoDataFrame, list[Problem]]:
    """Check codes and overlaps of grids already in WGS84; add ``area_ha``; sort by code.

    Returns the grids and warnings (overlaps within tolerance); raises ``GeodataError`` otherwise.
    """
    problems: list[Problem] = []
    codes = grids["code"]
    for index in np.flatnonzero(codes.isna().to_numpy()):
        problems.append(
            Problem("missing-code", f"feature #{index + 1} has no grid code", {"feature": int(index) + 1})
        )
    counts = codes.dropna().value_counts()
    for code, count in counts[counts > 1].items():
        problems.append(
            Problem(
                "duplicate-code", f"grid code {code} is used by {count} features (duplicate)", {"code": code}
            )
        )
    if problems:
        raise GeodataError(f"{len(problems)} problem(s) with grid codes: {problems[0].message}", problems)

    warnings: list[Problem] = []
    pairs = overlap_pairs(grids)
    for a, b, area in pairs:
        details = {"codes": [a, b], "area_m2": round(area, 1)}
        if area > overlap_tolerance_m2:
            problems.append(Problem("overlap", f"grids {a} and {b} overlap by {area:,.1f} m²", details))
        else:
            warnings.append(
                Problem("small-overlap", f"grids {a} and {b} overlap by {area:.2f} m² (ignored)", details)
            )
    if len(pairs) >= MAX_OVERLAP_PAIRS:
        raise GeodataError(
            f"at least {len(pairs):,} pairs of grids overlap; a grid survey has a few at most: "
            "is every feature drawn more than once, or the layer not of grids?",
            problems or warnings,
        )
    if problems:
        raise GeodataError(
            f"{len(problems)} pair(s) of grids overlap by more than {overlap_tolerance_m2:g} m²: "
            f"{problems[0].message}",
            problems,
        )
    grids = grids.copy()
    grids["area_ha"] = np.round(shapely.area(grids.to_crs(METRIC).geometry.values) / 10_000, 2)
    return grids.sort_values("code", ignore_index=True), warnings


def overlap_pairs(
    grids: gpd.GeoDataFrame, max_pairs: int = MAX_OVERLAP_PAIRS
) -> list[tuple[str, str, float]]:
    """Pairs of grids whose interiors overlap, with the overlap area in m² (UTM 49N), largest
    first; at most ``max_pairs`` of them (the search stops there: a full answer could be millions)."""
    metric = np.asarray(grids.to_crs(METRIC).geometry.values)
    codes = grids["code"].to_numpy()
    tree = shapely.STRtree(metric)
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    count = 0
    for start in range(0, len(metric), 500):  # in slices, so that a pathological file stops early
        right, left = tree.query(metric[start : start + 500], predicate="intersects")
        right = right + start
        keep = left < right
        left, right = left[keep], right[keep]
        areas = shapely.area(shapely.intersection(metric[left], metric[right]))
        overlapping = areas > 0  # touching along an edge is not an overlap
        found.append((left[overlapping], right[overlapping], areas[overlapping]))
        count += int(overlapping.sum())
        if count >= max_pairs:
            break
    if not found:
        return []
    left, right, areas = (np.concatenate(parts) for parts in zip(*found))
    order = np.argsort(-areas, kind="stable")[:max_pairs]
    return [
        (str(codes[i]), str(codes[j]), float(a)) for i, j, a in zip(left[order], right[order], areas[order])
    ]


# --- reading ------------------------------------------------------------------------------------


def _dataset_path(path: Path, name: str, layer: str | None) -> tuple[str, str]:
    """The GDAL path to open (``/vsizip/…`` for archives) and a format label for reports."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise UnsupportedFormat(
            f"{name}: unsupported file type {suffix or '(none)'}; expected one of "
            + ", ".join(sorted(FORMATS))
        )
    if not path.is_file():
        raise GeodataError(f"{name}: no such file")
    if path.stat().st_size == 0:
        raise GeodataError(f"{name} is empty")
    if suffix not in (".zip", ".kmz"):
        return str(path), FORMATS[suffix]
    members = _safe_zip_members(path, name)
    if suffix == ".kmz":
        kml = [m for m in members if m.lower().endswith(".kml")]
        if not kml:
            raise GeodataError(f"{name}: the KMZ holds no .kml document")
        doc = next((m for m in kml if PurePosixPath(m).name.lower() == "doc.kml"), kml[0])
        return f"/vsizip/{path}/{doc}", "KMZ"
    datasets = [m for m in members if PurePosixPath(m).suffix.lower() in ZIP_MEMBER_FORMATS]
    datasets = [m for m in datasets if not PurePosixPath(m).name.startswith("._")]  # macOS resource forks
    if not datasets:
        raise GeodataError(f"{name}: the archive holds no Shapefile, GeoPackage, GeoJSON or KML")
    if len(datasets) > 1:
        chosen = [m for m in datasets if layer and PurePosixPath(m).stem == layer]
        if len(chosen) != 1:
            raise GeodataError(
                f"{name} holds {len(datasets)} datasets ({', '.join(datasets)}); choose one with the "
                "layer option (its name without extension)"
            )
        datasets = chosen
    member = datasets[0]
    label = FORMATS[PurePosixPath(member).suffix.lower()]
    return f"/vsizip/{path}/{member}", f"zipped {label}"


def _safe_zip_members(path: Path, name: str) -> list[str]:
    """Names in a zip archive, refusing path traversal and decompression bombs before GDAL reads it."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise GeodataError(f"{name} is not a readable zip archive ({exc})") from None
    if len(infos) > MAX_ZIP_ENTRIES:
        raise GeodataError(f"{name} holds {len(infos)} files; at most {MAX_ZIP_ENTRIES} are accepted")
    total = 0
    for info in infos:
        member = info.filename
        parts = PurePosixPath(member.replace("\\", "/")).parts
        if member.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
            raise GeodataError(f"{name}: unsafe path {member!r} in the archive")
        total += info.file_size
        if (
            info.compress_size
            and info.file_size / info.compress_size > MAX_ZIP_RATIO
            and info.file_size > 1 << 20
        ):
            raise GeodataError(
                f"{name}: {member!r} expands {info.file_size // info.compress_size}× (zip bomb?)"
            )
    if total > MAX_ZIP_UNCOMPRESSED:
        raise GeodataError(
            f"{name} expands to {total / 2**20:.0f} MiB; at most {MAX_ZIP_UNCOMPRESSED // 2**20} MiB accepted"
        )
    return [i.filename for i in infos if not i.is_dir()]


def _read(
    source: str, name: str, source_format: str, layer: str | None, max_features: int
) -> gpd.GeoDataFrame:
    try:
        layers = [str(row[0]) for row in pyogrio.list_layers(source)]
    except Exception as exc:  # pyogrio raises several DataSourceError subclasses; all mean "unreadable"
        raise GeodataError(f"{name} could not be read as {source_format}: {_gdal_message(exc)}") from None
    if not layers:
        raise GeodataError(f"{name} holds no layers")
    if layer is not None and layer in layers:
        chosen = layer
    elif layer is not None and len(layers) > 1:
        raise GeodataError(f"{name} has no layer {layer!r}; layers: {', '.join(layers)}")
    elif len(layers) > 1:
        raise GeodataError(
            f"{name} has {len(layers)} layers ({', '.join(layers)}); choose one with the layer option"
        )
    else:
        chosen = layers[0]
    too_many = (
        f"{name} holds {{count}} features; at most {max_features:,} grids are accepted from one file "
        "(MANGROVE_IMPORT_MAX_GRID_FEATURES)"
    )
    try:
        declared = int(pyogrio.read_info(source, layer=chosen)["features"])  # -1: not known cheaply
        if declared > max_features:
            raise GeodataError(too_many.format(count=f"{declared:,}"))
        frame = pyogrio.read_dataframe(source, layer=chosen, max_features=max_features + 1)
    except GeodataError:
        raise
    except Exception as exc:
        raise GeodataError(f"{name} could not be read as {source_format}: {_gdal_message(exc)}") from None
    if len(frame) > max_features:
        raise GeodataError(too_many.format(count=f"more than {max_features:,}"))
    if not isinstance(frame, gpd.GeoDataFrame) or len(frame) == 0:
        raise GeodataError(f"{name} holds no features")
    return frame


def _gdal_message(exc: Exception) -> str:
    # GDAL messages repeat the temporary path; keep the reason only.
    return str(exc).split(": ")[-1].strip() or type(exc).__name__


def _with_crs(frame: gpd.GeoDataFrame, assume_crs: str | None, warnings: list[Problem]):
    if frame.crs is None:
        if assume_crs is None:
            raise GeodataError(
                "the file declares no CRS (coordinate reference system, e.g. a Shapefile without .prj); "
                "declare it, e.g. EPSG:4490 or EPSG:4525 for CGCS2000 Gauss–Krüger zone 37",
                [Problem("missing-crs", "no CRS declared in the file")],
            )
        try:
            crs = CRS.from_user_input(assume_crs)
        except CRSError:
            raise GeodataError(f"unknown CRS {assume_crs!r}; give an EPSG code such as EPSG:4490") from None
        frame = frame.set_crs(crs)
        warnings.append(
            Problem("assumed-crs", f"the file declares no CRS; assumed {crs.to_string()} as declared")
        )
    crs = frame.crs
    label = crs.to_string() if crs.to_epsg() is None else f"EPSG:{crs.to_epsg()}"
    minx, miny, maxx, maxy = frame.total_bounds
    if np.isnan([minx, maxx]).any():  # no geometry at all: reported with the geometry checks
        return frame, label
    looks_like_degrees = -180 <= minx and maxx <= 180 and -90 <= miny and maxy <= 90
    if crs.is_geographic and not looks_like_degrees:
        raise GeodataError(
            f"the file declares {label} (longitude/latitude) but its coordinates reach "
            f"{maxx:,.0f}, {maxy:,.0f}: they look projected; declare the right CRS",
            [Problem("wrong-crs", "projected coordinates under a lon/lat CRS")],
        )
    if crs.is_projected and looks_like_degrees:
        raise GeodataError(
            f"the file declares the projected {label} but its coordinates look like degrees "
            f"({minx:.4f}, {miny:.4f}); declare the right CRS",
            [Problem("wrong-crs", "lon/lat coordinates under a projected CRS")],
        )
    return frame, label


def _attributes(frame: gpd.GeoDataFrame, field_map: Mapping[str, str]) -> pd.DataFrame:
    """The GRID_FIELDS columns, found through the field map or by the usual names."""
    available = [c for c in frame.columns if c != frame.geometry.name]
    by_lower = {str(c).strip().lower(): c for c in available}
    problems: list[Problem] = []
    columns: dict[str, pd.Series] = {}
    for name in GRID_FIELDS:
        attribute = field_map.get(name)
        if attribute is not None:
            if attribute not in available:
                problems.append(
                    Problem(
                        "unknown-attribute",
                        f"attribute {attribute!r} (for {name}) is not in the file; attributes: "
                        + ", ".join(map(str, available)),
                        {"field": name, "attribute": attribute, "available": list(map(str, available))},
                    )
                )
                continue
        else:
            attribute = next(
                (by_lower[c.lower()] for c in DEFAULT_NAMES[name] if c.lower() in by_lower), None
            )
        if attribute is None:
            columns[name] = pd.Series([None] * len(frame), dtype=object)
            continue
        columns[name] = frame[attribute].map(_clean_text).astype(object).reset_index(drop=True)
    if problems:
        raise GeodataError(problems[0].message, problems)
    if columns["code"].isna().all():
        raise GeodataError(
            "no grid code attribute found; name it with the field map (code=ATTRIBUTE); attributes: "
            + ", ".join(map(str, available)),
            [
                Problem(
                    "unknown-attribute", "no grid code attribute", {"available": list(map(str, available))}
                )
            ],
        )
    too_long = [
        Problem(
            "too-long",
            f"feature #{i + 1}: its {field} has {len(value):,} characters; at most {limit} are accepted",
            {"feature": i + 1, "field": field},
        )
        for field, limit in FIELD_LENGTHS.items()
        for i, value in enumerate(columns[field])
        if isinstance(value, str) and len(value) > limit
    ]
    if too_long:
        raise GeodataError(f"{len(too_long)} attribute value(s) too long: {too_long[0].message}", too_long)
    return pd.DataFrame(columns)


def _clean_text(value) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # numeric codes read from a DBF come back as floats
    return str(value).strip() or None


def _polygons(geometries: np.ndarray, codes: pd.Series, repair: bool, warnings: list[Problem]):
    """2D polygonal geometries as MultiPolygons; invalid ones refused or repaired with a report."""
    geometries = np.asarray(geometries, dtype=object)
    labels = [code or f"feature #{i + 1}" for i, code in enumerate(codes)]
    problems: list[Problem] = []
    empty = shapely.is_missing(geometries) | shapely.is_empty(geometries)
    for i in np.flatnonzero(empty):
        problems.append(Problem("empty-geometry", f"grid {labels[i]} has no geometry", {"code": codes[i]}))
    geometries = _collections_as_multipolygons(geometries)
    types = shapely.get_type_id(geometries)
    polygonal = np.isin(types, (3, 6))  # Polygon, MultiPolygon
    for i in np.flatnonzero(~polygonal & ~empty):
        kind = shapely.get_type_id(geometries[i])
        problems.append(
            Problem(
                "not-polygon",
                f"grid {labels[i]} is a {_TYPE_NAMES.get(int(kind), 'geometry')}, not a polygon",
                {"code": codes[i]},
            )
        )
    if problems:
        raise GeodataError(f"{len(problems)} feature(s) without a polygon: {problems[0].message}", problems)

    if shapely.has_z(geometries).any():
        geometries = shapely.force_2d(geometries)
        warnings.append(Problem("dropped-z", "heights (Z) were dropped; grids are 2D"))

    repaired: list[Problem] = []
    invalid = ~shapely.is_valid(geometries)
    for i in np.flatnonzero(invalid):
        reason = shapely.is_valid_reason(geometries[i])
        if not repair:
            problems.append(
                Problem(
                    "invalid-geometry",
                    f"grid {labels[i]} is not a valid polygon: {reason}",
                    {"code": codes[i]},
                )
            )
            continue
        fixed = _polygonal_part(shapely.make_valid(geometries[i]))
        if fixed is None:
            problems.append(
                Problem(
                    "invalid-geometry", f"grid {labels[i]} cannot be repaired: {reason}", {"code": codes[i]}
                )
            )
            continue
        geometries[i] = fixed
        repaired.append(Problem("repaired", f"grid {labels[i]} repaired: {reason}", {"code": codes[i]}))
    if problems:
        raise GeodataError(
            f"{len(problems)} invalid polygon(s): {problems[0].message} (import with repair to fix them)",
            problems,
        )
    single = shapely.get_type_id(geometries) == 3
    geometries[single] = [shapely.MultiPolygon([g]) for g in geometries[single]]
    return shapely.orient_polygons(geometries), repaired


def _collections_as_multipolygons(geometries: np.ndarray) -> np.ndarray:
    # KML MultiGeometry reads as a GeometryCollection; one made only of polygons is a MultiPolygon.
    geometries = geometries.copy()
    for i in np.flatnonzero(shapely.get_type_id(geometries) == 7):
        parts = shapely.get_parts(geometries[i])
        if len(parts) and np.isin(shapely.get_type_id(parts), (3, 6)).all():
            geometries[i] = shapely.MultiPolygon(list(shapely.get_parts(parts)))
    return geometries


_TYPE_NAMES = {0: "point", 1: "line", 2: "ring", 4: "multi-point", 5: "multi-line", 7: "geometry collection"}


def _polygonal_part(geometry):
    parts = shapely.get_parts(geometry)
    parts = parts[np.isin(shapely.get_type_id(parts), (3, 6))]
    if len(parts) == 0:
        return None
    merged = shapely.union_all(parts)
    return merged if shapely.get_type_id(merged) in (3, 6) and not merged.is_empty else None


def _check_region(grids: gpd.GeoDataFrame) -> None:
    minx, miny, maxx, maxy = REGION_BBOX
    bounds = shapely.bounds(grids.geometry.values)
    outside = (bounds[:, 0] < minx) | (bounds[:, 1] < miny) | (bounds[:, 2] > maxx) | (bounds[:, 3] > maxy)
    problems = [
        Problem(
            "outside-region",
            f"grid {code} lies outside the service region (Lianjiang and Hepu coast, lon {minx}–{maxx}, "
            f"lat {miny}–{maxy})",
            {"code": code, "bounds": [round(v, 5) for v in b]},
        )
        for code, b in zip(grids["code"][outside], bounds[outside])
    ]
    if problems:
        raise GeodataError(f"{len(problems)} grid(s) outside the region: {problems[0].message}", problems)
