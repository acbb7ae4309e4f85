"""The shared sidebar: data sources, uploads, models, and a selection that survives every
page switch, the programmatic one of Evaluate's row click included."""

from __future__ import annotations

import io
import pickle
import shutil

import numpy as np
import pytest

from lensviz import data
from lensviz.nn.inference import save_model
from lensviz.nn.unet import build_unet
from lensviz.simulate import simulate_batch
from tests.app.apptools import (
    TINY,
    challenge_pair,
    new_session,
    no_errors,
    npy_bytes,
    texts,
    upload,
)
from ui import cache
from ui.sidebar import DEFAULT_SAMPLE


def click_evaluate_row(at, row: int, open_page) -> None:
    """What a click on row ``row`` of Evaluate's per-sample table does (AppTest cannot
    click: the table's selection state is set as the browser would set it)."""
    open_page(at, "Evaluate")
    no_errors(at)
    state = at.session_state
    pick_round = state["eval_pick_round"] if "eval_pick_round" in state else 0
    state[f"eval_pick_{pick_round}"] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    at.run()
    no_errors(at)
    assert at.title[0].value == "Compare"


# === The selection survives Evaluate's row click (st.switch_page) ===


def test_row_click_keeps_the_seed_and_the_ks93_settings(app, open_page):
    app.sidebar.number_input(key="sim_seed").set_value(7).run()
    app.sidebar.toggle(key="ks93_auto").set_value(False).run()  # the slider instead of the rule
    app.sidebar.slider(key="ks93_sigma").set_value(1.5).run()
    click_evaluate_row(app, 3, open_page)
    assert app.sidebar.number_input(key="sim_seed").value == 7
    assert app.sidebar.number_input(key="sample_index").value == 3
    assert app.sidebar.slider(key="ks93_sigma").value == 1.5
    name = cache.builtin_dataset(7).names[3]
    assert name.startswith("sim_") and name != cache.builtin_dataset(0).names[3]
    assert any(
        c.startswith(f"simulated (seed 7) · sample 3: **{name}**") for c in texts(app.caption)
    )
    assert "KS93 (σ 1.5 px)" in app.table[0].value.index


def test_row_click_keeps_the_model(app, open_page, weights):
    shipped, _ = weights
    other = shipped.parent / "two_models"
    if not other.exists():
        other.mkdir()
        shutil.copy(shipped / "tiny.keras", other / "a_tiny.keras")
        save_model(build_unet(TINY), other / "b_tiny.keras")
        shutil.copy(shipped / "kappa_power.npz", other / "kappa_power.npz")
    cache.SHIPPED_WEIGHTS_DIR = other  # undone by the weights fixture's monkeypatch
    at = new_session()
    assert at.sidebar.selectbox(key="model_name").value == "a_tiny (shipped)"
    at.sidebar.selectbox(key="model_name").set_value("b_tiny (shipped)").run()
    click_evaluate_row(at, 2, open_page)
    assert at.sidebar.selectbox(key="model_name").value == "b_tiny (shipped)"
    assert any(c.endswith("model: b_tiny (shipped)") for c in texts(at.caption))


def test_row_click_keeps_the_upload(app, open_page):
    rng = np.random.default_rng(11)
    pairs = [challenge_pair(rng) for _ in range(3)]
    eps = np.concatenate([np.load(io.BytesIO(e))[None] for e, _ in pairs])
    kappa = np.concatenate([np.load(io.BytesIO(k))[None] for _, k in pairs])
    buf = io.BytesIO()
    np.savez(
        buf, epsilon=np.moveaxis(eps, 1, -1).astype(np.float32), kappa=kappa.astype(np.float32)
    )
    upload(app, [("three.npz", buf.getvalue())])
    no_errors(app)
    assert any("upload: three.npz · 3 samples" in c for c in texts(app.sidebar.caption))
    click_evaluate_row(app, 2, open_page)
    assert any("upload: three.npz" in c for c in texts(app.caption))
    assert app.sidebar.radio(key="source").value == "Upload a file"
    assert app.sidebar.number_input(key="sample_index").value == 2
    # The maps are the uploaded ones: the single true peak sits at (50, 70).
    open_page(app, "Peaks")
    assert app.table[0].value.iloc[0]["true (y, x)"] == "(50, 70)"


def test_switching_the_source_away_forgets_the_upload(app):
    eps_bytes, kappa_bytes = challenge_pair(np.random.default_rng(7))
    upload(app, [("e.npy", eps_bytes), ("k.npy", kappa_bytes)])
    app.sidebar.radio(key="source").set_value("Built-in simulated set").run()
    app.sidebar.radio(key="source").set_value("Upload a file").run()
    assert any("Upload a file to continue" in i for i in texts(app.sidebar.info))


# === Data sources ===


def test_default_sample_is_the_representative_one(app):
    assert app.sidebar.number_input(key="sample_index").value == DEFAULT_SAMPLE


