"""Shared sidebar state and cached computations for every page.

The sidebar (data source, sample, model, runtime) is drawn once by ``app.py`` through
:func:`sidebar`; pages read the current selection with :func:`current`. All heavy
work goes through the cached functions here: models with ``st.cache_resource`` (never
mutated), pure results with ``st.cache_data``. ``lensviz`` itself knows nothing of
Streamlit.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import os
from pathlib import Path

import numpy as np
import streamlit as st

from lensviz import constants, data

ROOT = Path(__file__).resolve().parent.parent
#: Shipped weights (read-only): one ``.keras`` per preset, with a model card beside it.
SHIPPED_WEIGHTS_DIR = Path(os.environ.get("LENSVIZ_WEIGHTS_DIR", ROOT / "weights"))
#: Fine-tuned weights written from the app (override with LENSVIZ_USER_WEIGHTS).
USER_WEIGHTS_DIR = Path(os.environ.get("LENSVIZ_USER_WEIGHTS", ROOT / "runs" / "finetuned"))
#: Server-side datasets offered in the sidebar (override with LENSVIZ_DATA_DIR).
DATA_DIR = Path(os.environ.get("LENSVIZ_DATA_DIR", ROOT / "data"))
BUILTIN_SAMPLES = 24  # maps in the built-in simulated set
SERVER_MAX_SAMPLES = 512  # maps loaded from a server dataset
SOURCES = ("Built-in simulated set", "Upload a file", "Server dataset")


@dataclasses.dataclass(frozen=True)
class Selection:
    """What the sidebar selected: a dataset, one sample of it and a model."""

    source: str  # a human label, e.g. "simulated (seed 0)"
    key: str  # identifies the dataset content, for caches
    eps: np.ndarray  # (N, 128, 128, 3) float32
    kappa: np.ndarray | None  # (N, 128, 128) float32, or None without truth
    names: tuple[str, ...]
    index: int
    model_name: str
    model_path: str | None  # None when no weights are available

    @property
    def sample_eps(self) -> np.ndarray:
        return self.eps[self.index]

    @property
    def sample_kappa(self) -> np.ndarray | None:
        return None if self.kappa is None else self.kappa[self.index]

    @property
    def sample_name(self) -> str:
        return self.names[self.index]

    @property
    def has_truth(self) -> bool:
        return self.kappa is not None


# === Cached data ===


@st.cache_data(max_entries=8, show_spinner="Simulating galaxy-cluster fields…")
def builtin_set(seed: int, n: int = BUILTIN_SAMPLES):
    """``n`` simulated samples from the test seed range (seed 0 → seeds 0 … n−1)."""
    from lensviz.simulate import simulate_batch

    eps, kappa = simulate_batch(n, constants.TEST_SEED_START + seed * n)
    names = tuple(f"sim_{constants.TEST_SEED_START + seed * n + i:06d}" for i in range(n))
    return eps, kappa, names


@st.cache_resource(max_entries=4, ttl=3600, show_spinner="Reading the upload…")
def read_upload(files: tuple[tuple[str, bytes], ...]):
    """Parse uploaded files: one ``.npy``/``.npz``/``.h5``, or an EPSILON + KAPPA ``.npy`` pair.

    Cached as a resource, so a rerun gets the same arrays back instead of a fresh copy
    (``st.cache_data`` would unpickle one per rerun); they are read-only, so no caller
    can change what another session sees.
    """
    eps, kappa, names = data.load_uploads(files)
    for arr in (eps, kappa):
        if arr is not None:
            arr.setflags(write=False)
    return eps, kappa, tuple(names)


def server_datasets() -> list[str]:
    """Datasets directly under :data:`DATA_DIR`: HDF5 files and challenge-layout folders."""
    if not DATA_DIR.is_dir():
        return []
    found = []
    for p in sorted(DATA_DIR.iterdir()):
        if p.suffix.lower() in (".h5", ".hdf5", ".npz") and p.is_file():
            found.append(p.name)
        elif p.is_dir() and (p / "EPSILON").is_dir():
            found.append(p.name)
    return found


@st.cache_data(max_entries=4, show_spinner="Reading the dataset…")
def read_server_dataset(name: str, mtime: float):
    """Read at most :data:`SERVER_MAX_SAMPLES` maps of a dataset from :func:`server_datasets`."""
    if name not in server_datasets():  # only names we listed: no arbitrary server paths
        raise ValueError(f"{name!r} is not a dataset under the configured data directory")
    eps, kappa, names = data.load_dataset(DATA_DIR / name, 0, SERVER_MAX_SAMPLES)
    return eps, kappa, tuple(names)


# === Models ===


def available_models() -> dict[str, str]:
    """Display name → path: the shipped weights first, then fine-tuned ones (newest first)."""
    models = {}
    for p in sorted(SHIPPED_WEIGHTS_DIR.glob("*.keras")):
        models[f"{p.stem} (shipped)"] = str(p)
    if USER_WEIGHTS_DIR.is_dir():
        user = sorted(USER_WEIGHTS_DIR.glob("*.keras"), key=lambda p: -p.stat().st_mtime)
        for p in user:
            models[f"{p.stem} (fine-tuned)"] = str(p)
    return models


@st.cache_resource(max_entries=4, show_spinner="Loading the UNet…")
def load_model(path: str, mtime: float):
    """The Keras model at ``path`` (cached per file version; never mutate it)."""
    from lensviz.model import load_model as _load

    model = _load(path)
    _freeze_heap()
    return model


def _freeze_heap() -> None:
    """Exempt the objects alive now (TensorFlow, Keras, loaded models) from cyclic GC.

    After every script run Streamlit calls ``keras.backend.clear_session()`` and
    ``gc.collect()``. Once TensorFlow is imported each full collection scans millions of
    objects: 0.4–0.9 s on 2 CPU cores, twice per widget move. Frozen objects are still
    freed by reference counting; only cycles among them are never collected.
    """
    gc.freeze()


def model_for(sel: Selection):
    if sel.model_path is None:
        return None
    return load_model(sel.model_path, os.path.getmtime(sel.model_path))


@st.cache_resource
def device_label() -> str:
    from lensviz.training import describe_device

    label = describe_device()  # imports TensorFlow
    _freeze_heap()
    return label


@st.cache_data(max_entries=16, show_spinner="Running the UNet…")
def unet_predict(model_path: str, mtime: float, data_key: str, _eps: np.ndarray,
                 indices: tuple[int, ...]) -> np.ndarray:
    """UNet κ for ``_eps[indices]`` (a ``tf.function`` forward, never ``model.predict``)."""
    from lensviz.model import predict_kappa

    model = load_model(model_path, mtime)
    return predict_kappa(model, _eps[list(indices)])


def unet_kappa(sel: Selection, indices=None) -> np.ndarray | None:
    """UNet predictions for the selected sample (or ``indices``); None without a model."""
    if sel.model_path is None:
        return None
    idx = (sel.index,) if indices is None else tuple(int(i) for i in indices)
    out = unet_predict(sel.model_path, os.path.getmtime(sel.model_path), sel.key, sel.eps, idx)
    return out[0] if indices is None else out


@st.cache_data(max_entries=64)
def ks93_kappa(data_key: str, index: int, _eps: np.ndarray, sigma_px: float,
               pad: int = 0) -> np.ndarray:
    """KS93 E mode of one sample, Gaussian-smoothed by ``sigma_px`` pixels."""
    from lensviz.inversion import gaussian_smooth, ks93

    e = _eps[index]
    return gaussian_smooth(ks93(e[..., 0], e[..., 1], pad=pad)[0], sigma_px)


# === The sidebar ===


def _data_source_ui():
    """Draw the data-source widgets; return (label, key, eps, kappa, names) or None."""
    source = st.sidebar.radio("Data source", SOURCES, key="source")
    if source == SOURCES[0]:
        seed = st.sidebar.number_input("Simulation seed", 0, 10_000, 0, 1, key="sim_seed",
                                       help="Each seed is a different set of "
                                       f"{BUILTIN_SAMPLES} simulated clusters (test seed range).")
        eps, kappa, names = builtin_set(int(seed))
        return f"simulated (seed {seed})", f"sim:{seed}", eps, kappa, names
    if source == SOURCES[1]:
        files = st.sidebar.file_uploader(
            "ε (and κ) files", type=["npy", "npz", "h5", "hdf5"], accept_multiple_files=True,
            key="upload",
            help="One .npy ε cube (3,128,128) or (N,128,128,3) — no truth then; an .npz with "
            "'epsilon' and optional 'kappa'; an .h5 written by lensviz; or a challenge pair: "
            "EPSILON/NAME.npy and KAPPA/NAME.npy.")
        if not files:
            st.sidebar.info("Upload a file to continue; using the built-in set meanwhile.")
            return None
        payload = tuple((f.name, f.getvalue()) for f in files)
        try:
            eps, kappa, names = read_upload(payload)
        except (ValueError, TypeError) as exc:
            st.sidebar.error(f"Could not use the upload: {exc}")
            return None
        digest = hashlib.sha1(b"".join(b for _, b in payload)).hexdigest()[:12]
        label = " + ".join(n for n, _ in payload)
        return f"upload: {label}", f"upload:{digest}", eps, kappa, names
    options = server_datasets()
    if not options:
        st.sidebar.info(f"No datasets under the data directory ({DATA_DIR}). Put .h5 files or "
                        "challenge folders there, or set LENSVIZ_DATA_DIR.")
        return None
    name = st.sidebar.selectbox("Dataset", options, key="server_dataset")
    try:
        eps, kappa, names = read_server_dataset(name, (DATA_DIR / name).stat().st_mtime)
    except (ValueError, TypeError, OSError) as exc:
        st.sidebar.error(f"Could not read {name}: {exc}")
        return None
    return f"server: {name}", f"server:{name}", eps, kappa, names


def _sample_ui(n: int) -> int:
    # A sample picked on another page (open_sample) is applied here, before the widget
    # exists: Streamlit forbids changing a widget's value after it is drawn in a run.
    picked = st.session_state.pop(_OPEN_SAMPLE_KEY, None)
    if picked is not None and 0 <= picked < n:
        st.session_state.sample_index = picked
    if "sample_index" not in st.session_state or st.session_state.sample_index >= n:
        st.session_state.sample_index = 0
    if st.sidebar.button("Random sample", key="random_sample", icon=":material/casino:",
                         width="stretch"):
        rng = np.random.default_rng()
        st.session_state.sample_index = int(rng.integers(n))
    return int(st.sidebar.number_input(f"Sample index (0–{n - 1})", 0, n - 1,
                                       key="sample_index"))


def _model_ui() -> tuple[str, str | None]:
    models = available_models()
    if not models:
        st.sidebar.warning("No UNet weights found in weights/: UNet views are disabled.")
        return "none", None
    names = list(models)
    if st.session_state.get("model_name") not in names:
        st.session_state.model_name = names[0]
    name = st.sidebar.selectbox("Model", names, key="model_name")
    return name, models[name]


def sidebar() -> Selection:
    """Draw the shared sidebar and remember the selection for :func:`current`."""
    st.sidebar.header("Data")
    picked = _data_source_ui()
    if picked is None:
        eps, kappa, names = builtin_set(0)
        picked = ("simulated (seed 0)", "sim:0", eps, kappa, names)
    label, key, eps, kappa, names = picked
    st.sidebar.caption(f"{label} · {len(eps)} samples" + ("" if kappa is not None
                                                          else " · no κ truth"))
    index = _sample_ui(len(eps))
    st.sidebar.header("Model")
    model_name, model_path = _model_ui()
    st.sidebar.header("Runtime")
    st.sidebar.caption(f"UNet runs on: **{device_label()}**")
    sel = Selection(label, key, eps, kappa, tuple(names), index, model_name, model_path)
    st.session_state["_selection"] = sel
    return sel


def current() -> Selection:
    """The selection made by the sidebar in this run."""
    sel = st.session_state.get("_selection")
    if sel is None:
        sel = sidebar()
    return sel


def require_truth(sel: Selection, what: str) -> None:
    """Stop the page with a clear message when the data has no κ truth."""
    if not sel.has_truth:
        st.error(f"{what} needs the true κ map, and this data has none (ε only). "
                 "Upload an EPSILON + KAPPA pair, an .npz/.h5 with a 'kappa' dataset, or use "
                 "the built-in simulated set.")
        st.stop()


_OPEN_SAMPLE_KEY = "_open_sample"  # sample index requested by open_sample for the next run


def open_sample(index: int) -> None:
    """Select sample ``index`` and switch to the Compare page (used by Evaluate).

    The sidebar's sample widget is already drawn when a page calls this, so the index
    is handed to the next run, whose sidebar applies it before drawing the widget.
    """
    st.session_state[_OPEN_SAMPLE_KEY] = int(index)
    st.switch_page("app_pages/compare.py")


@st.cache_resource
def job_manager():
    """The server's one background-job runner (fine-tuning), shared by every session.

    A :class:`lensviz.jobs.JobManager` runs one job at a time; another session that
    tries to start one gets :class:`lensviz.jobs.JobBusy`.
    """
    from lensviz.jobs import JobManager

    return JobManager()


#: Calibration maps used to choose the smoothing σ of "KS93 smoothed" (Evaluate, Learn).
CALIBRATION_MAPS = 200


@st.cache_data(show_spinner="Choosing the KS93 smoothing on calibration maps…")
def calibrated_ks93_sigma(n: int = CALIBRATION_MAPS, pad: int = 0) -> tuple[float, dict]:
    """σ (pixels) minimising KS93's mean RMSE on ``n`` calibration maps, and the table.

    See :func:`lensviz.evaluation.choose_ks93_sigma`; the calibration seeds are disjoint
    from the built-in test set, so σ is never tuned on the data being scored.
    """
    from lensviz.evaluation import calibration_set, choose_ks93_sigma

    eps, kappa = calibration_set(n)
    return choose_ks93_sigma(eps, kappa, pad=pad)


# === KS93 options and predictions, shared by the pages that show them ===

#: Default Gaussian σ of the app's KS93 maps, pixels (1.5′). On 100 simulated calibration
#: maps (lensviz.evaluation.choose_ks93_sigma) the RMSE is lowest for σ ≈ 3–4 px.
KS93_SIGMA_PX = 3.0
KS93_MAX_SIGMA_PX = 8.0
KS93_PAD_PX = 64  # zero-padding per side when the padding toggle is on (128 → 256 px FFT)


def _keep(widget_key: str, state_key: str) -> None:
    st.session_state[state_key] = st.session_state[widget_key]


def ks93_options_ui(container=None) -> tuple[float, int]:
    """KS93 smoothing σ (pixels) and zero-padding widgets; return ``(sigma_px, pad_px)``.

    The values live in ``st.session_state`` under ``ks93_sigma_px`` and ``ks93_pad``, so
    they persist when the user moves between pages (Streamlit forgets the state of a
    widget that a page does not draw); every page that calls this shows the same values.
    """
    c = st if container is None else container
    ss = st.session_state
    ss.setdefault("ks93_sigma_px", KS93_SIGMA_PX)
    ss.setdefault("ks93_pad", False)
    ss["ks93_sigma_widget"] = ss["ks93_sigma_px"]
    ss["ks93_pad_widget"] = ss["ks93_pad"]
    sigma = c.slider(
        "KS93 smoothing σ (pixels)", 0.0, KS93_MAX_SIGMA_PX, step=0.5, key="ks93_sigma_widget",
        on_change=_keep, args=("ks93_sigma_widget", "ks93_sigma_px"),
        help=f"Gaussian smoothing of the KS93 map. 1 pixel = {constants.PIXEL_ARCMIN:g}′; "
        "0 shows raw KS93, which is mostly shape noise.")
    pad = c.toggle(
        f"Zero-pad KS93 ({KS93_PAD_PX} px per side)", key="ks93_pad_widget",
        on_change=_keep, args=("ks93_pad_widget", "ks93_pad"),
        help="The FFT treats the map as periodic; zero-padding reduces the artefacts at "
        "the map edges.")
    c.caption(f"σ = {sigma:g} px = {sigma * constants.PIXEL_ARCMIN:g}′ "
              f"(default {KS93_SIGMA_PX:g} px)")
    return float(sigma), KS93_PAD_PX if pad else 0


def ks93_label(sigma_px: float, pad: int) -> str:
    """Display name of a KS93 map, e.g. ``"KS93 (σ 3 px)"``."""
    return f"KS93 (σ {sigma_px:g} px{', padded' if pad else ''})"


def predictions(sel: Selection, sigma_px: float, pad: int) -> dict[str, np.ndarray]:
    """UNet and KS93 κ of the selected sample, keyed by display name.

    The UNet is left out, with a note on the page saying why, when no weights are
    available or they fail to load.
    """
    out = {}
    if sel.model_path is None:
        st.info("No UNet weights found (looked in "
                f"{SHIPPED_WEIGHTS_DIR} and {USER_WEIGHTS_DIR}): the UNet views are missing. "
                "Train or copy a model to weights/*.keras, or fine-tune one on the "
                "Fine-tune page.")
    else:
        try:
            out["UNet"] = unet_kappa(sel)
        except (ValueError, OSError) as exc:
            st.error(f"Could not run the UNet {sel.model_name!r}: {exc}")
    out[ks93_label(sigma_px, pad)] = ks93_kappa(sel.key, sel.index, sel.eps, sigma_px, pad)
    return out


# === Wiener filter and UNet uncertainty, shared by the pages that show them ===

#: The κ power spectrum S of the Wiener filter, looked for beside the shipped weights
#: (``python -m lensviz powerspec --out weights/kappa_power.npz`` makes it).
POWER_SPECTRUM_FILE = "kappa_power.npz"
WIENER_NAME = "Wiener"
#: Choices of the UNet-uncertainty method: label → ``lensviz.uncertainty`` method.
UNCERTAINTY_METHODS = {"Monte-Carlo dropout": "mc_dropout",
                       "8 symmetries (test-time augmentation)": "tta"}
MC_PASSES = 20  # default number of Monte-Carlo-dropout passes
MC_MAX_PASSES = 50


def power_spectrum_path() -> Path | None:
    """``kappa_power.npz`` in :data:`SHIPPED_WEIGHTS_DIR`, or None when it is not there."""
    path = SHIPPED_WEIGHTS_DIR / POWER_SPECTRUM_FILE
    return path if path.is_file() else None


@st.cache_data(max_entries=4)
def power_spectrum(path: str, mtime: float):
    """The :class:`lensviz.inversion.PowerSpectrum` stored at ``path`` (per file version)."""
    from lensviz.inversion import PowerSpectrum

    return PowerSpectrum.load(path)


@st.cache_data(max_entries=64)
def wiener_predict(data_key: str, index: int, _eps: np.ndarray, spectrum_path: str,
                   mtime: float, pad: int = 0) -> np.ndarray:
    """Wiener κ, ``S/(S+N)`` on the KS93 E mode, of one sample; N from its own Δε."""
    from lensviz.evaluation import wiener_predictor

    signal = power_spectrum(spectrum_path, mtime)
    return wiener_predictor(signal, pad=pad)(_eps[index][None])[0]


def wiener_label(pad: int) -> str:
    """Display name of a Wiener map: ``"Wiener"`` or ``"Wiener (padded)"``."""
    return WIENER_NAME + (" (padded)" if pad else "")


def wiener_prediction(sel: Selection, pad: int = 0) -> dict[str, np.ndarray]:
    """``{"Wiener": κ}`` of the selected sample, or ``{}`` with a note saying why not."""
    path = power_spectrum_path()
    if path is None:
        st.caption(f"No κ power spectrum ({POWER_SPECTRUM_FILE}) in {SHIPPED_WEIGHTS_DIR}: "
                   "the Wiener filter is left out. Make it with `python -m lensviz powerspec "
                   f"--out {SHIPPED_WEIGHTS_DIR / POWER_SPECTRUM_FILE}`.")
        return {}
    try:
        kappa = wiener_predict(sel.key, sel.index, sel.eps, str(path), path.stat().st_mtime,
                               pad)
    except (ValueError, OSError) as exc:
        st.error(f"Could not run the Wiener filter: {exc}")
        return {}
    return {wiener_label(pad): kappa}


def all_predictions(sel: Selection, sigma_px: float, pad: int) -> dict[str, np.ndarray]:
    """UNet, Wiener and KS93 κ of the selected sample, in that order (see :func:`predictions`).

    Wiener is left out, with a note, when no power spectrum is available.
    """
    preds = predictions(sel, sigma_px, pad)
    ks_name = ks93_label(sigma_px, pad)
    ks = preds.pop(ks_name)
    return preds | wiener_prediction(sel, pad) | {ks_name: ks}


@st.cache_data(max_entries=16, show_spinner="Running the UNet uncertainty passes…")
def unet_uncertainty(model_path: str, mtime: float, data_key: str, index: int, method: str,
                     n_passes: int, _eps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and per-pixel σ of the UNet κ of ``_eps[index]`` (``(128, 128)`` each).

    ``method`` is ``"mc_dropout"`` (``n_passes`` passes, seed 0) or ``"tta"`` (the 8
    symmetries; ``n_passes`` is ignored). See :func:`lensviz.uncertainty.predict_uncertainty`.
    """
    from lensviz.uncertainty import predict_uncertainty

    model = load_model(model_path, mtime)
    return predict_uncertainty(model, _eps[index], method=method, n_passes=n_passes, seed=0)


def unet_uncertainty_of(sel: Selection, method: str,
                        n_passes: int = MC_PASSES) -> tuple[np.ndarray, np.ndarray]:
    """:func:`unet_uncertainty` of the selected sample (the model must exist)."""
    if sel.model_path is None:
        raise ValueError("no UNet weights are available")
    passes = int(n_passes) if method == "mc_dropout" else 0  # one cache entry for "tta"
    return unet_uncertainty(sel.model_path, os.path.getmtime(sel.model_path), sel.key,
                            sel.index, method, passes, sel.eps)
