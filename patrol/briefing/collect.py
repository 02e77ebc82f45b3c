"""What a briefing shows, gathered once: :class:`Briefing`, built by :func:`collect_briefing` for a
side, town or station and a China-time month from the analysis functions (``patrol.analysis``).

Visibility is theirs: every function takes the principal and applies the same rules as the JSON
API (``analysis_scope`` refuses a side, town or station the caller may not analyse;
``incidents_frame`` filters incidents like the incident list). Nothing here filters again.

The previous month's totals come from the same functions for the same scope, so the summary's
month-on-month changes compare like with like. A month without patrols and incidents gives a
briefing whose ``empty`` is true: the page then says so instead of drawing empty charts.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from patrol.effort import LOCAL_TIME
from patrol.errors import DomainError, InvalidRequest

log = logging.getLogger("mangrove.briefing")
# How a scope is named in a title: the side's official name rather than "广东·廉江".
SIDE_TITLES = {"GD-LJ": ("廉江市", "Lianjiang"), "GX-HP": ("合浦县", "Hepu")}
MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August",
               "September", "October", "November", "December")  # fmt: skip
PRIORITY_COUNT = 10
MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
RECURRING_LOOKBACK_DAYS = 183  # half a year to the month's end
RECURRING_COUNT = 15
ALL_CATEGORIES = "all"  # the rates report's row summing a grid's categories
# The assessment's columns shown in the briefing, with their headings.
ASSESSMENT_COLUMNS = {
    "rank": "名次 Rank",
    "name_zh": "队伍 Team",
    "patrols": "巡护次数 Patrols",
    "patrol_days": "巡护天数 Days",
    "km": "里程 km",
    "hours": "时长 h",
    "grids_meeting_quota": "达标网格 Grids at quota",
    "grids_assigned": "负责网格 Grids",
    "quota_compliance": "达标率 Quota met",
    "incidents_found": "发现事件 Incidents found",
    "on_time_response_rate": "按时响应率 On-time response",
    "resolution_rate": "办结率 Resolution rate",
}


@dataclass
class Totals:
    """A month's headline numbers for the scope."""

    patrols: int = 0
    km: float = 0.0
    hours: float = 0.0
    incidents: int = 0
    on_time_response_rate: float | None = None  # None: no answer was due

    @property
    def has_data(self) -> bool:
        return bool(self.patrols or self.incidents)


@dataclass
class Briefing:
    month: str  # YYYY-MM, China time
    scope_zh: str  # e.g. 廉江市, 高桥镇, 高桥管理站
    scope_en: str
    generated_at: datetime
    totals: Totals
    previous: Totals
    previous_month: str
    # EPSG:32649 metres: code, name_zh, area_ha, patrols, km, hours, km_per_ha, geometry
    grids: Any = None
    # one row per incident: id, category, status, grid, x, y, reported_at, closed_at …
    incidents: Any = None
    # significant hot/cold spot cells: kind ("hot"/"cold"), significant, geometry (metres)
    hotspots: Any = None
    # one row per week (Monday, China time) touching the month: week, km, patrols
    weekly: Any = None
    # per grid: grid, incidents, km, hours, per_10km (+ _low/_high), per_100h (+ _low/_high), too_little
    rates: list[dict] = field(default_factory=list)
    unpatrolled: list[dict] = field(default_factory=list)  # code, name_zh, last_patrolled
    recurring: list[dict] = field(default_factory=list)  # grid, category, months, count
    priorities: list[dict] = field(default_factory=list)  # grid, score, reasons
    assessment: list[dict] | None = None  # one row per team (考核); None: not available
    categories: dict[str, tuple[str, str]] = field(default_factory=dict)  # code → (zh, en)
    notes: list[str] = field(default_factory=list)  # what could not be shown, and why
    confidence: float = 0.95
    recurring_distance_m: float = 200.0
    min_effort_km: float = 5.0  # below these a rate is flagged "too little effort"
    min_effort_hours: float = 5.0
    partial_until: datetime | None = None  # the month is not over: the data runs to this instant

    @property
    def empty(self) -> bool:
        return not self.totals.has_data

    def category_label(self, code: str) -> str:
        zh, en = self.categories.get(code, (code, ""))
        return f"{zh} {en}".strip()

    @property
    def month_zh(self) -> str:
        year, number = self.month.split("-")
        return f"{year}年{int(number)}月"

    @property
    def month_en(self) -> str:
        year, number = self.month.split("-")
        return f"{MONTH_NAMES[int(number) - 1]} {year}"

    @property
    def previous_month_zh(self) -> str:
        year, number = self.previous_month.split("-")
        return f"{year}年{int(number)}月"

    @property
    def title_zh(self) -> str:
        return f"{self.scope_zh} {self.month_zh} 红树林巡护工作简报"

    @property
    def title_en(self) -> str:
        return f"{self.scope_en} mangrove patrol briefing, {self.month_en}"


