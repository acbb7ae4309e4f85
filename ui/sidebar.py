"""The shared sidebar: data source, sample, model and KS93 settings, drawn once per run.

``app.py`` calls :func:`sidebar`; pages read the result with :func:`current`, a
:class:`Selection`. The sidebar is made of small ``*_ui()`` functions that draw a group
of widgets and return values.

The selection survives every page switch, including a programmatic one
(:func:`open_sample`, which calls ``st.switch_page``): Streamlit forgets the state of
every widget on a programmatic page switch unless the widget persists it, so every
selection widget here is keyed and drawn with ``persist_state="session"``. A file
uploader cannot persist its files; the last upload of each uploader is kept in the
session state (:func:`_kept_upload`) and used while the uploader comes back empty after
such a switch.

Data are the challenge's 128 × 128 tiles or whole fields of any size (the COSMOS field,
an uploaded field, an observed κ map). Pages that need a training tile say so
(:attr:`Selection.is_tile`); masked pixels are drawn grey (:meth:`Selection.masked`).

The selection is also the URL's query (:mod:`ui.links`): a session's first run applies
the link it was opened with (:func:`_apply_link`), and every run writes the selection
back into the address bar (:func:`_publish_link`). Every selection widget therefore
takes its initial value from the session state (:func:`_initial`), never from a
``value`` argument, so a link can set it without a Streamlit warning.

What the pages must say about the selection (a failed upload, a link value that fell
back to its default) travels in :attr:`Selection.notices`; the page header shows them.

Adding a data source: write a ``_name_ui() -> Dataset | str`` function (the dataset, or
why there is none) and add it to :data:`SOURCES` with its link name.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import streamlit as st

from lensviz import constants, cosmos, data, plots
from lensviz.data import PixelGrid
from lensviz.data.limits import MAX_PIXEL_ARCMIN, MIN_PIXEL_ARCMIN
from lensviz.depth import depth_label, effective_n_gal, ks93_sigma
from lensviz.fields import FIELD_PAD_PX, field_mask, masked
from lensviz.simulate import depth_config
from ui import cache, links
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
    "runtime_ui",
    "sidebar",
]

#: Default Gaussian σ of the app's KS93 maps, pixels (1.5′). On 100 simulated calibration
#: maps (lensviz.evaluation.choose_ks93_sigma) the RMSE is lowest for σ ≈ 3–4 px.
KS93_SIGMA_PX = 3.0
KS93_MAX_SIGMA_PX = links.MAX_SIGMA_PX
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
_KEPT = "_kept_upload"  # session-state prefix of the last upload of each uploader
_LINK_READ = "_link_read"  # set once the session's first run has applied its link
_LINK_MODEL = "_link_model"  # the model a link names, until the model list is known
_LINK_DATASET = "_link_dataset"  # the server dataset a link names, likewise
_NOTICES = "_notices"  # what this run's page must say about the selection
_PERSIST = {"persist_state": "session"}
_CUSTOM_DEPTH = "custom"  # the depth selectbox's "other depth" option
_N_GAL_DEFAULT = 50.0  # the "Other depth…" field's first value, galaxies per arcmin²


@dataclasses.dataclass(frozen=True, eq=False)
class Selection:
    """What the sidebar selected: a dataset, one sample of it, a model, KS93 settings and
    how maps are drawn."""

    source: str  # a human label, e.g. "simulated (seed 0)"
    key: str  # identifies the dataset content (and a pixel side set here), for caches
    eps: np.ndarray  # (N, ny, nx, 3) float32, read-only: tiles or whole fields
    kappa: np.ndarray | None  # (N, ny, nx) float32, read-only, or None without truth
    names: tuple[str, ...]
    index: int
    model_name: str
    model_path: str | None  # None when no weights are available
    model_mtime: float = 0.0  # the model file's modification time (cache key)
    ks93_sigma_px: float = KS93_SIGMA_PX  # Gaussian smoothing of the KS93 maps, pixels
    ks93_pad: int = 0  # zero-padding per side of the KS93 and Wiener FFTs, pixels
    depth: str | None = None  # survey-depth preset of the built-in set (None: default)
    #: Pixel side (stated by the data, or set in the sidebar) and the WCS of a FITS input.
    grid: PixelGrid = dataclasses.field(default_factory=PixelGrid)
    sigma_e: float = constants.SIGMA_E  # the σ_e that the data's Δε was computed with
    #: What the page must say about this selection, as ``(level, text)`` with level
    #: "info" or "warning": a failed upload, a link value that fell back to its default.
    notices: tuple[tuple[str, str], ...] = ()
    ks93_rule: bool = False  # the KS93 σ follows the depth rule (not a slider)
    axes_unit: str = "arcmin"  # map axes: "arcmin", "px" or "sky" (lensviz.plots.UNITS)
    north_up: bool = False  # maps turned north up, east left (where the WCS allows)

    @property
    def pixel_arcmin(self) -> float:
        """Pixel side of the data [arcmin]."""
        return self.grid.pixel_arcmin

    @property
    def header(self) -> object:
        """The WCS cards of a FITS input (astropy Header), or None."""
        return self.grid.header

    @functools.cached_property
    def sky_problem(self) -> str | None:
        """Why the maps get no RA/Dec axes and no north-up view, or None
        (:func:`lensviz.plots.sky_problem`)."""
        return plots.sky_problem(self.grid.wcs, self.shape)

    @functools.cached_property
    def axes(self) -> plots.MapAxes:
        """The axes of this sample's maps (:func:`lensviz.plots.map_axes`): the sidebar's
        unit and orientation, RA/Dec and north up only where the WCS allows (else
        arcmin, as stored)."""
        sky = self.sky_problem is None
        unit = self.axes_unit if self.axes_unit != "sky" or sky else "arcmin"
        wcs = self.grid.wcs if sky else None
        return plots.map_axes(self.shape, unit, self.pixel_arcmin, wcs, self.north_up and sky)

    def axes_for(self, shape: tuple[int, int], pixel_arcmin: float) -> plots.MapAxes:
        """Axes of other maps than the sample's (the Learn page's simulations), in the
        sidebar's unit (arcmin for RA/Dec: they have no sky)."""
        unit = "px" if self.axes_unit == "px" else "arcmin"
        return plots.map_axes(shape, unit, pixel_arcmin)

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)`` of the maps."""
        return tuple(self.eps.shape[1:3])

    @property
    def is_tile(self) -> bool:
        """Maps of the UNet's 128 × 128 training tiles (not whole fields)."""
        return self.shape == (constants.NPIX, constants.NPIX)

    @functools.cached_property
    def sample_mask(self) -> np.ndarray:
        """Empty or masked pixels of the selected sample, bool ``(ny, nx)``, read-only
        (derived once per selection: every map of a page is masked with it)."""
        mask = field_mask(self.sample_eps)
        mask.setflags(write=False)
        return mask

    def tile(self, y0: int, x0: int) -> Selection:
        """The selection of one 128 × 128 tile of the selected sample, at row ``y0`` and
        column ``x0``: for the pages that work on training tiles (Loss weights)."""
        n = constants.NPIX
        ny, nx = self.shape
        if not (0 <= y0 <= ny - n and 0 <= x0 <= nx - n):
            raise ValueError(f"a {n}-px tile at ({y0}, {x0}) does not fit in {ny} × {nx} px")
        crop = np.s_[self.index : self.index + 1, y0 : y0 + n, x0 : x0 + n]
        return dataclasses.replace(
            self,
            key=f"{self.key}#{self.index}@{y0},{x0}",
            eps=self.eps[crop],
            kappa=None if self.kappa is None else self.kappa[crop],
            names=(f"{self.sample_name} (tile y {y0}, x {x0})",),
            index=0,
            # the field's WCS does not describe the crop (another reference pixel)
            grid=dataclasses.replace(self.grid, header=None),
        )

    def masked(self, kappa: np.ndarray) -> np.ndarray:
        """A reconstruction for display: NaN (drawn grey) where the sample has no data."""
        mask = self.sample_mask
        return masked(kappa, mask) if mask.any() else kappa

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


