"""Many users at once: K real browser sessions on one server, each opening Compare and
switching seeds.

    python benchmarks/bench_load.py [--sessions 1 4 8] [--switches 4] [--out benchmarks/load.json]

For each K a fresh ``streamlit run app.py`` is started and warmed by one session (the
first visit loads TensorFlow and the model; that is the cold start, measured by
``bench_browser.py``). Then K sessions of Debian's Chromium open Compare at once, and each
then steps its sidebar's simulation seed ``--switches`` times (session k starts at seed
``100 + 20 k``, so every step simulates a set no one else has asked for: the worst case
for the server). Reported per K:

first_render
    From opening the page to the settled Compare page (the script finished, every
    figure drawn), per session: median and maximum.
switch
    From the key press on the seed to the settled page (in the page, ``performance.now``,
    as ``bench_browser.py``): median, 90th percentile, maximum over every switch of every
    session.
errors
    Exception boxes, error messages, and inputs whose run did not settle within 120 s.
server RSS
    Resident memory of the server process (``/proc/PID/status``) after the warm-up, its
    peak while the sessions ran (sampled every 0.2 s), and at the end, with the growth
    from the warm-up (target ≤ 0.5 GB) and 0 errors.

The machine's load average is recorded before and after each K: timings on a shared
2-core machine move with it, and a larger K shares the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

from playwright.async_api import async_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.app.browser_tools import (  # noqa: E402  (the browser test's driver)
    CHROMIUM,
    CHROMIUM_ARGS,
    SETTLED_JS,
    SETTLED_PAGE_JS,
    WATCH_JS,
    streamlit_server,
)

SETTLE_TIMEOUT_S = 120
QUIET_MS = 150
SEED_FIRST, SEED_STRIDE = 100, 20  # session k steps through seeds 100 + 20k, …
RSS_GROWTH_TARGET_GB = 0.5


def rss_bytes(pid: int) -> tuple[int, int]:
    """``(VmRSS, VmHWM)`` of process ``pid`` in bytes (Linux)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) * 1024
    return fields["VmRSS"], fields["VmHWM"]


class RssSampler:
    """Samples a process's resident memory every ``period_s`` in a thread; ``peak``."""

    def __init__(self, pid: int, period_s: float = 0.2):
        self.pid, self.period_s, self.peak = pid, period_s, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes(self.pid)[0])
            self._stop.wait(self.period_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


async def settled(page, timeout_s: float = SETTLE_TIMEOUT_S) -> None:
    """Wait until the page is settled and stays so for QUIET_MS."""
    deadline = time.monotonic() + timeout_s
    since = None
    while time.monotonic() < deadline:
        if await page.evaluate(SETTLED_PAGE_JS):
            since = since or time.monotonic()
            if time.monotonic() - since >= QUIET_MS / 1000:
                return
        else:
            since = None
        await asyncio.sleep(0.05)
    raise TimeoutError(f"page not settled after {timeout_s} s")


async def problems(page) -> list[str]:
    boxes = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
    return await boxes.all_inner_texts()


async def session(browser, url: str, k: int, switches: int) -> dict:
    """One user: open Compare, then step the seed ``switches`` times."""
    out = {"first_render_s": None, "switch_ms": [], "errors": []}
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    page = await context.new_page()
    try:
        start = time.perf_counter()
        await page.goto(url)
        await settled(page)
        out["first_render_s"] = time.perf_counter() - start - QUIET_MS / 1000
        out["errors"] += await problems(page)
        box = page.locator('[data-testid="stSidebar"] input[aria-label^="Simulation seed"]')
        for i in range(switches):
            await box.fill(str(SEED_FIRST + SEED_STRIDE * k + i))
            await page.evaluate(WATCH_JS)
            await box.press("Enter")
            timing = await page.evaluate(SETTLED_JS, [QUIET_MS, SETTLE_TIMEOUT_S * 1000])
            if timing is None:
                out["errors"].append(f"seed step {i} did not settle in {SETTLE_TIMEOUT_S} s")
                continue
            out["switch_ms"].append(timing["settled_ms"])
            out["errors"] += await problems(page)
    except Exception as exc:  # a benchmark reports what went wrong and goes on
        out["errors"].append(f"{type(exc).__name__}: {exc}")
    finally:
        await context.close()
    return out


async def run_k(url: str, k: int, switches: int) -> list[dict]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            warm = await browser.new_page()  # TensorFlow and the model load here
            await warm.goto(url)
            await settled(warm, 300)
            await warm.close()
            return await asyncio.gather(*(session(browser, url, i, switches) for i in range(k)))
        finally:
            await browser.close()


def p90(values: list[float]) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(0.9 * (len(v) - 1))))]


def measure(k: int, switches: int) -> dict:
    load_before = os.getloadavg()
    with streamlit_server() as url:
        # Warm: one session, then the baseline memory of a server that has served one.
        asyncio.run(run_k(url, 0, 0))
        rss_warm = rss_bytes(url.pid)[0]
        with RssSampler(url.pid) as sampler:
            results = asyncio.run(run_k(url, k, switches))
        rss_end = rss_bytes(url.pid)[0]
    first = [r["first_render_s"] for r in results if r["first_render_s"] is not None]
    switch = [ms for r in results for ms in r["switch_ms"]]
    errors = [e for r in results for e in r["errors"]]
    gb = 1024**3
    return {
        "sessions": k,
        "switches_per_session": switches,
        "first_render_s": {
            "median": statistics.median(first) if first else None,
            "max": max(first) if first else None,
        },
        "switch_ms": {
            "n": len(switch),
            "median": statistics.median(switch) if switch else None,
            "p90": p90(switch) if switch else None,
            "max": max(switch) if switch else None,
        },
        "errors": errors,
        "rss_gb": {
            "after_warm_up": rss_warm / gb,
            "peak": sampler.peak / gb,
            "end": rss_end / gb,
            "growth": (max(sampler.peak, rss_end) - rss_warm) / gb,
        },
        "met": not errors and (max(sampler.peak, rss_end) - rss_warm) / gb <= RSS_GROWTH_TARGET_GB,
        "load_avg_before": load_before,
        "load_avg_after": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--switches", type=int, default=4)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "load.json"))
    args = parser.parse_args()
    results = {"cpus": os.cpu_count(), "runs": []}
    for k in args.sessions:
        run = measure(k, args.switches)
        print(json.dumps(run, indent=1), flush=True)
        results["runs"].append(run)
    results["note"] = (
        "load averages are the 1-, 5- and 15-minute ones; every switch simulates a set "
        "no other session asked for (the worst case)"
    )
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
