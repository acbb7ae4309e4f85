"""The Evaluate page: summary, distributions, per-sample table and the row click."""

from __future__ import annotations

import numpy as np

from tests.app.apptools import challenge_pair, new_session, no_errors, texts, upload
from ui import cache


def _tables(at):
    summary = at.table[0].value  # static: every column shows at any width
    per_sample = [d.value for d in at.dataframe if "sample" in d.value.columns]
    return summary, per_sample


def test_summary_histograms_and_per_sample_table(app, open_page):
    open_page(app, "Evaluate")
    no_errors(app)
    summary, per_sample = _tables(app)
    smoothed = next(m for m in summary.index if "smoothed" in m)
    # Methods as rows, metrics as columns, "mean ± s.e." with one decimal count per metric.
    assert list(summary.index) == ["UNet", "Wiener", "KS93 raw", smoothed]
    assert list(summary.columns) == ["WMAPE ↓", "DICEE ↓", "DPEAKS [px] ↓", "RMSE ↓", "Pearson r ↑"]
    for column, decimals in zip(summary.columns, (2, 3, 1, 4, 3)):
        for cell in summary[column]:
            mean, se = cell.removesuffix(" ★").split(" ± ")
            assert len(mean.split(".")[1]) == decimals and len(se.split(".")[1]) == decimals
        assert sum(cell.endswith("★") for cell in summary[column]) == 1
    assert len(per_sample) == 1 and len(per_sample[0]) == cache.BUILTIN_SAMPLES
    assert any("Summary over 24 maps" in s for s in texts(app.subheader))

    app.slider(key="eval_n").set_value(6).run()
    no_errors(app)
    assert any("Summary over 6 maps" in s for s in texts(app.subheader))
    assert len(_tables(app)[1][0]) == 6


def test_without_weights_only_ks93_and_wiener_are_scored(no_weights, open_page):
    at = new_session()
    open_page(at, "Evaluate")
    assert not at.exception
    assert any("only KS93" in i for i in texts(at.info))
    assert "UNet" not in set(_tables(at)[0].index)


def test_row_click_opens_the_sample_on_compare(app, open_page):
    open_page(app, "Evaluate")
    # AppTest cannot click a row: set the table's selection state, as the browser does.
    app.session_state["eval_pick_0"] = {"selection": {"rows": [5], "columns": [], "cells": []}}
    app.run()
    no_errors(app)
    assert app.title[0].value == "Compare"
    assert app.sidebar.number_input(key="sample_index").value == 5


def test_one_map_has_no_standard_error(app, open_page):
    eps_bytes, kappa_bytes = challenge_pair(np.random.default_rng(7))
    upload(app, [("e.npy", eps_bytes), ("k.npy", kappa_bytes)])
    open_page(app, "Evaluate")
    no_errors(app)
    assert "Summary over 1 map" in texts(app.subheader)
    summary = app.table[0].value
    assert not any("±" in cell for cell in summary.to_numpy().ravel())
    assert any("no standard error" in c for c in texts(app.caption))
    assert not app.get("plotly_chart")  # no distribution of one value


def test_metrics_against_depth(app, open_page):
    open_page(app, "Evaluate")
    no_errors(app)
    app.toggle(key="eval_depths").set_value(True).run()
    no_errors(app)
    app.select_slider(key="eval_depth_n").set_value(8).run()
    no_errors(app)
    specs = [c.proto.spec for c in app.get("plotly_chart")]
    depth = [s for s in specs if "galaxies per arcmin" in s]
    assert len(depth) == 1
    for method in ("UNet", "Wiener", "KS93 smoothed", "KS93 raw"):
        assert f'"name":"{method}"' in depth[0]
    by_depth = cache.metrics_by_depth(app.session_state["_selection"], ("10", "inf"), 8)
    rmse = {d: r["summary"]["ks93_raw"]["rmse"]["mean"] for d, r in by_depth.items()}
    assert rmse["inf"] < rmse["10"] / 3  # the same fields: no noise, far smaller errors
