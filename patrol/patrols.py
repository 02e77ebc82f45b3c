"""Patrols: from an uploaded track file to a stored patrol with its visits to each grid.

The pipeline is columnar from end to end: read the fixes (``geodata.trackfile``), convert the
declared datum to WGS84, flag bad fixes (``geodata.cleaning``), cut the good ones by grid
(``geodata.split``), then write the patrol, its raw fixes and its visits in the caller's
transaction with bulk inserts. Nothing is written until everything has been computed.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from geodata.assign import GridIndex
from geodata.cleaning import CleaningRules, Transport, clean, describe_flags
from geodata.datum import Datum, gcj02_to_wgs84, to_wgs84
from geodata.filenames import printable_name
from geodata.fixes import TrackFixes
from geodata.split import OUTSIDE, split_by_polygons
from geodata.trackfile import NaiveTimes, read_track
from patrol import audit
from patrol.accounts import USERNAME_PATTERN, Principal, utc
from patrol.db import geometry_from_wkb
from patrol.errors import InvalidRequest, NotFound, PermissionDenied
from patrol.grids import metric_grid_index, project, unproject
from patrol.models import (
    Grid,
    Patrol,
    PatrolFixes,
    PatrolMember,
    PatrolSegment,
    PatrolVisit,
    Role,
    Team,
    User,
    iso_utc,
)
from patrol.segments import Approach, NearQuery, approach_dict, insert_segments, patrols_near, segment_rows
from patrol.settings import PatrolSettings

# A WGS84-declared track is suspected to be GCJ-02 (see ``gcj02_suspected``) when undoing the
# offset puts this much more of it inside the grids (patrols keep to the mangroves) …
SHIFT_SUSPECT_GAIN = 0.25
# … or, on foot, this much more of it along a grid's edge (inside, within EDGE_BAND_M of the
# boundary: patrols walk the mangrove edge), with at least SHIFT_MIN_INSIDE of it inside grids.
# Chosen by simulation (bench/bench_gcj02_detection.py): ≥ 95 % of GCJ-02 foot patrols of 15
# minutes or more are caught (94 % at 10 minutes, about half before), and no true WGS84 walk was
# flagged. Boat runs through the middle of grids stay undetectable (about 35 %).
EDGE_BAND_M = 60.0
SHIFT_EDGE_GAIN = 0.3
SHIFT_MIN_INSIDE = 0.8
# The simplified copy of a line (maps, the patrol list) has at most this many vertices: the
# tolerance grows until it fits, so a track that retraces itself a hundred times costs no more.
SIMPLIFIED_MAX_VERTICES = 2000
SOURCE_NAME_CHARS = 256  # the stored file name (patrols.source_name) is cut to this


@dataclass(frozen=True)
class UploadOptions:
    datum: Datum = Datum.WGS84
    transport: Transport = Transport.FOOT
    team: str | None = None
    members: tuple[str, ...] = ()  # usernames; default: the uploader
    notes: str | None = None
    naive_times: NaiveTimes = NaiveTimes.AUTO  # how to read times the file wrote without a zone


@dataclass
class UploadResult:
    patrol_id: int
    created: bool  # False: the same file was uploaded before; this is that patrol
    summary: dict[str, Any] = field(default_factory=dict)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- grids in the metric CRS, cached by grid versions ------------------------------------------

# --- who may upload for whom --------------------------------------------------------------------


def _names(names: list[str], most: int = 10) -> str:
    """Names for a message: the first few, each cut short (they are echoed from the request)."""
    shown = ", ".join(name if len(name) <= 64 else name[:63] + "…" for name in names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _resolve_crew(session: Session, principal: Principal, options: UploadOptions) -> tuple[str, list[User]]:
    """The team credited and the members who walked it, checked against the uploader's roles.

    Non-admins learn nothing about accounts they may not know of: every name that is not their
    own nor a patrol member of a team they upload for gets the same answer, whether it does not
    exist, is no patrol member, or belongs to another team or side."""
    usernames = list(dict.fromkeys(options.members)) or [principal.username]
    # A name that cannot exist is never looked up (and never reaches SQL with odd characters).
    lookup = [name for name in usernames if USERNAME_PATTERN.match(name)]
    users = session.scalars(select(User).where(User.username.in_(lookup))).all() if lookup else []
    member_teams = {
        u.username: {r.team for r in u.roles if r.role == Role.PATROL_MEMBER.value and r.team} for u in users
    }
    if not principal.has(Role.ADMIN):
        teams = set(principal.teams)
        if principal.stations:
            teams |= set(session.scalars(select(Team.code).where(Team.station.in_(principal.stations))))
        knowable = {
            u.username
            for u in users
            if u.username == principal.username
            or (u.side == principal.side and member_teams[u.username] & teams)
        }
        hidden = sorted(set(usernames) - knowable)
        if hidden:
            raise PermissionDenied(
                "you may name only yourself and the patrol members of the teams you upload for; "
                f"not: {_names(hidden)}"
            )
    missing = sorted(set(usernames) - {u.username for u in users})
    if missing:
        raise InvalidRequest(f"unknown member(s): {_names(missing)}")
    not_members = sorted(name for name, teams in member_teams.items() if not teams)
    if not_members:
        raise InvalidRequest(f"not patrol members of any team: {', '.join(not_members)}")
    inactive = sorted(u.username for u in users if not u.is_active)
    if inactive:
        raise InvalidRequest(f"inactive account(s): {', '.join(inactive)}")

    team_code = options.team
    if team_code is None:
        first = member_teams[usernames[0]]
        if len(first) > 1:
            raise InvalidRequest(
                f"{usernames[0]} is in several teams ({', '.join(sorted(first))}); name the team"
            )
        team_code = next(iter(first))
    team = session.get(Team, team_code)
    if team is None:
        raise InvalidRequest(f"unknown team {team_code!r}")
    outsiders = sorted(name for name, teams in member_teams.items() if team_code not in teams)
    if outsiders:
        raise InvalidRequest(f"not members of team {team_code}: {', '.join(outsiders)}")

    if principal.has(Role.ADMIN):
        return team_code, list(users)
    if principal.username in usernames and team_code in principal.teams:
        return team_code, list(users)  # a member uploading a patrol they walked
    if team.station and team.station in principal.stations:
        return team_code, list(users)  # a station manager on behalf of a team of the station
    raise PermissionDenied(
        "patrol members upload their own patrols; station managers upload for the teams of their station"
    )


# --- the upload pipeline ------------------------------------------------------------------------


def upload_patrol(
    session: Session,
    path: str | Path,
    *,
    filename: str,
    principal: Principal,
    options: UploadOptions,
    settings: PatrolSettings,
) -> UploadResult:
    """Read, clean, split and store one track. The caller commits (or rolls back on any error)."""
    digest = file_sha256(path)
    existing = session.scalar(select(Patrol).where(Patrol.file_sha256 == digest))
    if existing is not None:
        if not can_see(session, principal, existing):
            raise PermissionDenied("this file was already uploaded as a patrol you may not see")
        return UploadResult(existing.id, False, existing.summary)
    team_code, members = _resolve_crew(session, principal, options)

    fixes = read_track(path, filename=filename, max_fixes=settings.max_fixes, naive_times=options.naive_times)
    lon, lat = to_wgs84(fixes.lon, fixes.lat, options.datum)
    wgs84 = TrackFixes(
        lon, lat, fixes.time, fixes.ele, fixes.segment, fixes.source_format, list(fixes.warnings)
    )
    rules = CleaningRules(
        max_speed_mps={
            Transport.FOOT: settings.max_speed_foot_mps,
            Transport.BOAT: settings.max_speed_boat_mps,
        },
        gap_split_s=settings.gap_split_s,
    )
    cleaned = clean(wgs84, options.transport, rules)
    good = cleaned.good
    if good.sum() < 2:
        raise InvalidRequest(
            f"no usable track: {int(good.sum())} of {len(fixes)} fixes passed cleaning "
            f"({', '.join(f'{k}: {v}' for k, v in cleaned.summary.items() if v) or 'no fixes'})"
        )
    # The good fixes, taken once (a long track's arrays are tens of MB each).
    gx, gy, gseg = cleaned.x[good], cleaned.y[good], cleaned.fixes.segment[good]
    _check_some_segment_has_a_line(gseg, len(fixes))
    index, grid_ids = metric_grid_index(session)
    warnings = [w.as_dict() for w in wgs84.warnings]
    if options.datum in (Datum.WGS84, Datum.CGCS2000):
        warnings += _shift_warnings(fixes.lon[good], fixes.lat[good], index, options.transport)

    seconds = _seconds(fixes.time[good])
    visits = split_by_polygons(gx, gy, seconds, gseg, index, min_pass_m=settings.min_pass_m)
    visit_grids = np.where(visits.polygon == OUTSIDE, -1, grid_ids[np.maximum(visits.polygon, 0)])
    side = session.get(Team, team_code).side

    timed = seconds[~np.isnan(seconds)]
    started = _datetime(timed.min()) if timed.size else None
    ended = _datetime(timed.max()) if timed.size else None
    outside = visits.polygon == OUTSIDE
    per_grid = _per_grid_summary(visits, index.codes)
    summary = {
        "fixes": len(fixes),
        "flagged": int((~good).sum()),
        "flags": {k: int(v) for k, v in cleaned.summary.items()},
        "segments": int(len(np.unique(gseg))),
        "grids": per_grid,
        "warnings": warnings,
    }
    lines, simplified = _patrol_lines(lon[good], lat[good], gx, gy, gseg, settings.simplify_tolerance_m)
    pieces = segment_rows(lon[good], lat[good], seconds, gseg)
    del gx, gy, seconds, timed
    patrol = Patrol(
        side=side,
        team=team_code,
        uploaded_by=principal.user_id,
        uploaded_at=datetime.now(UTC),
        file_sha256=digest,
        source_name=stored_name(filename),
        source_format=fixes.source_format[:32],
        datum=options.datum.value,
        transport=options.transport.value,
        started_at=started,
        ended_at=ended,
        fix_count=len(fixes),
        flagged_count=int((~good).sum()),
        distance_m=float(visits.distance_m.sum()),
        duration_s=_nansum_or_none(visits.duration_s),
        outside_distance_m=float(visits.distance_m[outside].sum()),
        outside_duration_s=_nansum_or_none(visits.duration_s[outside]) if outside.any() else 0.0,
        notes=options.notes,
        summary=summary,
        geom=geometry_from_wkb(lines),
        geom_simplified=geometry_from_wkb(simplified),
    )
    # Computed before the first INSERT: on SQLite that statement takes the write lock, which the
    # transaction then holds until commit, so only the inserts themselves may come after it.
    packed = _pack_fixes(fixes, cleaned)
    visit_rows = _visit_rows(visits, visit_grids)
    session.add(patrol)
    session.flush()  # the patrol id for the bulk inserts below
    session.execute(insert(PatrolMember), [{"patrol_id": patrol.id, "user_id": u.id} for u in members])
    session.execute(insert(PatrolFixes), [{"patrol_id": patrol.id, "fix_count": len(fixes), "data": packed}])
    if visit_rows:
        # Core insert, one executemany: the ORM bulk path splits batches whenever a row's set of
        # non-NULL keys changes (grid_id NULL outside grids), which made thousands of statements.
        session.execute(
            insert(PatrolVisit.__table__).values(geom=geometry_from_wkb("wkb")),
            [row | {"patrol_id": patrol.id} for row in visit_rows],
        )
    insert_segments(session, patrol.id, pieces)
    keys = {**audit.snapshot(patrol, PATROL_AUDIT_FIELDS), "members": sorted(u.username for u in members)}
    audit.record(session, principal, "patrol.upload", "patrol", patrol.id, audit.changes({}, keys))
    return UploadResult(patrol.id, True, summary)


# What the audit trail keeps of an uploaded or deleted patrol (the track itself stays out).
PATROL_AUDIT_FIELDS = (
    "side", "team", "uploaded_by", "file_sha256", "source_name", "source_format", "datum", "transport",
    "started_at", "ended_at", "fix_count", "flagged_count", "distance_m",
)  # fmt: skip


def _visit_rows(visits, visit_grids: np.ndarray) -> list[dict[str, Any]]:
    """The rows of ``patrol_visits`` for one upload, without the patrol id (not known yet)."""
    has_line = visits.geometry != None  # noqa: E711 (elementwise on an object array)
    wkb = np.full(len(visits), None, dtype=object)
    wkb[has_line] = shapely.to_wkb(shapely.transform(visits.geometry[has_line], unproject, interleaved=False))
    # Plain Python values made by numpy in bulk (a boundary-hugging walk has thousands of visits).
    grids = np.where(visit_grids >= 0, visit_grids, 0).tolist()
    no_grid = (visit_grids < 0).tolist()
    durations = np.where(np.isnan(visits.duration_s), 0.0, visits.duration_s).tolist()
    no_duration = np.isnan(visits.duration_s).tolist()
    return [
        {
            "grid_id": None if ng else g,
            "seq": i,
            "entered_at": a,
            "exited_at": b,
            "distance_m": d,
            "duration_s": None if nd else s,
            "wkb": w,
        }
        for i, (g, ng, a, b, d, s, nd, w) in enumerate(
            zip(
                grids,
                no_grid,
                _datetimes(visits.enter_time),
                _datetimes(visits.exit_time),
                visits.distance_m.tolist(),
                durations,
                no_duration,
                wkb,
            )
        )
    ]


def _datetimes(seconds: np.ndarray) -> list[datetime | None]:
    """``[_datetime(s) for s in seconds]``, to the microsecond, without a Python call per value:
    rounded as ``datetime.fromtimestamp`` rounds (the fraction of the second, half to even)."""
    known = ~np.isnan(seconds)
    whole = np.floor(np.where(known, seconds, 0.0))
    fraction = np.where(known, seconds, 0.0) - whole
    micros = whole.astype(np.int64) * 1_000_000 + np.round(fraction * 1e6).astype(np.int64)
    naive = micros.astype("datetime64[us]").astype(object)
    return [d.replace(tzinfo=UTC) if k else None for d, k in zip(naive.tolist(), known.tolist())]


def _seconds(times: np.ndarray) -> np.ndarray:
    """datetime64[ms] → float seconds since the epoch, NaN for NaT."""
    out = times.astype("datetime64[ms]").astype(np.int64) / 1000.0
    out[np.isnat(times)] = np.nan
    return out


def _datetime(seconds: float) -> datetime | None:
    if seconds is None or np.isnan(seconds):
        return None
    return datetime.fromtimestamp(float(seconds), UTC)


def _nansum_or_none(values: np.ndarray) -> float | None:
    return None if values.size == 0 or np.isnan(values).all() else float(np.nansum(values))


def _per_grid_summary(visits, codes: np.ndarray) -> list[dict[str, Any]]:
    rows = []
    for polygon in np.unique(visits.polygon[visits.polygon != OUTSIDE]):
        mine = visits.polygon == polygon
        enter, leave = visits.enter_time[mine], visits.exit_time[mine]
        rows.append(
            {
                "grid": str(codes[polygon]),
                "visits": int(mine.sum()),
                "km": round(float(visits.distance_m[mine].sum()) / 1000, 3),
                "minutes": None
                if np.isnan(visits.duration_s[mine]).all()
                else round(float(np.nansum(visits.duration_s[mine])) / 60, 1),
                "entered_at": _iso(np.nanmin(enter)) if not np.isnan(enter).all() else None,
                "exited_at": _iso(np.nanmax(leave)) if not np.isnan(leave).all() else None,
            }
        )
    outside = visits.polygon == OUTSIDE
    if outside.any():
        rows.append(
            {
                "grid": None,
                "visits": int(outside.sum()),
                "km": round(float(visits.distance_m[outside].sum()) / 1000, 3),
                "minutes": None
                if np.isnan(visits.duration_s[outside]).all()
                else round(float(np.nansum(visits.duration_s[outside])) / 60, 1),
                "entered_at": None,
                "exited_at": None,
            }
        )
    return rows


def _iso(seconds: float) -> str:
    return _datetime(seconds).isoformat().replace("+00:00", "Z")


def stored_name(filename: str) -> str:
    """The uploaded file's name as stored and shown: control characters (NUL included, which
    PostgreSQL refuses in text) replaced, cut to ``SOURCE_NAME_CHARS`` characters."""
    return printable_name(filename, SOURCE_NAME_CHARS)


def _runs(segment: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first index, length) of each run of equal consecutive segment numbers."""
    if not len(segment):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, segment[1:] != segment[:-1]])
    return starts, np.diff(np.r_[starts, len(segment)])


