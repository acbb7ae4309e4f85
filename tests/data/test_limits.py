"""lensviz.data.limits: the working-memory estimates against measured peaks (issue 21, item 2)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lensviz import simulate
from lensviz.data import LimitError, limits

ROOT = Path(__file__).resolve().parents[2]
linux = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="measures VmHWM of /proc (Linux)"
)

# The peak resident memory of the child's own address space: VmHWM, which exec resets.
# (ru_maxrss is not: on Linux a child of a 1 GB pytest process starts at 1 GB, and the
# growth it shows is 0 until the child passes its parent's peak.)
_CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    from lensviz.simulate import SimulationConfig, observe_kappa, simulate_batch

    def peak():
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:"))

    kind, args = sys.argv[1], json.loads(sys.argv[2])
    if kind == "observe":
        side, n_gal, pixel = args
        kappa = np.random.default_rng(0).normal(0, 0.05, (side, side)).astype(np.float32)
        base = peak()
        observe_kappa(kappa, np.random.default_rng(0), n_gal, 0.26, pixel)
    else:
        n, npix, n_gal = args
        config = SimulationConfig(npix=npix, n_gal=n_gal)
        base = peak()
        simulate_batch(n, 0, config)
    print(peak() - base)
""")


def _peak(kind: str, args) -> int:
    """Growth of the peak resident memory of a fresh process running one computation."""
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, kind, json.dumps(args)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return int(proc.stdout.split()[-1])


@linux
@pytest.mark.parametrize(
    ("side", "n_gal", "pixel"),
    [(1024, 30.0, 0.5), (1024, 10_000.0, 1.0), (512, 10_000.0, 10.0)],
)
def test_the_observation_estimate_bounds_the_measured_peak(side, n_gal, pixel):
    measured = _peak("observe", [side, n_gal, pixel])
    estimate = limits.observation_bytes((side, side))
    assert measured <= estimate, (measured, estimate)
    assert estimate <= 3 * measured + limits.WORK_OVERHEAD_BYTES  # and not absurdly above


@linux
def test_the_simulation_estimate_bounds_the_measured_peak_at_any_depth():
    config = simulate.SimulationConfig(npix=512)
    estimate = limits.simulation_bytes(2, 512, config.canvas_px)
    peaks = [_peak("sim", [2, 512, n_gal]) for n_gal in (30.0, 10_000.0)]
    assert max(peaks) <= estimate, (peaks, estimate)
    # issue 21: 10,000 galaxies per arcmin² at most 1.5 × the peak at 30
    assert peaks[1] <= 1.5 * peaks[0], peaks


def test_the_estimates_follow_the_simulator():
    assert limits.EXACT_GALAXIES_PER_PIXEL == simulate.EXACT_GALAXIES_MAX
    assert limits.SAMPLE_BYTES_PER_PIXEL == 16  # float32 ε (3 channels) and κ


def test_every_allowed_map_and_default_batch_fits_the_budget():
    # the largest κ map any reader accepts, with observe_kappa's default padding
    side = limits.MAX_FIELD_PX
    assert limits.check_observation((side, side)) <= limits.MAX_WORK_BYTES
    assert limits.check_observation((limits.MIN_FIELD_PX, side)) <= limits.MAX_WORK_BYTES
    # the command line's defaults (--batch 256, read-ahead 2: 4 batches alive)
    canvas = simulate.SimulationConfig().canvas_px
    assert limits.check_simulation(256, 128, canvas, batches=4) < 400 * 2**20
    # a 2048² field on its canvas fits one sample at a time
    limits.check_simulation(1, 2048, 2048 + 2 * 128, batches=4)


def test_settings_beyond_the_budget_get_one_clear_message():
    with pytest.raises(
        LimitError,
        match=r"^simulate --batch 100000: simulating 100000 samples of 128 × 128 px .* needs "
        r"about 97\.78 GiB of memory; the budget is 1\.50 GiB .*use batches of at most 1410 "
        r"samples \(--batch 1410\)$",
    ):
        limits.check_simulation(100_000, 128, 384, batches=4, source="simulate --batch 100000")
    with pytest.raises(LimitError, match=r"at most 1 sample \(--batch 1\)$"):
        limits.check_simulation(2, 2048, 2304, batches=4, source="sim:2")
    with pytest.raises(LimitError, match=r"smaller field or canvas"):
        limits.check_simulation(1, 4096, 4352, source="sim:1")
    with pytest.raises(LimitError, match=r"^k\.fits: observing a 2048 × 2048 map padded by 4096"):
        limits.check_observation((2048, 2048), pad=4096, source="k.fits")
