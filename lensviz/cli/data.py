"""Data commands and data specs: ``convert``, ``simulate``, ``conventions``.

A command-line ``DATA`` argument (a *data spec*) is a challenge folder, an
``.h5``/``.hdf5``, ``.npz`` or ``.npy`` file, or ``sim:N[:SEED][@DEPTH]`` for N simulated
samples from seed SEED (default ``constants.TEST_SEED_START``) at depth DEPTH: a survey
preset of ``constants.SURVEYS`` (``des``, ``lsst``, ``deep``, ``noise-free``), a number of
galaxies per arcmin², ``inf`` (no shape noise) or ``mix`` (the training depth mix); default
the ``lsst`` depth. Examples: ``sim:150``, ``sim:150:3000@des``, ``sim:150@inf``,
``sim:256:500000@mix``. :func:`iter_data` reads it
in batches and :func:`load_data` into memory (small selections only). Every command of
the CLI takes its data through these two. None of this imports TensorFlow.

Streaming
---------
The batch commands (``convert``, ``simulate``, ``predict``, ``evaluate``) hold one batch
at a time, never the whole dataset, so their peak memory does not depend on the number
of samples. :func:`read_ahead` reads (or simulates) the next batches in a background
thread while the current one is computed and written; HDF5 outputs grow batch by batch
inside the temporary file that is renamed into place at the end
(:class:`lensviz.data.HDF5Writer`, :class:`lensviz.data.PredictionWriter`).

Memory per batch: a batch of B samples of ``ny × nx`` maps holds ``12 ny nx B`` bytes of
ε and ``4 ny nx B`` of κ (float32): 256 samples of 128 × 128 are 64 MiB. At most
``READ_AHEAD + 2`` batches are alive at once (:data:`READ_AHEAD` queued, one being
read, one being computed and written), plus what the method needs for one batch (its
prediction, 16 MiB for 256 maps; FFT buffers; a UNet's activations for its own forward
batch of 64). The peak is therefore about ``(READ_AHEAD + 2) × 16 ny nx B`` bytes above
the program itself: 256 MiB at the default ``--batch 256``, whatever N is. Lower
``--batch`` to lower it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lensviz import constants, data
from lensviz.cli import _check_output, _progress
from lensviz.cli.fields import field_spec, read_field
from lensviz.data import HDF5_SUFFIXES, ChallengeDirWriter, HDF5Writer
from lensviz.data.errors import LimitError
from lensviz.data.limits import MAX_READ_BYTES, check_simulation
from lensviz.data.sky import check_pixel_arcmin
from lensviz.evaluation import convention_scores
from lensviz.simulate import (
    DepthMix,
    FieldMix,
    SimulationConfig,
    depth_config,
    simulate_batch,
    simulate_mixed_batch,
)
from lensviz.training_data import write_training_set
from lensviz.wiener import PowerSpectrum, estimate_power_spectrum

__all__ = [
    "READ_AHEAD",
    "iter_data",
    "read_ahead",
    "data_grid",
    "load_data",
    "cmd_convert",
    "cmd_simulate",
    "cmd_conventions",
    "cmd_powerspec",
]

#: Batches :func:`read_ahead` keeps ready in its queue (see "Memory per batch" above).
READ_AHEAD = 2


# === Data specs ===


def _sim_name(seed: int) -> str:
    return f"seed{seed:08d}"


MIX_DEPTH = "mix"  # the DEPTH of a sim: spec that means the training depth mix


@dataclass(frozen=True)
class SimSpec:
    """A parsed ``sim:N[:SEED][@DEPTH]`` data spec.

    ``depth`` is the DEPTH text as given (None: the default depth); :meth:`setup`
    turns it into the simulator's configuration.
    """

    n: int
    seed: int
    depth: str | None = None

    def setup(self) -> tuple[SimulationConfig, DepthMix | None]:
        """``(SimulationConfig, DepthMix or None)`` of this spec."""
        if self.depth is None:
            return SimulationConfig(), None
        if self.depth.strip().lower() == MIX_DEPTH:
            return SimulationConfig(), DepthMix()
        return depth_config(self.depth), None


def _parse_sim(spec: str) -> SimSpec | None:
    """``sim:N[:SEED][@DEPTH]`` → :class:`SimSpec`; None for anything else.

    Raises ValueError naming the spec if it starts with ``sim:`` but is malformed or
    names an unknown depth.
    """
    if not spec.startswith("sim:"):
        return None
    body, at, depth = spec[4:].partition("@")
    parts = body.split(":")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if (
        len(values) not in (1, 2)
        or values[0] < 1
        or (len(values) == 2 and values[1] < 0)
        or (at and not depth.strip())
    ):
        raise ValueError(
            f"{spec!r}: expected sim:N[:SEED][@DEPTH] with N ≥ 1, SEED ≥ 0 and "
            "DEPTH a survey preset, a number, inf or mix"
        )
    sim = SimSpec(
        values[0],
        values[1] if len(values) == 2 else constants.TEST_SEED_START,
        depth if at else None,
    )
    try:
        sim.setup()
    except ValueError as exc:
        raise ValueError(f"{spec!r}: {exc} (or {MIX_DEPTH})") from None
    return sim


def _iter_simulated(n: int, seed: int, batch: int, config=None, mix=None):
    """Batches of simulated samples; with ``mix``, each sample at the depth it draws."""
    for i in range(0, n, batch):
        k = min(batch, n - i)
        if mix is None:
            eps, kappa = simulate_batch(k, seed=seed + i, config=config)
        else:
            eps, kappa, _ = simulate_mixed_batch(k, seed + i, mix, config)
        yield eps, kappa, [_sim_name(seed + i + j) for j in range(k)]


def data_grid(spec: str, pixel_arcmin: float | None = None) -> data.PixelGrid:
    """The pixel grid of a command-line ``DATA`` argument, with ``--pixel-arcmin`` applied.

    Simulated data (``sim:…``) know theirs; real fields (``cosmos``, ``fits:…``, a FITS
    field) read it from their WCS; files from their attribute, else lensviz's default
    0.5′, which ``--pixel-arcmin`` replaces (and must agree with a stated value).

    Raises
    ------
    DataError
        A ``--pixel-arcmin`` out of bounds or at odds with the data's own.
    """
    sim = _parse_sim(spec)
    if sim is not None:
        config, _ = sim.setup()
        grid = data.PixelGrid(config.pixel_arcmin, True, "the simulator's configuration")
        return grid.given(pixel_arcmin, spec)
    field = read_field(spec)
    if field is not None:
        return field.grid.given(pixel_arcmin, spec)
    return data.dataset_grid(spec, pixel_arcmin=pixel_arcmin)


def iter_data(
    spec: str, batch: int, n: int | None = None
) -> tuple[int, Iterator[tuple[np.ndarray, np.ndarray | None, list[str]]]]:
    """Batches of a command-line ``DATA`` argument.

    Parameters
    ----------
    spec : str
        A path :func:`lensviz.data.load_dataset` reads, ``sim:N[:SEED][@DEPTH]``, or a
        whole-field spec of :func:`lensviz.cli.fields.field_spec` (``cosmos``,
        ``fits:G1,G2,…``).
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
        total = sim.n if n is None else min(sim.n, n)
        config, mix = sim.setup()
        check_simulation(min(batch, total), config.npix, config.canvas_px, READ_AHEAD + 2, spec)
        return total, _iter_simulated(total, sim.seed, batch, config, mix)
    field = field_spec(spec)  # cosmos, fits:G1,G2,...: one whole field
    if field is not None:
        return 1, iter([field])
    total = data.dataset_length(spec)
    total = total if n is None else min(total, n)
    return total, data.iter_dataset(spec, batch, 0, total)


