"""Shareable links: the sidebar's selection as the URL's query parameters.

The page is the URL's path (``app.py`` gives every page its ``url_path``) and the
selection its query: ``…/peaks?seed=7&sample=4`` opens Peaks on sample 4 of the built-in
set simulated with seed 7. The sidebar reads a link once, on a session's first run, and
writes the current selection back into the address bar on every run, so a teacher can
copy it into slides at any moment.

=========== ============================================================================
parameter   value
=========== ============================================================================
``source``  ``sim`` (the built-in set; the default), ``cosmos``, ``upload``, ``observe``,
            ``server``
``seed``    simulation seed of the built-in set, a whole number 0–10 000 (default 0)
``depth``   survey preset of the built-in set: ``des``, ``lsst`` (default), ``deep``,
            ``noise-free``
``n_gal``   any other depth: galaxies per arcmin², 1–10 000 (instead of ``depth``)
``dataset`` a server dataset's file or folder name (``source=server``)
``sample``  the sample index, from 0
``model``   the model file's name without ``.keras``, e.g. ``lite``
``sigma``   KS93 smoothing σ in pixels, 0–8 (absent: σ from the data's depth)
``pixel``   the pixel side in arcmin, 0.01–60, of data that do not state their own
            (absent: 0.5′)
=========== ============================================================================

Parameters at their default are left out of the links the app writes. A value the app
cannot use falls back to the default, and the page says which and why. This module is
pure Python: the sidebar (:mod:`ui.sidebar`) reads and writes ``st.query_params``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

from lensviz import constants
from lensviz.data.limits import MAX_PIXEL_ARCMIN, MIN_PIXEL_ARCMIN
from lensviz.data.sky import DEFAULT_PIXEL_ARCMIN

__all__ = [
    "DEPTHS",
    "MAX_N_GAL",
    "MIN_N_GAL",
    "MAX_SEED",
    "MAX_SIGMA_PX",
    "SIGMA_STEP_PX",
    "SOURCES",
    "Link",
    "link_params",
    "parse_link",
    "unusable",
]

#: The data sources a link can name, in the sidebar's order.
SOURCES = ("sim", "cosmos", "upload", "observe", "server")
#: Survey presets a link can name (:data:`lensviz.constants.SURVEYS`).
DEPTHS = tuple(constants.SURVEYS)
MAX_SEED = 10_000
MIN_N_GAL, MAX_N_GAL = 1.0, 10_000.0
MAX_SIGMA_PX = 8.0
SIGMA_STEP_PX = 0.25  # the sidebar slider's step


@dataclasses.dataclass(frozen=True)
class Link:
    """A selection as a link holds it; None: not in the link (the default)."""

    source: str = "sim"
    seed: int | None = None
    depth: str | None = None  # a survey preset of DEPTHS
    n_gal: float | None = None  # galaxies per arcmin², for a depth that is no preset
    dataset: str | None = None
    sample: int | None = None
    model: str | None = None  # the model file's stem
    sigma: float | None = None  # KS93 σ [px]; None: the depth rule
    pixel: float | None = None  # pixel side [arcmin] of data that state none; None: 0.5′


def unusable(name: str, value: str, why: str, fallback: str) -> str:
    """The notice for a link value the app cannot use, e.g. ``"seed=abc is not a whole
    number from 0 to 10000; showing seed 0 instead"``."""
    shown = value if len(value) <= 40 else value[:37] + "…"
    return f"`{name}={shown}` {why}; showing {fallback} instead"


def _whole(value: str, lo: int, hi: int) -> int | None:
    try:
        number = float(value)
    except ValueError:
        return None
    if not math.isfinite(number) or number != int(number) or not lo <= number <= hi:
        return None
    return int(number)


def _number(value: str, lo: float, hi: float) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and lo <= number <= hi else None


