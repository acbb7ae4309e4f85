"""The shared sidebar: data source, sample, model and KS93 settings, drawn once per run.

``app.py`` calls :func:`sidebar`; pages read the result with :func:`current`, a
:class:`Selection`. The sidebar is made of small ``*_ui()`` functions that draw a group
of widgets and return values.

The selection survives every page switch, including a programmatic one
(:func:`open_sample`, which calls ``st.switch_page``): Streamlit forgets the state of
every widget on a programmatic page switch unless the widget persists it, so every
selection widget here is keyed and drawn with ``persist_state="session"``. The file
uploader cannot persist its files; the last upload is kept under a session-state key
of its own (:data:`_UPLOAD_KEY`) and used while the uploader comes back empty after
such a switch.

Adding a data source: write a ``_name_ui() -> Dataset | None`` function and add it to
:data:`SOURCES`. A survey-depth control for the built-in set goes into
:func:`_builtin_ui` and reaches the pages as :attr:`Selection.depth`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

import numpy as np
import streamlit as st

from lensviz import constants
from lensviz.depth import depth_label, effective_n_gal, ks93_sigma
from ui import cache
from ui.cache import Dataset
from ui.text import count

__all__ = [
    "DEFAULT_SAMPLE",
    "KS93_MAX_SIGMA_PX",
    "KS93_PAD_PX",
    "KS93_SIGMA_PX",
    "SOURCES",
    "Selection",
    "current",
    "open_sample",
    "require_truth",
    "sidebar",
]

#: Default Gaussian σ of the app's KS93 maps, pixels (1.5′). On 100 simulated calibration
#: maps (lensviz.evaluation.choose_ks93_sigma) the RMSE is lowest for σ ≈ 3–4 px.
KS93_SIGMA_PX = 3.0
KS93_MAX_SIGMA_PX = 8.0
KS93_PAD_PX = 64  # zero-padding per side when the padding toggle is on (128 → 256 px FFT)

#: The sample shown first on the built-in set (seed 0): the one whose UNet-minus-KS93
#: differences in WMAPE, DICEE and DPEAKS are together closest to their medians over the
#: 24 samples (each distance divided by the median absolute deviation), with the shipped
#: ``lite`` UNet and KS93 smoothed by the depth rule (the app's defaults). Chosen by
#: ``python -m ui.default_sample``, which prints the table (sample 9: UNet − KS93 =
#: −0.98 WMAPE, −0.005 DICEE, −26 px DPEAKS; medians −0.90, −0.007, −30.5 px). Rerun it
#: when the shipped model changes.
DEFAULT_SAMPLE = 9

_OPEN_SAMPLE_KEY = "_open_sample"  # sample index requested by open_sample for the next run
_UPLOAD_KEY = "_upload_files"  # ((name, bytes), ...) of the last upload, see the docstring
_UPLOAD_IDS_KEY = "_upload_file_ids"  # the uploader's file ids of that upload
_PERSIST = {"persist_state": "session"}
_CUSTOM_DEPTH = "custom"  # the depth selectbox's "other depth" option


@dataclasses.dataclass(frozen=True, eq=False)
class Selection:
    """What the sidebar selected: a dataset, one sample of it, a model, KS93 settings."""

    source: str  # a human label, e.g. "simulated (seed 0)"
    key: str  # identifies the dataset content, for caches
    eps: np.ndarray  # (N, 128, 128, 3) float32, read-only
    kappa: np.ndarray | None  # (N, 128, 128) float32, read-only, or None without truth
    names: tuple[str, ...]
    index: int
    model_name: str
    model_path: str | None  # None when no weights are available
    model_mtime: float = 0.0  # the model file's modification time (cache key)
    ks93_sigma_px: float = KS93_SIGMA_PX  # Gaussian smoothing of the KS93 maps, pixels
    ks93_pad: int = 0  # zero-padding per side of the KS93 and Wiener FFTs, pixels
    depth: str | None = None  # survey-depth preset of the built-in set (None: default)

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

    @property
    def n_samples(self) -> int:
        return len(self.eps)


# === Data sources ===


def depth_ui() -> str | None:
    """Survey depth of the built-in set: a preset, or galaxies per arcmin²; a depth spec."""
    presets = {s.name: s for s in constants.SURVEYS.values()}
    options = [*presets, _CUSTOM_DEPTH]
    choice = st.sidebar.selectbox(
        "Survey depth",
        options,
        index=options.index(constants.DEFAULT_SURVEY),
        format_func=lambda name: presets[name].label if name in presets else "Other depth…",
        key="sim_depth",
        **_PERSIST,
        help="Galaxies per arcmin² behind the field: the shape noise in ε and Δε. The same "
        "clusters at every depth; the shipped UNet was trained across depths.",
    )
    if choice != _CUSTOM_DEPTH:
        return None if choice == constants.DEFAULT_SURVEY else choice
    n_gal = st.sidebar.number_input(
        "Galaxies per arcmin²",
        1.0,
        10_000.0,
        50.0,
        10.0,
        key="sim_n_gal",
        **_PERSIST,
        help="Any source density; 0.25 arcmin² pixels hold n_gal / 4 galaxies on average.",
    )
    return f"{n_gal:g}"


def _builtin_ui() -> Dataset:
    seed = st.sidebar.number_input(
        "Simulation seed",
        0,
        10_000,
        0,
        1,
        key="sim_seed",
        **_PERSIST,
        help=f"Each seed is a different set of {cache.BUILTIN_SAMPLES} simulated clusters "
        "(test seed range).",
    )
    return cache.builtin_dataset(int(seed), depth=depth_ui())


def _remember_upload() -> None:
    """Callback of the uploader: the user added or removed files."""
    files = st.session_state.get("upload") or []
    st.session_state[_UPLOAD_KEY] = tuple((f.name, f.getvalue()) for f in files)
    st.session_state[_UPLOAD_IDS_KEY] = tuple(f.file_id for f in files)


def _upload_payload(files) -> tuple[tuple[str, bytes], ...]:
    """(name, bytes) of the uploaded files, or of the kept upload when the uploader is
    empty after a programmatic page switch."""
    ss = st.session_state
    if not files:
        return ss.get(_UPLOAD_KEY, ())
    ids = tuple(f.file_id for f in files)
    if ss.get(_UPLOAD_IDS_KEY) != ids:  # read the bytes once per upload
        ss[_UPLOAD_KEY] = tuple((f.name, f.getvalue()) for f in files)
        ss[_UPLOAD_IDS_KEY] = ids
    return ss[_UPLOAD_KEY]


def _upload_ui() -> Dataset | None:
    files = st.sidebar.file_uploader(
        "ε (and κ) files",
        type=["npy", "npz", "h5", "hdf5"],
        accept_multiple_files=True,
        key="upload",
        on_change=_remember_upload,
        help="One .npy ε cube (3,128,128) or (N,128,128,3) — no truth then; an .npz with "
        "'epsilon' and optional 'kappa'; an .h5 written by lensviz; or a challenge pair: "
        "EPSILON/NAME.npy and KAPPA/NAME.npy (either order: the 3-channel file is ε).",
    )
    payload = _upload_payload(files)
    if not payload:
        st.sidebar.info("Upload a file to continue; using the built-in set meanwhile.")
        return None
    try:
        dataset = cache.uploaded_dataset(payload)
    except (ValueError, TypeError) as exc:
        st.sidebar.error(f"Could not use the upload: {exc}")
        return None
    if len(payload) == 2:
        st.sidebar.caption(_pair_caption(payload))
    return dataset


def _pair_caption(payload) -> str:
    """Which uploaded file is read as ε and which as κ."""
    eps_file, kappa_file = cache.epsilon_and_kappa_files(payload)
    order = {id(f): i for i, f in enumerate(payload)}
    ordinal = ("first", "second")
    return (
        f"ε (3 channels) from the {ordinal[order[id(eps_file)]]} file, "
        f"{eps_file[0]}; κ from the {ordinal[order[id(kappa_file)]]} file, "
        f"{kappa_file[0]}."
    )


def _server_ui() -> Dataset | None:
    options = cache.server_dataset_names()
    if not options:
        st.sidebar.info(
            f"No datasets under the data directory ({cache.DATA_DIR}). Put .h5 "
            "files or challenge folders there, or set LENSVIZ_DATA_DIR."
        )
        return None
    name = st.sidebar.selectbox("Dataset", options, key="server_dataset", **_PERSIST)
    try:
        return cache.server_dataset(name)
    except (ValueError, TypeError, OSError) as exc:
        st.sidebar.error(f"Could not read {name}: {exc}")
        return None


#: Data sources offered in the sidebar: label → the function that draws its widgets and
#: returns its :class:`~ui.cache.Dataset` (None: not usable, the built-in set is used).
SOURCES: dict[str, Callable[[], Dataset | None]] = {
    "Built-in simulated set": _builtin_ui,
    "Upload a file": _upload_ui,
    "Server dataset": _server_ui,
}


def data_source_ui() -> Dataset:
    """The data-source radio and the chosen source's widgets; the dataset to use."""
    labels = list(SOURCES)
    source = st.sidebar.radio("Data source", labels, key="source", **_PERSIST)
    if source != "Upload a file":  # a new visit to Upload starts empty
        st.session_state.pop(_UPLOAD_KEY, None)
        st.session_state.pop(_UPLOAD_IDS_KEY, None)
    dataset = SOURCES[source]()
    return dataset if dataset is not None else cache.builtin_dataset(0)


