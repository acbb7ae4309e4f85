"""``python -m benchmarks [NAME ...] [--quick] [--out FILE.json]`` from a checkout."""

import argparse
import sys

from benchmarks import BENCHMARKS, ON_REQUEST, RESULTS_PATH, format_results, run, save


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, print a summary and write JSON; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="Run lensviz's benchmarks and write JSON."
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run (default all but {', '.join(ON_REQUEST)}): {' '.join(BENCHMARKS)}",
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument(
        "--out", default=str(RESULTS_PATH), help="JSON output (default benchmarks/results.json)"
    )
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmarks {unknown}; available: {', '.join(BENCHMARKS)}")
    results = run(args.names, quick=args.quick)
    print(format_results(results))
    print(f"wrote {save(results, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
