"""Shareable links: the page in the URL's path, the sidebar's selection in its query."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.apptools import APP, TIMEOUT, no_errors, texts
from ui import links
from ui.sidebar import DEFAULT_SAMPLE


def open_link(page: str | None = None, **params: str) -> AppTest:
    """A new session opened on ``…/page?params`` (page: a file in ui/pages/)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(params)
    if page is not None:
        at.switch_page(f"ui/pages/{page}")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def warnings(at: AppTest) -> list[str]:
    """The link's notices on the page (not the UNet's out-of-domain warning)."""
    return [w for w in texts(at.main.warning) if w.startswith("This link")]


def test_parse_and_write_are_inverse():
    link = links.Link(source="sim", seed=7, depth="deep", sample=4, model="lite", sigma=2.5)
    assert links.parse_link(links.link_params(link)) == (link, [])
    custom = links.Link(n_gal=250.0, sample=0)
    assert links.parse_link(links.link_params(custom)) == (custom, [])
    server = links.Link(source="server", dataset="tiles", pixel=0.29)
    assert links.parse_link(links.link_params(server)) == (server, [])
    # Defaults are left out: the built-in set, seed 0, the default depth, the depth rule,
    # 0.5′ pixels.
    assert links.link_params(links.Link(seed=0, depth="lsst", pixel=0.5)) == {}


@pytest.mark.parametrize(
    "params, bad",
    [
        ({"seed": "abc"}, "`seed=abc` is not a whole number from 0 to 10000; showing seed 0"),
        ({"seed": "2.5"}, "`seed=2.5` is not a whole number"),
        ({"sample": "-3"}, "`sample=-3` is not a sample index"),
        ({"sigma": "nan"}, "`sigma=nan` is not a smoothing from 0 to 8 px"),
        ({"n_gal": "0"}, "`n_gal=0` is not a galaxy density from 1 to 10000"),
        ({"depth": "shallow"}, "`depth=shallow` is not one of des, lsst, deep, noise-free"),
        ({"source": "ftp"}, "`source=ftp` is not one of sim, cosmos"),
        ({"pixel": "0"}, "`pixel=0` is not a pixel side from 0.01 to 60 arcmin; showing 0.5′"),
    ],
)
def test_unusable_values_are_named_with_their_fallback(params, bad):
    link, notices = links.parse_link(params)
    assert link == links.Link()
    assert len(notices) == 1 and notices[0].startswith(bad), notices


def test_sigma_snaps_to_the_slider_step():
    assert links.parse_link({"sigma": "1.3"})[0].sigma == 1.25


def test_a_link_opens_its_page_on_its_seed_and_sample(weights):
    at = open_link("peaks.py", seed="7", sample="4")
    no_errors(at)
    assert at.title[0].value == "Peaks"
    assert at.sidebar.number_input(key="sim_seed").value == 7
    assert at.sidebar.number_input(key="sample_index").value == 4
    assert texts(at.caption)[0].startswith("simulated (seed 7) · sample 4: **sim_000172**")
    assert at.query_params == {"seed": "7", "sample": "4"}


def test_a_link_sets_depth_model_and_smoothing(weights):
    at = open_link(depth="deep", sigma="1.5", model="tiny", sample="2")
    no_errors(at)
    assert at.sidebar.selectbox(key="sim_depth").value == "deep"
    assert at.sidebar.toggle(key="ks93_auto").value is False
    assert at.sidebar.slider(key="ks93_sigma").value == 1.5
    assert "KS93 (σ 1.5 px)" in at.table[0].value.index
    assert not warnings(at)
    # The default model is left out of the link the app writes back.
    assert at.query_params == {"depth": "deep", "sample": "2", "sigma": "1.5"}
    other = open_link(n_gal="250")
    assert other.sidebar.selectbox(key="sim_depth").value == "custom"
    assert other.sidebar.number_input(key="sim_n_gal").value == 250.0
    assert texts(other.caption)[0].startswith("simulated (seed 0, 250 gal/arcmin²) · sample 0")


def test_sidebar_changes_update_the_address_bar(app):
    assert app.query_params == {"sample": str(DEFAULT_SAMPLE)}
    app.sidebar.number_input(key="sim_seed").set_value(3).run()
    assert app.query_params == {"seed": "3", "sample": str(DEFAULT_SAMPLE)}
    app.sidebar.toggle(key="ks93_auto").set_value(False).run()
    app.sidebar.slider(key="ks93_sigma").set_value(2.0).run()
    assert app.query_params["sigma"] == "2"
    app.sidebar.radio(key="source").set_value("Real data: COSMOS").run()
    no_errors(app)
    assert app.query_params == {"source": "cosmos", "sigma": "2"}


def test_bad_values_fall_back_to_defaults_with_a_notice(weights):
    at = open_link("compare.py", seed="-1", sample="99", model="nope", sigma="20")
    no_errors(at)
    said = " ".join(warnings(at))
    for part in (
        "`seed=-1` is not a whole number from 0 to 10000; showing seed 0",
        "`sample=99` is not a sample of this data (0–23); showing sample 9",
        "`model=nope` is not a model on this server; showing tiny (shipped)",
        "`sigma=20` is not a smoothing from 0 to 8 px; showing σ from the data's depth",
    ):
        assert part in said, said
    assert at.sidebar.number_input(key="sample_index").value == DEFAULT_SAMPLE
    assert at.sidebar.toggle(key="ks93_auto").value is True
    # The address bar now shows what the page shows, and the notices are said once.
    assert at.query_params == {"sample": str(DEFAULT_SAMPLE)}
    at.run()
    assert not warnings(at)
