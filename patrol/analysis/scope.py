"""The period and the area one analysis covers, checked once for every entry point.

Analyses are for the people who act on them: station managers, enforcement officers and admins.
A worker analyses their own side (the incidents in it are then filtered by the same visibility
rule as the incident list, so incidents the other side referred or that lie near the border are
counted, others are not); an admin any side or both. Patrol members see their own numbers in the
assessment, not analyses of the coast.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from patrol.accounts import Principal
from patrol.effort import LOCAL_TIME
from patrol.errors import InvalidRequest, PermissionDenied
from patrol.incidents import WORKER_ROLES
from patrol.models import Grid, IncidentCategory, Side, Station, Town
from patrol.settings import Settings


@dataclass(frozen=True)
class Scope:
    start: datetime  # aware, inclusive
    end: datetime  # aware, exclusive
    side: str | None = None  # None: both sides (admins only)
    town: str | None = None
    station: str | None = None
    grids: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / 86400

    def label(self) -> str:
        where = self.station or self.town or ",".join(self.grids) or self.side or "all"
        first = self.start.astimezone(LOCAL_TIME)
        last = (self.end - timedelta(microseconds=1)).astimezone(LOCAL_TIME)
        return f"{where} {first:%Y-%m-%d}–{last:%Y-%m-%d}"


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """A China-time calendar month ``YYYY-MM`` as aware UTC bounds [start, end)."""
    text = (month or "").strip()
    try:
        if len(text) != 7 or text[4] != "-":
            raise ValueError
        if not (text[:4].isascii() and text[:4].isdigit() and text[5:].isascii() and text[5:].isdigit()):
            raise ValueError
        year, number = int(text[:4]), int(text[5:])
        first = date(year, number, 1)
        following = date(year + number // 12, number % 12 + 1, 1)  # 9999-12 has none: refused
    except ValueError:
        raise InvalidRequest(f"month {month!r} is not a calendar month: write YYYY-MM, e.g. 2026-11",
                             field="month") from None  # fmt: skip
    start = datetime.combine(first, time(), tzinfo=LOCAL_TIME).astimezone(UTC)
    end = datetime.combine(following, time(), tzinfo=LOCAL_TIME).astimezone(UTC)
    return start, end


def previous_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:])
    return f"{year - (number == 1)}-{(number - 2) % 12 + 1:02d}"


def requested_period(start: datetime | None, end: datetime | None, now: datetime, *, default_days: int = 90
                     ) -> tuple[datetime | None, datetime | None]:  # fmt: skip
    """A period as asked (either end may be open): nothing means the last ``default_days``; a
    period running on past now ends now. What is left for ``check_period`` to refuse stays."""
    if start is None and end is None:
        return now - timedelta(days=default_days), now
    if start is not None and start <= now and (end is None or end > now):
        return start, now
    return start, end


def check_period(start: datetime | None, end: datetime | None, *, max_days: int, now: datetime | None = None,
                 field: str = "datetime") -> tuple[datetime, datetime]:  # fmt: skip
    """A bounded, non-empty period that has begun; the refusal names ``field``."""
    now = now or datetime.now(UTC)
    if start is None or end is None:
        raise InvalidRequest(f"{field}: give a closed period, e.g. 2026-11 or 2026-09-01/2026-11-30",
                             field=field)  # fmt: skip
    start, end = _aware(start), _aware(end)
    if end <= start:
        raise InvalidRequest(f"{field}: the period is empty or reversed: its end must come after its start",
                             field=field)  # fmt: skip
    if start > now:
        raise InvalidRequest(f"{field}: the period starts in the future ({start:%Y-%m-%d})", field=field)
    if (end - start).total_seconds() > max_days * 86400:
        days = (end - start).total_seconds() / 86400
        raise InvalidRequest(f"{field}: the period is {days:.0f} days long; at most {max_days} days are "
                             "analysed at once (MANGROVE_ANALYSIS_MAX_PERIOD_DAYS)", field=field)  # fmt: skip
    return start, end


def analysis_scope(
    session: Session,
    principal: Principal,
    settings: Settings,
    *,
    start: datetime | None,
    end: datetime | None,
    side: str | None = None,
    town: str | None = None,
    station: str | None = None,
    grids: tuple[str, ...] | list[str] = (),
    categories: tuple[str, ...] | list[str] = (),
    now: datetime | None = None,
) -> Scope:
    """Check every part of a requested analysis and who asks; the refusal names the parameter."""
    if not principal.has(*WORKER_ROLES):
        raise PermissionDenied("analyses are for station managers, enforcement officers and admins")
    start, end = check_period(start, end, max_days=settings.analysis.max_period_days, now=now)
    if side is not None and session.get(Side, side) is None:
        known = ", ".join(session.scalars(select(Side.code).order_by(Side.code)))
        raise InvalidRequest(f"unknown side {side!r}: use one of {known}", field="side")
    if not principal.is_admin:
        if side not in (None, principal.side):
            raise PermissionDenied(f"side {side}: you work for {principal.side} and analyse that side only",
                                   field="side")  # fmt: skip
        side = principal.side
    if town is not None:
        row = session.get(Town, town)
        if row is None:
            raise InvalidRequest(f"unknown town {town!r}", field="town")
        _same_side(row.side, side, "town", town)
    if station is not None:
        row = session.get(Station, station)
        if row is None:
            raise InvalidRequest(f"unknown station {station!r}", field="station")
        _same_side(row.side, side, "station", station)
    grids = tuple(dict.fromkeys(grids or ()))
    if grids:
        rows = session.execute(select(Grid.code, Grid.side).where(Grid.code.in_(grids))).all()
        missing = sorted(set(grids) - {r.code for r in rows})
        if missing:
            raise InvalidRequest(f"unknown grid(s): {', '.join(missing)}", field="grid")
        for r in rows:
            _same_side(r.side, side, "grid", r.code)
    categories = tuple(dict.fromkeys(categories or ()))
    if categories:
        known = set(session.scalars(select(IncidentCategory.code)))
        unknown = sorted(set(categories) - known)
        if unknown:
            raise InvalidRequest(f"unknown incident category {', '.join(unknown)}: use one of "
                                 f"{', '.join(sorted(known))}", field="category")  # fmt: skip
    return Scope(start, end, side, town, station, grids, categories)


def _same_side(actual: str, side: str | None, field: str, code: str) -> None:
    if side is not None and actual != side:
        raise PermissionDenied(f"{field} {code} is on side {actual}, outside the analysed side {side}",
                               field=field)  # fmt: skip


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
