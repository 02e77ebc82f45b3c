"""Encounter rates and their exact Poisson intervals, checked against hand-computed values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2

from patrol.analysis.rates import encounter_rates, poisson_interval
from patrol.errors import InvalidRequest


def test_interval_matches_the_published_table():
    # Garwood 95 % limits for a Poisson count (e.g. Ulm 1990; any epidemiology table).
    low, high = poisson_interval([0, 3], [1.0, 1.0])
    assert low[0] == 0.0
    assert high[0] == pytest.approx(3.689, abs=1e-3)
    assert low[1] == pytest.approx(0.619, abs=1e-3)
    assert high[1] == pytest.approx(8.767, abs=1e-3)


def test_interval_is_the_chi2_formula_scaled_by_exposure():
    k, exposure = np.array([1, 7, 40]), np.array([2.0, 12.5, 300.0])
    low, high = poisson_interval(k, exposure, confidence=0.9)
    np.testing.assert_allclose(low, chi2.ppf(0.05, 2 * k) / 2 / exposure)
    np.testing.assert_allclose(high, chi2.ppf(0.95, 2 * k + 2) / 2 / exposure)


def test_interval_without_exposure_is_undefined():
    low, high = poisson_interval([2], [0.0])
    assert np.isnan(low[0]) and np.isnan(high[0])


@pytest.mark.parametrize("confidence", [0, 1, 1.5, -0.1])
def test_interval_refuses_a_bad_confidence(confidence):
    with pytest.raises(InvalidRequest) as err:
        poisson_interval([1], [1.0], confidence)
    assert err.value.field == "confidence"


def _rates():
    counts = pd.DataFrame(
        {
            "grid": ["G1", "G1", "G2", "G3"],
            "category": ["net", "cutting", "net", "net"],
            "incidents": [3, 1, 2, 5],
        }
    )
    # G3 has incidents but no effort row; G4 was patrolled and nothing was found.
    effort = pd.DataFrame({"grid": ["G1", "G2", "G4"], "km": [12.0, 4.0, 30.0], "hours": [20.0, 10.0, 2.0]})
    return encounter_rates(counts, effort).set_index(["grid", "category"])


def test_rate_per_10km_and_100h_by_hand():
    row = _rates().loc[("G1", "net")]
    assert row["incidents"] == 3
    assert row["per_10km"] == pytest.approx(2.5)  # 3 / 12 km × 10
    assert row["per_100h"] == pytest.approx(15.0)  # 3 / 20 h × 100
    assert row["per_10km_low"] == pytest.approx(0.619 / 12 * 10, abs=1e-3)
    assert row["per_10km_high"] == pytest.approx(8.767 / 12 * 10, abs=1e-3)
    assert not row["too_little_effort"] and pd.isna(row["note"])


def test_all_is_the_sum_over_categories_for_every_grid():
    rates = _rates()
    assert rates.loc[("G1", "all"), "incidents"] == 4
    assert rates.loc[("G1", "all"), "per_10km"] == pytest.approx(4 / 12 * 10)
    # Every grid × every category + all: 4 grids × 3.
    assert len(rates) == 12
    assert set(rates.index.get_level_values("category")) == {"net", "cutting", "all"}


def test_patrolled_grid_without_incidents_gives_zero_with_an_upper_bound():
    row = _rates().loc[("G4", "all")]
    assert row["incidents"] == 0 and row["per_10km"] == 0.0
    assert row["per_10km_low"] == 0.0
    assert row["per_10km_high"] == pytest.approx(3.689 / 30 * 10, abs=1e-3)


def test_zero_effort_gives_no_rate():
    row = _rates().loc[("G3", "net")]
    assert row["incidents"] == 5 and row["km"] == 0 and row["hours"] == 0
    assert np.isnan(row["per_10km"]) and np.isnan(row["per_10km_high"]) and np.isnan(row["per_100h"])
    assert row["too_little_effort"]
    assert row["note"] == "less than 5 km patrolled; less than 5 h patrolled"


def test_too_little_effort_says_which_rule():
    rates = _rates()
    assert rates.loc[("G2", "net"), "note"] == "less than 5 km patrolled"  # 4 km, 10 h
    assert rates.loc[("G4", "net"), "note"] == "less than 5 h patrolled"  # 30 km, 2 h
    assert rates.loc[("G2", "net"), "too_little_effort"] and rates.loc[("G4", "net"), "too_little_effort"]


def test_thresholds_are_parameters():
    counts = pd.DataFrame({"grid": ["G2"], "category": ["net"], "incidents": [2]})
    effort = pd.DataFrame({"grid": ["G2"], "km": [4.0], "hours": [10.0]})
    rates = encounter_rates(counts, effort, min_km=3, min_hours=3)
    assert not rates["too_little_effort"].any()


def test_bad_input_is_refused_with_the_parameter_named():
    effort = pd.DataFrame({"grid": ["G1"], "km": [-1.0], "hours": [1.0]})
    counts = pd.DataFrame({"grid": ["G1"], "category": ["net"], "incidents": [1]})
    with pytest.raises(InvalidRequest) as err:
        encounter_rates(counts, effort)
    assert err.value.field == "effort"
    with pytest.raises(InvalidRequest) as err:
        encounter_rates(counts.drop(columns="incidents"), effort.assign(km=1.0))
    assert err.value.field == "counts"
