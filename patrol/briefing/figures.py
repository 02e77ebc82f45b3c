"""The briefing's images, drawn on the server with matplotlib (Agg, no display, no tile server):
the static map and the charts, each as PNG bytes at print resolution.

Chinese labels need a CJK font: WenQuanYi Zen Hei (Debian's fonts-wqy-zenhei), found through
fontconfig or at its usual path, added to matplotlib's font manager once. Without it the labels
fall back to DejaVu Sans (the Chinese characters then show as boxes, the figures still draw).

A figure with nothing to show is not drawn: its function returns None and the page says why.
"""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
import threading
from functools import lru_cache
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib import colormaps, font_manager, patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize, to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

# geopandas' plotting imports pyplot: never a display backend on the server.
matplotlib.use("Agg")

CJK_FAMILY = "WenQuanYi Zen Hei"
KNOWN_FONT_PATHS = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/wqy-zenhei/wqy-zenhei.ttc",
)
DPI = 200  # print resolution: a 17 cm wide figure is ~1,340 px
MAP_SIZE = (6.8, 6.2)  # inches: the width, and the height at most (the map, its legend below)
CHART_SIZE = (6.8, 3.0)
FRAME_MARGIN = 0.08  # of the grids' extent, around them on the map

# Incident markers by status: open ones warm, answered ones cool, dismissed ones grey; none green,
# so that they stand out on the green effort scale (YlGn) of the grids.
STATUS_COLOURS = {
    "reported": "#d62728",
    "accepted": "#ff7f0e",
    "in_progress": "#e7298a",
    "resolved": "#1f77b4",
    "closed": "#6a3d9a",
    "rejected": "#7f7f7f",
    "duplicate": "#c7c7c7",
}
STATUS_LABELS = {
    "reported": "已报告 Reported",
    "accepted": "已受理 Accepted",
    "in_progress": "处理中 In progress",
    "resolved": "已办结 Resolved",
    "closed": "已关闭 Closed",
    "rejected": "不予受理 Rejected",
    "duplicate": "重复 Duplicate",
}
NO_EFFORT_COLOUR = "#e8e8e8"  # a grid nobody patrolled this month
EFFORT_CMAP = "YlGn"
HOT_COLOUR = "#b2182b"
COLD_COLOUR = "#2166ac"
BACKGROUND = "#ffffff"


def font_path() -> str | None:
    """The WenQuanYi Zen Hei file: fontconfig's answer, else a known path; None if absent."""
    if shutil.which("fc-match"):
        try:
            found = subprocess.run(
                ["fc-match", "-f", "%{file}", CJK_FAMILY], capture_output=True, text=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            found = ""
        if found and "wqy" in found.lower() and Path(found).is_file():
            return found
    for path in KNOWN_FONT_PATHS:
        if Path(path).is_file():
            return path
    return None


_FONT_LOCK = threading.Lock()


def setup_fonts() -> str | None:
    with _FONT_LOCK:  # the first briefings may be drawn by several threads at once
        return _setup_fonts()


@lru_cache(maxsize=1)
def _setup_fonts() -> str | None:
    """Add the CJK font to matplotlib once and make it the first sans-serif family."""
    # The font's only face is "Medium" (500): matplotlib says so on every lookup of "normal".
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    path = font_path()
    if path is not None:
        font_manager.fontManager.addfont(path)
        matplotlib.rcParams["font.sans-serif"] = [CJK_FAMILY, "DejaVu Sans"]
    else:
        matplotlib.rcParams["font.sans-serif"] = ["DejaVu Sans"]
    matplotlib.rcParams["font.family"] = "sans-serif"
    matplotlib.rcParams["axes.unicode_minus"] = False  # the CJK font has no U+2212 minus
    return path


def to_png(fig: Figure, dpi: int = DPI) -> bytes:
    """The figure as an RGB PNG, pixel for pixel as laid out (no tight bounding box: the map's
    pixel positions stay computable from its axes transform). No alpha channel: the page is
    white, and WeasyPrint embeds an opaque PNG far faster than it splits off a transparency mask."""
    from PIL import Image

    if dpi != fig.dpi:
        fig.set_dpi(dpi)
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buffer, format="PNG", dpi=(dpi, dpi))
    return buffer.getvalue()


