"""Per-grid monthly patrol quotas: how many patrols and kilometres a grid should get each month.

An admin sets a grid's own quota (``set_quota``) or clears it (``clear_quota``); a grid without
its own takes the defaults of ``AnalysisSettings`` (``quota_patrols_per_month``,
``quota_km_per_month``). ``effective_quotas`` gives each grid the quota that applies, with
``source`` "grid" (its own) or "default".

Each change records one audit entry in the caller's transaction: ``grid_quota.set`` or
``grid_quota.clear`` (object ``grid_quota``, the grid's code), with the values before and after.
A change that changes nothing (the same values again, clearing a grid that has no own quota)
writes nothing and records nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from patrol import audit
from patrol.accounts import Principal
from patrol.errors import InvalidRequest, NotFound, PermissionDenied, Problem
from patrol.models import Grid, GridQuota, Role
from patrol.settings import AnalysisSettings

MAX_PATROLS_PER_MONTH = 1000
MAX_KM_PER_MONTH = 100_000.0
COLUMNS = [
    "grid_id", "code", "name_zh", "name_en", "side", "town", "team", "patrols_per_month",
    "km_per_month", "source", "updated_by", "updated_at",
]  # fmt: skip


def _analysis(settings) -> AnalysisSettings:
    """``settings.analysis`` of the whole settings, or the analysis settings themselves."""
    return getattr(settings, "analysis", settings)


def effective_quotas(
    session: Session,
    settings,
    grids: Iterable[int | str] | None = None,
    *,
    include_retired: bool = False,
) -> pd.DataFrame:
    """One row per grid (all active grids, or those of ``grids``: ids or codes), in code order:
    its own quota (``source`` "grid") or the settings' default (``source`` "default")."""
    defaults = _analysis(settings)
    query = (
        select(
            Grid.id,
            Grid.code,
            Grid.name_zh,
            Grid.name_en,
            Grid.side,
            Grid.town,
            Grid.team,
            GridQuota.patrols_per_month,
            GridQuota.km_per_month,
            GridQuota.updated_by,
            GridQuota.updated_at,
        )  # fmt: skip
        .outerjoin(GridQuota, GridQuota.grid_id == Grid.id)
        .order_by(Grid.code)
    )
    if not include_retired:
        query = query.where(Grid.retired_at.is_(None))
    if grids is not None:
        wanted = list(grids)
        ids = [g for g in wanted if isinstance(g, int)]
        codes = [g for g in wanted if isinstance(g, str)]
        query = query.where(Grid.id.in_(ids) | Grid.code.in_(codes))
    rows = session.execute(query).all()
    records = []
    for r in rows:
        own = r.patrols_per_month is not None
        records.append(
            {
                "grid_id": r.id,
                "code": r.code,
                "name_zh": r.name_zh,
                "name_en": r.name_en,
                "side": r.side,
                "town": r.town,
                "team": r.team,
                "patrols_per_month": int(r.patrols_per_month if own else defaults.quota_patrols_per_month),
                "km_per_month": float(r.km_per_month if own else defaults.quota_km_per_month),
                "source": "grid" if own else "default",
                "updated_by": r.updated_by,
                "updated_at": r.updated_at.replace(tzinfo=UTC)
                if own and r.updated_at.tzinfo is None
                else r.updated_at,
            }
        )
    return pd.DataFrame(records, columns=COLUMNS)


def quota_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """``effective_quotas`` as JSON-ready dicts (no numpy scalars, times as RFC 3339 text)."""
    out = []
    for row in frame.to_dict("records"):
        out.append(
            {
                "code": row["code"],
                "name_zh": row["name_zh"],
                "name_en": row["name_en"],
                "side": row["side"],
                "town": row["town"],
                "team": row["team"],
                "patrols_per_month": int(row["patrols_per_month"]),
                "km_per_month": float(row["km_per_month"]),
                "source": row["source"],
                "updated_by": row["updated_by"] if row["source"] == "grid" else None,
                "updated_at": audit.jsonable(row["updated_at"]) if row["source"] == "grid" else None,
            }
        )
    return out