def check_month(month) -> str:
    """``YYYY-MM`` with a real month of a year this service handles; the refusal names ``month``."""
    text = month.strip() if isinstance(month, str) else ""
    match = MONTH.fullmatch(text)
    if not match or not 1 <= int(match[2]) <= 12 or not 1900 <= int(match[1]) <= 2200:
        raise InvalidRequest(
            f"month {month!r} is not a calendar month: write YYYY-MM, e.g. 2026-11", field="month"
        )
    return text


# --- summary text --------------------------------------------------------------------------------


def _change(now: float, before: float) -> tuple[str, str] | None:
    """(Chinese, English) wording of the relative change; None when there is nothing to compare."""
    if not before:
        return None
    ratio = (now - before) / before
    pct = round(abs(ratio) * 100)
    if pct == 0:
        return "与上月持平", "about the same as last month"
    if ratio > 0:
        return f"比上月增加 {pct}%", f"up {pct}% on last month"
    return f"比上月减少 {pct}%", f"down {pct}% on last month"


def summary_lines(b: Briefing) -> list[tuple[str, str]]:
    """The generated summary: one (Chinese, English) sentence per headline number, with the change
    from the previous month, honest when that month has no data to compare with."""
    t, p = b.totals, b.previous
    if b.empty:
        return [(
            f"{b.month_zh}在本范围内没有巡护记录，也没有事件报告，本简报无数据可展示。",
            f"No patrol was recorded and no incident reported in this scope in {b.month_en}: "
            "there is nothing to show.",
        )]  # fmt: skip
    lines = []
    if b.partial_until is not None:
        day = b.partial_until.astimezone(LOCAL_TIME)
        lines.append((
            f"本月尚未结束，数据截至 {day.month}月{day.day}日，以下与上月全月比较。",
            f"The month is not over: the figures run to {day:%d %B}, compared with all of last month.",
        ))  # fmt: skip
    items = (
        ("巡护", " 次", "patrols", t.patrols, p.patrols, "{:.0f}"),
        ("巡护里程", " 公里", "km patrolled", t.km, p.km, "{:.1f}"),
        ("巡护时长", " 小时", "hours on patrol", t.hours, p.hours, "{:.1f}"),
        ("报告事件", " 起", "incidents reported", t.incidents, p.incidents, "{:.0f}"),
    )
    for zh, unit, en, now, before, fmt in items:
        value = fmt.format(now)
        change = _change(now, before)
        if change is not None:
            lines.append((f"{zh} {value}{unit}，{change[0]}。", f"{value} {en}, {change[1]}."))
        elif p.has_data:
            lines.append(
                (
                    f"{zh} {value}{unit}，上月为 0，无法计算变化。",
                    f"{value} {en}; none last month to compare with.",
                )
            )
        else:
            lines.append(
                (
                    f"{zh} {value}{unit}（上月无数据，无法比较）。",
                    f"{value} {en} (no data last month to compare with).",
                )
            )
    rate, before = t.on_time_response_rate, p.on_time_response_rate
    if rate is None:
        lines.append(
            (
                "本月没有到期需响应的事件，按时响应率不适用。",
                "No incident was due for an answer: no on-time response rate.",
            )
        )
    else:
        text_zh, text_en = f"按时响应率 {rate:.0%}", f"on-time response rate {rate:.0%}"
        if before is None:
            lines.append(
                (
                    f"{text_zh}（上月无可比数据）。",
                    f"{text_en.capitalize()} (nothing to compare with last month).",
                )
            )
        else:
            points = round((rate - before) * 100)
            if points == 0:
                lines.append((f"{text_zh}，与上月持平。", f"{text_en.capitalize()}, the same as last month."))
            else:
                word_zh, word_en = ("提高", "up") if points > 0 else ("下降", "down")
                lines.append((
                    f"{text_zh}，比上月{word_zh} {abs(points)} 个百分点。",
                    f"{text_en.capitalize()}, {word_en} {abs(points)} percentage point{'s' if abs(points) != 1 else ''} on last month.",
                ))  # fmt: skip
    if b.unpatrolled:
        lines.append((
            f"{len(b.unpatrolled)} 个网格本月未巡护。",
            f"{len(b.unpatrolled)} grid{'s' if len(b.unpatrolled) != 1 else ''} not patrolled this month.",
        ))  # fmt: skip
    return lines


