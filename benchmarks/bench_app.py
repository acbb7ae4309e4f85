"""App responsiveness benchmarks; prints numbers and saves JSON.

    python benchmarks/bench_app.py [--out benchmarks/app.json] [--moves 15]

slider_rerun
    Loss weights page under AppTest: the time from setting the "peaks" coefficient
    slider to the finished rerun of the page, warm (after one untimed move). Median
    over ``--moves`` moves. Target: under 300 ms.
first_compare_render
    A fresh ``streamlit run app.py`` server (TensorFlow import, model load and the
    simulated set included): from starting the process to the Compare page showing its
    κ figures in headless Chromium. Target: under 15 s. Also measured without a browser:
    a fresh Python process running AppTest of the Compare page.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]


def slider_rerun(moves: int) -> dict:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("ui/pages/loss_weights.py").run()
    at.slider(key="lw_coeff_peaks").set_value(3.5).run()  # warm: caches and traces
    times = []
    for i in range(moves):
        value = 1.0 + (i % 8) * 0.5
        t0 = time.perf_counter()
        at.slider(key="lw_coeff_peaks").set_value(value).run()
        times.append(time.perf_counter() - t0)
        if at.exception:
            raise RuntimeError(f"the page raised: {at.exception[0].message}")
    return {"moves": moves, "median_ms": 1e3 * statistics.median(times),
            "min_ms": 1e3 * min(times), "max_ms": 1e3 * max(times),
            "target_ms": 300}


def fresh_apptest_compare() -> dict:
    code = ("import time; t0 = time.perf_counter()\n"
            "from streamlit.testing.v1 import AppTest\n"
            "at = AppTest.from_file('app.py', default_timeout=300); at.run()\n"
            "assert not at.exception, at.exception\n"
            "print(time.perf_counter() - t0)\n")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=300,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return {"process_wall_s": wall, "in_process_s": float(out.stdout.strip().splitlines()[-1])}


def fresh_server_compare() -> dict:
    if not Path(CHROMIUM).exists():
        return {"skipped": f"{CHROMIUM} not installed"}
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.port", str(port), "--browser.gatherUsageStats", "false"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            deadline = time.time() + 120
            while True:
                try:
                    page.goto(f"http://127.0.0.1:{port}/", timeout=5000)
                    break
                except Exception:
                    if time.time() > deadline:
                        raise
                    time.sleep(0.2)
            t_page = time.perf_counter() - t0
            page.wait_for_selector(".js-plotly-plot >> nth=1", timeout=120_000)
            page.wait_for_function(
                "!document.querySelector('[data-testid=\"stStatusWidget\"]')",
                timeout=120_000)
            t_plots = time.perf_counter() - t0
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {"server_answered_s": t_page, "compare_figures_shown_s": t_plots,
            "target_s": 15}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "app.json"))
    parser.add_argument("--moves", type=int, default=15)
    args = parser.parse_args()
    results = {
        "slider_rerun": slider_rerun(args.moves),
        "first_compare_render_browser": fresh_server_compare(),
        "first_compare_render_apptest": fresh_apptest_compare(),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(results, indent=1))
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
