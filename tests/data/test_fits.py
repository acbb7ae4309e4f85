"""lensviz.data.fits: shear images in, κ maps out, exact round trips, hostile files."""

import io
import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from lensviz import constants, data
from lensviz.cosmos import COSMOS_DIR
from lensviz.data import fits as lfits
from lensviz.data import limits

EMPTY = constants.EMPTY_PIXEL_SIGMA


def _wcs_header(ny=96, nx=80) -> fits.Header:
    h = fits.Header()
    h["WCSAXES"] = 2
    h["CTYPE1"], h["CTYPE2"] = "RA---TAN", "DEC--TAN"
    h["CRPIX1"], h["CRPIX2"] = nx / 2 + 0.5, ny / 2 + 0.5
    h["CRVAL1"], h["CRVAL2"] = 150.1163, 2.2007  # COSMOS
    h["CD1_1"], h["CD1_2"], h["CD2_1"], h["CD2_2"] = -0.00617, 0.0, 0.0, 0.00617
    h["CUNIT1"], h["CUNIT2"] = "deg", "deg"
    h["RADESYS"] = "ICRS"
    h["OBSERVER"] = "not a WCS card"
    return h


def _image(path, array, header=None):
    fits.PrimaryHDU(np.asarray(array), header=header).writeto(path)
    return path


@pytest.fixture
def shear(tmp_path):
    """g1, g2 (float32), counts (int16), a mask, and the files; seeded."""
    rng = np.random.default_rng(3)
    ny, nx = 96, 80
    counts = rng.poisson(3.0, (ny, nx)).astype(np.int16)
    g1 = rng.normal(0, 0.15, (ny, nx)).astype(np.float32)
    g2 = rng.normal(0, 0.15, (ny, nx)).astype(np.float32)
    mask = np.zeros((ny, nx), np.uint8)
    mask[10:14, 20:30] = 1
    files = {
        "g1": _image(tmp_path / "g1.fits", g1, _wcs_header()),
        "g2": _image(tmp_path / "g2.fits", g2),
        "counts": _image(tmp_path / "n.fits", counts),
        "mask": _image(tmp_path / "m.fits", mask),
    }
    return {"g1": g1, "g2": g2, "counts": counts, "mask": mask, "files": files}


# === Shear images ===


def test_counts_give_delta_e_and_empty_pixels(shear):
    f = shear["files"]
    field = data.read_shear_fits(f["g1"], f["g2"], counts=f["counts"], mask=f["mask"], sigma_e=0.3)
    eps, n = field.eps, shear["counts"].astype(np.float64)
    assert eps.shape == (96, 80, 3) and eps.dtype == np.float32 and field.sigma_e == 0.3
    empty = (n == 0) | (shear["mask"] == 1)
    assert np.array_equal(field.mask, empty)
    np.testing.assert_array_equal(eps[~empty, 2], np.float32(0.3 / np.sqrt(n[~empty])))
    np.testing.assert_array_equal(eps[~empty, 0], shear["g1"][~empty])
    assert np.all(eps[empty, :2] == 0) and np.all(eps[empty, 2] == EMPTY)
    assert field.header["CTYPE1"] == "RA---TAN"


def test_sigma_e_is_estimated_from_single_galaxy_pixels(shear):
    f = shear["files"]
    field = data.read_shear_fits(f["g1"], f["g2"], counts=f["counts"])
    one = shear["counts"] == 1
    expected = np.sqrt(
        0.5
        * (shear["g1"][one].astype(np.float64).var() + shear["g2"][one].astype(np.float64).var())
    )
    assert one.sum() >= lfits.MIN_SINGLE_GALAXY_PIXELS
    assert field.sigma_e == pytest.approx(expected, rel=1e-12)
    # Too few single-galaxy pixels: σ_e² = ⟨N (g1² + g2²)/2⟩ over the pixels with galaxies.
    g = np.full((64, 64), 0.1)
    assert lfits.estimate_sigma_e(g, g, np.full((64, 64), 4.0)) == pytest.approx(0.2)


def test_sigma_map_nan_and_mask(tmp_path, shear):
    sigma = np.full((96, 80), 0.1, np.float32)
    sigma[0, 0] = np.nan
    sigma[1, 1] = 2.0
    g1 = shear["g1"].copy()
    g1[2, 2] = np.nan
    field = data.read_shear_fits(
        _image(tmp_path / "a.fits", g1),
        shear["files"]["g2"],
        sigma=_image(tmp_path / "s.fits", sigma),
    )
    assert field.sigma_e is None
    assert set(map(tuple, np.argwhere(field.mask))) == {(0, 0), (1, 1), (2, 2)}
    assert field.eps[5, 5, 2] == np.float32(0.1) and field.eps[2, 2, 0] == 0


