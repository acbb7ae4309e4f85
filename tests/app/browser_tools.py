"""Driving the app in headless Chromium: a server, settling, sidebar widgets, screenshots.

Shared by the browser test (``tests/app/test_browser.py``) and the real-browser
benchmark (``benchmarks/bench_browser.py``). Needs Debian's ``chromium`` and the
``playwright`` package (imported by the callers).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: The screens the app is laid out for (issue 20): a laptop or projector, a small
#: laptop, a desktop.
SCREENS = ((1000, 800), (1280, 720), (1400, 900))
SERVER_START_S = 90
PAGE_RUN_S = 180  # the first page pays the TensorFlow import


class Server(str):
    """A running server's URL (a ``str``), with the process id of ``streamlit run``."""

    pid: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(
    env: dict | None = None, log: Path | None = None, port: int | None = None, root: Path = ROOT
) -> Iterator[str]:
    """A ``streamlit run app.py`` subprocess in ``root`` (this checkout, or another one to
    compare with); yields its URL (a :class:`Server`, which also has the process's
    ``pid``) once healthy; always stopped."""
    env = dict(os.environ if env is None else env, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    port = free_port() if port is None else port
    out = open(log, "wb") if log is not None else subprocess.DEVNULL  # noqa: SIM115
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
        cwd=root,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    url = Server(f"http://127.0.0.1:{port}")
    url.pid = proc.pid
    try:
        deadline = time.time() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                tail = log.read_text()[-3000:] if log is not None else ""
                raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError(f"streamlit did not answer within {SERVER_START_S} s")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if log is not None:
            out.close()


#: In the page: connected, the script not running, no spinner, every plotly figure drawn.
SETTLED_PAGE_JS = """() => {
        const app = document.querySelector('[data-testid="stApp"]');
        if (!app) return false;
        if (app.getAttribute('data-test-script-state') !== 'notRunning') return false;
        if (app.getAttribute('data-test-connection-state') !== 'CONNECTED') return false;
        // The first run has drawn the page (every page has a title).
        if (!document.querySelector('[data-testid="stMain"] h1')) return false;
        if (document.querySelector('[data-testid="stSpinner"]')) return false;
        const stale = document.querySelector('[data-stale="true"]');
        if (stale) return false;
        const plots = document.querySelectorAll('.js-plotly-plot');
        for (const p of plots) if (!p.querySelector('.main-svg')) return false;
        return true;
    }"""


def is_settled(page) -> bool:
    """Connected, the script not running, no spinner, every plotly figure drawn."""
    return page.evaluate(SETTLED_PAGE_JS)


def wait_for_run(page, timeout_s: float = PAGE_RUN_S, stable_ms: int = 500) -> None:
    """Wait until the page is settled (:func:`is_settled`) and stays so for ``stable_ms``."""
    page.locator('[data-testid="stApp"]').wait_for(timeout=timeout_s * 1000)
    deadline = time.time() + timeout_s
    since = None
    while time.time() < deadline:
        if is_settled(page):
            since = since or time.time()
            if (time.time() - since) * 1000 >= stable_ms:
                return
        else:
            since = None
        page.wait_for_timeout(50)
    raise AssertionError(f"page still running after {timeout_s} s")


#: In the page: record the script's state changes, the last DOM change and the last input.
WATCH_JS = """() => {
  if (window.__lensviz) return;
  const b = window.__lensviz = {events: [], lastMut: 0, input: 0};
  const app = document.querySelector('[data-testid="stApp"]');
  new MutationObserver(() => b.events.push(
      [app.getAttribute('data-test-script-state'), performance.now()]))
    .observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
  new MutationObserver(() => { b.lastMut = performance.now(); })
    .observe(document.body, {subtree: true, childList: true, attributes: true,
                             characterData: true});
  for (const type of ['keydown', 'pointerdown'])
    document.addEventListener(type, () => {
      // A run already under way when the input arrives counts as its run.
      b.input = performance.now();
      b.events = [[app.getAttribute('data-test-script-state'), b.input]];
    }, true);
}"""

#: In the page: wait for the run an input started to settle; its timings, or null.
SETTLED_JS = """async ([quietMs, timeoutMs]) => {
  const b = window.__lensviz;
  const app = document.querySelector('[data-testid="stApp"]');
  const start = performance.now();
  while (performance.now() - start < timeoutMs) {
    const ran = b.events.some(e => e[0] === 'running');
    const idle = app.getAttribute('data-test-script-state') === 'notRunning';
    if (ran && idle && performance.now() - b.lastMut >= quietMs) {
      const ends = b.events.filter(e => e[0] === 'notRunning').map(e => e[1]);
      const end = ends[ends.length - 1];
      const starts = b.events.filter(e => e[0] === 'running').map(e => e[1]);
      return {settled_ms: Math.max(b.lastMut, end) - b.input, script_ms: end - b.input,
              start_ms: starts[starts.length - 1] - b.input};
    }
    await new Promise(r => setTimeout(r, 10));
  }
  return null;
}"""


def rerun_after(
    page, action, quiet_ms: int = 150, timeout_s: float = PAGE_RUN_S, required: bool = True
) -> dict | None:
    """Do ``action()`` (a key press or a click) and wait for the script run it starts.

    Returns the time from the input event to the settled page, measured in the page with
    ``performance.now()``: ``settled_ms`` (the run has finished and the DOM has not changed
    for ``quiet_ms``; the last change counts), ``script_ms`` (the run's end) and
    ``start_ms`` (the run's start, as the page saw it).

    With ``required=False`` an input that starts no run (the value did not change) returns
    None after ``timeout_s`` instead of failing.

    Raises
    ------
    AssertionError
        If no run started and settled within ``timeout_s`` (and ``required``).
    """
    page.evaluate(WATCH_JS)
    action()
    result = page.evaluate(SETTLED_JS, [quiet_ms, timeout_s * 1000])
    if result is None and required:
        raise AssertionError(f"no script run settled within {timeout_s} s of the input")
    return result


def go_to(page, title: str, timeout_s: float = PAGE_RUN_S) -> None:
    """Open another page through the sidebar navigation (the session, and its state,
    stay): click its link, wait until the page's title has changed, then until the page
    has settled. (Watching the script state alone missed some switches.)"""
    heading = page.locator('[data-testid="stMain"] h1').first
    before = heading.inner_text()
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
    deadline = time.time() + timeout_s
    while heading.count() == 0 or heading.inner_text() == before:
        if time.time() > deadline:
            raise AssertionError(f"the {title!r} page did not open within {timeout_s} s")
        page.wait_for_timeout(50)
    wait_for_run(page, timeout_s)


def sidebar_number(page, label: str, value: int) -> None:
    """Type ``value`` into the sidebar's number input whose label starts with ``label``."""
    box = page.locator(f'[data-testid="stSidebar"] input[aria-label^="{label}"]')
    box.fill(str(value))
    rerun_after(page, lambda: box.press("Enter"))
    wait_for_run(page)


def sidebar_select(page, label: str, option: str) -> None:
    """Choose ``option`` in the sidebar's selectbox labelled ``label``."""
    box = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').filter(
        has_text=label
    )
    # Scroll first: a click that scrolls the sidebar opens the list and the scroll closes it.
    box.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    box.click()
    rerun_after(page, page.get_by_role("option", name=option, exact=True).click)
    wait_for_run(page)


