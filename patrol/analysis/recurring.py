"""Recurring places: the same kind of incident coming back to the same spot month after month.

Incidents of one category are linked when they lie within ``distance_m`` of each other, and linked
chains form one place (single linkage, i.e. DBSCAN with min_samples=2: cKDTree pairs → connected
components). A place recurs when its incidents fall in at least ``min_months`` distinct calendar
months of China time (Asia/Shanghai): an incident at 23:30 UTC on 31 March is an April one there.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from patrol.errors import InvalidRequest

CHINA_TZ = "Asia/Shanghai"
COLUMNS = [
    "place",
    "category",
    "x",
    "y",
    "count",
    "n_months",
    "months",
    "first_observed",
    "last_observed",
    "incident_ids",
    "history",
]


def _clusters(x: np.ndarray, y: np.ndarray, distance_m: float) -> np.ndarray:
    """Single-linkage cluster label of each point (points alone get their own label)."""
    pairs = cKDTree(np.column_stack([x, y])).query_pairs(distance_m, output_type="ndarray")
    n = len(x)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def recurring_places(
    incidents: pd.DataFrame, *, distance_m: float = 200.0, min_months: int = 3
) -> pd.DataFrame:
    """Places where incidents of one category recur in at least ``min_months`` China-time months.

    ``incidents``: ``id``, ``category``, ``x``, ``y`` (metres, EPSG:32649), ``observed_at`` (tz-aware;
    naive values are taken as UTC). One row per place, most incidents first: ``place`` (1..n),
    ``category``, centre ``x``/``y`` (mean of its incidents), ``count``, ``n_months``, ``months``
    (sorted 'YYYY-MM' list), ``first_observed``/``last_observed`` (UTC), ``incident_ids`` (sorted by
    time) and ``history`` ({'YYYY-MM': count}).
    """
    try:
        distance = float(distance_m)
    except (TypeError, ValueError):
        distance = math.nan
    if not math.isfinite(distance) or distance <= 0:
        raise InvalidRequest(
            f"distance_m must be a positive number of metres, not {distance_m!r}", field="distance_m"
        )
    if isinstance(min_months, bool) or not isinstance(min_months, int | np.integer) or min_months < 2:
        raise InvalidRequest(f"min_months must be a whole number ≥ 2, not {min_months!r}", field="min_months")
    missing = [c for c in ("id", "category", "x", "y", "observed_at") if c not in incidents.columns]
    if missing:
        raise InvalidRequest(f"incidents lack the column(s) {', '.join(missing)}", field="incidents")
    if incidents.empty:
        return pd.DataFrame(columns=COLUMNS)

    frame = incidents[["id", "category", "x", "y", "observed_at"]].copy()
    observed = pd.to_datetime(frame["observed_at"])
    if observed.dt.tz is None:
        observed = observed.dt.tz_localize("UTC")
    frame["observed_at"] = observed.dt.tz_convert("UTC")
    frame["month"] = observed.dt.tz_convert(CHINA_TZ).dt.strftime("%Y-%m")
    xy = frame[["x", "y"]].to_numpy(dtype=float)
    if not np.isfinite(xy).all():
        raise InvalidRequest("incident coordinates must be finite metres", field="incidents")

    # One clustering per category (a handful), each vectorised; labels made unique across categories.
    labels = np.empty(len(frame), dtype=np.int64)
    offset = 0
    for _, rows in frame.groupby("category", sort=True).indices.items():
        lab = _clusters(xy[rows, 0], xy[rows, 1], distance)
        labels[rows] = lab + offset
        offset += int(lab.max()) + 1
    frame["label"] = labels

    months_per = frame.groupby("label")["month"].nunique()
    keep = months_per.index[months_per >= min_months]
    frame = frame[frame["label"].isin(keep)].sort_values(["label", "observed_at", "id"])
    if frame.empty:
        return pd.DataFrame(columns=COLUMNS)

    grouped = frame.groupby("label", sort=False)
    places = grouped.agg(
        category=("category", "first"),
        x=("x", "mean"),
        y=("y", "mean"),
        count=("id", "size"),
        first_observed=("observed_at", "min"),
        last_observed=("observed_at", "max"),
        incident_ids=("id", list),
    )
    history = frame.groupby(["label", "month"]).size()
    places["history"] = [dict(history.loc[label].items()) for label in places.index]
    places["months"] = [sorted(h) for h in places["history"]]
    places["n_months"] = [len(m) for m in places["months"]]
    places = places.sort_values(["count", "category", "first_observed"], ascending=[False, True, True])
    places.insert(0, "place", np.arange(1, len(places) + 1))
    out = places.reset_index(drop=True)[COLUMNS]
    out.attrs["method"] = (
        f"single linkage within {distance:g} m per category; places in ≥ {min_months} China-time months"
    )
    return out


__all__ = ["recurring_places"]
