"""Fine-tune: retrain part of a UNet in the background; the result joins the model list.

The run is :func:`ui.jobs.finetune_job` in a background thread of the process's one
:class:`ui.jobs.JobManager` (:func:`ui.jobs.manager`), so the page stays responsive and
only one training job runs per server. Every session sees the running job and can
cancel it after a confirmation. A fragment polls the job once a second while it runs.
Fine-tuned weights are never overwritten: a taken name is refused here, and a name taken
by another session while the run trained gets a ``-2`` suffix.
"""

from pathlib import Path

import pandas as pd
import streamlit as st

from lensviz import constants
from lensviz.lab import LabResults
from lensviz.nn.finetuning import FinetuneConfig
from lensviz.plots import METRIC_LABELS, loss_curves, metric_curves
from lensviz.plots.lab import pareto_figure
from ui import cache
from ui.jobs import JobBusy, finetune_job, manager, unused_path, weights_file_name
from ui.sidebar import current
from ui.text import METRIC_DECIMALS, describe_progress, format_duration, format_number

WHICH = {
    "last": "Last layer only (the report's fine-tuning)",
    "decoder": "Decoder + last layer",
    "all": "Everything",
}
LOSS_NAMES = {
    "combined": "Combined (MultiFocal + WMAPE + DICEE + DPEAKS)",
    "multifocal": "MultiFocal",
    "focal": "Focal",
    "mse": "MSE",
}
COMBINED_DEFAULTS = dict(FinetuneConfig().combined_weights)  # report: 0.95 / 0.05 / 0 / 0
SAMPLE_CHOICES = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
LR_CHOICES = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3)
VAL_CHOICES = (8, 16, 32, 64, 128, 256)
SHOWN_METRICS = ("wmape", "wmape_median", "dicee", "dpeaks", "rmse", "r")
#: The coefficient boxes wrap to a new row rather than get narrower than this [px]: the
#: value, its ± buttons and a label such as "structure" fit on one line.
NUMBER_BOX_PX = 135
#: After a confirmed cancel, the page waits this long for the run to stop and then
#: redraws at once (Start enabled, no stale progress bar); a slower stop is polled.
CANCEL_WAIT_S = 3.0


# === Settings ===


def _reset_loss() -> None:
    for name, value in constants.MULTIFOCAL_COEFFS.items():
        st.session_state[f"ft_coeff_{name}"] = float(value)
    for name, value in COMBINED_DEFAULTS.items():
        st.session_state[f"ft_term_{name}"] = float(value)
    st.session_state.ft_loss = "combined"


def weights_ui(models: dict[str, str], selected: str) -> tuple[str, str]:
    """Starting weights (default: the sidebar's model); return (display name, path)."""
    names = list(models)
    index = names.index(selected) if selected in names else 0
    name = st.selectbox(
        "Starting weights",
        names,
        index=index,
        key="ft_start",
        help="Shipped weights or an earlier fine-tuned model. The file itself is never modified.",
    )
    return name, models[name]


def loss_ui() -> tuple[str, dict[str, float], dict[str, float]]:
    """Loss name, MultiFocal coefficients and Combined term weights."""
    loss = st.radio(
        "Loss", list(LOSS_NAMES), format_func=LOSS_NAMES.get, key="ft_loss", horizontal=True
    )
    coeffs = dict(constants.MULTIFOCAL_COEFFS)
    if loss in ("multifocal", "combined"):
        st.caption(
            "MultiFocal coefficients (report: focal 1, local 2, peaks 3, structure 1.5, edges 1)"
        )
        with st.grid(min_column_width=NUMBER_BOX_PX):
            for name, default in constants.MULTIFOCAL_COEFFS.items():
                coeffs[name] = st.number_input(
                    name, 0.0, 10.0, float(default), 0.5, key=f"ft_coeff_{name}"
                )
    terms = dict(COMBINED_DEFAULTS)
    if loss == "combined":
        st.caption(
            "Combined term weights (report's fine-tuning: 0.95 MultiFocal + "
            "0.05 WMAPE). Each term is first divided by its value for the starting "
            "model, so the weights are shares of the initial loss (raw, WMAPE ≈ 5 "
            "would swamp MultiFocal ≈ 3e-4)."
        )
        with st.grid(min_column_width=NUMBER_BOX_PX):
            for name, default in COMBINED_DEFAULTS.items():
                terms[name] = st.number_input(
                    name, 0.0, 1.0, float(default), 0.05, key=f"ft_term_{name}", format="%.2f"
                )
    st.button("Reset the loss to the report's values", on_click=_reset_loss, key="ft_reset_loss")
    return loss, coeffs, terms