def sidebar_value(page, label: str) -> str:
    return page.locator(
        f'[data-testid="stSidebar"] input[aria-label^="{label}"]'
    ).first.input_value()


def problems(page) -> list[str]:
    found = [
        f"exception: {t}" for t in page.locator('[data-testid="stException"]').all_inner_texts()
    ]
    found += [
        f"error: {t}" for t in page.locator('[data-testid="stAlertContentError"]').all_inner_texts()
    ]
    return found


_LAYOUT = r"""() => {
  const out = {panels: [], overlaps: [], tables: [], inputs: [], labels: []};
  const box = e => {
    const r = e.getBoundingClientRect();
    return [r.left, r.right, r.top, r.bottom];
  };
  const hit = (a, b) => a[0] < b[1] - 1 && b[0] < a[1] - 1 && a[2] < b[3] - 1 && b[2] < a[3] - 1;
  for (const plot of document.querySelectorAll('.js-plotly-plot')) {
    for (const sp of plot.querySelectorAll('.cartesianlayer > .subplot')) {
      if (!sp.querySelector('.heatmaplayer .hm')) continue;
      const name = [...sp.classList].find(c => c !== 'subplot');
      const drag = plot.querySelector('.draglayer .' + name + ' .nsewdrag');
      if (drag) { const b = box(drag); out.panels.push([b[1] - b[0], b[3] - b[2]]); }
    }
    // Labels drawn on the figure: panel titles, bar titles and units (annotations), peak
    // and S/N labels (text traces). Tick labels are plotly's own business.
    const texts = [...plot.querySelectorAll('.annotation-text, .textpoint text')]
      .filter(t => t.textContent.trim() && t.getBoundingClientRect().width > 0);
    for (let i = 0; i < texts.length; i++)
      for (let j = 0; j < i; j++)
        if (hit(box(texts[i]), box(texts[j])))
          out.overlaps.push([texts[i].textContent, texts[j].textContent]);
  }
  for (const t of document.querySelectorAll('[data-testid="stTable"]'))
    out.tables.push(['table', t.scrollWidth, t.clientWidth]);
  for (const t of document.querySelectorAll('[data-testid="stDataFrame"] .dvn-scroller'))
    out.tables.push(['dataframe', t.scrollWidth, t.clientWidth]);
  const main = document.querySelector('[data-testid="stMain"]');
  for (const i of main.querySelectorAll('[data-testid="stNumberInput"] input'))
    out.inputs.push([i.getAttribute('aria-label'), i.value, i.scrollWidth, i.clientWidth]);
  for (const l of main.querySelectorAll('[data-testid="stWidgetLabel"] p')) {
    const range = document.createRange();
    // A word broken across two lines has two client rects.
    let broken = null;
    const walker = document.createTreeWalker(l, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      let at = 0;
      for (const w of n.textContent.split(/(\s+)/)) {
        if (w.trim()) {
          range.setStart(n, at); range.setEnd(n, at + w.length);
          const lines = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
          if (lines.size > 1) broken = w;
        }
        at += w.length;
      }
    }
    if (broken) out.labels.push([l.textContent, broken]);
  }
  return out;
}"""


