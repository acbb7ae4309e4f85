"""Every cached computation of the app, and where its files are.

One naming rule:

- A **public** function is named by the quantity it returns. When that quantity belongs
  to the sidebar's selection it takes the :class:`ui.sidebar.Selection` first:
  ``unet_kappa(sel)``, ``wiener_kappa(sel)``, ``ks93_kappa(sel)``, ``kappa_maps(sel)``,
  ``unet_sigma(sel, method)``, ``weight_maps(sel, ...)``, ``metric_scores(sel, ...)``.
  Public functions never carry a Streamlit cache themselves; pages call only these.
- A **private** worker (``_name``) holds the ``st.cache_data`` / ``st.cache_resource``
  decorator. It takes hashable keys (the dataset key, the model file and its
  modification time, the settings) and the arrays behind them as ``_``-prefixed
  arguments, which Streamlit does not hash.

Models and datasets are ``st.cache_resource`` (one object per server, never mutated:
the arrays are read-only), pure results are ``st.cache_data(max_entries=…)``. No
function here reads a widget.

This module never imports TensorFlow. Everything that runs the UNet is in
:mod:`ui.models`, which :func:`nn` imports by name the first time a page needs the UNet
(as the command line resolves its TensorFlow commands): the data, KS93 and Wiener are
drawn while TensorFlow loads (:func:`unet_loaded` tells a page whether it has).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import streamlit as st
from astropy.io import fits

from lensviz import constants, cosmos, data, loss_weights, metrics, nulltests
from lensviz.data import DataError, PixelGrid
from lensviz.data.archive import check_keras_archive
from lensviz.data.sky import header_grid
from lensviz.depth import depth_label, ks93_sigma
from lensviz.errorbars import ErrorModel, linear_errorbars, load_error_models
from lensviz.evaluation import (
    calibration_set,
    choose_ks93_sigma,
    evaluate_depths,
    ks93_depth_predictor,
    ks93_predictor,
    score_methods,
    summarize,
    wiener_predictor,
)
from lensviz.fields import field_mask
from lensviz.inversion import gaussian_smooth, ks93
from lensviz.lab import LAB_DIR as _LAB_DIR
from lensviz.lab import RESULTS_FILE as _LAB_RESULTS
from lensviz.lab import LabResults, load_lab
from lensviz.reliability import METHODS, STABLE_AGREEMENT, read_coverage, stable_noise_maps
from lensviz.simulate import (
    SimulationConfig,
    add_shape_noise,
    depth_config,
    observe_kappa,
    simulate_batch,
    simulate_truth,
)
from lensviz.wiener import PowerSpectrum
from ui.text import WIENER_NAME, ks93_label, wiener_label
from ui.weights import first_non_finite_weight

__all__ = [
    "BUILTIN_SAMPLES",
    "COVERAGE_BENCHMARK",
    "SIMULATION_GRID",
    "UNCALIBRATED",
    "coverage_tables",
    "errorbars",
    "errorbars_path",
    "linear_errorbars_of",
    "observed_grid",
    "unet_errorbars",
    "CALIBRATION_MAPS",
    "DATA_DIR",
    "Dataset",
    "MC_MAX_PASSES",
    "MC_PASSES",
    "NOISE_REALISATIONS",
    "DETECTIONS_BENCHMARK",
    "FALLBACK_NOISE_REALISATIONS",
    "default_noise_realisations",
    "LAB_DIR",
    "ROOT",
    "SHIPPED_WEIGHTS_DIR",
    "UNCERTAINTY_METHODS",
    "USER_WEIGHTS_DIR",
    "builtin_dataset",
    "calibrated_ks93_sigma",
    "cosmos_dataset",
    "device_label",
    "kappa_maps",
    "lab_point",
    "lab_results",
    "linear_kappa_maps",
    "unet_kappa_or_note",
    "ks93_kappa",
    "metric_scores",
    "metric_summary",
    "model_files",
    "model_kappa",
    "noise_sweep",
    "null_test_methods",
    "null_test_results",
    "reconstruction_seconds",
    "observed_dataset",
    "power_spectrum",
    "power_spectrum_path",
    "sample_metrics",
    "server_dataset",
    "server_dataset_names",
    "teaching_cluster",
    "unet_kappa",
    "unet_model",
    "unet_warnings",
    "nn",
    "unet_loaded",
    "uncertainty_calibration",
    "metrics_by_depth",
    "unet_sigma",
    "uploaded_dataset",
    "weight_maps",
    "wiener_kappa",
]

ROOT = Path(__file__).resolve().parent.parent
#: Shipped weights (read-only): one ``.keras`` per preset, a model card and the κ power
#: spectrum beside them (honours ``LENSVIZ_WEIGHTS_DIR``, see :mod:`lensviz.constants`).
SHIPPED_WEIGHTS_DIR = Path(constants.WEIGHTS_DIR)
#: Fine-tuned weights written from the app (override with ``LENSVIZ_USER_WEIGHTS``).
USER_WEIGHTS_DIR = Path(os.environ.get("LENSVIZ_USER_WEIGHTS", ROOT / "runs" / "finetuned"))
#: The loss lab's models and results (read-only; :mod:`lensviz.lab`).
LAB_DIR = Path(_LAB_DIR)
#: Server-side datasets offered in the sidebar (override with ``LENSVIZ_DATA_DIR``).
DATA_DIR = Path(os.environ.get("LENSVIZ_DATA_DIR", ROOT / "data"))
BUILTIN_SAMPLES = 24  # maps in the built-in simulated set
SERVER_MAX_SAMPLES = 512  # maps loaded from a server dataset
#: Calibration maps used to choose the smoothing σ of "KS93 smoothed" (Evaluate, Learn).
CALIBRATION_MAPS = 200
#: Choices of the UNet-uncertainty method: label → ``lensviz.nn.uncertainty`` method.
UNCERTAINTY_METHODS = {
    "Monte-Carlo dropout": "mc_dropout",
    "8 symmetries (test-time augmentation)": "tta",
}
MC_PASSES = 20  # default number of Monte-Carlo-dropout passes
MC_MAX_PASSES = 50


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """Maps offered by a data source (the arrays are read-only and shared by sessions).

    Maps are the challenge's 128 × 128 tiles or whole fields of any size (64–2048 px);
    empty and masked pixels have ``Δε = EMPTY_PIXEL_SIGMA``
    (:func:`lensviz.fields.field_mask`). ``grid`` is their pixel scale, whether the data
    stated it, and the WCS of a FITS input (:class:`lensviz.data.PixelGrid`); the
    sidebar offers a field for a scale the data do not state.
    """

    label: str  # for people, e.g. "simulated (seed 0)"
    key: str  # identifies the content, for caches, e.g. "sim:0"
    eps: np.ndarray  # (N, ny, nx, 3) float32
    kappa: np.ndarray | None  # (N, ny, nx) float32, or None without truth
    names: tuple[str, ...]
    depth: str | None = None  # survey-depth preset of simulated data (None: the default)
    grid: PixelGrid = dataclasses.field(default_factory=PixelGrid)
    sigma_e: float = constants.SIGMA_E  # the σ_e that Δε was computed with
    note: str | None = None  # what the sidebar must say about the data (a WCS left out)

    @property
    def is_tile(self) -> bool:
        """Maps of the UNet's 128 × 128 training tiles (not whole fields)."""
        return self.eps.shape[1:3] == (constants.NPIX, constants.NPIX)

    @property
    def pixel_arcmin(self) -> float:
        """Pixel side [arcmin] (0.5′ when the data do not state it and no one set it)."""
        return self.grid.pixel_arcmin

    @property
    def header(self) -> fits.Header | None:
        """The WCS cards of a FITS input, for FITS downloads, or None."""
        return self.grid.header


