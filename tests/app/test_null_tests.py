"""The Null tests page: its results come from the cache on every later visit."""

from __future__ import annotations

from tests.app.apptools import no_errors, open_page
from tests.app.test_fields import choose_cosmos
from ui import cache


def test_a_revisit_replays_the_cached_results_without_an_error(app):
    """Null tests → Compare → Null tests in one session: the second visit reads every
    method's results from the cache (a progress bar updated inside a cached function
    made this a CacheReplayClosureError)."""
    open_page(choose_cosmos(app), "Null tests")
    app.select_slider(key="null_n_noise").set_value(20).run()
    no_errors(app)
    first = app.table[0].value
    open_page(app, "Compare")
    no_errors(app)
    open_page(app, "Null tests")
    app.select_slider(key="null_n_noise").set_value(20).run()
    no_errors(app)
    assert app.table[0].value.equals(first)


def test_progress_names_each_method_with_an_estimate(app):
    choose_cosmos(app)
    sel = app.session_state["_selection"]
    calls = []
    cache.null_test_results(sel, 20, on_method=lambda *a: calls.append(a))
    assert [(i, n, name) for i, n, name, _ in calls] == [
        (0, 3, "UNet"),
        (1, 3, "Wiener (padded)"),
        (2, 3, next(c[2] for c in calls if c[2].startswith("KS93"))),
    ]
    seconds = {name: s for _, _, name, s in calls}
    assert all(s > 0 for s in seconds.values())
    # 22 reconstructions at the measured time of one (two maps timed once per server).
    methods = cache.null_test_methods(sel)
    key, reconstruct = methods["Wiener (padded)"]
    assert seconds["Wiener (padded)"] == 22 * cache.reconstruction_seconds(sel, key, reconstruct)