_STOP = object()  # the end of read_ahead's queue


@contextlib.contextmanager
def read_ahead(batches: Iterable, depth: int = READ_AHEAD) -> Iterator[Iterator]:
    """Iterate ``batches`` while a background thread reads the next ones.

    Reading (HDF5 decoding and the value checks, or simulation) runs in a thread and
    overlaps with the caller's computing and writing; numpy, scipy's FFTs, HDF5 and
    TensorFlow release the GIL for most of their work.

    Parameters
    ----------
    batches : iterable
        E.g. the batches of :func:`iter_data`. Consumed by the thread only; a generator
        is closed (its files with it) when the block ends.
    depth : int, optional
        Batches kept ready at most (the queue's bound): the memory is bounded by
        ``depth + 2`` batches (queued, being read, being used).

    Yields
    ------
    iterator
        The items of ``batches`` in order. An exception raised while reading is raised
        here, in the caller's thread, when its batch is reached.

    Notes
    -----
    Leaving the block (normally, by an exception or by Ctrl-C) stops the thread after
    the batch it is reading and waits for it, so no reader outlives the command.
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth!r}")
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in batches:
                if not put((item, None)):
                    return
            put((_STOP, None))
        except BaseException as exc:  # handed to the caller's thread
            put((_STOP, exc))
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()

    def consume() -> Iterator:
        while True:
            item, error = ready.get()
            if error is not None:
                raise error
            if item is _STOP:
                return
            yield item

    thread = threading.Thread(target=produce, name="lensviz-read-ahead", daemon=True)
    thread.start()
    items = consume()
    try:
        yield items
    finally:
        stop.set()
        items.close()
        thread.join()


def load_data(spec: str, n: int | None = None, need_kappa: bool = True, batch: int = 256):
    """Load a command-line ``DATA`` argument into memory: ``(eps, kappa, names)``.

    For commands that need all samples at once (``conventions``, ``calibrate``). The
    selection must fit one read's budget (:data:`lensviz.data.limits.MAX_READ_BYTES`,
    2,048 samples of 128 × 128 with κ); anything larger is refused before it is read,
    so that no command can exhaust memory on a large input. Batch commands stream with
    :func:`iter_data` instead.

    Raises
    ------
    LimitError
        If ``n`` (or the whole dataset) holds more than the budget.
    """
    total, batches = iter_data(spec, batch, n)
    parts = [next(batches)]
    eps0, kappa0 = parts[0][0], parts[0][1]
    per_sample = eps0[0].nbytes + (0 if kappa0 is None else kappa0[0].nbytes)
    if total * per_sample > MAX_READ_BYTES:
        if hasattr(batches, "close"):
            batches.close()
        raise LimitError(
            f"{spec}: {total} samples ({total * per_sample / 2**20:.4g} MiB as float32) do "
            f"not fit in memory at once; this command reads at most "
            f"{MAX_READ_BYTES // per_sample} (lensviz.data.limits.MAX_READ_BYTES): "
            "pass a smaller --n"
        )
    parts.extend(batches)
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
    attrs = {"source": str(args.src)}
    if Path(args.src).exists() and data.dataset_grid(args.src).known:  # keep a stated scale
        attrs["pixel_arcmin"] = data.dataset_grid(args.src).pixel_arcmin
    writer = HDF5Writer(out, overwrite=args.overwrite, compression=compression, attrs=attrs)
    with read_ahead(batches) as batches, writer, _progress(total, "convert") as bar:
        for eps, kappa, names in batches:
            writer.append(eps, kappa, names)
            bar.update(len(eps))
    print(f"wrote {writer.n_written} samples to {out}")
    return 0


def _simulation_setup(args: argparse.Namespace) -> tuple[SimulationConfig, DepthMix | None]:
    """The ``SimulationConfig`` (and ``DepthMix`` for ``--mix``) of the simulate options."""
    given = [
        flag
        for flag, value in (
            ("--n-gal", args.n_gal),
            ("--survey", args.survey),
            ("--mix", args.mix or None),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise ValueError(f"{' and '.join(given)} cannot be combined: each sets the depth")
    if args.mix and args.masks:
        raise ValueError(
            "--masks and --mix cannot be combined: the mix masks a share of the samples itself"
        )
    config = SimulationConfig()
    if args.size is not None:
        config = config.replace(npix=args.size)
    if args.pixel_arcmin is not None:
        check_pixel_arcmin(args.pixel_arcmin, "--pixel-arcmin")
        config = config.replace(pixel_arcmin=args.pixel_arcmin)
    if args.survey is not None:
        config = depth_config(args.survey, config)
    if args.n_gal is not None:
        config = config.replace(n_gal=args.n_gal)
    if args.sigma_e is not None:
        config = config.replace(sigma_e=args.sigma_e)
    if args.isolated:
        config = config.replace(margin_px=0, halo_kappa_min=0.0)
    if args.masks:
        config = config.replace(masks=True)
    mix = DepthMix(sigma_e=config.sigma_e) if args.mix else None
    return config, mix


def _simulation_attrs(
    args: argparse.Namespace, config: SimulationConfig, mix: DepthMix | None
) -> dict:
    """HDF5 file attributes that say how the samples were simulated."""
    attrs = {
        "source": "lensviz.simulate",
        "seed_start": args.seed,
        "sigma_e": config.sigma_e,
        "margin_px": config.margin_px,
        "halo_kappa_min": config.halo_kappa_min,
        "masks": config.masks,
        "mask_max_fraction": config.mask_max_fraction,
        "pixel_arcmin": config.pixel_arcmin,
    }
    if mix is None:
        attrs["n_gal"] = config.n_gal
    else:
        attrs["depth_mix"] = json.dumps(
            {
                "n_gal_range": list(mix.n_gal_range),
                "noise_free_fraction": mix.noise_free_fraction,
                "masked_fraction": mix.masked_fraction,
                "sigma_e": mix.sigma_e,
            }
        )
        attrs["n_gal"] = "per sample: lensviz.simulate.mixed_config(seed_start + i, mix).n_gal"
    return attrs


def _simulate_training_set(args: argparse.Namespace, out: Path) -> int:
    """``simulate --fields``: a training set of a field-aware UNet (lensviz.training_data)."""
    others = [
        flag
        for flag, value in (
            ("--n-gal", args.n_gal),
            ("--survey", args.survey),
            ("--mix", args.mix or None),
            ("--masks", args.masks or None),
            ("--size", args.size),
            ("--pixel-arcmin", args.pixel_arcmin),
            ("--isolated", args.isolated or None),
        )
        if value is not None
    ]
    if others:
        raise ValueError(
            f"--fields draws the depth, masks, size and pixel scale itself; not with "
            f"{', '.join(others)}"
        )
    if out.suffix.lower() not in HDF5_SUFFIXES:
        raise ValueError(f"--fields writes an HDF5 training set; --out must end in .h5, got {out}")
    check_simulation(
        1,
        max(FieldMix().sizes),
        max(FieldMix().sizes) + 2 * SimulationConfig().margin_px,
        2,
        "simulate --fields",
    )
    with _progress(args.n, "simulate (fields)") as bar:
        done = [0]

        def progress(n):
            bar.update(n - done[0])
            done[0] = n

        write_training_set(
            out,
            args.n,
            args.seed,
            b_modes=args.b_modes,
            overwrite=args.overwrite,
            batch=args.batch,
            on_progress=progress,
        )
    print(
        f"wrote {args.n} training tiles of whole fields (seeds {args.seed}.."
        f"{args.seed + args.n - 1}{', with B-mode fields' if args.b_modes else ''}) to {out}"
    )
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    """Simulate samples into an HDF5 file or a challenge folder, atomically."""
    if args.fields:
        out = Path(args.out)
        _check_output(out, args.overwrite)
        return _simulate_training_set(args, out)
    if args.b_modes:
        raise ValueError("--b-modes goes with --fields (the B-mode fields of a training set)")
    config, mix = _simulation_setup(args)
    batch = min(args.batch, args.n)
    check_simulation(
        batch, config.npix, config.canvas_px, READ_AHEAD + 2, f"simulate --batch {batch}"
    )
    out = Path(args.out)
    _check_output(out, args.overwrite)
    if out.suffix.lower() in HDF5_SUFFIXES:
        compression = None if args.compression == "none" else args.compression
        writer = HDF5Writer(
            out,
            overwrite=args.overwrite,
            compression=compression,
            attrs=_simulation_attrs(args, config, mix),
        )
    else:
        writer = ChallengeDirWriter(out, overwrite=args.overwrite)
    batches = _iter_simulated(args.n, args.seed, args.batch, config, mix)
    with read_ahead(batches) as batches, writer, _progress(args.n, "simulate") as bar:
        for eps, kappa, names in batches:
            writer.append(eps, kappa, names)
            bar.update(len(eps))
    depth = "the training depth mix" if mix is not None else f"n_gal {config.n_gal:g}"
    print(
        f"wrote {writer.n_written} samples of {config.npix}² pixels of {config.pixel_arcmin:g}′ "
        f"(seeds {args.seed}..{args.seed + args.n - 1}, {depth}) to {out}"
    )
    return 0


def _variant_label(row: dict) -> str:
    return (
        f"e1 {'-' if row['negate_e1'] else '+'}  e2 {'-' if row['negate_e2'] else '+'}  "
        f"{'transposed' if row['transpose'] else 'as stored'}"
    )


def cmd_conventions(args: argparse.Namespace) -> int:
    """Report which sign/transpose variant of ε makes KS93 match κ best."""
    eps, kappa, _ = load_data(args.data, args.n)
    rows = convention_scores(eps, kappa, sigma_px=args.sigma)
    print(
        f"{args.data}: {len(eps)} samples; Pearson r of KS93 (σ = {args.sigma:g} px) "
        "with κ for each variant of ε"
    )
    print(f"   {'variant':<30}  {'mean r':>8}  {'median r':>8}")
    for i, row in enumerate(rows):
        mark = "*" if i == 0 else " "
        note = "  (lensviz convention)" if row["identity"] else ""
        print(
            f" {mark} {_variant_label(row):<30}  {row['mean_r']:8.4f}  {row['median_r']:8.4f}{note}"
        )
    best = rows[0]
    if best["identity"]:
        print("best: the identity; the data already follows lensviz's convention")
    else:
        fix = ", ".join(f"{k}=True" for k in ("negate_e1", "negate_e2", "transpose") if best[k])
        print(
            f"best: {_variant_label(best)}, NOT lensviz's convention; convert with "
            f"lensviz.data.apply_convention(eps, {fix})"
        )
    return 0


def cmd_powerspec(args: argparse.Namespace) -> int:
    """Estimate the κ power spectrum of simulated maps and save it (Wiener filter's S).

    ``--n`` maps at each pixel side of ``--pixel-arcmin`` (the default 128² field, its
    physics at that scale): scale ``i`` uses the seeds ``seed + i·n …``.
    """
    _check_output(Path(args.out), args.overwrite)
    scales = tuple(args.pixel_arcmin)
    rows = []
    with _progress(args.n * len(scales), "powerspec") as bar:
        for i, scale in enumerate(scales):
            config = SimulationConfig(pixel_arcmin=scale)
            kappas = []
            for start in range(0, args.n, 256):
                n = min(256, args.n - start)
                kappas.append(simulate_batch(n, args.seed + i * args.n + start, config)[1])
                bar.update(n)
            rows.append(estimate_power_spectrum(np.concatenate(kappas), args.bins))
    command = (
        f"python -m lensviz powerspec --n {args.n} --seed {args.seed} --bins {args.bins} "
        f"--pixel-arcmin {','.join(f'{p:g}' for p in scales)} --out {args.out}"
    )
    ps = PowerSpectrum(
        rows[0].k_edges,
        np.stack([r.power for r in rows]),
        meta={
            "command": command,
            "n_maps_per_scale": args.n,
            "seed_start": args.seed,
            "normalisation": "P(k) = <|FFT(kappa)|^2> / (ny*nx), per pixel, mean removed",
            "simulator": "lensviz.simulate defaults at each pixel side: the central "
            "128x128 of a 384x384 canvas (mass beyond the field)",
        },
        pixel_arcmin=scales,
    )
    ps.save(args.out)
    print(
        f"wrote {args.out} (S from {args.n} simulated maps at each of {len(scales)} pixel "
        f"scales, seeds {args.seed}..)"
    )
    return 0