def _check_some_segment_has_a_line(segment: np.ndarray, total: int) -> None:
    """A patrol needs a line: two good fixes in a row in one segment. Refused otherwise (a stored
    empty line would break every later read of the patrol)."""
    _, lengths = _runs(segment)
    if not (lengths >= 2).any():
        raise InvalidRequest(
            f"no usable track: each of the {len(lengths):,} segments left after cleaning holds a single "
            f"fix ({total:,} fixes in the file), so there is no line to draw or to measure; a file that "
            "writes every fix as its own track segment must be exported again as one track"
        )


def _patrol_lines(lon, lat, x, y, segment, tolerance_m: float):
    """The cleaned line (one part per segment with ≥ 2 fixes) and a simplified copy for maps.

    The copy is simplified without preserving topology (Douglas–Peucker): a track that retraces
    itself keeps its shape, not every vertex. Its size is bounded: the tolerance grows until it
    has at most ``SIMPLIFIED_MAX_VERTICES`` vertices, and where many tiny segments still exceed
    that, only the longest parts are kept in the copy (the full line keeps them all)."""
    starts, lengths = _runs(segment)
    lines = lengths >= 2
    keep = np.repeat(lines, lengths)
    part = np.repeat(np.arange(int(lines.sum())), lengths[lines])  # parts numbered 0, 1, 2… without gaps
    parts = shapely.linestrings(lon[keep], lat[keep], indices=part)
    metric = shapely.linestrings(x[keep], y[keep], indices=part)
    simple = _simplified(metric, tolerance_m)
    simple = shapely.transform(simple, unproject, interleaved=False)
    return shapely.MultiLineString(list(parts)), shapely.MultiLineString(list(simple))


