"""Layout shared by the pages: the responsive grid of map cells and the main block.

Map figures come one per cell (:mod:`lensviz.plots.maps`); :func:`figure_grid` lays
them out in as many columns of at least :data:`lensviz.plots.CELL_MIN_PX` as the
window holds: 4 at 1400 px wide, 3 at 1280 and 2 at 1000 (sidebar open), every map
panel at least 200 px. :func:`compact_main` narrows the main block's side padding so
that those columns fit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
import streamlit as st

from lensviz import plots

__all__ = ["MAIN_PADDING_REM", "compact_main", "figure_grid"]

#: Side padding of the main block (Streamlit's wide layout has 5rem).
MAIN_PADDING_REM = 1.5


def compact_main() -> None:
    """Narrow the main block's side padding (a style rule; it takes no space)."""
    st.html(
        "<style>[data-testid='stMainBlockContainer']{"
        f"padding-left:{MAIN_PADDING_REM}rem;padding-right:{MAIN_PADDING_REM}rem}}</style>"
    )


def figure_grid(
    figures: Sequence[go.Figure],
    key: str,
    slots: Sequence[int] = (),
    captions: Mapping[int, str] | None = None,
) -> dict:
    """Draw ``figures`` in a responsive grid, one cell each, keyed ``{key}_{i}``.

    ``slots`` are positions left as empty cells (``st.empty``) for figures drawn later
    (the UNet's, while TensorFlow loads); returns ``{position: placeholder}``. The
    figures fill the other positions in order. ``captions`` puts a line of text under
    the figure at a position, in its cell.
    """
    out = {}
    figures = list(figures)
    captions = dict(captions or {})
    with st.grid(min_column_width=plots.CELL_MIN_PX):
        for i in range(len(figures) + len(slots)):
            if i in slots:
                out[i] = st.empty()
            elif i in captions:
                with st.container():
                    st.plotly_chart(figures.pop(0), key=f"{key}_{i}", theme=None)
                    st.caption(captions[i])
            else:
                st.plotly_chart(figures.pop(0), key=f"{key}_{i}", theme=None)
    return out
