"""KML, KMZ and GPX, streamed with lxml's incremental writer (``etree.xmlfile``).

Why not GDAL here: GDAL's KML and LIBKML drivers take a feature's style only from its OGR style
string, which pyogrio cannot set, so placemarks could not be coloured by status and category; and
pyogrio writes one layer per call while GDAL's GPX driver cannot append, so a GPX with waypoints and
tracks (and a time per point) would have to be built whole in memory. lxml (already a dependency
for reading uploads) writes one placemark, waypoint or track at a time. The tests read every file
back with GDAL (pyogrio) to prove it is what GIS and phone apps expect.

KML styles: an incident's icon has its status colour (the maps' palette: red waiting, amber in
hand, green done, grey settled), its label the category's colour; its name is the category's and
status' Chinese labels. The document says in its description and ExtendedData which datum its
coordinates are in; GCJ-02 lines up with Amap/Ovital (奥维) base maps, WGS84 with GIS and GPS.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import shapely
from lxml import etree

from patrol.exports.formats import Context
from patrol.exports.layers import Layer
from patrol.incidents import STATUS_NAMES

KML_NS = "http://www.opengis.net/kml/2.2"
GPX_NS = "http://www.topografix.com/GPX/1/1"

# The same palette as maps.base.STATUS_COLORS (patrol may not import maps; a test keeps them equal).
STATUS_COLORS = {
    "reported": "#d7191c",
    "accepted": "#f39c12",
    "in_progress": "#e6c229",
    "resolved": "#1a9641",
    "closed": "#5d6d7e",
    "rejected": "#aab7b8",
    "duplicate": "#aab7b8",
}
CATEGORY_COLORS = {
    "cutting": "#8c510a",
    "aquaculture": "#01665e",
    "fishing_digging": "#35978f",
    "pollution": "#762a83",
    "rubbish": "#bf812d",
    "cordgrass": "#5aae61",
    "pests": "#c51b7d",
    "fire": "#d73027",
    "bird_disturbance": "#4575b4",
    "facilities": "#878787",
}
OTHER_CATEGORY_COLOR = "#ffffff"
SIDE_COLORS = {"GD-LJ": "#2166ac", "GX-HP": "#1b7837"}
DATUM_TEXT = {
    "wgs84": "坐标系 Datum: WGS84 (EPSG:4326)，适用于 GIS 与 GPS / for GIS and GPS.",
    "gcj02": "坐标系 Datum: GCJ-02（火星坐标）— 与高德、奥维地图对齐；勿用于 GIS 测量 / lines up with "
    "Amap and Ovital base maps; not for GIS measurement.",
}
LAYER_NAMES = {
    "grids": "保护网格 Grids",
    "effort": "巡护力度 Effort",
    "patrols": "巡护轨迹 Patrols",
    "incidents": "事件 Incidents",
    "joint_cases": "联合案件 Joint cases",
}


def kml_color(hex_rgb: str, alpha: int = 255) -> str:
    """``#rrggbb`` as KML's ``aabbggrr``."""
    r, g, b = hex_rgb[1:3], hex_rgb[3:5], hex_rgb[5:7]
    return f"{alpha:02x}{b}{g}{r}"


def _sub(parent, tag: str, text=None):
    element = etree.SubElement(parent, tag)
    if text is not None:
        element.text = str(text)
    return element


def _coordinates(coords: np.ndarray) -> str:
    return " ".join(f"{x:.7f},{y:.7f}" for x, y in coords[:, :2])


def _kml_geometry(parent, geom) -> None:
    kind = shapely.get_type_id(geom)
    if kind == 0:
        _sub(_sub(parent, "Point"), "coordinates", _coordinates(shapely.get_coordinates(geom)))
    elif kind in (1, 2):
        line = _sub(parent, "LineString")
        _sub(line, "tessellate", 1)
        _sub(line, "coordinates", _coordinates(shapely.get_coordinates(geom)))
    elif kind == 3:
        polygon = _sub(parent, "Polygon")
        outer = _sub(_sub(polygon, "outerBoundaryIs"), "LinearRing")
        _sub(outer, "coordinates", _coordinates(shapely.get_coordinates(geom.exterior)))
        for ring in geom.interiors:
            inner = _sub(_sub(polygon, "innerBoundaryIs"), "LinearRing")
            _sub(inner, "coordinates", _coordinates(shapely.get_coordinates(ring)))
    else:  # multi-part: one MultiGeometry of the parts
        multi = _sub(parent, "MultiGeometry")
        for part in shapely.get_parts(geom):
            _kml_geometry(multi, part)