def _simplified(metric: np.ndarray, tolerance_m: float) -> np.ndarray:
    tolerance = max(tolerance_m, 0.0)
    simple = shapely.simplify(metric, tolerance, preserve_topology=False)
    total = int(shapely.get_num_coordinates(simple).sum())
    # Each part keeps its two ends: past 2 vertices a part, only dropping parts helps.
    while SIMPLIFIED_MAX_VERTICES < total > 2 * len(simple) and tolerance < 10_000:
        tolerance = max(tolerance * (4 if total > 4 * SIMPLIFIED_MAX_VERTICES else 2), 1.0)
        simple = shapely.simplify(metric, tolerance, preserve_topology=False)
        total = int(shapely.get_num_coordinates(simple).sum())
    counts = shapely.get_num_coordinates(simple)
    if counts.sum() > SIMPLIFIED_MAX_VERTICES:
        longest = np.argsort(-shapely.length(metric), kind="stable")
        fits = longest[np.cumsum(counts[longest]) <= SIMPLIFIED_MAX_VERTICES]
        simple = simple[np.sort(fits if fits.size else longest[:1])]
    return simple


@dataclass(frozen=True)
class GridFit:
    """How a track sits on the grids: the fraction of its fixes inside a grid, and the fraction
    inside a grid and within ``EDGE_BAND_M`` of its boundary (where walks along the mangrove run)."""

    inside: float
    along_edge: float