# --- assembling from the analysis functions ---------------------------------------------------


def totals_of(visits: pd.DataFrame, incidents: pd.DataFrame, now: datetime) -> Totals:
    """Headline numbers from the visits and the (already visible-only) incidents of a month. The
    on-time response rate follows ``patrol.incident_stats``: answered by the accept deadline /
    incidents whose answer is due (answered, or past the deadline)."""
    patrols = int(visits["patrol_id"].nunique()) if len(visits) else 0
    km = float(visits["distance_m"].sum()) / 1000 if len(visits) else 0.0
    hours = float(visits["duration_s"].fillna(0).sum()) / 3600 if len(visits) else 0.0
    rate = None
    if len(incidents):
        responded_at = pd.to_datetime(incidents["responded_at"], utc=True)
        due = pd.to_datetime(incidents["accept_due"], utc=True)
        responded = responded_at.notna()
        response_due = responded | (due < pd.Timestamp(now))
        on_time = responded & (responded_at <= due)
        if response_due.sum():
            rate = float(on_time.sum()) / float(response_due.sum())
    return Totals(patrols, round(km, 3), round(hours, 3), int(len(incidents)), rate)


def weekly_effort(visits: pd.DataFrame, start: datetime, end: datetime) -> pd.DataFrame:
    """Kilometres and patrols per week (weeks start on Monday, China time) touching the month;
    a visit counts in the week it began, a patrol in each week it visited."""
    first = start.astimezone(LOCAL_TIME).date()
    last = (end - timedelta(seconds=1)).astimezone(LOCAL_TIME).date()
    monday = first - timedelta(days=first.weekday())
    weeks = []
    while monday <= last:
        weeks.append(monday)
        monday += timedelta(days=7)
    frame = pd.DataFrame({"week": weeks, "km": 0.0, "patrols": 0})
    if len(visits) == 0:
        return frame
    local = pd.to_datetime(visits["entered_at"], utc=True).dt.tz_convert(LOCAL_TIME)
    days = local.dt.date
    week = [d - timedelta(days=d.weekday()) for d in days]
    grouped = pd.DataFrame({"week": week, "km": visits["distance_m"].to_numpy() / 1000,
                            "patrol_id": visits["patrol_id"].to_numpy()}).groupby("week")  # fmt: skip
    km = grouped["km"].sum()
    patrols = grouped["patrol_id"].nunique()
    frame["km"] = [float(km.get(w, 0.0)) for w in weeks]
    frame["patrols"] = [int(patrols.get(w, 0)) for w in weeks]
    return frame


def _rows(result) -> list[dict]:
    """A report's rows, whatever container it comes in: a list of dicts, a DataFrame, or a dict
    holding one of those (under ``rows``, ``grids``, ``items``, ``places``, ``features``)."""
    if result is None:
        return []
    if isinstance(result, pd.DataFrame):
        frame = result.drop(columns=[c for c in ("geometry",) if c in result.columns])
        return [dict(r) for r in frame.to_dict("records")]
    if isinstance(result, dict):
        for key in ("rows", "grids", "items", "places", "groups", "teams", "features", "cells"):
            if key in result:
                return _rows(result[key])
        return [result]
    rows = []
    for item in result:
        if isinstance(item, dict) and "properties" in item and item.get("type") == "Feature":
            rows.append(dict(item["properties"]))
        elif isinstance(item, dict):
            rows.append(dict(item))
        elif hasattr(item, "__dataclass_fields__"):
            rows.append({k: getattr(item, k) for k in item.__dataclass_fields__})
        else:
            rows.append(dict(item._asdict()) if hasattr(item, "_asdict") else {"value": item})
    return rows


