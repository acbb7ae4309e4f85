"""The Peaks page: true and predicted peaks, and the DPEAKS breakdown per method."""

from __future__ import annotations

import re

from tests.app.apptools import no_errors


def test_breakdown_sums_to_dpeaks_for_each_method(app, open_page):
    open_page(app, "Peaks")
    no_errors(app)
    dpeaks = [m for m in app.metric if m.label == "DPEAKS"]
    assert [s.value for s in app.subheader] == ["UNet", "Wiener", "KS93 (σ 4 px)"]
    assert len(dpeaks) == 3
    sums = [c.value for c in app.caption if re.fullmatch(r"\d+( \+ \d+)* = \d+ px", c.value)]
    assert len(sums) == 3
    for card, line in zip(dpeaks, sums):
        parts = [int(v) for v in re.findall(r"\d+", line)]
        assert sum(parts[:-1]) == parts[-1]
        assert card.value == f"{parts[-1]} px"
    table = app.table[0].value  # rank by rank, method by method
    assert list(table.index) == ["UNet"] * 3 + ["Wiener"] * 3 + ["KS93 (σ 4 px)"] * 3
    assert list(table["rank"]) == [1, 2, 3] * 3
    for i, card in enumerate(dpeaks):
        rows = table.iloc[3 * i : 3 * i + 3]
        assert rows["|Δy| + |Δx|"].sum() == int(card.value.split()[0])
