"""The whole-field commands and specs: observe, the cosmos and fits: data specs, predict
and evaluate on fields that are not 128 × 128."""

import numpy as np
import pytest
from astropy.io import fits

from lensviz import constants, data, fields
from lensviz.cli.fields import field_spec
from lensviz.simulate import SimulationConfig, simulate_truth


@pytest.fixture(scope="module")
def kappa_files(tmp_path_factory):
    """A 200 × 150 κ map (.npy and .fits with a WCS) and a mask, seeded."""
    root = tmp_path_factory.mktemp("kappa")
    kappa = simulate_truth(3, SimulationConfig(npix=200))["kappa"][:, :150]
    np.save(root / "k.npy", kappa)
    header = fits.Header(
        {
            "CTYPE1": "RA---TAN",
            "CTYPE2": "DEC--TAN",
            "CRVAL1": 150.0,
            "CRVAL2": 2.0,
            "CRPIX1": 75.5,
            "CRPIX2": 100.5,
            "CDELT1": -0.5 / 60,
            "CDELT2": 0.5 / 60,
        }
    )
    fits.PrimaryHDU(kappa, header=header).writeto(root / "k.fits")
    mask = np.zeros(kappa.shape, np.uint8)
    mask[50:60, 20:40] = 1
    np.save(root / "m.npy", mask.astype(bool))
    fits.PrimaryHDU(mask).writeto(root / "m.fits")
    return root, kappa, mask.astype(bool)


def _observe(run_cli, root, out, *extra):
    return run_cli(
        "observe",
        root / "k.npy",
        "--pixel-arcmin",
        0.5,
        "--n-gal",
        30,
        "--mask",
        root / "m.npy",
        "--seed",
        4,
        "--out",
        out,
        *extra,
    )


def test_observe_writes_every_whole_field_format_alike(run_cli, kappa_files, tmp_path):
    root, kappa, mask = kappa_files
    cubes = {}
    for name in ("f.fits", "f.npz", "f.h5"):
        status, out, err = _observe(run_cli, root, tmp_path / name)
        assert status == 0, err
        assert "one 200 × 150 field; 0.7% of the pixels empty or masked" in out
        eps, k, names = data.load_dataset(tmp_path / name)
        np.testing.assert_array_equal(k[0], kappa)
        cubes[name] = eps[0]
    np.testing.assert_array_equal(cubes["f.fits"], cubes["f.npz"])  # same seed, same ε
    np.testing.assert_array_equal(cubes["f.h5"], cubes["f.npz"])
    eps = cubes["f.fits"]
    assert np.all(eps[mask, 2] == constants.EMPTY_PIXEL_SIGMA) and np.all(eps[mask, :2] == 0)
    with fits.open(tmp_path / "f.fits") as hdul:
        assert hdul[0].header["NGAL"] == 30 and hdul[0].header["PIXSCALE"] == 0.5


def test_observe_fits_keeps_the_wcs_and_cuts_tiles(run_cli, kappa_files, tmp_path):
    root, kappa, _ = kappa_files
    status, out, err = run_cli(
        "observe",
        root / "k.fits",
        "--pixel-arcmin",
        0.5,
        "--n-gal",
        "inf",
        "--mask",
        root / "m.fits",
        "--out",
        tmp_path / "o.fits",
    )
    assert status == 0, err
    field = data.read_field_fits(tmp_path / "o.fits")
    assert field.header["CRVAL1"] == 150.0 and field.header["CDELT2"] == 0.5 / 60
    assert np.all(field.eps[~field.mask, 2] == 0)  # no shape noise: Δε = 0
    status, out, _ = run_cli(
        "observe",
        root / "k.npy",
        "--pixel-arcmin",
        0.5,
        "--n-gal",
        100,
        "--out",
        tmp_path / "tiles",
    )
    assert status == 0 and "1 tiles of 128 × 128 (the last 72 rows and 22 columns" in out
    eps, k, names = data.read_challenge_dir(tmp_path / "tiles")
    assert names == ["k_y0000_x0000"]
    np.testing.assert_array_equal(k[0], kappa[:128, :128].astype(np.float16))


def test_observe_errors(run_cli, kappa_files, tmp_path):
    root, kappa, _ = kappa_files
    np.save(tmp_path / "m2.npy", np.zeros((10, 10), bool))
    status, _, err = run_cli(
        "observe",
        root / "k.npy",
        "--pixel-arcmin",
        0.5,
        "--n-gal",
        30,
        "--mask",
        tmp_path / "m2.npy",
        "--out",
        tmp_path / "x.fits",
    )
    assert status == 2 and "m2.npy: the mask is (10, 10) but the κ map is (200, 150)" in err
    (tmp_path / "k.txt").write_text("1")
    status, _, err = run_cli(
        "observe",
        tmp_path / "k.txt",
        "--pixel-arcmin",
        0.5,
        "--n-gal",
        30,
        "--out",
        tmp_path / "x.fits",
    )
    assert status == 2 and "unsupported κ file '.txt'" in err
    status, _, err = run_cli(
        "observe", root / "k.npy", "--pixel-arcmin", -1, "--n-gal", 30, "--out", tmp_path / "x.fits"
    )
    assert status == 2 and "expected a finite number > 0" in err
    np.save(tmp_path / "small.npy", kappa[:64, :100])
    status, _, err = run_cli(
        "observe",
        tmp_path / "small.npy",
        "--pixel-arcmin",
        0.5,
        "--n-gal",
        30,
        "--out",
        tmp_path / "t",
    )
    assert status == 2 and "a 64 × 100 map holds no 128 × 128 tile" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.txt", "m2.npy", "small.npy"]
    _observe(run_cli, root, tmp_path / "y.fits")
    status, _, err = _observe(run_cli, root, tmp_path / "y.fits")
    assert status == 2 and "already exists; use --overwrite" in err


