"""Which grids to patrol in the coming week, ranked by a stated score that explains itself.

score = 100 × (0.25·recent + 0.15·rate + 0.15·hot + 0.25·unpatrolled + 0.20·shortfall), each part
in [0, 1]:

- recent: incidents observed in the grid in the last 30 days, 5 or more counting fully;
- rate: the lower 95 % bound of the grid's encounter rate (incidents per 10 km) over the last 90
  days, relative to the highest such bound among the ranked grids (a lower bound, so that a rate
  built on a few metres of track does not outrank a well-measured one);
- hot: significant Gi* hot-spot cells (90 days) whose centre is in the grid, 3 or more fully;
- unpatrolled: days since the grid was last patrolled, 30 days or never counting fully;
- shortfall: how far the grid is behind its monthly quota (patrols and km, the mean of the two)
  over the last 30 days — a rolling window, so a grid is neither behind on the first of the month
  nor safe for a month after one busy week.

Risk (recent, rate, hot) and effort deficit (unpatrolled, shortfall) weigh half each. Every row
lists the parts that contributed, in words, so a manager can see why a grid is on top.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from patrol.accounts import Principal
from patrol.analysis import data, quotas, reports
from patrol.analysis.scope import Scope
from patrol.settings import Settings

WEIGHTS = {"recent": 0.25, "rate": 0.15, "hot": 0.15, "unpatrolled": 0.25, "shortfall": 0.20}
RECENT_DAYS = 30
QUOTA_DAYS = 30  # a month's quota is compared with the last 30 days
RISK_DAYS = 90
FULL_RECENT = 5
FULL_HOT = 3
FULL_UNPATROLLED_DAYS = 30


def priorities_report(
    session: Session,
    principal: Principal,
    settings: Settings,
    scope: Scope,
    *,
    as_of: datetime | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Grids of ``scope``'s area ranked for the week after ``as_of`` (default now); the scope's
    period is not used: the windows are fixed and stated in the module docstring."""
    as_of = as_of or datetime.now(UTC)
    risk_scope = replace(scope, start=as_of - timedelta(days=RISK_DAYS), end=as_of, categories=())
    grids = data.grids_frame(session, risk_scope)
    codes = grids.code.tolist()
    if not codes:
        return pd.DataFrame(columns=["rank", "grid", "score", "reasons"])

    incidents = data.incidents_frame(session, principal, risk_scope, settings)
    recent = incidents[incidents.observed_at >= pd.Timestamp(as_of - timedelta(days=RECENT_DAYS))]
    recent_n = recent.groupby("grid").size().reindex(codes, fill_value=0)

    effort = data.effort_frame(session, risk_scope, settings)
    table = reports.rates_report(session, principal, settings, risk_scope, incidents=incidents, effort=effort)
    overall = table[table.category == "all"].set_index("grid").reindex(codes)
    rate_low = overall["per_10km_low"].astype(float).fillna(0.0)

    spots = reports.hotspots_report(session, principal, settings, risk_scope, incidents=incidents)
    hot_cells = spots.cells[spots.cells["kind"] == "hot"].groupby("grid").size().reindex(codes, fill_value=0)

    effort = effort.set_index("grid").reindex(codes)
    last = effort["last_patrolled"]
    days_since = ((pd.Timestamp(as_of) - last).dt.total_seconds() / 86400).to_numpy(dtype=float)

    window = replace(risk_scope, start=as_of - timedelta(days=QUOTA_DAYS), end=as_of)
    recent_effort = data.effort_frame(session, window, settings).set_index("grid").reindex(codes)
    quota = quotas.effective_quotas(session, settings, codes).set_index("code").reindex(codes)
    due_patrols = quota["patrols_per_month"].to_numpy(dtype=float)
    due_km = quota["km_per_month"].to_numpy(dtype=float)
    done_patrols = recent_effort["patrols"].fillna(0).to_numpy(dtype=float)
    done_km = recent_effort["km"].fillna(0).to_numpy(dtype=float)

    parts = pd.DataFrame(index=pd.Index(codes, name="grid"))
    parts["recent"] = np.minimum(recent_n.to_numpy() / FULL_RECENT, 1.0)
    top_rate = rate_low.max()
    parts["rate"] = (rate_low / top_rate).to_numpy() if top_rate > 0 else 0.0
    parts["hot"] = np.minimum(hot_cells.to_numpy() / FULL_HOT, 1.0)
    parts["unpatrolled"] = np.where(np.isnan(days_since), 1.0,
                                    np.minimum(np.nan_to_num(days_since) / FULL_UNPATROLLED_DAYS, 1.0))  # fmt: skip
    parts["shortfall"] = (_shortfall(done_patrols, due_patrols) + _shortfall(done_km, due_km)) / 2
    score = 100 * sum(parts[k] * w for k, w in WEIGHTS.items())

    out = pd.DataFrame(
        {
            "grid": codes,
            "name_zh": grids.name_zh.to_numpy(),
            "town": grids.town.to_numpy(),
            "team": grids.team.to_numpy(),
            "score": np.round(score.to_numpy(), 1),
            "recent_incidents": recent_n.to_numpy(),
            "rate_per_10km_low": np.round(rate_low.to_numpy(), 3),
            "hot_cells": hot_cells.to_numpy(),
            "days_since_patrol": np.round(days_since, 1),
            "patrols_30_days": done_patrols.astype(int),
            "km_30_days": np.round(done_km, 1),
            "quota_patrols": quota["patrols_per_month"].to_numpy(),
            "quota_km": quota["km_per_month"].to_numpy(),
        }
    )
    for key in WEIGHTS:
        out[f"part_{key}"] = np.round(parts[key].to_numpy() * WEIGHTS[key] * 100, 1)
    out["reasons"] = [_reasons(row) for row in out.to_dict("records")]
    out = out.sort_values(["score", "days_since_patrol", "grid"], ascending=[False, False, True],
                          na_position="first", kind="stable").reset_index(drop=True)  # fmt: skip
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out.head(limit) if limit else out