#: The pixel grid of the simulator's maps (the built-in set): 0.5′, stated.
SIMULATION_GRID = PixelGrid(constants.PIXEL_ARCMIN, True, "the simulation")


def _read_only(*arrays):
    for a in arrays:
        if a is not None:
            a.setflags(write=False)


#: The module of the app's TensorFlow side (:func:`nn`).
NN_MODULE = "ui.models"


def nn():
    """:mod:`ui.models`, imported (TensorFlow with it) on the first call."""
    return importlib.import_module(NN_MODULE)


def unet_loaded() -> bool:
    """Whether this server process has loaded TensorFlow and the UNet code yet."""
    return NN_MODULE in sys.modules


# === Datasets ===


@st.cache_resource(max_entries=8, show_spinner="Simulating galaxy-cluster fields…")
def _simulated(
    seed: int, n: int, depth: str | None
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    first = constants.TEST_SEED_START + seed * n
    config = SimulationConfig() if depth is None else depth_config(depth)
    eps, kappa = simulate_batch(n, first, config)
    _read_only(eps, kappa)
    return eps, kappa, tuple(f"sim_{first + i:06d}" for i in range(n))


def builtin_dataset(seed: int, n: int = BUILTIN_SAMPLES, depth: str | None = None) -> Dataset:
    """``n`` simulated samples from the test seed range (seed 0 → seeds 0 … n−1).

    ``depth`` is a depth spec of :func:`lensviz.simulate.depth_config` (a survey preset,
    galaxies per arcmin², or ``"inf"``); None is the default (LSST-like) depth. The same
    seeds give the same κ at every depth: only the galaxies change.
    """
    eps, kappa, names = _simulated(int(seed), int(n), depth)
    where = "" if depth is None else f", {depth_label(depth_config(depth).n_gal)}"
    key = f"sim:{seed}" if depth is None else f"sim:{seed}@{depth}"
    label = f"simulated (seed {seed}{where})"
    return Dataset(label, key, eps, kappa, names, depth, SIMULATION_GRID)


@st.cache_resource(max_entries=4, show_spinner="Reading the upload…")
def _upload(digest: str, _files: tuple[tuple[str, bytes], ...]):
    if len(_files) == 1 and Path(_files[0][0]).suffix.lower() in constants.FITS_SUFFIXES:
        field = data.load_field_upload(*_files[0])
        kappa = None if field.kappa is None else field.kappa[None]
        eps, names, grid = field.eps[None], [Path(_files[0][0]).stem], field.grid
    else:
        loaded = data.load_uploads(_files)
        eps, kappa, names, grid = loaded.eps, loaded.kappa, loaded.names, loaded.grid
    _read_only(eps, kappa)
    return eps, kappa, tuple(names), grid


def uploaded_dataset(files: tuple[tuple[str, bytes], ...]) -> Dataset:
    """The maps of uploaded files: one ``.npy``/``.npz``/``.h5``/``.fits``, or an ε + κ
    ``.npy`` pair, with the pixel scale and WCS the files state.

    Raises
    ------
    ValueError, TypeError
        Naming the file and what was expected.
    """
    digest = data.upload_key(files)  # names, suffixes and bytes
    eps, kappa, names, grid = _upload(digest, tuple(files))
    label = " + ".join(n for n, _ in files)
    return Dataset(f"upload: {label}", f"upload:{digest}", eps, kappa, names, grid=grid)


def server_dataset_names() -> list[str]:
    """Datasets directly under :data:`DATA_DIR`: HDF5, npz and FITS field files, and
    challenge folders."""
    if not DATA_DIR.is_dir():
        return []
    found = []
    for p in sorted(DATA_DIR.iterdir()):
        if p.name.startswith("."):
            continue
        if p.suffix.lower() in (".h5", ".hdf5", ".npz", *constants.FITS_SUFFIXES) and p.is_file():
            found.append(p.name)
        elif p.is_dir() and (p / "EPSILON").is_dir():
            found.append(p.name)
    return found


@st.cache_resource(max_entries=4, show_spinner="Reading the dataset…")
def _server(name: str, mtime: float):
    loaded = data.load_dataset(DATA_DIR / name, 0, SERVER_MAX_SAMPLES)
    _read_only(loaded.eps, loaded.kappa)
    return loaded.eps, loaded.kappa, tuple(loaded.names), loaded.grid


def server_dataset(name: str) -> Dataset:
    """At most :data:`SERVER_MAX_SAMPLES` maps of a dataset of :func:`server_dataset_names`,
    with the pixel scale and WCS the files state."""
    if name not in server_dataset_names():  # only names we listed: no arbitrary paths
        raise ValueError(f"{name!r} is not a dataset under the configured data directory")
    eps, kappa, names, grid = _server(name, (DATA_DIR / name).stat().st_mtime)
    return Dataset(f"server: {name}", f"server:{name}", eps, kappa, names, grid=grid)


def cosmos_dataset() -> Dataset:
    """The COSMOS field shipped with lensviz (:mod:`lensviz.cosmos`): one real 256 × 256
    field of binned HST shear, 0.352′ pixels with its measured WCS, no true κ."""
    field = cosmos.load_cosmos()  # read once per process, read-only
    return Dataset(
        "real: COSMOS (HST)",
        "cosmos",
        field.eps[None],
        None,
        ("cosmos",),
        grid=field.grid,
        sigma_e=field.sigma_e,
    )


@st.cache_resource(max_entries=4, show_spinner="Observing the κ map…")
def _observed(key: str, _kappa_file: tuple[str, bytes], _mask_file, settings: tuple):
    n_gal, sigma_e, pixel_arcmin, seed = settings
    kappa, header = data.load_kappa_upload(*_kappa_file)
    mask = None if _mask_file is None else data.load_mask_upload(*_mask_file, kappa.shape)
    eps = observe_kappa(kappa, np.random.default_rng(seed), n_gal, sigma_e, pixel_arcmin, mask)
    eps, kappa = eps[None], kappa[None].astype(np.float32)
    _read_only(eps, kappa)
    return eps, kappa, header


def observed_grid(header, pixel_arcmin: float, source: str) -> tuple[PixelGrid, str | None]:
    """The pixel grid of an observed κ map: the sidebar's pixel side, with the map's WCS
    when the WCS states the same side (within 1 %); and a sentence when it does not
    (the WCS is then left out: its RA/Dec would not fit the map the sidebar made)."""
    given = PixelGrid(float(pixel_arcmin), True, "given in the sidebar")
    try:
        return header_grid(header, source).given(pixel_arcmin, source), None
    except DataError as exc:
        return given, f"{exc}; the sidebar's {pixel_arcmin:g}′ is used and the WCS left out"


def observed_dataset(
    kappa_file: tuple[str, bytes],
    mask_file: tuple[str, bytes] | None,
    n_gal: float,
    sigma_e: float = constants.SIGMA_E,
    pixel_arcmin: float = constants.PIXEL_ARCMIN,
    seed: int = 0,
) -> Dataset:
    """A κ map of the user's (any size), observed with the simulator's physics at a depth.

    :func:`lensviz.simulate.observe_kappa`, as ``python -m lensviz observe``: the reduced
    shear of the map, galaxies at ``n_gal`` per arcmin² with ``sigma_e``, the optional
    mask image. The map is its own truth.

    Raises
    ------
    ValueError, TypeError
        A bad file (naming it and what was expected) or a bad setting.
    """
    files = (kappa_file, *(() if mask_file is None else (mask_file,)))
    digest = data.upload_key(files)  # names, suffixes and bytes
    settings = (float(n_gal), float(sigma_e), float(pixel_arcmin), int(seed))
    key = f"observed:{digest}:" + ":".join(f"{v:g}" for v in settings)
    eps, kappa, header = _observed(key, kappa_file, mask_file, settings)
    grid, note = observed_grid(header, pixel_arcmin, kappa_file[0])
    name = Path(kappa_file[0]).stem
    where = depth_label(n_gal) + ("" if mask_file is None else ", masked")
    return Dataset(
        f"observed: {kappa_file[0]} ({where})",
        key,
        eps,
        kappa,
        (name,),
        grid=grid,
        sigma_e=float(sigma_e),
        note=note,
    )


# === Models ===


def _is_temporary(path: Path) -> bool:
    """Hidden files and the temporary siblings of atomic writes (``.NAME.keras.x.tmp``)."""
    return path.name.startswith(".") or ".tmp" in path.name


@st.cache_data(max_entries=64, show_spinner=False)
def _refused_archive(path: str, mtime: float) -> str | None:
    """Why :func:`lensviz.data.archive.check_keras_archive` refuses a model file, or None."""
    try:
        check_keras_archive(path)
    except (ValueError, OSError) as exc:
        return str(exc)
    return None


@st.cache_data(max_entries=64, show_spinner=False)
def _non_finite_weights(path: str, mtime: float) -> str | None:
    """See :func:`ui.weights.first_non_finite_weight`; an unreadable file is left to the
    Keras loader, which names the problem when the model is used."""
    try:
        return first_non_finite_weight(path)
    except ValueError:
        return None


def model_files() -> tuple[dict[str, str], dict[str, str]]:
    """The models to offer, and the ones left out with the reason.

    Returns
    -------
    models : dict
        Display name → path: the shipped weights first, then fine-tuned ones (newest
        first), then the loss lab's (in the lab's order, "NAME (loss lab)"). Temporary
        files of interrupted writes are never listed.
    ignored : dict
        File name → why it is not offered (a refused archive, non-finite weights).
    """
    models, ignored = {}, {}
    found = [(p, "shipped") for p in sorted(SHIPPED_WEIGHTS_DIR.glob("*.keras"))]
    if USER_WEIGHTS_DIR.is_dir():
        user = [p for p in USER_WEIGHTS_DIR.glob("*.keras") if not _is_temporary(p)]
        found += [(p, "fine-tuned") for p in sorted(user, key=lambda p: -p.stat().st_mtime)]
    lab = lab_results()
    if isinstance(lab, LabResults):
        found += [(p, "loss lab") for p in map(lab.model_path, lab.names) if p is not None]
    for p, kind in found:
        if _is_temporary(p) or not p.is_file():
            continue
        refused = _refused_archive(str(p), p.stat().st_mtime)
        if refused is not None:
            ignored[p.name] = refused
            continue
        bad = _non_finite_weights(str(p), p.stat().st_mtime)
        if bad is not None:
            ignored[p.name] = f"non-finite weights (NaN or inf) in {bad}"
            continue
        models[f"{p.stem} ({kind})"] = str(p)
    return models, ignored


def unet_model(sel):
    """The selected Keras model (cached per file version; never mutate it), or None
    (:func:`ui.models.unet_model`; loads TensorFlow).

    Raises
    ------
    ValueError
        If the file is corrupt or its weights are not finite.
    """
    return None if sel.model_path is None else nn().unet_model(sel)


def unet_warnings(sel) -> list[str]:
    """Why the selected UNet may be wrong on the selected sample
    (:func:`ui.models.unet_warnings`; loads TensorFlow)."""
    return [] if sel.model_path is None else nn().unet_warnings(sel)


def device_label() -> str:
    """Where the UNet runs, e.g. ``"CPU (2 cores)"`` (loads TensorFlow)."""
    return nn().device_label()


@st.cache_data(max_entries=4, show_spinner=False)
def _lab_results(path: str, mtime: float) -> LabResults:
    return load_lab(path)


def lab_results() -> LabResults | str:
    """The loss lab's results (:func:`lensviz.lab.load_lab` of :data:`LAB_DIR`), or a
    sentence saying why there are none."""
    path = LAB_DIR / _LAB_RESULTS
    try:
        return _lab_results(str(path), path.stat().st_mtime)
    except FileNotFoundError:
        return (
            f"The loss lab's results ({_LAB_RESULTS}) are not on this server: "
            "`python -m benchmarks.loss_lab` writes them into weights/lab."
        )
    except (ValueError, OSError) as exc:
        return f"The loss lab's results cannot be read: {exc}"


def lab_point(path: str, lab: LabResults, depth: str) -> dict[str, tuple[float, float]]:
    """Mean ± standard error of every metric of the model at ``path`` on the loss lab's
    held-out maps of ``depth``, as the lab scored its own (:func:`ui.models.lab_scores`;
    loads TensorFlow)."""
    return nn().lab_scores(path, lab, depth)


# === κ maps of the selected sample ===


def model_kappa(sel, path: str) -> np.ndarray:
    """κ ``(ny, nx)`` of the selected sample from the model at ``path`` (another model
    than the sidebar's, e.g. a loss-lab variant; :func:`ui.models.model_kappa`).

    Raises
    ------
    ValueError, OSError
        If the model cannot be loaded or run.
    """
    return nn().model_kappa(sel, path)


def unet_kappa(sel) -> np.ndarray | None:
    """UNet κ ``(ny, nx)`` of the selected sample (a ``tf.function`` forward; a whole
    field from blended overlapping tiles); None without a model
    (:func:`ui.models.unet_kappa`; loads TensorFlow).

    Raises
    ------
    ValueError, OSError
        If the model cannot be loaded or run.
    """
    return None if sel.model_path is None else nn().unet_kappa(sel)


@st.cache_data(max_entries=128, show_spinner=False)
def _ks93(data_key: str, index: int, sigma_px: float, pad: int, _eps: np.ndarray) -> np.ndarray:
    e = _eps[index]
    return gaussian_smooth(ks93(e[..., 0], e[..., 1], pad=pad)[0], sigma_px)


def ks93_kappa(sel, sigma_px: float | None = None, pad: int | None = None) -> np.ndarray:
    """KS93 E mode of the selected sample, Gaussian-smoothed by ``sigma_px`` pixels.

    ``sigma_px`` and ``pad`` default to the sidebar's KS93 settings.
    """
    sigma = sel.ks93_sigma_px if sigma_px is None else float(sigma_px)
    pad = sel.ks93_pad if pad is None else int(pad)
    return _ks93(sel.key, sel.index, sigma, pad, sel.eps)


def power_spectrum_path() -> Path | None:
    """``kappa_power.npz`` in :data:`SHIPPED_WEIGHTS_DIR`, or None when it is not there."""
    path = SHIPPED_WEIGHTS_DIR / constants.POWER_SPECTRUM_FILE
    return path if path.is_file() else None


@st.cache_resource(max_entries=4)
def _spectrum(path: str, mtime: float) -> PowerSpectrum:
    return PowerSpectrum.load(path)


def power_spectrum() -> PowerSpectrum | None:
    """The shipped κ power spectrum S of the Wiener filter, or None when it is missing.

    Raises
    ------
    ValueError, OSError
        If the file is unreadable.
    """
    path = power_spectrum_path()
    if path is None:
        return None
    return _spectrum(str(path), path.stat().st_mtime)


@st.cache_data(max_entries=64, show_spinner=False)
def _wiener(
    data_key: str,
    index: int,
    spectrum_path: str,
    mtime: float,
    pad: int,
    pixel_arcmin: float,
    _eps: np.ndarray,
    _signal: PowerSpectrum,
) -> np.ndarray:
    return wiener_predictor(_signal, pad=pad)(_eps[index][None], pixel_arcmin=pixel_arcmin)[0]


def wiener_kappa(sel, pad: int | None = None) -> np.ndarray | None:
    """Wiener κ, ``S/(S+N)`` on the KS93 E mode, of the selected sample; N from its own
    Δε, S at its pixel side. None without a power spectrum. ``pad`` defaults to the
    sidebar's KS93 padding.

    Raises
    ------
    ValueError, OSError
        If the power spectrum is unreadable.
    """
    path = power_spectrum_path()
    if path is None:
        return None
    pad = sel.ks93_pad if pad is None else int(pad)
    mtime = path.stat().st_mtime
    return _wiener(
        sel.key,
        sel.index,
        str(path),
        mtime,
        pad,
        float(sel.pixel_arcmin),
        sel.eps,
        _spectrum(str(path), mtime),
    )


def unet_kappa_or_note(sel) -> np.ndarray | None:
    """The UNet κ of the selected sample for a page, or None after a note on the page
    saying why there is none (no weights, an unreadable model)."""
    if sel.model_path is None:
        st.info(
            "No UNet weights found (looked in "
            f"{SHIPPED_WEIGHTS_DIR} and {USER_WEIGHTS_DIR}): the UNet views are missing. "
            "Train or copy a model to weights/*.keras, or fine-tune one on the "
            "Fine-tune page."
        )
        return None
    try:
        return unet_kappa(sel)
    except (ValueError, OSError) as exc:
        st.error(f"Could not run the UNet {sel.model_name!r}: {exc}")
        return None


def linear_kappa_maps(sel) -> dict[str, np.ndarray]:
    """Wiener and KS93 κ of the selected sample, keyed by display name, in that order
    (no TensorFlow). Without a power spectrum, Wiener is left out and a note on the page
    says why."""
    out = {}
    try:
        wiener = wiener_kappa(sel)
    except (ValueError, OSError) as exc:
        st.error(f"Could not run the Wiener filter: {exc}")
    else:
        if wiener is None:
            st.caption(
                f"No κ power spectrum ({constants.POWER_SPECTRUM_FILE}) in "
                f"{SHIPPED_WEIGHTS_DIR}: the Wiener filter is left out. Make it with "
                "`python -m lensviz powerspec --out "
                f"{SHIPPED_WEIGHTS_DIR / constants.POWER_SPECTRUM_FILE}`."
            )
        else:
            out[wiener_label(sel.ks93_pad)] = wiener
    out[ks93_label(sel.ks93_sigma_px, sel.ks93_pad)] = ks93_kappa(sel)
    return out


def kappa_maps(sel) -> dict[str, np.ndarray]:
    """UNet, Wiener and KS93 κ of the selected sample, keyed by display name, in that order.

    A method that cannot run is left out, and a note on the page says why (no weights,
    no power spectrum, an unreadable file).
    """
    unet = unet_kappa_or_note(sel)
    return ({} if unet is None else {"UNet": unet}) | linear_kappa_maps(sel)


def unet_sigma(sel, method: str, n_passes: int = MC_PASSES) -> tuple[np.ndarray, np.ndarray]:
    """Mean and per-pixel σ ``(128, 128)`` of the selected sample's UNet κ, by
    :data:`UNCERTAINTY_METHODS` ``method`` (:func:`ui.models.unet_sigma`).

    Raises
    ------
    ValueError
        Without a model, or if it cannot be loaded.
    """
    return nn().unet_sigma(sel, method, n_passes)


def uncertainty_calibration(truth, mean, std) -> dict:
    """Coverage of ``mean ± zσ`` against the truth
    (:func:`lensviz.nn.uncertainty.calibration`)."""
    return nn().calibration(truth, mean, std)


# === Calibrated error bars of the selected sample ===

#: What the pages say when a UNet has no calibrated error bars.
UNCALIBRATED = (
    "its error bars are not calibrated (calibration belongs to the model it was fitted on)"
)


def errorbars_path() -> Path | None:
    """The calibration of KS93's and Wiener's error bars (``errorbars.json`` in
    :data:`SHIPPED_WEIGHTS_DIR`), or None when it is not there."""
    path = SHIPPED_WEIGHTS_DIR / constants.ERRORBARS_FILE
    return path if path.is_file() else None


@st.cache_resource(max_entries=4)
def _error_models(path: str, mtime: float) -> dict[str, ErrorModel]:
    return load_error_models(path)


@st.cache_data(max_entries=64, show_spinner="Computing the error bars…")
def _linear_errorbars(
    data_key: str,
    index: int,
    method: str,
    sigma_px: float,
    pad: int,
    pixel_arcmin: float,
    files: tuple,
    _eps: np.ndarray,
    _model: ErrorModel,
    _signal: PowerSpectrum,
) -> tuple[np.ndarray, np.ndarray]:
    return linear_errorbars(_eps[index], _model, _signal, sigma_px, pad, pixel_arcmin)


def linear_errorbars_of(sel, method: str) -> tuple[np.ndarray, np.ndarray] | str:
    """``(kappa_std, kappa_hw95)`` ``(ny, nx)`` of the selected sample's Wiener (``method``
    ``"wiener"``) or KS93 map (``"ks93"``, at the sidebar's σ), as the page computed it
    (padding, pixel side): :func:`lensviz.errorbars.linear_errorbars`. Or a sentence
    saying why there are none (no calibration file, no power spectrum, a bad file)."""
    models_path, spectrum_path = errorbars_path(), power_spectrum_path()
    if models_path is None:
        return (
            f"no calibration of the linear methods ({constants.ERRORBARS_FILE}) in "
            f"{SHIPPED_WEIGHTS_DIR}: `python -m lensviz errorbars` makes it"
        )
    if spectrum_path is None:
        return "their error bars need the κ power spectrum, which is missing"
    try:
        models = _error_models(str(models_path), models_path.stat().st_mtime)
        signal = power_spectrum()
    except (ValueError, OSError) as exc:
        return f"the calibration cannot be read: {exc}"
    files = (
        (str(models_path), models_path.stat().st_mtime),
        (str(spectrum_path), spectrum_path.stat().st_mtime),
    )
    sigma = float(sel.ks93_sigma_px) if method == "ks93" else 0.0
    return _linear_errorbars(
        sel.key,
        sel.index,
        method,
        sigma,
        int(sel.ks93_pad),
        float(sel.pixel_arcmin),
        files,
        sel.eps,
        models[method],
        signal,
    )


def unet_errorbars(sel) -> tuple[np.ndarray, np.ndarray, np.ndarray] | str:
    """``(κ̂, kappa_std, kappa_hw95)`` of the selected sample's UNet, from the quantile
    network fitted to the model file (:func:`ui.models.unet_errorbars`; loads
    TensorFlow), or a sentence saying why there are none (:data:`UNCALIBRATED`: a
    fine-tuned or loss-lab model has no network fitted to it)."""
    if sel.model_path is None:
        return "there are no UNet weights"
    try:
        return nn().unet_errorbars(sel)
    except (ValueError, OSError) as exc:
        return f"{UNCALIBRATED}: {exc}"


def errorbars(sel, names) -> dict[str, tuple[np.ndarray, np.ndarray] | str]:
    """The calibrated error bars ``(kappa_std, kappa_hw95)`` of the methods ``names`` (the
    keys of :func:`kappa_maps`: "UNet", Wiener's and KS93's labels), or for each a
    sentence saying why it has none. The UNet's κ̂ of the same run is in
    :func:`unet_errorbars`."""
    out = {}
    for name in names:
        if name == "UNet":
            got = unet_errorbars(sel)
            out[name] = got if isinstance(got, str) else got[1:]
        elif name.startswith(WIENER_NAME):
            out[name] = linear_errorbars_of(sel, "wiener")
        else:
            out[name] = linear_errorbars_of(sel, "ks93")
    return out


#: The benchmark that measures the coverage before it reaches the model card.
COVERAGE_BENCHMARK = ROOT / "benchmarks" / "errorbars.json"


@st.cache_data(max_entries=16, show_spinner=False)
def _sha256(path: str, mtime: float) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@st.cache_data(max_entries=16, show_spinner=False)
def _coverage_file(path: str, mtime: float) -> tuple[dict, dict]:
    """The coverage a card or benchmark holds, and what it says it was measured on."""
    table = read_coverage(path)  # checks the size and every number first
    values = json.loads(Path(path).read_text(encoding="utf-8"))
    return table, {"sha256": values.get("sha256"), "weights": values.get("weights")}


def _measured_on(meta: dict, source: Path, model_path: str | None) -> bool:
    """Whether a file's UNet coverage belongs to the selected model: a card with its
    SHA-256, or a benchmark naming its file."""
    if model_path is None:
        return False
    if meta.get("sha256"):
        return meta["sha256"] == _sha256(model_path, os.path.getmtime(model_path))
    weights = meta.get("weights")
    if weights:
        named = Path(weights) if Path(weights).is_absolute() else ROOT / weights
        return named.resolve() == Path(model_path).resolve()
    return False


def coverage_tables(sel) -> dict[str, tuple[dict, str]]:
    """Each method's measured coverage ``{depth: {method: {kind: Coverage}}}``
    (:func:`lensviz.reliability.read_coverage`, for :func:`~lensviz.reliability.coverage_at`)
    and the file it comes from, keyed by
    :data:`lensviz.reliability.METHODS`; a method no file measured is left out.

    Read in order: the selected model's card (``NAME.json`` beside it), the shipped
    cards, then :data:`COVERAGE_BENCHMARK`. KS93's and Wiener's come from the first file
    that has them; the UNet's only from a file measured on the selected model (a card
    with its SHA-256, a benchmark naming its file): another model's coverage says
    nothing of this one. Unreadable files are skipped.
    """
    sources = []
    if sel.model_path is not None:
        sources.append(Path(sel.model_path).with_suffix(".json"))
    sources += sorted(SHIPPED_WEIGHTS_DIR.glob("*.json"))
    sources.append(COVERAGE_BENCHMARK)
    out: dict[str, tuple[dict, str]] = {}
    for source in dict.fromkeys(sources):
        try:
            table, meta = _coverage_file(str(source), source.stat().st_mtime)
        except (OSError, ValueError):
            continue
        for method in METHODS:
            if method in out:
                continue
            rows = {d: {method: row[method]} for d, row in table.items() if method in row}
            if rows and (method != "unet" or _measured_on(meta, source, sel.model_path)):
                out[method] = (rows, source.name)
    return out


# === Metrics of the selected sample ===


@st.cache_data(max_entries=256, show_spinner=False)
def _scores_of_map(
    data_key: str, index: int, method_key: str, _truth: np.ndarray, _pred: np.ndarray
) -> dict[str, float]:
    return {k: float(v[0]) for k, v in metrics.score(_truth, _pred).items()}


def sample_metrics(sel, preds: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """The challenge metrics plus RMSE and r of each prediction of the selected sample.

    ``preds`` is :func:`kappa_maps`'s dict; a method's scores are cached under its name
    (which carries the KS93 σ and padding) and the model file, so moving the KS93 slider
    scores only the KS93 map again.
    """
    model = f"{sel.model_path}@{sel.model_mtime}"
    return {
        name: _scores_of_map(sel.key, sel.index, f"{name}|{model}", sel.sample_kappa, p)
        for name, p in preds.items()
    }


# === Loss weights ===


@st.cache_data(max_entries=64, show_spinner=False)
def _weight_maps(data_key: str, index: int, params: tuple, _kappa: np.ndarray):
    return loss_weights.weight_maps(_kappa, **dict(params))


def weight_maps(sel, **params) -> dict[str, np.ndarray]:
    """The five MultiFocal weight maps of the selected sample's true κ (see
    :func:`lensviz.loss_weights.weight_maps` for ``params``)."""
    return _weight_maps(sel.key, sel.index, tuple(sorted(params.items())), sel.sample_kappa)


# === Scores over many maps (Evaluate) ===


@st.cache_data(max_entries=512, show_spinner=False)
def _scores(
    data_key: str,
    model_path: str | None,
    mtime: float,
    start: int,
    stop: int,
    sigma_px: float | None,
    pad: int,
    spectrum: tuple[str, float] | None,
    smoothed_name: str,
    pixel_arcmin: float,
    _eps: np.ndarray,
    _kappa: np.ndarray,
    _unet=None,
    _signal: PowerSpectrum | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    predictors = {}
    if _unet is not None:
        predictors["UNet"] = _unet
    if _signal is not None:
        predictors["Wiener"] = wiener_predictor(_signal, pad=pad)
    predictors["KS93 raw"] = ks93_predictor(0.0, pad)
    predictors[smoothed_name] = (
        ks93_depth_predictor(pad) if sigma_px is None else ks93_predictor(sigma_px, pad)
    )
    return score_methods(
        _eps[start:stop], _kappa[start:stop], predictors, pixel_arcmin=pixel_arcmin
    )


def metric_scores(
    sel, start: int, stop: int, sigma_px: float | None, smoothed_name: str, *, with_unet: bool
) -> dict[str, dict[str, np.ndarray]]:
    """Per-map metrics ``{method: {metric: (stop − start,)}}`` of maps ``start:stop``.

    Methods: the UNet (when ``with_unet``), Wiener (with a power spectrum), raw KS93 and
    KS93 smoothed by ``sigma_px`` (named ``smoothed_name``; None: each map's σ from the
    depth rule, :func:`lensviz.depth.ks93_sigma`), zero-padded as the sidebar says, each
    told the data's pixel side. Maps of any size (whole fields too). One cache entry per
    chunk, so a larger N reuses what was already scored.
    """
    path = sel.model_path if with_unet else None
    spec = power_spectrum_path()
    spectrum = (str(spec), spec.stat().st_mtime) if spec is not None else None
    return _scores(
        sel.key,
        path,
        sel.model_mtime if path else 0.0,
        int(start),
        int(stop),
        None if sigma_px is None else float(sigma_px),
        int(sel.ks93_pad),
        spectrum,
        smoothed_name,
        float(sel.pixel_arcmin),
        sel.eps,
        sel.kappa,
        _unet=nn().field_predictor(unet_model(sel)) if path else None,
        _signal=_spectrum(*spectrum) if spectrum else None,
    )


@st.cache_data(max_entries=32, show_spinner=False)
def _summary(
    data_key: str,
    model_path: str | None,
    n: int,
    sigma_px: float | None,
    methods: tuple[str, ...],
    _per_map: dict,
) -> dict:
    return summarize(_per_map)


def metric_summary(sel, per_map: dict, sigma_px: float | None) -> dict:
    """Mean, median, std and bootstrap s.e. of every metric of ``per_map`` (see
    :func:`lensviz.evaluation.summarize`), cached per data, model and settings."""
    n = len(next(iter(next(iter(per_map.values())).values())))
    return _summary(
        sel.key,
        f"{sel.model_path}@{sel.model_mtime}",
        n,
        None if sigma_px is None else float(sigma_px),
        tuple(per_map),
        per_map,
    )


@st.cache_data(show_spinner="Choosing the KS93 smoothing on calibration maps…")
def _calibrated_sigma(n: int, pad: int) -> tuple[float, dict]:
    eps, kappa = calibration_set(n)
    return choose_ks93_sigma(eps, kappa, pad=pad)


def calibrated_ks93_sigma(n: int = CALIBRATION_MAPS, pad: int = 0) -> tuple[float, dict]:
    """σ (pixels) minimising KS93's mean RMSE on ``n`` calibration maps, and the table.

    See :func:`lensviz.evaluation.choose_ks93_sigma`; the calibration seeds are disjoint
    from the built-in test set, so σ is never tuned on the data being scored.
    """
    return _calibrated_sigma(int(n), int(pad))


# === Teaching simulations (Learn) ===

CLUSTER_SEED = 7  # seed of the teaching cluster (only its concentration scatter is random)
FIELD_SEED = 3  # seed of the realistic field of the noise section
NOISE_SEED = 11  # seed of the galaxies drawn for the noise section


@st.cache_data(max_entries=32, show_spinner=False)
def _cluster(m200: float, z: float, realistic: bool) -> dict:
    if realistic:
        cfg = SimulationConfig(m200_range=(m200, m200), z_range=(z, z), center_offset_arcmin=0.0)
    else:
        cfg = SimulationConfig(
            m200_range=(m200, m200),
            z_range=(z, z),
            center_offset_arcmin=0.0,
            field_halo_density=0.0,
            n_subhalos=0.0,
            lss=False,
            elliptical=False,
        )
    t = simulate_truth(CLUSTER_SEED, cfg)
    return {k: t[k] for k in ("kappa", "gamma1", "gamma2", "shear1", "shear2")} | {
        "halo": t["halos"][0]
    }


def teaching_cluster(m200: float, z: float, realistic: bool) -> dict:
    """A noiseless cluster at the field centre: κ, shear γ, reduced shear g and its halo.

    ``realistic`` adds subhalos, field halos, ellipticity and large-scale structure.
    """
    return _cluster(float(m200), float(z), bool(realistic))


@st.cache_data(max_entries=4, show_spinner="Simulating the noise sweep…")
def _sweep(model_path: str | None, mtime: float, densities: tuple[float, ...], _unet=None) -> dict:
    t = simulate_truth(FIELD_SEED)
    eps = np.stack(
        [
            add_shape_noise(
                t["gamma1"], t["gamma2"], np.random.default_rng(NOISE_SEED), n_gal=float(n)
            )
            for n in densities
        ]
    )
    raw = ks93(eps[..., 0], eps[..., 1])[0]
    preds = {"KS93 raw": raw, "KS93 smoothed (depth rule)": ks93_depth_predictor()(eps)}
    if _unet is not None:
        preds["UNet"] = _unet(eps)
    return {
        "kappa": t["kappa"],
        "eps": eps,
        "preds": preds,
        "ks93_sigma_px": [ks93_sigma(e[..., 2]) for e in eps],
    }


def noise_sweep(sel, densities: tuple[float, ...], *, with_unet: bool) -> dict:
    """A fixed field observed at every galaxy density of ``densities``, and its maps.

    Returns ``kappa`` (truth), ``eps`` (n_levels, 128, 128, 3), the predictions
    ``{"KS93 raw", "KS93 smoothed (depth rule)", "UNet"}`` → (n_levels, 128, 128) (the
    UNet, the sidebar's model, only when ``with_unet``) and ``ks93_sigma_px``, the
    smoothing the depth rule chose at each density.
    """
    path = sel.model_path if with_unet else None
    return _sweep(
        path,
        sel.model_mtime if path else 0.0,
        tuple(float(d) for d in densities),
        _unet=nn().map_predictor(unet_model(sel)) if path else None,
    )


# === Metrics against depth (Evaluate) ===


@st.cache_data(max_entries=16, show_spinner=False)
def _by_depth(
    model_path: str | None, mtime: float, spec: str, n: int, spectrum, _unet=None, _signal=None
) -> dict:
    predictors = {}
    if _unet is not None:
        predictors["unet"] = _unet
    if _signal is not None:
        predictors["wiener"] = wiener_predictor(_signal)
    return evaluate_depths(predictors, (spec,), n)[spec]


def metrics_by_depth(sel, depths: tuple[str, ...], n: int, on_depth=None) -> dict[str, dict]:
    """:func:`lensviz.evaluation.evaluate_depths` of the selected UNet, Wiener and KS93 on
    ``n`` built-in fields at each depth spec of ``depths``; one cache entry per depth.
    ``on_depth(i, spec)`` is called before each depth (progress)."""
    spec_file = power_spectrum_path()
    spectrum = (str(spec_file), spec_file.stat().st_mtime) if spec_file is not None else None
    model = unet_model(sel)
    unet = None if model is None else nn().map_predictor(model)
    out = {}
    for i, spec in enumerate(depths):
        if on_depth is not None:
            on_depth(i, spec)
        out[spec] = _by_depth(
            sel.model_path if model is not None else None,
            sel.model_mtime,
            spec,
            int(n),
            spectrum,
            _unet=unet,
            _signal=_spectrum(*spectrum) if spectrum else None,
        )
    return out


# === Null tests of a field without truth (Null tests) ===

#: Noise realisations of the null tests offered on the page (with the default, below).
NOISE_REALISATIONS = (20, 50, 100, 200, 400)
#: The benchmark of how stable detections are on COSMOS per number of noise maps
#: (``python -m benchmarks.bench_detections``): it sets the page's default.
DETECTIONS_BENCHMARK = ROOT / "benchmarks" / "detections.json"
#: The default without that benchmark: at 50 noise maps the UNet's detections on COSMOS
#: moved from 36 to 14 between 50 and 200 maps (the error-bars issue), so more.
FALLBACK_NOISE_REALISATIONS = 200


@st.cache_data(max_entries=4, show_spinner=False)
def _stable_noise_maps(path: str, mtime: float) -> tuple[int | None, dict]:
    return stable_noise_maps(path)


def default_noise_realisations() -> tuple[int, str]:
    """The Null tests page's default number of noise maps, and a sentence saying why.

    The fewest from which on two noise seeds agree on at least
    :data:`lensviz.reliability.STABLE_AGREEMENT` of the detections of every method on
    COSMOS, at every number measured (:func:`lensviz.reliability.stable_noise_maps` of
    :data:`DETECTIONS_BENCHMARK`); the largest measured number when it does not;
    :data:`FALLBACK_NOISE_REALISATIONS` without the benchmark.
    """
    path = DETECTIONS_BENCHMARK
    try:
        n, table = _stable_noise_maps(str(path), path.stat().st_mtime)
    except (OSError, ValueError) as exc:
        reason = "it is not on this server" if isinstance(exc, OSError) else f"{exc}"
        return FALLBACK_NOISE_REALISATIONS, (
            f"{FALLBACK_NOISE_REALISATIONS} by default: the benchmark of stable detections "
            f"(python -m benchmarks.bench_detections) cannot be read ({reason})"
        )
    agree = f"{STABLE_AGREEMENT:.0%}"
    if n is None:
        n = max(table)
        return n, (
            f"{n} by default, the most measured: even there two noise seeds did not agree "
            f"on {agree} of every method's detections on COSMOS"
        )
    worst = min(min(row.values()) for m, row in table.items() if m >= n)
    return n, (
        f"{n} by default: from {n} noise maps on, two noise seeds agree on at least "
        f"{agree} of every method's detections on COSMOS (at least {worst:.0%}; "
        "benchmarks/detections.json)"
    )


@st.cache_data(max_entries=24, show_spinner=False)
def _null_test(
    data_key: str,
    index: int,
    method: tuple,
    n_noise: int,
    _eps: np.ndarray,
    _reconstruct,
) -> dict:
    eps = _eps[index]
    footprint = ~field_mask(eps)
    return nulltests.null_tests({"m": _reconstruct}, eps, footprint, n_noise, seed=0)["m"]


def null_test_methods(sel) -> dict[str, tuple[tuple, object]]:
    """The methods of the null tests, keyed by display name: the UNet (with a model),
    Wiener (with a power spectrum) and KS93 at the sidebar's smoothing and padding, each
    as ``(cache key, reconstruction eps (N, ny, nx, 3) -> kappa (N, ny, nx))``, told the
    data's pixel side.

    Raises
    ------
    ValueError, OSError
        If the model or the power spectrum cannot be read.
    """
    pad = int(sel.ks93_pad)
    pixel = float(sel.pixel_arcmin)
    methods = {}
    model = unet_model(sel)
    if model is not None:
        methods["UNet"] = (
            ("unet", sel.model_path, sel.model_mtime, pixel),
            functools.partial(nn().field_predictor(model), pixel_arcmin=pixel),
        )
    spec = power_spectrum_path()
    if spec is not None:
        mtime = spec.stat().st_mtime
        methods[wiener_label(pad)] = (
            ("wiener", str(spec), mtime, pad, pixel),
            functools.partial(
                wiener_predictor(_spectrum(str(spec), mtime), pad=pad), pixel_arcmin=pixel
            ),
        )
    sigma = float(sel.ks93_sigma_px)
    methods[ks93_label(sigma, pad)] = (("ks93", sigma, pad), ks93_predictor(sigma, pad))
    return methods


@st.cache_data(max_entries=64, show_spinner=False)
def _seconds_per_map(data_key: str, index: int, method: tuple, _eps, _reconstruct) -> float:
    eps = _eps[index]
    start = time.perf_counter()
    _reconstruct(np.stack([eps, eps]))
    return (time.perf_counter() - start) / 2


def reconstruction_seconds(sel, method_key: tuple, reconstruct) -> float:
    """Seconds one reconstruction of the selected sample takes with a method of
    :func:`null_test_methods` (two maps timed once per server, data and method: the
    first may include TensorFlow's tracing): the estimate of a progress bar."""
    return _seconds_per_map(sel.key, sel.index, method_key, sel.eps, reconstruct)


def null_test_results(sel, n_noise: int, on_method=None) -> dict[str, dict]:
    """:func:`lensviz.nulltests.null_tests` of the selected sample for each method of
    :func:`null_test_methods`, keyed by display name: the E/B test and ``n_noise``
    randomised-orientation noise maps (seed 0, the same maps for every method), over the
    sample's footprint (its pixels with galaxies).

    Each method is one cache entry. ``on_method(i, n, name, seconds)`` is called before
    method ``i`` of ``n`` with an estimate of its time when not cached (the
    :func:`reconstruction_seconds` of its ``n_noise + 2`` maps): a progress bar, drawn by
    the page outside the cached functions, so a cached result replays nothing.

    Raises
    ------
    ValueError, OSError
        If the model or the power spectrum cannot be read.
    """
    methods = null_test_methods(sel)
    out = {}
    for i, (name, (key, reconstruct)) in enumerate(methods.items()):
        if on_method is not None:
            seconds = (n_noise + 2) * reconstruction_seconds(sel, key, reconstruct)
            on_method(i, len(methods), name, seconds)
        out[name] = _null_test(sel.key, sel.index, key, int(n_noise), sel.eps, reconstruct)
    return out