def grid_fit(lon: np.ndarray, lat: np.ndarray, index: GridIndex) -> GridFit:
    x, y = project(lon, lat)
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if not len(x):
        return GridFit(0.0, 0.0)
    inside = index.assign_index(x, y) >= 0
    near_edge = index.edges.within(x, y, EDGE_BAND_M)  # vectorised: no points, no tree walk
    return GridFit(float(inside.mean()), float((inside & near_edge).mean()))


def gcj02_suspected(
    lon: np.ndarray, lat: np.ndarray, index: GridIndex, transport: Transport | str = Transport.FOOT
) -> tuple[bool, GridFit, GridFit]:
    """Whether a track declared WGS84 fits the grids clearly better with the GCJ-02 offset undone:
    (suspected, fit as given, fit if GCJ-02). The grids are contiguous, so a shift of 300–700 m
    often lands in another grid and the fraction inside barely changes; a walk along the mangrove
    edge, though, follows a boundary only where it really was. Boat runs through the middle of
    grids carry no such trace, and only the fraction inside counts for them."""
    step = max(1, len(lon) // 2000)  # a sample is plenty to compare fractions
    lon, lat = lon[::step], lat[::step]
    as_given = grid_fit(lon, lat, index)
    if_gcj02 = grid_fit(*gcj02_to_wgs84(lon, lat), index)
    suspected = if_gcj02.inside - as_given.inside >= SHIFT_SUSPECT_GAIN or (
        Transport.parse(transport) is Transport.FOOT
        and if_gcj02.inside >= SHIFT_MIN_INSIDE
        and if_gcj02.along_edge - as_given.along_edge >= SHIFT_EDGE_GAIN
    )
    return suspected, as_given, if_gcj02


def _shift_warnings(
    lon: np.ndarray, lat: np.ndarray, index: GridIndex, transport: Transport
) -> list[dict[str, Any]]:
    """Warn when a track declared WGS84 fits the grids far better after undoing GCJ-02."""
    suspected, as_given, if_gcj02 = gcj02_suspected(lon, lat, index, transport)
    if not suspected:
        return []
    return [
        {
            "kind": "looks-gcj02",
            "message": (
                f"this track was declared WGS84 but looks shifted: after undoing the GCJ-02 offset "
                f"{if_gcj02.inside:.0%} of it lies in grids ({if_gcj02.along_edge:.0%} along a grid's edge), "
                f"against {as_given.inside:.0%} ({as_given.along_edge:.0%}) as given. If it was exported from a "
                "Chinese map app (Amap/Gaode, Tencent, or Baidu), delete this patrol and upload it again "
                "declaring that datum."
            ),
            "inside_as_given": round(as_given.inside, 3),
            "inside_if_gcj02": round(if_gcj02.inside, 3),
            "along_edge_as_given": round(as_given.along_edge, 3),
            "along_edge_if_gcj02": round(if_gcj02.along_edge, 3),
        }
    ]


def _pack_fixes(fixes: TrackFixes, cleaned) -> bytes:
    """An .npz archive (what ``np.load`` reads), deflated at level 1: 3× faster than
    ``np.savez_compressed``'s level 6 for a few per cent more bytes. The WGS84 coordinates are
    left out when they are the file's own, bit for bit (WGS84 and CGCS2000 uploads): coordinates
    are most of the bytes and of the deflating time; ``patrol_fixes`` fills them back in."""
    arrays = {
        "lon": fixes.lon,  # as in the file, before datum conversion
        "lat": fixes.lat,
        "time": fixes.time.astype("datetime64[ms]").astype(np.int64),
        "time_known": ~np.isnat(fixes.time),
        "ele": fixes.ele,
        "file_segment": fixes.segment,
        "segment": cleaned.fixes.segment,
        "wgs84_lon": cleaned.fixes.lon,
        "wgs84_lat": cleaned.fixes.lat,
        "flags": cleaned.flags,
    }
    if _same_bits(fixes.lon, cleaned.fixes.lon) and _same_bits(fixes.lat, cleaned.fixes.lat):
        del arrays["wgs84_lon"], arrays["wgs84_lat"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, array in arrays.items():
            with archive.open(f"{name}.npy", "w") as member:
                np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def patrol_fixes(session: Session, patrol_id: int) -> dict[str, np.ndarray]:
    """The stored fixes of a patrol: raw and WGS84 coordinates, times, flags."""
    row = session.get(PatrolFixes, patrol_id)
    if row is None:
        raise NotFound(f"no patrol {patrol_id}")
    with np.load(io.BytesIO(row.data)) as data:
        arrays = {k: data[k] for k in data.files}
    if "wgs84_lon" not in arrays:  # packed without them: the file's own coordinates were WGS84
        arrays["wgs84_lon"], arrays["wgs84_lat"] = arrays["lon"].copy(), arrays["lat"].copy()
    times = arrays.pop("time").astype("datetime64[ms]")
    times[~arrays.pop("time_known")] = np.datetime64("NaT")
    arrays["time"] = times
    # One string per distinct bitmask, shared by every fix that carries it (a few, not a million).
    values, which = np.unique(arrays["flags"], return_inverse=True)
    names = np.array([", ".join(describe_flags(f)) for f in values], dtype=object)
    arrays["flag_names"] = names[which.reshape(-1)] if len(values) else np.array([], dtype=object)
    return arrays


# --- visibility ---------------------------------------------------------------------------------


def can_see(session: Session, principal: Principal, patrol: Patrol) -> bool:
    """Admins see all; officers their side; managers their stations' teams; members their teams."""
    if principal.has(Role.ADMIN):
        return True
    if principal.side != patrol.side:
        return False
    if principal.has(Role.ENFORCEMENT_OFFICER):
        return True
    if patrol.team in principal.teams:
        return True
    station = session.scalar(select(Team.station).where(Team.code == patrol.team))
    return station is not None and station in principal.stations


def visible_patrols_clause(session: Session, principal: Principal):
    """A WHERE clause restricting patrols to those ``principal`` may see (None: no restriction)."""
    if principal.has(Role.ADMIN):
        return None
    clause = Patrol.side == principal.side
    if principal.has(Role.ENFORCEMENT_OFFICER):
        return clause
    teams = set(principal.teams)
    if principal.stations:
        teams |= set(session.scalars(select(Team.code).where(Team.station.in_(principal.stations))))
    return clause & Patrol.team.in_(sorted(teams))


def get_patrol(session: Session, principal: Principal, patrol_id: int) -> Patrol:
    patrol = session.get(Patrol, patrol_id)
    # A patrol the user may not see answers exactly like one that does not exist.
    if patrol is None or not can_see(session, principal, patrol):
        raise NotFound(f"no patrol {patrol_id}")
    return patrol


def delete_patrol(session: Session, principal: Principal, patrol_id: int) -> None:
    """Remove a wrong upload (wrong datum, time zone or crew) so that the file can be uploaded
    again: by whoever uploaded it, a manager of its team's station, or an admin. Officers and
    other members of the team may see it but not delete it. The caller commits."""
    patrol = get_patrol(session, principal, patrol_id)
    station = session.scalar(select(Team.station).where(Team.code == patrol.team))
    allowed = (
        principal.is_admin
        or patrol.uploaded_by == principal.user_id
        or (principal.has(Role.STATION_MANAGER) and station in principal.stations)
    )
    if not allowed:
        raise PermissionDenied(
            "only the uploader, a manager of the team's station or an admin may delete a patrol"
        )
    removed = {
        **audit.snapshot(patrol, PATROL_AUDIT_FIELDS),
        "members": member_names(session, [patrol_id])[patrol_id],
    }
    # Explicit, child tables first: the same on SpatiaLite and PostGIS whatever the FK settings.
    for table in (PatrolSegment, PatrolVisit, PatrolFixes, PatrolMember):
        session.execute(delete(table).where(table.patrol_id == patrol_id))
    session.execute(delete(Patrol).where(Patrol.id == patrol_id))
    audit.record(session, principal, "patrol.delete", "patrol", patrol_id, audit.changes(removed, {}))


def member_names(session: Session, patrol_ids: list[int]) -> dict[int, list[str]]:
    rows = session.execute(
        select(PatrolMember.patrol_id, User.username)
        .join(User, User.id == PatrolMember.user_id)
        .where(PatrolMember.patrol_id.in_(patrol_ids))
        .order_by(User.username)
    ).all()
    names: dict[int, list[str]] = {pid: [] for pid in patrol_ids}
    for pid, name in rows:
        names[pid].append(name)
    return names


__all__ = [
    "UploadOptions",
    "UploadResult",
    "can_see",
    "get_patrol",
    "member_names",
    "patrol_fixes",
    "upload_patrol",
    "visible_patrols_clause",
]


# --- queries ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PatrolQuery:
    start: datetime | None = None
    end: datetime | None = None
    side: str | None = None
    team: str | None = None
    member: str | None = None
    grid: str | None = None
    limit: int = 100
    offset: int = 0


def list_patrols(session: Session, principal: Principal, q: PatrolQuery, *, simplified: bool = True):
    """(patrols with their line geometry as shapely, members, total matched), newest first."""
    query = select(Patrol)
    visible = visible_patrols_clause(session, principal)
    if visible is not None:
        query = query.where(visible)
    if q.start:
        query = query.where(func.coalesce(Patrol.ended_at, Patrol.uploaded_at) >= q.start)
    if q.end:
        query = query.where(func.coalesce(Patrol.started_at, Patrol.uploaded_at) < q.end)
    if q.side:
        query = query.where(Patrol.side == q.side)
    if q.team:
        query = query.where(Patrol.team == q.team)
    if q.member:
        query = query.where(
            Patrol.id.in_(
                select(PatrolMember.patrol_id)
                .join(User, User.id == PatrolMember.user_id)
                .where(User.username == q.member)
            )
        )
    if q.grid:
        grid_id = session.scalar(select(Grid.id).where(Grid.code == q.grid))
        if grid_id is None:
            raise InvalidRequest(f"unknown grid {q.grid!r}")
        query = query.where(
            Patrol.id.in_(select(PatrolVisit.patrol_id).where(PatrolVisit.grid_id == grid_id))
        )
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    column = Patrol.geom_simplified if simplified else Patrol.geom
    rows = session.execute(
        query.add_columns(func.ST_AsBinary(column))
        .order_by(func.coalesce(Patrol.started_at, Patrol.uploaded_at).desc(), Patrol.id.desc())
        .limit(q.limit)
        .offset(q.offset)
    ).all()
    patrols = [r[0] for r in rows]
    geoms = [_stored_line(r[1]) for r in rows]
    return patrols, geoms, member_names(session, [p.id for p in patrols]), total


def _stored_line(wkb) -> shapely.Geometry | None:
    """A stored line as shapely; None (a feature without geometry) for NULL, empty or unreadable
    values, which uploads before the line checks may have left: a read never fails on them."""
    if wkb is None:
        return None
    geom = shapely.from_wkb(bytes(wkb), on_invalid="ignore")
    return None if geom is None or geom.is_empty else geom


def patrol_properties(patrol: Patrol, members: list[str]) -> dict[str, Any]:
    return {
        "id": patrol.id,
        "side": patrol.side,
        "team": patrol.team,
        "members": members,
        "transport": patrol.transport,
        "datum": patrol.datum,
        "started_at": iso_utc(patrol.started_at),
        "ended_at": iso_utc(patrol.ended_at),
        "distance_km": round(patrol.distance_m / 1000, 3),
        "duration_min": None if patrol.duration_s is None else round(patrol.duration_s / 60, 1),
        "outside_grids_km": round(patrol.outside_distance_m / 1000, 3),
        "fixes": patrol.fix_count,
        "flagged_fixes": patrol.flagged_count,
        "flags": patrol.summary.get("flags", {}),
        "grids": patrol.summary.get("grids", []),
        "warnings": patrol.summary.get("warnings", []),
        "source_name": patrol.source_name,
        "source_format": patrol.source_format,
        "uploaded_at": iso_utc(patrol.uploaded_at),
        "notes": patrol.notes,
    }


@dataclass(frozen=True)
class NearbyPatrol:
    approach: Approach
    patrol: Patrol
    members: list[str]


def nearby_patrols(session: Session, principal: Principal, q: NearQuery) -> list[NearbyPatrol]:
    """The patrols ``principal`` may see that came within the radius of the point during the
    interval, closest first, each with its closest approach (``patrol.segments``)."""
    found = patrols_near(session, principal, q, visible_patrols_clause(session, principal))
    ids = [a.patrol_id for a in found]
    patrols = {p.id: p for p in session.scalars(select(Patrol).where(Patrol.id.in_(ids)))} if ids else {}
    names = member_names(session, ids) if ids else {}
    return [NearbyPatrol(a, patrols[a.patrol_id], names[a.patrol_id]) for a in found]


# Whom to ask about something seen at a place: who was within walking sight of it that day.
BEFORE_SEEN_RADIUS_M = 500.0
BEFORE_SEEN_WINDOW = timedelta(hours=24)
BEFORE_SEEN_LIMIT = 20


def patrols_before_seen(
    session: Session, principal: Principal, lon: float, lat: float, seen_at: datetime
) -> list[NearbyPatrol]:
    """The patrols ``principal`` may see that passed within BEFORE_SEEN_RADIUS_M of a place in the
    BEFORE_SEEN_WINDOW before something was seen there (an incident's ``observed_at``), closest
    first: the people a manager asks what they saw."""
    seen_at = utc(seen_at)
    query = NearQuery(
        lon, lat, BEFORE_SEEN_RADIUS_M, seen_at - BEFORE_SEEN_WINDOW, seen_at, BEFORE_SEEN_LIMIT
    )
    return nearby_patrols(session, principal, query)


def nearby_properties(item: NearbyPatrol) -> dict[str, Any]:
    """A nearby patrol as GeoJSON properties: who, when, and the closest approach."""
    p = item.patrol
    return {
        **approach_dict(item.approach),
        "side": p.side,
        "team": p.team,
        "members": item.members,
        "transport": p.transport,
        "started_at": iso_utc(p.started_at),
        "ended_at": iso_utc(p.ended_at),
    }