def layout_problems(page) -> list[str]:
    """What a reader of the page at its current size would trip over.

    - a map panel (a plotly subplot with a heatmap) narrower or shorter than 200 px;
    - two labels of a figure on top of each other (titles, bar titles, units, peak and
      S/N labels);
    - a table that scrolls sideways (columns out of sight);
    - a number box too narrow for its value (``1.(``);
    - a widget label with a word broken across lines (``struct ure``).
    """
    found = page.evaluate(_LAYOUT)
    out = [f"map panel of {w:.0f} × {h:.0f} px" for w, h in found["panels"] if min(w, h) < 199.5]
    out += [f"labels overlap: {a!r} and {b!r}" for a, b in found["overlaps"]]
    out += [
        f"{kind} scrolls sideways ({scroll} px of content in {client} px)"
        for kind, scroll, client in found["tables"]
        if scroll > client + 2
    ]
    out += [
        f"number box {label!r} shows {value!r} clipped ({scroll} px in {client} px)"
        for label, value, scroll, client in found["inputs"]
        if scroll > client + 1
    ]
    out += [f"label {text!r} breaks the word {word!r}" for text, word in found["labels"]]
    return out


def screenshot(page, path: Path, width: int) -> Path:
    """Full-page screenshot ``width`` px wide: the viewport grows to the content (the app
    scrolls inside its main block), then returns to ``width`` × 1000."""
    path.parent.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": width, "height": 1000})
    page.wait_for_timeout(500)
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll("
        '\'[data-testid="stMain"], [data-testid="stMainBlockContainer"]\')]'
        ".map(e => e.scrollHeight), 800)"
    )
    page.set_viewport_size({"width": width, "height": min(int(height) + 40, 9000)})
    page.wait_for_timeout(1200)  # let plotly relayout to the new size
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": width, "height": 1000})
    return path
