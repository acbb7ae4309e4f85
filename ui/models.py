"""The app's TensorFlow side: the UNet models, their maps and uncertainty, the device.

The only module of ``ui/`` that imports :mod:`lensviz.nn` (TensorFlow and Keras).
:mod:`ui.cache` reaches it through :func:`ui.cache.nn` when a page first needs the UNet,
as the command line resolves its TensorFlow commands by name: a fresh server then draws
its first maps (the data, KS93, Wiener) while TensorFlow is still loading, and the pages
that never show the UNet never load it. Pages call :mod:`ui.cache`, never this module.

Models are ``st.cache_resource`` (one per file version and server, never mutated);
maps and uncertainty are ``st.cache_data``, keyed as in :mod:`ui.cache`.
"""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import streamlit as st

from lensviz.fields import tile_domain_warnings
from lensviz.lab import held_out_maps, score_summary
from lensviz.nn.devices import describe_device
from lensviz.nn.errorbars import errorbar_predictor, load_sigma_net, sigma_net_path
from lensviz.nn.inference import (
    load_model,
    model_inputs,
    model_predictor,
    predict_kappa,
    training_domain,
)
from lensviz.nn.uncertainty import calibration, predict_uncertainty

__all__ = [
    "calibration",
    "device_label",
    "field_predictor",
    "lab_scores",
    "map_predictor",
    "model_kappa",
    "unet_kappa",
    "unet_model",
    "unet_errorbars",
    "unet_sigma",
    "unet_warnings",
]


def _freeze_heap() -> None:
    """Exempt the objects alive now (TensorFlow, Keras, loaded models) from cyclic GC.

    After every script run Streamlit calls ``keras.backend.clear_session()`` and
    ``gc.collect()``. Once TensorFlow is imported each full collection scans millions of
    objects: 0.4–0.9 s on 2 CPU cores, twice per widget move. Frozen objects are still
    freed by reference counting; only cycles among them are never collected.
    """
    gc.freeze()


@st.cache_resource(max_entries=4, show_spinner="Loading the UNet…")
def _keras_model(path: str, mtime: float):
    model = load_model(path)
    for w, value in zip(model.weights, model.get_weights(), strict=True):
        if not np.isfinite(value).all():
            raise ValueError(
                f"model file {Path(path).name!r} has non-finite weights (NaN "
                f"or inf) in {w.path}; it cannot be used"
            )
    _freeze_heap()
    return model


def unet_model(sel):
    """The selected Keras model (cached per file version; never mutate it), or None.

    Raises
    ------
    ValueError
        If the file is corrupt or its weights are not finite.
    """
    if sel.model_path is None:
        return None
    return _keras_model(sel.model_path, sel.model_mtime)


def unet_warnings(sel) -> list[str]:
    """Why the selected UNet may be wrong on the selected sample: the sentences of
    :func:`lensviz.fields.tile_domain_warnings` against the model's training domain, tile
    by tile on a whole field (empty when the sample lies inside it, or when nothing is
    known of the model)."""
    try:
        model = unet_model(sel)
    except (ValueError, OSError):
        return []  # the pages report an unreadable model themselves
    domain = None if model is None else training_domain(model)
    if domain is None:
        return []
    return tile_domain_warnings(sel.sample_eps, domain, pixel_arcmin=sel.pixel_arcmin)


@st.cache_resource
def _device() -> str:
    label = describe_device()  # initialises TensorFlow's devices
    _freeze_heap()
    return label


def device_label() -> str:
    """Where the UNet runs, e.g. ``"CPU (2 cores)"``."""
    return _device()


def field_predictor(model):
    """``eps (N, ny, nx, 3), pixel_arcmin -> kappa (N, ny, nx)`` of ``model`` on maps of
    any size (:func:`lensviz.nn.inference.model_predictor`: blended tiles on whole
    fields; a field-aware model reads the pixel side as a feature)."""
    return model_predictor(model)


def map_predictor(model):
    """``eps (N, 128, 128, 3) -> kappa (N, 128, 128)`` of ``model`` on tiles
    (:func:`lensviz.nn.inference.predict_kappa`)."""
    return lambda eps: predict_kappa(model, eps)


@st.cache_data(max_entries=64, show_spinner="Running the UNet…")
def _unet(
    model_path: str,
    mtime: float,
    data_key: str,
    index: int,
    pixel_arcmin: float,
    _eps: np.ndarray,
    _model,
) -> np.ndarray:
    return model_predictor(_model)(_eps[index], pixel_arcmin=pixel_arcmin)


def unet_kappa(sel) -> np.ndarray | None:
    """UNet κ ``(ny, nx)`` of the selected sample (a ``tf.function`` forward; a whole
    field from blended overlapping tiles); None without a model.

    Raises
    ------
    ValueError, OSError
        If the model cannot be loaded or run.
    """
    if sel.model_path is None:
        return None
    return _unet(
        sel.model_path,
        sel.model_mtime,
        sel.key,
        sel.index,
        sel.pixel_arcmin,
        sel.eps,
        unet_model(sel),
    )


