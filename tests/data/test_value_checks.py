"""The value checks' fast path (two reductions) decides exactly as the block scans."""

import numpy as np
import pytest

from lensviz.data import DataError
from lensviz.data.validate import check_epsilon_values, check_kappa_values


@pytest.fixture
def eps(rng):
    e = np.empty((3, 128, 128, 3), np.float32)
    e[..., :2] = rng.normal(0.0, 0.3, (3, 128, 128, 2))
    e[..., 2] = 0.1
    return e


def test_values_near_the_bounds_pass(eps):
    eps[0, 0, 0, :2] = (-5.0, 5.0)  # |e| = EPS_COMPONENT_MAX
    eps[1, 5, 5, 2] = 7.5  # Δε above the fast path's bound but within DELTA_EPS_MAX
    eps[2, 1, 1, 2] = 0.0
    check_epsilon_values(eps, "x.h5")
    check_kappa_values(np.full((2, 128, 128), -100.0, np.float32), "x.h5")


@pytest.mark.parametrize(
    "index, value, message",
    [
        ((1, 3, 4, 0), np.nan, "ε contains 1 NaN or infinite.*sample=1, y=3, x=4, channel=0"),
        ((2, 0, 9, 1), np.inf, "ε contains 1 NaN or infinite.*sample=2, y=0, x=9, channel=1"),
        ((0, 7, 7, 1), -5.5, "e2 = -5.5 at sample=0, y=7, x=7"),
        ((1, 2, 3, 2), -0.01, "Δε = -0.01 at sample=1, y=2, x=3"),
        ((1, 2, 3, 2), 10.5, "Δε = 10.5 at sample=1, y=2, x=3"),
    ],
)
def test_bad_epsilon_is_found_and_located(eps, index, value, message):
    eps[index] = value
    with pytest.raises(DataError, match=f"x.h5: {message}"):
        check_epsilon_values(eps, "x.h5")


@pytest.mark.parametrize("value, message", [(np.nan, "NaN"), (100.5, "κ = 100.5 at map=1")])
def test_bad_kappa_is_found_and_located(value, message):
    kappa = np.zeros((2, 128, 128), np.float32)
    kappa[1, 4, 5] = value
    with pytest.raises(DataError, match=message):
        check_kappa_values(kappa, "x.h5")
