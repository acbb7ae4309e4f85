"""Real-browser test: ``streamlit run app.py`` driven by headless Chromium (playwright).

Opens every page on the three screens of :data:`browser_tools.SCREENS` (1000 × 800,
1280 × 720, 1400 × 900), waits until its script has finished, checks that no exception
box (and no error message) appears, that the plotly figures render and that the layout
holds (:func:`browser_tools.layout_problems`: map panels of at least 200 px, no label
over another, every table's columns in sight, number boxes and labels whole), and saves
a full-page screenshot of each to ``screenshots/`` (git-ignored); with
``LENSVIZ_UPDATE_DOCS=1`` they are also copied to ``docs/screens/``, and the 1400 px ones
of :data:`README_SHOTS` (and the finished fine-tuning run, as ``finetune.png``) to
``docs/`` for the README. One session visits every page twice, reloads and is joined by
a second session (cached results are replayed then, which once crashed the Null tests);
a shareable link opens its page and selection, and the address bar follows the sidebar;
the κ FITS downloads of KS93 arrive, on simulated data and on COSMOS; Compare's error
bars hold their layout, and COSMOS's maps read RA and Dec.
With a non-default seed and model, a click on a row of Evaluate's per-sample table must
open that sample on Compare with the same selection; a tiny fine-tuning run is started
from the browser to check the live view and that its weights join the sidebar.

Needs Debian's ``chromium`` (``/usr/bin/chromium``) and the ``playwright`` package; the
test is skipped without them, except under CI (``CI=true``), where it fails. When the
shipped ``weights/lite.keras`` is absent the server gets a tiny untrained UNet instead.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from astropy.io import fits
from PIL import Image

from lensviz import constants
from lensviz.nn.inference import save_model
from lensviz.nn.unet import build_unet
from tests.app.apptools import TINY
from tests.app.browser_tools import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PAGE_RUN_S,
    ROOT,
    SCREENS,
    go_to,
    layout_problems,
    problems,
    rerun_after,
    screenshot,
    sidebar_number,
    sidebar_select,
    sidebar_value,
    streamlit_server,
    wait_for_run,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOTS = ROOT / "screenshots"
DOCS = ROOT / "docs"
#: url path → (title in the navigation, whether the page draws plotly figures)
PAGES = {
    "": ("Compare", True),
    "loss_weights": ("Loss weights", True),
    "peaks": ("Peaks", True),
    "dicee": ("DICEE", True),
    "null_tests": ("Null tests", True),
    "finetune": ("Fine-tune", False),  # figures appear once a run has started
    "evaluate": ("Evaluate", True),
    "learn": ("Learn", True),
}
README_SHOTS = {  # copied to docs/ for the README
    "": "compare.png",
    "loss_weights": "loss_weights.png",
    "peaks": "peaks.png",
    "evaluate": "evaluate.png",
}
SCREENS_DIR = DOCS / "screens"


def _requirements_or_skip() -> None:
    missing = []
    if not Path(CHROMIUM).exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package (pip install playwright)")
    if missing:
        reason = "browser test needs " + " and ".join(missing)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + "; CI=true, so this is an error, not a skip")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A ``streamlit run app.py`` subprocess; yields its URL; always stopped."""
    _requirements_or_skip()
    env = dict(os.environ)
    user = tmp_path_factory.mktemp("finetuned")
    env["LENSVIZ_USER_WEIGHTS"] = str(user)
    save_model(build_unet(TINY), user / "other.keras")  # a second model to choose
    if not (constants.WEIGHTS_DIR / constants.DEFAULT_WEIGHTS_FILE).is_file():
        shipped = tmp_path_factory.mktemp("shipped")
        save_model(build_unet(TINY), shipped / "tiny.keras")
        env["LENSVIZ_WEIGHTS_DIR"] = str(shipped)
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    with streamlit_server(env, log) as url:
        yield url


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            warm = b.new_page()  # the first run pays the TensorFlow import
            warm.goto(server)
            wait_for_run(warm)
            warm.close()
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    external = []
    pg.on(
        "request",
        lambda r: (
            external.append(r.url)
            if not r.url.startswith(("http://127.0.0.1", "data:", "blob:"))
            else None
        ),
    )
    pg.external_requests = external
    yield pg
    context.close()


