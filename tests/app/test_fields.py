"""Whole fields in the app: the COSMOS field, an observed κ map, a FITS field upload, the
Null tests page, and the pages that work on tiles of a field."""

from __future__ import annotations

import base64
import io
import math

import numpy as np
import pytest
from astropy.io import fits

from lensviz import cosmos, data, fields, loss_weights, nulltests
from lensviz.simulate import observe_kappa
from tests.app.apptools import chart_specs, no_errors, npy_bytes, texts
from ui import cache
from ui.sidebar import Selection

SHAPE = (200, 300)
MASKED = np.s_[20:50, 200:260]


def _kappa() -> np.ndarray:
    """Three clusters on a 200 × 300 map, on a slightly negative background."""
    yy, xx = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    blobs = [(0.3, 60, 80, 6), (0.2, 140, 220, 9), (0.15, 100, 150, 4)]
    kappa = sum(a * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * s**2)) for a, y, x, s in blobs)
    return (kappa - 0.01).astype(np.float32)


def _mask() -> np.ndarray:
    mask = np.zeros(SHAPE, np.float32)
    mask[MASKED] = 1.0
    return mask


def _array(z) -> np.ndarray:
    """A heatmap's z from plotly JSON: a typed array ({dtype, bdata, shape}) or lists."""
    if isinstance(z, dict):
        shape = tuple(int(n) for n in str(z["shape"]).split(","))
        return np.frombuffer(base64.b64decode(z["bdata"]), z["dtype"]).reshape(shape)
    return np.array([[np.nan if v is None else v for v in row] for row in z], dtype=float)


def _figure_z(at, key: str) -> list[np.ndarray]:
    """The z arrays of the heatmaps of the grid ``key``, cell by cell, top to bottom
    (NaN where a pixel is grey)."""
    return [
        _array(t["z"])
        for cell in chart_specs(at, key)
        for t in cell["data"]
        if t["type"] == "heatmap"
    ]


def choose_cosmos(at):
    at.sidebar.radio(key="source").set_value("Real data: COSMOS").run()
    no_errors(at)
    return at


def observe(at, kappa_bytes=None, mask_bytes=None):
    at.sidebar.radio(key="source").set_value("Observe your κ map").run()
    kappa_bytes = npy_bytes(_kappa()) if kappa_bytes is None else kappa_bytes
    at.sidebar.file_uploader(key="observe_kappa").set_value(
        ("clusters.npy", kappa_bytes, "application/octet-stream")
    ).run()
    if mask_bytes is not None:
        at.sidebar.file_uploader(key="observe_mask").set_value(
            ("mask.npy", mask_bytes, "application/octet-stream")
        ).run()
    return at


# === COSMOS ===


def test_cosmos_is_a_sidebar_source_shown_whole_with_its_empty_pixels_grey(app):
    choose_cosmos(app)
    assert any(
        "real: COSMOS (HST) · 1 sample of 256 × 256 px · 0.352′ pixels with RA/Dec · no κ truth"
        in c
        for c in texts(app.sidebar.caption)
    )
    assert app.caption[0].value.startswith("real: COSMOS (HST) · sample 0: **cosmos**")
    assert any("Null tests" in i.value for i in app.info)  # no truth: where to go instead
    maps = _figure_z(app, "compare_kappa")
    assert len(maps) == 3  # UNet, Wiener, KS93; no truth
    empty = cosmos.load_cosmos().mask
    for z in maps:
        assert z.shape == (256, 256)
        np.testing.assert_array_equal(np.isnan(z), empty)  # grey exactly where no galaxy
    assert app.toggle(key="compare_uncertainty").disabled  # tiles only
    downloads = [b.proto.label for b in app.get("download_button")]
    assert downloads.count("κ as FITS") == 3 and downloads.count("κ figure (PNG)") == 3
    # Whole fields are always zero-padded, by the CLI's 64 px.
    assert any("zero-padded by 64 px" in c for c in texts(app.sidebar.caption))
    assert "ks93_pad" not in [t.key for t in app.sidebar.toggle]


