"""Count table of the data-reader fuzz suite (issues 11 and 21); prints it and saves JSON.

    python benchmarks/fuzz_report.py [--seed 11] [--out benchmarks/fuzz.json]

Runs every case of ``tests/data/fuzz_inputs.py`` through every entry point it applies
to (``upload``: :func:`lensviz.data.load_upload`; ``pair``:
:func:`lensviz.data.load_uploads` with two files; ``server``:
:func:`lensviz.data.load_dataset` on a path, as the app reads a server dataset; ``cli``:
:func:`lensviz.cli.data.load_data`, the command line's ``DATA`` reader; and, from issue
21, ``fits_out``, ``model``, ``kappa``, ``mask``, ``settings`` and ``cache_key``, see
that module) and counts the outcomes by class: ``accepted`` or the documented error type
raised. Anything else (an escaped exception type, an accepted hostile input, a leaked
secret, a message that does not name the input, a peak over the budget, a file left
behind) is counted as a problem and listed; the target is none.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lensviz.data import DataWarning  # noqa: E402
from tests.data import fuzz_inputs as fz  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=11, help="generator seed (the test's)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "fuzz.json"))
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", "Reading `.npy` or `.npz` file required additional")
    warnings.filterwarnings("ignore", category=DataWarning)  # invalid WCS cards left out
    with tempfile.TemporaryDirectory() as tmp:
        secrets = fz.plant_secrets(Path(tmp) / "secrets")
        t0 = time.perf_counter()
        cases = fz.generate(args.seed, secrets)
        t1 = time.perf_counter()
        trials = [fz.run_trial(c, e, Path(tmp) / "cases") for c in cases for e in c.entry_points()]
        t2 = time.perf_counter()
    table = fz.count_table(trials)
    columns = [o for o in fz.OUTCOMES if any(o in row for row in table.values())]
    columns += sorted({o for row in table.values() for o in row} - set(columns))
    width = max(len(k) for k in table)
    print(f"{'class':<{width}}  {'inputs':>6}  " + "  ".join(f"{c:>15}" for c in columns))
    for klass in fz.CLASSES:
        row = table.get(klass, {})
        n_inputs = sum(1 for c in cases if c.klass == klass)
        print(
            f"{klass:<{width}}  {n_inputs:>6}  "
            + "  ".join(f"{row.get(c, 0):>15}" for c in columns)
        )
    totals = {c: sum(row.get(c, 0) for row in table.values()) for c in columns}
    print(f"{'total':<{width}}  {len(cases):>6}  " + "  ".join(f"{totals[c]:>15}" for c in columns))
    by_entry = {e: sum(1 for t in trials if t.entry == e) for e in fz.ENTRY_POINTS}
    problems = [f"{t.klass} {t.name} via {t.entry}: {p}" for t in trials for p in t.problems]
    malformed = sum(1 for c in cases if c.expect != "accepted")  # hostile, or possibly
    print(
        f"\n{len(cases)} inputs ({malformed} malformed), {len(trials)} trials "
        f"({', '.join(f'{e}: {n}' for e, n in by_entry.items())}); "
        f"generated in {t1 - t0:.1f} s, run in {t2 - t1:.1f} s"
    )
    print(
        f"escaped exception types: "
        f"{sorted({t.outcome for t in trials if t.outcome.startswith('escaped')}) or 'none'}; "
        f"secrets leaked: {sum(t.leaked for t in trials)}; "
        f"largest traced peak: {max(t.peak_bytes for t in trials) / 2**20:.1f} MiB; "
        f"problems: {len(problems)}"
    )
    for line in problems[:20]:
        print("  " + line)
    result = {
        "seed": args.seed,
        "inputs": len(cases),
        "malformed_inputs": malformed,
        "trials": len(trials),
        "trials_by_entry_point": by_entry,
        "table": {k: table.get(k, {}) for k in fz.CLASSES},
        "inputs_by_class": {k: sum(1 for c in cases if c.klass == k) for k in fz.CLASSES},
        "totals": totals,
        "escaped": sum(1 for t in trials if t.outcome.startswith("escaped")),
        "leaked": sum(t.leaked for t in trials),
        "max_traced_peak_mib": round(max(t.peak_bytes for t in trials) / 2**20, 2),
        "problems": problems,
        "generate_s": round(t1 - t0, 1),
        "run_s": round(t2 - t1, 1),
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"saved {args.out}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
