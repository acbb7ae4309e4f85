"""lensviz: the Streamlit frame. Page config, the shared sidebar, navigation, the header.

What needs TensorFlow (the UNet's domain warning under the header, the device in the
sidebar) is drawn after the page, into its place: a fresh server shows its first maps
while TensorFlow loads (see ui/cache.py).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# One BLAS thread: the app's matrix products are small (128-px Gaussian smoothing), and
# OpenBLAS threads competing with TensorFlow's and the server's made each one 30 ms
# instead of 0.2 ms on 2 busy cores. Set before numpy loads (streamlit run has not
# imported it yet); an operator's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from pathlib import Path

import streamlit as st

from ui.header import page_header, unet_warning
from ui.layout import compact_main
from ui.sidebar import runtime_ui, sidebar

ICON = Path(__file__).resolve().parent / "ui" / "icon.png"  # local: nothing from a CDN

st.set_page_config(
    page_title="lensviz · weak-lensing mass maps", page_icon=str(ICON), layout="wide"
)
compact_main()

#: url path → (file, navigation title, heading, header scope, navigation icon)
PAGES = {
    "compare": ("compare.py", "Compare", "Compare", "sample", ":material/compare:"),
    "loss_weights": (
        "loss_weights.py",
        "Loss weights",
        "Loss weights",
        "sample",
        ":material/balance:",
    ),
    "peaks": ("peaks.py", "Peaks", "Peaks", "sample", ":material/landscape:"),
    "dicee": ("dicee.py", "DICEE", "DICEE", "sample", ":material/grid_on:"),
    "finetune": ("finetune.py", "Fine-tune", "Fine-tune a UNet", "model", ":material/tune:"),
    "null_tests": (
        "null_tests.py",
        "Null tests",
        "Null tests: what stands above the noise",
        "sample",
        ":material/query_stats:",
    ),
    "evaluate": ("evaluate.py", "Evaluate", "Evaluate", "dataset", ":material/bar_chart:"),
    "learn": (
        "learn.py",
        "Learn",
        "Learn: from galaxy shapes to mass maps",
        "sample",
        ":material/school:",
    ),
}
pages = [
    st.Page(f"ui/pages/{file}", title=title, icon=icon, url_path=path, default=path == "compare")
    for path, (file, title, _, _, icon) in PAGES.items()
]
pg = st.navigation(pages)
sel = sidebar()
_, _, heading, scope, _ = PAGES[pg.url_path or "compare"]
slot = page_header(heading, sel, scope)
try:
    pg.run()
finally:  # what needs TensorFlow comes after the page, which draws its maps first
    unet_warning(slot, sel, scope)
    runtime_ui()