def _style(style_id: str, *, icon=None, label=None, line=None, fill=None):
    style = etree.Element("Style", id=style_id)
    if icon:
        icon_style = _sub(style, "IconStyle")
        _sub(icon_style, "color", kml_color(icon))
        _sub(icon_style, "scale", "1.1")
    if label:
        label_style = _sub(style, "LabelStyle")
        _sub(label_style, "color", kml_color(label))
    if line:
        line_style = _sub(style, "LineStyle")
        _sub(line_style, "color", kml_color(line))
        _sub(line_style, "width", 2)
    if fill:
        _sub(_sub(style, "PolyStyle"), "color", kml_color(fill, alpha=0x55))
    return style


def _styles(context: Context) -> list:
    styles = []
    for status, color in STATUS_COLORS.items():
        for category in context.category_labels:
            label = CATEGORY_COLORS.get(category, OTHER_CATEGORY_COLOR)
            styles.append(_style(f"incident-{status}-{category}", icon=color, label=label))
    for side, color in SIDE_COLORS.items():
        styles.append(_style(f"grid-{side}", line=color, fill=color))
        styles.append(_style(f"patrol-{side}", line=color))
    return styles


def _placemark_name(layer: str, row: dict, context: Context) -> str:
    if layer == "incidents":
        category = context.category_labels.get(row["category"], row["category"])
        return f"{category} · {STATUS_NAMES.get(row['status'], (row['status'],))[0]}"
    if layer in ("grids", "effort"):
        return f"{row['code']} {row['name_zh'] or ''}".strip()
    if layer == "patrols":
        return f"{row['team'] or ''} {row['started_at'] or ''} #{row['id']}".strip()
    return f"{row['title']} #{row['id']}"


def _style_url(layer: str, row: dict) -> str | None:
    if layer == "incidents":
        return f"#incident-{row['status']}-{row['category']}"
    if layer in ("grids", "effort") and row.get("side") in SIDE_COLORS:
        return f"#grid-{row['side']}"
    if layer == "patrols" and row.get("side") in SIDE_COLORS:
        return f"#patrol-{row['side']}"
    return None


def _placemark(layer: str, row: dict, geom, context: Context):
    placemark = etree.Element("Placemark")
    _sub(placemark, "name", _placemark_name(layer, row, context))
    if layer == "incidents" and row.get("description"):
        _sub(placemark, "description", row["description"])
    url = _style_url(layer, row)
    if url:
        _sub(placemark, "styleUrl", url)
    data = _sub(placemark, "ExtendedData")
    for key, value in row.items():
        if value is not None:
            item = _sub(data, "Data")
            item.set("name", key)
            _sub(item, "value", value)
    if geom is not None:
        _kml_geometry(placemark, geom)
    return placemark


def _records(chunk) -> list[dict]:
    columns = [c for c in chunk.columns if c != "geometry"]
    plain = chunk[columns].astype(object).where(chunk[columns].notna(), None)
    return plain.to_dict("records")


def write_kml(layers: list[Layer], path: Path, context: Context) -> None:
    with etree.xmlfile(str(path), encoding="utf-8") as xf:
        xf.write_declaration()
        # The namespace is declared once, on the root; the elements written inside inherit it.
        with xf.element("kml", xmlns=KML_NS):
            with xf.element("Document"):
                head = etree.Element("Document")
                _sub(head, "name", context.title)
                _sub(head, "description", f"{DATUM_TEXT[context.datum]} {context.generated_at}")
                datum = _sub(_sub(head, "ExtendedData"), "Data")
                datum.set("name", "datum")
                _sub(datum, "value", context.datum)
                for child in head:
                    xf.write(child)
                for style in _styles(context):
                    xf.write(style)
                for layer in layers:
                    with xf.element("Folder"):
                        xf.write(_named(LAYER_NAMES[layer.name]))
                        for chunk in layer.chunks():
                            for row, geom in zip(_records(chunk), chunk.geometry.values):
                                xf.write(_placemark(layer.name, row, geom, context))
                                xf.flush()