# === Sample, model, KS93 ===


def sample_ui(dataset: Dataset) -> int:
    """The sample of ``dataset`` to show: an index widget and a Random button."""
    n = len(dataset.eps)
    ss = st.session_state
    # A sample picked on another page (open_sample) is applied here, before the widget
    # exists: Streamlit forbids changing a widget's value after it is drawn in a run.
    picked = ss.pop(_OPEN_SAMPLE_KEY, None)
    if picked is not None and 0 <= picked < n:
        ss.sample_index = picked
    if "sample_index" not in ss:
        ss.sample_index = DEFAULT_SAMPLE if dataset.key == "sim:0" else 0
    if ss.sample_index >= n:
        ss.sample_index = 0
    if n == 1:
        st.sidebar.caption(f"One sample: **{dataset.names[0]}**")
        return 0
    if st.sidebar.button(
        "Random sample", key="random_sample", icon=":material/casino:", width="stretch"
    ):
        ss.sample_index = int(np.random.default_rng().integers(n))
    return int(
        st.sidebar.number_input(
            f"Sample index (0–{n - 1})", 0, n - 1, key="sample_index", **_PERSIST
        )
    )


def model_ui() -> tuple[str, str | None]:
    """The model selectbox; ``(display name, path)``, path None without weights."""
    models, ignored = cache.model_files()
    for name, why in ignored.items():
        st.sidebar.warning(f"Not offered: {name}, {why}.")
    if not models:
        st.sidebar.warning("No UNet weights found in weights/: UNet views are disabled.")
        return "none", None
    names = list(models)
    if st.session_state.get("model_name") not in names:
        st.session_state.model_name = names[0]
    name = st.sidebar.selectbox("Model", names, key="model_name", **_PERSIST)
    return name, models[name]


