"""How far error bars and detections hold, as measured: read from a card or a benchmark.

Coverage of the calibrated error bars (:mod:`lensviz.errorbars`)
    The share of pixels whose true κ lies within ``κ̂ ± kappa_std`` (``coverage_68``,
    calibrated to 68.3 %) and ``κ̂ ± kappa_hw95`` (``coverage_95``, 95.4 %), and the mean
    ``kappa_std``, per depth (``"5"``, ``"10"``, ``"30"``, ``"100"``, ``"300"`` galaxies
    per arcmin², ``"inf"``: no shape noise), per method (:data:`METHODS`) and per kind of
    data (:data:`KINDS`), on held-out simulations. Read from a model card
    ``weights/NAME.json`` (under ``"errorbars"``, as ``"depths"`` or ``"coverage"``) or
    the JSON of ``python -m benchmarks.bench_errorbars`` (under ``"coverage"``); each
    depth's entry is read in either layout, told apart by its keys:

    * method first: ``{"unet": {"masked_tiles": {"coverage_68": …, "coverage_95": …,
      "mean_std": …}, "fields_384": {…}}, …}``;
    * kind first, as the benchmark writes it: ``{"masked_tiles": {"unet": {"all": {…},
      "edge": {…}, …}, …}, …}`` (the region ``"all"`` is read).

    :func:`coverage_at` picks the measured depth nearest to a field's
    (:func:`nearest_depth`).
Stable detections (:mod:`lensviz.nulltests`)
    ``python -m benchmarks.bench_detections`` runs the null tests of COSMOS with two noise
    seeds per number of noise maps and records the agreement of their detections;
    :func:`stable_noise_maps` is the smallest number from which on every method agrees at
    least :data:`STABLE_AGREEMENT` at every number measured (agreement with a handful of
    detections is itself noisy: two seeds can agree at 50 maps by missing the same
    marginal peak, and disagree at 100).

Both files are read as hostile: a size limit, then JSON, then every number checked; a
malformed file raises :class:`ValueError` naming it and what is wrong.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "KINDS",
    "METHODS",
    "STABLE_AGREEMENT",
    "Coverage",
    "coverage_at",
    "nearest_depth",
    "read_coverage",
    "stable_noise_maps",
]

#: The kinds of held-out data the coverage is measured on: masked 128² tiles, 384² fields.
KINDS = ("masked_tiles", "fields_384")
#: The methods: raw KS93, KS93 smoothed by the depth rule, the Wiener filter, the UNet.
METHODS = ("ks93_raw", "ks93_rule", "wiener", "unet")
#: The agreement of two noise seeds' detections that makes a number of noise maps stable.
STABLE_AGREEMENT = 0.9
_MAX_BYTES = 4_000_000
_INF_BEYOND = 10.0  # a depth this many times the deepest finite node reads as "inf"


@dataclasses.dataclass(frozen=True)
class Coverage:
    """The measured coverage of one method's error bars at one depth, on one kind of data.

    Attributes
    ----------
    depth : str
        The depth node, e.g. ``"30"`` or ``"inf"``.
    method, kind : str
        Of :data:`METHODS` and :data:`KINDS`.
    coverage_68, coverage_95 : float
        Shares of pixels within ``±kappa_std`` and ``±kappa_hw95``.
    mean_std : float or None
        The mean ``kappa_std`` over those pixels.
    """

    depth: str
    method: str
    kind: str
    coverage_68: float
    coverage_95: float
    mean_std: float | None = None

    @property
    def n_gal(self) -> float:
        """The depth in galaxies per arcmin² (``inf``: no shape noise)."""
        return _depth_value(self.depth)


def _depth_value(key: str) -> float:
    """``"30"`` → 30.0, ``"inf"`` → inf; ValueError for anything else (NaN, ≤ 0)."""
    if key == "inf":
        return math.inf
    value = float(key)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"not a depth: {key!r}")
    return value


def _load(path) -> dict:
    path = Path(path)
    size = path.stat().st_size
    if size > _MAX_BYTES:
        raise ValueError(f"{path}: {size} bytes; a card or benchmark file is under {_MAX_BYTES}")
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(values).__name__}")
    return values


def _share(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where}: expected a number, got {value!r:.60}")
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{where}: expected a share from 0 to 1, got {value!r}")
    return float(value)


def _stats(node, where: str, depth: str, method: str, kind: str) -> Coverage:
    if isinstance(node, Mapping) and "coverage_68" not in node and "all" in node:
        node, where = node["all"], f"{where}.all"
    if not isinstance(node, Mapping):
        raise ValueError(f"{where}: expected an object of coverage_68, coverage_95, mean_std")
    mean = node.get("mean_std")
    if mean is not None and (
        isinstance(mean, bool)
        or not isinstance(mean, (int, float))
        or not (math.isfinite(mean) and mean >= 0)
    ):
        raise ValueError(f"{where}.mean_std: expected a number ≥ 0, got {mean!r:.60}")
    return Coverage(
        depth,
        method,
        kind,
        _share(node.get("coverage_68"), f"{where}.coverage_68"),
        _share(node.get("coverage_95"), f"{where}.coverage_95"),
        None if mean is None else float(mean),
    )


def read_coverage(path) -> dict[str, dict[str, dict[str, Coverage]]]:
    """The measured coverage of a model card or a ``bench_errorbars`` JSON file.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    dict
        ``{depth: {method: {kind: Coverage}}}`` for the depths, methods and kinds the
        file holds (methods and kinds it does not name are left out); empty when the
        file holds no coverage (a card written before it was measured).

    Raises
    ------
    ValueError
        Not JSON, too large, or coverage that is not shares from 0 to 1 (naming the
        entry).
    FileNotFoundError
        No such file.
    """
    values = _load(path)
    if isinstance(values.get("errorbars"), Mapping):  # a model card
        values = values["errorbars"]
    depths = values.get("depths", values.get("coverage", {}))
    if not isinstance(depths, Mapping):
        raise ValueError(f"{path}: the coverage must be an object of depths")
    out: dict = {}
    for depth, row in depths.items():
        where = f"{path} [{depth}]"
        try:
            _depth_value(depth)
        except ValueError:
            raise ValueError(
                f"{where}: a depth is a number of galaxies per arcmin² or 'inf'"
            ) from None
        if not isinstance(row, Mapping):
            raise ValueError(f"{where}: expected an object")
        kind_first = any(k in KINDS for k in row)
        found: dict = {}
        for first, inner in row.items():
            if not isinstance(inner, Mapping):
                continue  # e.g. a benchmark's unet_std_over_wiener
            for second, node in inner.items():
                method, kind = (second, first) if kind_first else (first, second)
                if method in METHODS and kind in KINDS:
                    cov = _stats(node, f"{where}.{first}.{second}", depth, method, kind)
                    found.setdefault(method, {})[kind] = cov
        if found:
            out[str(depth)] = found
    return out


def nearest_depth(n_gal: float, depths) -> str | None:
    """The depth node nearest to ``n_gal`` galaxies per arcmin², in log n_gal.

    ``inf`` (no shape noise) goes to ``"inf"``, and so does a depth at least ten times
    the deepest finite node (the noise is then a small part of the error); None when
    ``depths`` is empty.

    Examples
    --------
    >>> nearest_depth(33.0, ["5", "10", "30", "100", "300", "inf"])
    '30'
    >>> nearest_depth(float("inf"), ["30", "inf"]), nearest_depth(5000.0, ["300", "inf"])
    ('inf', 'inf')
    """
    keys = [str(k) for k in depths]
    finite = [k for k in keys if math.isfinite(_depth_value(k))]
    if not keys:
        return None
    deepest = max((_depth_value(k) for k in finite), default=0.0)
    if "inf" in keys and (math.isinf(n_gal) or not finite or n_gal >= _INF_BEYOND * deepest):
        return "inf"
    if not finite:
        return keys[0]
    if math.isinf(n_gal):
        return max(finite, key=_depth_value)
    if not (n_gal > 0):
        return min(finite, key=_depth_value)
    return min(finite, key=lambda k: abs(math.log(_depth_value(k) / n_gal)))


def coverage_at(table, n_gal: float, method: str, kind: str) -> Coverage | None:
    """The coverage of ``method`` on ``kind`` at the measured depth nearest to ``n_gal``
    (:func:`nearest_depth` among the depths that measured this method and kind), or None
    when the table has none."""
    depths = [d for d, row in table.items() if kind in row.get(method, {})]
    depth = nearest_depth(n_gal, depths)
    return None if depth is None else table[depth][method][kind]


def stable_noise_maps(path, threshold: float = STABLE_AGREEMENT) -> tuple[int | None, dict]:
    """The fewest noise maps from which on two noise seeds agree on the detections of
    every method, from the JSON of ``python -m benchmarks.bench_detections``.

    Returns
    -------
    n : int or None
        The smallest number of noise maps such that at it and at every larger number
        measured, ``agreement ≥ threshold`` for every method; None when the largest
        number measured does not reach it.
    agreement : dict
        ``{n_noise: {method: agreement}}`` as measured.

    Raises
    ------
    ValueError
        Not JSON, too large, or agreements that are not shares from 0 to 1.
    FileNotFoundError
        No such file.
    """
    runs = _load(path).get("runs")
    if not isinstance(runs, Mapping) or not runs:
        raise ValueError(f"{path}: expected 'runs' of numbers of noise maps")
    table: dict[int, dict[str, float]] = {}
    for n, row in runs.items():
        try:
            count = int(n)
        except ValueError:
            raise ValueError(
                f"{path} [runs.{n:.20}]: a number of noise maps is a whole number"
            ) from None
        if count < 1 or not isinstance(row, Mapping) or not row:
            raise ValueError(f"{path} [runs.{n}]: expected at least one method")
        table[count] = {
            method: _share(
                (v or {}).get("agreement") if isinstance(v, Mapping) else None,
                f"{path} [runs.{n}.{method}.agreement]",
            )
            for method, v in row.items()
        }
    found = None
    for n, row in sorted(table.items(), reverse=True):  # from the most maps down
        if min(row.values()) < threshold:
            break
        found = n
    return found, table
