"""Helpers of the app tests (the fixtures are in ``conftest.py``)."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from streamlit import dataframe_util
from streamlit.testing.v1 import AppTest

from lensviz import constants
from lensviz.errorbars import DEPTH_NODES, SCALE_NODES, ErrorModel
from lensviz.inversion import ks93inv
from lensviz.nn.errorbars import QuantileNet, file_sha256, save_sigma_net, sigma_net_path
from lensviz.nn.inference import save_model
from lensviz.nn.unet import UNetConfig, build_unet
from lensviz.wiener import PowerSpectrum
from ui import cache
from ui.sidebar import DEFAULT_SAMPLE

#: A tiny untrained UNet (a few thousand parameters, with decoder dropout).
TINY = UNetConfig(base_filters=4, max_filters=8, depth=3, pad=0, n_decoder_dropout=1)
#: The same, field-aware (the v3 inputs), which a quantile network can calibrate.
TINY_FIELD = dataclasses.replace(TINY, field_features=True)
#: The conformal factors of the tiny quantile network at every node: σ̂ = s, hw95 = 2.5 s.
TINY_Q68, TINY_Q95 = 1.0, 2.5
#: The coverage the tiny model card says was measured, at every depth and on both kinds
#: of data: method → (coverage_68, coverage_95, mean σ̂). Wiener's misses its target.
CARD_COVERAGE = {
    "unet": (0.69, 0.955, 0.012),
    "wiener": (0.60, 0.93, 0.015),
    "ks93_rule": (0.68, 0.95, 0.02),
    "ks93_raw": (0.675, 0.952, 0.05),
}
APP = str(Path(__file__).resolve().parents[2] / "app.py")
TIMEOUT = 120  # seconds per AppTest run (the first one imports TensorFlow)
#: navigation title → page file, as in app.py
PAGE_FILES = {
    "Compare": "compare.py",
    "Loss weights": "loss_weights.py",
    "Peaks": "peaks.py",
    "DICEE": "dicee.py",
    "Null tests": "null_tests.py",
    "Fine-tune": "finetune.py",
    "Evaluate": "evaluate.py",
    "Learn": "learn.py",
}


def power_law_spectrum() -> PowerSpectrum:
    """S(k) ∝ (k + 0.02)⁻², per pixel, on the binning of ``estimate_power_spectrum``."""
    edges = np.linspace(0.0, np.sqrt(0.5) + 1e-9, 49)
    k = 0.5 * (edges[1:] + edges[:-1])
    return PowerSpectrum(edges, 2e-6 * (k + 0.02) ** -2, {"command": "test power law"})


def new_session() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    no_errors(at)
    return at


def open_page(at: AppTest, title: str) -> AppTest:
    """Switch the session ``at`` to the page with navigation title ``title`` and run it."""
    at.switch_page(f"ui/pages/{PAGE_FILES[title]}").run()
    return at


def no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def metric_values(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def specs(at: AppTest) -> str:
    """The figures' JSON, re-encoded with raw Unicode (plotly escapes it unless orjson is
    installed, so a raw "−" would be found in one environment and not in another)."""
    return "\n".join(
        json.dumps(json.loads(c.proto.spec), ensure_ascii=False) for c in at.get("plotly_chart")
    )


def chart_specs(at: AppTest, key: str) -> list[dict]:
    """The figures (plotly JSON) of the cells ``{key}_0``, ``{key}_1``, … of a grid."""
    charts = {c.key: c for c in at.get("plotly_chart")}
    out, i = [], 0
    while f"{key}_{i}" in charts:
        out.append(json.loads(charts[f"{key}_{i}"].proto.spec))
        i += 1
    return out


def plotly_array(values) -> np.ndarray:
    """An array of plotly JSON: a typed array (``{dtype, bdata, shape}``) or lists (None:
    NaN, a grey pixel)."""
    if isinstance(values, dict):
        shape = tuple(int(n) for n in str(values.get("shape", "-1")).split(","))
        return np.frombuffer(base64.b64decode(values["bdata"]), values["dtype"]).reshape(shape)
    return np.array(values, dtype=object).astype(float)


def panel_titles(spec: dict) -> list[str]:
    """The titles above the map panels of a cell (plotly JSON), top to bottom."""
    return [
        a["text"]
        for a in spec["layout"].get("annotations", [])
        if a.get("xref", "").endswith("domain") and a.get("yanchor") == "bottom"
    ]


def shown_table(table) -> pd.DataFrame:
    """What a styled ``st.table`` shows: its cells as the formatted text."""
    raw = table.proto.arrow_data.styler.display_values
    return dataframe_util.convert_arrow_bytes_to_pandas_df(raw)


def npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def challenge_pair(rng: np.random.Generator) -> tuple[bytes, bytes]:
    """A challenge-style sample: EPSILON (3,128,128) and KAPPA (128,128), float16, with
    one Gaussian peak at (row 50, column 70)."""
    yy, xx = np.mgrid[0:128, 0:128]
    kappa = 0.3 * np.exp(-((yy - 50) ** 2 + (xx - 70) ** 2) / (2 * 6.0**2)) - 0.01
    g1, g2 = ks93inv(kappa)
    eps = np.stack(
        [
            g1 + 0.05 * rng.standard_normal(g1.shape),
            g2 + 0.05 * rng.standard_normal(g2.shape),
            np.full(g1.shape, 0.05),
        ]
    )
    return npy_bytes(eps.astype(np.float16)), npy_bytes(kappa.astype(np.float16))


def upload(at: AppTest, files: list[tuple[str, bytes]]) -> AppTest:
    """Choose "Upload a file" in the sidebar and upload ``files`` ((name, bytes) pairs)."""
    at.sidebar.radio(key="source").set_value("Upload a file").run()
    at.sidebar.file_uploader(key="upload").set_value(
        [(name, data, "application/octet-stream") for name, data in files]
    ).run()
    return at


def first_sample():
    """The sample the app shows on defaults: built-in set, seed 0, the default index."""
    ds = cache.builtin_dataset(0)
    return ds.eps[DEFAULT_SAMPLE], ds.kappa[DEFAULT_SAMPLE]


#: The variants of the app tests' tiny loss lab: name → (kind, loss, coefficients, group).
LAB_VARIANTS = {
    "mse": ("train", "mse", None, "plain"),
    "multifocal": ("train", "multifocal", {}, "multifocal"),
    "mf_no_peaks": ("train", "multifocal", {"peaks": 0.0}, "ablation"),
    "ft_dicee": ("finetune", "combined", {}, "finetune"),
}


def write_lab(folder: Path, model: Path, n_maps: int = 4) -> Path:
    """A tiny loss lab in ``folder``: every variant a copy of ``model``, made-up scores on
    ``n_maps`` held-out maps at n_gal 30 and without noise (``lab.json`` as the lab writes
    it, so that :func:`lensviz.lab.load_lab` and :func:`lensviz.lab.findings` read it)."""
    folder.mkdir(parents=True, exist_ok=True)
    names = list(LAB_VARIANTS)
    methods = [*names, "shipped", "wiener", "ks93_best", "ks93_rule"]
    metrics = ("rmse", "r", "wmape", "dicee", "dpeaks")
    variants = []
    for i, (name, (kind, loss, coeffs, group)) in enumerate(LAB_VARIANTS.items()):
        (folder / f"{name}.keras").write_bytes(model.read_bytes())
        variants.append(
            {
                "name": name,
                "label": {"mse": "MSE", "multifocal": "MultiFocal"}.get(name, name),
                "group": group,
                "kind": kind,
                "loss": loss,
                "coeffs": None if coeffs is None else {**constants.MULTIFOCAL_COEFFS, **coeffs},
                "metric": "dicee" if kind == "finetune" else None,
                "init": "multifocal" if kind == "finetune" else "warm",
                "steps": 2400 if kind == "train" else 512,
                "seed": 0,
                "file": f"{name}.keras",
                "note": f"variant {i}",
            }
        )

    def summary(depth_factor):
        return {
            m: {
                metric: {"mean": depth_factor * (0.3 + 0.01 * i + 0.001 * j), "sem_boot": 0.002}
                for j, metric in enumerate(metrics)
            }
            for i, m in enumerate(methods)
        }

    def vs(ref):
        return {
            m: {
                metric: {"mean": 0.01 * (i - methods.index(ref)), "sem_boot": 0.002}
                for metric in metrics
            }
            for i, m in enumerate(methods)
            if m != ref
        }

    scores = {
        depth: {
            "n_gal": n_gal,
            "label": label,
            "summary": summary(factor),
            "vs": {"mse": vs("mse"), "multifocal": vs("multifocal")},
        }
        for depth, n_gal, label, factor in (
            ("30", 30.0, "30 gal/arcmin²", 1.0),
            ("inf", None, "no shape noise", 0.3),
        )
    }
    lab = {
        "variants": variants,
        "labels": {**{v["name"]: v["label"] for v in variants}, "shipped": "UNet shipped"},
        "scores": scores,
        "train": {"epochs": 6, "steps_per_epoch": 400},
        "finetune": {"start": "multifocal"},
        "reference": "mse",
        "test_set": {"n_maps": n_maps, "seeds": [0, n_maps - 1]},
        "repeats": {"methods": [], "names": [], "metrics": {}, "seed": 1, "depth": "30"},
        "moonshot": {
            "depth": "30",
            "metric": "dicee",
            "gain": 0.1,
            "rmse_ratio": 1.05,
            "ks93_best_sigma_px": 4.0,
            "ks93_best": 0.33,
            "closest": "multifocal",
            "models": {
                n: {"gain": -0.01, "gain_sem": 0.01, "rmse_ratio": 1.0, "rmse_ratio_sem": 0.01}
                for n in names
            },
            "met_by": [],
            "shipped_gain": {"gain": -0.02, "sem_boot": 0.01},
        },
    }
    path = folder / "lab.json"
    path.write_text(json.dumps(lab), encoding="utf-8")
    return path


def write_calibrated(folder: Path) -> Path:
    """Shipped weights of a calibrated UNet in ``folder``: ``tinyfield.keras`` (an
    untrained :data:`TINY_FIELD` UNet), its quantile network ``tinyfield.sigma.keras``
    fitted to it (factors :data:`TINY_Q68`, :data:`TINY_Q95` at every node), its model
    card ``tinyfield.json`` with :data:`CARD_COVERAGE` at every depth, a power-law κ
    spectrum and the shipped calibration of KS93 and Wiener. Returns the model file."""
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / "tinyfield.keras"
    save_model(build_unet(TINY_FIELD), model)
    nodes = (tuple(v for _ in DEPTH_NODES) for v in (TINY_Q68, TINY_Q95))
    q68, q95 = ((tuple(row for _ in SCALE_NODES),) for row in nodes)
    error_model = ErrorModel("unet", DEPTH_NODES, q68, q95)
    net = QuantileNet(constants.NPIX, error_model.to_dict(), file_sha256(model))
    save_sigma_net(net, sigma_net_path(model))
    depths = {
        depth: {
            method: {
                kind: dict(zip(("coverage_68", "coverage_95", "mean_std"), v))
                for kind in ("masked_tiles", "fields_384")
            }
            for method, v in CARD_COVERAGE.items()
        }
        for depth in ("5", "10", "30", "100", "300", "inf")
    }
    card = {"name": "tinyfield", "sha256": file_sha256(model), "errorbars": {"depths": depths}}
    model.with_suffix(".json").write_text(json.dumps(card), encoding="utf-8")
    power_law_spectrum().save(folder / "kappa_power.npz")
    shutil.copyfile(constants.WEIGHTS_DIR / constants.ERRORBARS_FILE, folder / "errorbars.json")
    return model


def write_detections(path: Path, agreement: dict[int, float]) -> Path:
    """A ``bench_detections`` result: ``{n_noise: agreement}``, the same for the UNet,
    Wiener and KS93 (the UNet's lower by 0.05 when below 1)."""
    runs = {
        str(n): {
            "unet": {"detections": [[], []], "agreement": a if a == 1.0 else a - 0.05},
            "ks93_depth_rule": {"detections": [[], []], "agreement": a},
            "wiener": {"detections": [[], []], "agreement": a},
        }
        for n, a in agreement.items()
    }
    path.write_text(json.dumps({"seeds": [0, 1], "runs": runs}), encoding="utf-8")
    return path
