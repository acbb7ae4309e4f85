"""Loss weights: the five MultiFocal weight maps of the current sample and their combination.

The loss weighs the UNet's 128 × 128 training tiles; on a whole field the page works on
one tile of it, chosen by :func:`tile_ui`."""

from __future__ import annotations

import numpy as np
import streamlit as st

from lensviz import constants, loss_weights, metrics, plots
from lensviz.fields import tile_origins
from lensviz.lab import LabResults, change, closest_variant
from lensviz.plots.lab import pareto_figure
from ui import cache
from ui.layout import figure_grid
from ui.sidebar import Selection, current, require_truth

N_PEAKS_SHOWN = 10  # the report's Fig. 3 marks the 10 highest peaks
LAB_CLOSEST = "closest to your sliders"  # the lab-model choice that follows the sliders
#: What each component weighs (column captions).
COMPONENTS = {
    "focal": "|κ| / max |κ|",
    "local": "|κ| / its neighbourhood's max, on the top-κ pixels",
    "peaks": "1 on discs around the highest peaks",
    "structure": "1 where κ is close to its mean",
    "edges": "1 on a frame along the border",
}
#: Component parameters: name → (component, default, label, min, max, step, help).
PARAMS = {
    "neighbourhood": (
        "local",
        constants.LOCAL_NEIGHBOURHOOD_PX,
        "neighbourhood (px)",
        1,
        32,
        1,
        "Side of the square window whose maximum |κ| normalises the local weight.",
    ),
    "top_fraction": (
        "local",
        constants.LOCAL_TOP_FRACTION,
        "top fraction",
        0.05,
        1.0,
        0.05,
        "Only this fraction of highest-κ pixels gets the local weight.",
    ),
    "n_peaks": (
        "peaks",
        constants.N_PEAKS_WEIGHT,
        "number of peaks",
        0,
        20,
        1,
        "How many of the highest true peaks (unsmoothed local maxima) get weight.",
    ),
    "peak_radius": (
        "peaks",
        float(constants.PEAK_RADIUS_PX),
        "radius (px)",
        0.0,
        10.0,
        0.5,
        "Radius of the disc of weight 1 around each peak.",
    ),
    "band": (
        "structure",
        constants.STRUCTURE_BAND,
        "band |κ − mean κ|",
        0.0,
        0.02,
        0.0005,
        "Pixels within this distance of the mean κ (the DICEE threshold) get weight.",
    ),
    "edge_width": (
        "edges",
        constants.EDGE_WIDTH_PX,
        "width (px)",
        0,
        20,
        1,
        "Width of the frame along the map border.",
    ),
}


def _coeff_key(name: str) -> str:
    return f"lw_coeff_{name}"


def _param_key(name: str) -> str:
    return f"lw_{name}"


def reset_to_report() -> None:
    """Callback: every slider back to the report's values."""
    for name, value in constants.MULTIFOCAL_COEFFS.items():
        st.session_state[_coeff_key(name)] = float(value)
    for name, (_, value, *_) in PARAMS.items():
        st.session_state[_param_key(name)] = value


def weights_ui() -> tuple[dict[str, float], dict[str, float]]:
    """One column per component: its name and what it weighs, its coefficient, then its
    parameters. Each of the three is a row of columns of its own, so the coefficient
    sliders line up however the descriptions wrap."""
    coeffs, params = {}, {}
    n = len(COMPONENTS)
    for col, (component, what) in zip(st.columns(n), COMPONENTS.items(), strict=True):
        col.markdown(f"**{component}**")
        col.caption(what)
    for col, component in zip(st.columns(n), COMPONENTS, strict=True):
        report = constants.MULTIFOCAL_COEFFS[component]
        key = _coeff_key(component)
        st.session_state.setdefault(key, float(report))
        coeffs[component] = col.slider(
            f"coefficient a ({component})",
            0.0,
            5.0,
            step=0.1,
            key=key,
            help=f"Weight of the {component} map in the combination (0 switches it off). "
            f"Report's value: {report:g}.",
        )
    for col, component in zip(st.columns(n), COMPONENTS, strict=True):
        for name, (owner, value, label, lo, hi, step, help_) in PARAMS.items():
            if owner != component:
                continue
            key = _param_key(name)
            st.session_state.setdefault(key, value)
            params[name] = col.slider(
                label,
                lo,
                hi,
                step=step,
                key=key,
                format="%.4f" if name == "band" else None,
                help=f"{help_} Report's value: {value:g}.",
            )
    return coeffs, params