@pytest.mark.parametrize("title", ["Peaks", "DICEE", "Evaluate", "Loss weights"])
def test_truth_pages_point_real_data_to_the_null_tests(app, open_page, title):
    open_page(choose_cosmos(app), title)
    assert len(app.error) == 1 and "Null tests" in app.error[0].value, texts(app.error)


def test_null_tests_of_cosmos_match_the_package(app, open_page):
    open_page(choose_cosmos(app), "Null tests")
    app.select_slider(key="null_n_noise").set_value(20).run()
    no_errors(app)
    table = app.table[0].value
    ks93_name = next(n for n in table.index if n.startswith("KS93"))
    assert list(table.index) == ["UNet", "Wiener (padded)", ks93_name]
    # The KS93 row is the package's null test of the same field and settings.
    field = cosmos.load_cosmos()
    sigma = float(ks93_name.split("σ ")[1].split(" px")[0])

    def reconstruct(e):
        return fields.ks93_field(e, sigma_px=sigma, pad=fields.FIELD_PAD_PX)

    direct = nulltests.null_tests({"ks93": reconstruct}, field.eps, ~field.mask, n_noise=20)
    assert table.loc[ks93_name, "E/B, footprint"] == pytest.approx(
        direct["ks93"]["e_over_b"], rel=1e-4
    )
    found = sum(p.false_alarm <= 0.05 for p in direct["ks93"]["peaks"])
    assert table.loc[ks93_name, "detections"] == found
    peaks = app.table[1].value
    rates = peaks.loc[ks93_name, "false alarm"].map(lambda s: float(s.split(" %")[0]))
    assert rates.is_monotonic_increasing  # highest first: "3.0 % (2.0–4.5 %)"
    assert "What can be trusted" in texts(app.subheader)
    pixels = f"{cosmos.COSMOS_PIXEL_ARCMIN:.3g}′ pixels"
    assert any(pixels in m.value for m in app.markdown)


# === Observed κ maps ===


def test_an_observed_kappa_map_is_the_truth_of_its_own_galaxies(app):
    observe(app, mask_bytes=npy_bytes(_mask()))
    no_errors(app)
    assert not app.sidebar.error
    assert any(
        "observed: clusters.npy (30 gal/arcmin², masked) · 1 sample of 200 × 300 px" in c
        for c in texts(app.sidebar.caption)
    )
    ds = cache.observed_dataset(
        ("clusters.npy", npy_bytes(_kappa())), ("mask.npy", npy_bytes(_mask())), 30.0
    )
    expected = observe_kappa(_kappa(), np.random.default_rng(0), 30.0, mask=_mask() > 0)
    np.testing.assert_array_equal(ds.eps[0], expected)
    np.testing.assert_array_equal(ds.kappa[0], _kappa())
    # Compare: truth and three reconstructions, the masked block grey in the predictions
    # (and in their residuals), never in the truth.
    truth, *rest = _figure_z(app, "compare_kappa")
    empty = fields.field_mask(ds.eps[0])  # the mask, and the pixels no galaxy fell in
    assert empty[MASKED].all() and 0 < empty.sum() - _mask().sum() < 100
    assert not np.isnan(truth).any()
    for m in rest:
        np.testing.assert_array_equal(np.isnan(m), empty)
    assert len(app.table[0].value) == 3  # metrics of the three methods, on the whole map


def test_bad_kappa_uploads_say_why_and_the_session_goes_on(app, open_page):
    observe(app, kappa_bytes=npy_bytes(np.zeros((2, 64, 64), np.float32)))
    assert any(
        "Could not observe the κ map" in e and "holds 2 κ maps" in e
        for e in texts(app.sidebar.error)
    )
    assert app.caption[0].value.startswith("simulated (seed 0)")  # the built-in set meanwhile
    observe(app, mask_bytes=npy_bytes(np.zeros((10, 10))))
    assert any(
        "the mask is (10, 10) but the κ map is (200, 300)" in e for e in texts(app.sidebar.error)
    )
    open_page(app, "Peaks")  # on the built-in set meanwhile
    assert not app.exception and not app.main.error


