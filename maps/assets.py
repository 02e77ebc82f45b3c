"""The browser libraries a map needs, from this package instead of folium's CDNs.

folium's elements name the scripts and stylesheets they need (``default_js``/``default_css``) with CDN
addresses; a field station cannot reach those. :func:`to_html` points every element of a map at the
copies vendored under ``maps/static/vendor`` — by URL when the service serves the map, or inlined
when the map is exported to one self-contained file. An element asking for a library we do not
vendor is an error, so a CDN address can never slip into a page.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import folium
from branca.element import Element

STATIC_DIR = Path(__file__).parent / "static"
SERVED_PREFIX = "/static/maps/"

# folium's resource names (and our own) → files under maps/static.
VENDORED = {
    "leaflet": "vendor/leaflet/leaflet.js",
    "leaflet_css": "vendor/leaflet/leaflet.css",
    "markerclusterjs": "vendor/markercluster/leaflet.markercluster.js",
    "markerclustercss": "vendor/markercluster/MarkerCluster.css",
    "markerclusterdefaultcss": "vendor/markercluster/MarkerCluster.Default.css",
    "leaflet-heat.js": "vendor/leaflet-heat/leaflet-heat.js",
    "mangrove_maps_js": "mangrove-maps.js",
    "mangrove_maps_css": "mangrove-maps.css",
}
# Every map loads our own layer builders and styles after Leaflet.
OWN_JS = [("mangrove_maps_js", "")]
OWN_CSS = [("mangrove_maps_css", "")]
# folium's Map also asks for jQuery, Bootstrap, Font Awesome and awesome-markers. Our maps draw
# with CircleMarkers, DivIcons and plain HTML, so these are dropped rather than vendored.
NOT_USED = frozenset(
    {
        "jquery",
        "bootstrap",
        "awesome_markers",
        "bootstrap_css",
        "glyphicons_css",
        "awesome_markers_font_css",
        "awesome_markers_css",
        "awesome_rotate_css",
    }
)

_INLINE = "mangrove-asset:"
_SCRIPT_TAG = re.compile(r'<script src="' + _INLINE + r'([^"]+)"></script>')
_CSS_TAG = re.compile(r'<link rel="stylesheet" href="' + _INLINE + r'([^"]+)"\s*/?>')
_CSS_URL = re.compile(r"url\((images/[^)]+)\)")


class AssetError(RuntimeError):
    """A map element needs a browser library that is not vendored."""


def _elements(root) -> Iterator:
    yield root
    for child in list(root._children.values()):
        yield from _elements(child)


def _local(pairs, prefix: str, owner) -> list[tuple[str, str]]:
    local = []
    for name, _url in pairs:
        if _url.startswith(prefix) and name in VENDORED:
            local.append((name, _url))  # already localised (a map rendered twice)
            continue
        if name in NOT_USED:
            continue
        if name not in VENDORED:
            raise AssetError(f"{type(owner).__name__} needs {name!r}, which maps/static does not carry")
        local.append((name, prefix + VENDORED[name]))
    return local


def point_at_vendored(m: folium.Map, prefix: str) -> None:
    """Replace every element's CDN links by ``prefix`` + the vendored path (instance attributes:
    folium's class-level lists are shared by all maps and must not be mutated)."""
    for element in _elements(m):
        if hasattr(element, "default_js"):
            js, css = list(element.default_js), list(element.default_css)
            if element is m:
                js += [p for p in OWN_JS if p not in js]
                css += [p for p in OWN_CSS if p not in css]
            element.default_js = _local(js, prefix, element)
            element.default_css = _local(css, prefix, element)


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _inline_css(relative: str) -> str:
    path = STATIC_DIR / relative
    css = path.read_text(encoding="utf-8")
    # Leaflet's stylesheet refers to its icons relative to itself; inline them too.
    css = _CSS_URL.sub(lambda m: f"url({_data_uri(path.parent / m.group(1))})", css)
    return f"<style>\n{css}\n</style>"


def _inline_script(relative: str) -> str:
    code = (STATIC_DIR / relative).read_text(encoding="utf-8").replace("</script", "<\\/script")
    return f"<script>\n{code}\n</script>"


def to_html(m: folium.Map, *, self_contained: bool, title: str | None = None) -> str:
    """The map as one HTML page: libraries served from ``SERVED_PREFIX``, or inlined."""
    if title:
        m.get_root().header.add_child(Element(f"<title>{_escape(title)}</title>"), name="title")
    # No favicon request: offline, and one 404 fewer in the browser console.
    m.get_root().header.add_child(Element('<link rel="icon" href="data:,">'), name="favicon")
    point_at_vendored(m, _INLINE if self_contained else SERVED_PREFIX)
    html = m.get_root().render()
    if self_contained:
        html = _SCRIPT_TAG.sub(lambda match: _inline_script(match.group(1)), html)
        html = _CSS_TAG.sub(lambda match: _inline_css(match.group(1)), html)
        if _INLINE in html:
            raise AssetError("a vendored asset was referenced in a form that could not be inlined")
    return html.replace("<html>", '<html lang="zh-CN">', 1)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
