"""Where patrols were, and when: the cleaned track cut into short timed pieces, and the question
enforcement teams ask of them — which patrols came within some metres of a point during an
interval, when, and how close.

The fixes themselves stay one compressed blob per patrol (``patrol_fixes``), which no query can
look into. Each upload also writes ``patrol_segments``: runs of up to ``SEGMENT_FIXES`` good fixes
spanning at most ``SEGMENT_SPAN``, each a line with the time of every vertex. Consecutive pieces of
one run share their boundary fix, so no stretch of the track falls between two rows. A piece is
found by its line's bounding box (the spatial index) and its start time (the partition key on
PostGIS), then the exact closest approach is worked out here, vectorised, in an azimuthal
equidistant projection centred on the asked point (distances from the centre are true distances).

What counts as the track: the good fixes (cleaning's flags apply) and the straight lines between
consecutive ones of one cleaned segment, with the time interpolated along each line. Fixes without
a time cannot answer "when" and are left out; so is a line across more than ``SEGMENT_SPAN``
without a fix (nobody knows where the patrol was meanwhile).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from patrol.accounts import Principal
from patrol.db import geometry_from_wkb
from patrol.errors import InvalidRequest
from patrol.models import Patrol, PatrolSegment
from patrol.spatial import intersects_bbox

SEGMENT_FIXES = 120  # vertices per stored piece: small enough that a hit reads little
SEGMENT_SPAN = timedelta(minutes=15)  # nor does a piece span longer: the time filter stays tight
SEGMENT_SPAN_S = SEGMENT_SPAN.total_seconds()

MAX_RADIUS_M = 5_000.0  # a question about a place, not a region
MAX_INTERVAL = timedelta(days=31)


# --- writing ---------------------------------------------------------------------------------------


def segment_rows(lon: np.ndarray, lat: np.ndarray, seconds: np.ndarray, segment: np.ndarray) -> list[dict]:
    """The ``patrol_segments`` rows (without the patrol id) of one patrol's good fixes.

    ``seconds`` are epoch seconds (NaN: no time), ``segment`` the cleaned segment of each fix."""
    timed = ~np.isnan(seconds)
    lon, lat, seconds, segment = lon[timed], lat[timed], seconds[timed], segment[timed]
    n = len(seconds)
    if n == 0:
        return []
    # A run ends where the cleaned segment changes or the next fix is more than a span away.
    breaks = np.flatnonzero((segment[1:] != segment[:-1]) | (np.diff(seconds) > SEGMENT_SPAN_S)) + 1
    run_starts = np.concatenate(([0], breaks))
    run_ends = np.concatenate((breaks, [n]))  # exclusive
    pieces: list[tuple[int, int]] = []  # [first, last] fix of each piece, inclusive
    for first, stop in zip(run_starts.tolist(), run_ends.tolist()):
        last_of_run = stop - 1
        while True:
            last = min(first + SEGMENT_FIXES - 1, last_of_run)
            # … and no later than a span after its first fix (but at least one line).
            within = int(np.searchsorted(seconds, seconds[first] + SEGMENT_SPAN_S, side="right")) - 1
            last = max(min(last, within), min(first + 1, last_of_run))
            pieces.append((first, last))
            if last >= last_of_run:
                break
            first = last  # the next piece starts at this one's last fix
    firsts = np.array([p[0] for p in pieces])
    lasts = np.array([p[1] for p in pieces])
    counts = lasts - firsts + 1
    # A lone fix is stored as a line of two equal vertices (a point in time and place).
    single = counts == 1
    take = np.concatenate(
        [np.arange(a, b + 1) if a != b else np.array([a, a]) for a, b in zip(firsts, lasts)]
    )
    sizes = np.where(single, 2, counts)
    which = np.repeat(np.arange(len(pieces)), sizes)
    lines = shapely.linestrings(lon[take], lat[take], indices=which)
    wkb = shapely.to_wkb(lines)
    times_ms = np.rint(seconds[take] * 1000).astype(np.int64)
    offsets = np.concatenate(([0], np.cumsum(sizes)))
    rows = []
    for i in range(len(pieces)):
        ms = times_ms[offsets[i] : offsets[i + 1]]
        rows.append(
            {
                "seq": i,
                "started_at": datetime.fromtimestamp(ms[0] / 1000, UTC),
                "ended_at": datetime.fromtimestamp(ms[-1] / 1000, UTC),
                "fix_count": int(counts[i]),
                # Milliseconds after the piece's start: four bytes a vertex (a piece spans ≤ 15 min).
                "times": (ms - ms[0]).astype("<i4").tobytes(),
                "wkb": wkb[i],
            }
        )
    return rows


def insert_segments(session: Session, patrol_id: int, rows: list[dict]) -> None:
    if rows:
        session.execute(
            insert(PatrolSegment.__table__).values(geom=geometry_from_wkb("wkb")),
            [row | {"patrol_id": patrol_id} for row in rows],
        )


# --- asking ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NearQuery:
    lon: float
    lat: float
    radius_m: float
    start: datetime
    end: datetime
    limit: int = 100


@dataclass(frozen=True)
class Approach:
    """A patrol's closest approach to the point within the interval."""

    patrol_id: int
    distance_m: float
    at: datetime
    lon: float  # where the patrol was then
    lat: float