# === State, links and notices ===


def _initial(key: str, value) -> None:
    """A selection widget's first value, set in the session state before it is drawn.

    The widgets are drawn without a ``value`` argument: a value from a link
    (:func:`_apply_link`) or from another page then never meets a default, which
    Streamlit would log as a warning.
    """
    st.session_state.setdefault(key, value)


def _notice(text: str, level: str = "warning") -> None:
    """Something the page must say about this run's selection (see Selection.notices)."""
    st.session_state.setdefault(_NOTICES, []).append((level, text))


#: Link name of each data source (ui.links.SOURCES) → its label in the sidebar.
SOURCE_LABELS = {
    "sim": "Built-in simulated set",
    "cosmos": "Real data: COSMOS",
    "upload": "Upload a file",
    "observe": "Observe your κ map",
    "server": "Server dataset",
}


def _apply_link() -> None:
    """On a session's first run, put the link's selection into the widgets' state.

    Values that cannot be used fall back to their defaults with a notice; the sample,
    the model and the server dataset are checked where the choices are known
    (:func:`sample_ui`, :func:`model_ui`, :func:`_server_ui`).
    """
    ss = st.session_state
    if ss.get(_LINK_READ):
        return
    ss[_LINK_READ] = True
    link, notices = links.parse_link(st.query_params.to_dict())
    for text in notices:
        _notice(f"This link's {text}.")
    ss.source = SOURCE_LABELS[link.source]
    if link.seed is not None:
        ss.sim_seed = link.seed
    if link.n_gal is not None:
        ss.sim_depth, ss.sim_n_gal = _CUSTOM_DEPTH, float(link.n_gal)
    elif link.depth is not None:
        ss.sim_depth = link.depth
    if link.dataset is not None:
        ss[_LINK_DATASET] = link.dataset
    if link.sample is not None:
        ss[_OPEN_SAMPLE_KEY] = link.sample
    if link.model is not None:
        ss[_LINK_MODEL] = link.model
    if link.sigma is not None:
        ss.ks93_auto, ss.ks93_sigma = False, link.sigma
    if link.pixel is not None:
        ss.pixel_arcmin = link.pixel


