"""Walks for the space–time tests: random walks in a grid, uploaded, and the near question asked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from pyproj import Geod

from geodata.crs import METRIC, WGS84, transformer
from utils.tracks import gpx, grid_metric

GEOD = Geod(ellps="WGS84")
T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


def wander(
    seed: int, *, grid: str, minutes: float, start: datetime, interval: float = 3.0, speed: float = 1.2
):
    """A random walk inside grid ``grid`` (lon, lat, times): headings drift, speed steady."""
    rng = np.random.default_rng(seed)
    centre = grid_metric(grid).representative_point()
    n = int(minutes * 60 / interval)
    heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.35, n))
    step = speed * interval
    x = centre.x + np.concatenate(([0], np.cumsum(step * np.cos(heading[:-1]))))
    y = centre.y + np.concatenate(([0], np.cumsum(step * np.sin(heading[:-1]))))
    lon, lat = transformer(METRIC, WGS84).transform(x, y)
    times = [start + timedelta(seconds=i * interval) for i in range(n)]
    return np.asarray(lon), np.asarray(lat), times


def upload(client, headers, lon, lat, times, name):
    response = client.post(
        "/api/v1/patrols", files={"file": (f"{name}.gpx", gpx(lon, lat, times, name=name))}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def near(client, headers, lon, lat, radius_m, start, end, **extra):
    params = {
        "lon": lon,
        "lat": lat,
        "radius_m": radius_m,
        "datetime": f"{start.isoformat()}/{end.isoformat()}",
    }
    return client.get("/api/v1/patrols/near", params=params | extra, headers=headers)