def model_kappa(sel, path: str) -> np.ndarray:
    """κ ``(ny, nx)`` of the selected sample from the model at ``path`` (cached per file
    version, data and sample, as :func:`unet_kappa`)."""
    mtime = Path(path).stat().st_mtime
    model = _keras_model(path, mtime)
    return _unet(path, mtime, sel.key, sel.index, sel.pixel_arcmin, sel.eps, model)


@st.cache_data(max_entries=8, show_spinner="Scoring on the loss lab's held-out maps…")
def _lab_scores(path: str, mtime: float, n_maps: int, seed: int, depth: str) -> dict:
    eps, kappa = held_out_maps(n_maps, seed, depth)
    return score_summary(kappa, model_predictor(_keras_model(path, mtime))(eps))


def lab_scores(path: str, lab, depth: str) -> dict[str, tuple[float, float]]:
    """Mean ± bootstrap standard error of every metric of a model on the loss lab's
    held-out maps of ``depth`` (:func:`lensviz.lab.held_out_maps`: the maps the lab
    scored its variants on)."""
    n_maps, seed = lab.test_maps
    return _lab_scores(path, Path(path).stat().st_mtime, n_maps, seed, str(depth))


@st.cache_data(max_entries=16, show_spinner="Running the UNet uncertainty passes…")
def _uncertainty(
    model_path: str,
    mtime: float,
    data_key: str,
    index: int,
    pixel_arcmin: float,
    method: str,
    n_passes: int,
    _eps: np.ndarray,
    _model,
) -> tuple[np.ndarray, np.ndarray]:
    # What the model reads (a field-aware model: the features at the data's pixel side);
    # the 8 symmetries act on them as on ε (channels 0, 1 spin-2, the others scalars).
    x = model_inputs(_model, _eps[index][None], pixel_arcmin)[0]
    return predict_uncertainty(_model, x, method=method, n_passes=n_passes, seed=0)


def unet_sigma(sel, method: str, n_passes: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and per-pixel σ ``(128, 128)`` of the selected sample's UNet κ: the model's
    own, uncalibrated spread (not an error bar; see :func:`unet_errorbars`).

    ``method`` is ``"mc_dropout"`` (``n_passes`` passes, seed 0) or ``"tta"`` (the 8
    symmetries; ``n_passes`` is ignored). See
    :func:`lensviz.nn.uncertainty.predict_uncertainty`.

    Raises
    ------
    ValueError
        Without a model, or if it cannot be loaded.
    """
    if sel.model_path is None:
        raise ValueError("no UNet weights are available")
    passes = int(n_passes) if method == "mc_dropout" else 0  # one cache entry for "tta"
    return _uncertainty(
        sel.model_path,
        sel.model_mtime,
        sel.key,
        sel.index,
        sel.pixel_arcmin,
        method,
        passes,
        sel.eps,
        unet_model(sel),
    )


@st.cache_resource(max_entries=8, show_spinner="Loading the UNet's error-bar network…")
def _sigma_net(path: str, mtime: float, sigma_mtime: float):
    """The quantile network of a model file, or why there is none (kept, so that a
    model without one is not searched again on every run)."""
    try:
        net = load_sigma_net(path)
    except (FileNotFoundError, ValueError) as exc:
        return str(exc)
    _freeze_heap()
    return net


@st.cache_data(max_entries=32, show_spinner="Computing the UNet's error bars…")
def _errorbars(
    model_path: str,
    mtime: float,
    sigma_mtime: float,
    data_key: str,
    index: int,
    pixel_arcmin: float,
    _eps: np.ndarray,
    _model,
    _net,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return errorbar_predictor(_model, _net)(_eps[index], pixel_arcmin)


def unet_errorbars(sel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(κ̂, kappa_std, kappa_hw95)`` ``(ny, nx)`` of the selected sample: the UNet's map
    and its calibrated error bars, from the quantile network beside the model file
    (:func:`lensviz.nn.errorbars.errorbar_predictor`; ``NAME.sigma.keras``).

    Raises
    ------
    ValueError
        Without a model, or when the model has no calibrated quantile network fitted to
        it (a fine-tuned or loss-lab model: calibration belongs to the model it was
        fitted on); the message says which.
    """
    if sel.model_path is None:
        raise ValueError("no UNet weights are available")
    sigma_path = sigma_net_path(sel.model_path)
    sigma_mtime = sigma_path.stat().st_mtime if sigma_path.is_file() else 0.0
    net = _sigma_net(sel.model_path, sel.model_mtime, sigma_mtime)
    if isinstance(net, str):
        raise ValueError(net)
    return _errorbars(
        sel.model_path,
        sel.model_mtime,
        sigma_mtime,
        sel.key,
        sel.index,
        sel.pixel_arcmin,
        sel.eps,
        unet_model(sel),
        net,
    )
