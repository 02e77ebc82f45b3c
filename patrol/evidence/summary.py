"""The case summary of an evidence package: one HTML page (jinja2, Chinese with English) and the
same page printed to PDF by the briefing's WeasyPrint helper, in its CJK font."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from jinja2 import Environment, FileSystemLoader, select_autoescape

from patrol.effort import LOCAL_TIME
from patrol.joint import MECHANISMS

if TYPE_CHECKING:
    from patrol.evidence.package import CaseEvidence

TEMPLATES = Path(__file__).parent / "templates"
_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))


def _china(value: str | datetime | None) -> str:
    """An ISO instant (as the API writes them) in China time, to the minute."""
    if not value:
        return "–"
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.astimezone(LOCAL_TIME).strftime("%Y-%m-%d %H:%M")


_env.filters["china"] = _china


def render_summary(evidence: CaseEvidence) -> tuple[str, bytes]:
    """(HTML page, PDF) of the case."""
    from patrol.briefing.figures import CJK_FAMILY
    from patrol.briefing.render import to_pdf

    labels = evidence.map_data.labels
    case = evidence.case
    sides = {}
    for person in case["participants"]:
        sides.setdefault(person["side"], []).append(person)
    html = _env.get_template("summary.html").render(
        case=case,
        sides=sorted(sides.items()),
        incidents=evidence.incidents,
        photos=evidence.photos,
        labels=labels,
        mechanisms=MECHANISMS,
        generated_at=evidence.generated_at,
        generated_by=evidence.generated_by,
        font=CJK_FAMILY,
    )
    return html, to_pdf(html)
