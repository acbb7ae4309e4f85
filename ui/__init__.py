"""The Streamlit app on top of lensviz (``streamlit run app.py``).

``app.py`` is the frame: page config, navigation, the sidebar and the page header.

- :mod:`ui.sidebar`: the shared sidebar and the :class:`~ui.sidebar.Selection` it makes
  (data source, sample, model, KS93 settings); it survives every page switch.
- :mod:`ui.links`: the selection as the URL's query (shareable links).
- :mod:`ui.cache`: every cached computation and where the files are; public functions
  are named by the quantity they return for a Selection. It never imports TensorFlow.
- :mod:`ui.models`: the TensorFlow side (the UNet's models, maps, uncertainty, device),
  which :mod:`ui.cache` imports by name when a page first needs the UNet.
- :mod:`ui.jobs`: the background fine-tuning jobs (one per server process).
- :mod:`ui.weights`: a ``.keras`` file's weights checked without TensorFlow.
- :mod:`ui.header`: the header the frame draws above each page.
- :mod:`ui.layout`: the responsive grid of map cells, the main block's padding.
- :mod:`ui.downloads`: what the download buttons hand out (``.npy``, FITS).
- :mod:`ui.text`: text for people (durations, counts, method names, best methods).
- ``ui/pages/``: only pages, one file each.
"""
