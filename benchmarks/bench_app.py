"""Server-side app timings under AppTest (no browser); prints numbers and saves JSON.

    python benchmarks/bench_app.py [--out benchmarks/app.json] [--moves 15]

These are the Python side only. What a user waits for, in a real browser, is measured
by ``benchmarks/bench_browser.py``; quote that one.

slider_rerun
    Loss weights page under AppTest: the time from setting the "peaks" coefficient
    slider to the finished rerun of the page, warm (after one untimed move). Median
    over ``--moves`` moves.
first_compare_render_apptest
    A fresh Python process running AppTest of the Compare page (TensorFlow import, model
    load and the simulated set included).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def slider_rerun(moves: int) -> dict:
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
    return {
        "moves": moves,
        "median_ms": 1e3 * statistics.median(times),
        "min_ms": 1e3 * min(times),
        "max_ms": 1e3 * max(times),
        "target_ms": 300,
    }


def fresh_apptest_compare() -> dict:
    code = (
        "import time; t0 = time.perf_counter()\n"
        "from streamlit.testing.v1 import AppTest\n"
        "at = AppTest.from_file('app.py', default_timeout=300); at.run()\n"
        "assert not at.exception, at.exception\n"
        "print(time.perf_counter() - t0)\n"
    )
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return {"process_wall_s": wall, "in_process_s": float(out.stdout.strip().splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "app.json"))
    parser.add_argument("--moves", type=int, default=15)
    args = parser.parse_args()
    results = {
        "slider_rerun": slider_rerun(args.moves),
        "first_compare_render_apptest": fresh_apptest_compare(),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(results, indent=1))
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
