"""Tests of lensviz.nn.inference: forwards, predictions, the KS93 channel, ``.keras`` files,
and loading a model file saved before the split of ``lensviz/nn/model.py``."""

import dataclasses
import json
import os
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from lensviz.nn.features import LensingFeatures
from lensviz.nn.inference import (
    add_ks93_channel,
    forward_fn,
    load_model,
    predict_kappa,
    save_model,
    training_domain,
)
from lensviz.nn.layers import AlwaysDropout, ReflectionPadding2D
from lensviz.nn.unet import UNet, UNetConfig, build_unet

#: A tiny noise-aware MC-dropout UNet (16 × 16, 295 parameters) saved by lensviz.nn.model
#: before it was split into layers, unet, presets and inference, with the inputs and the
#: κ its plain twin predicted then (``pre_split_tiny.npz``).
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# A few-thousand-parameter UNet on 32×32 maps: 3 blocks, reflection padding 4 → 40 px.
TINY = UNetConfig(
    base_filters=4, max_filters=8, depth=3, kernel_size=3, pad=4, npix=32, n_decoder_dropout=1
)


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(7)


def _eps(rng, n, npix=32, channels=3):
    x = rng.normal(0.0, 0.3, size=(n, npix, npix, channels)).astype(np.float32)
    x[..., 2] = np.abs(x[..., 2])
    return x


# === Files ===


def test_save_load_same_output(tmp_path, rng):
    model = build_unet(TINY)
    x = _eps(rng, 3)
    path = tmp_path / "sub" / "tiny.keras"
    assert save_model(model, path) == str(path)
    assert sorted(os.listdir(path.parent)) == ["tiny.keras"]  # no temporary file left
    loaded = load_model(path)
    assert isinstance(loaded, UNet) and loaded.unet_config == TINY
    np.testing.assert_array_equal(
        np.asarray(loaded(x, training=False)), np.asarray(model(x, training=False))
    )


def test_save_requires_keras_suffix(tmp_path):
    with pytest.raises(ValueError, match="'.keras'"):
        save_model(build_unet(TINY), tmp_path / "tiny.h5")


def test_load_missing_or_corrupt_file(tmp_path):
    missing = tmp_path / "nothing.keras"
    with pytest.raises(ValueError, match="nothing.keras.*does not exist"):
        load_model(missing)
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"this is not a zip archive")
    with pytest.raises(ValueError, match="corrupt.keras.*corrupt"):
        load_model(corrupt)


def test_a_model_with_non_finite_weights_is_refused(tmp_path):
    model = build_unet(TINY)
    weights = model.get_weights()
    weights[0] = np.full_like(weights[0], np.nan)  # as a diverged run would leave them
    model.set_weights(weights)
    path = save_model(model, tmp_path / "diverged.keras")
    with pytest.raises(ValueError, match="diverged.keras.*non-finite weights"):
        load_model(path)


def test_a_model_file_saved_before_the_split_loads_and_predicts_the_same():
    path = FIXTURES / "pre_split_tiny.keras"
    with zipfile.ZipFile(path) as z:  # written when the classes lived in lensviz.nn.model
        saved = json.loads(z.read("config.json"))
    assert saved["module"] == "lensviz.nn.model" and saved["registered_name"] == "lensviz>UNet"
    model = load_model(path)
    assert isinstance(model, UNet) and model.mc_dropout and model.name == "pre_split"
    assert model.unet_config.noise_aware and model.unet_config.npix == 16
    kinds = {type(layer) for layer in model.layers}
    assert {ReflectionPadding2D, AlwaysDropout, LensingFeatures} <= kinds
    twin = UNet(model.unet_config, name="plain")  # dropout off: deterministic
    twin.set_weights(model.get_weights())
    with np.load(FIXTURES / "pre_split_tiny.npz") as f:
        eps, kappa = f["eps"], f["kappa"]
    got = predict_kappa(twin, eps)
    assert np.abs(kappa).max() > 1e-3  # a non-trivial reference
    np.testing.assert_allclose(got, kappa, rtol=1e-5, atol=1e-7)


def test_training_domain_of_old_and_unknown_models(tiny_config):
    old = UNet(dataclasses.replace(tiny_config, noise_aware=False))
    assert training_domain(old) is not None  # LSST depth only: the legacy domain
    aware = UNet(dataclasses.replace(tiny_config, noise_aware=True))
    assert training_domain(aware) is None


# === Inference ===


def test_predict_kappa_equals_forward(rng):
    model = build_unet(TINY)
    x = _eps(rng, 5)
    want = np.asarray(model(x, training=False))
    got = predict_kappa(model, x, batch_size=2)
    assert got.shape == (5, 32, 32) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    single = predict_kappa(model, x[1])
    assert single.shape == (32, 32)
    np.testing.assert_allclose(single, want[1], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(forward_fn(model)(x)), want, rtol=1e-6, atol=1e-7)


def test_predict_kappa_adds_ks93_channel(rng):
    model = build_unet(dataclasses.replace(TINY, with_ks93=True))
    x = _eps(rng, 2)
    x4 = add_ks93_channel(x)
    assert x4.shape == (2, 32, 32, 4)
    np.testing.assert_array_equal(x4[..., :3], x)
    want = np.asarray(model(x4, training=False))
    np.testing.assert_allclose(predict_kappa(model, x), want, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(predict_kappa(model, x4), want, rtol=1e-6, atol=1e-7)


def test_predict_kappa_rejects_bad_shapes(rng):
    model = build_unet(TINY)
    with pytest.raises(ValueError, match="expected ε of shape \\(N, 32, 32, 3\\)"):
        predict_kappa(model, _eps(rng, 1, npix=16))
    with pytest.raises(ValueError, match="takes 3 input channels, got ε with 4"):
        predict_kappa(model, _eps(rng, 1, channels=4))
    with pytest.raises(ValueError, match="batch_size"):
        predict_kappa(model, _eps(rng, 1), batch_size=0)
