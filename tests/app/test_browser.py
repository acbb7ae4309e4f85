"""Real-browser test: ``streamlit run app.py`` driven by headless Chromium (playwright).

Opens every page, waits until its script has finished, checks that no exception box
(and no error message) appears and that the plotly figures render, and saves a
full-page screenshot of each to ``screenshots/`` (git-ignored); with
``LENSVIZ_UPDATE_DOCS=1`` three of them are also copied to ``docs/`` for the README.
The Evaluate page's per-sample table is clicked to check that it opens the sample on
Compare, and a tiny fine-tuning run is started from the
browser to check the live progress view and that its weights join the sidebar.

Needs Debian's ``chromium`` (``/usr/bin/chromium``) and the ``playwright`` package; the
test is skipped without them, except under CI (``CI=true``), where it fails. When the
shipped ``weights/lite.keras`` is absent the server gets a tiny untrained UNet instead.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOTS = ROOT / "screenshots"
DOCS = ROOT / "docs"
#: url path → (title shown in the navigation, whether the page draws plotly figures)
PAGES = {
    "": ("Compare", True),
    "loss_weights": ("Loss weights", True),
    "peaks": ("Peaks", True),
    "dicee": ("DICEE", True),
    "finetune": ("Fine-tune", False),  # figures appear once a run has started
    "evaluate": ("Evaluate", True),
    "learn": ("Learn", True),
}
README_SHOTS = {
    "": "compare.png",
    "loss_weights": "loss_weights.png",
    "evaluate": "evaluate.png",
}  # copied to docs/ for the README
SERVER_START_S = 90
PAGE_RUN_S = 120  # the first page pays the TensorFlow import


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A ``streamlit run app.py`` subprocess; yields its URL; always stopped."""
    _requirements_or_skip()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    env["LENSVIZ_USER_WEIGHTS"] = str(tmp_path_factory.mktemp("finetuned"))
    if not (ROOT / "weights" / "lite.keras").is_file():
        from lensviz.nn.inference import save_model
        from lensviz.nn.unet import UNetConfig, build_unet

        shipped = tmp_path_factory.mktemp("shipped")
        save_model(
            build_unet(
                UNetConfig(base_filters=4, max_filters=8, depth=3, pad=0, n_decoder_dropout=1)
            ),
            shipped / "tiny.keras",
        )
        env["LENSVIZ_WEIGHTS_DIR"] = str(shipped)
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "app.py",
                "--server.headless",
                "true",
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--browser.gatherUsageStats",
                "false",
                "--server.fileWatcherType",
                "none",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"streamlit exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
                )
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError(
                    f"streamlit did not answer within {SERVER_START_S} s:\n"
                    f"{log.read_text()[-3000:]}"
                )
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            # Open the root once: the first run pays the TensorFlow import.
            warm = b.new_page()
            warm.goto(server)
            wait_for_run(warm)
            warm.close()
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    pg = context.new_page()
    yield pg
    context.close()


def wait_for_run(page, timeout_s: float = PAGE_RUN_S) -> None:
    """Wait until the app is connected and its script has finished (twice, 0.5 s apart)."""
    app = page.locator('[data-testid="stApp"]')
    app.wait_for(timeout=timeout_s * 1000)
    deadline = time.time() + timeout_s
    settled = 0
    while time.time() < deadline:
        state = app.get_attribute("data-test-script-state")
        connected = app.get_attribute("data-test-connection-state")
        running = page.locator('[data-testid="stSpinner"]').count() > 0
        if state == "notRunning" and connected == "CONNECTED" and not running:
            settled += 1
            if settled >= 2:
                return
        else:
            settled = 0
        page.wait_for_timeout(500)
    raise AssertionError(
        f"page still running after {timeout_s} s "
        f"(state {app.get_attribute('data-test-script-state')!r})"
    )