def test_cosmos_and_fits_specs(run_cli, tmp_path):
    eps, kappa, names = field_spec("cosmos")
    assert eps.shape == (1, 256, 256, 3) and kappa is None and names == ["cosmos"]
    assert field_spec("sim:3") is None and field_spec("x.h5") is None
    status, out, err = run_cli(
        "predict", "cosmos", "--method", "ks93", "--sigma", 2, "--out", tmp_path / "p.h5"
    )
    assert status == 0, err
    pred, names, _ = data.read_predictions(tmp_path / "p.h5")
    assert pred.shape == (1, 256, 256) and names == ["cosmos"]
    # The pixels without galaxies stay marked in the output.
    np.testing.assert_array_equal(
        data.read_prediction_mask(tmp_path / "p.h5")[0], fields.field_mask(eps[0])
    )
    g = eps[0]
    for i, name in enumerate(("g1", "g2", "s")):
        fits.PrimaryHDU(g[..., i]).writeto(tmp_path / f"{name}.fits")
    spec = f"fits:{tmp_path / 'g1.fits'},{tmp_path / 'g2.fits'},sigma={tmp_path / 's.fits'}"
    got, _, names = field_spec(spec)
    np.testing.assert_array_equal(got[0], g)
    assert names == ["g1"]
    for bad, match in [
        ("fits:a.fits", "expected fits:G1,G2"),
        ("fits:a.fits,b.fits,weights=c.fits", r"unknown \['weights'\]"),
        ("fits:a.fits,b.fits,counts=c.fits,sigma_e=x", "sigma_e must be"),
    ]:
        with pytest.raises(ValueError, match=match):
            field_spec(bad)


def test_predict_and_evaluate_whole_fields_with_the_unet(
    run_cli, tiny_weights, tmp_path, kappa_files
):
    root, kappa, _ = kappa_files
    _observe(run_cli, root, tmp_path / "f.h5")
    status, out, err = run_cli(
        "predict", tmp_path / "f.h5", "--weights", tiny_weights, "--out", tmp_path / "p.h5"
    )
    assert status == 0, err
    pred = data.read_predictions(tmp_path / "p.h5")[0]
    assert pred.shape == (1, 200, 150) and np.isfinite(pred).all()
    status, out, err = run_cli("evaluate", tmp_path / "f.h5", "--weights", tiny_weights)
    assert status == 0, err
    assert "unet" in out and "ks93_smoothed" in out


def test_predict_writes_one_fields_kappa_to_fits_with_its_wcs_and_mask(
    run_cli, kappa_files, tmp_path
):
    root, _, mask = kappa_files
    field_file = tmp_path / "field.fits"
    status, _, err = _observe(run_cli, root, tmp_path / "tmp.fits")  # no WCS from .npy
    assert status == 0, err
    observed = data.read_field_fits(tmp_path / "tmp.fits")
    with fits.open(root / "k.fits") as hdul:
        header = hdul[0].header
    data.write_field_fits(field_file, observed.eps, observed.kappa, header)
    status, out, err = run_cli(
        "predict",
        field_file,
        "--method",
        "ks93",
        "--sigma",
        3,
        "--pad",
        64,
        "--out",
        tmp_path / "k.fits",
    )
    assert status == 0, err
    assert "the 200 × 150 κ map" in out and "MASK extension" in out
    kappa, written = data.read_kappa_fits(tmp_path / "k.fits")
    np.testing.assert_allclose(kappa, fields.ks93_field(observed.eps, 3.0, pad=64), atol=1e-7)
    assert written["CRVAL1"] == 150.0 and written["CTYPE2"] == "DEC--TAN"  # the input's WCS
    assert written["METHOD"] == "ks93" and written["SIGMA_PX"] == 3.0
    with fits.open(tmp_path / "k.fits") as hdul:
        np.testing.assert_array_equal(hdul["MASK"].data.astype(bool), observed.mask)
    assert observed.mask[mask].all()
    # Only one field fits in a κ FITS file; many maps go to HDF5.
    status, _, err = run_cli("predict", "sim:2", "--method", "ks93", "--out", tmp_path / "s.fits")
    assert status == 2 and "a FITS output holds one field's κ" in err
    assert not (tmp_path / "s.fits").exists()
    status, _, err = run_cli("predict", "cosmos", "--method", "ks93", "--out", tmp_path / "p.png")
    assert status == 2 and "expected an output ending in .h5/.hdf5 (HDF5, any data) or .fits" in err
