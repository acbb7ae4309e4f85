"""Fixtures of the data tests: seeded ε/κ arrays, a hand-made challenge folder, leftovers."""

import io

import numpy as np
import pytest

N = 4  # samples in the `arrays` fixture


@pytest.fixture
def arrays():
    """Seeded ε (N, 128, 128, 3) and κ (N, 128, 128), float32, values exact in float16."""
    rng = np.random.default_rng(7)
    eps = rng.normal(0, 0.2, (N, 128, 128, 3)).astype(np.float16).astype(np.float32)
    eps[..., 2] = np.abs(eps[..., 2])
    kappa = rng.normal(0, 0.05, (N, 128, 128)).astype(np.float16).astype(np.float32)
    return eps, kappa


def _make_challenge_dir(root, eps, kappa, names):
    """Write the challenge layout by hand (independently of lensviz.data)."""
    (root / "EPSILON").mkdir(parents=True)
    (root / "KAPPA").mkdir()
    for e, k, name in zip(eps, kappa, names):
        np.save(root / "EPSILON" / f"{name}.npy", np.moveaxis(e, -1, 0).astype(np.float16))
        np.save(root / "KAPPA" / f"{name}.npy", k.astype(np.float16))
    return root


@pytest.fixture
def make_challenge_dir():
    """``make_challenge_dir(root, eps, kappa, names)`` writes a challenge folder by hand."""
    return _make_challenge_dir


@pytest.fixture
def leftovers():
    """``leftovers(folder)``: hidden temporaries a writer might have left in ``folder``."""
    return lambda folder: [p.name for p in folder.iterdir() if p.name.startswith(".")]


@pytest.fixture
def npy_bytes():
    """``npy_bytes(arr)``: the bytes ``numpy.save`` writes (pickles allowed, to test refusal)."""

    def save(arr):
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=True)
        return buf.getvalue()

    return save
