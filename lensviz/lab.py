"""The loss lab (issue 19): what each training loss did, read from ``weights/lab``.

The lab (``python -m benchmarks.loss_lab``, configured by ``benchmarks/loss_lab.toml``)
trains the lite UNet once per loss from one warm start, fine-tunes the MultiFocal model
toward each challenge metric, scores every model beside KS93 and the Wiener filter on
held-out simulations, and ships ``weights/lab/NAME.keras`` (float16 weights) with
``weights/lab/lab.json``. This module reads that file and holds what the app and the
docs compute from it; it needs numpy and h5py only (no TensorFlow).

``lab.json``
    ``variants``: one record per model (name, file, kind ``train`` or ``finetune``, loss,
    MultiFocal coefficients, fine-tune metric, start, steps, seed, note);
    ``scores``: per depth spec (``"10"``, ``"30"``, ``"100"``, ``"inf"``), the summary of
    :func:`lensviz.evaluation.summarize` (``{method: {metric: {mean, sem_boot, ...}}}``)
    of every variant and baseline on the same maps, and the paired differences;
    ``repeats``: the second seed of the best variants; ``moonshot``; ``labels``.

Functions
    :func:`half_precision_copy` writes a model file with float16 weights (Keras casts
    them back to float32 on loading). :func:`pareto_front` marks the non-dominated
    points of two lower-is-better scores; :func:`coefficient_shares` and
    :func:`closest_variant` match loss-weight settings to the lab's variants.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from lensviz import constants
from lensviz._atomic import atomic_path
from lensviz.data.archive import KERAS_MEMBERS, WEIGHTS_MEMBER, open_keras_weights
from lensviz.data.errors import DataError, LimitError
from lensviz.evaluation import summarize
from lensviz.loss_weights import check_coeffs
from lensviz.metrics import score
from lensviz.simulate import depth_config, simulate_batch

__all__ = [
    "LAB_DIR",
    "RESULTS_FILE",
    "MAX_RESULTS_BYTES",
    "LOWER_IS_BETTER",
    "LabVariant",
    "LabResults",
    "load_lab",
    "half_precision_copy",
    "held_out_maps",
    "score_summary",
    "pareto_front",
    "change",
    "findings",
    "coefficient_shares",
    "closest_variant",
]

#: The lab's folder: its models, ``lab.json`` and ``README.md``.
LAB_DIR = constants.WEIGHTS_DIR / "lab"
#: The results file in :data:`LAB_DIR`.
RESULTS_FILE = "lab.json"
#: The most ``lab.json`` may hold [bytes] (the lab writes about 0.2 MB).
MAX_RESULTS_BYTES = 8 * 2**20
#: Metrics where lower is better (all of lensviz.metrics but r).
LOWER_IS_BETTER = frozenset({"rmse", "wmape", "dicee", "dpeaks"})

_KINDS = ("train", "finetune")
#: The baselines of lab.json and their group in the Pareto figure.
_BASELINE_GROUPS = {
    "shipped": "shipped",
    "wiener": "baseline",
    "ks93_best": "baseline",
    "ks93_rule": "baseline",
}


# === Variants and results ===


@dataclasses.dataclass(frozen=True)
class LabVariant:
    """One model of the lab.

    Attributes
    ----------
    name : str
        Its name; the model is ``NAME.keras`` in the lab folder.
    kind : str
        ``"train"`` (a training run from the start) or ``"finetune"`` (a Combined
        fine-tune of another variant).
    loss : str
        ``mse``, ``focal``, ``multifocal`` or ``combined``.
    coeffs : dict or None
        The MultiFocal coefficients of the loss (all five), None for ``mse``.
    metric : str or None
        The metric a fine-tune aims at (``wmape``, ``dicee``, ``dpeaks``).
    init : str
        What the run started from: ``"warm"`` (the lab's warm start), ``"scratch"``, or
        the name of the variant a fine-tune started from.
    steps : int
        Optimiser steps of this run (a fine-tune: its own steps only).
    seed : int
    note : str
        One line on what it is.
    file : str or None
        The model file's name in the lab folder, when shipped.
    group : str
        Its group in the Pareto figure (:data:`lensviz.plots.lab.LAB_GROUPS`).
    """

    name: str
    kind: str
    loss: str
    coeffs: Mapping[str, float] | None
    metric: str | None
    init: str
    steps: int
    seed: int
    note: str
    file: str | None
    group: str = "multifocal"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = RESULTS_FILE) -> LabVariant:
        """A variant from its ``lab.json`` record; :class:`DataError` naming the field."""
        try:
            name, kind, loss = str(d["name"]), str(d["kind"]), str(d["loss"])
            coeffs = d.get("coeffs")
            coeffs = None if coeffs is None else check_coeffs(dict(coeffs))
            metric = d.get("metric")
            steps, seed = int(d["steps"]), int(d["seed"])
            file = d.get("file")
            variant = cls(
                name=name,
                kind=kind,
                loss=loss,
                coeffs=coeffs,
                metric=None if metric is None else str(metric),
                init=str(d["init"]),
                steps=steps,
                seed=seed,
                note=str(d.get("note", "")),
                file=None if file is None else str(file),
                group=str(d.get("group", "multifocal")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{source}: a variant record is malformed ({exc})") from None
        if kind not in _KINDS:
            raise DataError(f"{source}: variant {name!r} has kind {kind!r}; expected {_KINDS}")
        if file is not None and (Path(file).name != file or not file.endswith(".keras")):
            raise DataError(
                f"{source}: variant {name!r} names the file {file!r}; expected NAME.keras"
            )
        return variant

    def shares(self) -> np.ndarray:
        """The loss's weight shares ``a_i / Σ a`` (:func:`coefficient_shares`); zeros for MSE."""
        return coefficient_shares(self.coeffs)


@dataclasses.dataclass(frozen=True)
class LabResults:
    """The contents of ``lab.json``: variants and their scores on held-out simulations.

    Attributes
    ----------
    variants : tuple of LabVariant
    scores : dict
        ``{depth spec: {"n_gal", "label", "summary": {method: {metric: {"mean",
        "sem_boot", ...}}}, ...}}``; methods are the variants' names and the baselines'
        (``ks93_rule``, ``ks93_best``, ``wiener``, ``shipped``).
    labels : dict
        Display name of every method.
    raw : dict
        The whole file, for the fields this class does not wrap (test set, budget,
        repeats, moonshot).
    path : Path
    """

    variants: tuple[LabVariant, ...]
    scores: Mapping[str, Mapping[str, Any]]
    labels: Mapping[str, str]
    raw: Mapping[str, Any]
    path: Path

    @property
    def depths(self) -> tuple[str, ...]:
        return tuple(self.scores)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variants)

    def variant(self, name: str) -> LabVariant:
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(f"{self.path.name}: no variant {name!r}; the lab has {list(self.names)}")

    def model_path(self, name: str) -> Path | None:
        """The model file of a variant, when it is shipped and present."""
        v = self.variant(name)
        if v.file is None:
            return None
        path = self.path.parent / v.file
        return path if path.is_file() else None

    def point(self, method: str, depth: str, metric: str) -> tuple[float, float]:
        """Mean and bootstrap standard error of ``metric`` for ``method`` at ``depth``."""
        try:
            s = self.scores[depth]["summary"][method][metric]
        except KeyError:
            raise KeyError(
                f"{self.path.name}: no {metric!r} of {method!r} at depth {depth!r}"
            ) from None
        return float(s["mean"]), float(s["sem_boot"])

    def label(self, method: str) -> str:
        return str(self.labels.get(method, method))

    def difference(self, method: str, reference: str, depth: str, metric: str):
        """Paired mean difference ``method − reference`` of ``metric`` at ``depth`` and its
        bootstrap standard error (over the same maps); the references are the lab's
        ``reference`` variant (plain MSE) and the fine-tunes' start (MultiFocal)."""
        try:
            d = self.scores[depth]["vs"][reference][method][metric]
        except KeyError:
            raise KeyError(
                f"{self.path.name}: no {metric!r} difference {method!r} − {reference!r} "
                f"at depth {depth!r}"
            ) from None
        return float(d["mean"]), float(d["sem_boot"])

    @property
    def test_maps(self) -> tuple[int, int]:
        """``(n_maps, first seed)`` of the held-out maps of every depth."""
        t = self.raw.get("test_set", {})
        try:
            return int(t["n_maps"]), int(t["seeds"][0])
        except (KeyError, TypeError, ValueError, IndexError):
            raise DataError(f"{self.path.name}: 'test_set' has no n_maps and seeds") from None

    def points(self, depth: str) -> list[dict]:
        """The Pareto points of one depth (:func:`lensviz.plots.lab.pareto_figure`): every
        variant, the second-seed repeats and the baselines, each metric's mean and error."""
        summary = self.scores[depth]["summary"]
        groups = {v.name: v.group for v in self.variants}
        groups.update({n: "repeat" for n in self.raw.get("repeats", {}).get("methods", [])})
        groups.update({n: _BASELINE_GROUPS[n] for n in _BASELINE_GROUPS if n in summary})
        return [
            {
                "name": name,
                "label": self.label(name),
                "group": group,
                **{m: (float(s["mean"]), float(s["sem_boot"])) for m, s in summary[name].items()},
            }
            for name, group in groups.items()
        ]