def training_ui() -> dict:
    """What trains and for how long; keyword arguments of :class:`FinetuneConfig`."""
    which = st.radio(
        "What trains",
        list(WHICH),
        format_func=WHICH.get,
        key="ft_which",
        help="Every other layer is frozen (BatchNorm in inference mode).",
    )
    c1, c2 = st.columns(2)
    epochs = c1.number_input("Epochs", 1, 50, 2, 1, key="ft_epochs")
    n_samples = c2.select_slider(
        "Training maps per epoch",
        SAMPLE_CHOICES,
        256,
        key="ft_samples",
        help="Simulated on the fly from the training seed range, "
        "disjoint from the built-in test set.",
    )
    c3, c4 = st.columns(2)
    lr = c3.select_slider(
        "Learning rate",
        LR_CHOICES,
        1e-4,
        key="ft_lr",
        format_func=lambda v: f"{v:.0e}",
        help="Adam; the report used 1e-4.",
    )
    val = c4.select_slider(
        "Validation maps",
        VAL_CHOICES,
        64,
        key="ft_val",
        help="Fixed simulated calibration maps, scored before and after and at every epoch end.",
    )
    st.caption(
        f"Batch size {FinetuneConfig().batch_size} (report) · "
        f"{max(1, n_samples // FinetuneConfig().batch_size)} steps per epoch · "
        f"runs on {cache.device_label()}"
    )
    return dict(
        which=which,
        epochs=int(epochs),
        n_samples=int(n_samples),
        learning_rate=float(lr),
        val_samples=int(val),
    )


def output_ui(start_path: str) -> Path | None:
    """The output name, sanitised; show the final file; None when it cannot be used."""
    ss = st.session_state
    suggestion = ss.pop("_ft_suggest", None)
    if suggestion is not None:  # set before the widget is drawn (see finished_view)
        ss.ft_name = suggestion
    elif "ft_name" not in ss:
        # The first value goes through the session state, not a ``value`` argument: a
        # widget with both (the suggestion above) makes Streamlit log a warning.
        ss.ft_name = unused_path(cache.USER_WEIGHTS_DIR / f"{Path(start_path).stem}-ft.keras").stem
    typed = st.text_input(
        "Name of the new weights",
        key="ft_name",
        max_chars=80,
        help="Letters, digits, '_' and '-'; other characters "
        "become '_'. Existing weights, shipped or fine-tuned, are never "
        "overwritten.",
    )
    shipped = [p.stem for p in cache.SHIPPED_WEIGHTS_DIR.glob("*.keras")]
    try:
        path = weights_file_name(typed, cache.USER_WEIGHTS_DIR, reserved=shipped)
    except ValueError as exc:
        st.error(str(exc))
        return None
    if path.resolve() == Path(start_path).resolve():
        st.error("That is the starting weights' file; choose another name.")
        return None
    if path.exists():
        st.error(
            f"{path.name} already exists, and fine-tuned weights are never overwritten "
            f"(another session may be using them). Choose another name, e.g. "
            f"{unused_path(path).stem}."
        )
        return None
    st.caption(
        f"Saved as `{_display_path(path)}`; it appears in the sidebar as "
        f"**{path.stem} (fine-tuned)**."
    )
    return path


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(cache.ROOT))
    except ValueError:
        return str(path)


