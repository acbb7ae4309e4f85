"""lensviz.nn.losses against the numpy references in lensviz.loss_weights and lensviz.metrics."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from lensviz import loss_weights, metrics
from lensviz.inversion import gaussian_smooth
from lensviz.nn.losses import (
    CombinedLoss,
    FocalLoss,
    MSELoss,
    MultiFocalLoss,
    combine_weights_tf,
    find_peaks_tf,
    focal_loss,
    gaussian_smooth_tf,
    mse,
    multifocal_loss,
    peak_shift,
    soft_dicee,
    weight_maps_tf,
    wmape_loss,
)
from lensviz.nn.unet import UNetConfig, build_unet

FOCAL_ONLY = {"focal": 1.0, "local": 0.0, "peaks": 0.0, "structure": 0.0, "edges": 0.0}


def kappa_like(seed: int, n_maps: int = 3, npix: int = 128, noise: float = 0.003) -> np.ndarray:
    """κ-like maps: a negative floor, Gaussian halos (some cut by the edges), pixel noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:npix, 0:npix]
    out = np.full((n_maps, npix, npix), -0.02) + noise * rng.normal(size=(n_maps, npix, npix))
    for i in range(n_maps):
        for _ in range(rng.integers(3, 9)):
            y, x = rng.uniform(-5, npix + 5, size=2)
            s, a = rng.uniform(2, 12), rng.uniform(0.02, 0.4)
            out[i] += a * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * s * s))
    return out.astype(np.float32)


@pytest.fixture(scope="module")
def maps():
    return kappa_like(3, n_maps=4)


@pytest.fixture(scope="module")
def noise():
    return np.random.default_rng(99).normal(size=(4, 128, 128)).astype(np.float32)


# === Weight maps: TensorFlow equals the numpy reference ===

