"""lensviz: weak-lensing mass maps, neural and classical, side by side.

The science package behind the lensviz app; numpy in, numpy out, no Streamlit.
TensorFlow is imported only by the modules that need it (``model``, ``losses``,
``training``, ``uncertainty``).

Examples
--------
>>> from lensviz import simulate, inversion, metrics, evaluation
>>> eps, kappa = simulate.simulate_batch(8, seed=0)          # (8,128,128,3), (8,128,128)
>>> kE, kB = inversion.ks93(eps[..., 0], eps[..., 1])        # Kaiser–Squires
>>> metrics.score(kappa, inversion.gaussian_smooth(kE, 4.0))  # WMAPE, DICEE, DPEAKS, RMSE, r
>>> unet = evaluation.unet_predictor("weights/lite.keras")   # the shipped UNet
>>> metrics.dpeaks(kappa, unet(eps))
"""

import importlib

__version__ = "0.1.0"

__all__ = [
    "augment", "constants", "cosmology", "data", "evaluation", "inversion", "loss_weights",
    "metrics", "nn", "plots", "simulate",
]


def __getattr__(name: str):
    # Submodules load on first use, so `import lensviz` stays light (no TensorFlow).
    if name in __all__:
        return importlib.import_module(f"lensviz.{name}")
    raise AttributeError(f"module 'lensviz' has no attribute {name!r}")
