"""lensviz: the Streamlit frame. Page config, the shared sidebar, navigation."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import streamlit as st

from pages import shared

st.set_page_config(page_title="lensviz · weak-lensing mass maps", page_icon="🔭",
                   layout="wide")

pages = [
    st.Page("pages/compare.py", title="Compare", icon="🗺️", default=True),
    st.Page("pages/loss_weights.py", title="Loss weights", icon="⚖️"),
    st.Page("pages/peaks.py", title="Peaks", icon="⛰️"),
    st.Page("pages/dicee.py", title="DICEE", icon="🟩"),
    st.Page("pages/finetune.py", title="Fine-tune", icon="🛠️"),
    st.Page("pages/evaluate.py", title="Evaluate", icon="📊"),
    st.Page("pages/learn.py", title="Learn", icon="🎓"),
]
pg = st.navigation(pages)
shared.sidebar()
pg.run()
