"""Shared fixtures: seeded, smooth test fields that need no simulator."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest


def gaussian_blobs(rng: np.random.Generator, n_maps: int = 1, npix: int = 128,
                   n_blobs: int = 6) -> np.ndarray:
    """Sum of random positive Gaussian blobs minus a constant: a κ-like map, (N, npix, npix)."""
    yy, xx = np.mgrid[0:npix, 0:npix]
    out = np.zeros((n_maps, npix, npix))
    for i in range(n_maps):
        for _ in range(n_blobs):
            y, x = rng.uniform(10, npix - 10, size=2)
            s = rng.uniform(2, 8)
            a = rng.uniform(0.02, 0.3)
            out[i] += a * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * s * s))
    return out - 0.02


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def kappa_maps(rng):
    return gaussian_blobs(rng, n_maps=4).astype(np.float32)