def test_one_sample_upload_is_singular_without_random_button(app, open_page):
    eps_bytes, kappa_bytes = challenge_pair(np.random.default_rng(7))
    # Both files are called 00087_00323.npy, as in EPSILON/ and KAPPA/.
    upload(app, [("00087_00323.npy", kappa_bytes), ("00087_00323.npy", eps_bytes)])
    assert not app.sidebar.error, texts(app.sidebar.error)
    captions = texts(app.sidebar.caption)
    assert any("upload: " in c and "· 1 sample" in c and "1 samples" not in c for c in captions), (
        captions
    )
    assert any(
        "ε (3 channels) from the second file" in c and "κ from the first file" in c
        for c in captions
    ), captions
    assert not [b for b in app.sidebar.button if b.key == "random_sample"]
    assert not [n for n in app.sidebar.number_input if n.key == "sample_index"]
    for page in ("Compare", "Loss weights", "Peaks", "DICEE", "Evaluate", "Learn"):
        open_page(app, page)
        no_errors(app)
    open_page(app, "Peaks")
    assert app.table[0].value.iloc[0]["true (y, x)"] == "(50, 70)"


def test_epsilon_only_upload_stops_truth_pages_with_an_error(app, open_page):
    eps_bytes, _ = challenge_pair(np.random.default_rng(8))
    upload(app, [("only_eps.npy", eps_bytes)])
    assert any("no κ truth" in c for c in texts(app.sidebar.caption))
    for page in ("Loss weights", "Peaks", "DICEE", "Evaluate"):
        open_page(app, page)
        assert not app.exception, page
        assert any("needs the true κ map" in e.value for e in app.error), page


def test_bad_upload_shows_an_error_and_the_session_keeps_working(app, open_page):
    upload(app, [("wrong.npy", npy_bytes(np.zeros((2, 64, 64), np.float32)))])
    assert not app.exception
    assert any(
        "Could not use the upload" in e and "(2, 64, 64)" in e for e in texts(app.sidebar.error)
    )
    for page in ("Compare", "Peaks"):  # the built-in set, and every page says why
        open_page(app, page)
        assert not app.exception
        said = texts(app.main.warning)
        assert any(
            w.startswith(
                "**Showing the built-in simulated set (seed 0)**, because the upload "
                "failed: wrong.npy"
            )
            for w in said
        ), said
    assert app.table


def test_no_upload_yet_is_said_on_the_page(app):
    app.sidebar.radio(key="source").set_value("Upload a file").run()
    no_errors(app)
    assert any("because no file is uploaded yet" in i for i in texts(app.main.info))


def test_two_epsilon_files_name_both_and_the_real_cause(app):
    eps_a, _ = challenge_pair(np.random.default_rng(1))
    eps_b, _ = challenge_pair(np.random.default_rng(2))
    upload(app, [("EPS_a.npy", eps_a), ("EPS_b.npy", eps_b)])
    assert not app.exception
    (error,) = texts(app.sidebar.error)
    assert "EPS_a.npy and EPS_b.npy are both ε files" in error, error
    assert "a pair is one ε file (3, ny, nx) and one κ file (ny, nx)" in error
    assert any("EPS_a.npy and EPS_b.npy are both ε files" in w for w in texts(app.main.warning))


def test_a_kappa_map_upload_points_to_observe(app):
    _, kappa = challenge_pair(np.random.default_rng(3))
    upload(app, [("KAPPA_7.npy", kappa)])
    (error,) = texts(app.sidebar.error)
    assert "KAPPA_7.npy holds one map without ε channels, a κ map" in error, error
    assert "“Observe your κ map”" in error


def test_uploaded_pair_is_read_in_either_order():
    eps_bytes, kappa_bytes = challenge_pair(np.random.default_rng(9))
    for files in (
        (("e.npy", eps_bytes), ("k.npy", kappa_bytes)),
        (("k.npy", kappa_bytes), ("e.npy", eps_bytes)),
    ):
        ds = cache.uploaded_dataset(files)
        assert ds.eps.shape == (1, 128, 128, 3) and ds.eps.dtype == np.float32
        assert ds.kappa.shape == (1, 128, 128)
        assert not ds.eps.flags.writeable  # shared by sessions: never mutated
        assert len(ds.names) == 1


def _h5_bytes_corrupt() -> bytes:
    return b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 8


@pytest.mark.parametrize(
    "files, error, message",
    [
        ((("eps.npy", npy_bytes(np.zeros((3, 32, 32), np.float16))),), ValueError, "(3, 32, 32)"),
        ((("eps.npy", npy_bytes(np.full((3, 128, 128), np.nan, np.float32))),), ValueError, "NaN"),
        ((("eps.npy", npy_bytes(np.array([{"a": 1}], dtype=object))),), ValueError, "eps.npy"),
        ((("eps.npy", pickle.dumps(np.zeros((3, 128, 128)))),), ValueError, "eps.npy"),
        ((("eps.npy", npy_bytes(np.zeros((3, 128, 128), np.int32))),), TypeError, "int32"),
        ((("data.h5", _h5_bytes_corrupt()),), ValueError, "data.h5"),
        (
            (
                ("e.npy", npy_bytes(np.zeros((3, 128, 128), np.float16))),
                ("k.npy", npy_bytes(np.zeros((64, 64), np.float16))),
            ),
            ValueError,
            "64 × 64",
        ),
        ((("a.npy", b"1"), ("b.npy", b"2"), ("c.npy", b"3")), ValueError, "got 3 files"),
    ],
)
def test_uploads_are_refused_clearly(files, error, message):
    with pytest.raises(error) as info:
        cache.uploaded_dataset(files)
    assert message in str(info.value)


