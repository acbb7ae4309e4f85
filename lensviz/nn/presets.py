"""Named UNet configurations (keras-hub's ``*_presets.py``), and name lookup.

A preset is a :class:`lensviz.nn.unet.UNetConfig`; the builder itself takes configs
only, so that the model code does not depend on this table:
``build_unet(resolve_config("lite"))``. The command line (``train --preset``,
``tune --base-preset``) and :class:`lensviz.nn.training.TrainConfig` name presets.
"""

from __future__ import annotations

from lensviz.nn.unet import UNetConfig

__all__ = ["PRESETS", "resolve_config"]

#: Named configurations.
#:
#: ``paper``
#:     The report's model: 8 blocks, 64 → 512 filters, reflection padding 64 px
#:     (128 → 256 px); 30,621,761 parameters.
#: ``lite``
#:     The same design for CPU training: 16 → 128 filters, 6 blocks and 32 px of
#:     reflection padding (128 → 192 px, a 3×3 bottleneck), field-aware (it reads the
#:     features of the whole field, :mod:`lensviz.features`, and adds a gated share of
#:     the field's KS93 map to its correction); 1,032,274 parameters (4.1 MB of float32
#:     weights). A training step at batch 8 on 2 CPU cores (``train_on_batch``, Adam,
#:     MSE; 30 interleaved steps after 3 warm-up ones) took 66 ms (10th percentile) /
#:     111 ms (median), against 115 / 201 ms for depth 8 and pad 64: the padded area, not
#:     the width, sets the cost. The model shipped before (v2) was the same network
#:     with noise-aware inputs computed inside the model on each tile
#:     (``noise_aware=True``); its files still load.
#: ``unet2k``
#:     ``paper`` with parallel 3×3 (f//2 filters) and 9×9 (f − f//2) convolutions in every
#:     encoder block; 74,570,561 parameters, most of them in the 9×9 kernels of the
#:     512-filter blocks.
PRESETS: dict[str, UNetConfig] = {
    "paper": UNetConfig(
        base_filters=64,
        max_filters=512,
        depth=8,
        kernel_size=3,
        pad=64,
        n_decoder_dropout=3,
        dropout_rate=0.5,
    ),
    "lite": UNetConfig(
        base_filters=16,
        max_filters=128,
        depth=6,
        kernel_size=3,
        pad=32,
        n_decoder_dropout=3,
        dropout_rate=0.5,
        field_features=True,
    ),
    "unet2k": UNetConfig(
        base_filters=64,
        max_filters=512,
        depth=8,
        kernel_size=3,
        pad=64,
        n_decoder_dropout=3,
        dropout_rate=0.5,
        two_kernel=True,
        second_kernel_size=9,
    ),
}


def resolve_config(config: UNetConfig | str) -> UNetConfig:
    """A :class:`~lensviz.nn.unet.UNetConfig`, from itself or from a preset name (:data:`PRESETS`).

    Raises
    ------
    ValueError
        For an unknown preset name (the known ones are listed).
    TypeError
        For anything else than a config or a string.
    """
    if isinstance(config, UNetConfig):
        return config
    if isinstance(config, str):
        if config not in PRESETS:
            raise ValueError(f"unknown UNet preset {config!r}; known presets: {sorted(PRESETS)}")
        return PRESETS[config]
    raise TypeError(f"config must be a UNetConfig or a preset name, got {type(config).__name__}")