# === The job ===


def start_job(start_name: str, start_path: str, out: Path, cfg: FinetuneConfig) -> None:
    try:
        job = manager().start(
            f"fine-tune {start_name} → {out.name}",
            finetune_job,
            meta={"out": str(out), "start": start_name},
            weights=start_path,
            out_path=str(out),
            cfg=cfg,
        )
    except JobBusy as exc:
        st.warning(f"Not started: {exc}")
        return
    st.session_state.ft_job = job.id
    st.rerun()  # redraw with Start disabled and the live view polling


# === Views of a job ===


def _step_losses(records) -> list[tuple[float, float]]:
    return [
        (r.epoch + r.step / r.steps, r.loss)
        for r in records
        if getattr(r, "stage", "") == "train" and r.steps
    ]


def _curves(records, history, key: str, before: dict | None = None) -> None:
    left, right = st.columns(2)
    left.plotly_chart(loss_curves(_step_losses(records), history), key=f"{key}_loss", theme=None)
    if history:
        right.plotly_chart(metric_curves(history, before=before), key=f"{key}_metrics", theme=None)
    else:
        right.info(
            "Validation metrics (WMAPE, DICEE, DPEAKS, RMSE on a log axis) appear "
            "after the first epoch."
        )


def _progress_bar(snap) -> None:
    p = snap.progress
    if p is None:
        st.progress(
            0.0,
            text="Preparing: loading the weights, simulating the validation "
            f"maps and scoring the starting model… ({format_duration(snap.elapsed_s)})",
        )
        return
    st.progress(
        p.fraction, text=f"{describe_progress(p)} · elapsed {format_duration(snap.elapsed_s)}"
    )


def _ask_to_cancel(job_id: int) -> None:
    st.session_state.ft_confirm_cancel = job_id


def _confirm_cancel(job_id: int) -> None:
    st.session_state.ft_confirm_cancel = None
    job = manager().get(job_id)
    st.session_state.ft_cancel_refused = job is None or not job.cancel()


def _keep_running() -> None:
    st.session_state.ft_confirm_cancel = None


def cancel_ui(snap, mine: bool) -> None:
    """A Cancel button, then a confirmation; any session may cancel the running job.

    The buttons act in callbacks, before the page (or the polling fragment) redraws,
    so the page never needs an extra rerun.
    """
    ss = st.session_state
    if ss.pop("ft_cancel_refused", False):
        st.info("Too late to cancel: the run had already finished.")
    if snap.cancel_requested:
        st.info("Cancelling… the run stops after the current step; no file is written.")
        job = manager().get(snap.id)
        if job is not None and job.wait(CANCEL_WAIT_S):
            st.rerun()  # stopped: redraw the whole page at once (see job_panel)
        return
    if ss.get("ft_confirm_cancel") != snap.id:
        st.button(
            "Cancel this run…",
            key="ft_cancel",
            type="secondary",
            icon=":material/cancel:",
            on_click=_ask_to_cancel,
            args=(snap.id,),
        )
        return
    whose = "your run" if mine else "a run started by another session"
    st.warning(
        f"Cancel {whose}, “{snap.name}”? Its training so far is lost and no file is written."
    )
    yes, no = st.columns(2)
    yes.button(
        "Yes, cancel it",
        key="ft_cancel_yes",
        type="primary",
        on_click=_confirm_cancel,
        args=(snap.id,),
    )
    no.button("No, let it run", key="ft_cancel_no", on_click=_keep_running)


def busy_view(snap) -> None:
    st.warning(
        f"**The server is busy**: another session is running “{snap.name}” "
        f"({describe_progress(snap.progress)}). Only one training job runs at a time; "
        "Start becomes available when it finishes (this message updates by itself)."
    )
    _progress_bar(snap)
    cancel_ui(snap, mine=False)