def test_the_cosmos_files_read_as_the_readme_says():
    root = COSMOS_DIR
    field = data.read_shear_fits(
        root / "cosmos_g1.fits", root / "cosmos_g2.fits", counts=root / "cosmos_countmap.fits"
    )
    assert field.eps.shape == (256, 256, 3)
    assert 1 - field.mask.mean() == pytest.approx(0.67, abs=0.005)
    assert field.sigma_e == pytest.approx(0.28, abs=0.005)


# === Round trips and WCS ===


def test_field_file_round_trips_exactly(tmp_path):
    rng = np.random.default_rng(4)
    eps = rng.normal(0, 0.1, (70, 130, 3)).astype(np.float32)
    eps[..., 2] = np.abs(eps[..., 2])
    eps[5:9, 5:9] = (0.0, 0.0, EMPTY)
    kappa = rng.normal(0, 0.05, (70, 130)).astype(np.float32)
    path = tmp_path / "f.fits"
    data.write_field_fits(path, eps, kappa, _wcs_header(70, 130), attrs={"NGAL": 30.0})
    field = data.read_field_fits(path)
    np.testing.assert_array_equal(field.eps, eps)
    np.testing.assert_array_equal(field.kappa, kappa)
    assert field.header["CRVAL1"] == 150.1163 and "OBSERVER" not in field.header
    e, k, names = data.load_dataset(path)
    np.testing.assert_array_equal(e[0], eps)
    assert names == ["f"] and data.dataset_length(path) == 1
    e, k, names = data.load_upload("up.fits", path.read_bytes())
    np.testing.assert_array_equal(k[0], kappa)


def test_kappa_file_keeps_the_wcs_and_the_mask(tmp_path, shear):
    field = data.read_shear_fits(
        *(shear["files"][k] for k in ("g1", "g2")),
        counts=shear["files"]["counts"],
        mask=shear["files"]["mask"],
    )
    kappa = np.random.default_rng(5).normal(0, 0.03, (96, 80)).astype(np.float32)
    path = tmp_path / "kappa.fits"
    data.write_kappa_fits(path, kappa, field.header, field.mask, attrs={"METHOD": "unet"})
    back, header = data.read_kappa_fits(path)
    np.testing.assert_array_equal(back, kappa)
    for key in ("CTYPE1", "CTYPE2", "CRPIX1", "CRVAL2", "CD1_1", "CD2_2", "RADESYS"):
        assert header[key] == field.header[key], key
    assert header["METHOD"] == "unet" and header["BUNIT"] == "kappa"
    sky_in = WCS(field.header).pixel_to_world(10, 20)
    sky_out = WCS(header).pixel_to_world(10, 20)
    assert sky_in.separation(sky_out).arcsec < 1e-9
    with fits.open(path) as hdul:
        np.testing.assert_array_equal(hdul["MASK"].data.astype(bool), field.mask)


def test_writers_never_leave_a_partial_file(tmp_path):
    path = tmp_path / "k.fits"
    bad = np.zeros((64, 64), np.float32)
    bad[3, 3] = np.nan
    with pytest.raises(data.DataError, match=r"k\.fits \[kappa\].*NaN"):
        data.write_kappa_fits(path, bad)
    assert list(tmp_path.iterdir()) == []
    data.write_kappa_fits(path, np.ones((64, 64)))
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="already exists"):
        data.write_kappa_fits(path, np.zeros((64, 64)))
    with pytest.raises(data.DataError, match=r"the mask is \(64, 32\)"):
        data.write_kappa_fits(path, np.zeros((64, 64)), mask=np.zeros((64, 32)), overwrite=True)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["k.fits"]
    with pytest.raises(ValueError, match=r"must end in \.fits"):
        data.write_kappa_fits(tmp_path / "k.npy", np.zeros((64, 64)))


# === Bad and hostile files ===


