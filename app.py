"""lensviz: the Streamlit frame. Page config, shared sidebar, navigation."""

import streamlit as st

st.set_page_config(page_title="lensviz", page_icon="🔭", layout="wide")
st.title("lensviz")
st.write("Weak-lensing mass maps: UNet against KS93. The pages arrive with the app issue.")