def scope_names(session, scope) -> tuple[str, str]:
    from patrol.models import Side, Station, Town

    if scope.station:
        row = session.get(Station, scope.station)
        return row.name_zh, row.name_en
    if scope.town:
        row = session.get(Town, scope.town)
        return row.name_zh, row.name_en
    if scope.side:
        if scope.side in SIDE_TITLES:
            return SIDE_TITLES[scope.side]
        row = session.get(Side, scope.side)
        return row.name_zh, row.name_en
    return "廉江市与合浦县", "Lianjiang and Hepu"


def _month_data(session, principal, settings, scope):
    """The month's visits and the incidents ``principal`` may see (the totals come from these)."""
    from patrol.analysis.data import incidents_frame, visits_frame

    return visits_frame(session, scope), incidents_frame(session, principal, scope, settings)


def collect_briefing(
    session,
    principal,
    settings,
    *,
    month: str,
    side: str | None = None,
    town: str | None = None,
    station: str | None = None,
    now: datetime | None = None,
) -> Briefing:
    """The briefing of ``month`` (YYYY-MM, China time) for a side, town or station, as
    ``principal`` may see it. Bad input and scopes the caller may not see are refused by
    ``analysis_scope`` (InvalidRequest / PermissionDenied naming the parameter)."""
    from patrol.analysis.data import grids_frame
    from patrol.analysis.scope import analysis_scope, month_bounds, previous_month

    now = now or datetime.now(UTC)
    month = check_month(month)
    start, end = month_bounds(month)
    where = {"side": side, "town": town, "station": station}
    scope = analysis_scope(session, principal, settings, start=start, end=end, now=now, **where)
    before_month = previous_month(month.strip())
    p_start, p_end = month_bounds(before_month)
    before_scope = analysis_scope(session, principal, settings, start=p_start, end=p_end, now=now, **where)

    grids = grids_frame(session, scope)
    from patrol.analysis.data import effort_frame

    visits, incidents = _month_data(session, principal, settings, scope)
    effort = effort_frame(session, scope, settings)
    p_visits, p_incidents = _month_data(session, principal, settings, before_scope)
    grids = _with_effort(grids, effort)

    from patrol.incidents import list_categories

    categories = {
        c["code"]: (c["label_zh"], c["label_en"]) for c in list_categories(session, include_retired=True)
    }
    scope_zh, scope_en = scope_names(session, scope)
    b = Briefing(
        month=month.strip(),
        scope_zh=scope_zh,
        scope_en=scope_en,
        generated_at=now,
        totals=totals_of(visits, incidents, now),
        previous=totals_of(p_visits, p_incidents, now),
        previous_month=before_month,
        grids=grids,
        incidents=incidents,
        weekly=weekly_effort(visits, start, end),
        categories=categories,
        confidence=settings.analysis.confidence,
        recurring_distance_m=settings.analysis.recurring_distance_m,
        min_effort_km=settings.analysis.min_effort_km,
        min_effort_hours=settings.analysis.min_effort_hours,
        partial_until=now if now < end else None,
    )
    idle = [r for r in grids.itertuples() if not r.patrols]
    before = last_patrolled_before(session, [r.code for r in idle], scope.start)
    b.unpatrolled = [
        {"code": r.code, "name_zh": r.name_zh, "last_patrolled": before.get(r.code)} for r in idle
    ]
    if b.empty:
        return b
    _add_reports(b, session, principal, settings, scope, now, incidents=incidents, effort=effort)
    return b


def _with_effort(grids, effort):
    effort = effort.rename(columns={"code": "grid"}) if "grid" not in effort.columns else effort
    wanted = [c for c in ("grid", "patrols", "patrol_days", "km", "hours", "last_patrolled") if c in effort]
    merged = grids.merge(effort[wanted], how="left", left_on="code", right_on="grid").drop(columns=["grid"])
    for column in ("patrols", "patrol_days", "km", "hours"):
        if column in merged:
            merged[column] = merged[column].fillna(0)
    merged["patrols"] = merged["patrols"].astype(int)
    area = merged["area_ha"].replace(0, np.nan)
    merged["km_per_ha"] = (merged["km"] / area).fillna(0.0)
    return merged