def _at_size(page, width: int, height: int) -> None:
    page.set_viewport_size({"width": width, "height": height})
    page.wait_for_timeout(1200)  # let the grid reflow and plotly relayout
    wait_for_run(page)


def _keep(shot: Path, name: str) -> None:
    """With LENSVIZ_UPDATE_DOCS=1, keep a screenshot in docs/screens/ (256 colours:
    about a quarter of the bytes, and the maps read the same)."""
    if os.environ.get("LENSVIZ_UPDATE_DOCS"):
        SCREENS_DIR.mkdir(exist_ok=True)
        image = Image.open(shot).convert("RGB")
        image = image.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
        image.save(SCREENS_DIR / name, optimize=True)


@pytest.mark.parametrize("path", list(PAGES), ids=[PAGES[p][0] for p in PAGES])
def test_page_renders_and_holds_its_layout_on_three_screens(page, server, path):
    title, has_plots = PAGES[path]
    page.goto(f"{server}/{path}")
    wait_for_run(page)
    for width, height in SCREENS:
        _at_size(page, width, height)
        assert not problems(page), problems(page)
        assert not layout_problems(page), (width, layout_problems(page))
        if has_plots:
            assert page.locator(".js-plotly-plot .main-svg").count() > 0, title
        name = f"{path or 'compare'}_{width}x{height}.png"
        shot = screenshot(page, SCREENSHOTS / name, width)
        _keep(shot, name)
        if width == 1400 and path in README_SHOTS and os.environ.get("LENSVIZ_UPDATE_DOCS"):
            shutil.copyfile(shot, DOCS / README_SHOTS[path])
    assert page.locator('[data-testid="stSidebar"]').get_by_text("Data source").count() > 0
    # Nothing is fetched from another host (the page icon is a local PNG).
    assert page.external_requests == []
    # A public server: no Deploy button.
    assert page.get_by_role("button", name="Deploy").count() == 0


def test_evaluate_row_click_keeps_a_non_default_selection(page, server):
    page.goto(server)
    wait_for_run(page)
    sidebar_number(page, "Simulation seed", 3)
    model = "other (fine-tuned)"  # not the default, the first shipped model
    sidebar_select(page, "Model", model)
    go_to(page, "Evaluate")
    grid = page.locator('[data-testid="stDataFrame"]').last
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    row = 5  # 0-based data row; rows are 35 px high below a 35 px header
    rerun_after(page, lambda: page.mouse.click(box["x"] + 16, box["y"] + 35 + 35 * row + 17))
    page.wait_for_url(re.compile(re.escape(server) + r"/(compare)?\?"), timeout=60_000)
    wait_for_run(page)
    screenshot(page, SCREENSHOTS / "evaluate_opened_sample.png", 1400)
    assert not problems(page), problems(page)
    assert sidebar_value(page, "Simulation seed") == "3"
    assert sidebar_value(page, "Sample index") == str(row)
    header = page.locator('[data-testid="stMain"] [data-testid="stCaptionContainer"]').first
    header = header.inner_text()
    assert header.startswith(f"simulated (seed 3) · sample {row}:"), header
    assert header.endswith(f"model: {model}"), header
    # The address bar says so too: the page, the seed, the sample and the model.
    assert page.url.endswith(f"/?seed=3&sample={row}&model=other"), page.url


