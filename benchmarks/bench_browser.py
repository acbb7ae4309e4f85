"""Real-browser latency of the app: Playwright driving Debian's Chromium.

    python benchmarks/bench_browser.py [--moves 12] [--out benchmarks/browser.json]

Every figure is the time from an input event in the page (a key press on a slider, a
click on a button or a navigation link) to the **settled page**: the script run that the
input started has finished (``data-test-script-state`` back to ``notRunning``) and the
DOM has stopped changing (no mutation for 150 ms; plotly's redraw included). It is
measured inside the page with ``performance.now()`` (a MutationObserver records the
script-state transitions and the last DOM change), so Playwright's own round trips are
not counted. Each measurement waits for the previous one to settle.

slider_loss_weights
    The "peaks" coefficient on Loss weights, one step (0.1) per key press.
slider_compare, slider_peaks
    The sidebar's KS93 smoothing σ (one step) on Compare and on Peaks (after switching off
    "σ from the data's depth", which hides the slider).
switch_sample
    The sidebar's sample index, +1 (its step button), on Compare: each step shows a
    sample not seen before (UNet, Wiener and KS93 run, nothing cached).
switch_page
    Compare ↔ Loss weights through the sidebar navigation.
first_compare
    A fresh server (``streamlit run app.py``): from starting the process to the first κ
    maps drawn (the truth, Wiener and KS93, before TensorFlow has loaded), to the UNet's
    cell drawn and to the Compare page settled; and from opening the page to settled.

Median and 90th percentile over ``--moves`` inputs after one untimed warm-up input (an
input that starts no run within 20 s is counted, not timed); ``--baseline DIR`` measures
another checkout in the same run, in turns with this one (cold starts alternated, the
Compare slider and new samples interleaved on both servers), so that a shared machine's
load falls on both alike;
targets: sliders < 300 ms (median and p90), page switch < 1 s, first κ maps < 5 s and
the whole first Compare < 10 s from process start.
The load average of the machine is recorded before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.app.browser_tools import (  # noqa: E402  (the browser test's driver)
    CHROMIUM,
    CHROMIUM_ARGS,
    go_to,
    rerun_after,
    streamlit_server,
    wait_for_run,
)

TARGETS_MS = {
    "slider_loss_weights": 300,
    "slider_compare": 300,
    "slider_peaks": 300,
    "switch_sample": 1000,
    "switch_page": 1000,
}
QUIET_MS = 150  # the page counts as settled once the DOM is unchanged this long
FIRST_COMPARE_TARGET_S = 10
FIRST_MAPS_TARGET_S = 5  # the first κ maps (KS93, Wiener, the truth) from process start


def _timed(page, action) -> dict | None:
    """The timings of the run ``action`` starts, or None when no run settled in 20 s (a
    key press that Streamlit did not turn into a run; counted, not timed)."""
    return rerun_after(page, action, quiet_ms=QUIET_MS, timeout_s=20, required=False)


def _summary(samples: list[dict | None], target_ms: float) -> dict:
    missed = sum(s is None for s in samples)
    samples = [s for s in samples if s is not None]
    settled = sorted(s["settled_ms"] for s in samples)
    script = sorted(s["script_ms"] for s in samples)

    def p90(v):
        return v[min(len(v) - 1, int(round(0.9 * (len(v) - 1))))]

    return {
        "moves": len(samples),
        "inputs_without_a_run": missed,
        "median_ms": statistics.median(settled),
        "p90_ms": p90(settled),
        "min_ms": settled[0],
        "max_ms": settled[-1],
        "script_median_ms": statistics.median(script),
        "start_median_ms": statistics.median(s["start_ms"] for s in samples),
        "target_ms": target_ms,
        "met": statistics.median(settled) < target_ms and p90(settled) < target_ms,
        "all_ms": [round(s["settled_ms"], 1) for s in samples],
    }


def _slider_moves(page, name: str, moves: int) -> list[dict]:
    slider = page.get_by_role("slider", name=name).first
    slider.focus()
    out = []
    for i in range(moves + 1):  # the first move warms the caches and is not counted
        key = "ArrowRight" if (i // 2) % 2 == 0 else "ArrowLeft"
        r = _timed(page, lambda k=key: slider.press(k))
        if i:
            out.append(r)
    return out


def interactive(url: str, moves: int) -> dict:
    results = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        wait_for_run(page)
        nav = page.locator('[data-testid="stSidebarNav"] a')

        def go(title: str) -> None:
            go_to(page, title)
            page.wait_for_timeout(300)

        go("Loss weights")
        results["slider_loss_weights"] = _summary(
            _slider_moves(page, "coefficient a (peaks)", moves), TARGETS_MS["slider_loss_weights"]
        )
        go("Compare")
        # The KS93 σ follows the data's depth by default; the toggle hands it to the slider.
        auto = page.locator('[data-testid="stSidebar"] [data-testid="stCheckbox"]').filter(
            has_text="σ from the data's depth"
        )
        if auto.count() and auto.locator("input").is_checked():
            _timed(page, lambda: auto.locator("label").first.click())
            wait_for_run(page)
        results["slider_compare"] = _summary(
            _slider_moves(page, "KS93 smoothing σ (pixels)", moves), TARGETS_MS["slider_compare"]
        )
        go("Peaks")
        results["slider_peaks"] = _summary(
            _slider_moves(page, "KS93 smoothing σ (pixels)", moves), TARGETS_MS["slider_peaks"]
        )
        go("Compare")
        box = page.locator('[data-testid="stSidebar"] input[aria-label^="Sample index"]')
        step = page.locator('[data-testid="stSidebar"] [data-testid="stNumberInputStepUp"]').last
        samples = []
        for i in range(moves + 1):
            if i % 20 == 0:  # start from sample 0 (untimed): every step is a new sample
                box.fill("0")
                _timed(page, lambda: box.press("Enter"))
            r = _timed(page, step.click)
            if i:
                samples.append(r)
        results["switch_sample"] = _summary(samples, TARGETS_MS["switch_sample"])
        switches = []
        for i in range(moves + 1):
            title = "Loss weights" if i % 2 == 0 else "Compare"
            r = _timed(page, lambda t=title: nav.filter(has_text=t).first.click())
            if i:
                switches.append(r)
        results["switch_page"] = _summary(switches, TARGETS_MS["switch_page"])
        browser.close()
    return results


_DRAWN_JS = """() => {
  const titles = [...document.querySelectorAll('.js-plotly-plot .annotation-text')]
    .map(t => t.textContent);
  return {maps: titles.some(t => t.startsWith('KS93')),
          unet: titles.includes('UNet')};
}"""


def first_compare(root: Path = ROOT) -> dict:
    """A fresh server: process start → the first κ maps drawn (KS93's cell), → the UNet's
    cell drawn, → the page settled; and page open → settled."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        t0 = time.perf_counter()
        with streamlit_server(root=root) as url:
            t_up = time.perf_counter()
            page.goto(url)
            t_open = time.perf_counter()
            t_maps = t_unet = None
            while t_unet is None and time.perf_counter() - t0 < 300:
                drawn = page.evaluate(_DRAWN_JS)
                now = time.perf_counter()
                if drawn["maps"] and t_maps is None:
                    t_maps = now
                if drawn["unet"]:
                    t_unet = now
                page.wait_for_timeout(25)
            wait_for_run(page, timeout_s=300, stable_ms=QUIET_MS)
            t_done = time.perf_counter() - QUIET_MS / 1000
        browser.close()
    total = t_done - t0
    return {
        "server_healthy_s": t_up - t0,
        "first_maps_s": None if t_maps is None else t_maps - t0,
        "unet_cell_s": None if t_unet is None else t_unet - t0,
        "page_open_to_settled_s": t_done - t_open,
        "process_start_to_settled_s": total,
        "first_maps_target_s": FIRST_MAPS_TARGET_S,
        "target_s": FIRST_COMPARE_TARGET_S,
        "met": t_maps is not None
        and t_maps - t0 < FIRST_MAPS_TARGET_S
        and total < FIRST_COMPARE_TARGET_S,
    }


def _compare_page(page, url: str):
    """Open Compare with the KS93 slider in hand; its slider and the sample's step button."""
    page.goto(url)
    wait_for_run(page)
    auto = page.locator('[data-testid="stSidebar"] [data-testid="stCheckbox"]').filter(
        has_text="σ from the data's depth"
    )
    if auto.count() and auto.locator("input").is_checked():
        _timed(page, lambda: auto.locator("label").first.click())
        wait_for_run(page)
    slider = page.get_by_role("slider", name="KS93 smoothing σ (pixels)").first
    box = page.locator('[data-testid="stSidebar"] input[aria-label^="Sample index"]')
    step = page.locator('[data-testid="stSidebar"] [data-testid="stNumberInputStepUp"]').last
    return slider, box, step


def interleaved(urls: dict[str, str], rounds: int, per_round: int = 4) -> dict:
    """The Compare slider and a new sample on several servers, taken in turns: each round
    makes ``per_round`` inputs on every server, the order alternating, so that the load
    of a shared machine falls on all of them alike."""
    samples = {name: {"slider_compare": [], "switch_sample": []} for name in urls}
    loads = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pages = {}
        for name, url in urls.items():
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            pages[name] = (page, *_compare_page(page, url))
            _timed(page, lambda s=pages[name][1]: s.press("ArrowRight"))  # warm, untimed
        for r in range(rounds):
            order = list(pages) if r % 2 == 0 else list(pages)[::-1]
            for name in order:
                page, slider, box, step = pages[name]
                page.bring_to_front()
                slider.focus()
                for i in range(per_round):
                    key = "ArrowRight" if (i // 2) % 2 == 0 else "ArrowLeft"
                    samples[name]["slider_compare"].append(
                        _timed(page, lambda k=key, s=slider: s.press(k))
                    )
                if r == 0:  # from sample 0 on, every step a sample not seen before
                    box.fill("0")
                    _timed(page, lambda b=box: b.press("Enter"))
                for _ in range(per_round):
                    samples[name]["switch_sample"].append(_timed(page, step.click))
            loads.append(os.getloadavg()[0])
        browser.close()
    out = {
        name: {k: _summary(v, TARGETS_MS[k]) for k, v in measured.items()}
        for name, measured in samples.items()
    }
    out["load_avg_1min_per_round"] = loads
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=12)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "browser.json"))
    parser.add_argument("--url", help="measure a running server instead of starting one")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout (e.g. `git archive COMMIT | tar -x -C DIR`) measured in "
        "the same run: cold starts taken in turns with this one, then the Compare slider "
        "and new samples on both servers in turns (interleaved), under the same load",
    )
    parser.add_argument("--cold-starts", type=int, default=3, help="per app, with --baseline")
    parser.add_argument(
        "--rounds", type=int, default=5, help="of 4 + 4 inputs, with --baseline (≤ 5: 24 samples)"
    )
    args = parser.parse_args()
    load_before = os.getloadavg()
    results = {"first_compare": first_compare()}
    if args.url:
        results |= interactive(args.url, args.moves)
    else:
        with streamlit_server() as url:
            results |= interactive(url, args.moves)
    if args.baseline is not None:
        # Cold starts in turns, then the Compare inputs in turns on both servers at once.
        cold = {"this": [], "baseline": []}
        for _ in range(args.cold_starts):
            cold["this"].append(first_compare())
            cold["baseline"].append(first_compare(args.baseline))
        with streamlit_server() as this, streamlit_server(root=args.baseline) as base:
            turns = interleaved({"this": this, "baseline": base}, args.rounds)
        results["against_baseline"] = {
            "checkout": str(args.baseline),
            "first_compare": cold,
            "interleaved": turns,
        }
    results["machine"] = {
        "cpus": os.cpu_count(),
        "load_avg_before": load_before,
        "load_avg_after": os.getloadavg(),
        "note": "1-, 5- and 15-minute load averages",
    }
    print(json.dumps(results, indent=1))
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