def _named(text: str):
    element = etree.Element("name")
    element.text = text
    return element


def write_kmz(layers: list[Layer], path: Path, context: Context) -> None:
    """A KML zipped as ``doc.kml``, the name Google Earth and Ovital look for first."""
    kml = path.with_suffix(".kml")
    write_kml(layers, kml, context)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(kml, "doc.kml")
    kml.unlink()


# --- GPX ------------------------------------------------------------------------------------------


def _gpx_sub(parent, tag: str, text=None):
    element = etree.SubElement(parent, tag)
    if text is not None:
        element.text = str(text)
    return element


def _gpx_times(times: np.ndarray) -> list[str | None]:
    """ISO UTC times; whole seconds when the fixes have no fraction, milliseconds otherwise."""
    unit = (
        "s"
        if np.all(np.isnat(times) | (times.astype("datetime64[ms]").astype("int64") % 1000 == 0))
        else "ms"
    )
    text = np.datetime_as_string(times, unit=unit)
    return [None if np.isnat(t) else f"{s}Z" for t, s in zip(times, text)]


def _track(row: dict, fixes: dict[str, np.ndarray]):
    """One patrol as a <trk>: its good fixes (cleaning flags 0), a <trkseg> per stored segment."""
    track = etree.Element("trk")
    _gpx_sub(track, "name", f"{row['team'] or ''} {row['started_at'] or ''} #{row['id']}".strip())
    _gpx_sub(track, "desc", f"patrol {row['id']}; members: {row['members'] or '-'}")
    _gpx_sub(track, "type", row["transport"])
    good = (fixes["flags"] == 0) & np.isfinite(fixes["wgs84_lon"]) & np.isfinite(fixes["wgs84_lat"])
    lon, lat, ele = fixes["wgs84_lon"][good], fixes["wgs84_lat"][good], fixes["ele"][good]
    segment, times = fixes["segment"][good], _gpx_times(fixes["time"][good])
    current = None
    for i in range(len(lon)):
        if current is None or segment[i] != segment[i - 1]:
            current = _gpx_sub(track, "trkseg")
        point = _gpx_sub(current, "trkpt")
        point.set("lat", f"{lat[i]:.7f}")
        point.set("lon", f"{lon[i]:.7f}")
        if np.isfinite(ele[i]):
            _gpx_sub(point, "ele", f"{ele[i]:.1f}")
        if times[i]:
            _gpx_sub(point, "time", times[i])
    return track


def _waypoint(row: dict, context: Context):
    point = etree.Element("wpt", lat=f"{row['lat']:.7f}", lon=f"{row['lon']:.7f}")
    if row["observed_at"]:
        _gpx_sub(point, "time", row["observed_at"].replace("+00:00", "Z"))
    _gpx_sub(point, "name", f"{_placemark_name('incidents', row, context)} #{row['id']}")
    if row.get("description"):
        _gpx_sub(point, "desc", row["description"])
    _gpx_sub(point, "type", row["category"])
    return point


def write_gpx(layers: list[Layer], path: Path, context: Context) -> None:
    """GPX 1.1 (always WGS84): incidents as <wpt>, patrols as <trk> with a <time> per point.
    GPX puts every waypoint before every track."""
    ordered = sorted(layers, key=lambda layer: layer.name != "incidents")
    with etree.xmlfile(str(path), encoding="utf-8") as xf:
        xf.write_declaration()
        with xf.element("gpx", xmlns=GPX_NS, version="1.1", creator="Mangrove Patrol"):
            metadata = etree.Element("metadata")
            _gpx_sub(metadata, "name", context.title)
            _gpx_sub(metadata, "desc", DATUM_TEXT["wgs84"])
            _gpx_sub(metadata, "time", context.generated_at.replace("+00:00", "Z"))
            xf.write(metadata)
            for layer in ordered:
                for chunk in layer.chunks():
                    for row in _records(chunk):
                        if layer.name == "incidents":
                            xf.write(_waypoint(row, context))
                        else:
                            xf.write(_track(row, layer.fixes(row["id"])))
                        xf.flush()