def test_finetune_from_the_browser(page, server):
    page.goto(f"{server}/finetune")
    wait_for_run(page)
    # The smallest run: 16 training maps, 8 validation maps, 1 epoch.
    for label in ("Training maps per epoch", "Validation maps"):
        slider = page.get_by_role("slider", name=label)
        slider.focus()
        rerun_after(page, lambda s=slider: s.press("Home"), timeout_s=15, required=False)
        wait_for_run(page)
    epochs = page.get_by_role("spinbutton", name="Epochs")
    epochs.fill("1")
    rerun_after(page, lambda: epochs.press("Enter"), timeout_s=15, required=False)
    wait_for_run(page)
    name = page.get_by_role("textbox", name="Name of the new weights")
    name.fill("browser run")
    rerun_after(page, lambda: name.press("Enter"), timeout_s=15, required=False)
    wait_for_run(page)
    assert page.get_by_text("browser_run.keras").count() > 0
    assert epochs.input_value() == "1"
    assert page.get_by_role("slider", name="Validation maps").get_attribute("aria-valuetext") == "8"
    page.get_by_role("button", name="Start fine-tuning").click()
    page.get_by_text("Done in").wait_for(timeout=PAGE_RUN_S * 1000)
    wait_for_run(page)
    for width, height in SCREENS:
        _at_size(page, width, height)
        assert not layout_problems(page), (width, layout_problems(page))
        name = f"finetune_done_{width}x{height}.png"
        shot = screenshot(page, SCREENSHOTS / name, width)
        _keep(shot, name)
        if width == 1400 and os.environ.get("LENSVIZ_UPDATE_DOCS"):
            shutil.copyfile(shot, DOCS / "finetune.png")
    assert not problems(page), problems(page)
    assert page.locator(".js-plotly-plot").count() >= 2  # loss and metric curves
    # The sidebar's model list has the new weights.
    models = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').last
    models.scroll_into_view_if_needed()  # a click that scrolls would close the list
    page.wait_for_timeout(300)
    models.click()
    assert page.get_by_role("option", name="browser_run (fine-tuned)").count() == 1


def test_the_cosmos_field_on_compare_and_null_tests(page, server):
    """The real field from the sidebar: whole-field maps with the empty pixels grey, then
    the null tests with their peaks and the text on what to trust."""
    page.goto(server)
    wait_for_run(page)
    source = page.locator('[data-testid="stSidebar"] label').filter(has_text="Real data: COSMOS")
    rerun_after(page, source.click)
    wait_for_run(page)
    header = page.locator('[data-testid="stMain"] [data-testid="stCaptionContainer"]').first
    assert header.inner_text().startswith("real: COSMOS (HST) · sample 0: cosmos"), header
    screenshot(page, SCREENSHOTS / "cosmos_compare_1400.png", 1400)
    assert not problems(page), problems(page)
    assert page.locator(".js-plotly-plot .main-svg").count() > 0
    go_to(page, "Null tests")
    assert not problems(page), problems(page)
    assert page.get_by_text("What can be trusted").count() == 1
    assert page.get_by_text("E/B of pure noise").count() > 0
    for width, height in SCREENS:
        _at_size(page, width, height)
        assert not layout_problems(page), (width, layout_problems(page))
        name = f"cosmos_null_tests_{width}x{height}.png"
        shot = screenshot(page, SCREENSHOTS / name, width)
        _keep(shot, name)
        if width == 1400 and os.environ.get("LENSVIZ_UPDATE_DOCS"):
            shutil.copyfile(shot, DOCS / "cosmos_null_tests.png")


