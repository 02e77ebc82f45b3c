"""The cross-provincial joint-enforcement map: both sides' grids, the border and the strip near it,
each side's incidents in its colour, joint cases and referred incidents highlighted, and a filter
form (served maps) for the period, categories and statuses."""

from __future__ import annotations

import numpy as np
import shapely

from maps.base import (
    LABEL_MIN_ZOOM,
    SIDE_COLORS,
    Basemap,
    Control,
    FilterForm,
    JsLayer,
    Overlay,
    anchor,
    desk_grid_link,
    feature_collection,
    finish,
    form_html,
    grid_labels,
    h,
    last_local_day,
    legend_html,
    line_key,
    local_day,
    local_time,
    new_map,
    select,
    swatch,
)
from maps.incidents import add_incidents

BORDER_COLOR = "#c0392b"


def _filter_fields(data) -> list[str]:
    f = data.filters
    categories = [(code, f"{zh} {en}") for code, (zh, en) in sorted(data.labels.categories.items())]
    statuses = [(code, f"{zh} {en}") for code, (zh, en) in data.labels.statuses.items()]
    return [
        select("category", "类别 Category", categories, f.categories, multiple=True),
        select("status", "状态 Status", statuses, f.statuses, multiple=True),
    ]


def joint_map(
    data,
    base: Basemap,
    *,
    decimals: int = 5,
    link: str = "",
    case_link: str = "",
    desk_link: str = "",
    form: FilterForm | None = None,
):
    """The folium map of ``patrol.map_data.JointMapData``; ``form`` adds the filter form (served maps).
    Links (URL prefixes, '' for none): ``link`` + an incident's id, ``case_link`` + a joint case's
    id, ``desk_link`` + a grid's code (the desk's open incidents of that grid)."""
    overlay = Overlay(base, decimals)
    grids = data.grids
    geoms = overlay.geometries(grids.geometry.to_numpy())
    border = overlay.geometries(np.array([data.border], dtype=object))[0]
    band = overlay.geometries(np.array([data.border_band], dtype=object))[0]
    m = new_map(overlay.bounds(np.append(geoms, band)), base)

    props = []
    for g in grids.itertuples():
        side = data.labels.sides.get(g.side, (g.side, g.side))
        town = data.labels.towns.get(g.town, ("", ""))
        props.append(
            {
                "code": g.code,
                "style": {
                    "color": SIDE_COLORS.get(g.side, "#555"),
                    "weight": 1.2,
                    "fillColor": SIDE_COLORS.get(g.side, "#555"),
                    "fillOpacity": 0.18,
                },
                "tooltip": f"{h(g.code)} {h(g.name_zh)} · {h(side[0])}",
                "popup": f"<b>{h(g.code)} {h(g.name_zh)}</b><br>{h(g.name_en)}"
                f"<table class='mp-table'><tr><th>一方 Side</th><td>{h(side[0])} {h(side[1])}</td></tr>"
                f"<tr><th>乡镇 Town</th><td>{h(town[0])} {h(town[1])}</td></tr>"
                f"<tr><th>面积 Area</th><td>{g.area_ha:,.1f} ha</td></tr></table>"
                + desk_grid_link(desk_link, g.code),
            }
        )
    JsLayer(
        "polygons", feature_collection(geoms, props), name="两省网格/保护区 Grids and zones of both sides"
    ).add_to(m)
    JsLayer(
        "labels",
        grid_labels(geoms, grids.code),
        name="网格编号 Grid codes",
        show=False,
        options={"minZoom": LABEL_MIN_ZOOM},
    ).add_to(m)
    km = data.border_distance_m / 1000
    JsLayer(
        "polygons",
        feature_collection(
            [band],
            [
                {
                    "style": {
                        "color": BORDER_COLOR,
                        "weight": 0,
                        "fillColor": BORDER_COLOR,
                        "fillOpacity": 0.08,
                    },
                    "tooltip": f"省界 {km:g} km 范围 Within {km:g} km of the border",
                }
            ],
        ),
        name=f"省界附近 {km:g} km Near the border",
    ).add_to(m)
    xy = shapely.get_coordinates(border)
    JsLayer(
        "polygons",
        feature_collection(
            [shapely.linestrings(xy)],
            [
                {
                    "style": {"color": BORDER_COLOR, "weight": 3, "dashArray": "10 6"},
                    "tooltip": "粤桂省界 Guangdong–Guangxi border (approximate)",
                }
            ],
        ),
        name="粤桂省界 Provincial border",
    ).add_to(m)

    lookups = add_incidents(
        m,
        data.incidents,
        data.labels,
        overlay,
        name=f"事件 Incidents ({len(data.incidents)})",
        color_by="side",
        link=link,
        border_distance_m=data.border_distance_m,
        grid_names=dict(zip(grids.code, grids.name_zh)),
    )
    if data.cases:
        lon, lat = overlay.lonlat([c["lon"] for c in data.cases], [c["lat"] for c in data.cases])
        rows = []
        for case, x, y in zip(data.cases, lon, lat):
            sides = sorted({p["side"] for p in case["participants"]})
            number = f"#{int(case['id'])}"
            heading = anchor(f"{case_link}{int(case['id'])}", number, new_tab=True) if case_link else number
            incidents = ", ".join(
                anchor(f"{link}{int(i)}", f"#{int(i)}", new_tab=True) if link else f"#{int(i)}"
                for i in case["incident_ids"]
            )
            popup = (
                f"<b>联合案件 Joint case {heading}</b><br>{h(case['title'])}<table class='mp-table'>"
                f"<tr><th>状态 Status</th><td>{'办理中 open' if case['status'] == 'open' else '已结 closed'}</td></tr>"
                f"<tr><th>立案 Opened</th><td>{local_time(case['opened_at'])}</td></tr>"
                f"<tr><th>参与方 Sides</th><td>{'<br>'.join(h(data.labels.name('sides', c)) for c in sides)}</td></tr>"
                f"<tr><th>事件 Incidents</th><td>{incidents}</td></tr>"
                "</table>"
            )
            rows.append(
                [float(y), float(x), f"<span class='mp-case' title='{h(case['title'])}'>★</span>", popup]
            )
        JsLayer("cases", rows, name=f"联合案件 Joint cases ({len(rows)})").add_to(m)

    sides = [
        swatch(
            color,
            f"{h(data.labels.sides.get(code, (code, ''))[0])} {h(data.labels.sides.get(code, ('', code))[1])}",
            border=color,
        )
        for code, color in SIDE_COLORS.items()
    ]
    rings = [
        f"<span class='mp-inc mp-ringed' style='background:#fff;border-color:{color}'></span>"
        f"{h(data.labels.sides.get(code, (code, ''))[0])} {h(data.labels.sides.get(code, ('', code))[1])}"
        for code, color in SIDE_COLORS.items()
    ]
    statuses = [
        f"<span class='mp-dot' style='background:{s['color']}'></span>{h(s['zh'])} {h(s['en'])}"
        + ("" if s["open"] else " <span class='mp-muted'>已结 settled</span>")
        for s in lookups["statuses"]
    ]
    Control(
        legend_html(
            [
                ("一方 Sides (grids)", sides),
                ("事件状态 Incident status (fill)", statuses),
                ("事件所属方 Incident side (ring)", rings),
                (
                    "省界 Border",
                    [
                        line_key(BORDER_COLOR, "粤桂省界 Provincial border"),
                        swatch("#f6dcd9", f"{km:g} km 内 Within {km:g} km", border=BORDER_COLOR),
                    ],
                ),
                (
                    "标记 Markers",
                    [
                        "<span class='mp-inc mp-joint' style='background:#555'></span>联合案件事件 In a joint case",
                        "<span class='mp-inc mp-referred' style='background:#555'></span>已移交 Referred to the other side",
                        f"<span class='mp-inc mp-near' style='background:#555'></span>近省界 Within {km:g} km of the border",
                        "<span class='mp-inc mp-ringed mp-overdue' style='background:#fff;border-color:#555'></span>超时 Overdue (double ring)",
                        "<span class='mp-case'>★</span>联合案件 Joint case",
                    ],
                ),
            ]
        ),
        position="bottomright",
    ).add_to(m)
    period = (
        f"{local_day(data.start)} – {last_local_day(data.end)} (UTC+8)"
        "<br><span class='mp-muted'>及全部未结事件 and every open incident</span>"
    )
    Control(
        f"<h1>粤桂联合执法图 Joint enforcement map</h1><p>{period}</p>"
        f"<p class='mp-muted'>{len(data.incidents)} 个事件 incidents · {len(data.cases)} 个联合案件 joint cases · "
        f"{h(base.label)}</p>",
        position="topleft",
    ).add_to(m)
    if form:
        Control(form_html(form, base, data.start, data.end, _filter_fields(data)), position="topleft").add_to(
            m
        )
    finish(m)
    return m


def offline_joint_page(data, title: str, *, decimals: int = 5) -> str:
    """The joint map as one self-contained page without a basemap: every library inlined and
    nothing to fetch, so it opens anywhere, offline (the joint-case evidence package)."""
    from maps.assets import to_html
    from maps.base import basemap

    return to_html(joint_map(data, basemap("none"), decimals=decimals), self_contained=True, title=title)
