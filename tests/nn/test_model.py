"""Tests of lensviz.nn.model: presets, shapes, serialisation, fine-tuning groups, inference."""

import dataclasses
import os

import keras
import numpy as np
import pytest

from lensviz.nn.model import (
    LAST_LAYER,
    PRESETS,
    ReflectionPadding2D,
    UNet,
    UNetConfig,
    add_ks93_channel,
    build_unet,
    count_params,
    forward_fn,
    load_model,
    predict_kappa,
    resolve_config,
    save_model,
    set_trainable,
    trainable_layers,
)

# A few-thousand-parameter UNet on 32×32 maps: 3 blocks, reflection padding 4 → 40 px.
TINY = UNetConfig(
    base_filters=4, max_filters=8, depth=3, kernel_size=3, pad=4, npix=32, n_decoder_dropout=1
)

# Exact parameter counts (trainable + BatchNorm moving statistics), kernel 3.
PAPER_PARAMS = 30_621_761
# noise-aware: LensingFeatures feeds 5 channels, not 3, to the first 3×3 conv of 16 filters
LITE_PARAMS = 1_031_697 + 2 * 3 * 3 * 16
UNET2K_PARAMS = 74_570_561


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(7)


def _eps(rng, n, npix=32, channels=3):
    x = rng.normal(0.0, 0.3, size=(n, npix, npix, channels)).astype(np.float32)
    x[..., 2] = np.abs(x[..., 2])
    return x


# === Presets and shapes ===


def test_paper_matches_the_report():
    cfg = PRESETS["paper"]
    assert cfg.encoder_filters == (64, 128, 256, 512, 512, 512, 512, 512)
    assert cfg.decoder_filters == (512, 512, 512, 512, 256, 128, 64)
    assert cfg.npix + 2 * cfg.pad == 256
    model = build_unet("paper")
    assert model.count_params() == PAPER_PARAMS
    assert model.input_shape == (None, 128, 128, 3)
    assert model.output_shape == (None, 128, 128)
    assert model.get_layer("enc8_act").output.shape == (None, 1, 1, 512)
    assert "enc1_bn" not in {layer.name for layer in model.layers}
    drops = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert drops == ["dec1_drop", "dec2_drop", "dec3_drop"]
    last = model.get_layer(LAST_LAYER)
    assert isinstance(last, keras.layers.Conv2DTranspose) and last.filters == 1
    x = np.zeros((1, 128, 128, 3), np.float32)
    assert model(x, training=False).shape == (1, 128, 128)


def test_lite_preset_shape_and_size():
    model = build_unet("lite")
    assert model.count_params() == LITE_PARAMS
    assert LITE_PARAMS * 4 < 10e6  # float32 weights under 10 MB
    out = model(np.zeros((2, 128, 128, 3), np.float32), training=False)
    assert out.shape == (2, 128, 128)


def test_unet2k_parameter_count():
    assert count_params("unet2k") == UNET2K_PARAMS


def test_unet2k_block_width_matches_plain_unet():
    cfg = dataclasses.replace(PRESETS["unet2k"], base_filters=4, max_filters=8)
    model = build_unet(cfg)
    plain = build_unet(dataclasses.replace(cfg, two_kernel=False))
    assert model.get_layer("enc1_conv_a").kernel.shape == (3, 3, 3, 2)
    assert model.get_layer("enc1_conv_b").kernel.shape == (9, 9, 3, 2)
    for i in range(1, cfg.depth + 1):
        assert (
            model.get_layer(f"enc{i}_act").output.shape
            == plain.get_layer(f"enc{i}_act").output.shape
        )
    out = model(np.zeros((1, 128, 128, 3), np.float32), training=False)
    assert out.shape == (1, 128, 128)


def test_with_ks93_takes_four_channels():
    model = build_unet(dataclasses.replace(TINY, with_ks93=True))
    assert model.input_shape == (None, 32, 32, 4)
    assert model.count_params() - build_unet(TINY).count_params() == 3 * 3 * 1 * 4


def test_unknown_preset_lists_known_ones():
    with pytest.raises(ValueError, match="known presets.*lite.*paper.*unet2k"):
        build_unet("pix2pix")
    with pytest.raises(TypeError):
        resolve_config(3)


# === Config ===


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"pad": 5}, "npix \\+ 2\\*pad = 42"),
        ({"depth": 6}, "2\\*\\*depth = 64"),
        ({"pad": 32}, "pad must be < npix \\(32\\)"),
        ({"base_filters": 0}, "base_filters.*0"),
        ({"max_filters": 2}, "max_filters.*got 2"),
        ({"n_decoder_dropout": 3}, "n_decoder_dropout.*got 3"),
        ({"dropout_rate": 1.0}, "dropout_rate.*1.0"),
        ({"output_activation": "sigmoidal"}, "sigmoidal"),
        ({"kernel_size": 2.5}, "kernel_size.*2.5"),
        ({"with_ks93": 1}, "with_ks93"),
    ],
)
def test_bad_config_raises_naming_the_value(change, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(TINY, **change)


def test_config_dict_round_trip():
    for cfg in (*PRESETS.values(), TINY):
        assert UNetConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown UNetConfig fields \\['filters'\\]"):
        UNetConfig.from_dict({"filters": 3})


def test_reflection_padding_config_and_values():
    layer = ReflectionPadding2D(2, name="p")
    clone = ReflectionPadding2D.from_config(layer.get_config())
    assert clone.pad == 2 and clone.name == "p"
    x = np.arange(2 * 5 * 4 * 3, dtype=np.float32).reshape(2, 5, 4, 3)
    want = np.pad(x, [(0, 0), (2, 2), (2, 2), (0, 0)], mode="reflect")
    np.testing.assert_array_equal(np.asarray(clone(x)), want)
    assert clone.compute_output_shape((None, 5, 4, 3)) == (None, 9, 8, 3)
    with pytest.raises(ValueError, match="pad.*-1"):
        ReflectionPadding2D(-1)


def test_model_config_round_trip():
    model = build_unet(TINY)
    clone = UNet.from_config(model.get_config())
    assert clone.unet_config == TINY
    assert [w.shape for w in clone.weights] == [w.shape for w in model.weights]


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


# === Fine-tuning ===


def test_set_trainable_last_leaves_only_the_last_layer():
    model = build_unet(TINY)
    assert set_trainable(model, "last") == [LAST_LAYER]
    last = model.get_layer(LAST_LAYER)
    assert {id(w) for w in model.trainable_weights} == {id(w) for w in last.trainable_weights}
    assert len(model.trainable_weights) == 2  # kernel and bias


def test_trainable_groups():
    model = build_unet(TINY)
    decoder = trainable_layers(model, "decoder")
    assert LAST_LAYER in decoder and all(n.startswith("dec") or n == LAST_LAYER for n in decoder)
    assert not any(n.startswith("enc") for n in decoder)
    set_trainable(model, "decoder")
    names = {layer.name for layer in model.layers if layer.trainable and layer.weights}
    assert names == set(decoder)
    set_trainable(model, "all")
    assert len(model.trainable_weights) == len(build_unet(TINY).trainable_weights)
    with pytest.raises(ValueError, match="which must be one of.*'encoder'"):
        trainable_layers(model, "encoder")


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
