"""Incidents on a map: clustered markers coloured by status (or by side) with a character for the
category, and a heat map. Shared by the station and joint-enforcement maps."""

from __future__ import annotations

import numpy as np
import pandas as pd
from folium.plugins import FastMarkerCluster, HeatMap

from maps.base import SIDE_COLORS, STATUS_COLORS, Overlay, glyph, ink, local_times, script_json


def incident_rows(
    incidents: pd.DataFrame, labels, overlay: Overlay, *, border_distance_m: float | None = None
):
    """(rows, lookups) for ``MangroveMaps.incidentMarker``: one short list per incident."""
    categories = sorted(set(incidents.category) | set(labels.categories))
    statuses = list(labels.statuses)
    sides = sorted(set(incidents.side.dropna()) | set(labels.sides))
    lookups = {
        "categories": [
            {
                "code": c,
                "glyph": glyph(c, labels.categories.get(c, ("", ""))[0]),
                "zh": labels.categories.get(c, (c, c))[0],
                "en": labels.categories.get(c, (c, c))[1],
            }
            for c in categories
        ],
        "statuses": [
            {
                "code": s,
                "zh": labels.statuses[s][0],
                "en": labels.statuses[s][1],
                "color": STATUS_COLORS.get(s, "#555"),
                "ink": ink(STATUS_COLORS.get(s, "#555")),
                "open": s in labels.open_statuses,
            }
            for s in statuses
        ],
        "sides": [
            {
                "code": s,
                "zh": labels.sides.get(s, (s, s))[0],
                "en": labels.sides.get(s, (s, s))[1],
                "color": SIDE_COLORS.get(s, "#555"),
            }
            for s in sides
        ],
    }
    if incidents.empty:
        return [], lookups
    lon, lat = overlay.lonlat(incidents.lon.to_numpy(), incidents.lat.to_numpy())
    category_index = incidents.category.map({c: i for i, c in enumerate(categories)}).to_numpy()
    status_index = incidents.status.map({s: i for i, s in enumerate(statuses)}).to_numpy()
    side_index = incidents.side.map({s: i for i, s in enumerate(sides)}).fillna(0).astype(int).to_numpy()
    due = np.where(incidents.status == "reported", incidents.accept_due, incidents.resolve_due)
    flags = np.char.add(
        np.char.add(
            np.where(incidents.joint_case_id.notna(), "j", ""),
            np.where(incidents.referred_to.notna(), "r", ""),
        ),
        np.where(
            incidents.border_distance_m <= border_distance_m if border_distance_m is not None else False,
            "n",
            "",
        ),
    )
    rows = list(
        zip(
            lat.tolist(),
            lon.tolist(),
            incidents.id.astype(int).tolist(),
            category_index.tolist(),
            status_index.tolist(),
            incidents.overdue.notna().astype(int).tolist(),
            local_times(incidents.observed_at),
            local_times(pd.Series(due)),
            incidents.grid.where(incidents.grid.notna(), None).tolist(),
            side_index.tolist(),
            flags.tolist(),
        )
    )
    return [list(r) for r in rows], lookups


def add_incidents(
    m,
    incidents,
    labels,
    overlay,
    *,
    name,
    color_by="status",
    link="",
    border_distance_m=None,
    heat=True,
    grid_names: dict | None = None,
):
    rows, lookups = incident_rows(incidents, labels, overlay, border_distance_m=border_distance_m)
    lookups["colorBy"] = color_by
    lookups["link"] = link
    # The names of the grids the incidents are in (popups show the name after the code).
    used = set(incidents.grid.dropna()) if len(incidents) else set()
    lookups["gridNames"] = {c: n for c, n in (grid_names or {}).items() if c in used}
    # Category labels are admins' free text: script_json keeps them from ending the page's script.
    callback = f"MangroveMaps.incidentMarker({script_json(lookups)});"
    FastMarkerCluster(
        rows,
        callback=callback,
        name=name,
        icon_create_function="MangroveMaps.clusterIcon",
        disableClusteringAtZoom=16,
        chunkedLoading=False,  # clustered before the first frame: the first render is the full one
        showCoverageOnHover=False,
    ).add_to(m)
    if heat and rows:
        HeatMap(
            [[r[0], r[1]] for r in rows],
            name="事件热力图 Incident heat map",
            show=False,
            radius=16,
            blur=20,
            min_opacity=0.35,
        ).add_to(m)
    return lookups
