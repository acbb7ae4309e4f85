"""Helpers of the app tests (the fixtures are in ``conftest.py``)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
from streamlit import dataframe_util
from streamlit.testing.v1 import AppTest

from lensviz.inversion import ks93inv
from lensviz.nn.unet import UNetConfig
from lensviz.wiener import PowerSpectrum
from ui import cache
from ui.sidebar import DEFAULT_SAMPLE

#: A tiny untrained UNet (a few thousand parameters, with decoder dropout).
TINY = UNetConfig(base_filters=4, max_filters=8, depth=3, pad=0, n_decoder_dropout=1)
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