def test_compare_error_bars_and_the_sky_axes_of_cosmos(page, server):
    """The calibrated error bars on Compare (± σ, then S/N) hold their layout on the three
    screens, and COSMOS's maps read RA and Dec, north up."""
    page.goto(server)
    wait_for_run(page)
    before = page.locator(".js-plotly-plot").count()
    toggle = page.locator('[data-testid="stMain"] label').filter(has_text="Calibrated error bars")
    toggle.scroll_into_view_if_needed()
    rerun_after(page, toggle.first.click)
    wait_for_run(page)
    assert not problems(page), problems(page)
    assert page.locator(".js-plotly-plot").count() >= before + 2  # at least Wiener and KS93
    for width, height in SCREENS:
        _at_size(page, width, height)
        assert not layout_problems(page), (width, layout_problems(page))
        name = f"compare_errorbars_{width}x{height}.png"
        _keep(screenshot(page, SCREENSHOTS / name, width), name)
    snr = page.locator('[data-testid="stMain"] button').filter(has_text="S/N")
    snr.first.scroll_into_view_if_needed()
    rerun_after(page, snr.first.click)
    wait_for_run(page)
    assert not problems(page), problems(page)
    assert page.get_by_text("S/N = κ̂ / σ̂").count() > 0
    source = page.locator('[data-testid="stSidebar"] label').filter(has_text="Real data: COSMOS")
    rerun_after(page, source.click)
    wait_for_run(page)
    header = page.locator('[data-testid="stMain"] [data-testid="stCaptionContainer"]').first
    assert "around RA 150." in header.inner_text(), header.inner_text()
    assert page.get_by_text("RA, Dec [deg]").count() > 0
    assert not problems(page), problems(page)
    screenshot(page, SCREENSHOTS / "cosmos_compare_errorbars_1400.png", 1400)


def test_every_page_twice_a_reload_and_a_second_session(browser, server):
    """Cached results are replayed on every later visit: none may fail (a progress bar
    updated inside a cached function made Null tests crash on any revisit)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{server}/learn")  # then every click in the loop below changes the page
    wait_for_run(page)
    titles = [title for title, _ in PAGES.values()]
    for visit in (1, 2):
        for title in titles:
            go_to(page, title)
            assert not problems(page), (visit, title, problems(page))
    page.reload()
    wait_for_run(page)
    assert not problems(page), ("reload", problems(page))
    # The reload shows the page the session was on (the URL's path).
    assert page.locator("h1").first.inner_text().startswith(titles[-1])
    other = browser.new_context(viewport={"width": 1000, "height": 800}).new_page()
    for path, (title, _) in PAGES.items():
        other.goto(f"{server}/{path}")
        wait_for_run(other)
        assert not problems(other), ("second session", title, problems(other))
    other.context.close()
    context.close()


def test_a_link_opens_its_page_and_the_address_bar_follows_the_sidebar(page, server):
    page.goto(f"{server}/peaks?seed=7&sample=4")
    wait_for_run(page)
    assert page.locator("h1").first.inner_text() == "Peaks"
    assert sidebar_value(page, "Simulation seed") == "7"
    assert sidebar_value(page, "Sample index") == "4"
    header = page.locator('[data-testid="stMain"] [data-testid="stCaptionContainer"]').first
    assert header.inner_text().startswith("simulated (seed 7) · sample 4:")
    sidebar_number(page, "Simulation seed", 9)
    page.wait_for_function("() => location.search.includes('seed=9')", timeout=10_000)
    assert re.search(r"/peaks\?seed=9&sample=4$", page.url), page.url
    page.goto(f"{server}/peaks?seed=abc&sample=4")
    wait_for_run(page)
    notice = page.locator('[data-testid="stMain"] [data-testid="stAlertContentWarning"]')
    assert "link's seed=abc is not a whole number" in notice.first.inner_text()
    assert sidebar_value(page, "Simulation seed") == "0"
    assert page.url.endswith("/peaks?sample=4"), page.url  # the address bar shows seed 0


@pytest.mark.parametrize("source", ["Built-in simulated set", "Real data: COSMOS"])
def test_the_ks93_fits_download_arrives(page, server, source, tmp_path):
    page.goto(server)
    wait_for_run(page)
    if source != "Built-in simulated set":
        label = page.locator('[data-testid="stSidebar"] label').filter(has_text=source)
        rerun_after(page, label.click)
        wait_for_run(page)
    button = page.locator('[data-testid="stDownloadButton"]', has_text="κ as FITS").last
    button.scroll_into_view_if_needed()
    with page.expect_download(timeout=60_000) as download:
        button.click()
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    assert path.name.endswith(".fits") and "ks93" in path.name
    assert not problems(page), problems(page)
    with fits.open(path) as hdul:
        assert hdul[0].header["METHOD"].startswith("KS93")
        assert hdul[0].data.ndim == 2 and hdul[0].data.shape[0] >= 128
