"""Running the app under Streamlit's AppTest as a server runs it (tests and benchmarks).

Before each run AppTest resets ``PagesManager.uses_pages_directory``; a fresh
``PagesManager`` then finds the ``pages/`` folder beside ``app.py`` and takes the app
for a v1 multipage app, so every run after the first would execute the page file alone,
without ``app.py`` and its shared sidebar. A server sets the flag once per process and
``st.navigation`` clears it for good; :func:`navigation_apptest` pins it to False.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app.py"


@contextlib.contextmanager
def navigation_pages_manager():
    """Patch AppTest so that every run goes through ``app.py`` and ``st.navigation``."""
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import app_test

    class NavigationPagesManager(PagesManager):
        def __init__(self, *args, **kwargs):
            PagesManager.uses_pages_directory = False
            super().__init__(*args, **kwargs)

    original = app_test.PagesManager
    app_test.PagesManager = NavigationPagesManager
    try:
        yield
    finally:
        app_test.PagesManager = original


def app_test(timeout: float = 120):
    """An AppTest of ``app.py`` (call inside :func:`navigation_pages_manager`)."""
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(APP), default_timeout=timeout)
