"""Per-grid patrol quotas (admins set them) and the monthly assessment (考核) of teams and members,
as JSON, CSV or XLSX."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import AdminOnly, NowDep, SessionDep, SettingsDep, SignedIn
from api.openapi import CSV, content
from api.tables import XLSX, to_csv, to_xlsx
from patrol.analysis.assessment import RANKING, assessment
from patrol.analysis.quotas import clear_quota, effective_quotas, quota_records, set_quota

router = APIRouter(prefix="/api/v1", tags=["assessment"])


class QuotaIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patrols_per_month: float = Field(description="patrols a month, a whole number from 0 to 1000")
    km_per_month: float = Field(description="kilometres a month, from 0 to 100,000 (not both 0)")


def _quotas_body(session, settings) -> dict[str, Any]:
    return {
        "defaults": {
            "patrols_per_month": settings.analysis.quota_patrols_per_month,
            "km_per_month": settings.analysis.quota_km_per_month,
        },
        "grids": quota_records(effective_quotas(session, settings.analysis)),
    }


def _one_quota(session, settings, code: str) -> dict[str, Any]:
    return quota_records(effective_quotas(session, settings.analysis, [code], include_retired=True))[0]


@router.get("/quotas", summary="Every active grid's monthly patrol quota: its own or the default")
def quotas(session: SessionDep, settings: SettingsDep, _: SignedIn):
    return _quotas_body(session, settings)


@router.put("/grids/{code}/quota", summary="Set a grid's own monthly patrol quota (admin)")
def put_quota(code: str, body: QuotaIn, session: SessionDep, settings: SettingsDep, admin: AdminOnly):
    patrols = int(body.patrols_per_month) if body.patrols_per_month.is_integer() else body.patrols_per_month
    set_quota(session, admin, code, patrols, body.km_per_month)
    session.commit()
    return _one_quota(session, settings, code)


@router.delete("/grids/{code}/quota", summary="Clear a grid's own quota: back to the default (admin)")
def delete_quota(code: str, session: SessionDep, settings: SettingsDep, admin: AdminOnly):
    clear_quota(session, admin, code)
    session.commit()
    return _one_quota(session, settings, code)


# --- the assessment ---------------------------------------------------------------------------------

TEAM_COLUMNS = [
    ("rank", "排名 rank"), ("team", "队伍 team"), ("name_zh", "队名 name"), ("side", "辖区 side"),
    ("station", "站 station"), ("members", "队员 members"),
]  # fmt: skip
MEMBER_COLUMNS = [
    ("rank", "排名 rank"), ("username", "账号 username"), ("display_name", "姓名 name"),
    ("team", "队伍 team"), ("team_name_zh", "队名 team name"), ("side", "辖区 side"),
]  # fmt: skip
FIGURE_COLUMNS = [
    ("patrols", "巡护次数 patrols"), ("patrol_days", "巡护天数 patrol days"), ("km", "里程 km"),
    ("hours", "时长 hours"), ("grids_assigned", "责任网格 grids"),
    ("grids_meeting_quota", "达标网格 grids meeting quota"), ("quota_compliance", "达标率 quota compliance"),
    ("incidents_found", "发现问题 incidents found"), ("response_rate", "响应率 response rate"),
    ("on_time_response_rate", "按时响应率 on-time response"), ("resolution_rate", "办结率 resolution rate"),
    ("on_time_resolution_rate", "按时办结率 on-time resolution"),
    ("median_hours_to_resolve", "办结中位时长 median hours to close"),
]  # fmt: skip
GRID_COLUMNS = [
    ("grid", "网格 grid"), ("patrols", "巡护次数 patrols"), ("quota_patrols", "定额次数 quota patrols"),
    ("km", "里程 km"), ("quota_km", "定额里程 quota km"), ("quota_source", "定额来源 quota source"),
    ("met", "达标 met"),
]  # fmt: skip


def assessment_table(rows: list[dict[str, Any]], by: str) -> tuple[list[str], list[list[Any]]]:
    """The assessment as a header (Chinese and English) and rows: one per team or member."""
    columns = (TEAM_COLUMNS if by == "team" else MEMBER_COLUMNS) + FIGURE_COLUMNS
    return [label for _, label in columns], [[r.get(key) for key, _ in columns] for r in rows]


def grid_table(rows: list[dict[str, Any]], by: str) -> tuple[list[str], list[list[Any]]]:
    """The per-grid quota detail: one row per team (or member) and grid."""
    who = "team" if by == "team" else "username"
    header = ["队伍 team" if by == "team" else "账号 username"] + [label for _, label in GRID_COLUMNS]
    body = [[r[who]] + [g[key] for key, _ in GRID_COLUMNS] for r in rows for g in r["grids"]]
    return header, body


def notes_table(month: str, by: str, side: str | None) -> tuple[list[str], list[list[Any]]]:
    """What the workbook covers and how it is ranked, for its third sheet."""
    return ["项 item", "值 value"], [
        ["月份 month (China time)", month],
        ["按 by", by],
        ["辖区 side", side or "all the caller may see"],
        ["排名规则 ranking", RANKING[by]],
    ]


def assessment_workbook(rows: list[dict[str, Any]], month: str, by: str, side: str | None) -> bytes:
    """The assessment as XLSX: the table, the per-grid detail, and notes with the ranking rule."""
    return to_xlsx(
        [
            ("考核 assessment", *assessment_table(rows, by)),
            ("网格 grids", *grid_table(rows, by)),
            ("说明 notes", *notes_table(month, by, side)),
        ]
    )


def assessment_csv(rows: list[dict[str, Any]], by: str) -> str:
    """The assessment as CSV: the table, with each row's grids summed up in its last cell."""
    header, body = assessment_table(rows, by)
    header.append("网格明细 grid detail")
    for line, row in zip(body, rows):
        line.append(grid_summary(row))
    return to_csv(header, body)


def grid_summary(row: dict[str, Any]) -> str:
    """The grids of one row as text for one CSV cell: ``LJ-GQ-01 3/8 12.1/20 km ✗; …``."""
    return "; ".join(
        f"{g['grid']} {g['patrols']}/{g['quota_patrols']} {g['km']:g}/{g['quota_km']:g} km {'✓' if g['met'] else '✗'}"
        for g in row["grids"]
    )


@router.get(
    "/assessment",
    summary="Monthly assessment (考核) of teams or members, ranked (JSON, CSV or XLSX)",
    responses={200: content("application/json", CSV, XLSX)},
)
def monthly_assessment(
    session: SessionDep,
    settings: SettingsDep,
    principal: SignedIn,
    now: NowDep,
    month: Annotated[str, Query(description="a China-time calendar month, YYYY-MM", max_length=16)],
    by: Literal["team", "member"] = "team",
    side: Annotated[str | None, Query(description="GD-LJ or GX-HP", max_length=16)] = None,
    format: Literal["json", "csv", "xlsx"] = "json",
):
    rows = assessment(session, principal, settings, month, by, side, now=now)
    name = f"assessment-{month}-{by}"
    if format == "csv":
        headers = {"Content-Disposition": f'attachment; filename="{name}.csv"', "X-Ranking": RANKING[by]}
        return Response(assessment_csv(rows, by), media_type="text/csv; charset=utf-8", headers=headers)
    if format == "xlsx":
        data = assessment_workbook(rows, month, by, side)
        headers = {"Content-Disposition": f'attachment; filename="{name}.xlsx"', "X-Ranking": RANKING[by]}
        return Response(data, media_type=XLSX, headers=headers)
    return {"month": month, "by": by, "side": side, "ranking": RANKING[by], "rows": rows}