def _publish_link(sel: Selection, default_model: str | None) -> None:
    """Write the selection into the address bar (only when it changed)."""
    ss = st.session_state
    source = next(k for k, label in SOURCE_LABELS.items() if label == ss.source)
    sim = source == "sim"
    custom = sim and ss.sim_depth == _CUSTOM_DEPTH
    link = links.Link(
        source=source,
        seed=int(ss.sim_seed) if sim else None,
        depth=ss.sim_depth if sim and not custom else None,
        n_gal=float(ss.sim_n_gal) if custom else None,
        dataset=ss.get("server_dataset") if source == "server" else None,
        sample=sel.index if sel.n_samples > 1 else None,
        model=None
        if sel.model_path is None or sel.model_name == default_model
        else Path(sel.model_path).stem,
        sigma=None if ss.ks93_auto else float(sel.ks93_sigma_px),
        pixel=sel.pixel_arcmin if sel.grid.origin == "given" else None,
    )
    params = links.link_params(link)
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)


# === Data sources ===


def depth_ui(key: str = "sim") -> str | None:
    """Survey depth: a preset, or galaxies per arcmin²; a depth spec
    (:func:`lensviz.simulate.depth_config`), None for the default depth. ``key`` prefixes
    the widget keys (one control per data source)."""
    presets = {s.name: s for s in constants.SURVEYS.values()}
    options = [*presets, _CUSTOM_DEPTH]
    _initial(f"{key}_depth", constants.DEFAULT_SURVEY)
    _initial(f"{key}_n_gal", _N_GAL_DEFAULT)
    choice = st.sidebar.selectbox(
        "Survey depth",
        options,
        format_func=lambda name: presets[name].label if name in presets else "Other depth…",
        key=f"{key}_depth",
        **_PERSIST,
        help="Galaxies per arcmin² behind the field: the shape noise in ε and Δε. The same "
        "clusters at every depth; the shipped UNet was trained across depths.",
    )
    if choice != _CUSTOM_DEPTH:
        return None if choice == constants.DEFAULT_SURVEY else choice
    n_gal = st.sidebar.number_input(
        "Galaxies per arcmin²",
        links.MIN_N_GAL,
        links.MAX_N_GAL,
        step=10.0,
        key=f"{key}_n_gal",
        **_PERSIST,
        help="Any source density; 0.25 arcmin² pixels hold n_gal / 4 galaxies on average.",
    )
    return f"{n_gal:g}"


