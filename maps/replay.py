"""Patrol replay: one patrol, or one team's day, played over time with a slider; the grids the
walk crossed are highlighted, the grid it is in at each moment more strongly."""

from __future__ import annotations

import numpy as np
import pandas as pd

from maps.base import (
    TEAM_COLORS,
    Basemap,
    Control,
    FilterForm,
    JsLayer,
    Overlay,
    Script,
    basemap_form_html,
    delta_encode,
    feature_collection,
    finish,
    h,
    legend_html,
    line_key,
    local_time,
    new_map,
    script_json,
    swatch,
)


def replay_map(data, base: Basemap, *, decimals: int = 5, form: FilterForm | None = None):
    """The folium map of ``patrol.map_data.ReplayData``; ``form`` adds the basemap choice (served maps)."""
    overlay = Overlay(base, decimals)
    start = min(float(t.seconds[0]) for t in data.tracks if len(t.seconds))
    end = max(float(t.seconds[-1]) for t in data.tracks if len(t.seconds))
    tracks, all_lon, all_lat = [], [], []
    teams = sorted(data.labels.teams)
    for i, t in enumerate(data.tracks):
        lon, lat = overlay.lonlat(t.lon, t.lat)
        all_lon.append(lon)
        all_lat.append(lat)
        # One patrol in its team's colour; a team's day in one colour per patrol, to tell them apart.
        team_colour = teams.index(t.team) if t.team in teams else i
        color = TEAM_COLORS[(team_colour if len(data.tracks) == 1 else i) % len(TEAM_COLORS)]
        tracks.append(
            {
                "id": t.patrol_id,
                "color": color,
                "label": f"#{t.patrol_id} {t.members} · {t.distance_km} km",
                "coords": delta_encode(lon, lat),
                "t": np.round(t.seconds - start).astype(int).tolist(),
            }
        )
    lon, lat = np.concatenate(all_lon), np.concatenate(all_lat)
    grid_geoms = overlay.geometries(data.grids.geometry.to_numpy())
    m = new_map((float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())), base)

    props = []
    for g in data.grids.itertuples():
        # Every grid starts plain: the crossed ones light up as the patrol reaches them.
        style = {"color": "#7f8c8d", "weight": 1, "fillColor": "#d5dbdb", "fillOpacity": 0.15}
        props.append(
            {
                "code": g.code,
                "style": style,
                "tooltip": f"{h(g.code)} {h(g.name_zh)} · {h(g.name_en)}",
                "popup": f"<b>{h(g.code)} {h(g.name_zh)}</b><br>{h(g.name_en)}<br>{g.area_ha:,.1f} ha"
                + ("<br><b>本次经过 Crossed by this replay</b>" if g.crossed else ""),
            }
        )
    grid_layer = JsLayer("polygons", feature_collection(grid_geoms, props), name="网格 Grids")
    grid_layer.add_to(m)

    visits = data.visits
    track_index = {t.patrol_id: i for i, t in enumerate(data.tracks)}
    visit_rows = [
        [
            track_index[int(v.patrol_id)],
            v.grid,
            round(float(v.entered) - start),
            round(float(v.exited) - start),
        ]
        for v in visits.itertuples()
        if np.isfinite(v.entered) and np.isfinite(v.exited)
    ]
    payload = script_json({"start": start, "tracks": tracks, "visits": visit_rows})
    Script(
        f"window.mangroveReplay = MangroveMaps.replay({{map}}, {grid_layer.get_name()}, {payload});"
    ).add_to(m)

    crossed = sorted(set(visits.grid))
    Control(
        legend_html(
            [
                ("巡护 Patrols", [line_key(t["color"], h(t["label"])) for t in tracks]),
                (
                    "网格 Grids",
                    [
                        swatch("#fad7a0", "经过的网格 Crossed", border="#d35400"),
                        swatch("#e74c3c", "当前所在 Where the patrol is now", border="#c0392b"),
                        swatch("#d5dbdb", "其他网格 Other grids", border="#7f8c8d"),
                    ],
                ),
            ]
        ),
        position="bottomright",
    ).add_to(m)
    Control(
        f"<h1>{h(data.title)}</h1><p>{local_time(pd.Timestamp(start, unit='s'))} – {local_time(pd.Timestamp(end, unit='s'), '%H:%M')} (UTC+8)</p>"
        f"<p class='mp-muted'>经过网格 Grids crossed: {h(', '.join(crossed) or '—')}</p>",
        position="topleft",
    ).add_to(m)
    if form and form.basemaps:
        Control(basemap_form_html(form, base), position="topleft").add_to(m)
    finish(m)
    return m
