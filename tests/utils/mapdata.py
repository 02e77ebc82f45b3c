"""Reading a rendered map back: the layers its script builds and the assets it references."""

from __future__ import annotations

import json
import re

# A builder's data, then (optionally) a small object of options: MangroveMaps.polygons({…}, {"underTracks":true});
BUILDER = re.compile(
    r'MangroveMaps\.(polygons|labels|tracks|cases)\((\{.*?\}|\[.*?\])(?:, \{"\w+":[^{}]*\})?\);\s*$', re.M
)
CLUSTER_DATA = re.compile(r"var data = (\[.*\]);\s*$", re.M)
LAYER_NAMES = re.compile(r'^\s*"([^"\n]+)" : (?:js_layer|fast_marker_cluster|heat_map)_[0-9a-f]+,?\s*$', re.M)
ASSET_REFS = re.compile(
    r"""<script[^>]*\bsrc=["']([^"']+)|<link[^>]*\bhref=["']([^"']+)|<img[^>]*\bsrc=["']([^"']+)"""
    r"""|url\(\s*["']?([^"')]+)|@import\s+["']([^"']+)|L\.tileLayer\(\s*["']([^"']+)"""
)


CONTROL = re.compile(r'MangroveMaps\.control\(\w+, "\w+", (".*"), "[\w-]*"\);\s*$', re.M)


def controls(html: str) -> list[str]:
    """The HTML of every box drawn on the map (title, legend, filter form)."""
    return [json.loads(m.group(1).replace("<\\/", "</")) for m in CONTROL.finditer(html)]


def layers(html: str) -> list[tuple[str, object]]:
    """(builder, data) of every layer built by MangroveMaps, in page order."""
    return [(m.group(1), json.loads(m.group(2).replace("<\\/", "</"))) for m in BUILDER.finditer(html)]


def layer(html: str, builder: str, index: int = 0):
    return [data for name, data in layers(html) if name == builder][index]


def incident_rows(html: str) -> list[list]:
    found = CLUSTER_DATA.findall(html)
    return json.loads(found[0]) if found else []


def layer_names(html: str) -> list[str]:
    return [json.loads(f'"{name}"') for name in LAYER_NAMES.findall(html)]


def asset_references(html: str) -> list[str]:
    return [next(g for g in m.groups() if g) for m in ASSET_REFS.finditer(html)]


def external(refs: list[str]) -> list[str]:
    return [r for r in refs if re.match(r"^(https?:)?//", r.strip(), re.I)]


def sign_in(client, username: str) -> None:
    """Sign in as one of the demo users (their password is the demo's)."""
    from patrol.demo import DEMO_PASSWORD
    from utils.factories import sign_in as sign_in_with

    sign_in_with(client, username, DEMO_PASSWORD)
