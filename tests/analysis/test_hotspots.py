"""Hot spots: the lattice, counting, Getis-Ord Gi* (found when planted, quiet when not), density.

The false-positive tests are the reason Gi* uses permutation p-values by default: see
``test_normal_approximation_would_fail_the_same_check``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import shapely
from scipy.stats import binom

from patrol.analysis.hotspots import (
    _distance_pairs,
    _exact_randomisation_p,
    _lattice_pairs,
    _permutation_p,
    cell_grid,
    count_in_cells,
    gi_star,
    kernel_density,
)
from patrol.errors import InvalidRequest

SHAPES = ["square", "hex"]
X0, Y0 = 420_000.0, 2_390_000.0  # metres, EPSG:32649
# An irregular area: a ring-ish shape with a bay, so cells at its edge are cut.
AREA = shapely.difference(
    shapely.Point(X0, Y0).buffer(1500),
    shapely.box(X0 - 300, Y0, X0 + 300, Y0 + 2000),
)
SQUARE_KM = shapely.box(X0, Y0, X0 + 1000, Y0 + 1000)

ALPHA = 0.05
SEEDS = 200
# Under the null, the number of seeds with any significant cell is at most Binomial(200, 0.05)
# (BH controls the family-wise rate at q when nothing is there); allow its 99.9 % quantile.
MAX_SEEDS_WITH_A_FALSE_HIT = int(binom.ppf(0.999, SEEDS, ALPHA))  # 22 of 200 (11 %)


# --- the lattice ------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_cells_cover_the_area_and_only_it(shape):
    cells = cell_grid(AREA, 100, shape)
    assert cells.crs == "EPSG:32649"
    assert list(cells["cell"]) == list(range(len(cells)))
    union = shapely.union_all(cells.geometry.values)
    assert shapely.difference(AREA, union).area < 1e-3  # no gap
    assert shapely.area(shapely.intersection(cells.geometry.values, AREA)).min() > 0  # no cell outside
    centroids = shapely.centroid(cells.geometry.values)
    np.testing.assert_allclose(shapely.get_x(centroids), cells["x"], atol=1e-6)
    expected_area = 100 * 100 if shape == "square" else np.sqrt(3) / 2 * 100 * 100
    np.testing.assert_allclose(cells.area, expected_area)
    # area_m2 is the part inside the area: whole cells in the middle, less at the edge.
    assert cells["area_m2"].sum() == pytest.approx(AREA.area)
    assert cells["area_m2"].max() == pytest.approx(expected_area)
    assert cells["area_m2"].min() < expected_area / 2


@pytest.mark.parametrize("shape", SHAPES)
def test_counting_agrees_with_shapely_containment(shape):
    cells = cell_grid(AREA, 100, shape)
    rng = np.random.default_rng(7)
    x = rng.uniform(X0 - 1700, X0 + 1700, 3000)  # some points fall outside every kept cell
    y = rng.uniform(Y0 - 1700, Y0 + 1700, 3000)
    # Brute force: which cell polygon contains each point.
    polygons = np.asarray(cells.geometry.values, dtype=object)
    inside = shapely.contains_xy(polygons[:, None], x[None, :], y[None, :])
    assert inside.sum(axis=0).max() == 1
    np.testing.assert_array_equal(count_in_cells(cells, x, y), inside.sum(axis=1))
    weights = rng.uniform(0, 3, x.size)
    np.testing.assert_allclose(count_in_cells(cells, x, y, weights), inside @ weights)


@pytest.mark.parametrize("shape", SHAPES)
def test_lattice_neighbours_are_the_touching_cells(shape):
    cells = cell_grid(AREA, 100, shape)
    # Queen squares: centres within 100·√2; hexagons: the 6 at 100 m.
    radius = 150 if shape == "square" else 110
    lattice = set(zip(*_lattice_pairs(cells)))
    assert lattice == set(zip(*_distance_pairs(cells, radius)))
    assert max(np.bincount(_lattice_pairs(cells)[0])) == (8 if shape == "square" else 6)


@pytest.mark.parametrize("cell", [0, -100, float("nan"), float("inf"), 5000, "big"])
def test_bad_cell_sizes_are_refused(cell):
    with pytest.raises(InvalidRequest) as err:
        cell_grid(AREA, cell)
    assert err.value.field == "cell_m"


def test_too_many_cells_asks_for_a_larger_cell():
    with pytest.raises(InvalidRequest, match="use a larger cell") as err:
        cell_grid(AREA, 1.0)  # 3 km across at 1 m: 9 million cells
    assert err.value.field == "cell_m"


# --- Gi* ----------------------------------------------------------------------------------------------


def _uniform_counts(cells, per_cell, rng):
    n = rng.poisson(per_cell * len(cells))
    x = rng.uniform(X0, X0 + 1000, n)
    y = rng.uniform(Y0, Y0 + 1000, n)
    return count_in_cells(cells, x, y)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_planted_cluster_is_found_hot(shape, seed):
    cells = cell_grid(SQUARE_KM, 100, shape)
    rng = np.random.default_rng(seed)
    background = _uniform_counts(cells, 1.0, rng)
    cluster = count_in_cells(cells, rng.normal(X0 + 500, 100, 300), rng.normal(Y0 + 500, 100, 300))
    result = gi_star(cells, background + cluster, alpha=ALPHA)
    centre = ((result["x"] - X0 - 500) ** 2 + (result["y"] - Y0 - 500) ** 2).idxmin()
    assert result.loc[centre, "kind"] == "hot"
    assert result.loc[centre, "p_adjusted"] <= ALPHA
    hot = result[result["kind"] == "hot"]
    assert np.hypot(hot["x"] - X0 - 500, hot["y"] - Y0 - 500).max() < 350
    assert result.attrs["method"].endswith("BH FDR q=0.05")


def test_a_cluster_among_ten_thousand_cells_is_found():
    """Sampled permutations could not do this: with 999 of them BH over 10,000 cells needs 400 cells
    at the p floor; the exact randomisation distribution has no floor."""
    area = shapely.box(X0, Y0, X0 + 10_000, Y0 + 10_000)
    cells = cell_grid(area, 100, "square")
    assert len(cells) == 10_000
    rng = np.random.default_rng(11)
    x = np.concatenate([rng.uniform(X0, X0 + 10_000, 20_000), rng.normal(X0 + 3000, 150, 400)])
    y = np.concatenate([rng.uniform(Y0, Y0 + 10_000, 20_000), rng.normal(Y0 + 7000, 150, 400)])
    result = gi_star(cells, count_in_cells(cells, x, y))
    hot = result[result["kind"] == "hot"]
    assert len(hot) >= 5
    assert np.hypot(hot["x"] - X0 - 3000, hot["y"] - Y0 - 7000).max() < 500
    assert "exact conditional randomisation" in result.attrs["method"]


@pytest.mark.parametrize("per_cell", [0.3, 1.0])
@pytest.mark.parametrize("shape", SHAPES)
def test_uniform_incidents_rarely_give_any_hot_spot(shape, per_cell):
    cells = cell_grid(SQUARE_KM, 100, shape)
    seeds_with_a_hit = 0
    for seed in range(SEEDS):
        rng = np.random.default_rng(1000 + seed)
        result = gi_star(cells, _uniform_counts(cells, per_cell, rng), alpha=ALPHA, seed=seed)
        seeds_with_a_hit += bool(result["significant"].any())
    assert seeds_with_a_hit <= MAX_SEEDS_WITH_A_FALSE_HIT


def test_normal_approximation_would_fail_the_same_check():
    """Why permutations: with sparse counts the analytical p-values make false hot spots far too often."""
    cells = cell_grid(SQUARE_KM, 100, "square")
    seeds_with_a_hit = 0
    for seed in range(SEEDS):
        rng = np.random.default_rng(1000 + seed)
        result = gi_star(cells, _uniform_counts(cells, 0.3, rng), alpha=ALPHA, inference="normal")
        seeds_with_a_hit += bool(result["significant"].any())
    assert seeds_with_a_hit > MAX_SEEDS_WITH_A_FALSE_HIT
    assert "normal approximation" in result.attrs["method"]


@pytest.mark.parametrize("per_cell", [0.5, 3.0])
def test_exact_randomisation_agrees_with_sampled_permutations(per_cell):
    cells = cell_grid(SQUARE_KM, 100, "hex")
    y = np.random.default_rng(3).poisson(per_cell, len(cells)).astype(float)
    focal, neighbour = _lattice_pairs(cells)
    sampled_hot, sampled_cold = _permutation_p(y, focal, neighbour, 9999, np.random.default_rng(2))
    exact_hot, exact_cold = _exact_randomisation_p(y, focal, neighbour)
    # 9,999 permutations: Monte Carlo standard error <= 0.005; allow 3 of them.
    np.testing.assert_allclose(exact_hot, sampled_hot, atol=0.015)
    np.testing.assert_allclose(exact_cold, sampled_cold, atol=0.015)


def test_a_huge_count_falls_back_to_sampled_permutations():
    cells = cell_grid(SQUARE_KM, 100, "square")
    counts = np.random.default_rng(8).poisson(2.0, len(cells)).astype(float)
    counts[55] = 50_000_000  # the exact tables would need 400 million entries per own value
    result = gi_star(cells, counts)
    assert "999 conditional permutations" in result.attrs["method"]
    assert result["p"].min() >= result.attrs["min_p"]


def test_effort_turns_counts_into_rates():
    """Many incidents where patrols spend the most time are no hot spot of the rate."""
    cells = cell_grid(SQUARE_KM, 100, "square")
    rng = np.random.default_rng(5)
    near_centre = np.hypot(cells["x"] - X0 - 500, cells["y"] - Y0 - 500).to_numpy() < 250
    effort = np.where(near_centre, 10.0, 1.0)
    effort[0] = 0.0  # never patrolled
    counts = rng.poisson(2.0 * effort).astype(float)
    assert (gi_star(cells, counts)["kind"] == "hot").any()
    by_rate = gi_star(cells, counts, effort=effort)
    assert not by_rate["significant"].any()
    assert np.isnan(by_rate.loc[0, "p"]) and by_rate.loc[0, "kind"] is None
    np.testing.assert_allclose(by_rate["rate"][1:], counts[1:] / effort[1:])
    assert "rate per unit effort" in by_rate.attrs["method"]
    assert "999 conditional permutations" in by_rate.attrs["method"]  # rates are not whole numbers


@pytest.mark.parametrize("correction", ["bonferroni", "none"])
def test_other_corrections(correction):
    cells = cell_grid(SQUARE_KM, 100, "square")
    counts = _uniform_counts(cells, 3.0, np.random.default_rng(3))
    result = gi_star(cells, counts, correction=correction)
    if correction == "none":
        np.testing.assert_array_equal(result["p_adjusted"], result["p"])
    else:
        np.testing.assert_allclose(result["p_adjusted"], np.minimum(result["p"] * len(cells), 1))
    assert ("Bonferroni" if correction == "bonferroni" else "no correction") in result.attrs["method"]


def test_distance_neighbours_match_contiguity_at_the_right_radius():
    cells = cell_grid(SQUARE_KM, 100, "square")
    counts = _uniform_counts(cells, 3.0, np.random.default_rng(4))
    by_lattice = gi_star(cells, counts)
    by_distance = gi_star(cells, counts, neighbours=150.0)
    np.testing.assert_allclose(by_lattice["z"], by_distance["z"])
    np.testing.assert_allclose(by_lattice["p"], by_distance["p"])


@pytest.mark.parametrize(
    ("counts_of", "note"),
    [
        (lambda n: np.zeros(n), "no incidents"),
        (lambda n: np.eye(1, n, 40).ravel() * 25, "single cell"),
        (lambda n: np.full(n, 2.0), "same value"),
    ],
)
def test_degenerate_input_gives_a_flat_result(counts_of, note):
    cells = cell_grid(SQUARE_KM, 100, "square")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = gi_star(cells, counts_of(len(cells)))
    assert not result["significant"].any() and result["kind"].isna().all()
    assert result["p"].isna().all()
    assert note in result.attrs["note"]


def test_fewer_than_three_cells():
    cells = cell_grid(shapely.box(X0, Y0, X0 + 200, Y0 + 100), 100, "square")
    assert len(cells) == 2
    result = gi_star(cells, np.array([3.0, 1.0]))
    assert not result["significant"].any() and "fewer than 3" in result.attrs["note"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"alpha": 0}, "alpha"),
        ({"correction": "holm"}, "correction"),
        ({"neighbours": -10}, "neighbours"),
        ({"neighbours": "rook"}, "neighbours"),
        ({"permutations": -1}, "permutations"),
        ({"inference": "bootstrap"}, "inference"),
        ({"effort": np.ones(3)}, "effort"),
    ],
)
def test_bad_gi_parameters_are_refused_by_name(kwargs, field):
    cells = cell_grid(SQUARE_KM, 100, "square")
    with pytest.raises(InvalidRequest) as err:
        gi_star(cells, np.ones(len(cells)), **kwargs)
    assert err.value.field == field


# --- kernel density ---------------------------------------------------------------------------------


def test_kernel_density_keeps_the_mass_and_is_north_up():
    bounds = (X0, Y0, X0 + 4000, Y0 + 3000)
    # Two incidents in the north-west, 1 km (6.7 bandwidths) from the edges, so no mass leaks out.
    raster = kernel_density([X0 + 1000] * 2, [Y0 + 2000] * 2, bandwidth_m=150, cell_size_m=50, bounds=bounds)
    assert raster.density.shape == (60, 80)
    cell_km2 = 0.05 * 0.05
    assert raster.density.sum() * cell_km2 == pytest.approx(2.0, rel=1e-6)
    row, col = np.unravel_index(raster.density.argmax(), raster.density.shape)
    a, _, c, _, e, f = raster.transform
    assert c + a * (col + 0.5) == pytest.approx(X0 + 1025, abs=50)
    assert f + e * (row + 0.5) == pytest.approx(Y0 + 2000, abs=50)
    assert row < 30  # north is up: the peak is in the top half of the rows
    assert raster.extent == (X0, X0 + 4000, Y0, Y0 + 3000)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"bandwidth_m": 0}, "bandwidth_m"),
        ({"cell_size_m": -1}, "cell_m"),
        ({"bounds": (1, 1, 0, 0)}, "bounds"),
    ],
)
def test_bad_density_parameters_are_refused(kwargs, field):
    args = {"bandwidth_m": 100.0, "cell_size_m": 50.0, "bounds": (X0, Y0, X0 + 1000, Y0 + 1000)} | kwargs
    with pytest.raises(InvalidRequest) as err:
        kernel_density([X0], [Y0], **args)
    assert err.value.field == field
