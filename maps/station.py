"""The station map: grids coloured by patrol effort, tracks by team, incidents clustered and as a
heat map, for a station, town or set of grids over a period."""

from __future__ import annotations

from dataclasses import dataclass

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
# Encounter rates (incidents per 10 km, all categories) in fixed classes, as the effort is.
RATE_BREAKS = (0.1, 0.3, 1.0, 3.0)
RATE_COLORS = ["#fef0d9", "#fdcc8a", "#fc8d59", "#e34a33", "#b30000"]  # ColorBrewer OrRd
RATE_CLASSES = ("少于0.1 under 0.1", "0.1–0.3", "0.3–1", "1–3", "3 以上 or more")
TOO_LITTLE = "#bdbdbd"
HOT, COLD = "#b2182b", "#2166ac"


@dataclass(frozen=True)
class Metric:
    """A measure of patrol effort per week, in fixed classes: the same breaks whatever the period,
    place or data, so a colour means the same thing on every map. ``classes`` names each class
    (Chinese first); there is one more class than breaks."""

    column: str  # per-week value in the grids' frame (``patrol.map_data``)
    label: str
    breaks: tuple[float, ...]
    classes: tuple[str, ...]
    decimals: int = 1


METRICS = {
    "patrols": Metric(
        "patrols_per_week",
        "巡护频次 Patrols a week",
        (0.5, 1, 3, 7),
        (
            "少于每两周1次 less than 1 patrol a fortnight",
            "每两周1次至每周1次 1 a fortnight to 1 a week",
            "每周1–3次 1–3 a week",
            "每周3–7次 3–7 a week",
            "每天1次以上 daily or more",
        ),
    ),
    "km_per_ha": Metric(
        "km_per_ha_week",
        "公里/公顷/周 km per ha a week",
        (0.01, 0.03, 0.1, 0.3),
        (
            "每周每公顷少于0.01公里 under 0.01 km per ha a week",
            "0.01–0.03 公里 km",
            "0.03–0.1 公里 km",
            "0.1–0.3 公里 km",
            "0.3 公里以上 km or more",
        ),
        decimals=3,
    ),
    "hours_per_ha": Metric(
        "hours_per_ha_week",
        "小时/公顷/周 hours per ha a week",
        (0.01, 0.03, 0.1, 0.3),
        (
            "每周每公顷少于0.01小时 under 0.01 h per ha a week",
            "0.01–0.03 小时 h",
            "0.03–0.1 小时 h",
            "0.1–0.3 小时 h",
            "0.3 小时以上 h or more",
        ),
        decimals=3,
    ),
}
DEFAULT_METRIC = "patrols"


def effort_classes(values: np.ndarray, metric: Metric) -> np.ndarray:
    """Each value's class: -1 for no effort, else 0 … len(breaks) by the metric's fixed breaks (a
    value on a break belongs to the class above it)."""
    values = np.nan_to_num(np.asarray(values, dtype=float))
    return np.where(values > 0, np.searchsorted(np.asarray(metric.breaks), values, side="right"), -1)


def effort_colors(values: np.ndarray, metric: Metric) -> list[str]:
    return [NO_EFFORT if c < 0 else EFFORT_COLORS[c] for c in effort_classes(values, metric).tolist()]


def _grid_popup(g, labels, metric: Metric, desk_link: str = "") -> str:
    town = labels.towns.get(g.town, (g.town or "", ""))
    team = labels.teams.get(g.team, (g.team or "—", ""))
    rows = [
        ("乡镇 Town", f"{h(town[0])} {h(town[1])}"),
        ("队伍 Team", f"{h(team[0])}<br>{h(team[1])}"),
        ("面积 Area", f"{g.area_ha:,.1f} ha"),
        ("巡护 Patrols", f"{int(g.patrols or 0)} ({int(g.patrol_days or 0)} 天 days)"),
        ("里程 Distance", f"{(g.km or 0):.1f} km"),
        ("时长 Time", "—" if pd.isna(g.hours) else f"{g.hours:.1f} h"),
        (metric.label, f"{g.effort:.{metric.decimals}f}"),
        ("最近巡护 Last patrolled", local_time(g.last_patrolled) or "—"),
        ("未结事件 Open incidents", str(int(g.open_incidents))),
    ]
    table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    warn = "<p class='mp-late'>久未巡护 Not patrolled lately</p>" if g.unpatrolled else ""
    return (
        f"<b>{h(g.code)} {h(g.name_zh)}</b><br>{h(g.name_en)}{warn}<table class='mp-table'>{table}</table>"
        + desk_grid_link(desk_link, g.code)
    )