def top_peaks(kappa: np.ndarray, n: int) -> np.ndarray:
    """``(≤ n, 2)`` (row, column) of the highest unsmoothed local maxima, as the peak weight."""
    pos, height = metrics.find_peaks(kappa, n=n, sigma_px=0)
    return pos[np.isfinite(height)]


def tile_ui(sel: Selection) -> Selection:
    """On a whole field, the tile to work on (the tiles of the field's tiling); the
    selection of that tile. Tiles pass through unchanged."""
    if sel.is_tile:
        return sel
    n = constants.NPIX
    st.info(
        f"The MultiFocal loss weighs the UNet's {n} × {n} training tiles, and this sample "
        f"is a {sel.shape[0]} × {sel.shape[1]} field: the page works on one tile of it. "
        "The UNet map below is that tile's own prediction, as in training.",
        icon=":material/crop:",
    )
    rows, cols = (tile_origins(side).tolist() for side in sel.shape)
    c_y, c_x = st.columns(2)
    y0 = c_y.select_slider("Tile's top row (y)", rows, rows[len(rows) // 2], key="lw_tile_y")
    x0 = c_x.select_slider("Tile's left column (x)", cols, cols[len(cols) // 2], key="lw_tile_x")
    return sel.tile(int(y0), int(x0))


sel = current()
require_truth(sel, "The Loss-weights page")
sel = tile_ui(sel)

st.markdown(
    "The MultiFocal loss weighs each pixel's squared error by **1 + w**, where **w** mixes "
    "five maps in [0, 1] computed from the true κ (report §3.1, Fig. 3). Move the sliders "
    "to see where training pays attention."
)


@st.fragment
def weights_section(sel) -> None:
    """Sliders, cards and maps. A fragment: moving a slider reruns only this part of
    the page (not the sidebar, the header or the text above)."""
    truth = sel.sample_kappa.astype(np.float64)
    coeffs, params = weights_ui()
    st.button(
        "Reset to the report's values",
        on_click=reset_to_report,
        key="lw_reset",
        icon=":material/restart_alt:",
    )

    maps = cache.weight_maps(
        sel,
        neighbourhood=int(params["neighbourhood"]),
        top_fraction=float(params["top_fraction"]),
        n_peaks=int(params["n_peaks"]),
        peak_radius=float(params["peak_radius"]),
        band=float(params["band"]),
        edge_width=int(params["edge_width"]),
    )
    try:
        combined = loss_weights.combine_weights(maps, coeffs)
    except ValueError as exc:
        st.error(f"{exc}. Raise at least one coefficient above 0.")
        return

    preds = cache.kappa_maps(sel)
    # Cards in a wrapping row: on a narrow screen they go to a second line, not "3.77…".
    with st.container(horizontal=True, gap="medium"):
        st.metric(
            "Mean combined weight w",
            f"{combined.mean():.4f}",
            help="Average of the combined map: changes with every coefficient.",
            width="content",
        )
        for name, pred in preds.items():
            # The loss of lensviz.loss_weights.multifocal_loss, on the combined map
            # already computed (that function would rebuild the five maps per method).
            loss = float(np.mean((1.0 + combined) * (pred.astype(np.float64) - truth) ** 2))
            st.metric(
                f"MultiFocal loss · {name}",
                f"{loss:.3e}",
                help="mean((1 + w)(κ_pred − κ_true)²) under the current weights",
                width="content",
            )

    figure_grid(
        plots.weight_component_cells(
            maps, combined, coeffs=coeffs, peaks=top_peaks(truth, N_PEAKS_SHOWN), axes=sel.axes
        ),
        "lw_grid",
    )
    st.caption(
        f"Red crosses: the {N_PEAKS_SHOWN} highest local maxima of the unsmoothed true κ "
        "(the peak weight uses the first ones). Combined: Σ aᵢwᵢ / Σ aᵢ. All maps share the "
        "0–1 scale (bar under the first); a component with coefficient 0 takes no part in "
        "the combination and is drawn faded."
    )
    lab_section(sel, coeffs, params)


# === What these weights did in training (the loss lab) ===


def lab_depth_ui(lab: LabResults) -> str:
    """The depth whose scores the Pareto figure shows (the moonshot's by default)."""
    labels = {lab.scores[d]["label"]: d for d in lab.depths}
    first = lab.raw.get("moonshot", {}).get("depth", lab.depths[0])
    st.session_state.setdefault("lw_lab_depth", lab.scores[first]["label"])
    label = st.segmented_control("Scores at", list(labels), key="lw_lab_depth", required=True)
    return labels[label or lab.scores[first]["label"]]


def lab_maps(sel, lab: LabResults, name: str, depth: str) -> None:
    """A lab model's map beside the plain-MSE model's, on the current sample."""
    ref = str(lab.raw.get("reference", "mse"))
    paths = {n: lab.model_path(n) for n in (ref, name)}
    missing = [n for n, p in paths.items() if p is None]
    if missing:
        st.warning(f"The lab's model files of {', '.join(missing)} are not on this server.")
        return
    try:
        maps = {n: cache.model_kappa(sel, str(p)) for n, p in paths.items()}
    except (ValueError, OSError) as exc:
        st.error(f"Could not run the lab's models: {exc}")
        return
    truth = sel.sample_kappa
    label = lab.label(name)
    preds = {f"{lab.label(ref)} (lab)": maps[ref]}
    if name != ref:
        preds[f"{label} (lab)"] = maps[name]
    cells = plots.comparison_cells(truth, preds, axes=sel.axes)
    if name != ref:
        diff = maps[name] - maps[ref]
        cells += plots.map_cells(
            {f"{label} − {lab.label(ref)}": diff},
            colorscale=plots.RESIDUAL_COLORSCALE,
            zrange=plots.symmetric_range(diff),
            colorbar_title="Δκ",
            label="Δκ",
            axes=sel.axes,
        )
    figure_grid(cells, "lw_lab_grid")
    if name != ref:
        rows = [
            change(*lab.difference(name, ref, depth, m), m)
            for m in ("rmse", "r", "wmape", "dicee", "dpeaks")
        ]
        st.caption(
            f"On this sample: the two lab models, each over its residual, and their "
            f"difference. Over the lab's {lab.test_maps[0]} held-out maps at "
            f"{lab.scores[depth]['label']}, {label} − {lab.label(ref)}: "
            + "; ".join(rows)
            + " (paired mean ± standard error; better or worse beyond 2 s.e.)."
        )


def lab_section(sel, coeffs: dict, params: dict) -> None:
    """The lab's variants on the Pareto axes, the one closest to the sliders ringed; a
    toggle shows a variant's maps beside the MSE model's on the current sample."""
    st.subheader("What these weights did in training")
    lab = cache.lab_results()
    if isinstance(lab, str):
        st.info(lab, icon=":material/science:")
        return
    t = lab.raw.get("train", {})
    st.markdown(
        "The **loss lab** trained the shipped UNet's architecture once per loss: plain MSE, "
        "the focal loss, the report's MultiFocal and MultiFocal without each of its five "
        f"weights, all from the same start, on the same data, for the same "
        f"{t.get('epochs', 0) * t.get('steps_per_epoch', 0):,} steps; then it fine-tuned "
        "the MultiFocal model toward each metric with the Combined loss. Each point is a "
        f"model's mean score on the lab's {lab.test_maps[0]} held-out maps ± its bootstrap "
        "standard error; lower is better on both axes, and the dashed line joins the "
        "models no other beats on both."
    )
    closest, distance = closest_variant(coeffs, lab.variants)
    depth = lab_depth_ui(lab)
    fig = pareto_figure(
        {lab.scores[depth]["label"]: lab.points(depth)},
        highlight=closest,
        height_per_row=400,
        legend="bottom",
    )
    st.plotly_chart(fig, key="lw_lab_pareto", theme=None)
    changed = [PARAMS[name][2] for name, value in params.items() if value != PARAMS[name][1]]
    st.caption(
        f"Ringed: **{lab.label(closest)}**, the lab's loss closest to your sliders "
        f"(distance {distance:.2f} between the weight shares aᵢ/Σa; 0 is the same loss)."
        + (
            f" The lab trained with the report's component parameters; yours differ in "
            f"{', '.join(changed)}."
            if changed
            else ""
        )
    )
    if not st.toggle(
        "Show a lab model's maps beside the MSE model's on this sample",
        key="lw_lab_maps",
        help="Runs two of the lab's UNets on the current tile (loads TensorFlow).",
    ):
        return
    st.session_state.setdefault("lw_lab_model", LAB_CLOSEST)
    choice = st.selectbox(
        "Lab model",
        [LAB_CLOSEST, *lab.names],
        format_func=lambda n: (
            f"{LAB_CLOSEST} ({lab.label(closest)})" if n == LAB_CLOSEST else lab.label(n)
        ),
        key="lw_lab_model",
    )
    lab_maps(sel, lab, closest if choice == LAB_CLOSEST else choice, depth)


weights_section(sel)
