"""Tests of lensviz.nn.unet, lensviz.nn.layers and lensviz.nn.presets: presets, shapes,
configuration, the custom layers, fine-tuning groups."""

import dataclasses

import keras
import numpy as np
import pytest

from lensviz.nn.layers import AlwaysDropout, ReflectionPadding2D
from lensviz.nn.presets import PRESETS, resolve_config
from lensviz.nn.unet import (
    LAST_LAYER,
    UNet,
    UNetConfig,
    build_unet,
    count_params,
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
LITE_PARAMS = 1_032_274  # the noise-aware v2 (1,031,985) + the gate channel of the last layer
UNET2K_PARAMS = 74_570_561


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(7)


# === Presets and shapes ===


def test_paper_matches_the_report():
    cfg = PRESETS["paper"]
    assert cfg.encoder_filters == (64, 128, 256, 512, 512, 512, 512, 512)
    assert cfg.decoder_filters == (512, 512, 512, 512, 256, 128, 64)
    assert cfg.npix + 2 * cfg.pad == 256
    model = build_unet(PRESETS["paper"])
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
    model = build_unet(PRESETS["lite"])
    assert model.count_params() == LITE_PARAMS
    assert LITE_PARAMS * 4 < 10e6  # float32 weights under 10 MB
    out = model(np.zeros((2, 128, 128, 5), np.float32), training=False)  # field features
    assert out.shape == (2, 128, 128)


def test_unet2k_parameter_count():
    assert count_params(PRESETS["unet2k"]) == UNET2K_PARAMS


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
        resolve_config("pix2pix")
    with pytest.raises(TypeError):
        resolve_config(3)
    assert resolve_config("lite") is PRESETS["lite"]
    assert resolve_config(TINY) is TINY


def test_the_builder_takes_configs_not_names():
    assert build_unet().unet_config == UNetConfig() == PRESETS["paper"]
    assert build_unet(TINY.to_dict()).unet_config == TINY
    with pytest.raises(TypeError, match="'lite'.*resolve_config"):
        build_unet("lite")
    with pytest.raises(TypeError, match="got int"):
        UNet(3)


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


def test_always_dropout_stays_on_at_inference():
    layer = AlwaysDropout(0.5, seed=3)
    x = np.ones((4, 64), np.float32)
    out = np.asarray(layer(x, training=False))
    assert 0 < np.mean(out == 0) < 1  # some units dropped, even in inference mode
    np.testing.assert_allclose(out[out != 0], 2.0)  # the survivors scaled by 1 / (1 - 0.5)
    assert np.array_equal(np.asarray(keras.layers.Dropout(0.5)(x, training=False)), x)


def test_mc_twin_has_the_same_weights_and_always_dropout():
    model = UNet(TINY, mc_dropout=True)
    drops = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert [type(d) for d in drops] == [AlwaysDropout]
    assert [w.shape for w in model.weights] == [w.shape for w in build_unet(TINY).weights]


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