def _builtin_ui() -> Dataset:
    _initial("sim_seed", 0)
    seed = st.sidebar.number_input(
        "Simulation seed",
        0,
        links.MAX_SEED,
        step=1,
        key="sim_seed",
        **_PERSIST,
        help=f"Each seed is a different set of {cache.BUILTIN_SAMPLES} simulated clusters "
        "(test seed range).",
    )
    return cache.builtin_dataset(int(seed), depth=depth_ui())


def _keep(key: str, files) -> tuple[tuple[str, bytes], ...]:
    """Keep the files of uploader ``key`` (its file ids and their names and bytes)."""
    payload = tuple((f.name, f.getvalue()) for f in files)
    st.session_state[f"{_KEPT}_{key}"] = tuple(f.file_id for f in files), payload
    return payload


def _remember_upload(key: str) -> None:
    """Callback of an uploader: the user added or removed files; keep them."""
    files = st.session_state.get(key) or []
    _keep(key, files if isinstance(files, list) else [files])  # single-file uploaders: one


def _kept_upload(key: str, files) -> tuple[tuple[str, bytes], ...]:
    """(name, bytes) of the files of uploader ``key``, or of its last upload while the
    uploader is empty after a programmatic page switch."""
    ids, payload = st.session_state.get(f"{_KEPT}_{key}", ((), ()))
    if not files:
        return payload
    if ids != tuple(f.file_id for f in files):  # read the bytes once per upload
        payload = _keep(key, files)
    return payload


def _forget_uploads(*keys: str) -> None:
    """A new visit to a source with uploaders starts empty."""
    for key in keys:
        st.session_state.pop(f"{_KEPT}_{key}", None)


def _uploader(label: str, key: str, types, *, multiple: bool = False, help: str = ""):
    """A file uploader whose files survive a programmatic page switch; (name, bytes)s."""
    files = st.sidebar.file_uploader(
        label,
        type=types,
        accept_multiple_files=multiple,
        key=key,
        on_change=_remember_upload,
        args=(key,),
        help=help,
    )
    files = files if multiple else ([files] if files is not None else [])
    return _kept_upload(key, files)


_FITS_TYPES = [s.lstrip(".") for s in constants.FITS_SUFFIXES]


def _upload_ui() -> Dataset | str:
    payload = _uploader(
        "ε (and κ) files",
        "upload",
        ["npy", "npz", "h5", "hdf5", *_FITS_TYPES],
        multiple=True,
        help="Tiles of 128 × 128 or whole fields of any size from 64 px. One .npy ε cube "
        "(3, ny, nx) or (N, ny, nx, 3) — no truth then; an .npz with 'epsilon' and "
        "optional 'kappa'; an .h5 written by lensviz; a .fits field (E1, E2, SIGMA or "
        "COUNTS, optional MASK and KAPPA, as `python -m lensviz observe` writes); or a "
        "challenge pair: EPSILON/NAME.npy and KAPPA/NAME.npy (either order: the "
        "3-channel file is ε).",
    )
    if not payload:
        st.sidebar.info("Upload a file to continue; using the built-in set meanwhile.")
        return "no file is uploaded yet (sidebar, “Upload a file”)"
    try:
        dataset = cache.uploaded_dataset(payload)
    except (ValueError, TypeError) as exc:
        why = f"{exc}{upload_hint(payload)}"
        st.sidebar.error(f"Could not use the upload: {why}")
        return f"the upload failed: {why}"
    if len(payload) == 2:
        st.sidebar.caption(_pair_caption(payload))
    return dataset


def _reads(read, *args) -> bool:
    try:
        read(*args)
    except (ValueError, TypeError):
        return False
    return True


