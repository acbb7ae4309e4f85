"""The Null tests page: its results come from the cache on every later visit."""

from __future__ import annotations

from tests.app.apptools import no_errors, open_page
from tests.app.test_fields import choose_cosmos


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
