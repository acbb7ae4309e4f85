"""Real-browser test: ``streamlit run app.py`` driven by headless Chromium (playwright).

Opens every page at 1400 and 1000 px wide, waits until its script has finished, checks
that no exception box (and no error message) appears and that the plotly figures
render, and saves a full-page screenshot of each to ``screenshots/`` (git-ignored); with
``LENSVIZ_UPDATE_DOCS=1`` the 1400 px ones of :data:`README_SHOTS` (and the finished
fine-tuning run, as ``finetune.png``) are also copied to ``docs/`` for the README.
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

from lensviz import constants
from lensviz.nn.inference import save_model
from lensviz.nn.unet import build_unet
from tests.app.apptools import TINY
from tests.app.browser_tools import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PAGE_RUN_S,
    ROOT,
    go_to,
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
WIDTHS = (1400, 1000)


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


@pytest.mark.parametrize("path", list(PAGES), ids=[PAGES[p][0] for p in PAGES])
def test_page_renders_without_errors_at_two_widths(page, server, path):
    title, has_plots = PAGES[path]
    page.goto(f"{server}/{path}")
    wait_for_run(page)
    for width in WIDTHS:
        shot = screenshot(page, SCREENSHOTS / f"{path or 'compare'}_{width}.png", width)
        wait_for_run(page)
        assert not problems(page), problems(page)
        if has_plots:
            assert page.locator(".js-plotly-plot .main-svg").count() > 0, title
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
    page.wait_for_url(re.compile(re.escape(server) + r"/(compare)?$"), timeout=60_000)
    wait_for_run(page)
    screenshot(page, SCREENSHOTS / "evaluate_opened_sample.png", 1400)
    assert not problems(page), problems(page)
    assert sidebar_value(page, "Simulation seed") == "3"
    assert sidebar_value(page, "Sample index") == str(row)
    header = page.locator('[data-testid="stMain"] [data-testid="stCaptionContainer"]').first
    header = header.inner_text()
    assert header.startswith(f"simulated (seed 3) · sample {row}:"), header
    assert header.endswith(f"model: {model}"), header


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
    for width in WIDTHS:
        shot = screenshot(page, SCREENSHOTS / f"finetune_done_{width}.png", width)
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
    shot = screenshot(page, SCREENSHOTS / "cosmos_null_tests_1400.png", 1400)
    assert not problems(page), problems(page)
    assert page.get_by_text("What can be trusted").count() == 1
    assert page.get_by_text("E/B of pure noise").count() > 0
    if os.environ.get("LENSVIZ_UPDATE_DOCS"):
        shutil.copyfile(shot, DOCS / "cosmos_null_tests.png")
