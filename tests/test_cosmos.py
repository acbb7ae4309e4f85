"""lensviz.cosmos: the COSMOS field's measured WCS and pixel scale (issue 18)."""

import io

import numpy as np
import pytest
from astropy.io import fits

from lensviz import cosmos, data


def test_the_measured_wcs_of_the_readme():
    grid = cosmos.load_cosmos().grid
    assert grid.known and grid.origin == "the FITS WCS"
    assert grid.pixel_arcmin == pytest.approx(0.352, abs=1e-4) == cosmos.COSMOS_PIXEL_ARCMIN
    wcs = grid.wcs
    assert wcs.wcs.ctype[0] == "RA---TAN" and wcs.wcs.ctype[1] == "DEC--TAN"
    # FITS pixel (129, 127), 1-based, is numpy's [126, 128]: the reference point
    ra, dec = wcs.pixel_to_world_values(128, 126)
    assert (ra, dec) == pytest.approx((150.1131843, 2.2313761), abs=1e-9)
    # columns run along +RA (east to the right), rows along +Dec (north up)
    ra_right, _ = wcs.pixel_to_world_values(228, 126)
    _, dec_up = wcs.pixel_to_world_values(128, 226)
    assert ra_right > ra and dec_up > dec
    # 100 px north is 100 × 0.0058667° on the tangent plane (the projection: 5e-5 relative)
    assert dec_up - dec == pytest.approx(100 * 0.0058667, rel=1e-4)


def test_the_footprint_area_at_the_measured_scale():
    field = cosmos.load_cosmos()
    # 43,900 pixels with galaxies of 0.352′: 1.51 deg²; the survey's ACS mosaic is
    # 1.64 deg² (Koekemoer et al. 2007), the pixels inside the outer edge 47,743
    area = (~field.mask).sum() * cosmos.COSMOS_PIXEL_ARCMIN**2 / 3600
    assert area == pytest.approx(1.511, abs=0.001)
    assert 47_743 * cosmos.COSMOS_PIXEL_ARCMIN**2 / 3600 == pytest.approx(1.64, abs=0.01)
    assert cosmos.galaxy_density(field) == pytest.approx(198_781 / 43_900 / 0.352002**2, rel=1e-4)


def test_a_cosmos_kappa_file_carries_the_wcs(tmp_path):
    field = cosmos.load_cosmos()
    kappa = np.zeros(field.eps.shape[:2], np.float32)
    data.write_kappa_fits(tmp_path / "k.fits", kappa, field.header, field.mask)
    with fits.open(tmp_path / "k.fits") as hdul:
        header = hdul[0].header
        assert header["CTYPE1"] == "RA---TAN" and header["CRVAL1"] == 150.1131843
        assert header["CRPIX2"] == 127.0 and header["CDELT2"] == 0.0058667
    back = data.read_kappa_fits(tmp_path / "k.fits")[1]
    assert data.fits.header_grid(back, "k.fits").pixel_arcmin == pytest.approx(0.352, abs=1e-4)
    raw = data.kappa_fits_bytes(kappa, field.header)
    with fits.open(io.BytesIO(raw)) as hdul:
        assert hdul[0].header["CRVAL2"] == 2.2313761