def parse_link(params: Mapping[str, str]) -> tuple[Link, list[str]]:
    """The selection a link's query parameters ask for, and a notice per unusable value.

    Checks what can be checked without the data: names, number formats and ranges. The
    sample index, the model and the server dataset are checked by the sidebar against
    what exists. Unknown parameters are ignored.

    Parameters
    ----------
    params : mapping of str to str
        The query parameters (one value each, as ``st.query_params`` gives them).

    Returns
    -------
    link : Link
    notices : list of str
        One :func:`unusable` sentence per value that fell back to its default.

    Examples
    --------
    >>> parse_link({"seed": "7", "sample": "4"})
    (Link(source='sim', seed=7, depth=None, n_gal=None, dataset=None, sample=4, model=None, sigma=None, pixel=None), [])
    >>> parse_link({"seed": "-1"})[1]
    ['`seed=-1` is not a whole number from 0 to 10000; showing seed 0 instead']
    """  # noqa: E501
    found: dict = {}
    notices = []
    source = params.get("source")
    if source is not None:
        if source in SOURCES:
            found["source"] = source
        else:
            notices.append(
                unusable(
                    "source", source, f"is not one of {', '.join(SOURCES)}", "the built-in set"
                )
            )
    checks = {
        "seed": (
            lambda v: _whole(v, 0, MAX_SEED),
            f"is not a whole number from 0 to {MAX_SEED}",
            "seed 0",
        ),
        "sample": (
            lambda v: _whole(v, 0, 10**9),
            "is not a sample index (a whole number from 0)",
            "the default sample",
        ),
        "n_gal": (
            lambda v: _number(v, MIN_N_GAL, MAX_N_GAL),
            f"is not a galaxy density from {MIN_N_GAL:g} to {MAX_N_GAL:g} per arcmin²",
            "the default depth",
        ),
        "sigma": (
            lambda v: _number(v, 0.0, MAX_SIGMA_PX),
            f"is not a smoothing from 0 to {MAX_SIGMA_PX:g} px",
            "σ from the data's depth",
        ),
        "pixel": (
            lambda v: _number(v, MIN_PIXEL_ARCMIN, MAX_PIXEL_ARCMIN),
            f"is not a pixel side from {MIN_PIXEL_ARCMIN:g} to {MAX_PIXEL_ARCMIN:g} arcmin",
            f"{DEFAULT_PIXEL_ARCMIN:g}′ pixels",
        ),
    }
    for name, (read, why, fallback) in checks.items():
        value = params.get(name)
        if value is None:
            continue
        parsed = read(value)
        if parsed is None:
            notices.append(unusable(name, value, why, fallback))
        else:
            found[name] = parsed
    if "sigma" in found:
        snapped = round(found["sigma"] / SIGMA_STEP_PX) * SIGMA_STEP_PX
        found["sigma"] = float(snapped)
    depth = params.get("depth")
    if depth is not None:
        if depth in DEPTHS:
            found["depth"] = depth
        else:
            notices.append(
                unusable("depth", depth, f"is not one of {', '.join(DEPTHS)}", "the default depth")
            )
    for name in ("dataset", "model"):
        if params.get(name):
            found[name] = params[name]
    return Link(**found), notices


def link_params(link: Link) -> dict[str, str]:
    """The query parameters of a selection, the defaults left out, in a fixed order.

    Examples
    --------
    >>> link_params(Link(seed=7, sample=4))
    {'seed': '7', 'sample': '4'}
    >>> link_params(Link(source="cosmos", sigma=2.5, model="lite"))
    {'source': 'cosmos', 'model': 'lite', 'sigma': '2.5'}
    >>> link_params(Link(source="server", dataset="tiles", pixel=0.29))
    {'source': 'server', 'dataset': 'tiles', 'pixel': '0.29'}
    """
    out = {}
    if link.source != "sim":
        out["source"] = link.source
    if link.seed:
        out["seed"] = str(link.seed)
    if link.depth is not None and link.depth != constants.DEFAULT_SURVEY:
        out["depth"] = link.depth
    if link.n_gal is not None:
        out["n_gal"] = f"{link.n_gal:g}"
    if link.dataset is not None:
        out["dataset"] = link.dataset
    if link.sample is not None:
        out["sample"] = str(link.sample)
    if link.model is not None:
        out["model"] = link.model
    if link.sigma is not None:
        out["sigma"] = f"{link.sigma:g}"
    if link.pixel is not None and link.pixel != DEFAULT_PIXEL_ARCMIN:
        out["pixel"] = f"{link.pixel:g}"
    return out
