"""Text for people: durations, progress lines, counts, method names and numbers.

Pure functions (no Streamlit), shared by the sidebar, the pages and the job manager.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "HUGE_WMAPE",
    "METRIC_DECIMALS",
    "WIENER_NAME",
    "best_method",
    "count",
    "describe_progress",
    "format_duration",
    "format_number",
    "ks93_label",
    "percent",
    "sky_position",
    "wiener_label",
]

WIENER_NAME = "Wiener"
#: Decimals of each metric in the app's tables (one count per metric, so columns line up;
#: enough to tell the methods apart on typical maps).
METRIC_DECIMALS = {"wmape": 2, "wmape_median": 2, "dicee": 3, "dpeaks": 1, "rmse": 4, "r": 3}


#: A WMAPE this large means the true map has pixels at or near 0 (WMAPE divides by |κ|):
#: the pages say so instead of letting the number speak.
HUGE_WMAPE = 1e4


def best_method(values: dict[str, float], higher_is_better: bool) -> str | None:
    """The method with the best finite value of a metric, or None when fewer than two
    methods have a finite value (a star then says nothing).

    Examples
    --------
    >>> best_method({"UNet": 3.2, "KS93": float("inf"), "Wiener": 4.1}, False)
    'UNet'
    >>> best_method({"UNet": float("nan"), "KS93": 2.0}, False) is None
    True
    """
    finite = {k: v for k, v in values.items() if v is not None and math.isfinite(v)}
    if len(finite) < 2:
        return None
    return (max if higher_is_better else min)(finite, key=finite.__getitem__)


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``"1 sample"``, ``"24 samples"``; ``plural`` for irregular nouns."""
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"


def format_duration(seconds: float | None) -> str:
    """``"1 h 02 min"``, ``"3 min 05 s"``, ``"42 s"``; ``"–"`` when unknown (NaN, inf, < 0)."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "–"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"


def describe_progress(progress: Any) -> str:
    """One line for a training :class:`~lensviz.nn.callbacks.Progress` record (or None).

    Example: ``"epoch 2/5, step 30/64 (39%), loss 0.0123, ETA 1 min 20 s"``.
    """
    if progress is None:
        return "starting (no step finished yet)"
    parts = []
    epoch, epochs = getattr(progress, "epoch", None), getattr(progress, "epochs", None)
    if epoch is not None and epochs:
        parts.append(f"epoch {epoch + 1}/{epochs}")
    step, steps = getattr(progress, "step", None), getattr(progress, "steps", None)
    fraction = getattr(progress, "fraction", None)
    if step is not None and steps:
        parts.append(
            f"step {step}/{steps}" + (f" ({fraction:.0%})" if fraction is not None else "")
        )
    loss = getattr(progress, "loss", None)
    if loss is not None and math.isfinite(loss):
        parts.append(f"loss {loss:.4g}")
    eta = getattr(progress, "eta_s", None)
    if eta is not None:
        parts.append(f"ETA {format_duration(eta)}")
    return ", ".join(parts) or repr(progress)


def format_number(value: float, decimals: int) -> str:
    """``value`` with exactly ``decimals`` decimals; ``"–"`` for NaN, ±inf or None; in
    powers of ten from :data:`HUGE_WMAPE` on (``"3.1e+12"``).

    Tables of one metric use one number of decimals, so the columns line up.
    """
    if value is None or not math.isfinite(value):
        return "–"
    if abs(value) >= HUGE_WMAPE:
        return f"{value:.1e}"
    return f"{value:.{decimals}f}"


def ks93_label(sigma_px: float, pad: int) -> str:
    """Display name of a KS93 map, e.g. ``"KS93 (σ 3 px)"``."""
    return f"KS93 (σ {sigma_px:g} px{', padded' if pad else ''})"


def wiener_label(pad: int) -> str:
    """Display name of a Wiener map: ``"Wiener"`` or ``"Wiener (padded)"``."""
    return WIENER_NAME + (" (padded)" if pad else "")


def percent(share: float) -> str:
    """A share as a percentage, with a decimal below 10 %: ``"42 %"``, ``"3.5 %"``."""
    value = 100 * float(share)
    return f"{value:.0f} %" if value >= 10 else f"{value:.1f} %"


def sky_position(y: float, x: float, pixel_arcmin: float, wcs=None) -> tuple[str, str | None]:
    """Where pixel (row ``y``, column ``x``) is: in arcmin from the map's first corner, as
    the map axes measure it (``"(30.8′, 42.4′)"``, x then y), and with a WCS its RA and
    Dec (``"150.1234°, +2.2345°"``; else None).

    Examples
    --------
    >>> sky_position(10, 20, 0.5)
    ('(10.2′, 5.2′)', None)
    """
    arcmin = f"({(x + 0.5) * pixel_arcmin:.1f}′, {(y + 0.5) * pixel_arcmin:.1f}′)"
    if wcs is None or not wcs.has_celestial:
        return arcmin, None
    cel = wcs.celestial
    world = cel.pixel_to_world_values(float(x), float(y))
    ra, dec = float(world[cel.wcs.lng]), float(world[cel.wcs.lat])
    return arcmin, f"{ra % 360:.4f}°, {dec:+.4f}°"
