"""Data commands and data specs: ``convert``, ``simulate``, ``conventions``.

A command-line ``DATA`` argument (a *data spec*) is a challenge folder, an
``.h5``/``.hdf5``, ``.npz`` or ``.npy`` file, or ``sim:N`` / ``sim:N:SEED`` for N simulated
samples from seed SEED (default ``constants.TEST_SEED_START``); :func:`iter_data` reads it
in batches and :func:`load_data` into memory. Every command of the CLI takes its data
through these two. None of this imports TensorFlow.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from lensviz import constants, data
from lensviz.cli import _check_output, _progress
from lensviz.data import HDF5_SUFFIXES, ChallengeDirWriter, HDF5Writer
from lensviz.evaluation import convention_scores
from lensviz.simulate import simulate_batch

__all__ = ["iter_data", "load_data", "cmd_convert", "cmd_simulate", "cmd_conventions"]


# === Data specs ===


def _sim_name(seed: int) -> str:
    return f"seed{seed:08d}"


def _parse_sim(spec: str) -> tuple[int, int] | None:
    """``sim:N`` or ``sim:N:SEED`` → (N, SEED); None for anything else."""
    if not spec.startswith("sim:"):
        return None
    parts = spec.split(":")[1:]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or values[0] < 1 or (len(values) == 2 and values[1] < 0):
        raise ValueError(f"{spec!r}: expected sim:N or sim:N:SEED with N ≥ 1 and SEED ≥ 0")
    return values[0], values[1] if len(values) == 2 else constants.TEST_SEED_START


def _iter_simulated(n: int, seed: int, batch: int):
    for i in range(0, n, batch):
        k = min(batch, n - i)
        eps, kappa = simulate_batch(k, seed=seed + i)
        yield eps, kappa, [_sim_name(seed + i + j) for j in range(k)]


def iter_data(spec: str, batch: int, n: int | None = None
              ) -> tuple[int, Iterator[tuple[np.ndarray, np.ndarray | None, list[str]]]]:
    """Batches of a command-line ``DATA`` argument.

    Parameters
    ----------
    spec : str
        A path :func:`lensviz.data.load_dataset` reads, or ``sim:N[:SEED]``.
    batch : int
        Samples per batch.
    n : int, optional
        Use at most the first ``n`` samples.

    Returns
    -------
    total : int
        Number of samples the batches hold.
    batches : iterator of (eps, kappa or None, names)
    """
    sim = _parse_sim(spec)
    if sim is not None:
        total = sim[0] if n is None else min(sim[0], n)
        return total, _iter_simulated(total, sim[1], batch)
    total = data.dataset_length(spec)
    total = total if n is None else min(total, n)
    return total, data.iter_dataset(spec, batch, 0, total)


def load_data(spec: str, n: int | None = None, need_kappa: bool = True, batch: int = 256):
    """Load a command-line ``DATA`` argument into memory: ``(eps, kappa, names)``."""
    _, batches = iter_data(spec, batch, n)
    parts = list(batches)
    eps = np.concatenate([p[0] for p in parts])
    kappa = None if parts[0][1] is None else np.concatenate([p[1] for p in parts])
    if need_kappa and kappa is None:
        raise ValueError(f"{spec}: holds ε only; this command needs true κ as well")
    return eps, kappa, [name for p in parts for name in p[2]]


# === Commands ===


def cmd_convert(args: argparse.Namespace) -> int:
    """Pack a dataset (usually a challenge folder) into one HDF5 file, atomically."""
    out = Path(args.out)
    if out.suffix.lower() not in HDF5_SUFFIXES:
        raise ValueError(f"{out}: the output must end in .h5 or .hdf5")
    _check_output(out, args.overwrite)
    total, batches = iter_data(args.src, args.batch)
    compression = None if args.compression == "none" else args.compression
    writer = HDF5Writer(out, overwrite=args.overwrite, compression=compression,
                        attrs={"source": str(args.src)})
    with writer, _progress(total, "convert") as bar:
        for eps, kappa, names in batches:
            writer.append(eps, kappa, names)
            bar.update(len(eps))
    print(f"wrote {writer.n_written} samples to {out}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    """Simulate samples into an HDF5 file or a challenge folder, atomically."""
    out = Path(args.out)
    _check_output(out, args.overwrite)
    if out.suffix.lower() in HDF5_SUFFIXES:
        attrs = {"source": "lensviz.simulate", "seed_start": args.seed}
        compression = None if args.compression == "none" else args.compression
        writer = HDF5Writer(out, overwrite=args.overwrite, attrs=attrs,
                            compression=compression)
    else:
        writer = ChallengeDirWriter(out, overwrite=args.overwrite)
    with writer, _progress(args.n, "simulate") as bar:
        for eps, kappa, names in _iter_simulated(args.n, args.seed, args.batch):
            writer.append(eps, kappa, names)
            bar.update(len(eps))
    print(f"wrote {writer.n_written} samples (seeds {args.seed}..{args.seed + args.n - 1}) "
          f"to {out}")
    return 0


def _variant_label(row: dict) -> str:
    return (f"e1 {'-' if row['negate_e1'] else '+'}  e2 {'-' if row['negate_e2'] else '+'}  "
            f"{'transposed' if row['transpose'] else 'as stored'}")


def cmd_conventions(args: argparse.Namespace) -> int:
    """Report which sign/transpose variant of ε makes KS93 match κ best."""
    eps, kappa, _ = load_data(args.data, args.n)
    rows = convention_scores(eps, kappa, sigma_px=args.sigma)
    print(f"{args.data}: {len(eps)} samples; Pearson r of KS93 (σ = {args.sigma:g} px) "
          "with κ for each variant of ε")
    print(f"   {'variant':<30}  {'mean r':>8}  {'median r':>8}")
    for i, row in enumerate(rows):
        mark = "*" if i == 0 else " "
        note = "  (lensviz convention)" if row["identity"] else ""
        print(f" {mark} {_variant_label(row):<30}  {row['mean_r']:8.4f}  "
              f"{row['median_r']:8.4f}{note}")
    best = rows[0]
    if best["identity"]:
        print("best: the identity; the data already follows lensviz's convention")
    else:
        fix = ", ".join(f"{k}=True" for k in ("negate_e1", "negate_e2", "transpose") if best[k])
        print(f"best: {_variant_label(best)}, NOT lensviz's convention; convert with "
              f"lensviz.data.apply_convention(eps, {fix})")
    return 0
