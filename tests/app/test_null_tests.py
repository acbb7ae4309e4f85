"""The Null tests page: its results come from the cache on every later visit."""

from __future__ import annotations

from lensviz import nulltests
from tests.app.apptools import no_errors, open_page, write_detections
from tests.app.test_fields import choose_cosmos
from ui import cache
from ui.text import percent


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


def test_peaks_show_calibrated_heights_sky_positions_and_false_alarm_intervals(calibrated):
    """On COSMOS: each peak's height with its calibrated error bars, where it is in
    arcmin and RA/Dec, and its false-alarm rate with its Wilson interval; the B outliers
    are the package's count."""
    open_page(choose_cosmos(calibrated), "Null tests")
    no_errors(calibrated)
    at = calibrated
    assert at.select_slider(key="null_n_noise").value == 20  # the stable number measured
    sel = at.session_state["_selection"]
    results = cache.null_test_results(sel, 20)
    e_over_b = at.table[0].value
    for name, r in results.items():
        assert e_over_b.loc[name, "|B| > 3 noise rms"] == r["b_outlier_share"]
        assert e_over_b.loc[name, "detections"] == sum(p.detected for p in r["peaks"])
    table = at.table[1].value
    assert "RA, Dec" in table.columns and "(x, y) arcmin" in table.columns
    _, std, hw95 = cache.unet_errorbars(sel)
    top = sorted(results["UNet"]["peaks"], key=lambda p: -p.height)[0]
    row = table.loc[["UNet"]].iloc[0]
    assert row["κ ± σ̂ (95.4 %)"] == (
        f"{top.height:.3f} ± {std[top.y, top.x]:.3f} (± {hw95[top.y, top.x]:.3f})"
    )
    lo, hi = nulltests.wilson_interval(round(top.false_alarm * 20), 20)
    assert row["false alarm"] == f"{percent(top.false_alarm)} ({percent(lo)[:-2]}–{percent(hi)})"
    ra, dec = sel.grid.wcs.pixel_to_world_values(top.x, top.y)
    assert row["RA, Dec"] == f"{float(ra):.4f}°, {float(dec):+.4f}°"


def test_the_default_number_of_noise_maps_comes_from_the_benchmark(tmp_path, monkeypatch):
    path = write_detections(tmp_path / "d.json", {50: 0.8, 100: 0.92, 200: 0.97, 400: 1.0})
    monkeypatch.setattr(cache, "DETECTIONS_BENCHMARK", path)
    n, why = cache.default_noise_realisations()
    assert n == 200  # the UNet's agreement at 100 is 0.87 (< 0.9)
    assert why.startswith("200 by default: from 200 noise maps on, two noise seeds agree")
    write_detections(path, {50: 0.5, 100: 0.6})
    n, why = cache.default_noise_realisations()
    assert n == 100 and "even there two noise seeds did not agree" in why
    monkeypatch.setattr(cache, "DETECTIONS_BENCHMARK", tmp_path / "missing.json")
    n, why = cache.default_noise_realisations()
    assert n == cache.FALLBACK_NOISE_REALISATIONS and "not on this server" in why