def upload_hint(files) -> str:
    """A sentence on what an upload that failed to load as ε data seems to be, or "".

    - One file that the κ-map reader takes (a 2-D ``.npy``, a single-image FITS): it is a
      κ map, which the "Observe your κ map" source turns into galaxy shapes.
    - Two files that each load as ε: a pair is one ε file and one κ file.
    """
    if len(files) == 1 and _reads(data.load_kappa_upload, *files[0]):
        return (
            f". {files[0][0]} holds one map without ε channels, a κ map: choose "
            "“Observe your κ map” in the sidebar to observe it with galaxies at a depth "
            "of your choice, or upload it together with its ε file as a pair"
        )
    if len(files) == 2 and all(_reads(data.load_uploads, [f]) for f in files):
        return (
            f". {files[0][0]} and {files[1][0]} are both ε files (three channels: ε1, ε2, "
            "Δε); a pair is one ε file (3, ny, nx) and one κ file (ny, nx) of the same "
            "sample, as in the challenge's EPSILON/ and KAPPA/ folders"
        )
    return ""


def _pair_caption(payload) -> str:
    """Which uploaded file is read as ε and which as κ."""
    eps_file, kappa_file = data.epsilon_and_kappa_files(payload)
    order = {id(f): i for i, f in enumerate(payload)}
    ordinal = ("first", "second")
    return (
        f"ε (3 channels) from the {ordinal[order[id(eps_file)]]} file, "
        f"{eps_file[0]}; κ from the {ordinal[order[id(kappa_file)]]} file, "
        f"{kappa_file[0]}."
    )


def _observe_ui() -> Dataset | str:
    """A κ map of the user's, observed with the simulator's physics at a chosen depth."""
    kappa_file = _uploader(
        "κ map (.fits or .npy)",
        "observe_kappa",
        [*_FITS_TYPES, "npy"],
        help="Any κ map of 64 px or more a side (an N-body ray-tracing map, a "
        "simulation of yours): lensviz computes its reduced shear and observes it with "
        "galaxies, as `python -m lensviz observe` does. The map is the truth.",
    )
    mask_file = _uploader(
        "Mask image (optional)",
        "observe_mask",
        [*_FITS_TYPES, "npy"],
        help="Same size as the κ map; nonzero or NaN pixels are masked (no galaxies).",
    )
    pixel_arcmin = st.sidebar.number_input(
        "Pixel side (arcmin)",
        0.05,
        10.0,
        constants.PIXEL_ARCMIN,
        0.05,
        key="observe_pixel",
        **_PERSIST,
        help="Sets how many galaxies fall in a pixel at the chosen depth; the UNet was "
        f"trained on {constants.PIXEL_ARCMIN:g}′ pixels.",
    )
    depth = depth_ui("observe")
    sigma_e = st.sidebar.number_input(
        "σ_e (shape noise per component)",
        0.05,
        0.6,
        constants.SIGMA_E,
        0.01,
        key="observe_sigma_e",
        **_PERSIST,
    )
    _initial("observe_seed", 0)
    seed = st.sidebar.number_input(
        "Galaxy seed", 0, links.MAX_SEED, step=1, key="observe_seed", **_PERSIST
    )
    if not kappa_file:
        st.sidebar.info("Upload a κ map to continue; using the built-in set meanwhile.")
        return "no κ map is uploaded yet (sidebar, “Observe your κ map”)"
    n_gal = depth_config(depth or constants.DEFAULT_SURVEY).n_gal
    try:
        return cache.observed_dataset(
            kappa_file[0],
            mask_file[0] if mask_file else None,
            n_gal,
            sigma_e,
            pixel_arcmin,
            int(seed),
        )
    except (ValueError, TypeError) as exc:
        st.sidebar.error(f"Could not observe the κ map: {exc}")
        return f"the κ map could not be observed: {exc}"


def _cosmos_ui() -> Dataset:
    st.sidebar.caption(
        "Binned HST shear of the COSMOS field (Schrabback et al. 2010; MIT licence, via "
        f"lenspack): 256 × 256 pixels of {cosmos.COSMOS_PIXEL_ARCMIN:.3g}′ with the "
        "measured RA/Dec of the grid, about "
        f"{cosmos.galaxy_density():.0f} galaxies per arcmin². Real data have no true κ: "
        "the Null tests page shows what stands above the noise."
    )
    return cache.cosmos_dataset()


