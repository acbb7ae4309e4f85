"""lensviz.data.sky and the pixel scale of every layout (issue 18); FITS header safety
(issue 21, item 4)."""

import io
import warnings

import h5py
import numpy as np
import pytest
from astropy.io import fits

from lensviz import data
from lensviz.data import DataError, DataWarning, PixelGrid
from lensviz.data.fits import ascii_text, header_cards, header_grid
from lensviz.data.sky import check_pixel_arcmin, valid_wcs


def _tan(cdelt_deg=0.29 / 60, **extra) -> fits.Header:
    h = fits.Header()
    h["CTYPE1"], h["CTYPE2"] = "RA---TAN", "DEC--TAN"
    h["CRPIX1"], h["CRPIX2"] = 32.5, 32.5
    h["CRVAL1"], h["CRVAL2"] = 35.0, -5.0
    h["CDELT1"], h["CDELT2"] = -cdelt_deg, cdelt_deg
    for key, value in extra.items():
        h[key] = value
    return h


def _eps(ny=64, nx=80):
    eps = np.zeros((1, ny, nx, 3), np.float32)
    eps[..., 2] = 0.1
    return eps


# === The pixel scale of a header ===


def test_pixel_scale_from_cdelt_cd_and_units():
    assert header_grid(_tan(0.29 / 60), "a").pixel_arcmin == pytest.approx(0.29)
    # a CD matrix with a rotation of 30°: the side is still 0.4′
    c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
    side = 0.4 / 60
    cd = fits.Header({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN"})
    cd["CD1_1"], cd["CD1_2"], cd["CD2_1"], cd["CD2_2"] = -side * c, side * s, side * s, side * c
    assert header_grid(cd, "cd").pixel_arcmin == pytest.approx(0.4)
    # a bare CDELT is in degrees; CUNIT arcmin is honoured
    assert header_grid(fits.Header({"CDELT1": 0.01, "CDELT2": 0.01}), "b").pixel_arcmin == (
        pytest.approx(0.6)
    )
    arcmin = fits.Header({"CDELT1": 0.25, "CDELT2": 0.25, "CUNIT1": "arcmin", "CUNIT2": "arcmin"})
    assert header_grid(arcmin, "c").pixel_arcmin == pytest.approx(0.25)
    # no WCS: the PIXARCM card lensviz writes, else the default, marked unknown
    assert header_grid(fits.Header({"PIXARCM": 0.7}), "d").pixel_arcmin == 0.7
    none = header_grid(fits.Header({"OBJECT": "x"}), "e")
    assert (none.pixel_arcmin, none.known, none.header) == (0.5, False, None)
    # a PIXSCALE card (arcsec in most instruments' headers) is not read
    assert not header_grid(fits.Header({"PIXSCALE": 18.0}), "f").known


def test_non_square_pixels_give_the_geometric_mean_with_a_warning():
    h = _tan()
    h["CDELT1"] = -0.4 / 60
    with pytest.warns(DataWarning, match=r"r\.fits: the WCS has pixels of 0\.4′ × 0\.29′"):
        assert header_grid(h, "r.fits").pixel_arcmin == pytest.approx(np.sqrt(0.4 * 0.29))


@pytest.mark.parametrize(
    ("card", "value", "words"),
    [
        ("CRVAL1", "NAN", "CRVAL1 is not a valid FITS card"),
        ("CRVAL1", "INF", "CRVAL1 is not a valid FITS card"),
        ("CTYPE1", "'RA-\x1b-TAN'", "CTYPE1 is not a valid FITS card"),
        ("CDELT1", "0.0", r"astropy\.wcs cannot use it \(SingularMatrixError"),
        ("CTYPE1", "'RA---XYZ'", "astropy.wcs cannot use it"),
    ],
)
def test_an_invalid_wcs_is_left_out_on_reading_and_writing(tmp_path, card, value, words):
    raw = bytearray(data.kappa_fits_bytes(np.zeros((64, 64)), _tan()))
    at = raw.find(card.ljust(8).encode() + b"= ")
    raw[at : at + 80] = f"{card:<8}= {value:>20}".ljust(80).encode("latin-1")
    with pytest.warns(DataWarning, match=rf"bad\.fits: its WCS is invalid \({words}"):
        kappa, header = data.read_kappa_fits(bytes(raw), "bad.fits")
    assert not any(k.startswith(("CTYPE", "CRVAL", "CDELT")) for k in header)
    assert not header_grid(header, "bad.fits").known
    # writing: the raw header (as another program would hand it) cannot make it fail
    loose = fits.Header.fromstring(bytes(raw[:2880]).decode("latin-1"))
    with pytest.warns(DataWarning, match="its WCS is invalid"):
        data.write_kappa_fits(tmp_path / "k.fits", kappa, loose)
    with fits.open(tmp_path / "k.fits") as hdul:
        assert "CRPIX1" not in hdul[0].header  # no partial WCS either


def test_valid_wcs_keeps_only_wcs_cards():
    kept = valid_wcs(_tan(OBSERVER="someone", EXPTIME=3.0), "x")
    assert list(kept) == ["CTYPE1", "CTYPE2", "CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2"] + [
        "CDELT1",
        "CDELT2",
    ]
    assert valid_wcs(fits.Header({"OBJECT": "x"}), "x") is None
    assert valid_wcs(None, "x") is None


def test_check_pixel_arcmin_bounds():
    assert check_pixel_arcmin(np.float32(0.25), "x") == 0.25
    for bad in (0, -1, np.nan, np.inf, 61, 0.001, True, "0.5", None):
        with pytest.raises(DataError, match="x: the pixel scale"):
            check_pixel_arcmin(bad, "x")


def test_a_given_scale_fills_in_and_never_contradicts():
    assert PixelGrid().given(0.3, "s").pixel_arcmin == 0.3
    assert PixelGrid().given(0.3, "s").known and PixelGrid().given(None, "s").known is False
    stated = PixelGrid(0.352, True, "the FITS WCS")
    assert stated.given(0.3521, "s") is stated  # within 1 %: the data's value stays
    with pytest.raises(DataError, match=r"s: the data state 0\.352′ per pixel \(the FITS WCS\)"):
        stated.given(0.5, "s")
    with pytest.raises(DataError, match="--pixel-arcmin"):
        PixelGrid().given(-2, "s")


# === Every layout carries its pixel scale ===


def test_every_layout_reads_and_writes_its_pixel_scale(tmp_path, make_challenge_dir):
    eps = _eps()
    kappa = np.zeros((1, 64, 80), np.float32)
    data.write_hdf5(tmp_path / "a.h5", eps, kappa, ["a"], attrs={"pixel_arcmin": 0.29})
    np.savez(tmp_path / "b.npz", epsilon=eps, pixel_arcmin=0.36)
    data.write_field_fits(tmp_path / "c.fits", eps, kappa, _tan(0.25 / 60))
    data.write_field_fits(tmp_path / "d.fits", eps, kappa, pixel_arcmin=0.7)  # no WCS
    np.save(tmp_path / "e.npy", eps)
    make_challenge_dir(tmp_path / "f", np.zeros((1, 128, 128, 3)), np.zeros((1, 128, 128)), ["x"])
    np.savez(tmp_path / "g.npz", epsilon=eps)
    expected = {
        "a.h5": (0.29, True, "HDF5 attribute"),
        "b.npz": (0.36, True, ".npz array"),
        "c.fits": (0.25, True, "FITS WCS"),
        "d.fits": (0.7, True, "FITS card PIXARCM"),
        "e.npy": (0.5, False, "default"),
        "f": (0.5, False, "challenge"),
        "g.npz": (0.5, False, "default"),
    }
    for name, (scale, known, origin) in expected.items():
        for grid in (data.load_dataset(tmp_path / name).grid, data.dataset_grid(tmp_path / name)):
            assert grid.pixel_arcmin == pytest.approx(scale), name
            assert grid.known == known and origin in grid.origin, (name, grid.origin)
        if (tmp_path / name).is_file():
            upload = data.load_upload(name, (tmp_path / name).read_bytes())
            assert upload.pixel_arcmin == pytest.approx(scale) and upload.pixel_known == known
    fits_field = data.load_dataset(tmp_path / "c.fits")
    assert fits_field.wcs.wcs.ctype[0] == "RA---TAN" and fits_field.header["CRVAL2"] == -5.0
    assert data.load_dataset(tmp_path / "a.h5").wcs is None
    # the override: data without a scale take it, data with one must agree
    assert data.load_dataset(tmp_path / "e.npy", pixel_arcmin=0.2).pixel_arcmin == 0.2
    assert data.dataset_grid(tmp_path / "f", pixel_arcmin=0.2).known
    with pytest.raises(DataError, match=r"a\.h5: the data state 0\.29′"):
        data.load_dataset(tmp_path / "a.h5", pixel_arcmin=0.5)
    # unpacks as the tuple it replaces
    e, k, names = data.load_dataset(tmp_path / "a.h5")
    assert e.shape == (1, 64, 80, 3) and names == ["a"]


@pytest.mark.parametrize("value", [np.array([0.3, 0.4]), np.array("x"), np.array(-1.0)])
def test_a_bad_npz_pixel_scale_is_refused(tmp_path, value):
    np.savez(tmp_path / "p.npz", epsilon=_eps(), pixel_arcmin=value)
    with pytest.raises(DataError, match=r"p\.npz \[pixel_arcmin\]"):
        data.load_dataset(tmp_path / "p.npz")


@pytest.mark.parametrize("value", [np.array([0.3, 0.4]), "half", 1e9])
def test_a_bad_hdf5_pixel_scale_is_refused(tmp_path, value):
    path = tmp_path / "p.h5"
    data.write_hdf5(path, _eps())
    with h5py.File(path, "r+") as f:
        f.attrs["pixel_arcmin"] = value
    with pytest.raises(DataError, match=r"p\.h5: attribute 'pixel_arcmin'"):
        data.load_dataset(path)
    with pytest.raises(DataError, match="pixel scale"):
        data.write_hdf5(tmp_path / "q.h5", _eps(), attrs={"pixel_arcmin": -1.0})
    assert not (tmp_path / "q.h5").exists()


# === Writing FITS headers cannot fail ===


def test_ascii_text_spells_out_what_lensviz_writes():
    assert ascii_text("KS93 (σ 4 px)") == "KS93 (sigma 4 px)"
    assert ascii_text("Wiener (pad 64 px, 0.352′)") == "Wiener (pad 64 px, 0.352')"
    assert ascii_text("Δε ≤ 1 × 2 — κ²") == "Deltaeps <= 1 x 2 - kappa2"
    assert ascii_text("Zürich\n\x1b[2J") == "Zurich??[2J"
    assert ascii_text("本") == "?"


def test_header_cards_make_any_attribute_writable():
    attrs = {
        "METHOD": "KS93 (σ 4 px)",
        "weights": "/srv/lensviz/weights/lite.keras",  # a server path: only its name
        "source": "data/run 1/x.h5",  # a relative path is what the user typed
        "NGAL": float("inf"),
        "SIGMA": np.float32(0.26),
        "SEED": np.int64(3),
        "MASKED": np.bool_(True),
        "sample name": "é\x1b[2J",
        "NAXIS": 3,
        "NOTE": ("x" * 3000, "a long one"),
        "PIXSCALE": (0.5, "arcmin per pixel"),
    }
    with pytest.warns(DataWarning, match=r"out\.fits: the card NAXIS describes the file"):
        cards = {c.keyword: c for c in header_cards(attrs, "out.fits")}
    assert cards["METHOD"].value == "KS93 (sigma 4 px)"
    assert cards["WEIGHTS"].value == "lite.keras"
    assert cards["SOURCE"].value == "data/run 1/x.h5"
    assert cards["NGAL"].value == "inf" and cards["SEED"].value == 3 and cards["MASKED"].value
    assert cards["SAMPLE_NAME"].value == "e?[2J" and "NAXIS" not in cards
    assert cards["PIXSCALE"].comment == "arcmin per pixel" and len(cards["NOTE"].value) == 2000
    with pytest.warns(DataWarning, match="NAXIS"):
        raw = data.kappa_fits_bytes(np.zeros((64, 64)), _tan(), attrs=attrs, pixel_arcmin=0.29)
    with fits.open(io.BytesIO(raw)) as hdul:
        header = hdul[0].header
        assert header["WEIGHTS"] == "lite.keras" and header["NAXIS"] == 2
        assert header["PIXARCM"] == 0.29 and header["CTYPE1"] == "RA---TAN"
        hdul.verify("exception")


def test_a_non_ascii_name_and_path_write_and_a_refused_map_leaves_nothing(tmp_path):
    out = tmp_path / "κ map ñ.fits"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing here needs a warning
        data.write_kappa_fits(out, np.zeros((64, 64)), attrs={"DATA": "sample κ-1 ñ"})
    with fits.open(out) as hdul:
        assert hdul[0].header["DATA"] == "sample kappa-1 n"
        assert "CTYPE1" not in hdul[0].header  # no WCS in, none out
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(DataError, match="NaN"):
        data.write_kappa_fits(tmp_path / "nan.fits", np.full((64, 64), np.nan))
    with pytest.raises(DataError, match="pixel scale"):
        data.write_kappa_fits(tmp_path / "p.fits", np.zeros((64, 64)), pixel_arcmin=0.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no file, no temporary
