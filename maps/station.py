"""The station map: grids coloured by patrol effort, tracks by team, incidents clustered and as a
heat map, for a station, town or set of grids over a period."""

from __future__ import annotations

import numpy as np
import pandas as pd

from maps.base import (
    LABEL_MIN_ZOOM,
    TEAM_COLORS,
    Basemap,
    Control,
    FilterForm,
    JsLayer,
    Overlay,
    desk_grid_link,
    feature_collection,
    finish,
    form_html,
    grid_labels,
    h,
    last_local_day,
    legend_html,
    line_key,
    line_parts,
    local_day,
    local_time,
    local_times,
    new_map,
    select,
    swatch,
)
from maps.incidents import add_incidents

EFFORT_COLORS = ["#edf8e9", "#bae4b3", "#74c476", "#31a354", "#006d2c"]  # ColorBrewer Greens
NO_EFFORT = "#f2f2f2"
UNPATROLLED = "#d7301f"
METRICS = {"km_per_ha": "公里/公顷 km per ha", "hours_per_ha": "小时/公顷 hours per ha"}


def effort_breaks(values: np.ndarray, classes: int = len(EFFORT_COLORS)) -> np.ndarray:
    """Upper bounds of ``classes`` quantile classes of the non-zero values (zero is its own class)."""
    positive = values[np.isfinite(values) & (values > 0)]
    if positive.size == 0:
        return np.array([])
    return np.unique(np.quantile(positive, np.linspace(0, 1, classes + 1)[1:]))


def effort_colors(values: np.ndarray, breaks: np.ndarray) -> list[str]:
    idx = np.searchsorted(breaks, values, side="left")
    return [
        NO_EFFORT if not (v > 0) else EFFORT_COLORS[min(i, len(EFFORT_COLORS) - 1)]
        for v, i in zip(values, idx)
    ]


def _grid_popup(g, labels, metric_label: str, desk_link: str = "") -> str:
    town = labels.towns.get(g.town, (g.town or "", ""))
    team = labels.teams.get(g.team, (g.team or "—", ""))
    rows = [
        ("乡镇 Town", f"{h(town[0])} {h(town[1])}"),
        ("队伍 Team", f"{h(team[0])}<br>{h(team[1])}"),
        ("面积 Area", f"{g.area_ha:,.1f} ha"),
        ("巡护 Patrols", f"{int(g.patrols or 0)} ({int(g.patrol_days or 0)} 天 days)"),
        ("里程 Distance", f"{(g.km or 0):.1f} km"),
        ("时长 Time", "—" if pd.isna(g.hours) else f"{g.hours:.1f} h"),
        (metric_label, f"{g.effort:.3f}"),
        ("最近巡护 Last patrolled", local_time(g.last_patrolled) or "—"),
        ("未结事件 Open incidents", str(int(g.open_incidents))),
    ]
    table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    warn = "<p class='mp-late'>久未巡护 Not patrolled lately</p>" if g.unpatrolled else ""
    return (
        f"<b>{h(g.code)} {h(g.name_zh)}</b><br>{h(g.name_en)}{warn}<table class='mp-table'>{table}</table>"
        + desk_grid_link(desk_link, g.code)
    )