PARAM_SETS = [
    {},
    {
        "neighbourhood": 5,
        "top_fraction": 0.1,
        "n_peaks": 10,
        "peak_radius": 2.5,
        "band": 0.01,
        "edge_width": 0,
    },
    {
        "neighbourhood": 1,
        "top_fraction": 1.0,
        "n_peaks": 0,
        "peak_radius": 0,
        "band": 0.0,
        "edge_width": 64,
    },
]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("params", PARAM_SETS)
def test_weight_maps_equal_numpy(seed, params):
    k = kappa_like(seed, n_maps=3)
    want = loss_weights.weight_maps(k, **params)
    got = weight_maps_tf(k, **params)
    assert set(got) == set(want)
    for name in want:
        assert got[name].shape == want[name].shape
        np.testing.assert_allclose(got[name].numpy(), want[name], rtol=0, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(
        combine_weights_tf(got).numpy(), loss_weights.combine_weights(want), rtol=0, atol=1e-6
    )


def test_weight_maps_single_map_noise_only_and_small_maps():
    rng = np.random.default_rng(5)
    cases = [
        kappa_like(4, n_maps=1)[0],  # a single (ny, nx) map
        (0.01 * rng.normal(size=(2, 128, 128))).astype(np.float32),  # pure noise: many peaks
        kappa_like(6, n_maps=2, npix=32),  # small maps
        np.zeros((1, 16, 16), np.float32),  # no peak, max |κ| = 0
    ]
    for k in cases:
        want = loss_weights.weight_maps(k)
        got = weight_maps_tf(k)
        for name in want:
            np.testing.assert_allclose(
                got[name].numpy(), want[name], rtol=0, atol=1e-6, err_msg=f"{name} {k.shape}"
            )


def test_structure_band_is_active(maps):
    # The default band (0.001) must mark some pixels for the equality test to mean something.
    w = weight_maps_tf(maps)
    assert 0 < float(tf.reduce_mean(w["structure"])) < 0.5
    assert float(tf.reduce_sum(w["peaks"])) > 0


def test_smoothing_and_peaks_match_metrics(maps):
    np.testing.assert_allclose(
        gaussian_smooth_tf(maps).numpy(), gaussian_smooth(maps, 3.0), rtol=0, atol=1e-6
    )
    pos, valid = find_peaks_tf(maps, n=3)
    want, heights = metrics.find_peaks(maps, n=3)
    np.testing.assert_array_equal(pos.numpy(), want)
    np.testing.assert_array_equal(valid.numpy(), np.isfinite(heights))


# === Loss values against the references ===


def test_multifocal_equals_numpy_loss(maps, noise):
    p = maps + 0.01 * noise
    np.testing.assert_allclose(
        MultiFocalLoss()(maps, p).numpy(), loss_weights.multifocal_loss(maps, p).mean(), rtol=1e-5
    )
    coeffs = {"local": 0.5, "edges": 4.0}
    np.testing.assert_allclose(
        multifocal_loss(maps, p, coeffs, n_peaks=8).numpy(),
        loss_weights.multifocal_loss(maps, p, coeffs, n_peaks=8),
        rtol=1e-5,
    )


def test_focal_is_multifocal_with_only_the_focal_term(maps, noise):
    p = maps + 0.01 * noise
    focal = focal_loss(maps, p).numpy()
    np.testing.assert_allclose(multifocal_loss(maps, p, FOCAL_ONLY).numpy(), focal, rtol=1e-6)
    w_f = 1 + np.abs(maps) / np.abs(maps).max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(focal, (w_f * (p - maps) ** 2).mean(axis=(1, 2)), rtol=1e-5)
    np.testing.assert_allclose(
        FocalLoss()(maps, p).numpy(), MultiFocalLoss(coeffs=FOCAL_ONLY)(maps, p).numpy(), rtol=1e-6
    )
    np.testing.assert_allclose(MSELoss()(maps, p).numpy(), ((p - maps) ** 2).mean(), rtol=1e-5)


def test_combined_wmape_only_equals_metric(maps, noise):
    p = maps + 0.01 * noise
    assert np.all(maps != 0) and np.all(p != 0)
    want = metrics.wmape(maps, p)
    np.testing.assert_allclose(wmape_loss(maps, p).numpy(), want, rtol=1e-5)
    loss = CombinedLoss(multifocal=0.0, wmape=1.0)
    np.testing.assert_allclose(loss(maps, p).numpy(), want.mean(), rtol=1e-5)


def test_wmape_replaces_exact_zeros_like_the_metric():
    t = np.array([[[0.0, 0.2], [0.1, -0.05]]], np.float32)
    p = np.array([[[0.01, 0.0], [0.12, -0.04]]], np.float32)
    np.testing.assert_allclose(wmape_loss(t, p).numpy(), metrics.wmape(t, p), rtol=1e-5)


def test_soft_dicee_tends_to_the_metric(maps, noise):
    p = maps + 0.01 * noise
    np.testing.assert_allclose(
        soft_dicee(maps, p, temperature=1e-4).numpy(), metrics.dicee(maps, p), atol=2e-3
    )


def test_peak_shift_zero_on_truth_and_grows_with_a_shift(maps):
    np.testing.assert_allclose(peak_shift(maps, maps).numpy(), 0.0, atol=1e-6)
    moved = np.roll(maps, shift=(2, 1), axis=(1, 2))  # each peak moves |Δy| + |Δx| = 3 px
    shift = peak_shift(maps, moved).numpy()
    _, valid = find_peaks_tf(maps)
    n_valid = valid.numpy().sum(axis=1)
    assert np.all(shift > 1.0 * n_valid) and np.all(shift < 4.0 * n_valid)


# === Differentiability and behaviour ===

LOSSES = {
    "mse": MSELoss(),
    "focal": FocalLoss(),
    "multifocal": MultiFocalLoss(),
    "combined": CombinedLoss(),
    "combined_dicee": CombinedLoss(multifocal=0.0, wmape=0.0, dicee=1.0),
    "combined_dpeaks": CombinedLoss(multifocal=0.0, wmape=0.0, dpeaks=1.0),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradients_finite_and_non_zero(name, maps, noise):
    loss = LOSSES[name]
    p = tf.Variable(maps + 0.01 * noise)
    with tf.GradientTape() as tape:
        value = loss(maps, p)
    grad = tape.gradient(value, p).numpy()
    assert np.isfinite(float(value)) and np.all(np.isfinite(grad))
    assert np.abs(grad).max() > 0


@pytest.mark.parametrize(
    "fn", [mse, focal_loss, multifocal_loss, wmape_loss, soft_dicee, peak_shift]
)
def test_loss_decreases_as_prediction_approaches_truth(fn, maps, noise):
    scales = [0.03, 0.01, 0.003, 0.001, 0.0003]
    values = [float(tf.reduce_mean(fn(maps, maps + s * noise))) for s in scales]
    assert np.all(np.diff(values) < 0), values


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_serialisation_round_trip(name, maps, noise):
    loss = LOSSES[name]
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert type(clone) is type(loss)
    assert clone.get_config() == loss.get_config()
    p = maps + 0.01 * noise
    np.testing.assert_allclose(clone(maps, p).numpy(), loss(maps, p).numpy(), rtol=1e-6)


def test_combined_components_sum_to_the_loss(maps, noise):
    loss = CombinedLoss(multifocal=0.5, wmape=0.1, dicee=0.2, dpeaks=0.01)
    p = maps + 0.01 * noise
    parts = loss.components(maps, p)
    assert set(parts) == {"multifocal", "wmape", "dicee", "dpeaks"}
    total = sum(loss.term_weights[k] * v.numpy() for k, v in parts.items())
    np.testing.assert_allclose(loss(maps, p).numpy(), total.mean(), rtol=1e-5)


def test_channel_axis_is_squeezed(maps, noise):
    p = maps + 0.01 * noise
    np.testing.assert_allclose(
        MultiFocalLoss()(maps[..., None], p[..., None]).numpy(),
        MultiFocalLoss()(maps, p).numpy(),
        rtol=1e-6,
    )


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: MultiFocalLoss(coeffs={"peak": 1.0}), "unknown MultiFocal components"),
        (lambda: MultiFocalLoss(coeffs={"local": -1.0}), "local"),
        (lambda: MultiFocalLoss(neighbourhood=0), "neighbourhood.*0"),
        (lambda: MultiFocalLoss(top_fraction=1.5), "top_fraction.*1.5"),
        (lambda: CombinedLoss(multifocal=0.0, wmape=0.0), "at least one"),
        (lambda: CombinedLoss(dicee=-0.1), "dicee"),
        (lambda: CombinedLoss(dpeaks_window=0), "dpeaks_window.*0"),
        (lambda: soft_dicee(np.zeros((1, 8, 8)), np.zeros((1, 8, 8)), 0.0), "temperature"),
        (lambda: mse(np.zeros((8, 8, 8, 2)), np.zeros((8, 8, 8, 2))), "shape"),
    ],
)
def test_bad_arguments_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_combined_loss_trains_a_tiny_unet():
    keras.utils.set_random_seed(0)
    cfg = UNetConfig(base_filters=4, max_filters=8, depth=3, pad=4, npix=32, n_decoder_dropout=1)
    model = build_unet(cfg)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=CombinedLoss(multifocal=1.0, wmape=0.01, dicee=0.1, dpeaks=0.01),
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 32, 32, 3)).astype(np.float32)
    y = kappa_like(8, n_maps=4, npix=32)
    history = model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
