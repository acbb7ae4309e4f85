"""The page header drawn by the frame: the page's title and what it is looking at."""

from __future__ import annotations

import streamlit as st

from ui import cache
from ui.sidebar import Selection
from ui.text import count

__all__ = ["SCOPES", "caption", "page_header", "sky_extent", "unet_warning"]

#: What a page's caption describes: one sample, the whole dataset, or only the model.
SCOPES = ("sample", "dataset", "model")


def sky_extent(sel: Selection) -> str:
    """The sample's size on the sky and, with a WCS, where it is: ``"64′ × 64′"``, or
    ``"90′ × 90′ around RA 150.1132°, Dec +2.2314°"`` (the map's central pixel)."""
    ny, nx = sel.shape
    p = sel.pixel_arcmin
    size = f"{nx * p:.3g}′ × {ny * p:.3g}′"
    wcs = sel.grid.wcs
    if wcs is None or not wcs.has_celestial:
        return size
    cel = wcs.celestial
    world = cel.pixel_to_world_values((nx - 1) / 2, (ny - 1) / 2)
    ra, dec = float(world[cel.wcs.lng]), float(world[cel.wcs.lat])
    return f"{size} around RA {ra % 360:.4f}°, Dec {dec:+.4f}°"


def caption(sel: Selection, scope: str) -> str:
    """The header caption, e.g. ``"simulated (seed 0) · sample 3: **sim_000003** · 64′ ×
    64′ · model: lite (shipped)"`` (:func:`sky_extent`)."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    model = f"model: {sel.model_name}"
    if scope == "sample":
        return (
            f"{sel.source} · sample {sel.index}: **{sel.sample_name}** · {sky_extent(sel)} "
            f"· {model}"
        )
    if scope == "dataset":
        return f"{sel.source} · {count(sel.n_samples, 'sample')} · {model}"
    return f"Trains on freshly simulated maps · starting model (from the sidebar): {sel.model_name}"


def page_header(title: str, sel: Selection, scope: str = "sample"):
    """``st.title``, a one-line caption of the selection the page works on, and what the
    page must say about that selection (:attr:`Selection.notices`: a failed upload, a
    link value that fell back to its default).

    Returns the slot, under them, of the warning that the sample lies outside the UNet's
    training domain (:func:`unet_warning`), which the frame fills after the page: it
    needs the model, and the page draws its first maps before TensorFlow has loaded.
    """
    st.title(title)
    st.caption(caption(sel, scope))
    for level, text in sel.notices:
        if level == "info":
            st.info(text, icon=":material/info:")
        else:
            st.warning(text, icon=":material/warning:")
    return st.empty()


def unet_warning(slot, sel: Selection, scope: str = "sample") -> None:
    """On the pages that show one sample, warn in ``slot`` when that sample lies outside
    the selected UNet's training domain (so the app never shows a silently wrong UNet)."""
    if scope != "sample":
        return
    reasons = cache.unet_warnings(sel)
    if reasons:
        slot.warning(
            f"**The UNet ({sel.model_name}) may be wrong on this sample:** "
            + "; ".join(reasons)
            + ". Compare it with KS93 and Wiener, which make no such assumption.",
            icon=":material/warning:",
        )