def running_view(snap) -> None:
    st.subheader(f"Running: {snap.name}")
    _progress_bar(snap)
    cancel_ui(snap, mine=True)
    history = snap.progress.history if snap.progress is not None else []
    _curves(snap.records, history, "ft_live")


def _comparison(before: dict, after: dict) -> pd.DataFrame:
    """Before, after and change per metric, as text with one more decimal than the
    app's other tables (fine-tuning moves the metrics a little)."""
    rows = []
    for m in SHOWN_METRICS:
        if m not in before or m not in after:
            continue
        b, a = before[m], after[m]
        d = METRIC_DECIMALS.get(m, 3) + 1
        better = a > b if m == "r" else a < b
        rows.append(
            {
                "metric": METRIC_LABELS.get(m, m),
                "before": format_number(b, d),
                "after": format_number(a, d),
                "change": f"{a - b:+.{d}f}",
                "improved": "✓" if better else ("=" if a == b else "✗"),
            }
        )
    return pd.DataFrame(rows)


def finished_view(snap) -> None:
    if snap.status == "done":
        res = snap.result
        path = Path(res["path"])
        if st.session_state.get("_ft_shown") != snap.id:
            # First view of this result: offer a fresh name for the next run (the one just
            # used now exists) and redraw, so the name field shows it.
            st.session_state._ft_shown = snap.id
            st.session_state._ft_suggest = unused_path(path).stem
            st.rerun()
        renamed = Path(snap.meta.get("out", path)).name != path.name
        st.success(
            f"Done in {format_duration(snap.elapsed_s)}: saved `{_display_path(path)}`"
            + (
                f" ({Path(snap.meta['out']).name} was taken meanwhile, and fine-tuned "
                "weights are never overwritten)"
                if renamed
                else ""
            )
            + f". It is now in the sidebar's model list as **{path.stem} "
            "(fine-tuned)**."
        )
        st.button(
            "Use it in the sidebar now",
            key="ft_use",
            on_click=_select_model,
            args=(f"{path.stem} (fine-tuned)",),
        )
        st.markdown(
            f"**Before and after**, on {res['config']['val_samples']} validation maps "
            "(simulated calibration seeds, the same maps both times):"
        )
        st.dataframe(
            _comparison(res["before"], res["after"]),
            hide_index=True,
        )
        _curves(snap.records, res["history"], "ft_done", before=res["before"])
        lab_view(path)
    elif snap.status == "cancelled":
        st.info(
            f"“{snap.name}” was cancelled after {format_duration(snap.elapsed_s)}. "
            "Nothing was written; the existing weights are untouched."
        )
    else:
        st.error(
            f"“{snap.name}” failed: {snap.error}\n\nNothing was written; the existing "
            "weights are untouched."
        )


def lab_view(path: Path) -> None:
    """A finished run on the loss lab's Pareto axes, scored on the lab's held-out maps."""
    lab = cache.lab_results()
    if not isinstance(lab, LabResults):
        st.caption(lab)
        return
    depth = str(lab.raw.get("moonshot", {}).get("depth", lab.depths[0]))
    where = lab.scores[depth]["label"]
    n_maps, _ = lab.test_maps
    if not st.toggle(
        f"Place this run on the loss lab's axes (scores it on the lab's {n_maps} held-out "
        f"maps at {where})",
        key="ft_lab_place",
        help="Where your coefficients landed beside the lab's losses: RMSE against DICEE "
        "and DPEAKS, on the maps the lab scored its models on. Runs the model on those "
        "maps once (loads TensorFlow; tens of seconds on CPU).",
    ):
        return
    try:
        point = cache.lab_point(str(path), lab, depth)
    except (ValueError, OSError) as exc:
        st.error(f"Could not score {path.name} on the lab's maps: {exc}")
        return
    mine = {"name": "yours", "label": f"{path.stem} (your run)", "group": "yours", **point}
    fig = pareto_figure({where: [*lab.points(depth), mine]}, highlight="yours", legend="bottom")
    st.plotly_chart(fig, key="ft_lab_pareto", theme=None)
    st.caption(
        f"Your run, {path.stem}, on the lab's {n_maps} held-out maps at {where}: "
        + ", ".join(
            f"{METRIC_LABELS.get(m, m).split(' ')[0]} {point[m][0]:.4g} ± {point[m][1]:.2g}"
            for m in ("rmse", "dicee", "dpeaks")
        )
        + " (mean ± bootstrap standard error). The other points are the lab's models, "
        "the shipped UNet, KS93 and Wiener on the same maps (Loss weights page, "
        "“What these weights did in training”)."
    )


