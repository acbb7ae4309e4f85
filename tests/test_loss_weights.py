import numpy as np
import pytest

from lensviz import constants
from lensviz.loss_weights import (
    check_coeffs,
    combine_weights,
    edge_weight,
    focal_weight,
    local_weight,
    multifocal_loss,
    peak_weight,
    structure_weight,
    weight_maps,
)


def test_every_component_is_in_unit_interval(kappa_maps):
    maps = weight_maps(kappa_maps)
    assert list(maps) == list(constants.MULTIFOCAL_COMPONENTS)
    for name, w in maps.items():
        assert w.shape == kappa_maps.shape and w.dtype == np.float32, name
        assert w.min() >= 0 and w.max() <= 1, name
    assert maps["focal"].max(axis=(1, 2)) == pytest.approx(1.0)


def test_focal_weight_values():
    k = np.array([[0.0, -0.5], [0.25, 1.0]])
    np.testing.assert_allclose(focal_weight(k), [[0, 0.5], [0.25, 1.0]])


def test_local_weight_hand_computed():
    k = np.zeros((16, 16))
    k[4, 4], k[4, 6], k[12, 12] = 1.0, 0.5, 0.2
    w = local_weight(k, neighbourhood=8, top_fraction=3 / 256)
    assert w[4, 4] == 1.0 and w[12, 12] == 1.0  # each is its own window maximum
    assert w[4, 6] == pytest.approx(0.5)  # its window holds the 1.0 peak
    assert np.count_nonzero(w) == 3  # only the top 3 pixels qualify
    # The 8×8 window spans i-3 … i+4: a pixel 4 to the left of the peak sees it.
    k2 = np.zeros((16, 16))
    k2[8, 8], k2[8, 4], k2[8, 13] = 1.0, 0.5, 0.5
    w2 = local_weight(k2, neighbourhood=8, top_fraction=3 / 256)
    assert w2[8, 4] == pytest.approx(0.5) and w2[8, 13] == 1.0


def test_peak_weight_marks_discs_around_top_peaks():
    k = np.zeros((32, 32))
    k[10, 10], k[20, 22], k[25, 5] = 3.0, 2.0, 1.0
    w = peak_weight(k, n_peaks=2, peak_radius=2)
    assert w[10, 10] == 1 and w[12, 10] == 1 and w[10, 13] == 0 and w[11, 12] == 0
    assert w[20, 22] == 1 and w[25, 5] == 0
    assert w.sum() == 2 * 13  # a radius-2 disc holds 13 pixels


def test_structure_and_edges():
    k = np.array([[0.0, 0.0005], [0.002, -0.0025]])  # mean 0
    np.testing.assert_array_equal(structure_weight(k, band=0.001), [[1, 1], [0, 0]])
    e = edge_weight(np.zeros((20, 20)), edge_width=5)
    assert e.sum() == 400 - 100 and e[5:15, 5:15].sum() == 0


def test_combination_and_coefficients(kappa_maps):
    maps = weight_maps(kappa_maps)
    only_peaks = combine_weights(
        maps, {"focal": 0, "local": 0, "peaks": 1, "structure": 0, "edges": 0}
    )
    np.testing.assert_allclose(only_peaks, maps["peaks"])
    default = combine_weights(maps)
    expected = (
        maps["focal"]
        + 2 * maps["local"]
        + 3 * maps["peaks"]
        + 1.5 * maps["structure"]
        + maps["edges"]
    ) / 8.5
    np.testing.assert_allclose(default, expected, atol=1e-6)
    more_peaks = combine_weights(maps, {"peaks": 6.0})
    assert not np.allclose(more_peaks, default)


def test_multifocal_loss_reduces_to_focal_loss(kappa_maps):
    t = kappa_maps[0]
    p = t + 0.01
    focal_only = {"focal": 1, "local": 0, "peaks": 0, "structure": 0, "edges": 0}
    wf = 1 + np.abs(t) / np.abs(t).max()
    assert multifocal_loss(t, p, focal_only) == pytest.approx(np.mean(wf * 0.01**2), rel=1e-5)
    assert multifocal_loss(t, t) == 0.0


def test_bad_coefficients_and_params():
    with pytest.raises(ValueError, match="unknown MultiFocal"):
        check_coeffs({"peak": 1.0})
    with pytest.raises(ValueError, match=">= 0"):
        check_coeffs({"focal": -1.0})
    with pytest.raises(ValueError, match="all zeros"):
        check_coeffs(dict.fromkeys(constants.MULTIFOCAL_COMPONENTS, 0))
    with pytest.raises(ValueError, match="top_fraction"):
        local_weight(np.zeros((8, 8)), top_fraction=0)
