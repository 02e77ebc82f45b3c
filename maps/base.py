"""What every map shares: basemaps, the datum of the overlays, compact coordinates, colours and
the few folium elements our layers are built from.

Maps draw overlays from compact JSON with the builders in ``static/mangrove-maps.js`` rather than
one folium element per feature: a year of patrols and incidents stays a few MB and renders at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from html import escape
from urllib.parse import quote
from zoneinfo import ZoneInfo

import folium
import numpy as np
import pandas as pd
import shapely
from branca.element import MacroElement
from folium.map import Layer
from jinja2 import Template

from geodata.datum import wgs84_to_gcj02

CHINA = ZoneInfo("Asia/Shanghai")
STEP = 1e5  # coordinates travel as integers of 1e-5 degree (≈ 1 m)


# --- basemaps ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Basemap:
    name: str
    label: str
    tiles: tuple[tuple[str, str, str], ...]  # (URL template, attribution, subdomains)
    datum: str = "wgs84"  # the datum the tiles are drawn in; overlays are shifted to match
    max_zoom: int = 18
    # A station's own tile set: the zooms it holds (Leaflet enlarges its deepest tiles beyond) and
    # its extent (no tile is asked for outside it).
    tile_min_zoom: int | None = None
    native_max_zoom: int | None = None
    bounds: tuple[float, float, float, float] | None = None  # minlon, minlat, maxlon, maxlat


LOCAL_PREFIX = "local:"


def local_label(name: str) -> str:
    return f"本站底图 {name} (local)"


def local_basemap(name: str, tileset, *, url_base: str = "") -> Basemap:
    """The basemap ``local:NAME`` of a station tile set (``tileset``: its metadata, with bounds,
    minzoom, maxzoom and attribution), its tiles from the service's own ``/tiles/NAME/…``
    (``url_base`` in front for an exported map)."""
    url = f"{url_base.rstrip('/')}/tiles/{name}/{{z}}/{{x}}/{{y}}"
    # The file's attribution is shown as text, never run as HTML.
    attribution = escape(tileset.attribution or "") or escape(f"本站底图 {name}")
    return Basemap(
        f"{LOCAL_PREFIX}{name}",
        local_label(name),
        ((url, attribution, ""),),
        max_zoom=max(18, tileset.maxzoom),
        tile_min_zoom=tileset.minzoom,
        native_max_zoom=tileset.maxzoom,
        bounds=tuple(tileset.bounds),
    )


def basemap(name: str, *, tianditu_key: str = "", local=None, url_base: str = "") -> Basemap:
    """The tile layers of a basemap choice (``patrol.settings.BASEMAPS``, or ``local:NAME`` for a
    station tile set in ``local``, a mapping of name → metadata). ``none`` needs no network."""
    if name.startswith(LOCAL_PREFIX):
        local_name = name.removeprefix(LOCAL_PREFIX)
        sets = local or {}
        if local_name not in sets:
            known = ", ".join(LOCAL_PREFIX + n for n in sorted(sets)) or "none added (mangrove tiles add)"
            raise ValueError(f"unknown basemap {name!r}: the station's tile sets are {known}")
        return local_basemap(local_name, sets[local_name], url_base=url_base)
    if name == "none":
        return Basemap("none", "无底图 No basemap (offline)", ())
    if name == "osm":
        return Basemap(
            "osm",
            "OpenStreetMap",
            (("https://tile.openstreetmap.org/{z}/{x}/{y}.png", "© OpenStreetMap contributors", "abc"),),
            max_zoom=19,
        )
    if name == "tianditu":
        if not tianditu_key:
            raise ValueError("the Tianditu basemap needs a key: set MANGROVE_MAP_TIANDITU_KEY")
        wmts = (
            "https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
            "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}"
            f"&tk={tianditu_key}"
        )
        attribution = "© 天地图 Tianditu"
        return Basemap(
            "tianditu",
            "天地图 Tianditu",
            (
                (wmts.replace("{layer}", "vec"), attribution, "01234567"),
                (wmts.replace("{layer}", "cva"), attribution, "01234567"),  # Chinese place names
            ),
        )
    if name == "satellite":
        return Basemap(
            "satellite",
            "卫星影像 Satellite (Esri World Imagery)",
            (
                (
                    "https://server.arcgisonline.com/ArcGIS/rest/services/World_Imagery/MapServer/tile/{z}/{y}/{x}",
                    "Imagery © Esri, Maxar, Earthstar Geographics",
                    "",
                ),
            ),
        )
    if name == "amap":
        return Basemap(
            "amap",
            "高德地图 Amap (GCJ-02)",
            (
                (
                    "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}",
                    "© 高德地图 AutoNavi",
                    "1234",
                ),
            ),
            datum="gcj02",
        )
    raise ValueError(
        f"unknown basemap {name!r}: use one of none, osm, tianditu, satellite, amap, or local:NAME"
    )


def new_map(bounds: tuple[float, float, float, float], base: Basemap) -> folium.Map:
    """A folium map fitted to ``bounds`` (lon/lat, already in the overlays' datum) with a scale bar."""
    minx, miny, maxx, maxy = bounds
    m = folium.Map(
        location=[(miny + maxy) / 2, (minx + maxx) / 2],
        zoom_start=11,
        tiles=None,
        control_scale=True,
        prefer_canvas=False,
    )
    # Without a tile layer Leaflet has no zoom limits, and marker clustering refuses to start.
    m.options.update(max_zoom=base.max_zoom, min_zoom=6)
    for i, (url, attribution, subdomains) in enumerate(base.tiles):
        extent = {}
        if base.bounds is not None:
            w, s, e, n = base.bounds
            extent["bounds"] = [[s, w], [n, e]]
        folium.TileLayer(
            url,
            attr=attribution,
            name=base.label if i == 0 else base.label + " 注记 labels",
            subdomains=subdomains or "abc",
            min_zoom=base.tile_min_zoom,
            max_zoom=base.max_zoom,
            max_native_zoom=base.native_max_zoom,
            overlay=i > 0,
            control=False,
            **extent,
        ).add_to(m)
    # Fitted at once, then again in ``MangroveMaps.ready`` to the part of the map the title, filters
    # and legend leave free (their sizes are known only in the browser). Without animation: a zoom
    # animation at load would scale the drawn layers mid-render.
    frame = script_json([[miny, minx], [maxy, maxx]])
    m.add_child(Script(f"MangroveMaps.frame({{map}}, {frame});"))
    return m


# --- coordinates -------------------------------------------------------------------------------


class Overlay:
    """Puts WGS84 coordinates into the basemap's datum (GCJ-02 for Amap) and rounds them."""

    def __init__(self, base: Basemap, decimals: int = 5):
        self.gcj02 = base.datum == "gcj02"
        self.decimals = decimals

    def lonlat(self, lon, lat) -> tuple[np.ndarray, np.ndarray]:
        lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
        if self.gcj02 and lon.size:
            lon, lat = wgs84_to_gcj02(lon, lat)
        return np.round(lon, self.decimals), np.round(lat, self.decimals)

    def geometries(self, geoms) -> np.ndarray:
        def move(xy: np.ndarray) -> np.ndarray:
            return np.column_stack(self.lonlat(xy[:, 0], xy[:, 1]))

        return shapely.transform(np.asarray(geoms, dtype=object), move)

    def bounds(self, geoms) -> tuple[float, float, float, float]:
        return tuple(float(v) for v in shapely.total_bounds(self.geometries(geoms)))


def delta_encode(lon: np.ndarray, lat: np.ndarray) -> list[int]:
    """[lon0, lat0, dlon1, dlat1, …] in 1e-5 degree integers (``MangroveMaps.decode`` reverses it)."""
    q = np.column_stack([np.round(np.asarray(lon) * STEP), np.round(np.asarray(lat) * STEP)]).astype(np.int64)
    if len(q) == 0:
        return []
    q[1:] = np.diff(q, axis=0)
    return q.ravel().tolist()


def line_parts(geom) -> list[list[int]]:
    """Each part of a (multi)line, delta-encoded."""
    parts = shapely.get_parts(geom) if geom is not None else []
    out = []
    for part in parts:
        xy = shapely.get_coordinates(part)
        if len(xy) >= 2:
            out.append(delta_encode(xy[:, 0], xy[:, 1]))
    return out


def feature_collection(geoms, properties: list[dict]) -> dict:
    """A GeoJSON FeatureCollection (geometries already moved and rounded)."""
    features = []
    for geom, props in zip(geoms, properties):
        features.append(
            {"type": "Feature", "properties": props, "geometry": json.loads(shapely.to_geojson(geom))}
        )
    return {"type": "FeatureCollection", "features": features}


def label_points(geoms) -> np.ndarray:
    """Each polygon's representative point (shapely's ``point_on_surface``: always inside, unlike the
    centroid of a thin or curved strip), as (lon, lat) rows."""
    return shapely.get_coordinates(shapely.point_on_surface(np.asarray(geoms, dtype=object)))


LABEL_MIN_ZOOM = 11  # below it (a county or more on screen) the codes would be a heap: none shown


def grid_labels(geoms, codes) -> list[list]:
    """Rows [lat, lon, code] for ``MangroveMaps.labels``, each on its polygon's representative
    point, largest polygon first: where labels would collide on screen the browser keeps the first."""
    geoms = np.asarray(geoms, dtype=object)
    points = label_points(geoms)
    order = np.argsort(-shapely.area(geoms), kind="stable")
    codes = list(codes)
    return [[round(float(points[i, 1]), 5), round(float(points[i, 0]), 5), h(codes[i])] for i in order]


# --- words and colours -------------------------------------------------------------------------

# Red for waiting, amber for in hand, green for done, grey for settled without action.
STATUS_COLORS = {
    "reported": "#d7191c",
    "accepted": "#f39c12",
    "in_progress": "#e6c229",
    "resolved": "#1a9641",
    "closed": "#5d6d7e",
    "rejected": "#aab7b8",
    "duplicate": "#aab7b8",
}
SIDE_COLORS = {"GD-LJ": "#2166ac", "GX-HP": "#1b7837"}
TEAM_COLORS = ["#e41a1c", "#377eb8", "#984ea3", "#ff7f00", "#a65628", "#f781bf", "#4daf4a", "#999999"]
# One character per built-in category, drawn inside the marker; others use their Chinese label's first.
CATEGORY_GLYPHS = {
    "cutting": "砍",
    "aquaculture": "塘",
    "fishing_digging": "挖",
    "pollution": "污",
    "rubbish": "垃",
    "cordgrass": "草",
    "pests": "虫",
    "fire": "火",
    "bird_disturbance": "鸟",
    "facilities": "设",
    "other": "他",
}


def luminance(color: str) -> float:
    """WCAG 2 relative luminance of a #rrggbb colour."""
    rgb = np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)]) / 255
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    return float(linear @ [0.2126, 0.7152, 0.0722])


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours (1 to 21)."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


