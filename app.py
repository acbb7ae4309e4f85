"""lensviz: the Streamlit frame. Page config, the shared sidebar, navigation."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import streamlit as st

from ui import shared

st.set_page_config(page_title="lensviz · weak-lensing mass maps",
                   page_icon=":material/blur_on:", layout="wide")

pages = [
    st.Page("ui/pages/compare.py", title="Compare", icon=":material/compare:", default=True),
    st.Page("ui/pages/loss_weights.py", title="Loss weights", icon=":material/balance:"),
    st.Page("ui/pages/peaks.py", title="Peaks", icon=":material/landscape:"),
    st.Page("ui/pages/dicee.py", title="DICEE", icon=":material/grid_on:"),
    st.Page("ui/pages/finetune.py", title="Fine-tune", icon=":material/tune:"),
    st.Page("ui/pages/evaluate.py", title="Evaluate", icon=":material/bar_chart:"),
    st.Page("ui/pages/learn.py", title="Learn", icon=":material/school:"),
]
pg = st.navigation(pages)
shared.sidebar()
pg.run()
