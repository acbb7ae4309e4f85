"""lensviz: weak-lensing mass maps, neural and classical, side by side.

The science package behind the lensviz app; numpy in, numpy out, no Streamlit. Its
layers are folders:

* ``lensviz/`` itself is numpy (and scipy, h5py, plotly): the inversion, the
  simulator, the metrics, the data readers. ``import lensviz`` and every module here
  never load TensorFlow.
* :mod:`lensviz.nn` holds everything that imports Keras or TensorFlow: the UNet, its
  losses, input pipelines, training, uncertainty and model cards.
* :mod:`lensviz.cli` is the command line (``python -m lensviz``).

Submodules load on first use (``lensviz.metrics`` after ``import lensviz`` works).

Examples
--------
>>> from lensviz import constants, inversion, metrics, simulate
>>> eps, kappa = simulate.simulate_batch(8, seed=0)
>>> eps.shape, kappa.shape                       # (e1, e2, Δε) and the true κ
((8, 128, 128, 3), (8, 128, 128))
>>> kE, kB = inversion.ks93(eps[..., 0], eps[..., 1])          # Kaiser–Squires
>>> ks93 = inversion.gaussian_smooth(kE, 4.0)
>>> scores = metrics.score(kappa, ks93)                         # one value per map
>>> sorted(scores), scores["dicee"].shape
(['dicee', 'dpeaks', 'r', 'rmse', 'wmape'], (8,))
>>> from lensviz.nn.inference import unet_predictor             # TensorFlow from here on
>>> unet = unet_predictor(constants.WEIGHTS_DIR / constants.DEFAULT_WEIGHTS_FILE)
>>> unet(eps).shape
(8, 128, 128)
>>> bool(metrics.rmse(kappa, unet(eps)).mean() < metrics.rmse(kappa, kE).mean())
True
"""

import importlib

__version__ = "0.1.0"

__all__ = [
    "augment",
    "cli",
    "constants",
    "cosmology",
    "data",
    "depth",
    "evaluation",
    "halos",
    "inversion",
    "loss_weights",
    "metrics",
    "nn",
    "plots",
    "profiles",
    "simulate",
]


def __getattr__(name: str):
    # Submodules load on first use, so `import lensviz` stays light (no TensorFlow).
    if name in __all__:
        return importlib.import_module(f"lensviz.{name}")
    raise AttributeError(f"module 'lensviz' has no attribute {name!r}")