def _grid(session: Session, principal: Principal, grid_code: str) -> Grid:
    if not principal.has(Role.ADMIN):
        raise PermissionDenied("only an admin sets or clears a grid's quota")
    grid = session.scalar(select(Grid).where(Grid.code == grid_code)) if len(grid_code) <= 32 else None
    if grid is None:
        raise NotFound(f"no grid {grid_code!r}")
    return grid


def check_quota(patrols_per_month: Any, km_per_month: Any) -> tuple[int, float]:
    """The two values as (int, float), or InvalidRequest naming every field that makes no sense."""
    problems: list[Problem] = []
    patrols: int | None = None
    km: float | None = None
    if isinstance(patrols_per_month, bool) or not isinstance(patrols_per_month, int | float):
        problems.append(
            Problem("bad-quota", f"patrols_per_month must be a whole number, got {patrols_per_month!r}")
        )
    elif isinstance(patrols_per_month, float) and not patrols_per_month.is_integer():
        problems.append(
            Problem("bad-quota", f"patrols_per_month must be a whole number, got {patrols_per_month!r}")
        )
    elif patrols_per_month < 0:
        problems.append(
            Problem("bad-quota", f"patrols_per_month must not be negative, got {patrols_per_month}")
        )
    elif patrols_per_month > MAX_PATROLS_PER_MONTH:
        problems.append(
            Problem(
                "bad-quota",
                f"patrols_per_month must be at most {MAX_PATROLS_PER_MONTH}, got {int(patrols_per_month)}",
            )
        )
    else:
        patrols = int(patrols_per_month)
    if isinstance(km_per_month, bool) or not isinstance(km_per_month, int | float):
        problems.append(Problem("bad-quota", f"km_per_month must be a number, got {km_per_month!r}"))
    elif not math.isfinite(km_per_month):
        problems.append(Problem("bad-quota", f"km_per_month must be a finite number, got {km_per_month}"))
    elif km_per_month < 0:
        problems.append(Problem("bad-quota", f"km_per_month must not be negative, got {km_per_month}"))
    elif km_per_month > MAX_KM_PER_MONTH:
        problems.append(
            Problem("bad-quota", f"km_per_month must be at most {MAX_KM_PER_MONTH:,.0f}, got {km_per_month}")
        )
    else:
        km = float(km_per_month)
    if patrols == 0 and km == 0:
        problems.append(
            Problem(
                "bad-quota",
                "patrols_per_month and km_per_month are both 0: a quota asks for something "
                "(clear the grid's quota to use the default instead)",
            )
        )
    if problems:
        fields = [f for f in ("patrols_per_month", "km_per_month") if any(f in p.message for p in problems)]
        raise InvalidRequest("; ".join(p.message for p in problems), problems, field=fields[0])
    return patrols, km  # type: ignore[return-value]


def set_quota(
    session: Session,
    principal: Principal,
    grid_code: str,
    patrols_per_month: int,
    km_per_month: float,
    *,
    now: datetime | None = None,
) -> bool:
    """Give ``grid_code`` its own quota (admins only). True when something changed. The caller
    commits."""
    grid = _grid(session, principal, grid_code)
    patrols, km = check_quota(patrols_per_month, km_per_month)
    row = session.get(GridQuota, grid.id)
    before = {"patrols_per_month": row.patrols_per_month, "km_per_month": row.km_per_month} if row else {}
    after = {"patrols_per_month": patrols, "km_per_month": km}
    if before == after:
        return False
    if row is None:
        row = GridQuota(grid_id=grid.id)
        session.add(row)
    row.patrols_per_month, row.km_per_month = patrols, km
    row.updated_by = principal.username[:80]
    row.updated_at = now or datetime.now(UTC)
    audit.record(session, principal, "grid_quota.set", "grid_quota", grid.code, audit.changes(before, after))
    return True


def clear_quota(session: Session, principal: Principal, grid_code: str) -> bool:
    """Back to the default quota (admins only). True when the grid had its own. The caller commits."""
    grid = _grid(session, principal, grid_code)
    row = session.get(GridQuota, grid.id)
    if row is None:
        return False
    before = {"patrols_per_month": row.patrols_per_month, "km_per_month": row.km_per_month}
    session.delete(row)
    audit.record(session, principal, "grid_quota.clear", "grid_quota", grid.code, audit.changes(before, {}))
    return True
