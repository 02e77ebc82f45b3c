"""Encounter rates: incidents per 10 km and per 100 hours of patrol, with exact Poisson intervals.

A rate over a short patrol is mostly noise (one incident over 2 km is "5 per 10 km"), so every rate
carries its interval and a flag when the effort behind it is too small to read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import chi2

from patrol.errors import InvalidRequest

ALL = "all"


def poisson_interval(k, exposure, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Garwood) interval for a Poisson rate: k events over ``exposure``, vectorised.

    lower = χ²(α/2; 2k) / 2 / exposure, upper = χ²(1-α/2; 2k+2) / 2 / exposure, with α = 1 -
    confidence; k = 0 gives lower 0 (χ² with 0 degrees of freedom is undefined, the bound is 0).
    An exposure of 0 gives NaN bounds: no rate can be stated.
    """
    if not 0 < confidence < 1:
        raise InvalidRequest(f"confidence must be between 0 and 1, not {confidence!r}", field="confidence")
    k = np.asarray(k, dtype=float)
    exposure = np.asarray(exposure, dtype=float)
    if (k < 0).any():
        raise InvalidRequest("incident counts cannot be negative", field="k")
    tail = (1 - confidence) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        lower = np.where(k > 0, chi2.ppf(tail, 2 * k) / 2, 0.0)
        upper = chi2.ppf(1 - tail, 2 * k + 2) / 2
        positive = exposure > 0
        lower = np.where(positive, lower / np.where(positive, exposure, 1), np.nan)
        upper = np.where(positive, upper / np.where(positive, exposure, 1), np.nan)
    return lower, upper


def _require(frame: pd.DataFrame, columns: list[str], field: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InvalidRequest(f"{field} lacks the column(s) {', '.join(missing)}", field=field)


def encounter_rates(
    counts: pd.DataFrame,
    effort: pd.DataFrame,
    *,
    confidence: float = 0.95,
    min_km: float = 5.0,
    min_hours: float = 5.0,
) -> pd.DataFrame:
    """Incidents per 10 km and per 100 h for every grid × category, with exact Poisson intervals.

    ``counts``: ``grid``, ``category``, ``incidents``; ``effort``: ``grid``, ``km``, ``hours`` (repeated
    grids are summed). The rows are every grid of either frame crossed with every category in
    ``counts`` plus ``"all"`` (the sum over categories): a category never met in a well-patrolled
    grid is a 0 rate with a useful upper bound, not a missing row. A grid with incidents but no
    effort row has 0 km and 0 h.

    Rate per 10 km = incidents / km × 10; its interval is the exact (Garwood) Poisson interval on
    the count divided by the km and × 10 (``poisson_interval``). Per 100 h likewise with hours.
    Rates and bounds are NaN where the effort is 0. ``too_little_effort`` is true when km < min_km
    or hours < min_hours, and ``note`` says which ("less than 5 km patrolled; less than 5 h ..."),
    missing (NA) otherwise.
    """
    if not 0 < confidence < 1:
        raise InvalidRequest(f"confidence must be between 0 and 1, not {confidence!r}", field="confidence")
    for name, value in (("min_km", min_km), ("min_hours", min_hours)):
        if not np.isfinite(value) or value < 0:
            raise InvalidRequest(f"{name} must be a non-negative number", field=name)
    _require(counts, ["grid", "category", "incidents"], "counts")
    _require(effort, ["grid", "km", "hours"], "effort")
    incidents = pd.to_numeric(counts["incidents"], errors="coerce")
    if incidents.isna().any() or (incidents < 0).any() or (incidents % 1 != 0).any():
        raise InvalidRequest("incidents must be whole numbers ≥ 0", field="counts")
    km_hours = effort[["km", "hours"]].apply(pd.to_numeric, errors="coerce")
    if km_hours.isna().any().any() or (km_hours < 0).any().any():
        raise InvalidRequest("km and hours must be numbers ≥ 0", field="effort")
    if (counts["category"].astype(str) == ALL).any():
        raise InvalidRequest(f"{ALL!r} is reserved for the sum over categories", field="counts")

    per_cat = (
        counts.assign(incidents=incidents.astype(np.int64))
        .groupby(["grid", "category"], sort=True)["incidents"]
        .sum()
    )
    exposure = (
        effort.assign(km=km_hours["km"], hours=km_hours["hours"]).groupby("grid")[["km", "hours"]].sum()
    )
    grids = exposure.index.union(per_cat.index.get_level_values("grid").unique())
    categories = [*sorted(per_cat.index.get_level_values("category").unique()), ALL]
    totals = per_cat.groupby(level="grid").sum()
    full = pd.MultiIndex.from_product([grids, categories], names=["grid", "category"])
    n = per_cat.reindex(full, fill_value=0)
    n[full.get_level_values("category") == ALL] = totals.reindex(grids, fill_value=0).to_numpy()

    out = n.rename("incidents").reset_index()
    grid_effort = exposure.reindex(out["grid"], fill_value=0.0)
    out["km"] = grid_effort["km"].to_numpy(dtype=float)
    out["hours"] = grid_effort["hours"].to_numpy(dtype=float)
    k = out["incidents"].to_numpy(dtype=float)
    for unit, column, scale in (("10km", "km", 10.0), ("100h", "hours", 100.0)):
        e = out[column].to_numpy()
        low, high = poisson_interval(k, e, confidence)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"per_{unit}"] = np.where(e > 0, k / np.where(e > 0, e, 1) * scale, np.nan)
        out[f"per_{unit}_low"] = low * scale
        out[f"per_{unit}_high"] = high * scale
    short_km = out["km"].to_numpy() < min_km
    short_h = out["hours"].to_numpy() < min_hours
    out["too_little_effort"] = short_km | short_h
    km_note = np.where(short_km, f"less than {min_km:g} km patrolled", "")
    h_note = np.where(short_h, f"less than {min_hours:g} h patrolled", "")
    both = np.char.add(np.char.add(km_note, np.where(short_km & short_h, "; ", "")), h_note)
    out["note"] = np.where(both == "", None, both.astype(object))
    out.attrs["method"] = (
        f"incidents per 10 km and per 100 h; exact Poisson (Garwood) {confidence:.0%} intervals; "
        f"effort below {min_km:g} km or {min_hours:g} h flagged"
    )
    return out


__all__ = ["ALL", "encounter_rates", "poisson_interval"]