def ks93_ui(delta_e: np.ndarray) -> tuple[float, int]:
    """KS93 smoothing σ (pixels) and zero-padding; ``(sigma_px, pad_px)``.

    By default σ follows the depth rule (:func:`lensviz.depth.ks93_sigma` of the sample's
    Δε), the one rule of the CLI and the model cards; a toggle hands it to a slider.
    """
    rule = ks93_sigma(delta_e)
    auto = st.sidebar.toggle(
        "σ from the data's depth",
        value=True,
        key="ks93_auto",
        **_PERSIST,
        help="The smoothing that gave the lowest RMSE on calibration maps at the depth that "
        "this sample's Δε implies (lensviz.depth.ks93_sigma): more smoothing for noisier "
        "data.",
    )
    sigma = rule
    if not auto:
        sigma = st.sidebar.slider(
            "KS93 smoothing σ (pixels)",
            0.0,
            KS93_MAX_SIGMA_PX,
            KS93_SIGMA_PX,
            step=0.25,
            key="ks93_sigma",
            **_PERSIST,
            help=f"Gaussian smoothing of the KS93 map. 1 pixel = {constants.PIXEL_ARCMIN:g}′; "
            "0 shows raw KS93, which is mostly shape noise.",
        )
    pad = st.sidebar.toggle(
        f"Zero-pad KS93 and Wiener ({KS93_PAD_PX} px per side)",
        key="ks93_pad",
        **_PERSIST,
        help="The FFT treats the map as periodic; zero-padding reduces the "
        "artefacts at the map edges.",
    )
    st.sidebar.caption(
        f"σ = {sigma:.3g} px = {sigma * constants.PIXEL_ARCMIN:.3g}′"
        + (
            f" (depth rule; ≈ {depth_label(float(effective_n_gal(delta_e)))})"
            if auto
            else f" (the rule says {rule:.3g} px)"
        )
        + ". Used by Compare, Loss weights, Peaks and DICEE; Evaluate and Learn smooth "
        "every map by the rule."
    )
    return float(sigma), KS93_PAD_PX if pad else 0


def sidebar() -> Selection:
    """Draw the shared sidebar and remember the selection for :func:`current`."""
    st.sidebar.header("Data")
    dataset = data_source_ui()
    st.sidebar.caption(
        f"{dataset.label} · {count(len(dataset.eps), 'sample')}"
        + ("" if dataset.kappa is not None else " · no κ truth")
    )
    index = sample_ui(dataset)
    st.sidebar.header("Model")
    model_name, model_path = model_ui()
    st.sidebar.header("KS93")
    sigma_px, pad = ks93_ui(dataset.eps[index][..., 2])
    st.sidebar.header("Runtime")
    st.sidebar.caption(f"UNet runs on: **{cache.device_label()}**")
    sel = Selection(
        dataset.label,
        dataset.key,
        dataset.eps,
        dataset.kappa,
        tuple(dataset.names),
        index,
        model_name,
        model_path,
        os.path.getmtime(model_path) if model_path else 0.0,
        sigma_px,
        pad,
        dataset.depth,
    )
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
        st.error(
            f"{what} needs the true κ map, and this data has none (ε only). "
            "Upload an EPSILON + KAPPA pair, an .npz/.h5 with a 'kappa' dataset, or use "
            "the built-in simulated set."
        )
        st.stop()


def open_sample(index: int) -> None:
    """Select sample ``index`` and switch to the Compare page (used by Evaluate).

    The sidebar's sample widget is already drawn when a page calls this, so the index
    is handed to the next run, whose sidebar applies it before drawing the widget. The
    rest of the selection persists (see the module docstring).
    """
    st.session_state[_OPEN_SAMPLE_KEY] = int(index)
    st.switch_page("ui/pages/compare.py")
