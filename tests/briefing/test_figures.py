"""The briefing's images are renderings of the data: pixels where a grid's fill, an incident's
marker and a hot-spot outline must be, and background where nothing is (positions from the map's
axes transform). No database."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib import colormaps
from matplotlib.colors import to_rgb
from utils.briefing import ORIGIN, SIDE_M, empty_briefing, png_pixels, scene_briefing, scene_incidents

from patrol.briefing import figures


def rendered(briefing):
    """(pixels, to_pixel): the map as RGB pixels and a function giving the (row, col) of a point
    in metres, from the axes transform of the very figure that was saved."""
    fig = figures.map_figure(briefing)
    fig.canvas.draw()  # settles the equal-aspect axes before positions are read
    ax = fig.axes[0]
    width, height = fig.canvas.get_width_height()
    transform = ax.transData

    def to_pixel(x, y):
        px, py = transform.transform((x, y))
        return int(round(height - py)), int(round(px))

    pixels = png_pixels(figures.to_png(fig, dpi=fig.dpi))
    assert pixels.shape[:2] == (height, width)
    return pixels, to_pixel


def colour_at(pixels, where, radius=1):
    """The median colour of the small square around ``where`` (0–1 RGB)."""
    r, c = where
    patch = pixels[r - radius : r + radius + 1, c - radius : c + radius + 1].reshape(-1, 3)
    return np.median(patch, axis=0) / 255


def close(actual, expected, tol=0.06) -> bool:
    return bool(np.all(np.abs(np.asarray(actual) - np.asarray(to_rgb(expected))) <= tol))


def test_the_map_shows_grid_fills_markers_and_outlines_where_the_data_puts_them():
    pixels, at = rendered(scene_briefing())
    x0, y0 = ORIGIN
    # T-01 has the most km per ha: the darkest colour of the scale, away from its label and markers.
    t01 = colour_at(pixels, at(x0 + 1700, y0 + 1700))
    assert close(t01, colormaps[figures.EFFORT_CMAP](1.0)[:3]), t01
    # T-02 was not patrolled: grey.
    assert close(colour_at(pixels, at(x0 + SIDE_M + 300, y0 + 300)), figures.NO_EFFORT_COLOUR)
    # T-03's little effort: the pale end of the scale, not grey and not white.
    t03 = colour_at(pixels, at(x0 + 2 * SIDE_M + 1700, y0 + 300))
    assert close(t03, colormaps[figures.EFFORT_CMAP](0.015 / 0.2)[:3], tol=0.08), t03
    # The reported incident (red) at its place, the in-progress one (olive) at its place.
    assert close(colour_at(pixels, at(x0 + 1500, y0 + 500), radius=0), figures.STATUS_COLOURS["reported"])
    in_progress = at(x0 + 2 * SIDE_M + 500, y0 + 500)
    assert close(colour_at(pixels, in_progress, radius=0), figures.STATUS_COLOURS["in_progress"])
    # The significant hot-spot cell's outline on its western edge.
    edge = at(x0 + 250, y0 + 500)
    assert close(colour_at(pixels, edge, radius=0), figures.HOT_COLOUR, tol=0.12)
    # Outside every grid (east of T-03, inside the map's margin): background only.
    assert close(colour_at(pixels, at(x0 + 3 * SIDE_M + 120, y0 + 1000)), figures.BACKGROUND, tol=0.02)


def test_without_the_incident_its_pixel_shows_the_grid_fill():
    incidents = scene_incidents()
    pixels, at = rendered(scene_briefing(incidents=incidents[incidents.status != "reported"]))
    x0, y0 = ORIGIN
    where = colour_at(pixels, at(x0 + 1500, y0 + 500), radius=0)
    assert not close(where, figures.STATUS_COLOURS["reported"])
    assert close(where, colormaps[figures.EFFORT_CMAP](1.0)[:3])


def test_the_fill_follows_the_chosen_effort_metric():
    b = scene_briefing()
    b.grids["km_per_ha"] = [0.01, 0.0, 0.2]  # T-03 now the most patrolled
    pixels, at = rendered(b)
    x0, y0 = ORIGIN
    assert close(
        colour_at(pixels, at(x0 + 2 * SIDE_M + 1700, y0 + 300)), colormaps[figures.EFFORT_CMAP](1.0)[:3]
    )
    assert not close(colour_at(pixels, at(x0 + 1700, y0 + 1700)), colormaps[figures.EFFORT_CMAP](1.0)[:3])


def test_charts_are_png_at_print_resolution_and_none_without_data():
    b = scene_briefing()
    images = figures.all_figures(b)
    for name, png in images.items():
        assert png is not None and png.startswith(b"\x89PNG"), name
        height, width = png_pixels(png).shape[:2]
        assert width >= 1300, (name, width)  # 6.8 in at 200 dpi
    empty = figures.all_figures(empty_briefing())
    assert empty["weekly"] is None and empty["incidents"] is None and empty["close_time"] is None
    assert empty["map"] is not None  # the grids, all grey


@pytest.mark.parametrize("metric", ["km_per_ha", "patrols"])
def test_the_map_draws_with_either_metric(metric):
    assert figures.static_map(scene_briefing(), metric=metric).startswith(b"\x89PNG")


def test_the_cjk_font_is_found():
    path = figures.setup_fonts()
    assert path is not None and "wqy" in path.lower()


def test_figures_drawn_in_parallel_threads_are_the_same_as_drawn_alone():
    """The service draws briefings in worker threads: no shared pyplot state between them."""
    from concurrent.futures import ThreadPoolExecutor

    b = scene_briefing()
    alone = figures.all_figures(b)
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda _: figures.all_figures(b), range(4)))
    assert all(images == alone for images in together)