def _select_model(name: str) -> None:
    st.session_state.model_name = name  # a callback runs before the sidebar is drawn


def job_panel(job_id: int | None, was_running: bool) -> None:
    """Status of this session's job, or of another session's running job.

    When the job that was running has ended, the whole app is redrawn before anything
    is drawn here: the Start button (outside this fragment), the sidebar's model list
    and the result then change together, with no stale "Cancelling…" or progress bar.
    """
    jobs = manager()
    running = jobs.running()
    if was_running and running is None:
        st.rerun()
    mine = jobs.get(job_id)
    if running is not None and running is not mine:
        busy_view(running.snapshot())
    elif mine is not None:
        snap = mine.snapshot()
        if snap.running:
            running_view(snap)
        else:
            finished_view(snap)


# === Page ===

sel = current()
st.markdown(
    "Retrain part of a UNet on freshly simulated maps, as the report did after its main "
    "training (all layers frozen except the last, loss 0.95 MultiFocal + 0.05 WMAPE). "
    "The run happens in the background: you can keep using the other pages. The new "
    "weights are saved only if the run finishes."
)
if not sel.is_tile:
    st.caption(
        f"The UNet trains on simulated {constants.NPIX} × {constants.NPIX} tiles, whatever "
        f"the sidebar shows: the selected {sel.shape[0]} × {sel.shape[1]} field is not "
        "used here. A fine-tuned model then reconstructs whole fields tile by tile."
    )

models, _ = cache.model_files()
if not models:
    st.warning(
        f"No weights to start from: put a .keras file in {cache.SHIPPED_WEIGHTS_DIR} "
        "(see the README) and reload."
    )
    st.stop()

running = manager().running()
busy = running is not None
if busy and running.id != st.session_state.get("ft_job"):
    st.warning(
        "Another session is fine-tuning on this server right now; you can prepare a "
        "run, and Start becomes available when it finishes (progress below)."
    )

left, right = st.columns(2, gap="large")
with left:
    st.subheader("Model and loss")
    start_name, start_path = weights_ui(models, sel.model_name)
    loss, coeffs, terms = loss_ui()
with right:
    st.subheader("Training")
    train_kwargs = training_ui()
    out = output_ui(start_path)

config_error = None
if loss == "combined" and not any(v > 0 for v in terms.values()):
    config_error = "Give at least one Combined term a weight above 0."
elif loss in ("multifocal", "combined") and not any(v > 0 for v in coeffs.values()):
    config_error = "Give at least one MultiFocal coefficient a value above 0."
if config_error:
    st.error(config_error)

clicked = st.button(
    "▶ Start fine-tuning",
    type="primary",
    key="ft_start_button",
    disabled=busy or out is None or config_error is not None,
    help="Disabled while a training job runs on this server." if busy else None,
)
if clicked:
    try:
        cfg = FinetuneConfig(loss=loss, coeffs=coeffs, combined_weights=terms, **train_kwargs)
    except ValueError as exc:
        st.error(f"Invalid settings: {exc}")
    else:
        start_job(start_name, start_path, out, cfg)

st.divider()
st.fragment(job_panel, run_every=1.0 if busy else None)(st.session_state.get("ft_job"), busy)