def _server_ui() -> Dataset | str:
    options = cache.server_dataset_names()
    linked = st.session_state.pop(_LINK_DATASET, None)
    if not options:
        st.sidebar.info(
            f"No datasets under the data directory ({cache.DATA_DIR}). Put .h5 "
            "files or challenge folders there, or set LENSVIZ_DATA_DIR."
        )
        return "the server has no datasets"
    if linked is not None:
        if linked in options:
            st.session_state.server_dataset = linked
        else:
            _notice(
                "This link's "
                + links.unusable(
                    "dataset", linked, "is not a dataset on this server", f"{options[0]}"
                )
                + "."
            )
    name = st.sidebar.selectbox("Dataset", options, key="server_dataset", **_PERSIST)
    try:
        return cache.server_dataset(name)
    except (ValueError, TypeError, OSError) as exc:
        st.sidebar.error(f"Could not read {name}: {exc}")
        return f"{name} could not be read: {exc}"


#: Data sources offered in the sidebar: label → the function that draws its widgets and
#: returns its :class:`~ui.cache.Dataset`, or why there is none (the built-in set is
#: used then, and the page says so). Labels: :data:`SOURCE_LABELS`.
SOURCES: dict[str, Callable[[], Dataset | str]] = {
    SOURCE_LABELS["sim"]: _builtin_ui,
    SOURCE_LABELS["cosmos"]: _cosmos_ui,
    SOURCE_LABELS["upload"]: _upload_ui,
    SOURCE_LABELS["observe"]: _observe_ui,
    SOURCE_LABELS["server"]: _server_ui,
}
#: The uploaders of each source, emptied when the user leaves the source.
_UPLOADERS = {"Upload a file": ("upload",), "Observe your κ map": ("observe_kappa", "observe_mask")}


def data_source_ui() -> Dataset:
    """The data-source radio and the chosen source's widgets; the dataset to use.

    When the chosen source has no data (nothing uploaded yet, a failed upload), the
    built-in set (seed 0) is used and the page says why.
    """
    labels = list(SOURCES)
    _initial("source", labels[0])
    source = st.sidebar.radio("Data source", labels, key="source", **_PERSIST)
    for other, keys in _UPLOADERS.items():
        if other != source:
            _forget_uploads(*keys)
    dataset = SOURCES[source]()
    if isinstance(dataset, Dataset):
        return dataset
    fallback = cache.builtin_dataset(0)
    waiting = dataset.startswith("no ")
    _notice(
        f"**Showing the built-in simulated set (seed 0)**, because {dataset}.",
        "info" if waiting else "warning",
    )
    return fallback


# === Sample, model, KS93 ===


def sample_ui(dataset: Dataset) -> int:
    """The sample of ``dataset`` to show: an index widget and a Random button."""
    n = len(dataset.eps)
    ss = st.session_state
    # A sample picked on another page (open_sample) is applied here, before the widget
    # exists: Streamlit forbids changing a widget's value after it is drawn in a run.
    picked = ss.pop(_OPEN_SAMPLE_KEY, None)
    default = DEFAULT_SAMPLE if dataset.key == "sim:0" else 0
    if picked is not None and 0 <= picked < n:
        ss.sample_index = picked
    elif picked is not None:
        why = f"is not a sample of this data (0–{n - 1})" if n > 1 else "is not 0: one sample"
        _notice(f"This link's {links.unusable('sample', str(picked), why, f'sample {default}')}.")
    if "sample_index" not in ss:
        ss.sample_index = default
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


def model_ui() -> tuple[str, str | None, str | None]:
    """The model selectbox; ``(display name, path, the default model's name)``, path and
    default None without weights. A link names a model by its file's stem."""
    models, ignored = cache.model_files()
    linked = st.session_state.pop(_LINK_MODEL, None)
    for name, why in ignored.items():
        st.sidebar.warning(f"Not offered: {name}, {why}.")
    if not models:
        st.sidebar.warning("No UNet weights found in weights/: UNet views are disabled.")
        return "none", None, None
    names = list(models)
    if linked is not None:
        match = [n for n, path in models.items() if linked in (Path(path).stem, n)]
        if match:
            st.session_state.model_name = match[0]
        else:
            why = "is not a model on this server"
            _notice(f"This link's {links.unusable('model', linked, why, names[0])}.")
    if st.session_state.get("model_name") not in names:
        st.session_state.model_name = names[0]
    name = st.sidebar.selectbox("Model", names, key="model_name", **_PERSIST)
    return name, models[name], names[0]


