"""The Evaluate page: summary, distributions, per-sample table and the row click."""

from __future__ import annotations

from tests.app.apptools import new_session, no_errors, texts
from ui import cache


def _tables(at):
    summary = next(d.value for d in at.dataframe if "method" in d.value.columns)
    per_sample = [d.value for d in at.dataframe if "sample" in d.value.columns]
    return summary, per_sample


def test_summary_histograms_and_per_sample_table(app, open_page):
    open_page(app, "Evaluate")
    no_errors(app)
    summary, per_sample = _tables(app)
    smoothed = next(m for m in summary["method"] if "smoothed" in m)
    assert set(summary["method"]) == {"UNet", "Wiener", "KS93 raw", smoothed}
    assert len(summary) == 4 * 5  # five metrics per method
    assert {"mean", "median", "std", "± s.e. (bootstrap)"} <= set(summary.columns)
    assert (summary["± s.e. (bootstrap)"] >= 0).all()
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
    assert "UNet" not in set(_tables(at)[0]["method"])


def test_row_click_opens_the_sample_on_compare(app, open_page):
    open_page(app, "Evaluate")
    # AppTest cannot click a row: set the table's selection state, as the browser does.
    app.session_state["eval_pick_0"] = {"selection": {"rows": [5], "columns": [], "cells": []}}
    app.run()
    no_errors(app)
    assert app.title[0].value == "Compare"
    assert app.sidebar.number_input(key="sample_index").value == 5