def wait_for_plots(page, timeout_s: float = 30) -> int:
    """Wait until every plotly figure has drawn its SVG; return how many there are."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        n = page.locator(".js-plotly-plot").count()
        drawn = page.locator(".js-plotly-plot .main-svg").count()
        if n and drawn >= n:
            return n
        page.wait_for_timeout(300)
    return page.locator(".js-plotly-plot").count()


def screenshot(page, name: str) -> Path:
    """Full-page screenshot: grow the viewport to the content (the app scrolls inside)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll("
        '\'[data-testid="stMain"], [data-testid="stMainBlockContainer"]\')]'
        ".map(e => e.scrollHeight), 800)"
    )
    page.set_viewport_size({"width": 1500, "height": min(int(height) + 40, 9000)})
    page.wait_for_timeout(800)  # let plotly relayout to the new size
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": 1500, "height": 1000})
    return path


def problems(page) -> list[str]:
    found = [
        f"exception: {t}" for t in page.locator('[data-testid="stException"]').all_inner_texts()
    ]
    found += [
        f"error: {t}" for t in page.locator('[data-testid="stAlertContentError"]').all_inner_texts()
    ]
    return found


@pytest.mark.parametrize("path", list(PAGES), ids=[PAGES[p][0] for p in PAGES])
def test_page_renders_without_errors(page, server, path):
    title, has_plots = PAGES[path]
    page.goto(f"{server}/{path}")
    wait_for_run(page)
    n_plots = wait_for_plots(page) if has_plots else 0
    shot = screenshot(page, path or "compare")
    assert page.locator('[data-testid="stException"]').count() == 0, problems(page)
    assert not problems(page), problems(page)
    assert page.locator('[data-testid="stSidebar"]').get_by_text("Data source").count() > 0
    if has_plots:
        assert n_plots > 0, f"{title}: no plotly figure rendered"
        assert page.locator(".js-plotly-plot .main-svg").count() >= n_plots
    if path in README_SHOTS and os.environ.get("LENSVIZ_UPDATE_DOCS") == "1":
        DOCS.mkdir(exist_ok=True)
        shutil.copyfile(shot, DOCS / README_SHOTS[path])


def test_evaluate_row_click_opens_the_sample_on_compare(page, server):
    page.goto(f"{server}/evaluate")
    wait_for_run(page)
    grid = page.locator('[data-testid="stDataFrame"]').last
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    row = 3  # 0-based data row; rows are 35 px high below a 35 px header
    page.mouse.click(box["x"] + 16, box["y"] + 35 + 35 * row + 17)
    page.wait_for_url(re.compile(re.escape(server) + r"/(compare)?$"), timeout=60_000)
    wait_for_run(page)
    screenshot(page, "evaluate_opened_sample")
    value = page.locator('[data-testid="stSidebar"] input[aria-label^="Sample index"]')
    assert value.input_value(timeout=PAGE_RUN_S * 1000) == str(row)
    assert not problems(page), problems(page)


def test_finetune_from_the_browser(page, server):
    page.goto(f"{server}/finetune")
    wait_for_run(page)
    # The smallest run: 16 training maps, 8 validation maps, 1 epoch.
    for label in ("Training maps per epoch", "Validation maps"):
        slider = page.get_by_role("slider", name=label)
        slider.focus()
        slider.press("Home")
        wait_for_run(page)
    epochs = page.get_by_role("spinbutton", name="Epochs")
    epochs.fill("1")
    epochs.press("Enter")
    wait_for_run(page)
    name = page.get_by_role("textbox", name="Name of the new weights")
    name.fill("browser run")
    name.press("Enter")
    wait_for_run(page)
    assert page.get_by_text("browser_run.keras").count() > 0
    page.get_by_role("button", name="Start fine-tuning").click()
    page.get_by_text("Done in").wait_for(timeout=PAGE_RUN_S * 1000)
    wait_for_run(page)
    wait_for_plots(page)
    screenshot(page, "finetune_done")
    assert not problems(page), problems(page)
    assert page.locator(".js-plotly-plot").count() >= 2  # loss and metric curves
    # The sidebar's model list (its only selectbox with the built-in data) has the new one.
    page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').last.click()
    assert page.get_by_role("option", name="browser_run (fine-tuned)").count() == 1