def last_patrolled_before(session, codes: list[str], before: datetime) -> dict[str, str]:
    """{grid code: the China date of its last visit before ``before``} (grids never visited
    before are left out). Effort per grid is not personal data: everyone may see it."""
    from sqlalchemy import func, select

    from patrol.models import Grid, PatrolVisit

    if not codes:
        return {}
    rows = session.execute(
        select(Grid.code, func.max(PatrolVisit.entered_at))
        .join(PatrolVisit, PatrolVisit.grid_id == Grid.id)
        .where(Grid.code.in_(codes), PatrolVisit.entered_at < before)
        .group_by(Grid.code)
    ).all()
    out = {}
    for code, when in rows:
        if when is not None:
            when = pd.Timestamp(when)  # SQLite: naive UTC; PostgreSQL: aware
            when = when.tz_localize("UTC") if when.tzinfo is None else when
            out[code] = when.tz_convert(LOCAL_TIME).strftime("%Y-%m-%d")
    return out


def _add_reports(b: Briefing, session, principal, settings, scope, now, *, incidents, effort) -> None:
    """Rates, hot spots, recurring places, priorities and the assessment. One section that fails
    is logged and named in ``notes``; the rest of the briefing is still made."""
    from patrol.analysis.assessment import assessment
    from patrol.analysis.priorities import priorities_report
    from patrol.analysis.reports import hotspots_report, rates_report, recurring_report

    def section(label: str, build) -> None:
        try:
            with session.begin_nested():  # a failed query leaves the others a usable transaction
                build()
        except DomainError as exc:  # refused for this month (e.g. the assessment's age limit)
            b.notes.append(f"{label}: {exc.message}")
        except Exception as exc:  # noqa: BLE001 - one section must not take the briefing down
            log.exception("briefing %s %s: %s failed", b.month, b.scope_en, label)
            b.notes.append(f"{label}: 未能生成 could not be computed ({type(exc).__name__}).")

    def rates_section():
        # the month's frames, loaded once above: the reports do not load them again
        b.rates = rate_rows(
            rates_report(session, principal, settings, scope, incidents=incidents, effort=effort)
        )

    def hotspots_section():
        b.hotspots = hotspot_cells(hotspots_report(session, principal, settings, scope, incidents=incidents))

    def recurring_section():
        # A place recurs over months: look back half a year (within the analysis cap) to the
        # month's end, and list first the places that came back this month.
        days = min(RECURRING_LOOKBACK_DAYS, settings.analysis.max_period_days)
        lookback = replace(scope, start=scope.end - timedelta(days=days))
        rows = recurring_rows(recurring_report(session, principal, settings, lookback))
        for row in rows:
            row["this_month"] = b.month in row["months_list"]
        rows.sort(key=lambda r: (not r["this_month"], -(r["months_count"] or 0), -(r["count"] or 0)))
        b.recurring = rows[:RECURRING_COUNT]

    def priorities_section():
        # Ranked as at the month's last second (or now, for the month under way): the quota
        # shortfall is then the whole month's. (Exactly at the next month's first instant the
        # month-to-date effort would be an empty period.)
        as_of = min(scope.end - timedelta(seconds=1), now)
        b.priorities = priority_rows(
            priorities_report(session, principal, settings, scope, as_of=as_of, limit=PRIORITY_COUNT)
        )

    def assessment_section():
        rows = _rows(
            assessment(session, principal, settings, month=b.month, by="team", side=scope.side, now=now)
        )
        b.assessment = assessment_rows(session, rows, scope)

    section("遭遇率 Encounter rates", rates_section)
    section("热点 Hot spots", hotspots_section)
    section("反复发生地点 Recurring places", recurring_section)
    section("下月巡护重点 Priorities", priorities_section)
    section("队伍考核 Assessment", assessment_section)


def _number(value):
    if isinstance(value, dict):
        return value.get("rate", value.get("value"))
    return value


