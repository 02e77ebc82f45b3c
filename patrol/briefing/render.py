"""The briefing as one self-contained HTML page (jinja2) and as a PDF (WeasyPrint).

The page carries everything it shows: its stylesheet inline, the map and charts as PNG data URIs,
the font by family name (WenQuanYi Zen Hei, installed locally). The PDF is that page printed on
A4 with page numbers; WeasyPrint is given a URL fetcher that reads nothing but data URIs, so a
briefing never reaches the network.
"""

from __future__ import annotations

import base64
import math
from datetime import datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from patrol.briefing import figures
from patrol.briefing.collect import Briefing, summary_lines
from patrol.effort import LOCAL_TIME

TEMPLATES = Path(__file__).parent / "templates"
_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))


def _num(value, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "是 yes" if value else ""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _pct(value) -> str:
    return "–" if value is None else f"{value:.0%}"


def _china(value: datetime) -> str:
    return value.astimezone(LOCAL_TIME).strftime("%Y-%m-%d %H:%M")


_env.filters["num"] = _num
_env.filters["pct"] = _pct
_env.filters["china"] = _china


def data_uri(png: bytes | None) -> str | None:
    return None if png is None else "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def assessment_columns(rows: list[dict]) -> list[str]:
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns and not isinstance(row[key], (dict, list)):
                columns.append(key)
    return columns


def render_html(briefing: Briefing, *, pdf_link: str | None = None, images: dict | None = None) -> str:
    """The briefing page. ``images``: figures already drawn (name → PNG bytes), else drawn here."""
    if images is None:
        images = {} if briefing.empty else figures.all_figures(briefing)
    figures.setup_fonts()
    return _env.get_template("briefing.html").render(
        b=briefing,
        summary=summary_lines(briefing),
        images={name: data_uri(png) for name, png in images.items()},
        font=figures.CJK_FAMILY,
        pdf_link=pdf_link,
        assessment_columns=assessment_columns(briefing.assessment or []),
        confidence_pct=round(briefing.confidence * 100),
    )


def _weasyprint():
    """WeasyPrint's HTML and URLFetcher. Importing WeasyPrint sets Pillow's process-wide
    ``ImageFile.LOAD_TRUNCATED_IMAGES``, which would let truncated incident photos through
    (``patrol.photos``, padded with grey): the flag is put back as it was. The briefing feeds
    WeasyPrint only its own complete PNGs, so it needs no such leniency."""
    from PIL import ImageFile

    before = ImageFile.LOAD_TRUNCATED_IMAGES
    try:
        from weasyprint import HTML
        from weasyprint.urls import URLFetcher
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = before
    return HTML, URLFetcher


def to_pdf(html: str) -> bytes:
    """The page printed to PDF on A4 (the page's print stylesheet), nothing fetched."""
    HTML, URLFetcher = _weasyprint()  # noqa: N806 (classes)

    # Data URIs only: everything a briefing shows is inline, nothing is fetched from elsewhere.
    fetcher = URLFetcher(allowed_protocols={"data"}, allow_redirects=False)
    return HTML(string=html, url_fetcher=fetcher, base_url=None).write_pdf()