def check_near_query(
    lon: float | None, lat: float | None, radius_m: float | None, start: datetime | None, end: datetime | None
) -> None:
    """Refuse what cannot be asked, naming the parameter."""
    if lon is None or not np.isfinite(lon) or not -180 <= lon <= 180:
        raise InvalidRequest(f"lon must be a longitude between -180 and 180, not {lon}", field="lon")
    if lat is None or not np.isfinite(lat) or not -90 <= lat <= 90:
        raise InvalidRequest(f"lat must be a latitude between -90 and 90, not {lat}", field="lat")
    if radius_m is None or not np.isfinite(radius_m) or not 0 < radius_m <= MAX_RADIUS_M:
        raise InvalidRequest(
            f"radius_m must be more than 0 and at most {MAX_RADIUS_M:,.0f} metres, not {radius_m}",
            field="radius_m",
        )
    if start is None or end is None:
        raise InvalidRequest(
            "datetime must be a closed interval, e.g. 2026-03-01T06:00+08:00/2026-03-01T18:00+08:00",
            field="datetime",
        )
    if end - start > MAX_INTERVAL:
        raise InvalidRequest(
            f"datetime spans {(end - start).total_seconds() / 86400:.1f} days; at most "
            f"{MAX_INTERVAL.days} days may be asked at once",
            field="datetime",
        )


def patrols_near(session: Session, principal: Principal, q: NearQuery, visible_clause=None) -> list[Approach]:
    """The patrols ``principal`` may see whose track came within ``q.radius_m`` of the point during
    [``q.start``, ``q.end``], closest first. ``visible_clause``: the patrol visibility rule (from
    ``patrol.patrols.visible_patrols_clause``; None for all)."""
    check_near_query(q.lon, q.lat, q.radius_m, q.start, q.end)
    dialect = session.get_bind().dialect.name
    query = (
        select(
            PatrolSegment.patrol_id,
            PatrolSegment.started_at,
            PatrolSegment.times,
            func.ST_AsBinary(PatrolSegment.geom),
        )
        .join(Patrol, Patrol.id == PatrolSegment.patrol_id)
        .where(
            intersects_bbox(dialect, PatrolSegment.id, PatrolSegment.geom, _search_box(q)),
            PatrolSegment.started_at <= q.end,
            # A piece spans at most SEGMENT_SPAN: this bound lets PostgreSQL skip older partitions.
            PatrolSegment.started_at >= q.start - SEGMENT_SPAN,
            PatrolSegment.ended_at >= q.start,
        )
    )
    if visible_clause is not None:
        query = query.where(visible_clause)
    rows = session.execute(query).all()
    return closest_approaches(rows, q)[: q.limit]


def _search_box(q: NearQuery) -> tuple[float, float, float, float]:
    """A lon/lat box surely holding the circle (1 % and 1 m of margin for the spheroid)."""
    dlat = (q.radius_m * 1.01 + 1) / 110_574.0
    coslat = max(np.cos(np.radians(min(abs(q.lat) + dlat, 89.9))), 1e-6)
    dlon = (q.radius_m * 1.01 + 1) / (111_320.0 * coslat)
    return (q.lon - dlon, q.lat - dlat, q.lon + dlon, q.lat + dlat)