def _raw_fits(cards: list[str], data_bytes: bytes = b"") -> bytes:
    header = "".join(c.ljust(80) for c in [*cards, "END"])
    header = header.ljust(-(-len(header) // 2880) * 2880).encode("ascii")
    return header + data_bytes


def _primary(naxes=(64, 64), bitpix=-32, extra=()) -> list[str]:
    cards = [
        f"{'SIMPLE':<8}= {'T':>20}",
        f"{'BITPIX':<8}= {bitpix:>20}",
        f"{'NAXIS':<8}= {len(naxes):>20}",
    ]
    cards += [f"{'NAXIS' + str(i + 1):<8}= {n:>20}" for i, n in enumerate(naxes)]
    return cards + list(extra)


@pytest.mark.parametrize(
    "raw, error, match",
    [
        (b"not a fits file at all" * 200, data.DataError, r"does not start with the card"),
        (_raw_fits(_primary())[:2000], data.DataError, r"header 0 is truncated"),
        (_raw_fits(_primary(), bytes(1000)), data.DataError, r"ends 15384 bytes early"),
        (
            _raw_fits(_primary((10**6, 10**6, 10**3)), bytes(2880)),
            data.LimitError,
            r"HDU 0 declares 3\.73e\+06 GiB",
        ),
        (_raw_fits(_primary(bitpix=24), bytes(64 * 64 * 3)), data.DataError, r"BITPIX = 24"),
        (
            _raw_fits(_primary((64, 64, 2)), bytes(64 * 64 * 8)),
            data.DataError,
            r"image of shape \(2, 64, 64\)",
        ),
        (
            _raw_fits(_primary((32, 64)), bytes(32 * 64 * 4)),
            data.DataError,
            r"64 to 2048 pixels a side",
        ),
        (
            _raw_fits(_primary(bitpix=16), bytes(64 * 64 * 2)),
            data.DataTypeError,
            r"holds integers \(BITPIX = 16\)",
        ),
        (
            _raw_fits(_primary(extra=[f"{'HISTORY':<8} x"] * 3700), bytes(64 * 64 * 4)),
            data.LimitError,
            r"longer than 100 blocks",
        ),
    ],
)
def test_bad_files_get_one_clear_error(raw, error, match):
    with pytest.raises(error, match=r"^g1\.fits: .*" + match):
        lfits.read_image(raw, "g1.fits", floats_only=True)


def test_non_ascii_headers_are_refused():
    raw = bytearray(_raw_fits(_primary(), bytes(64 * 64 * 4)))
    raw[400] = 0xE9
    with pytest.raises(data.DataError, match="not ASCII"):
        lfits.read_image(bytes(raw), "x.fits")


def test_too_many_hdus_and_compressed_images(tmp_path):
    hdus = [fits.PrimaryHDU()] + [
        fits.ImageHDU(np.zeros((2, 2), np.float32)) for _ in range(limits.MAX_FITS_HDUS)
    ]
    fits.HDUList(hdus).writeto(tmp_path / "many.fits")
    with pytest.raises(data.LimitError, match=r"many\.fits: holds more than 16 HDUs"):
        lfits.read_image(tmp_path / "many.fits")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits.HDUList(
            [fits.PrimaryHDU(), fits.CompImageHDU(np.zeros((64, 64), np.float32))]
        ).writeto(tmp_path / "comp.fits")
    with pytest.raises(data.UnsafeFileError, match=r"comp\.fits: HDU 1 is a tile-compressed"):
        lfits.read_image(tmp_path / "comp.fits")


def test_inconsistent_inputs(tmp_path, shear):
    f = shear["files"]
    small = _image(tmp_path / "small.fits", np.zeros((64, 80), np.float32))
    with pytest.raises(
        data.DataError,
        match=r"small\.fits: the g2 image is 64 × 80 but the "
        r"g1 image .* is 96 × 80",
    ):
        data.read_shear_fits(f["g1"], small, counts=f["counts"])
    g1 = shear["g1"].copy()
    g1[7, 9] = np.inf
    with pytest.raises(
        data.DataError,
        match=r"inf\.fits: the g1 image holds 1 infinite "
        r"value\(s\) \(first at y=7, x=9\)",
    ):
        data.read_shear_fits(_image(tmp_path / "inf.fits", g1), f["g2"], counts=f["counts"])
    counts = shear["counts"].copy()
    counts[3, 4] = -2
    with pytest.raises(data.DataError, match=r"neg\.fits: the count image holds a negative"):
        data.read_shear_fits(f["g1"], f["g2"], counts=_image(tmp_path / "neg.fits", counts))
    big = shear["g1"].copy()
    big[0, 1] = 7.0
    with pytest.raises(data.DataError, match=r"big\.fits: e1 = 7 at sample=0, y=0, x=1"):
        data.read_shear_fits(_image(tmp_path / "big.fits", big), f["g2"], counts=f["counts"])
    with pytest.raises(ValueError, match=r"g1\.fits, .*g2\.fits: .*exactly one of a counts"):
        data.read_shear_fits(f["g1"], f["g2"])
    with pytest.raises(FileNotFoundError, match=r"nope\.fits: no such file"):
        data.read_shear_fits(tmp_path / "nope.fits", f["g2"], counts=f["counts"])
    with pytest.raises(data.DataError, match=r"g1\.fits: has extensions \[\]; expected E1, E2"):
        data.read_field_fits(f["g1"])


def test_uploads_are_read_from_bytes(shear):
    f = shear["files"]
    field = data.read_shear_fits(
        io.BytesIO(f["g1"].read_bytes()),
        f["g2"].read_bytes(),
        counts=f["counts"].read_bytes(),
        sigma_e=0.26,
        sources=["g1 upload", "g2 upload", "n upload"],
    )
    assert field.source == "g1 upload" and field.eps.shape == (96, 80, 3)


def test_mutated_files_only_ever_raise_data_errors(tmp_path):
    """200 seeded mutations of a valid field file (bit flips in the headers and the data,
    truncations, card rewrites): each is read or refused with a DataError, never another
    exception, and whatever is read is finite and within the bounds."""
    rng = np.random.default_rng(9)
    eps = rng.normal(0, 0.1, (64, 64, 3)).astype(np.float32)
    eps[..., 2] = np.abs(eps[..., 2])
    path = tmp_path / "f.fits"
    data.write_field_fits(path, eps, eps[..., 0], _wcs_header(64, 64))
    good = path.read_bytes()
    outcomes = {"read": 0, "refused": 0}
    for i in range(200):
        raw = bytearray(good)
        kind = i % 4
        if kind == 0:  # flip bits anywhere
            for pos in rng.integers(0, len(raw), 8):
                raw[pos] ^= 1 << int(rng.integers(8))
        elif kind == 1:  # flip bits in the headers only
            for pos in rng.integers(0, 2880, 4):
                raw[pos] = int(rng.integers(32, 127))
        elif kind == 2:  # truncate
            raw = raw[: int(rng.integers(0, len(raw)))]
        else:  # rewrite a number of a card (NAXIS1, BITPIX, ...)
            text = raw.decode("ascii", "replace")
            key = ["NAXIS1  =", "NAXIS2  =", "BITPIX  =", "NAXIS   ="][i % 16 // 4]
            at = text.find(key, int(rng.integers(0, len(raw) // 2)))
            if at >= 0:
                value = str(int(rng.choice([-64, 0, 1, 3, 65, 2049, 10**9])))
                raw[at + 10 : at + 30] = value.rjust(20).encode()
        try:
            field = data.read_field_fits(bytes(raw), "m.fits")
        except data.DataError as exc:
            assert str(exc).startswith("m.fits"), str(exc)
            outcomes["refused"] += 1
        else:
            assert np.isfinite(field.eps).all()
            assert np.abs(field.eps[..., :2]).max() <= limits.EPS_COMPONENT_MAX
            outcomes["read"] += 1
    assert outcomes["refused"] > 50 and outcomes["read"] > 10, outcomes


def test_kappa_fits_bytes_is_the_file_write_kappa_fits_writes(tmp_path):
    kappa = np.random.default_rng(2).normal(0, 0.05, (64, 96)).astype(np.float32)
    mask = np.zeros(kappa.shape, bool)
    mask[5:9, 10:30] = True
    header = _wcs_header(64, 96)
    header["CRVAL1"], header["OBJECT"] = 150.0, "not WCS"
    data.write_kappa_fits(tmp_path / "k.fits", kappa, header, mask, attrs={"METHOD": "UNet"})
    raw = data.kappa_fits_bytes(kappa, header, mask, attrs={"METHOD": "UNet"})
    with fits.open(tmp_path / "k.fits") as on_disk, fits.open(io.BytesIO(raw)) as in_memory:
        assert [h.name for h in in_memory] == [h.name for h in on_disk] == ["PRIMARY", "MASK"]
        for a, b in zip(on_disk, in_memory, strict=True):
            np.testing.assert_array_equal(a.data, b.data)
            keys = [k for k in a.header if k not in ("CHECKSUM", "DATASUM")]
            assert [(k, a.header[k]) for k in keys] == [(k, b.header[k]) for k in keys]
        assert in_memory[0].header["CRVAL1"] == 150.0 and "OBJECT" not in in_memory[0].header
    with pytest.raises(data.DataError, match="NaN"):
        data.kappa_fits_bytes(np.full((64, 64), np.nan))


def test_a_negative_sigma_is_refused_naming_the_sigma_file(tmp_path, shear):
    # issue 21, item 9: without this check the file was still refused, by a later check
    # that named the g1 file instead of the σ image that holds the bad value
    f = shear["files"]
    sigma = np.full(shear["g1"].shape, 0.1, np.float32)
    sigma[7, 11] = -0.2
    bad = _image(tmp_path / "sig.fits", sigma)
    with pytest.raises(
        data.DataError,
        match=r"^.*sig\.fits: the σ image holds a negative value \(-0\.2 at y=7, x=11\)",
    ) as err:
        data.read_shear_fits(f["g1"], f["g2"], sigma=bad)
    assert "g1.fits" not in str(err.value)
    field = data.read_shear_fits(
        f["g1"], f["g2"], sigma=_image(tmp_path / "ok.fits", sigma * 0 + 0.1)
    )
    assert float(field.eps[..., 2].max()) == pytest.approx(0.1)
