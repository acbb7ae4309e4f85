"""The Streamlit app on top of lensviz (``streamlit run app.py``).

``app.py`` is the frame: page config, navigation, the sidebar and the page header.

- :mod:`ui.sidebar`: the shared sidebar and the :class:`~ui.sidebar.Selection` it makes
  (data source, sample, model, KS93 settings); it survives every page switch.
- :mod:`ui.cache`: every cached computation and where the files are; public functions
  are named by the quantity they return for a Selection.
- :mod:`ui.jobs`: the background fine-tuning jobs (one per server process).
- :mod:`ui.header`: the header the frame draws above each page.
- :mod:`ui.text`: text for people (durations, counts, method names).
- ``ui/pages/``: only pages, one file each.
"""