def closest_approaches(rows, q: NearQuery) -> list[Approach]:
    """From candidate pieces (patrol id, start, vertex times, line WKB) to each patrol's closest
    approach, all pieces at once: every line between two vertices, cut to the interval, then the
    nearest point of it to the centre of an equidistant projection."""
    if not rows:
        return []
    patrol_ids = np.array([r[0] for r in rows], dtype=np.int64)
    starts_ms = np.array([_epoch_ms(r[1]) for r in rows], dtype=np.int64)
    offsets = [np.frombuffer(r[2], dtype="<i4") for r in rows]
    lines = shapely.from_wkb([bytes(r[3]) for r in rows])
    coords, which = shapely.get_coordinates(lines, return_index=True)
    times = np.concatenate(offsets).astype(np.float64) / 1000 + np.repeat(
        starts_ms / 1000, [len(o) for o in offsets]
    )
    if len(times) != len(coords):
        raise ValueError("a stored track piece has as many times as vertices")  # never expected
    aeqd = Transformer.from_crs(
        CRS.from_epsg(4326),
        CRS.from_proj4(f"+proj=aeqd +lat_0={q.lat} +lon_0={q.lon} +datum=WGS84 +units=m"),
        always_xy=True,
    )
    x, y = aeqd.transform(coords[:, 0], coords[:, 1])
    # Each line between consecutive vertices of one piece.
    a = np.flatnonzero(which[1:] == which[:-1])
    b = a + 1
    ta, tb = times[a], times[b]
    t0, t1 = q.start.timestamp(), q.end.timestamp()
    keep = (tb >= t0) & (ta <= t1)
    a, b, ta, tb = a[keep], b[keep], ta[keep], tb[keep]
    if a.size == 0:
        return []
    ax, ay, bx, by = x[a], y[a], x[b], y[b]
    # Cut each line to the interval (linear in time along it).
    span = tb - ta
    with np.errstate(invalid="ignore", divide="ignore"):
        fa = np.where(span > 0, np.clip((t0 - ta) / span, 0, 1), 0.0)
        fb = np.where(span > 0, np.clip((t1 - ta) / span, 0, 1), 1.0)
    cax, cay = ax + fa * (bx - ax), ay + fa * (by - ay)
    cbx, cby = ax + fb * (bx - ax), ay + fb * (by - ay)
    cta, ctb = ta + fa * span, ta + fb * span
    dx, dy = cbx - cax, cby - cay
    length2 = dx * dx + dy * dy
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(length2 > 0, np.clip(-(cax * dx + cay * dy) / length2, 0, 1), 0.0)
    px, py = cax + f * dx, cay + f * dy
    distance = np.hypot(px, py)
    at = cta + f * (ctb - cta)
    owner = patrol_ids[which[a]]
    inside = distance <= q.radius_m
    if not inside.any():
        return []
    owner, distance, at, px, py = owner[inside], distance[inside], at[inside], px[inside], py[inside]
    # Per patrol the nearest line; among equally near ones the latest (closest to when it was seen).
    order = np.lexsort((-at, distance, owner))
    first = np.concatenate(([True], owner[order][1:] != owner[order][:-1]))
    best = order[first]
    lon, lat = aeqd.transform(px[best], py[best], direction="INVERSE")
    found = [
        Approach(
            int(owner[i]), float(distance[i]), datetime.fromtimestamp(float(at[i]), UTC), float(lo), float(la)
        )
        for i, lo, la in zip(best, np.atleast_1d(lon), np.atleast_1d(lat))
    ]
    found.sort(key=lambda ap: (ap.distance_m, -ap.at.timestamp()))
    return found


def _epoch_ms(value: datetime) -> int:
    if value.tzinfo is None:  # SQLite hands back what UTCDateTime stored: UTC
        value = value.replace(tzinfo=UTC)
    return round(value.timestamp() * 1000)


def approach_dict(approach: Approach) -> dict[str, Any]:
    return {
        "patrol_id": approach.patrol_id,
        "distance_m": round(approach.distance_m, 1),
        "closest_at": approach.at.isoformat().replace("+00:00", "Z"),
        "closest_lon": round(approach.lon, 7),
        "closest_lat": round(approach.lat, 7),
    }
