"""The command line of error bars and pixel scales: ``predict`` and ``evaluate`` with
``--uncertainty calibrated`` and ``--pixel-arcmin``; ``simulate --size/--pixel-arcmin/--fields``.
"""

import h5py
import numpy as np
import pytest
from astropy.io import fits

from lensviz import data
from lensviz.errorbars import default_error_models, linear_errorbars
from lensviz.evaluation import default_power_spectrum, ks93_predictor
from lensviz.training_data import training_sample
from lensviz.wiener import PowerSpectrum


def test_predict_calibrated_error_bars_of_ks93_and_wiener(tmp_path, run_cli, dataset):
    path, eps, _ = dataset
    signal = PowerSpectrum.load(default_power_spectrum())
    models = default_error_models()
    for method, extra in (("ks93", ("--sigma", 2)), ("wiener", ())):
        out = tmp_path / f"{method}.h5"
        status, _, err = run_cli(
            "predict", path, "--method", method, *extra, "--uncertainty", "calibrated", "--out", out
        )
        assert status == 0, err
        std, hw95 = data.read_prediction_errorbars(out)
        kappa, _, attrs = data.read_predictions(out)
        assert std.shape == hw95.shape == kappa.shape and attrs["uncertainty"] == "calibrated"
        assert np.all(hw95 > std) and np.all(std > 0)
        sigma = 2.0 if method == "ks93" else 0.0
        want = linear_errorbars(eps[0], models[method], signal, sigma)
        np.testing.assert_allclose(std[0], want[0], rtol=1e-5)
        np.testing.assert_allclose(hw95[0], want[1], rtol=1e-5)
    np.testing.assert_allclose(
        data.read_predictions(tmp_path / "ks93.h5")[0], ks93_predictor(2.0)(eps), atol=1e-6
    )


def test_predict_refuses_the_unets_spread_for_a_linear_method(tmp_path, run_cli, dataset):
    path, _, _ = dataset
    status, _, err = run_cli(
        "predict",
        path,
        "--method",
        "ks93",
        "--uncertainty",
        "mc_dropout",
        "--out",
        tmp_path / "x.h5",
    )
    assert status != 0 and "calibrated" in err and not (tmp_path / "x.h5").exists()


def test_predict_fits_field_with_std_and_hw95_extensions(tmp_path, run_cli):
    out = tmp_path / "c.fits"
    status, stdout, err = run_cli(
        "predict", "cosmos", "--method", "wiener", "--uncertainty", "calibrated", "--out", out
    )
    assert status == 0, err
    assert "STD and HW95" in stdout
    with fits.open(out) as hdul:
        names = [h.name for h in hdul]
        assert names == ["PRIMARY", "STD", "HW95", "MASK"]
        assert hdul["STD"].data.shape == hdul[0].data.shape == (256, 256)
        assert np.all(hdul["HW95"].data >= hdul["STD"].data)
        assert "CRVAL1" in hdul["STD"].header  # the WCS travels with the error bars


def test_predict_takes_the_pixel_scale_of_data_without_one(tmp_path, run_cli, dataset):
    path, eps, _ = dataset
    out = tmp_path / "w.h5"
    status, _, err = run_cli(
        "predict", path, "--method", "wiener", "--pixel-arcmin", 1.0, "--out", out
    )
    assert status == 0, err
    kappa, _, attrs = data.read_predictions(out)
    assert attrs["pixel_arcmin"] == 1.0
    from lensviz.evaluation import wiener_predictor

    np.testing.assert_allclose(kappa, wiener_predictor()(eps, pixel_arcmin=1.0), atol=1e-6)
    assert not np.allclose(kappa, wiener_predictor()(eps), atol=1e-4)  # S at 1′ differs


def test_evaluate_reports_the_coverage_of_both_bands(run_cli, dataset):
    path, _, _ = dataset
    status, out, err = run_cli("evaluate", path, "--no-unet", "--uncertainty", "calibrated")
    assert status == 0, err
    assert "±kappa_std" in out and "±kappa_hw95" in out
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line[:1].isalpha()}
    for method in ("ks93_raw", "ks93_smoothed", "wiener"):
        share68 = float(lines[method][1].rstrip("%")) / 100
        share95 = float(lines[method][2].rstrip("%")) / 100
        assert 0.5 < share68 < 0.85 and 0.85 < share95 <= 1.0  # 6 maps: near 68 % and 95 %


def test_simulate_size_and_pixel_scale(tmp_path, run_cli):
    out = tmp_path / "f.h5"
    status, stdout, err = run_cli(
        "simulate", "--n", 2, "--size", 96, "--pixel-arcmin", 0.3, "--n-gal", 50, "--out", out
    )
    assert status == 0, err
    eps, kappa, _ = data.read_hdf5(out)
    assert eps.shape == (2, 96, 96, 3) and "0.3′" in stdout
    assert data.dataset_grid(out).pixel_arcmin == 0.3
    status, _, err = run_cli("simulate", "--n", 1, "--size", 4000, "--out", tmp_path / "g.h5")
    assert status != 0 and "2048" in err


def test_simulate_fields_writes_the_training_set_of_the_field_aware_unet(tmp_path, run_cli):
    out = tmp_path / "t.h5"
    status, _, err = run_cli(
        "simulate", "--n", 2, "--seed", 1_000_000, "--fields", "--b-modes", "--out", out
    )
    assert status == 0, err
    with h5py.File(out) as f:
        np.testing.assert_array_equal(f["features"][1], training_sample(1_000_001)["features"])
        assert "features_b" in f
    status, _, err = run_cli(
        "simulate", "--n", 2, "--fields", "--masks", "--out", tmp_path / "u.h5"
    )
    assert status != 0 and "--masks" in err and not (tmp_path / "u.h5").exists()
    status, _, err = run_cli("simulate", "--n", 2, "--b-modes", "--out", tmp_path / "v.h5")
    assert status != 0 and "--fields" in err


@pytest.mark.parametrize("bad", ["0", "-1", "nan"])
def test_pixel_arcmin_must_be_a_positive_number(run_cli, dataset, tmp_path, bad):
    path, _, _ = dataset
    out = tmp_path / "p.h5"
    status, _, err = run_cli(
        "predict", path, "--method", "ks93", "--pixel-arcmin", bad, "--out", out
    )
    assert status == 2 and "pixel side" in err and not out.exists()