def _shortfall(done: np.ndarray, due: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        behind = np.where(due > 0, (due - done) / due, 0.0)
    return np.clip(behind, 0.0, 1.0)


def _reasons(row: dict) -> list[str]:
    """The parts that moved the score, largest first, in words (Chinese, then English)."""
    said = []
    n = row["recent_incidents"]
    if n:
        said.append(
            (
                row["part_recent"],
                f"近{RECENT_DAYS}天 {n} 起事件 {n} incident(s) in the last {RECENT_DAYS} days",
            )
        )
    rate = row["rate_per_10km_low"]
    if rate > 0:
        said.append((row["part_rate"], f"遇见率至少 {rate:.2f} 起/10公里 encounter rate at least {rate:.2f} per "
                                       f"10 km (95 % lower bound, {RISK_DAYS} days)"))  # fmt: skip
    hot = row["hot_cells"]
    if hot:
        said.append((row["part_hot"], f"{hot} 个热点单元 {hot} hot-spot cell(s) (Gi*, {RISK_DAYS} days)"))
    days = row["days_since_patrol"]
    if np.isnan(days):
        said.append(
            (row["part_unpatrolled"], f"{RISK_DAYS}天内未巡护 not patrolled in the last {RISK_DAYS} days")
        )
    elif days >= 1:
        said.append((row["part_unpatrolled"], f"{days:.0f} 天前最后巡护 last patrolled {days:.0f} days ago"))
    if row["part_shortfall"] > 0:
        p, qp, km, qkm = row["patrols_30_days"], row["quota_patrols"], row["km_30_days"], row["quota_km"]
        said.append((row["part_shortfall"],
                     f"未达配额：近{QUOTA_DAYS}天 {p}/{qp} 次、{km:.1f}/{qkm:g} 公里 behind quota: {p} of {qp} "
                     f"patrols and {km:.1f} of {qkm:g} km in the last {QUOTA_DAYS} days"))  # fmt: skip
    return [text for weight, text in sorted(said, key=lambda p: -p[0]) if weight > 0]
