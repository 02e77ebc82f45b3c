"""The briefing as HTML and PDF from hand-made briefings (no database): what the reader must find
in it, the "nothing to show" month, and nothing fetched from the network. Each PDF's pages are
saved as PNG under test-artifacts/briefing/ (or $MANGROVE_TEST_ARTIFACTS/briefing/) to look at."""

from __future__ import annotations

import re

from utils.briefing import empty_briefing, pdf_pages_png, pdf_text, scene_briefing
from utils.browser import ARTIFACTS

from patrol.briefing.collect import Totals, summary_lines
from patrol.briefing.render import render_html, to_pdf

SHOTS = ARTIFACTS / "briefing"


def squash(text: str) -> str:
    """Text with the spaces and line breaks of a PDF's layout removed."""
    return re.sub(r"\s+", "", text)


def test_the_pdf_and_the_page_hold_the_month_the_grids_and_the_rates(tmp_path):
    b = scene_briefing()
    html = render_html(b)
    pdf = to_pdf(html)
    assert pdf.startswith(b"%PDF-")
    text = pdf_text(pdf, tmp_path)
    flat = squash(text)
    for where, content in (("pdf", flat), ("html", squash(re.sub(r"<[^>]+>", " ", html)))):
        assert "廉江市2026年11月红树林巡护工作简报" in content, where
        assert "November2026" in content, where
        for code in ("T-01", "T-02", "T-03"):
            assert code in content, (where, code)
        # T-01's rate per 10 km with its interval, and T-03's per 100 h, flagged.
        assert "0.25" in content and "0.03–0.90" in content, where
        assert "50.00" in content and "6.06–180.60" in content, where
        assert "巡护不足" in content, where
        assert "巡护15次，比上月增加25%" in content, where  # 15 against 12
        assert "按时响应率75%，比上月下降5个百分点" in content, where
        assert "本月未巡护" in content and "T-02" in content, where
        assert "热点" in content or "hotspot" in content.lower(), where
        assert "LJ-T-GQ" in content, where  # the assessment
    assert "第 1 页 / 共" in text  # page numbers
    assert len(pdf_pages_png(pdf, SHOTS, "scene")) >= 2


def test_the_page_fetches_nothing(tmp_path):
    html = render_html(scene_briefing())
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html)
    assert "@import" not in html and "url(http" not in html
    assert html.count('src="data:image/png;base64,') == 4  # the map and three charts
    assert "WenQuanYi Zen Hei" in html


def test_a_month_without_data_is_an_honest_valid_pdf(tmp_path):
    b = empty_briefing()
    html = render_html(b)
    assert "Nothing to show" in html and "<img" not in html
    pdf = to_pdf(html)
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    text = squash(pdf_text(pdf, tmp_path))
    assert "廉江市2026年11月红树林巡护工作简报" in text
    assert "本月无数据可展示" in text and "Nothingtoshow" in text
    pdf_pages_png(pdf, SHOTS, "empty")


def test_the_summary_is_honest_when_last_month_has_no_data():
    b = scene_briefing(previous=Totals())
    zh = " ".join(line[0] for line in summary_lines(b))
    en = " ".join(line[1] for line in summary_lines(b))
    assert "上月无数据" in zh and "%" not in zh.replace("75%", "")
    assert "no data last month" in en
    b = scene_briefing(
        previous=Totals(patrols=15, km=86.0, hours=44.0, incidents=4, on_time_response_rate=0.75)
    )
    assert "与上月持平" in " ".join(line[0] for line in summary_lines(b))
    b = scene_briefing(
        previous=Totals(patrols=30, km=86.0, hours=44.0, incidents=4, on_time_response_rate=None)
    )
    lines = summary_lines(b)
    assert "比上月减少 50%" in lines[0][0] and "down 50%" in lines[0][1]
    assert any("上月无可比数据" in zh for zh, _ in lines)


def test_a_month_under_way_says_so_before_comparing():
    from datetime import UTC, datetime

    b = scene_briefing(partial_until=datetime(2026, 11, 12, 3, 0, tzinfo=UTC))
    zh, en = summary_lines(b)[0]
    assert "本月尚未结束" in zh and "11月12日" in zh and "12 November" in en
    assert "尚未结束" not in " ".join(line[0] for line in summary_lines(scene_briefing()))


def test_making_a_pdf_leaves_truncated_photos_refused(tmp_path):
    """Importing WeasyPrint sets Pillow's process-wide LOAD_TRUNCATED_IMAGES; after a briefing has
    been printed a truncated incident photo must still be refused, not padded with grey."""
    import io

    import pytest
    from PIL import Image, ImageFile

    from patrol.briefing.render import to_pdf
    from patrol.photos import PhotoRejected, clean_image
    from patrol.settings import IncidentSettings

    assert to_pdf("<p>简报 briefing</p>").startswith(b"%PDF")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    photo = io.BytesIO()
    Image.new("RGB", (200, 200), "green").save(photo, "JPEG")
    with pytest.raises(PhotoRejected, match="truncated"):
        clean_image(photo.getvalue()[: len(photo.getvalue()) // 2], IncidentSettings())
