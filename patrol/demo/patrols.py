"""A season of synthetic patrols for the demo: GPX files as patrol members' phones would write them.

Each team walks the mangrove edge of its grids (a line 15–40 m inside the grid boundary) or boats
a creek across them and back, at 1–5 s between fixes, with GPS noise, the odd spike, a few lost
fixes, and some uploads exported from a Chinese map app in GCJ-02. Deterministic for a seed.
Invented data: never real patrols.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import shapely

from geodata import reference
from geodata.crs import METRIC, WGS84, transformer
from geodata.datum import wgs84_to_gcj02

CHINA = timedelta(hours=8)


@dataclass(frozen=True)
class SyntheticPatrol:
    team: str
    member: str  # username of the demo member who walked it
    transport: str  # "foot" or "boat"
    datum: str  # as declared on upload
    filename: str
    gpx: bytes


# The demo member who uploads each team's patrols (see patrol.demo.DEMO_USERS).
TEAM_MEMBERS = {
    "LJ-T-GQ": "gq-member-07",
    "LJ-T-YZ": "yz-member-12",
    "LJ-T-CB": "cb-member-02",
    "LJ-T-AP": "ap-member-05",
    "LJ-T-LD": "ld-member-09",
    "HP-T-SK": "sk-member-03",
}


def season(
    *, days: int = 90, end: datetime | None = None, seed: int = 2026, patrols_per_team_week: float = 3.0
) -> Iterator[SyntheticPatrol]:
    """Patrols of every team over ``days`` days ending at ``end`` (default: today), in time order."""
    rng = np.random.default_rng(seed)
    end = end or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    grids = reference.load_grids().to_crs(METRIC)
    plans = []
    for team, member in TEAM_MEMBERS.items():
        team_grids = grids[grids.team == team]
        if team_grids.empty:
            continue
        count = max(1, int(round(days / 7 * patrols_per_team_week)))
        for day in np.sort(rng.choice(days, size=min(count, days), replace=False)):
            local_start = timedelta(hours=float(rng.uniform(6.5, 9.5)))  # morning low tide, local time
            start = end - timedelta(days=int(days - day)) + local_start - CHINA
            plans.append((start, team, member, team_grids))
    plans.sort(key=lambda p: p[0])
    for number, (start, team, member, team_grids) in enumerate(plans):
        yield _patrol(rng, number, start, team, member, team_grids)


def _patrol(rng, number: int, start: datetime, team: str, member: str, team_grids) -> SyntheticPatrol:
    boat = rng.random() < 0.3
    interval = float(rng.choice([1, 2, 3, 5]))
    if boat:
        x, y = _creek(rng, team_grids)
        speed = rng.uniform(3.0, 5.0)
    else:
        x, y = _edge_walk(rng, team_grids)
        speed = rng.uniform(0.9, 1.3)
    # Resample the route at the fix interval, then add GPS noise (σ ≈ 4 m, wandering over about a
    # minute as real receivers' errors do, not jumping fix to fix) and the odd spike.
    step = speed * interval
    route = shapely.linestrings(x, y)
    distances = np.arange(0, shapely.length(route), step)
    points = shapely.line_interpolate_point(route, distances)
    px, py = shapely.get_x(points), shapely.get_y(points)
    px = px + _wandering_noise(rng, len(px), sigma_m=4.0, window=max(2, int(60 / interval)))
    py = py + _wandering_noise(rng, len(py), sigma_m=4.0, window=max(2, int(60 / interval)))
    seconds = np.arange(len(px)) * interval
    keep = rng.random(len(px)) > 0.01  # a few lost fixes
    px, py, seconds = px[keep], py[keep], seconds[keep]
    for _ in range(rng.poisson(1.0)):  # multipath spikes of a few hundred metres
        i = int(rng.integers(1, max(2, len(px) - 1)))
        px[i] += rng.choice([-1, 1]) * rng.uniform(200, 600)
    lon, lat = transformer(METRIC, WGS84).transform(px, py)
    gcj = rng.random() < 0.1  # exported from a Chinese map app
    if gcj:
        lon, lat = wgs84_to_gcj02(np.asarray(lon), np.asarray(lat))
    times = [start + timedelta(seconds=float(s)) for s in seconds]
    name = f"{team.lower()}-{start.strftime('%Y%m%d-%H%M')}-{number:04d}.gpx"
    return SyntheticPatrol(
        team=team,
        member=member,
        transport="boat" if boat else "foot",
        datum="gcj02" if gcj else "wgs84",
        filename=name,
        gpx=_gpx(lon, lat, times, name),
    )


def _wandering_noise(rng, n: int, *, sigma_m: float, window: int) -> np.ndarray:
    """Noise with standard deviation ``sigma_m`` that drifts smoothly over ``window`` fixes:
    white noise through a moving average. White noise at 1 Hz would add ~5 m of zig-zag per
    fix, i.e. turn a 12 km walk into 80 km."""
    white = rng.normal(0, 1, n + window - 1)
    smooth = np.convolve(white, np.ones(window) / np.sqrt(window), mode="valid")
    return sigma_m * smooth


def _edge_walk(rng, team_grids) -> tuple[np.ndarray, np.ndarray]:
    """Along the mangrove edge of one or two grids: part of a ring 15–40 m inside the boundary."""
    grid = team_grids.geometry.iloc[int(rng.integers(len(team_grids)))]
    inner = shapely.buffer(grid, -float(rng.uniform(15, 40)))
    polygon = max(shapely.get_parts(inner), key=shapely.area) if not inner.is_empty else grid
    ring = shapely.get_exterior_ring(
        polygon if polygon.geom_type == "Polygon" else shapely.get_parts(polygon)[0]
    )
    total = shapely.length(ring)
    walk = min(total * 0.95, float(rng.uniform(2500, 7000)))
    begin = float(rng.uniform(0, total))
    along = (begin + np.linspace(0, walk, 400)) % total
    points = shapely.line_interpolate_point(ring, along)
    x, y = shapely.get_x(points), shapely.get_y(points)
    if rng.random() < 0.5:  # walk back the same way
        x, y = np.concatenate([x, x[::-1]]), np.concatenate([y, y[::-1]])
    return x, y


def _creek(rng, team_grids) -> tuple[np.ndarray, np.ndarray]:
    """A boat run through the team's grids along a wandering creek, and back."""
    inside = shapely.point_on_surface(team_grids.geometry.values)
    order = rng.permutation(len(inside))[: max(2, min(4, len(inside)))]
    stops = inside[order]
    x, y = shapely.get_x(stops), shapely.get_y(stops)
    if len(x) == 1:
        x, y = np.array([x[0] - 500, x[0] + 500]), np.array([y[0], y[0]])
    t = np.linspace(0, len(x) - 1, 200)
    cx = np.interp(t, np.arange(len(x)), x) + 60 * np.sin(t * 5)
    cy = np.interp(t, np.arange(len(y)), y) + 60 * np.cos(t * 4)
    return np.concatenate([cx, cx[::-1]]), np.concatenate([cy, cy[::-1]])


def _gpx(lon, lat, times: list[datetime], name: str) -> bytes:
    points = "\n".join(
        f'<trkpt lat="{la:.7f}" lon="{lo:.7f}"><time>{t.strftime("%Y-%m-%dT%H:%M:%SZ")}</time></trkpt>'
        for lo, la, t in zip(lon, lat, times)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<gpx version="1.1" creator="Mangrove Patrol demo" xmlns="http://www.topografix.com/GPX/1/1">\n'
        f"<trk><name>{name}</name><trkseg>\n{points}\n</trkseg></trk>\n</gpx>\n"
    ).encode()