# === Models ===


def test_temporary_files_are_never_listed_and_non_finite_models_are_ignored(weights):
    shipped, user = weights
    shutil.copy(shipped / "tiny.keras", user / ".run.keras.abc123.tmp.keras")
    shutil.copy(shipped / "tiny.keras", user / "good.keras")
    model = build_unet(TINY)
    model.set_weights([np.full_like(w, np.nan) for w in model.get_weights()])
    save_model(model, user / "diverged.keras")
    at = new_session()
    options = at.sidebar.selectbox(key="model_name").options
    assert options == ["tiny (shipped)", "good (fine-tuned)"]
    assert any("diverged.keras" in w and "non-finite" in w for w in texts(at.sidebar.warning))
    models, ignored = cache.model_files()
    assert list(ignored) == ["diverged.keras"]
    assert not any(".tmp" in p for p in models.values())


# === Survey depth and the UNet's training domain ===


def test_depth_control_reobserves_the_same_clusters_and_moves_the_ks93_rule(app):
    before = app.session_state["_selection"]
    app.sidebar.selectbox(key="sim_depth").set_value("noise-free").run()
    no_errors(app)
    sel = app.session_state["_selection"]
    np.testing.assert_array_equal(sel.kappa, before.kappa)  # the same κ at every depth
    assert float(np.abs(sel.eps[..., 2]).max()) in (0.0, 1.0)  # Δε = 0, or 1 where empty
    assert sel.depth == "noise-free" and sel.key != before.key
    assert sel.ks93_sigma_px < before.ks93_sigma_px  # less noise, less smoothing
    app.sidebar.selectbox(key="sim_depth").set_value("custom").run()
    app.sidebar.number_input(key="sim_n_gal").set_value(300.0).run()
    no_errors(app)
    assert app.session_state["_selection"].depth == "300"
    assert any("300 gal/arcmin²" in c for c in texts(app.sidebar.caption))


def test_a_sample_outside_the_unet_training_domain_gets_a_warning(app, weights):
    # The tiny test UNet records no domain and has the raw inputs of the old shipped
    # model, so it is taken to know LSST depth only: no warning there, one without noise.
    assert not [w for w in app.warning if "may be wrong" in w.value]
    app.sidebar.selectbox(key="sim_depth").set_value("noise-free").run()
    no_errors(app)
    warned = [w.value for w in app.warning if "may be wrong" in w.value]
    assert len(warned) == 1 and "no shape noise" in warned[0]


def test_server_datasets_are_listed_and_read_whole(weights, tmp_path, monkeypatch):
    """The server source lists the data directory's datasets (HDF5, npz, a FITS field,
    challenge folders), never hidden files, and reads only names it listed."""
    eps, kappa = simulate_batch(3, 0)
    data.write_hdf5(tmp_path / "three.h5", eps, kappa)
    field = np.concatenate([eps[0], eps[1]], axis=1)  # a 128 × 256 field
    data.write_field_fits(tmp_path / "wide.fits", field, np.concatenate([kappa[0], kappa[1]], 1))
    (tmp_path / ".hidden.h5").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not data")
    monkeypatch.setattr(cache, "DATA_DIR", tmp_path)
    assert cache.server_dataset_names() == ["three.h5", "wide.fits"]
    with pytest.raises(ValueError, match="not a dataset under the configured data directory"):
        cache.server_dataset("../three.h5")
    at = new_session()
    at.sidebar.radio(key="source").set_value("Server dataset").run()
    at.sidebar.selectbox(key="server_dataset").set_value("wide.fits").run()
    no_errors(at)
    assert any(
        "server: wide.fits · 1 sample of 128 × 256 px" in c for c in texts(at.sidebar.caption)
    )


def test_the_loss_labs_models_are_listed_after_the_others_under_their_own_name(weights, lab):
    shipped, user = weights
    shutil.copy(shipped / "tiny.keras", user / "good.keras")
    (lab / "mf_no_peaks.keras").unlink()  # a variant whose file is missing is not offered
    at = new_session()
    options = at.sidebar.selectbox(key="model_name").options
    assert options == [
        "tiny (shipped)",
        "good (fine-tuned)",
        "mse (loss lab)",
        "multifocal (loss lab)",
        "ft_dicee (loss lab)",
    ]
    at.sidebar.selectbox(key="model_name").set_value("multifocal (loss lab)").run()
    assert not at.exception
    assert cache.model_files()[0]["multifocal (loss lab)"] == str(lab / "multifocal.keras")
