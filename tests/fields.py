"""Seeded, smooth test fields that need no simulator (shared by the tests and conftest)."""

import numpy as np


def gaussian_blobs(
    rng: np.random.Generator, n_maps: int = 1, npix: int = 128, n_blobs: int = 6
) -> np.ndarray:
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