def _figure(size) -> Figure:
    setup_fonts()
    # A bare Figure on its own Agg canvas, not pyplot: pyplot's global figure registry is not
    # safe for the service's worker threads drawing briefings at the same time.
    fig = Figure(figsize=size, dpi=DPI, facecolor=BACKGROUND)
    FigureCanvasAgg(fig)
    return fig


# --- the map -----------------------------------------------------------------------------------


def effort_values(grids, metric: str) -> np.ndarray:
    return grids[metric].fillna(0).to_numpy(dtype=float) if metric in grids else np.zeros(len(grids))


def map_figure(briefing, *, metric: str = "km_per_ha") -> Figure | None:
    """The static map in EPSG:32649 metres: grids filled by effort (``km_per_ha`` or ``patrols``;
    grey where nobody patrolled), incidents as dots coloured by status, significant hot-spot
    cells outlined (hot red, cold blue), grid codes labelled; a colour bar and a legend beside the
    map, never over it. None when there is no grid to draw."""
    grids = briefing.grids
    if grids is None or len(grids) == 0:
        return None
    # The frame is the grids' extent with a margin: incidents far out at sea would shrink the
    # grids to specks. Those outside the frame are counted beneath the map instead.
    minx, miny, maxx, maxy = grids.total_bounds
    pad = max(maxx - minx, maxy - miny) * FRAME_MARGIN + 50
    minx, miny, maxx, maxy = minx - pad, miny - pad, maxx + pad, maxy + pad
    incidents = briefing.incidents
    outside = 0
    if incidents is not None and len(incidents):
        inside = incidents["x"].between(minx, maxx) & incidents["y"].between(miny, maxy)
        outside = int((~inside).sum())
        incidents = incidents[inside]
    # The figure takes the map's shape (within limits), so no band of white is left above and below.
    width_in, map_w = MAP_SIZE[0], MAP_SIZE[0] * 0.82
    aspect = min(max((maxy - miny) / (maxx - minx), 0.45), 1.5)
    map_h, legend_h = map_w * aspect, 0.55
    height_in = map_h + legend_h + 0.15
    fig = _figure((width_in, height_in))
    ax = fig.add_axes((0.02, (legend_h + 0.05) / height_in, 0.82, map_h / height_in))
    cax = fig.add_axes((0.87, (legend_h + 0.05 + map_h * 0.15) / height_in, 0.022, map_h * 0.7 / height_in))
    ax.set_facecolor(BACKGROUND)
    values = effort_values(grids, metric)
    top = float(values.max()) if len(values) and values.max() > 0 else 1.0
    norm = Normalize(vmin=0, vmax=top)
    cmap = colormaps[EFFORT_CMAP]
    colours = [tuple(cmap(norm(v))) if v > 0 else to_rgba(NO_EFFORT_COLOUR) for v in values]
    grids.plot(ax=ax, color=colours, edgecolor="#555555", linewidth=0.5, zorder=1)
    cells = briefing.hotspots
    if cells is not None and len(cells):
        significant = cells[cells["significant"].astype(bool)] if "significant" in cells else cells
        for kind, colour in (("hot", HOT_COLOUR), ("cold", COLD_COLOUR)):
            chosen = significant[significant["kind"] == kind] if "kind" in significant else significant
            if len(chosen):
                chosen.boundary.plot(ax=ax, color=colour, linewidth=1.2, zorder=3)
    shown_status = []
    if incidents is not None and len(incidents):
        for status, colour in STATUS_COLOURS.items():
            part = incidents[incidents["status"] == status]
            if len(part):
                shown_status.append(status)
                ax.scatter(part["x"], part["y"], s=9, c=colour, edgecolors="white", linewidths=0.3, zorder=4)
    points = grids.geometry.representative_point()
    fontsize = 5 if len(grids) > 20 else 6.5
    for code, p in zip(grids["code"], points):
        ax.annotate(
            code,
            (p.x, p.y),
            ha="center",
            va="center",
            fontsize=fontsize,
            color="#111111",
            zorder=5,
            path_effects=[patheffects.withStroke(linewidth=1.8, foreground="white")],
        )
    ax.set_xlim(minx, maxx)
    ax.set_ylim(miny, maxy)
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.set_aspect("equal", adjustable="box", anchor="C")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color("#999999")
    _scale_bar(ax)
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax)
    bar.ax.tick_params(labelsize=6)
    bar.set_label("巡护强度 km/ha" if metric == "km_per_ha" else "巡护次数 patrols", fontsize=7)
    handles = [Patch(facecolor=NO_EFFORT_COLOUR, edgecolor="#555555", label="本月未巡护 Not patrolled")]
    handles += [
        Line2D([], [], marker="o", linestyle="", markersize=4, markerfacecolor=STATUS_COLOURS[s],
               markeredgecolor="white", label=STATUS_LABELS[s])
        for s in shown_status
    ]  # fmt: skip
    handles += [
        Patch(facecolor="none", edgecolor=HOT_COLOUR, label="热点 Hot spot (Gi*, FDR)"),
        Patch(facecolor="none", edgecolor=COLD_COLOUR, label="冷点 Cold spot"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=6, frameon=False,
               bbox_to_anchor=(0.45, 0.0))  # fmt: skip
    if outside:
        fig.text(0.02, 1 - 0.015 / height_in, f"另有 {outside} 起事件在图幅外 "
                 f"{outside} more incident{'s' if outside != 1 else ''} outside the frame",
                 fontsize=6, va="top", color="#555555")  # fmt: skip
    return fig


def _scale_bar(ax) -> None:
    """A scale bar of a round length in the lower left corner (the axes are metres)."""
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    target = (x1 - x0) / 5
    length = next(
        (n for n in (50_000, 20_000, 10_000, 5_000, 2_000, 1_000, 500, 200, 100) if n <= target), 100
    )
    x, y = x0 + (x1 - x0) * 0.04, y0 + (y1 - y0) * 0.04
    ax.plot([x, x + length], [y, y], color="#222222", linewidth=1.5, zorder=6)
    label = f"{length / 1000:g} km" if length >= 1000 else f"{length} m"
    ax.annotate(label, (x + length / 2, y), xytext=(0, 3), textcoords="offset points", ha="center",
                va="bottom", fontsize=6, zorder=6)  # fmt: skip


def static_map(briefing, *, metric: str = "km_per_ha") -> bytes | None:
    fig = map_figure(briefing, metric=metric)
    return None if fig is None else to_png(fig)


# --- charts ------------------------------------------------------------------------------------


def weekly_effort_chart(briefing) -> bytes | None:
    """Kilometres (bars) and patrols (line) per week of the month."""
    weekly = briefing.weekly
    if weekly is None or len(weekly) == 0 or (weekly["patrols"].sum() == 0 and weekly["km"].sum() == 0):
        return None
    fig = _figure(CHART_SIZE)
    ax = fig.add_axes((0.09, 0.2, 0.8, 0.68))
    labels = [pd.Timestamp(w).strftime("%m-%d") for w in weekly["week"]]
    positions = np.arange(len(weekly))
    ax.bar(positions, weekly["km"], color="#66a61e", width=0.6, label="里程 km")
    ax.set_ylabel("里程 km", fontsize=8)
    ax.set_xticks(positions, [f"{label}\n起 week of" for label in labels], fontsize=7)
    ax.tick_params(axis="y", labelsize=7)
    twin = ax.twinx()
    twin.plot(
        positions, weekly["patrols"], color="#1b4f72", marker="o", linewidth=1.5, label="巡护次数 patrols"
    )
    twin.set_ylabel("巡护次数 patrols", fontsize=8)
    twin.tick_params(axis="y", labelsize=7)
    twin.set_ylim(0, max(1, weekly["patrols"].max()) * 1.2)
    ax.set_title("每周巡护 Effort per week", fontsize=9)
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(handles=handles, fontsize=7, loc="upper left", frameon=False)
    return to_png(fig)


def _two_lines(label: str, width: int = 16) -> str:
    """A long "中文 English" label on two lines (Chinese, then English), so the axes keep their room."""
    if len(label) <= width or " " not in label:
        return label
    zh, _, en = label.partition(" ")
    return f"{zh}\n{en}" if len(en) <= 2 * width else f"{zh}\n{en[: 2 * width - 1]}…"


def incident_chart(briefing) -> bytes | None:
    """Incidents by category and by status, side by side."""
    incidents = briefing.incidents
    if incidents is None or len(incidents) == 0:
        return None
    fig = _figure((6.8, max(2.4, 0.2 * incidents["category"].nunique() + 1.2)))
    left = fig.add_axes((0.3, 0.15, 0.27, 0.72))
    right = fig.add_axes((0.75, 0.15, 0.22, 0.72))
    by_category = incidents["category"].value_counts().sort_values()
    names = [_two_lines(briefing.category_label(c)) for c in by_category.index]
    left.barh(names, by_category.to_numpy(), color="#7570b3")
    left.set_title("按类别 By category", fontsize=9)
    by_status = incidents["status"].value_counts().reindex(list(STATUS_COLOURS)).dropna()
    right.barh(
        [STATUS_LABELS.get(s, s) for s in by_status.index][::-1],
        by_status.to_numpy()[::-1],
        color=[STATUS_COLOURS.get(s, "#999999") for s in by_status.index][::-1],
    )
    right.set_title("按状态 By status", fontsize=9)
    for ax, counts in ((left, by_category), (right, by_status)):
        ax.tick_params(labelsize=7)
        top = float(counts.max()) if len(counts) else 1
        for y, v in enumerate(counts.to_numpy() if ax is left else counts.to_numpy()[::-1]):
            ax.annotate(
                f"{int(v)}", (v, y), xytext=(2, 0), textcoords="offset points", va="center", fontsize=6
            )
        ax.set_xlim(0, top * 1.2)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    return to_png(fig)


def close_time_chart(briefing) -> bytes | None:
    """Days from report to closure per category (box plots) for the month's closed incidents."""
    incidents = briefing.incidents
    if incidents is None or len(incidents) == 0 or "closed_at" not in incidents:
        return None
    done = incidents[incidents["closed_at"].notna()]
    if len(done) == 0:
        return None
    days = pd.to_datetime(done["closed_at"], utc=True) - pd.to_datetime(done["reported_at"], utc=True)
    days = days.dt.total_seconds() / 86400
    groups = [(c, days[done["category"] == c].to_numpy()) for c in sorted(done["category"].unique())]
    groups = [(c, v) for c, v in groups if len(v)]
    fig = _figure((6.8, max(2.2, 0.28 * len(groups) + 1.2)))
    ax = fig.add_axes((0.3, 0.2, 0.65, 0.68))
    ax.boxplot([v for _, v in groups], orientation="horizontal", widths=0.5, showfliers=True,
               flierprops={"markersize": 2}, medianprops={"color": "#d95f02"})  # fmt: skip
    jitter = np.random.default_rng(0)  # the same picture for the same data
    for i, (_, v) in enumerate(groups, start=1):
        ax.scatter(v, i + jitter.uniform(-0.12, 0.12, len(v)), s=4, color="#1b9e77", alpha=0.6, zorder=3)
    ax.set_yticks(
        range(1, len(groups) + 1), [_two_lines(f"{briefing.category_label(c)} ({len(v)})") for c, v in groups]
    )
    ax.tick_params(labelsize=7)
    ax.set_xlabel("报告至关闭天数 Days from report to closure", fontsize=8)
    ax.set_title("办结用时 Time to close", fontsize=9)
    ax.set_xlim(left=0)
    return to_png(fig)


def all_figures(briefing) -> dict[str, bytes | None]:
    return {
        "map": static_map(briefing),
        "weekly": weekly_effort_chart(briefing),
        "incidents": incident_chart(briefing),
        "close_time": close_time_chart(briefing),
    }
