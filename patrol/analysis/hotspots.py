"""Hot spots: incidents counted on a metric cell grid, Getis-Ord Gi* with a multiple-testing
correction, and a kernel density raster.

Everything is in metres (EPSG:32649, ``geodata.crs.METRIC``). Cells live on a lattice: squares are
indexed by (``col``, ``row``), pointy-top hexagons by axial coordinates (``col`` = q, ``row`` = r).
The lattice, not polygon geometry, is what makes counting a million points and building the
neighbours of 100,000 cells fast: both are integer arithmetic on arrays.

Why randomisation p-values, and computed rather than sampled: incidents are sparse counts (most
cells 0 or 1). The analytical normal approximation of Gi* ignores the skew of such counts, and under
Benjamini–Hochberg the test runs in the far tail where that error is largest: on uniform random
incidents it reports a false hot spot in 7–25 % of maps instead of at most 5 % (see
tests/analysis/test_hotspots.py). Conditional randomisation (each cell keeps its value, its k
neighbours are drawn from the other cells) keeps the rate at or below the level. Sampled with P
permutations its smallest p-value is 1 / (P + 1), and BH over m cells then passes nothing unless
m / (q (P + 1)) cells reach that floor: on 19,481 cells eight blatant clusters of 25,000 incidents
each came out "not significant". So for whole-number values (counts) the randomisation
distribution of the neighbour sum is computed exactly, by convolution of the other cells' value
distribution. It takes the k draws with replacement, a little wider than esda's draws without
replacement, so its p-values lean conservative; it agrees with 9,999 sampled permutations to within
their Monte Carlo error, and on uniform incidents it gave a false hot spot in 0–3 % of 200 maps.
Non-integer values (rates per unit effort) fall back to sampled permutations.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from esda import G_Local
from libpysal.graph import Graph
from scipy import fft, ndimage, sparse, stats
from scipy.spatial import cKDTree

from geodata.crs import METRIC
from patrol.errors import InvalidRequest

MAX_CELLS = 2_000_000
MAX_RASTER_CELLS = 25_000_000
SQRT3 = math.sqrt(3.0)
CORRECTIONS = ("fdr_bh", "bonferroni", "none")
INFERENCES = ("randomisation", "permutation", "normal")
_MAX_TABLE = 8_000_000  # floats in one batch of convolution tables
_MAX_WORK = 200_000_000  # floats in all convolution tables of one call (about a second or two)
_CORRECTION_NAMES = {"fdr_bh": "BH FDR", "bonferroni": "Bonferroni", "none": "no correction"}


# --------------------------------------------------------------------------------------------------
# The lattice
# --------------------------------------------------------------------------------------------------


def _check_cell_size(cell_size_m: float, width: float, height: float, field: str = "cell_m") -> float:
    try:
        size = float(cell_size_m)
    except (TypeError, ValueError):
        raise InvalidRequest(
            f"cell size must be a number of metres, not {cell_size_m!r}", field=field
        ) from None
    if not math.isfinite(size) or size <= 0:
        raise InvalidRequest(
            f"cell size must be a positive number of metres, not {cell_size_m!r}", field=field
        )
    if size > max(width, height):
        raise InvalidRequest(
            f"cell size {size:g} m is larger than the area ({width:.0f} m × {height:.0f} m)", field=field
        )
    return size


def _hex_axial(x: np.ndarray, y: np.ndarray, size: float, x0: float, y0: float):
    """Axial (q, r) of the pointy-top hexagon holding each point (cube rounding, vectorised)."""
    rf = (y - y0) / (size * SQRT3 / 2)
    qf = (x - x0) / size - rf / 2
    sf = -qf - rf
    q, r, s = np.rint(qf), np.rint(rf), np.rint(sf)
    dq, dr, ds = np.abs(q - qf), np.abs(r - rf), np.abs(s - sf)
    # Rounding all three may leave q + r + s != 0: fix the one that moved most.
    fix_q = (dq > dr) & (dq > ds)
    fix_r = ~fix_q & (dr > ds)
    q = np.where(fix_q, -r - s, q)
    r = np.where(fix_r, -q - s, r)
    return q.astype(np.int64), r.astype(np.int64)


def _lattice_index(x, y, lattice: dict):
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    size, x0, y0 = lattice["cell_m"], lattice["x0"], lattice["y0"]
    if lattice["shape"] == "square":
        return np.floor((x - x0) / size).astype(np.int64), np.floor((y - y0) / size).astype(np.int64)
    return _hex_axial(x, y, size, x0, y0)


def _centres(col: np.ndarray, row: np.ndarray, lattice: dict):
    size, x0, y0 = lattice["cell_m"], lattice["x0"], lattice["y0"]
    if lattice["shape"] == "square":
        return x0 + (col + 0.5) * size, y0 + (row + 0.5) * size
    return x0 + size * (col + row / 2), y0 + size * SQRT3 / 2 * row


def cell_grid(
    area, cell_size_m: float, shape: str = "hex", *, max_cells: int = MAX_CELLS
) -> gpd.GeoDataFrame:
    """Cells of ``cell_size_m`` metres covering ``area`` (shapely geometry in EPSG:32649).

    Squares have sides of ``cell_size_m``; hexagons (pointy-top) are ``cell_size_m`` between the
    centres of neighbouring cells (flat-to-flat width), so a hexagon covers 0.87 × cell_size_m².
    Only cells that intersect the area are kept. Returns columns ``cell`` (0..n-1), ``col``, ``row``
    (lattice indices), ``x``, ``y`` (centres), ``area_m2`` (the part of the cell inside the area) and
    geometry; ``attrs["lattice"]`` records shape, size and origin, which ``count_in_cells`` and
    ``gi_star`` rely on. Cells cut by the edge hold less area and so fewer incidents: Gi* on counts
    can call them cold for that alone; ``gi_star(..., effort=cells["area_m2"])`` tests density.
    """
    if shape not in ("hex", "square"):
        raise InvalidRequest(f"cell shape must be 'hex' or 'square', not {shape!r}", field="shape")
    if area is None or shapely.is_empty(area):
        raise InvalidRequest("the area is empty", field="area")
    minx, miny, maxx, maxy = shapely.bounds(area)
    size = _check_cell_size(cell_size_m, maxx - minx, maxy - miny)
    # The origin snaps to a multiple of the cell size, so two areas share one lattice.
    x0, y0 = math.floor(minx / size) * size, math.floor(miny / size) * size
    lattice = {"shape": shape, "cell_m": size, "x0": x0, "y0": y0}
    if shape == "square":
        cols = np.arange(0, math.ceil((maxx - x0) / size) + 1)
        rows = np.arange(0, math.ceil((maxy - y0) / size) + 1)
        n_lattice = len(cols) * len(rows)
    else:
        h = size * SQRT3 / 2
        rows = np.arange(-1, math.ceil((maxy - y0) / h) + 2)
        # Each row is shifted half a cell: cover the x range of every row with one q range.
        q_lo = math.floor((minx - x0) / size - rows.max() / 2) - 1
        q_hi = math.ceil((maxx - x0) / size - rows.min() / 2) + 1
        cols = np.arange(q_lo, q_hi + 1)
        n_lattice = len(cols) * len(rows)
    if n_lattice > max_cells:
        raise InvalidRequest(
            f"{size:g} m cells would make about {n_lattice:,} cells over this area (the limit is "
            f"{max_cells:,}); use a larger cell",
            field="cell_m",
        )
    col, row = (a.ravel() for a in np.meshgrid(cols, rows, indexing="xy"))
    cx, cy = _centres(col, row, lattice)
    if shape == "hex":
        # Drop hexes of the q range that fall wholly outside the bounding box before building them.
        keep = (cx > minx - size) & (cx < maxx + size) & (cy > miny - size) & (cy < maxy + size)
        col, row, cx, cy = col[keep], row[keep], cx[keep], cy[keep]
        angles = np.deg2rad(30 + 60 * np.arange(7))  # pointy-top: vertices at 30°, 90°, ...
        radius = size / SQRT3
        ox, oy = radius * np.cos(angles), radius * np.sin(angles)
    else:
        half = size / 2
        ox = np.array([-half, half, half, -half, -half])
        oy = np.array([-half, -half, half, half, -half])
    ring = np.stack([cx[:, None] + ox[None, :], cy[:, None] + oy[None, :]], axis=-1)
    polygons = shapely.polygons(ring)
    shapely.prepare(area)
    # A cell that only touches the area's edge holds none of it.
    inside = shapely.intersects(area, polygons) & ~shapely.touches(area, polygons)
    polygons = polygons[inside]
    # Only cells cut by the edge need an intersection; the others are whole.
    cell_area = np.full(polygons.size, shapely.area(polygons[0]) if polygons.size else 0.0)
    cut = ~shapely.contains_properly(area, polygons)
    cell_area[cut] = shapely.area(shapely.intersection(polygons[cut], area))
    cells = gpd.GeoDataFrame(
        {
            "cell": np.arange(int(inside.sum())),
            "col": col[inside],
            "row": row[inside],
            "x": cx[inside],
            "y": cy[inside],
            "area_m2": cell_area,
        },
        geometry=polygons,
        crs=METRIC,
    )
    cells.attrs["lattice"] = lattice
    return cells


def _lattice_of(cells) -> dict:
    lattice = cells.attrs.get("lattice") if hasattr(cells, "attrs") else None
    if not lattice or not {"col", "row"} <= set(cells.columns):
        raise InvalidRequest(
            "cells must come from cell_grid (lattice columns and attrs missing)", field="cells"
        )
    return lattice


def _positions(cells, col: np.ndarray, row: np.ndarray) -> np.ndarray:
    """Row position in ``cells`` of each lattice index, -1 where no kept cell: a dense lookup table."""
    ccol, crow = cells["col"].to_numpy(), cells["row"].to_numpy()
    if len(ccol) == 0:
        return np.full(len(col), -1, dtype=np.int64)
    c0, r0 = ccol.min(), crow.min()
    nc, nr = ccol.max() - c0 + 1, crow.max() - r0 + 1
    table = np.full((nr, nc), -1, dtype=np.int64)
    table[crow - r0, ccol - c0] = np.arange(len(ccol))
    i, j = row - r0, col - c0
    ok = (i >= 0) & (i < nr) & (j >= 0) & (j < nc)
    out = np.full(len(col), -1, dtype=np.int64)
    out[ok] = table[i[ok], j[ok]]
    return out


def count_in_cells(cells: gpd.GeoDataFrame, x, y, weights=None) -> np.ndarray:
    """Number of points (or sum of ``weights``) in each cell, aligned with ``cells``' rows.

    Points are placed by lattice arithmetic (floor division for squares, axial rounding for
    hexagons); points in no kept cell are dropped. A point exactly on a shared edge goes to one
    cell only (the lower/left one is not guaranteed, but it is counted once).
    """
    lattice = _lattice_of(cells)
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape:
        raise InvalidRequest("x and y must have the same length", field="y")
    col, row = _lattice_index(x, y, lattice)
    pos = _positions(cells, col, row)
    kept = pos >= 0
    if weights is None:
        return np.bincount(pos[kept], minlength=len(cells))
    weights = np.asarray(weights, dtype=float)
    if weights.shape != x.shape:
        raise InvalidRequest("weights must have one value per point", field="weights")
    return np.bincount(pos[kept], weights=weights[kept], minlength=len(cells))


# --------------------------------------------------------------------------------------------------
# Getis-Ord Gi*
# --------------------------------------------------------------------------------------------------

_SQUARE_STEPS = [(dc, dr) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dc, dr) != (0, 0)]
_HEX_STEPS = [(1, 0), (-1, 0), (0, 1), (0, -1), (1, -1), (-1, 1)]  # axial neighbours


def _lattice_pairs(cells) -> tuple[np.ndarray, np.ndarray]:
    """(focal, neighbour) row positions of contiguous cells, from lattice indices alone."""
    lattice = _lattice_of(cells)
    col, row = cells["col"].to_numpy(), cells["row"].to_numpy()
    steps = _SQUARE_STEPS if lattice["shape"] == "square" else _HEX_STEPS
    focal, neighbour = [], []
    for dc, dr in steps:  # 6 or 8 array operations, not one per cell
        pos = _positions(cells, col + dc, row + dr)
        ok = pos >= 0
        focal.append(np.flatnonzero(ok))
        neighbour.append(pos[ok])
    return np.concatenate(focal), np.concatenate(neighbour)


def _distance_pairs(cells, distance_m: float) -> tuple[np.ndarray, np.ndarray]:
    xy = np.column_stack([cells["x"].to_numpy(), cells["y"].to_numpy()])
    pairs = cKDTree(xy).query_pairs(distance_m, output_type="ndarray")
    return np.concatenate([pairs[:, 0], pairs[:, 1]]), np.concatenate([pairs[:, 1], pairs[:, 0]])


def _permutation_p(y: np.ndarray, focal, neighbour, permutations: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Conditional permutation p-values of Gi* in each direction (hot, cold).

    Each cell keeps its own value; its k neighbours are replaced by k values drawn without
    replacement from the other n-1 cells (one draw pattern shared by all cells, as esda does).
    Since Gi* = (own + neighbours) / total, comparing neighbour sums is the same test. Ties count
    against significance (>= for hot, <= for cold), which matters for counts full of zeros.
    """
    n = len(y)
    card = np.bincount(focal, minlength=n)
    observed = np.bincount(focal, weights=y[neighbour], minlength=n)
    kmax = int(card.max()) if n else 0
    if kmax == 0:
        return np.ones(n), np.ones(n)
    kmax = min(kmax, n - 1)
    if (n - 1) * permutations <= 2_000_000:
        ids = rng.permuted(np.tile(np.arange(n - 1), (permutations, 1)), axis=1)[:, :kmax]
    else:  # large grids: draw with replacement, redraw the rare rows with a repeat
        ids = rng.integers(0, n - 1, size=(permutations, kmax))
        while True:
            s = np.sort(ids, axis=1)
            bad = np.flatnonzero((s[:, 1:] == s[:, :-1]).any(axis=1))
            if not bad.size:
                break
            ids[bad] = rng.integers(0, n - 1, size=(bad.size, kmax))
    ids = ids.astype(np.int32)
    # Skipping the cell itself shifts the drawn positions >= i up by one: the value drawn is
    # y[ids] below i and y[ids + 1] from i on. So a sum is base + the differences where ids >= i.
    low = y[ids]
    diff = y[ids + 1] - low
    tol = 1e-9 * max(float(np.abs(y).max()), 1.0) * kmax  # rates are floats: equal sums must tie
    ge = np.zeros(n, dtype=np.int64)
    le = np.zeros(n, dtype=np.int64)
    chunk = max(1, 4_000_000 // (permutations * kmax))
    for k in np.unique(card[card > 0]):  # cells with the same number of neighbours share the base sums
        base = low[:, :k].sum(axis=1)
        ids_k, diff_k = ids[:, :k], diff[:, :k]
        group = np.flatnonzero(card == k)
        for start in range(0, group.size, chunk):  # chunks bound the memory (cells × permutations × k)
            cellno = group[start : start + chunk]
            shifted = ids_k[None, :, :] >= cellno[:, None, None].astype(np.int32)
            sums = base[None, :] + (shifted * diff_k[None, :, :]).sum(axis=2)
            obs = observed[cellno, None]
            ge[cellno] = (sums >= obs - tol).sum(axis=1)
            le[cellno] = (sums <= obs + tol).sum(axis=1)
    # A cell with no neighbours has nothing to permute: p = 1 both ways.
    ge[card == 0] = le[card == 0] = permutations
    return (ge + 1) / (permutations + 1), (le + 1) / (permutations + 1)


def _exact_randomisation_p(y: np.ndarray, focal, neighbour) -> tuple[np.ndarray, np.ndarray] | None:
    """Exact conditional-randomisation p-values of Gi* for whole-number ``y`` (hot, cold tails).

    The null of a cell with own value v and k neighbours: the sum of k values drawn (with
    replacement) from the other n-1 cells, whose distribution is the k-th convolution power of
    their value histogram — one batched FFT per (k, set of own values). None when the tables would
    be too large (a huge count in one cell); the caller then samples permutations.
    """
    n = len(y)
    values = y.astype(np.int64)
    card = np.bincount(focal, minlength=n)
    observed = np.bincount(focal, weights=y[neighbour], minlength=n).round().astype(np.int64)
    vmax = int(values.max())
    histogram = np.bincount(values, minlength=vmax + 1).astype(float)
    p_hot, p_cold = np.ones(n), np.ones(n)
    ks = np.unique(card[card > 0])
    # The cost is one table of k·vmax floats per (k, own value): refuse what would take long.
    work = sum(
        np.unique(values[card == k]).size * fft.next_fast_len(int(k) * vmax + 1, real=True) for k in ks
    )
    if work > _MAX_WORK:
        return None
    for k in ks:
        size = int(k) * vmax + 1
        nfft = fft.next_fast_len(size, real=True)
        cells_k = np.flatnonzero(card == k)
        own, group = np.unique(values[cells_k], return_inverse=True)
        rows = max(1, _MAX_TABLE // nfft)
        for start in range(0, own.size, rows):  # batches bound the memory; each is one FFT
            batch = own[start : start + rows]
            pool = np.tile(histogram, (batch.size, 1))
            pool[np.arange(batch.size), batch] -= 1  # the cell itself is not among its neighbours
            pool /= n - 1
            pmf = fft.irfft(fft.rfft(pool, n=nfft, axis=1) ** k, n=nfft, axis=1)[:, :size]
            np.clip(pmf, 0.0, None, out=pmf)  # FFT round-off leaves tiny negatives
            at_least = np.cumsum(pmf[:, ::-1], axis=1)[:, ::-1]  # P(S >= s)
            at_most = np.cumsum(pmf, axis=1)  # P(S <= s)
            mine = (group >= start) & (group < start + batch.size)
            idx, obs = group[mine] - start, observed[cells_k[mine]]
            p_hot[cells_k[mine]] = at_least[idx, obs]
            p_cold[cells_k[mine]] = at_most[idx, obs]
    return np.clip(p_hot, 0.0, 1.0), np.clip(p_cold, 0.0, 1.0)


def _adjust(p: np.ndarray, correction: str) -> np.ndarray:
    if p.size == 0 or correction == "none":
        return p.copy()
    if correction == "bonferroni":
        return np.minimum(p * p.size, 1.0)
    return stats.false_discovery_control(p, method="bh")


def gi_star(
    cells: gpd.GeoDataFrame,
    counts,
    *,
    alpha: float = 0.05,
    correction: str = "fdr_bh",
    effort=None,
    neighbours: str | float = "contiguity",
    inference: str = "randomisation",
    permutations: int = 999,
    seed: int | None = 0,
) -> gpd.GeoDataFrame:
    """Getis-Ord Gi* hot and cold spots (esda ``G_Local(star=True)``, binary weights with self).

    ``neighbours``: ``"contiguity"`` (queen for squares, the 6 touching hexagons) or a distance in
    metres between cell centres. ``counts``: one value per cell (``count_in_cells``). With
    ``effort`` (per-cell exposure, e.g. km patrolled in the cell) the rate counts / effort is tested
    instead; cells with zero effort are left out of the test (a rate there is undefined, and a 0
    would read as "patrolled, nothing found"): they are neither tested nor anyone's neighbour.

    p-values are two-sided, by ``inference`` (see the module docstring for why):
    ``"randomisation"`` (default) — the conditional randomisation distribution, exact for counts,
    sampled with ``permutations`` for non-integer values (rates); ``"permutation"`` — always
    sampled (smallest p = 1/(permutations+1)); ``"normal"`` — esda's analytical normal
    approximation, too liberal for sparse counts. Then ``correction`` (``"fdr_bh"`` Benjamini–Hochberg, ``"bonferroni"`` or ``"none"``) over the tested
    cells, and ``significant`` = adjusted p ≤ ``alpha``. ``z`` is esda's analytical z-score either
    way. ``kind`` is "hot", "cold" or None. ``attrs["method"]`` names what was done.

    Degenerate input (fewer than 3 cells to test, no incidents, incidents in a single cell, or no
    variation at all) gives a flat result: NaN z and p, nothing significant, and ``attrs["note"]``
    saying why.
    """
    lattice = _lattice_of(cells)
    if not (isinstance(alpha, int | float) and 0 < alpha < 1):
        raise InvalidRequest(f"alpha must be between 0 and 1, not {alpha!r}", field="alpha")
    if correction not in CORRECTIONS:
        raise InvalidRequest(f"correction must be one of {', '.join(CORRECTIONS)}", field="correction")
    if inference not in INFERENCES:
        raise InvalidRequest(f"inference must be one of {', '.join(INFERENCES)}", field="inference")
    if isinstance(permutations, bool) or not isinstance(permutations, int) or permutations < 99:
        raise InvalidRequest("permutations must be a whole number ≥ 99", field="permutations")
    n = len(cells)
    counts = np.asarray(counts, dtype=float)
    if counts.shape != (n,) or not np.isfinite(counts).all() or (counts < 0).any():
        raise InvalidRequest("counts must be one finite, non-negative value per cell", field="counts")

    if neighbours == "contiguity":
        kind_of_w = (
            "queen contiguity" if lattice["shape"] == "square" else "hexagon contiguity (6 neighbours)"
        )
        focal, neighbour = _lattice_pairs(cells)
    else:
        try:
            distance = float(neighbours)
        except (TypeError, ValueError):
            raise InvalidRequest(
                "neighbours must be 'contiguity' or a distance in metres", field="neighbours"
            ) from None
        if not math.isfinite(distance) or distance <= 0:
            raise InvalidRequest("a neighbour distance must be positive metres", field="neighbours")
        kind_of_w = f"cells within {distance:g} m"
        focal, neighbour = _distance_pairs(cells, distance)

    out = cells.copy()
    out["count"] = counts
    tested = np.ones(n, dtype=bool)
    values = counts
    if effort is not None:
        effort = np.asarray(effort, dtype=float)
        if effort.shape != (n,) or not np.isfinite(effort).all() or (effort < 0).any():
            raise InvalidRequest("effort must be one finite, non-negative value per cell", field="effort")
        tested = effort > 0
        out["effort"] = effort
        values = np.divide(counts, effort, out=np.full(n, np.nan), where=tested)
        out["rate"] = values
    out["z"] = np.nan
    out["p"] = np.nan
    out["p_adjusted"] = np.nan
    out["significant"] = False
    out["kind"] = None
    out.attrs.update(alpha=alpha, correction=correction, inference=inference, lattice=lattice)

    def describe(how: str) -> str:
        tested_value = "rate per unit effort" if effort is not None else "counts"
        level = f"{_CORRECTION_NAMES[correction]}{' q' if correction == 'fdr_bh' else ' alpha'}={alpha:g}"
        return f"Getis-Ord Gi*, {kind_of_w}, {tested_value}, two-sided p by {how}, {level}"

    out.attrs["method"] = describe(inference)

    # Keep only pairs of tested cells, renumbered 0..m-1.
    index = np.flatnonzero(tested)
    new = np.full(n, -1)
    new[index] = np.arange(index.size)
    keep = tested[focal] & tested[neighbour]
    focal, neighbour = new[focal[keep]], new[neighbour[keep]]
    y = values[index]

    note = None
    if index.size < 3:
        note = "fewer than 3 cells to test"
    elif y.sum() == 0:
        note = "no incidents"
    elif np.count_nonzero(y) < 2:
        note = "all incidents in a single cell: no spatial pattern to test"
    elif np.ptp(y) == 0:
        note = "the same value in every cell"
    if note:
        out.attrs["note"] = note
        return out

    m = index.size
    self_ids = np.arange(m)
    # Binary weights with the cell itself (Gi*), as a sparse matrix: Graph.from_sparse is the
    # cheapest way in for millions of pairs.
    weights = sparse.csr_array(
        (np.ones(m + focal.size), (np.concatenate([self_ids, focal]), np.concatenate([self_ids, neighbour]))),
        shape=(m, m),
    )
    graph = Graph.from_sparse(weights)
    with warnings.catch_warnings():
        # esda/libpysal warn about islands and the like; the result stays valid, the warning is noise.
        warnings.simplefilter("ignore")
        g = G_Local(y, graph, transform="B", star=True, permutations=0)
    z = np.asarray(g.Zs, dtype=float)
    tails = None
    how = "normal approximation"
    if inference == "randomisation" and np.all(y == np.round(y)):
        tails = _exact_randomisation_p(y, focal, neighbour)
        how = "exact conditional randomisation (neighbours drawn with replacement)"
    if inference != "normal" and tails is None:
        tails = _permutation_p(y, focal, neighbour, permutations, np.random.default_rng(seed))
        how = f"{permutations} conditional permutations"
        out.attrs["min_p"] = 2 / (permutations + 1)
    out.attrs["method"] = describe(how)
    if tails is not None:
        p_hot, p_cold = tails
        hot = p_hot < p_cold
        p = np.minimum(1.0, 2 * np.minimum(p_hot, p_cold))
    else:
        hot = z > 0
        p = 2 * stats.norm.sf(np.abs(z))
    p = np.where(np.isfinite(p), p, 1.0)  # an island with no variation has no z
    p_adj = _adjust(p, correction)
    significant = p_adj <= alpha
    pos = out.columns.get_indexer(["z", "p", "p_adjusted", "significant", "kind"])
    out.iloc[index, pos[0]] = z
    out.iloc[index, pos[1]] = p
    out.iloc[index, pos[2]] = p_adj
    out.iloc[index, pos[3]] = significant
    kind = np.where(significant, np.where(hot, "hot", "cold"), None)
    out.iloc[index, pos[4]] = kind
    return out


# --------------------------------------------------------------------------------------------------
# Kernel density
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DensityRaster:
    """A density raster: ``density[i, j]`` in incidents per km², row 0 at the north edge.

    ``transform`` is the affine (a, b, c, d, e, f) of rasterio/GDAL order: x = c + a·j, y = f + e·i;
    ``extent`` is (minx, maxx, miny, maxy) for matplotlib's ``imshow``.
    """

    density: np.ndarray
    transform: tuple[float, float, float, float, float, float]
    extent: tuple[float, float, float, float]


def kernel_density(x, y, *, bandwidth_m: float, cell_size_m: float, bounds) -> DensityRaster:
    """Gaussian kernel density of incidents on a raster over ``bounds`` (minx, miny, maxx, maxy).

    Points are binned into ``cell_size_m`` cells and smoothed with a Gaussian of standard deviation
    ``bandwidth_m`` (scipy.ndimage.gaussian_filter); mass that spreads past the bounds is lost
    rather than folded back, so keep a bandwidth or two of margin around the area of interest.
    """
    try:
        minx, miny, maxx, maxy = (float(v) for v in bounds)
    except (TypeError, ValueError):
        raise InvalidRequest("bounds must be (minx, miny, maxx, maxy) in metres", field="bounds") from None
    if not all(map(math.isfinite, (minx, miny, maxx, maxy))) or maxx <= minx or maxy <= miny:
        raise InvalidRequest("bounds must be finite with minx < maxx and miny < maxy", field="bounds")
    size = _check_cell_size(cell_size_m, maxx - minx, maxy - miny, field="cell_m")
    try:
        bandwidth = float(bandwidth_m)
    except (TypeError, ValueError):
        bandwidth = float("nan")
    if not math.isfinite(bandwidth) or bandwidth <= 0:
        raise InvalidRequest(f"bandwidth must be positive metres, not {bandwidth_m!r}", field="bandwidth_m")
    ncols, nrows = math.ceil((maxx - minx) / size), math.ceil((maxy - miny) / size)
    if ncols * nrows > MAX_RASTER_CELLS:
        raise InvalidRequest(
            f"{size:g} m cells would make {ncols * nrows:,} raster cells (limit {MAX_RASTER_CELLS:,}); "
            "use a larger cell",
            field="cell_m",
        )
    maxx, maxy = minx + ncols * size, miny + nrows * size
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    # histogram2d's first axis is its first argument: pass y first so rows run south→north, then flip.
    hist, _, _ = np.histogram2d(y, x, bins=(nrows, ncols), range=((miny, maxy), (minx, maxx)))
    smoothed = ndimage.gaussian_filter(hist, sigma=bandwidth / size, mode="constant")
    density = np.flipud(smoothed) / (size * size / 1e6)
    return DensityRaster(
        density=density,
        transform=(size, 0.0, minx, 0.0, -size, maxy),
        extent=(minx, maxx, miny, maxy),
    )


__all__ = [
    "CORRECTIONS",
    "INFERENCES",
    "DensityRaster",
    "cell_grid",
    "count_in_cells",
    "gi_star",
    "kernel_density",
]
