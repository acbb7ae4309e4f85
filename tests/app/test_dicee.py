"""The DICEE page: confusion maps and counts of the above-mean masks."""

from __future__ import annotations

import numpy as np
import pytest

from tests.app.apptools import no_errors


def test_counts_and_value_for_each_method(app, open_page):
    open_page(app, "DICEE")
    no_errors(app)
    table = app.dataframe[0].value
    assert list(table.index) == ["UNet", "Wiener", "KS93 (σ 4 px)"]
    counts = table[["TP", "TN", "FP", "FN"]].sum(axis=1)
    assert (counts == 128 * 128).all()
    tp, fp, fn = table["TP"], table["FP"], table["FN"]
    np.testing.assert_allclose(table["DICEE"], 1 - tp / (tp + 0.5 * fp + 0.5 * fn))
    for name in ("Wiener", "KS93 (σ 4 px)"):  # mean 0: the mass-sheet degeneracy
        assert table.loc[name, "threshold mean(P)"] == pytest.approx(0.0, abs=1e-6)
