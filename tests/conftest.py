"""Shared fixtures and markers of the test suite.

Layout: ``tests/`` mirrors the package. The numpy modules of ``lensviz/`` are tested at
the top level (``test_inversion.py`` for ``lensviz/inversion.py``, ...), ``tests/nn/``
tests ``lensviz/nn/``, ``tests/cli/`` the command line, ``tests/data/`` the readers and
``tests/app/`` the Streamlit app, one file per page.

Markers
    ``slow``: more than about 5 s (training runs, scoring the shipped weights, the Keras
    Tuner search). ``browser``: drives the app in headless Chromium. The fast loop is
    ``pytest -m "not slow and not browser"``. Tests in files of the app are marked here by
    node id (:data:`SLOW`, :data:`BROWSER`); the others in their own files.

Fixtures
    ``rng``, ``kappa_maps``: seeded smooth κ-like fields that need no simulator.
    ``tiny_overrides``, ``tiny_config``, ``tiny_unet``, ``tiny_weights``: the tiny
    untrained UNet of the TensorFlow tests (128 × 128 in, 3 blocks, at most 8 filters).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from pathlib import Path

import keras
import numpy as np
import pytest

from lensviz.nn.inference import save_model
from lensviz.nn.unet import UNetConfig, build_unet
from tests.fields import gaussian_blobs

#: The tiny UNet: the default configuration with these fields replaced.
TINY_UNET = {"base_filters": 4, "max_filters": 8, "depth": 3, "pad": 0, "n_decoder_dropout": 1}

#: Node-id prefixes (a folder, a file or one test) of tests that are slow / browser tests,
#: for files whose owners have not marked them. Other slow tests carry
#: ``@pytest.mark.slow`` in their own file.
SLOW = (
    "tests/app/test_learn.py::test_defaults_and_noise_slider_changes_the_numbers",
    "tests/app/test_evaluate.py::test_summary_histograms_and_per_sample_table",
)
BROWSER = ("tests/app/test_browser.py",)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid.startswith(SLOW):
            item.add_marker(pytest.mark.slow)
        if item.nodeid.startswith(BROWSER):
            item.add_marker(pytest.mark.browser)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def kappa_maps(rng):
    return gaussian_blobs(rng, n_maps=4).astype(np.float32)


@pytest.fixture
def tiny_overrides() -> dict:
    """:data:`TINY_UNET`, e.g. for ``TrainConfig(model_overrides=...)``."""
    return dict(TINY_UNET)


@pytest.fixture(scope="session")
def tiny_config() -> UNetConfig:
    """The tiny UNet's configuration (:data:`TINY_UNET` over the defaults)."""
    return UNetConfig.from_dict({**UNetConfig().to_dict(), **TINY_UNET})


@pytest.fixture
def tiny_unet(tiny_config) -> keras.Model:
    """A fresh tiny UNet with seeded initial weights; a test may train or change it."""
    keras.utils.set_random_seed(0)
    return build_unet(tiny_config)


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory, tiny_config) -> Path:
    """A ``.keras`` file of the tiny UNet, seeded, shared by the session: do not write it."""
    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("tiny_weights") / "tiny.keras"
    save_model(build_unet(tiny_config), path)
    return path