def station_map(
    data,
    base: Basemap,
    *,
    metric: str = "km_per_ha",
    decimals: int = 5,
    link: str = "",
    replay_link: str = "",
    desk_link: str = "",
    form: FilterForm | None = None,
):
    """The folium map of ``patrol.map_data.StationMapData``. Links (URL prefixes, '' for none):
    ``link`` + an incident's id, ``replay_link`` + a patrol's id, ``desk_link`` + a grid's code (the
    desk's open incidents of that grid, for the users who have a desk)."""
    if metric not in METRICS:
        raise ValueError(f"unknown effort measure {metric!r}: use one of {', '.join(METRICS)}")
    metric_label = METRICS[metric]
    overlay = Overlay(base, decimals)
    grids = data.grids.copy()
    geoms = overlay.geometries(grids.geometry.to_numpy())
    m = new_map(overlay.bounds(geoms), base)

    grids["effort"] = grids[metric].fillna(0).to_numpy(dtype=float)
    breaks = effort_breaks(grids.effort.to_numpy())
    colors = effort_colors(grids.effort.to_numpy(), breaks)
    props = []
    for g, color in zip(grids.itertuples(), colors):
        style = {"color": "#333", "weight": 1.2, "fillColor": color, "fillOpacity": 0.75}
        if g.unpatrolled:
            style.update(color=UNPATROLLED, weight=3, dashArray="6 4")
        props.append(
            {
                "code": g.code,
                "style": style,
                "tooltip": f"{h(g.code)} {h(g.name_zh)} · {h(g.name_en)}",
                "popup": _grid_popup(g, data.labels, metric_label, desk_link),
            }
        )
    # In the tracks' canvas, beneath them: a track inside a grid shows in its own colour and its
    # click opens the track's popup (with the replay link), not the grid's.
    JsLayer(
        "polygons",
        feature_collection(geoms, props),
        name="网格巡护强度 Grid patrol effort",
        options={"underTracks": True},
    ).add_to(m)
    JsLayer(
        "labels",
        grid_labels(geoms, grids.code),
        name="网格编号 Grid codes",
        options={"minZoom": LABEL_MIN_ZOOM},
    ).add_to(m)

    teams = sorted(data.labels.teams)
    team_legend = []
    if data.tracks is not None and len(data.tracks):
        tracks = data.tracks
        team_index = {t: i for i, t in enumerate(teams)}
        moved = overlay.geometries(tracks.geometry.to_numpy())
        rows = [
            [
                team_index.get(t.team, 0),
                int(t.id),
                day,
                round(float(t.distance_m) / 1000, 2),
                t.members,
                t.transport,
                line_parts(geom),
            ]
            for t, day, geom in zip(tracks.itertuples(), local_times(tracks.started_at), moved)
        ]
        JsLayer(
            "tracks",
            {
                "teams": [
                    {
                        "code": t,
                        "zh": data.labels.teams[t][0],
                        "en": data.labels.teams[t][1],
                        "color": TEAM_COLORS[i % len(TEAM_COLORS)],
                    }
                    for i, t in enumerate(teams)
                ],
                "rows": rows,
                "replay": replay_link,
            },
            name=f"巡护轨迹 Patrol tracks ({len(rows)})",
        ).add_to(m)
        shown = sorted(set(tracks.team))
        team_legend = [
            line_key(
                TEAM_COLORS[team_index[t] % len(TEAM_COLORS)],
                f"{h(data.labels.teams[t][0])} <span class='mp-muted'>{h(data.labels.teams[t][1])}</span>",
            )
            for t in shown
            if t in team_index
        ]

    lookups = add_incidents(
        m, data.incidents, data.labels, overlay, name=f"事件 Incidents ({len(data.incidents)})", link=link
    )

    ranges = [swatch(NO_EFFORT, "0 未巡护 none")]
    lower = 0.0
    for color, upper in zip(EFFORT_COLORS, breaks):
        ranges.append(swatch(color, f"{lower:.3g}–{upper:.3g}"))
        lower = upper
    ranges.append(
        swatch(
            "#fff",
            f"≥ {data.unpatrolled_days} 天未巡护 not patrolled for {data.unpatrolled_days}+ days",
            border=UNPATROLLED,
            dash=True,
        )
    )
    used = set(data.incidents.category) if len(data.incidents) else set()
    categories = [
        f"<span class='mp-inc' style='background:#555'>{h(c['glyph'])}</span>{h(c['zh'])} {h(c['en'])}"
        for c in lookups["categories"]
        if c["code"] in used
    ]
    statuses = [
        f"<span class='mp-dot' style='background:{s['color']}'></span>{h(s['zh'])} {h(s['en'])}"
        for s in lookups["statuses"]
    ] + ["<span class='mp-inc mp-overdue' style='background:#d7191c'></span>超时 Overdue"]
    tracks_note = []
    if data.tracks is None:
        tracks_note = [
            "<span class='mp-muted'>轨迹仅对有权限的角色显示 Tracks are shown only to roles allowed to see them</span>"
        ]
    Control(
        legend_html(
            [
                (f"巡护强度 Effort ({metric_label})", ranges),
                ("巡护轨迹 Tracks by team", team_legend + tracks_note),
                ("事件状态 Incident status", statuses),
                ("事件类别 Incident category", categories),
            ]
        ),
        position="bottomright",
    ).add_to(m)
    n_tracks = 0 if data.tracks is None else len(data.tracks)
    Control(
        f"<h1>{h(data.title)}</h1><p>{local_day(data.start)} – {last_local_day(data.end)}"
        f" (UTC+8)</p><p class='mp-muted'>{len(grids)} 个网格 grids · {n_tracks} 条轨迹 tracks · "
        f"{len(data.incidents)} 个事件 incidents · {h(base.label)}</p>",
        position="topleft",
        css_class="mp-title",
    ).add_to(m)
    if form:
        fields = [
            select("metric", "强度 Effort", list(METRICS.items()), [metric]),
            f"<label>未巡护天数 Not patrolled for (days) <input type='number' name='unpatrolled_days' min='1' "
            f"max='3650' value='{data.unpatrolled_days}'></label>",
        ]
        Control(form_html(form, base, data.start, data.end, fields), position="topleft").add_to(m)
    finish(m)
    return m