INK_LIGHT, INK_DARK = "#ffffff", "#111111"


def ink(background: str) -> str:
    """The text colour (white or near-black) that reads best on ``background``: one of the two always
    reaches 4.5:1 (WCAG AA)."""
    return max((INK_LIGHT, INK_DARK), key=lambda c: contrast(c, background))


def glyph(code: str, label_zh: str) -> str:
    return CATEGORY_GLYPHS.get(code) or (label_zh[:1] if label_zh else "?")


def local_time(value, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """An instant as China time text; '' for none."""
    if value is None or (not isinstance(value, datetime) and pd.isna(value)):
        return ""
    value = pd.Timestamp(value)
    value = value.tz_localize("UTC") if value.tzinfo is None else value
    return value.tz_convert(CHINA).strftime(fmt)


def local_day(value) -> str:
    """The China date of an instant ('' for none)."""
    return local_time(value, "%Y-%m-%d")


def last_local_day(end) -> str:
    """The last China date a period ending (exclusively) at ``end`` covers: an end at midnight is
    the end of the day before."""
    if end is None or (not isinstance(end, datetime) and pd.isna(end)):
        return ""
    return local_day(pd.Timestamp(end) - pd.Timedelta(microseconds=1))


def local_times(values: pd.Series, fmt: str = "%Y-%m-%d %H:%M") -> list[str]:
    """Many instants at once (vectorised); '' for missing ones."""
    times = pd.to_datetime(values, utc=True).dt.tz_convert(CHINA)
    return times.dt.strftime(fmt).fillna("").tolist()


def h(text) -> str:
    """HTML-escape a value for server-built popups and legends."""
    return escape("" if text is None else str(text))


def anchor(href: str, text: str, *, new_tab: bool = False) -> str:
    """An <a> element: ``href`` and ``text`` escaped (the caller quotes any value put in the URL)."""
    target = " target='_blank' rel='noopener'" if new_tab else ""
    return f"<a href='{h(href)}'{target}>{h(text)}</a>"


DESK_GRID_TEXT = "本网格未结事件 Open incidents in this grid"


def desk_grid_link(desk_link: str, code: str) -> str:
    """The link from a grid's popup to the desk's work list of that grid (``desk_link``: the URL up
    to the grid's code, e.g. ``/desk?grid=``; '' for users without a desk)."""
    if not desk_link:
        return ""
    return f"<p class='mp-links'>{anchor(desk_link + quote(str(code), safe=''), DESK_GRID_TEXT)}</p>"


# --- folium elements ---------------------------------------------------------------------------


# Characters that must not appear as themselves in JSON inside a <script> element: "<" ("</script>"
# ends the element, "<!--" and "<script" switch the parser into a state where it no longer does),
# ">" and "&" (as Jinja's tojson escapes them), and U+2028/U+2029 (line ends to older JavaScript).
_SCRIPT_UNSAFE = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def script_json(value) -> str:
    """JSON that is safe inside a <script> element, whatever text it holds: compact, Chinese as
    is, with <, >, &, U+2028 and U+2029 escaped as \\u003c… (the same value to JavaScript). The one
    way the maps embed data in their pages."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).translate(_SCRIPT_UNSAFE)


class JsLayer(Layer):
    """An overlay built in the browser: ``builder`` is a ``MangroveMaps`` function given ``data``
    (and ``options``, when there are any).

    A folium Layer, so that the layer control lists it and ``show`` works as for folium's own.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = MangroveMaps.{{ this.builder }}({{ this.data_json }}{% if this.options_json %}, {{ this.options_json }}{% endif %});
        {% endmacro %}
        """
    )

    def __init__(
        self, builder: str, data, *, name: str, show: bool = True, control: bool = True, options=None
    ):
        super().__init__(name=name, overlay=True, control=control, show=show)
        self._name = "JsLayer"
        self.builder = builder
        self.data_json = script_json(data)
        self.options_json = script_json(options) if options else ""


class Control(MacroElement):
    """A box of HTML in a corner of the map (title, legend, filters)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            MangroveMaps.control({{ this._parent.get_name() }}, {{ this.position|tojson }}, {{ this.html_json }}, {{ this.css_class|tojson }});
        {% endmacro %}
        """
    )

    def __init__(self, html: str, *, position: str = "topright", css_class: str = ""):
        super().__init__()
        self._name = "Control"
        self.html_json = script_json(html)
        self.position = position
        self.css_class = css_class


class Script(MacroElement):
    """A statement run after every layer exists; ``{map}`` is replaced by the map's variable."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            {{ this.code.replace("{map}", this._parent.get_name()) }}
        {% endmacro %}
        """
    )

    def __init__(self, code: str):
        super().__init__()
        self._name = "Script"
        self.code = code


def finish(m: folium.Map) -> None:
    """Layer control and the render hook; call last, after every layer is added."""
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    Script("MangroveMaps.ready({map});").add_to(m)


@dataclass(frozen=True)
class FilterForm:
    """The form a served map carries to change what it shows (a GET back to ``action``)."""

    action: str
    basemaps: tuple[tuple[str, str], ...] = ()  # (name, label) of the basemaps the service can draw
    keep: tuple[tuple[str, str], ...] = ()  # parameters passed on as they are (station, grids…)


def select(name: str, label: str, options, selected=(), *, multiple: bool = False) -> str:
    """A labelled <select>; ``options`` are (value, text) pairs."""
    chosen = set(selected)
    items = "".join(
        f"<option value='{h(value)}'{' selected' if value in chosen else ''}>{h(text)}</option>"
        for value, text in options
    )
    size = f" multiple size='{min(5, len(options))}'" if multiple else ""
    return f"<label>{h(label)} <select name='{h(name)}'{size}>{items}</select></label>"


def form_html(form: FilterForm, base: Basemap, start, end, fields: list[str]) -> str:
    """A folded-open filter form: the period (China days), ``fields``, the basemap, Apply."""
    kept = "".join(f"<input type='hidden' name='{h(k)}' value='{h(v)}'>" for k, v in form.keep)
    period = (
        f"<label>从 From <input type='date' name='from' value='{local_day(start)}'></label>"
        f"<label>到 To <input type='date' name='to' value='{last_local_day(end)}'></label>"
    )
    basemaps = select("basemap", "底图 Basemap", form.basemaps, [base.name]) if form.basemaps else ""
    return (
        f"<details open><summary><b>筛选 Filter</b></summary>"
        f"<form class='mp-filter' method='get' action='{h(form.action)}'>{kept}{period}{''.join(fields)}{basemaps}"
        "<button type='submit'>应用 Apply</button></form></details>"
    )


def basemap_form_html(form: FilterForm, base: Basemap) -> str:
    """A form with only the basemap choice (maps without other filters: the replays)."""
    kept = "".join(f"<input type='hidden' name='{h(k)}' value='{h(v)}'>" for k, v in form.keep)
    return (
        f"<details><summary><b>底图 Basemap</b></summary>"
        f"<form class='mp-filter' method='get' action='{h(form.action)}'>{kept}"
        f"{select('basemap', '底图 Basemap', form.basemaps, [base.name])}"
        "<button type='submit'>应用 Apply</button></form></details>"
    )


def legend_html(sections: list[tuple[str, list[str]]], *, title: str = "图例 Legend") -> str:
    """A collapsible legend; each section is (heading, rows of HTML)."""
    body = "".join(
        f"<h2>{h(heading)}</h2>" + "".join(f"<div class='mp-row'>{row}</div>" for row in rows)
        for heading, rows in sections
        if rows
    )
    return f"<details open class='mp-legend'><summary>{h(title)}</summary>{body}</details>"


def swatch(color: str, label: str, *, border: str = "#555", dash: bool = False) -> str:
    style = f"background:{color};border-color:{border}" + (
        ";border-style:dashed;border-width:2px" if dash else ""
    )
    return f"<span class='mp-swatch' style='{style}'></span><span>{label}</span>"


def line_key(color: str, label: str) -> str:
    return f"<span class='mp-line' style='border-color:{color}'></span><span>{label}</span>"