def test_pages_on_an_observed_field(app, open_page):
    observe(app)
    open_page(app, "Evaluate")
    no_errors(app)
    assert any("scored whole" in c.value for c in app.caption)
    open_page(app, "Peaks")
    no_errors(app)
    open_page(app, "DICEE")
    no_errors(app)
    open_page(app, "Loss weights")
    no_errors(app)
    assert any("one tile of it" in i.value for i in app.info)
    app.select_slider(key="lw_tile_y").set_value(0).run()
    app.select_slider(key="lw_tile_x").set_value(172).run()
    no_errors(app)
    grid = _figure_z(app, "lw_grid")
    assert all(m.shape == (128, 128) for m in grid)
    # The weights are those of that tile's true κ.
    focal = loss_weights.weight_maps(_kappa()[0:128, 172:300].astype(np.float64))["focal"]
    assert any(np.allclose(m, focal, atol=1e-6) for m in grid)
    open_page(app, "Fine-tune")
    assert any("is not used here" in c.value for c in app.caption)


def test_a_tile_of_a_selection_is_its_crop(weights):
    ds = cache.observed_dataset(("k.npy", npy_bytes(_kappa())), None, math.inf)
    sel = Selection(ds.label, ds.key, ds.eps, ds.kappa, ds.names, 0, "none", None)
    tile = sel.tile(40, 100)
    assert tile.is_tile and not sel.is_tile and tile.shape == (128, 128)
    np.testing.assert_array_equal(tile.sample_eps, ds.eps[0, 40:168, 100:228])
    np.testing.assert_array_equal(tile.sample_kappa, ds.kappa[0, 40:168, 100:228])
    assert tile.key != sel.key and tile.sample_name == "k (tile y 40, x 100)"
    with pytest.raises(ValueError, match="does not fit in 200 × 300 px"):
        sel.tile(100, 0)


# === A FITS field upload ===


def test_a_fits_field_upload_is_read_whole(app, open_page, tmp_path):
    kappa = _kappa()
    eps = observe_kappa(kappa, np.random.default_rng(1), 30.0)
    wcs = fits.Header(
        {
            "CTYPE1": "RA---TAN",
            "CTYPE2": "DEC--TAN",
            "CRVAL1": 150.1,
            "CRPIX1": 150.5,
            "CDELT1": 0.5 / 60,
            "CDELT2": 0.5 / 60,
        }
    )
    data.write_field_fits(tmp_path / "f.fits", eps, kappa, wcs)
    payload = (tmp_path / "f.fits").read_bytes()
    app.sidebar.radio(key="source").set_value("Upload a file").run()
    app.sidebar.file_uploader(key="upload").set_value(
        [("f.fits", payload, "application/fits")]
    ).run()
    no_errors(app)
    assert any("upload: f.fits · 1 sample of 200 × 300 px" in c for c in texts(app.sidebar.caption))
    ds = cache.uploaded_dataset((("f.fits", payload),))
    np.testing.assert_allclose(ds.eps[0], eps, atol=1e-7)
    np.testing.assert_array_equal(ds.kappa[0], kappa)
    # The WCS travels to the κ FITS downloads; the same for an observed κ map.
    assert ds.header["CRVAL1"] == 150.1 and app.session_state["_selection"].header == ds.header
    assert (ds.grid.pixel_arcmin, ds.grid.known) == (pytest.approx(0.5), True)
    raw = data.kappa_fits_bytes(kappa, ds.header)
    assert fits.getheader(io.BytesIO(raw))["CTYPE2"] == "DEC--TAN"
    buf = io.BytesIO()
    fits.PrimaryHDU(kappa, header=wcs).writeto(buf)
    observed = cache.observed_dataset(("k.fits", buf.getvalue()), None, 30.0)
    assert observed.header["CRPIX1"] == 150.5 and observed.note is None
    # A κ map whose WCS states other pixels than the sidebar's: the sidebar's side is
    # used (it made the galaxies), the WCS left out, and the sidebar says so.
    other = cache.observed_dataset(("k.fits", buf.getvalue()), None, 30.0, pixel_arcmin=0.25)
    assert other.header is None and other.pixel_arcmin == 0.25
    assert "disagrees" in other.note and "WCS left out" in other.note
    assert io.BytesIO(payload).read(6) == b"SIMPLE"