def ks93_ui(dataset: Dataset, index: int) -> tuple[float, int, bool]:
    """KS93 smoothing σ (pixels) and zero-padding of the sample; ``(sigma_px, pad_px,
    by_rule)``.

    By default σ follows the depth rule (:func:`lensviz.depth.ks93_sigma` of the sample's
    Δε at its pixel side), the one rule of the CLI and the model cards; a toggle hands it
    to a slider.
    Tiles are zero-padded when a toggle says so; whole fields always are
    (:data:`lensviz.fields.FIELD_PAD_PX`, as the CLI pads them).
    """
    delta_e = dataset.eps[index][..., 2]
    rule = ks93_sigma(delta_e, dataset.sigma_e, dataset.pixel_arcmin)
    _initial("ks93_auto", True)
    _initial("ks93_sigma", KS93_SIGMA_PX)
    auto = st.sidebar.toggle(
        "σ from the data's depth",
        key="ks93_auto",
        **_PERSIST,
        help="The smoothing that gave the lowest RMSE on calibration maps at the noise "
        "per pixel that this sample's Δε implies (lensviz.depth.ks93_sigma): more "
        "smoothing for noisier data.",
    )
    sigma = rule
    if not auto:
        sigma = st.sidebar.slider(
            "KS93 smoothing σ (pixels)",
            0.0,
            KS93_MAX_SIGMA_PX,
            step=links.SIGMA_STEP_PX,
            key="ks93_sigma",
            **_PERSIST,
            help=f"Gaussian smoothing of the KS93 map. 1 pixel = {dataset.pixel_arcmin:g}′; "
            "0 shows raw KS93, which is mostly shape noise.",
        )
    if dataset.is_tile:
        pad = (
            KS93_PAD_PX
            if st.sidebar.toggle(
                f"Zero-pad KS93 and Wiener ({KS93_PAD_PX} px per side)",
                key="ks93_pad",
                **_PERSIST,
                help="The FFT treats the map as periodic; zero-padding reduces the "
                "artefacts at the map edges.",
            )
            else 0
        )
    else:
        pad = FIELD_PAD_PX
    n_gal = float(effective_n_gal(delta_e, dataset.sigma_e, dataset.pixel_arcmin))
    st.sidebar.caption(
        f"σ = {sigma:.3g} px = {sigma * dataset.pixel_arcmin:.3g}′"
        + (f" (depth rule; ≈ {depth_label(n_gal)})" if auto else f" (the rule says {rule:.3g} px)")
        + ("" if dataset.is_tile else f"; the whole field is zero-padded by {pad} px per side")
        + ". Used by Compare, Loss weights, Peaks, DICEE and Null tests; Evaluate and "
        "Learn smooth every map by the rule."
    )
    return float(sigma), pad, bool(auto)


def pixel_scale_ui(dataset: Dataset) -> Dataset:
    """The dataset with its pixel side: as the data state it, or, for data that do not
    (a challenge folder, an ``.npy``, files without the attribute), from a field of the
    sidebar (default :data:`lensviz.data.DEFAULT_PIXEL_ARCMIN`, 0.5′). A value set here
    enters the dataset's cache key: every map is computed again at the new scale."""
    if dataset.grid.known:
        return dataset
    _initial("pixel_arcmin", data.DEFAULT_PIXEL_ARCMIN)
    value = st.sidebar.number_input(
        "Pixel side (arcmin)",
        MIN_PIXEL_ARCMIN,
        MAX_PIXEL_ARCMIN,
        step=0.05,
        format="%.3f",
        key="pixel_arcmin",
        **_PERSIST,
        help="These data do not state their pixel scale "
        f"({dataset.grid.origin}). The UNet reads it as an input, the Wiener filter "
        "takes the κ spectrum at it, the depth rule's smoothing, the error bars and "
        f"every axis in arcmin follow it. The challenge's tiles have "
        f"{data.DEFAULT_PIXEL_ARCMIN:g}′ pixels.",
    )
    grid = dataset.grid.given(float(value), dataset.label)
    return dataclasses.replace(dataset, grid=grid, key=f"{dataset.key}|{float(value):g}′")