def load_lab(path: str | os.PathLike | None = None) -> LabResults:
    """Read ``lab.json`` (default: :data:`LAB_DIR`), checked as any input file.

    Raises
    ------
    FileNotFoundError
        When the file is absent (the lab has not been run).
    DataError, LimitError
        Naming the file: too large, not JSON, or not the lab's layout.
    """
    path = Path(LAB_DIR / RESULTS_FILE if path is None else path)
    source = path.name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no loss-lab results (run python -m benchmarks.loss_lab)")
    size = path.stat().st_size
    if size > MAX_RESULTS_BYTES:
        raise LimitError(f"{source}: {size} bytes; the lab's results are under {MAX_RESULTS_BYTES}")
    try:
        raw = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{source}: not a JSON file ({exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("variants"), list):
        raise DataError(f"{source}: expected an object with a 'variants' list")
    variants = tuple(LabVariant.from_dict(d, source) for d in raw["variants"])
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise DataError(f"{source}: a variant name appears twice in {names}")
    scores = raw.get("scores")
    if not isinstance(scores, dict) or not scores:
        raise DataError(f"{source}: expected 'scores' by depth")
    for depth, entry in scores.items():
        summary = entry.get("summary") if isinstance(entry, dict) else None
        if not isinstance(summary, dict):
            raise DataError(f"{source}: depth {depth!r} has no 'summary'")
        missing = [n for n in names if n not in summary]
        if missing:
            raise DataError(f"{source}: depth {depth!r} has no scores for {missing}")
        for method, metrics in summary.items():
            for metric, s in metrics.items():
                if not (isinstance(s, dict) and _is_number(s.get("mean"))):
                    raise DataError(f"{source}: {method} {metric} at {depth!r} has no mean")
    labels = raw.get("labels", {})
    if not isinstance(labels, dict):
        raise DataError(f"{source}: 'labels' must be an object")
    return LabResults(variants, scores, {str(k): str(v) for k, v in labels.items()}, raw, path)


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


# === Model files ===


def half_precision_copy(source: str | os.PathLike, target: str | os.PathLike) -> int:
    """Copy a ``.keras`` model with its float32 weights stored as float16; returns bytes.

    The archive is checked first (:func:`lensviz.data.archive.open_keras_weights`); the
    copy holds the same three members, the weights member deflated. Keras casts the
    weights back to float32 when it loads the copy, so the model computes in float32 on
    weights rounded to 11 significant bits (relative error ≤ 2⁻¹¹). Written atomically.

    Raises
    ------
    DataError
        If ``source`` is refused, or holds weights beyond float16's range (±65504).
    """
    source, target = Path(source), Path(target)
    if target.suffix != ".keras":
        raise ValueError(f"model files end in .keras, got {target.name!r}")
    buf = io.BytesIO()
    with open_keras_weights(source) as f, h5py.File(buf, "w") as g:
        for key, value in f.attrs.items():
            g.attrs[key] = value

        def copy(name, obj):
            if isinstance(obj, h5py.Dataset):
                data = obj[()]
                if data.dtype == np.float32:
                    if np.abs(data).max(initial=0.0) > np.finfo(np.float16).max:
                        raise DataError(f"{source.name} [{name}]: weights beyond float16's range")
                    data = data.astype(np.float16)
                out = g.create_dataset(name, data=data)
            else:
                out = g.require_group(name)
            for key, value in obj.attrs.items():
                out.attrs[key] = value

        f.visititems(copy)
    with zipfile.ZipFile(source) as archive:  # checked by open_keras_weights above
        members = {n: archive.read(n) for n in archive.namelist() if n != WEIGHTS_MEMBER}
    members[WEIGHTS_MEMBER] = buf.getvalue()
    with atomic_path(target, suffix=".keras") as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for name in KERAS_MEMBERS:
                if name in members:
                    z.writestr(name, members[name])
    return target.stat().st_size


# === Held-out maps ===


def held_out_maps(n_maps: int, seed: int, depth: str) -> tuple[np.ndarray, np.ndarray]:
    """The lab's held-out maps of one depth: ``simulate_batch(n_maps, seed, depth_config(depth))``.

    The same fields at every depth (only the galaxies change); ε ``(n, 128, 128, 3)`` and
    κ ``(n, 128, 128)`` float32.
    """
    return simulate_batch(int(n_maps), int(seed), depth_config(str(depth)))


def score_summary(
    kappa: np.ndarray, pred: np.ndarray, n_boot: int = 1000
) -> dict[str, tuple[float, float]]:
    """Mean and bootstrap standard error of every metric of predictions ``(N, ny, nx)``."""
    s = summarize({"m": score(kappa, pred)}, n_boot=n_boot, seed=0)["m"]
    return {m: (v["mean"], v["sem_boot"]) for m, v in s.items()}


# === Pareto fronts and loss settings ===


def pareto_front(x: Sequence[float], y: Sequence[float]) -> np.ndarray:
    """Which points no other point beats on both scores (lower is better on each).

    A point is dominated when another is at most as high on both scores and lower on
    one. Non-finite points are never on the front.

    Returns
    -------
    ndarray of bool, shape (N,)

    Examples
    --------
    >>> pareto_front([1, 2, 3, 2], [3, 1, 0, 2]).tolist()
    [True, True, True, False]
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-d of one length, got {x.shape} and {y.shape}")
    ok = np.isfinite(x) & np.isfinite(y)
    front = ok.copy()
    for i in np.flatnonzero(ok):
        others = ok & (x <= x[i]) & (y <= y[i]) & ((x < x[i]) | (y < y[i]))
        front[i] = not others.any()
    return front


def coefficient_shares(coeffs: Mapping[str, float] | None) -> np.ndarray:
    """The weight shares ``a_i / Σ a`` of MultiFocal coefficients, in
    :data:`lensviz.constants.MULTIFOCAL_COMPONENTS` order; zeros for None (plain MSE).

    The MultiFocal weight ``w = Σ a_i w_i / Σ a_i`` depends on the shares only, so two
    settings with the same shares train the same loss.

    Examples
    --------
    >>> coefficient_shares({"focal": 1, "local": 0, "peaks": 0, "structure": 0, "edges": 1})
    array([0.5, 0. , 0. , 0. , 0.5])
    """
    if coeffs is None:
        return np.zeros(len(constants.MULTIFOCAL_COMPONENTS))
    c = check_coeffs(coeffs)
    a = np.array([c[k] for k in constants.MULTIFOCAL_COMPONENTS], np.float64)
    return a / a.sum()


def closest_variant(
    coeffs: Mapping[str, float] | None, variants: Sequence[LabVariant]
) -> tuple[str, float]:
    """The lab's training variant whose loss is closest to given MultiFocal coefficients.

    Distance: Euclidean between the weight shares (:func:`coefficient_shares`; plain MSE
    is the zero vector). Only training variants from the warm start compete (fine-tunes
    and controls share a training variant's weights' loss); ties go to the first listed.

    Returns
    -------
    name : str
    distance : float
        0 for the same shares; at most √2.

    Raises
    ------
    ValueError
        If no variant competes, or the coefficients are invalid.
    """
    target = coefficient_shares(coeffs)
    best, best_d = None, math.inf
    for v in variants:
        if v.kind != "train" or v.init != "warm":
            continue
        d = float(np.linalg.norm(v.shares() - target))
        if d < best_d - 1e-12:
            best, best_d = v.name, d
    if best is None:
        raise ValueError("no training variant from the warm start to compare with")
    return best, best_d


# === Findings in words ===

_NAMES = {"rmse": "RMSE", "r": "r", "wmape": "WMAPE", "dicee": "DICEE", "dpeaks": "DPEAKS"}


def _num(x: float, se: float) -> str:
    digits = 4 if not (math.isfinite(se) and se > 0) else max(0, 1 - math.floor(math.log10(se)))
    return f"{x:.{digits}f}"


def change(mean: float, se: float, metric: str) -> str:
    """A paired difference in words: better or worse when it exceeds twice its standard
    error, "no clear change" otherwise; always with the number and its error.

    Examples
    --------
    >>> change(-0.012, 0.003, "dicee")
    'DICEE −0.0120 ± 0.0030 (better)'
    >>> change(0.4, 1.1, "dpeaks")
    'DPEAKS +0.4 ± 1.1 (no clear change)'
    """
    if abs(mean) <= 2 * se or not math.isfinite(mean):
        verdict = "no clear change"
    else:
        better = mean > 0 if metric == "r" else mean < 0
        verdict = "better" if better else "worse"
    sign = "+" if mean >= 0 else "−"
    return f"{_NAMES.get(metric, metric)} {sign}{_num(abs(mean), se)} ± {_num(se, se)} ({verdict})"


def _changes(lab: LabResults, name: str, ref: str, depth: str, metrics) -> str:
    return ", ".join(change(*lab.difference(name, ref, depth, m), m) for m in metrics)


def findings(lab: LabResults, depth: str | None = None) -> list[str]:
    """What the lab showed, in sentences, every number with its standard error.

    Differences are paired (the same maps, :meth:`LabResults.difference`) and called
    better or worse only beyond twice their standard error. ``depth`` defaults to the
    moonshot's.

    Returns
    -------
    list of str
        Markdown sentences: MultiFocal against plain MSE at every depth, each weight
        removed, each fine-tune, the from-scratch control, the second seed and the
        moonshot.
    """
    raw = lab.raw
    moon = raw.get("moonshot", {})
    depth = str(depth or moon.get("depth") or lab.depths[0])
    ref = str(raw.get("reference", "mse"))
    start = str(raw.get("finetune", {}).get("start", "multifocal"))
    main = ("dicee", "dpeaks", "rmse")
    out = []
    per_depth = "; ".join(
        f"{lab.scores[d]['label']}: {_changes(lab, start, ref, d, main)}" for d in lab.depths
    )
    out.append(
        f"**{lab.label(start)} against {lab.label(ref)}** (same start, data, steps and seed; "
        f"{start} − {ref}, paired over the same maps): {per_depth}."
    )
    label = lab.scores[depth]["label"]
    ablations = [v for v in lab.variants if v.group == "ablation"]
    if ablations:
        parts = "; ".join(
            f"{lab.label(v.name)}: {_changes(lab, v.name, start, depth, main)}" for v in ablations
        )
        out.append(
            f"**Each weight removed** (against the full {lab.label(start)}, {label}): {parts}."
        )
    tunes = [v for v in lab.variants if v.kind == "finetune"]
    if tunes:
        parts = "; ".join(
            f"{lab.label(v.name)}: "
            + _changes(lab, v.name, v.init, depth, dict.fromkeys([v.metric or "dicee", "rmse"]))
            for v in tunes
        )
        out.append(f"**Combined fine-tunes** (against their start, {label}): {parts}.")
    scratch = [v for v in lab.variants if v.group == "scratch"]
    for a in scratch:
        for b in scratch:
            if a.loss == "multifocal" and b.loss == "mse":
                out.append(
                    f"**From random weights** (the control of the warm start, {label}): "
                    f"{lab.label(a.name)} − {lab.label(b.name)}: "
                    f"{_changes(lab, a.name, b.name, depth, main)}."
                )
    rep = raw.get("repeats", {})
    for metric, m in rep.get("metrics", {}).items():
        held = sum(bool(p["holds"]) for p in m["pairs"])
        out.append(
            f"**Second seed** ({_NAMES.get(metric, metric)}, {lab.scores[rep['depth']]['label']}): "
            f"{held} of {len(m['pairs'])} pairwise orders of "
            f"{', '.join(lab.label(n) for n in rep['names'])} hold; Kendall τ = "
            f"{m['kendall_tau']:.2f} between the two seeds' rankings."
        )
    if moon:
        metric = moon["metric"]
        best = moon["closest"]
        row = moon["models"][best]
        ship = moon["shipped_gain"]
        verdict = (
            "met by " + ", ".join(lab.label(n) for n in moon["met_by"])
            if moon["met_by"]
            else "not met"
        )
        out.append(
            f"**Moonshot** ({lab.scores[moon['depth']]['label']}: {_NAMES[metric]} at least "
            f"{100 * moon['gain']:.0f} % below the best-smoothed KS93, RMSE within "
            f"{100 * (moon['rmse_ratio'] - 1):.0f} % of the shipped UNet): {verdict}. The "
            f"best KS93 (σ = {moon['ks93_best_sigma_px']:g} px, the best on these maps) has "
            f"{_NAMES[metric]} {moon['ks93_best']:.4f}; the lab's best, {lab.label(best)}, "
            f"gains {100 * row['gain']:+.1f} ± {100 * row['gain_sem']:.1f} % with RMSE "
            f"{row['rmse_ratio']:.3f} ± {row['rmse_ratio_sem']:.3f} × the shipped UNet's; "
            f"the shipped UNet gains {100 * ship['gain']:+.1f} ± {100 * ship['sem_boot']:.1f} %."
        )
        blur = raw.get("truth_smoothed", {}).get("summary", {})
        under = [(float(s), v[metric]) for s, v in blur.items() if metric in v]
        if under:
            ok = [s for s, v in under if v["mean"] <= moon["target_metric"]]
            parts = ", ".join(
                f"σ = {s:g} px: {_num(v['mean'], v['sem_boot'])} ± "
                f"{_num(v['sem_boot'], v['sem_boot'])}"
                for s, v in under
            )
            out.append(
                f"**For scale:** the noise-free true κ of the same maps, blurred by a Gaussian, "
                f"scores {_NAMES[metric]} {parts}; the target "
                f"({moon['target_metric']:.4f}) asks for a map as good as the truth blurred "
                + (
                    f"by σ = {max(ok):g} px ({max(ok) * constants.PIXEL_ARCMIN:g}′)"
                    if ok
                    else "by less than the smallest σ"
                )
                + f" at {lab.scores[moon['depth']]['label']}."
            )
    return out
