"""Incident statistics per grid, town, side or month, as a county appeals platform reports them.

For each group:
- ``count``; ``responded``: answered (accepted, rejected or marked duplicate);
- ``response_rate`` = responded / count;
- ``on_time_response_rate`` = answered by the accept deadline / incidents whose answer is due
  (answered already, or past the deadline) — an incident reported an hour ago is not late yet;
- ``resolution_rate`` = resolved (or closed) / actionable (not rejected, not duplicates);
- ``on_time_resolution_rate`` = resolved by the resolve deadline / actionable incidents whose
  resolution is due (resolved, or past the deadline);
- ``median_hours_to_accept`` and ``median_hours_to_resolve`` from the report;
- ``open_overdue``: open incidents past a deadline now.
Rates are None where their denominator is 0. Months are China Standard Time months of observation.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from patrol.accounts import Principal
from patrol.errors import InvalidRequest
from patrol.incidents import NOT_ACTIONABLE, OPEN, IncidentQuery, _filters
from patrol.models import Grid, Incident
from patrol.settings import IncidentSettings

GROUPS = ("grid", "town", "side", "month")


# The columns the handling rates are computed from (``handling_rates``).
HANDLING_COLUMNS = (
    Incident.status,
    Incident.reported_at,
    Incident.responded_at,
    Incident.accepted_at,
    Incident.resolved_at,
    Incident.accept_due,
    Incident.resolve_due,
)
_TIMES = ("reported_at", "responded_at", "accepted_at", "resolved_at", "accept_due", "resolve_due")


def incident_stats(
    session: Session,
    principal: Principal,
    q: IncidentQuery,
    settings: IncidentSettings,
    *,
    by: str = "grid",
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    if by not in GROUPS:
        raise InvalidRequest(f"unknown grouping {by!r}: use one of {', '.join(GROUPS)}")
    now = now or datetime.now(UTC)
    clauses = _filters(session, principal, q, settings, now)
    columns = [Grid.code.label("grid"), Incident.town, Incident.side, Incident.observed_at, *HANDLING_COLUMNS]
    rows = session.execute(
        select(*columns).outerjoin(Grid, Grid.id == Incident.grid_id).where(*clauses)
    ).all()
    frame = pd.DataFrame(rows, columns=[c.key for c in columns])
    if frame.empty:
        return []
    if by == "month":
        observed = pd.to_datetime(frame.observed_at, utc=True)
        frame["month"] = observed.dt.tz_convert("Asia/Shanghai").dt.strftime("%Y-%m")
    key = frame[by].fillna("(none)")
    out = [
        {by: None if group == "(none)" else group, **rates}
        for group, rates in handling_rates(frame, key, now).items()
    ]
    return sorted(out, key=lambda r: (r[by] is None, r[by] or ""))


def handling_rates(frame: pd.DataFrame, key: pd.Series, now: datetime) -> dict[Any, dict[str, Any]]:
    """The handling rates (see the module's docstring) of the incidents in ``frame`` (one row per
    incident, with the columns of ``HANDLING_COLUMNS``) grouped by ``key``: {group: rates}."""
    if frame.empty:
        return {}
    frame = frame.copy()
    for name in _TIMES:
        frame[name] = pd.to_datetime(frame[name], utc=True)
    now_ts = pd.Timestamp(now)
    responded = frame.responded_at.notna()
    response_due = responded | (frame.accept_due < now_ts)
    on_time_response = responded & (frame.responded_at <= frame.accept_due)
    actionable = ~frame.status.isin(NOT_ACTIONABLE)
    resolved = actionable & frame.resolved_at.notna()
    resolution_due = actionable & (resolved | (frame.resolve_due < now_ts))
    on_time_resolution = resolved & (frame.resolved_at <= frame.resolve_due)
    open_ = frame.status.isin(OPEN)
    overdue = open_ & (
        ((frame.status == "reported") & (frame.accept_due < now_ts)) | (frame.resolve_due < now_ts)
    )
    hours_to_accept = (frame.accepted_at - frame.reported_at).dt.total_seconds() / 3600
    hours_to_resolve = (frame.resolved_at - frame.reported_at).dt.total_seconds() / 3600
    parts = pd.DataFrame(
        {
            "key": key.to_numpy(),
            "count": 1,
            "responded": responded.to_numpy(),
            "response_due": response_due.to_numpy(),
            "on_time_response": on_time_response.to_numpy(),
            "actionable": actionable.to_numpy(),
            "resolved": resolved.to_numpy(),
            "resolution_due": resolution_due.to_numpy(),
            "on_time_resolution": on_time_resolution.to_numpy(),
            "open_overdue": overdue.to_numpy(),
            "hours_to_accept": hours_to_accept.to_numpy(),
            "hours_to_resolve": hours_to_resolve.where(resolved).to_numpy(),
        }
    )
    sums = parts.drop(columns=["hours_to_accept", "hours_to_resolve"]).groupby("key").sum()
    medians = parts.groupby("key")[["hours_to_accept", "hours_to_resolve"]].median()
    out = {}
    for group, s in sums.iterrows():
        out[group] = {
            "count": int(s["count"]),
            "responded": int(s.responded),
            "response_rate": _rate(s.responded, s["count"]),
            "on_time_response_rate": _rate(s.on_time_response, s.response_due),
            "resolved": int(s.resolved),
            "resolution_rate": _rate(s.resolved, s.actionable),
            "on_time_resolution_rate": _rate(s.on_time_resolution, s.resolution_due),
            "median_hours_to_accept": _hours(medians.loc[group, "hours_to_accept"]),
            "median_hours_to_resolve": _hours(medians.loc[group, "hours_to_resolve"]),
            "open_overdue": int(s.open_overdue),
        }
    return out


def _rate(numerator, denominator) -> float | None:
    return None if not denominator else round(float(numerator) / float(denominator), 4)


def _hours(value) -> float | None:
    return None if value is None or np.isnan(value) else round(float(value), 2)