def rate_rows(result) -> list[dict]:
    """The encounter-rate report as flat rows: grid, incidents, km, hours, per_10km with its
    interval, per_100h with its interval, too_little."""
    rows = []
    for r in _rows(result):
        if r.get("category", ALL_CATEGORIES) != ALL_CATEGORIES:
            continue  # the table shows each grid's rate over all categories
        row = {
            "grid": r.get("grid") or r.get("code"),
            "incidents": r.get("incidents", r.get("count")),
            "km": r.get("km"),
            "hours": r.get("hours"),
        }
        for name in ("per_10km", "per_100h"):
            value = r.get(name)
            if isinstance(value, dict):
                row[name] = value.get("rate", value.get("value"))
                row[f"{name}_low"] = value.get("low", value.get("lower"))
                row[f"{name}_high"] = value.get("high", value.get("upper"))
            else:
                row[name] = value
                row[f"{name}_low"] = r.get(f"{name}_low", r.get(f"{name}_lower"))
                row[f"{name}_high"] = r.get(f"{name}_high", r.get(f"{name}_upper"))
        flag = r.get("too_little", r.get("too_little_effort", r.get("low_effort")))
        if flag is None and "flags" in r:
            flag = any("little" in str(f) for f in r["flags"] or ())
        row["too_little"] = bool(flag)
        rows.append(row)
    return rows


def hotspot_cells(result):
    """The hot-spot report's cells as a GeoDataFrame in EPSG:32649 (None: no cells)."""
    import geopandas as gpd

    cells = getattr(result, "cells", result)
    if isinstance(result, dict):
        cells = next((result[k] for k in ("cells", "features", "rows") if k in result), None)
    if cells is None:
        return None
    if isinstance(cells, gpd.GeoDataFrame):
        frame = cells
    elif (
        isinstance(cells, list) and cells and isinstance(cells[0], dict) and cells[0].get("type") == "Feature"
    ):
        frame = gpd.GeoDataFrame.from_features(cells, crs="EPSG:4326")
    elif isinstance(cells, list) and cells:
        frame = gpd.GeoDataFrame(cells, geometry="geometry", crs="EPSG:32649")
    else:
        return None
    if frame.crs is not None and frame.crs.to_epsg() != 32649:
        frame = frame.to_crs(32649)
    return frame


def priority_rows(result) -> list[dict]:
    rows = []
    for r in _rows(result):
        reasons = r.get("reasons") or r.get("reason") or []
        if isinstance(reasons, str):
            reasons = [reasons]
        reasons = [x if isinstance(x, str) else (x.get("text") or x.get("message") or str(x)) if isinstance(x, dict) else str(x)
                   for x in reasons]  # fmt: skip
        rows.append({"grid": r.get("grid") or r.get("code"), "score": _number(r.get("score")), "reasons": reasons,
                     "name_zh": r.get("name_zh")})  # fmt: skip
    rows.sort(key=lambda r: -(r["score"] or 0))
    return rows[:PRIORITY_COUNT]


def recurring_rows(result) -> list[dict]:
    """Recurring places as flat rows: grid, category, months_count, count, months_seen (text)."""
    rows = []
    for r in _rows(result):
        months = r.get("months")
        months_list = list(months) if isinstance(months, (list, tuple)) else None
        count = r.get("count", r.get("incidents"))
        if isinstance(count, (list, tuple)):
            count = len(count)
        rows.append({
            "grid": r.get("grid") or r.get("code") or ", ".join(r.get("grids") or ()),
            "category": r.get("category"),
            "months_count": r.get("months_count", r.get("n_months", len(months_list) if months_list else months)),
            "count": count,
            "months_seen": ", ".join(str(m) for m in months_list) if months_list else "",
            "months_list": [str(m) for m in months_list or ()],
        })  # fmt: skip
    return rows


def assessment_rows(session, rows: list[dict], scope) -> list[dict]:
    """The teams of the scope (its station, or the teams of its town), with the shown columns."""
    from sqlalchemy import select

    from patrol.models import Team

    if scope.station:
        rows = [r for r in rows if r.get("station") == scope.station]
    elif scope.town:
        codes = set(session.scalars(select(Team.code).where(Team.town == scope.town)))
        rows = [r for r in rows if r.get("team") in codes]
    shown = []
    for r in rows:
        row = {}
        for key, label in ASSESSMENT_COLUMNS.items():
            if key in r:
                value = r[key]
                if key.endswith("_rate") or key == "quota_compliance":
                    value = None if value is None else f"{value:.0%}"
                row[label] = value
        shown.append(row)
    return shown