def _analysis_layers(m, data, overlay: Overlay) -> tuple[list, list]:
    """The encounter-rate layer (off at first: it recolours the grids) and the hot-spot cells;
    their legend sections. Nothing for the roles that do not analyse."""
    rate_legend, hot_legend = [], []
    if data.rates is not None and len(data.rates):
        rates = data.rates.set_index("grid")
        grids = data.grids[data.grids.code.isin(rates.index)]
        geoms = overlay.geometries(grids.geometry.to_numpy())
        props = []
        for code, name in zip(grids.code, grids.name_zh):
            r = rates.loc[code]
            few = bool(r["too_little_effort"])
            value = r["per_10km"]
            if few or pd.isna(value):
                fill, text = (
                    TOO_LITTLE,
                    f"巡护不足，无法判断 too little effort to say ({h(r.get('note') or '')})",
                )
            else:
                fill = RATE_COLORS[int(np.searchsorted(RATE_BREAKS, value, side="right"))]
                text = (f"{value:.2f} / 10 km ({r['per_10km_low']:.2f}–{r['per_10km_high']:.2f}), "
                        f"{int(r['incidents'])} 事件 incidents / {r['km']:.1f} km")  # fmt: skip
            props.append({
                "code": code,
                "style": {"color": "#555", "weight": 1, "fillColor": fill, "fillOpacity": 0.85,
                          **({"dashArray": "3 3"} if few else {})},
                "tooltip": f"{h(code)} {h(name)}: {text}",
                "popup": f"<b>{h(code)} {h(name)}</b><br>遇见率 Encounter rate<br>{text}",
            })  # fmt: skip
        JsLayer("polygons", feature_collection(geoms, props), name="遇见率 Encounter rate (per 10 km)",
                show=False, options={"overGrids": True}).add_to(m)  # fmt: skip
        keys = [swatch(c, t) for c, t in zip(RATE_COLORS, RATE_CLASSES)]
        keys.append(swatch(TOO_LITTLE, "巡护不足 too little effort", dash=True))
        rate_legend = [("遇见率 Incidents per 10 km (layer)", keys)]
    if data.hotspots is not None and len(data.hotspots):
        cells = data.hotspots
        geoms = overlay.geometries(cells.geometry.to_numpy())
        props = []
        for c in cells.itertuples():
            hot = c.kind == "hot"
            label = "热点 Hot spot" if hot else "冷点 Cold spot"
            text = (
                f"{label}: {int(c.count)} 事件 incidents, z = {c.z:.2f}, p (corrected) = {c.p_adjusted:.4f}"
            )
            props.append({
                "code": str(c.cell),
                "style": {"color": HOT if hot else COLD, "weight": 2, "fillColor": HOT if hot else COLD,
                          "fillOpacity": 0.25},
                "tooltip": h(text),
                "popup": h(text) + f"<br><span class='mp-muted'>{h(data.hotspot_method)}</span>",
            })  # fmt: skip
        JsLayer("polygons", feature_collection(geoms, props), name=f"热点 Hot spots ({len(cells)})").add_to(m)
        hot_legend = [("热点分析 Hot spots (Gi*)", [swatch(HOT, "热点 hot spot", border=HOT),
                                                swatch(COLD, "冷点 cold spot", border=COLD),
                                                f"<span class='mp-muted'>{h(data.hotspot_method)}</span>"])]  # fmt: skip
    return rate_legend, hot_legend


def station_map(
    data,
    base: Basemap,
    *,
    metric: str = DEFAULT_METRIC,
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
    measure = METRICS[metric]
    overlay = Overlay(base, decimals)
    grids = data.grids.copy()
    geoms = overlay.geometries(grids.geometry.to_numpy())
    focus = grids.code.isin(data.focus).to_numpy() if data.focus else np.ones(len(grids), dtype=bool)
    m = new_map(overlay.bounds(geoms[focus] if focus.any() else geoms), base)

    grids["effort"] = grids[measure.column].fillna(0).to_numpy(dtype=float)
    colors = effort_colors(grids.effort.to_numpy(), measure)
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
                "popup": _grid_popup(g, data.labels, measure, desk_link),
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
                data.labels.name("transports", t.transport),
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

    rate_legend, hot_legend = _analysis_layers(m, data, overlay)

    lookups = add_incidents(
        m,
        data.incidents,
        data.labels,
        overlay,
        name=f"事件 Incidents ({len(data.incidents)})",
        link=link,
        grid_names=dict(zip(grids.code, grids.name_zh)),
    )

    ranges = [swatch(NO_EFFORT, "未巡护 not patrolled")]
    ranges += [swatch(color, h(text)) for color, text in zip(EFFORT_COLORS, measure.classes)]
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
                (f"巡护强度 Effort ({measure.label})", ranges),
                ("巡护轨迹 Tracks by team", team_legend + tracks_note),
                *rate_legend,
                *hot_legend,
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
            select("metric", "强度 Effort", [(k, v.label) for k, v in METRICS.items()], [metric]),
            f"<label>未巡护天数 Not patrolled for (days) <input type='number' name='unpatrolled_days' min='1' "
            f"max='3650' value='{data.unpatrolled_days}'></label>",
        ]
        Control(form_html(form, base, data.start, data.end, fields), position="topleft").add_to(m)
    finish(m)
    return m
