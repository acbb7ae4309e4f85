"""Shared fixtures of the app tests: tiny weights, the app handle, ``open_page``.

Helpers (``new_session``, ``no_errors``, ``upload``, …) are in ``apptools.py``. The
app runs in-process (``AppTest``) on the built-in simulated set with a tiny untrained
UNet and a power-law κ power spectrum. ``ui/cache.py`` reads its folders once, at
import; AppTest executes ``app.py`` in this process, so ``from ui import cache`` there
returns the very module imported here, and the fixtures point it at temporary folders by
monkeypatching ``cache.SHIPPED_WEIGHTS_DIR`` and ``cache.USER_WEIGHTS_DIR``.

Every app test gets a fresh session (:func:`app`); only the first one in a process pays
the TensorFlow import. The job manager is the process's one (``ui.jobs.manager()``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import pytest
from streamlit.testing.v1 import AppTest

from lensviz import constants
from lensviz.nn.inference import save_model
from lensviz.nn.unet import build_unet
from tests.app import apptools
from tests.app.apptools import TINY, power_law_spectrum
from ui import cache, jobs


@pytest.fixture(scope="session")
def shipped_dir(tmp_path_factory) -> Path:
    """A tiny untrained UNet (``tiny.keras``), a κ power spectrum and the shipped
    calibration of KS93's and Wiener's error bars beside it."""
    folder = tmp_path_factory.mktemp("shipped")
    keras.utils.set_random_seed(0)  # the same untrained weights in every run
    save_model(build_unet(TINY), folder / "tiny.keras")
    power_law_spectrum().save(folder / "kappa_power.npz")
    shutil.copyfile(constants.WEIGHTS_DIR / constants.ERRORBARS_FILE, folder / "errorbars.json")
    return folder


@pytest.fixture
def user_dir(tmp_path) -> Path:
    folder = tmp_path / "finetuned"
    folder.mkdir()
    return folder


@pytest.fixture(scope="session")
def stable_from_20(tmp_path_factory) -> Path:
    """A ``bench_detections`` result: detections stable from 20 noise maps on."""
    path = tmp_path_factory.mktemp("benchmarks") / "detections.json"
    return apptools.write_detections(path, {20: 1.0, 50: 1.0})


@pytest.fixture(autouse=True)
def no_lab(tmp_path, monkeypatch, stable_from_20):
    """No loss lab unless a test asks for :func:`lab` (the checkout's would join the
    model list), and none of the checkout's benchmark results: no coverage of the error
    bars, and detections stable from 20 noise maps on (the Null tests' default then)."""
    monkeypatch.setattr(cache, "LAB_DIR", tmp_path / "no_lab")
    monkeypatch.setattr(cache, "COVERAGE_BENCHMARK", tmp_path / "no_errorbars.json")
    monkeypatch.setattr(cache, "DETECTIONS_BENCHMARK", stable_from_20)


@pytest.fixture(scope="session")
def calibrated_dir(tmp_path_factory) -> Path:
    """Shipped weights of a calibrated tiny UNet (``apptools.write_calibrated``)."""
    folder = tmp_path_factory.mktemp("calibrated")
    apptools.write_calibrated(folder)
    return folder


@pytest.fixture
def calibrated(calibrated_dir, user_dir, monkeypatch) -> AppTest:
    """A fresh app session on Compare whose UNet has calibrated error bars and a card."""
    monkeypatch.setattr(cache, "SHIPPED_WEIGHTS_DIR", calibrated_dir)
    monkeypatch.setattr(cache, "USER_WEIGHTS_DIR", user_dir)
    return apptools.new_session()


@pytest.fixture
def weights(shipped_dir, user_dir, monkeypatch):
    """The app sees the tiny UNet, the power spectrum and an empty fine-tuned folder."""
    monkeypatch.setattr(cache, "SHIPPED_WEIGHTS_DIR", shipped_dir)
    monkeypatch.setattr(cache, "USER_WEIGHTS_DIR", user_dir)
    return shipped_dir, user_dir


@pytest.fixture
def lab(shipped_dir, tmp_path, monkeypatch):
    """A tiny loss lab (``apptools.write_lab``: copies of the tiny UNet, made-up scores on
    4 held-out maps); returns its folder."""
    folder = tmp_path / "lab"
    apptools.write_lab(folder, shipped_dir / "tiny.keras")
    monkeypatch.setattr(cache, "LAB_DIR", folder)
    return folder


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "SHIPPED_WEIGHTS_DIR", tmp_path / "none")
    monkeypatch.setattr(cache, "USER_WEIGHTS_DIR", tmp_path / "none_either")


@pytest.fixture
def no_spectrum(shipped_dir, tmp_path, monkeypatch):
    """The tiny UNet alone: no power spectrum beside it."""
    folder = tmp_path / "model_only"
    folder.mkdir()
    (folder / "tiny.keras").write_bytes((shipped_dir / "tiny.keras").read_bytes())
    monkeypatch.setattr(cache, "SHIPPED_WEIGHTS_DIR", folder)
    monkeypatch.setattr(cache, "USER_WEIGHTS_DIR", tmp_path / "none")


@pytest.fixture
def app(weights) -> AppTest:
    """A fresh app session on the Compare page, with the tiny weights."""
    return apptools.new_session()


@pytest.fixture
def open_page():
    """``open_page(at, title)``: switch the session to a page by its navigation title."""
    return apptools.open_page


@pytest.fixture
def idle_jobs():
    """Cancel any job left running by an earlier test; yields the manager."""
    manager = jobs.manager()
    job = manager.running()
    if job is not None:
        job.cancel()
        assert job.wait(180), f"job {job.name!r} did not stop"
    yield manager