_AXES_CHOSEN = "_axes_chosen"  # the unit of the map axes the user chose, if any


def _remember_axes() -> None:
    st.session_state[_AXES_CHOSEN] = st.session_state.get("map_axes")


def axes_ui(grid: PixelGrid, shape: tuple[int, int]) -> tuple[str, bool]:
    """The unit of the map axes and the north-up toggle; ``(unit, north_up)``.

    RA/Dec and north up are offered where the data's WCS runs along the pixel axes
    (:func:`lensviz.plots.sky_problem`), and are then the default; otherwise arcmin. A
    unit the user chose is kept for every dataset that offers it.
    """
    problem = plots.sky_problem(grid.wcs, shape)
    options = ["arcmin", "px"] + (["sky"] if problem is None else [])
    chosen = st.session_state.get(_AXES_CHOSEN)
    st.session_state.map_axes = (
        chosen if chosen in options else ("sky" if problem is None else "arcmin")
    )
    unit = st.sidebar.radio(
        "Map axes",
        options,
        format_func=plots.UNITS.__getitem__,
        key="map_axes",
        horizontal=True,
        on_change=_remember_axes,
        help="Offsets in arcmin from the map's first corner (x along its columns, y along "
        "its rows), pixels (x = column, y = row), or right ascension and declination "
        "from the data's World Coordinate System, where they have one.",
    )
    if grid.wcs is not None and problem is not None:
        st.sidebar.caption(f"No RA/Dec axes: {problem}.")
    if problem is not None:
        return unit, False
    _initial("north_up", True)
    north_up = st.sidebar.toggle(
        "North up, east left",
        key="north_up",
        **_PERSIST,
        help="The sky as astronomers view it: north (growing Dec) up, east (growing RA) "
        "left. Without it, maps are drawn as stored: row 0 at the top, column 0 on the "
        "left. The COSMOS grid's columns run along +RA and its rows along +Dec, so this "
        "mirrors it left to right and turns it upside down.",
    )
    return unit, bool(north_up)


def sidebar() -> Selection:
    """Draw the shared sidebar and remember the selection for :func:`current`.

    Applies the link the session was opened with on its first run, and writes the
    selection into the address bar on every run (:mod:`ui.links`).
    """
    st.session_state[_NOTICES] = []
    _apply_link()
    st.sidebar.header("Data")
    dataset = pixel_scale_ui(data_source_ui())
    ny, nx = dataset.eps.shape[1:3]
    grid = dataset.grid
    st.sidebar.caption(
        f"{dataset.label} · {count(len(dataset.eps), 'sample')}"
        + ("" if dataset.is_tile else f" of {ny} × {nx} px")
        + (f" · {grid.pixel_arcmin:.3g}′ pixels" if grid.known else "")
        + (" with RA/Dec" if grid.wcs is not None else "")
        + ("" if dataset.kappa is not None else " · no κ truth")
    )
    if dataset.note:
        st.sidebar.warning(dataset.note)
    index = sample_ui(dataset)
    st.sidebar.header("Model")
    model_name, model_path, default_model = model_ui()
    st.sidebar.header("KS93")
    sigma_px, pad, by_rule = ks93_ui(dataset, index)
    st.sidebar.header("Maps")
    unit, north_up = axes_ui(grid, (ny, nx))
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
        grid,
        dataset.sigma_e,
        tuple(st.session_state.pop(_NOTICES)),
        ks93_rule=by_rule,
        axes_unit=unit,
        north_up=north_up,
    )
    st.session_state["_selection"] = sel
    _publish_link(sel, default_model)
    return sel


def runtime_ui() -> None:
    """The sidebar's last section: where the UNet runs. Drawn by the frame after the page
    (it loads TensorFlow, which the page may not have needed)."""
    st.sidebar.header("Runtime")
    st.sidebar.caption(f"UNet runs on: **{cache.device_label()}**")


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
            f"{what} needs the true κ map, and this data has none (real data, or ε only). "
            'Use the built-in simulated set, observe a κ map of yours ("Observe your κ '
            'map"), or upload an EPSILON + KAPPA pair or an .npz/.h5/.fits with κ. '
            "For real data, the Null tests page tells signal from noise."
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
