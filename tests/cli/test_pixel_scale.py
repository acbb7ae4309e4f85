"""The pixel scale and WCS through the command line's writers, and the memory budget of
its settings (issues 18 and 21; the data-layer side of lensviz.data.sky and limits)."""

import numpy as np
import pytest
from astropy.io import fits

from lensviz import cosmos, data


def test_simulate_and_convert_store_the_pixel_scale(run_cli, tmp_path):
    status, _, err = run_cli("simulate", "--n", 2, "--out", tmp_path / "s.h5")
    assert status == 0, err
    grid = data.dataset_grid(tmp_path / "s.h5")
    assert (grid.pixel_arcmin, grid.known) == (0.5, True) and "HDF5 attribute" in grid.origin
    assert run_cli("convert", tmp_path / "s.h5", tmp_path / "c.h5")[0] == 0
    assert data.load_dataset(tmp_path / "c.h5").grid.known
    np.savez(tmp_path / "n.npz", epsilon=data.load_dataset(tmp_path / "s.h5").eps)
    assert run_cli("convert", tmp_path / "n.npz", tmp_path / "d.h5")[0] == 0
    assert not data.dataset_grid(tmp_path / "d.h5").known  # nothing stated, nothing invented


def test_observe_outputs_read_back_with_their_pixel_scale(run_cli, tmp_path):
    np.save(tmp_path / "k.npy", np.zeros((64, 96), np.float32))
    for name in ("f.fits", "f.npz", "f.h5"):
        argv = ["observe", tmp_path / "k.npy", "--pixel-arcmin", 0.29, "--n-gal", 30]
        status, _, err = run_cli(*argv, "--out", tmp_path / name)
        assert status == 0, err
        grid = data.load_dataset(tmp_path / name).grid
        assert grid.pixel_arcmin == pytest.approx(0.29) and grid.known, name
        assert grid.header is None  # an .npy κ map has no WCS: none is invented


def test_predict_cosmos_writes_the_measured_wcs(run_cli, tmp_path):
    out = tmp_path / "k.fits"
    status, stdout, err = run_cli("predict", "cosmos", "--method", "ks93", "--out", out)
    assert status == 0, err
    assert "with its WCS" in stdout
    with fits.open(out) as hdul:
        header = hdul[0].header
        assert header["CTYPE1"] == "RA---TAN" and header["CRVAL1"] == 150.1131843
        assert header["PIXARCM"] == pytest.approx(cosmos.COSMOS_PIXEL_ARCMIN)
    eps = cosmos.load_cosmos().eps
    g1, g2 = (fits.PrimaryHDU(eps[..., i].astype(np.float32)) for i in (0, 1))
    sigma = fits.PrimaryHDU(eps[..., 2].astype(np.float32))
    for name, hdu in (("g1", g1), ("g2", g2), ("s", sigma)):
        hdu.writeto(tmp_path / f"{name}.fits")
    spec = f"fits:{tmp_path / 'g1.fits'},{tmp_path / 'g2.fits'},sigma={tmp_path / 's.fits'}"
    status, stdout, err = run_cli("predict", spec, "--method", "ks93", "--out", tmp_path / "n.fits")
    assert status == 0, err
    assert "without WCS (the input has none)" in stdout and "with its WCS" not in stdout
    with fits.open(tmp_path / "n.fits") as hdul:
        assert "CTYPE1" not in hdul[0].header and "PIXARCM" not in hdul[0].header


def test_a_simulation_batch_beyond_the_budget_is_refused_before_it_starts(run_cli, tmp_path):
    status, _, err = run_cli(
        "simulate", "--n", 100000, "--batch", 100000, "--out", tmp_path / "x.h5"
    )
    assert status != 0
    assert "simulate --batch 100000: simulating 100000 samples" in err
    assert "use batches of at most 1410 samples (--batch 1410)" in err
    assert list(tmp_path.iterdir()) == []  # no file, no temporary
    argv = ["predict", "sim:5000", "--method", "ks93", "--batch", 5000]
    status, _, err = run_cli(*argv, "--out", tmp_path / "p.h5")
    assert status != 0 and "sim:5000: simulating 5000 samples" in err and "(--batch" in err
    assert list(tmp_path.iterdir()) == []
