"""Colours and symbols a person must read on the maps: text on markers and panels reaches WCAG AA
(4.5:1), and no symbol is one that Debian's fonts lack (it would show as an empty box)."""

import re
from pathlib import Path

import pytest

from maps.base import SIDE_COLORS, STATUS_COLORS, contrast, ink

STATIC = Path(__file__).resolve().parents[2] / "maps" / "static"
CSS = (STATIC / "mangrove-maps.css").read_text(encoding="utf-8")


def test_the_contrast_ratio_is_computed_as_wcag_defines_it():
    assert contrast("#ffffff", "#000000") == pytest.approx(21)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert contrast("#f39c12", "#ffffff") < 2.5  # the white-on-amber markers that were hard to read


@pytest.mark.parametrize("color", sorted(set(STATUS_COLORS.values()) | set(SIDE_COLORS.values())))
def test_a_markers_symbol_reads_on_its_fill(color):
    assert contrast(ink(color), color) >= 4.5


def css_color(selector: str, prop: str) -> str:
    rule = re.search(re.escape(selector) + r"\s*\{([^}]*)\}", CSS).group(1)
    return re.search(prop + r":\s*(#[0-9a-fA-F]{6})", rule).group(1)


@pytest.mark.parametrize("cluster", ["late", "open", "done"])
def test_cluster_counts_read_white_on_their_colour(cluster):
    assert contrast("#ffffff", css_color(f".mp-cluster-{cluster} div", "background")) >= 4.5


def test_panel_and_joint_case_text_reaches_aa():
    assert contrast(css_color(".mp-muted", "color"), "#ffffff") >= 4.5
    assert contrast(css_color(".mp-case", "color"), css_color(".mp-case", "background")) >= 4.5


# Symbols a Debian station's fonts (DejaVu, Noto CJK) do not all carry: media controls such as ⏸,
# pictographs and emoji. Shapes are drawn with CSS instead.
MISSING = re.compile("[\u23e9-\u23fa\u2b50\u2b55\U0001f000-\U0001faff\ufe0f]")


def test_no_map_shows_a_symbol_the_stations_fonts_lack():
    sources = [*STATIC.glob("*.js"), *STATIC.glob("*.css"), *(STATIC.parent).glob("*.py")]
    found = {p.name: MISSING.findall(p.read_text(encoding="utf-8")) for p in sources}
    assert {name: chars for name, chars in found.items() if chars} == {}
