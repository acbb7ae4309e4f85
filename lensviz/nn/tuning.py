"""The Keras Tuner search space of the report's hyperparameter search, and its objective.

Keras Tuner is the optional ``tune`` extra (``pip install .[tune]``): it is imported
inside :func:`tuner_hypermodel`, where the ``HyperModel`` subclass needs it, so that
importing this module (and every other command) works without it. The ``tune``
command (:func:`lensviz.cli.model.cmd_tune`) runs the search.

Objective
    :data:`OBJECTIVE` (``val_score``, logged by :class:`ScoredValidation`) is the mean of
    the validation DICEE, DPEAKS and median WMAPE, each divided by smoothed KS93's value
    on the same maps: 1.0 means "as good as smoothed KS93", lower is better. MultiFocal
    losses with different coefficients are not comparable, so the loss itself cannot be
    the objective.
"""

from __future__ import annotations

from collections.abc import Mapping

import keras
import numpy as np

from lensviz import constants
from lensviz.nn.callbacks import ValidationMetrics
from lensviz.nn.losses import MultiFocalLoss
from lensviz.nn.pipelines import simulated_dataset
from lensviz.nn.presets import resolve_config
from lensviz.nn.unet import UNetConfig, build_unet

__all__ = ["OBJECTIVE", "TUNING_SEED_START", "tuning_score", "ScoredValidation", "tuner_hypermodel"]

#: The epoch-log key the search minimises (:func:`tuning_score`).
OBJECTIVE = "val_score"

#: First simulator seed of the tuning stream: every trial sees the same maps, apart from
#: the training run's (:data:`lensviz.constants.TRAIN_SEED_START`).
TUNING_SEED_START = constants.TRAIN_SEED_START + 10_000_000


def tuning_score(logs: Mapping[str, float], reference: Mapping[str, float]) -> float:
    """The search objective of one epoch: validation metrics relative to smoothed KS93.

    .. math::

        s = \\frac13\\left(\\frac{D_{ICE}}{D_{ICE}^{KS}}
        + \\frac{D_{PEAKS}}{\\max(D_{PEAKS}^{KS}, 1)}
        + \\frac{\\tilde W}{\\tilde W^{KS}}\\right)

    Parameters
    ----------
    logs : mapping
        Epoch logs of :class:`lensviz.nn.callbacks.ValidationMetrics` (``val_dicee``,
        ``val_dpeaks``, ``val_wmape_median``).
    reference : mapping
        :func:`lensviz.nn.callbacks.summarize_metrics` of smoothed KS93 on the same maps
        (``dicee``, ``dpeaks``, ``wmape_median``).

    Examples
    --------
    >>> ks = {"dicee": 0.5, "dpeaks": 4, "wmape_median": 2.0}
    >>> tuning_score({"val_dicee": 0.25, "val_dpeaks": 2, "val_wmape_median": 1.0}, ks)
    0.5
    """
    return float(
        np.mean(
            [
                logs["val_dicee"] / reference["dicee"],
                logs["val_dpeaks"] / max(reference["dpeaks"], 1),
                logs["val_wmape_median"] / reference["wmape_median"],
            ]
        )
    )


class ScoredValidation(ValidationMetrics):
    """:class:`~lensviz.nn.callbacks.ValidationMetrics` (MSE loss) that also logs :data:`OBJECTIVE`.

    Parameters
    ----------
    eps, kappa : ndarray
        The fixed validation maps, ``(N, 128, 128, 3)`` and ``(N, 128, 128)``.
    reference : mapping
        Smoothed KS93's metrics on those maps (see :func:`tuning_score`).
    """

    def __init__(self, eps, kappa, reference: Mapping[str, float]):
        super().__init__(eps, kappa, keras.losses.MeanSquaredError())
        self.reference = dict(reference)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if logs is not None:
            logs[OBJECTIVE] = tuning_score(logs, self.reference)


def tuner_hypermodel(base_preset: UNetConfig | str = "lite"):
    """A Keras Tuner ``HyperModel`` over the report's search space.

    Kernel size, depth, border padding, learning rate, batch size and the five
    MultiFocal coefficients, around the preset ``base_preset`` (its other fields are
    kept). Every trial sees the same simulated training stream
    (:data:`TUNING_SEED_START`); the objective is :data:`OBJECTIVE`.

    Raises
    ------
    ModuleNotFoundError
        Without the optional Keras Tuner extra.
    ValueError
        For an unknown preset name.
    """
    # Keras Tuner is an optional extra: imported here, where the HyperModel needs it.
    import keras_tuner as kt

    base = resolve_config(base_preset)

    class LensvizHyperModel(kt.HyperModel):
        def build(self, hp):
            depth = hp.Choice("depth", [4, 5, 6])
            pad = hp.Choice("pad", [0, 32])  # 128 + 2 pad divisible by 2**depth up to 6
            cfg = UNetConfig.from_dict(
                {
                    **base.to_dict(),
                    "kernel_size": hp.Choice("kernel_size", [2, 3, 4, 5]),
                    "depth": depth,
                    "pad": pad,
                    "n_decoder_dropout": min(base.n_decoder_dropout, depth - 1),
                }
            )
            coeffs = {
                name: hp.Float(f"a_{name}", 0.0, 4.0, step=0.5)
                for name in constants.MULTIFOCAL_COMPONENTS
            }
            if sum(coeffs.values()) == 0:
                coeffs["focal"] = 1.0
            model = build_unet(cfg)
            lr = hp.Float("learning_rate", 1e-5, 1e-3, sampling="log")
            model.compile(optimizer=keras.optimizers.Adam(lr), loss=MultiFocalLoss(coeffs))
            return model

        def fit(self, hp, model, *args, **kwargs):
            batch = hp.Choice("batch_size", [4, 8, 16])
            ds = simulated_dataset(
                batch, seed_start=TUNING_SEED_START, field_features=base.field_features
            )
            kwargs.pop("batch_size", None)
            return model.fit(ds, *args, **kwargs)

    return LensvizHyperModel()
