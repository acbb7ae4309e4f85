"""Whole-field commands and data specs: ``observe``, and the ``cosmos`` / ``fits:`` specs.

``observe``
    ``python -m lensviz observe KAPPA.(fits|npy) --pixel-arcmin P --n-gal G [--sigma-e S]
    [--mask M] [--seed N] --out OUT`` computes the reduced shear of any κ map (any size,
    with the simulator's physics, :func:`lensviz.simulate.observe_kappa`), observes it at
    depth G with the mask M, and writes OUT: a whole field (``.fits`` as
    :func:`lensviz.data.write_field_fits`, ``.npz`` or ``.h5``, with the true κ), or, for
    any other name, a challenge folder of the non-overlapping 128 × 128 tiles of the
    field (``EPSILON/NAME_yY_xX.npy``, ``KAPPA/…``).
Data specs (:func:`field_spec`, read by :func:`lensviz.cli.data.iter_data`)
    ``cosmos``: the COSMOS field shipped with lensviz (:mod:`lensviz.cosmos`), one
    256 × 256 sample without κ. ``fits:G1,G2,counts=N[,mask=M][,sigma_e=S]`` or
    ``fits:G1,G2,sigma=S[,mask=M]``: separate FITS images of a survey
    (:func:`lensviz.data.read_shear_fits`), one sample without κ.

None of this imports TensorFlow.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from lensviz import constants, cosmos, data
from lensviz._atomic import atomic_path
from lensviz.cli import _check_output
from lensviz.data import FITS_SUFFIXES, HDF5_SUFFIXES
from lensviz.data.limits import check_observation
from lensviz.depth import depth_label, effective_n_gal, masked_fraction
from lensviz.simulate import observe_kappa

__all__ = ["FITS_SPEC", "COSMOS_SPEC", "read_field", "field_spec", "cmd_observe"]

FITS_SPEC = "fits:"  # prefix of the data spec of separate FITS images
COSMOS_SPEC = "cosmos"  # the data spec of the shipped COSMOS field
_FITS_KEYS = ("counts", "sigma", "mask", "sigma_e")
_FITS_HELP = "fits:G1,G2,counts=N[,mask=M][,sigma_e=S] or fits:G1,G2,sigma=S[,mask=M]"


# === Data specs ===


def _parse_fits_spec(spec: str) -> dict:
    parts = [p.strip() for p in spec[len(FITS_SPEC) :].split(",")]
    paths = [p for p in parts if "=" not in p]
    options = dict(p.split("=", 1) for p in parts if "=" in p)
    unknown = sorted(set(options) - set(_FITS_KEYS))
    if len(paths) != 2 or not all(paths) or unknown:
        extra = f" (unknown {unknown})" if unknown else ""
        raise ValueError(f"{spec!r}: expected {_FITS_HELP}{extra}")
    kwargs = {
        "counts": options.get("counts"),
        "sigma": options.get("sigma"),
        "mask": options.get("mask"),
    }
    if "sigma_e" in options:
        try:
            kwargs["sigma_e"] = float(options["sigma_e"])
        except ValueError:
            raise ValueError(f"{spec!r}: sigma_e must be a number in (0, 1)") from None
    return {"g1": paths[0], "g2": paths[1], **kwargs}


def read_field(spec: str) -> data.ShearField | None:
    """One whole field with its FITS header: the ``cosmos`` spec, a ``fits:…`` spec or a
    ``.fits`` field file; None for any other data.

    Raises
    ------
    ValueError
        A malformed ``fits:`` spec; the readers' errors (:mod:`lensviz.data.fits`).
    """
    if spec.strip().lower() == COSMOS_SPEC:
        return cosmos.load_cosmos()
    if spec.startswith(FITS_SPEC):
        return data.read_shear_fits(**_parse_fits_spec(spec))
    if Path(spec).suffix.lower() in FITS_SUFFIXES:
        return data.read_field_fits(spec)
    return None


def field_spec(spec: str) -> tuple[np.ndarray, None, list[str]] | None:
    """The one sample of a ``cosmos`` or ``fits:…`` data spec; None for any other spec.

    Returns
    -------
    eps : ndarray, shape (1, ny, nx, 3), float32
    kappa : None
        Real data have no true κ.
    names : list of str

    Raises
    ------
    ValueError
        A malformed ``fits:`` spec; the readers' errors (:mod:`lensviz.data.fits`).
    """
    if spec.strip().lower() == COSMOS_SPEC:
        return cosmos.load_cosmos().eps[None], None, [COSMOS_SPEC]
    if not spec.startswith(FITS_SPEC):
        return None
    field = read_field(spec)
    return field.eps[None], None, [Path(_parse_fits_spec(spec)["g1"]).stem]


# === observe ===


def _tiles(eps: np.ndarray, kappa: np.ndarray, stem: str):
    """The non-overlapping 128 × 128 tiles of a field, row by row, and their names."""
    tile = constants.NPIX
    ny, nx = kappa.shape
    if ny < tile or nx < tile:
        raise ValueError(
            f"a {ny} × {nx} map holds no {tile} × {tile} tile; write a whole-field "
            "file (.fits, .npz or .h5) instead"
        )
    corners = [(y, x) for y in range(0, ny - tile + 1, tile) for x in range(0, nx - tile + 1, tile)]
    return (
        np.stack([eps[y : y + tile, x : x + tile] for y, x in corners]),
        np.stack([kappa[y : y + tile, x : x + tile] for y, x in corners]),
        [f"{stem}_y{y:04d}_x{x:04d}" for y, x in corners],
    )


def _write_npz(
    out: Path, eps: np.ndarray, kappa: np.ndarray, name: str, pixel_arcmin: float
) -> None:
    with atomic_path(out, suffix=".npz") as tmp:
        np.savez(
            tmp,
            epsilon=eps[None],
            kappa=kappa[None],
            names=np.array([name]),
            pixel_arcmin=pixel_arcmin,
        )


def cmd_observe(args: argparse.Namespace) -> int:
    """Observe a κ map at a depth: reduced shear, galaxies, mask; write a field or tiles."""
    out = Path(args.out)
    _check_output(out, args.overwrite)
    kappa, header = data.read_kappa_map(args.kappa)
    check_observation(kappa.shape, source=str(args.kappa))  # before any work starts
    mask = None if args.mask is None else data.read_mask(args.mask, kappa.shape)
    rng = np.random.default_rng(args.seed)
    eps = observe_kappa(kappa, rng, args.n_gal, args.sigma_e, args.pixel_arcmin, mask)
    stem = Path(args.kappa).stem
    attrs = {
        "source": str(args.kappa),
        "n_gal": args.n_gal,
        "sigma_e": args.sigma_e,
        "pixel_arcmin": args.pixel_arcmin,
        "seed": args.seed,
        "mask": "" if args.mask is None else str(args.mask),
    }
    suffix = out.suffix.lower()
    if suffix in FITS_SUFFIXES:
        cards = {
            "NGAL": "inf" if math.isinf(args.n_gal) else args.n_gal,
            "SIGMA_E": args.sigma_e,
            "PIXSCALE": (args.pixel_arcmin, "arcmin per pixel"),
            "SEED": args.seed,
        }
        data.write_field_fits(
            out,
            eps,
            kappa,
            header,
            overwrite=args.overwrite,
            attrs=cards,
            pixel_arcmin=args.pixel_arcmin,
        )
        what = f"one {kappa.shape[0]} × {kappa.shape[1]} field"
    elif suffix == ".npz":
        _write_npz(out, eps, kappa, stem, args.pixel_arcmin)
        what = f"one {kappa.shape[0]} × {kappa.shape[1]} field"
    elif suffix in HDF5_SUFFIXES:
        data.write_hdf5(out, eps[None], kappa[None], [stem], overwrite=args.overwrite, attrs=attrs)
        what = f"one {kappa.shape[0]} × {kappa.shape[1]} field"
    else:
        tiles_eps, tiles_kappa, names = _tiles(eps, kappa, stem)
        data.write_challenge_dir(out, tiles_eps, tiles_kappa, names, overwrite=args.overwrite)
        dropped = (kappa.shape[0] % constants.NPIX, kappa.shape[1] % constants.NPIX)
        what = (
            f"{len(names)} tiles of 128 × 128 (the last {dropped[0]} rows and "
            f"{dropped[1]} columns are in no tile)"
        )
    depth = depth_label(float(effective_n_gal(eps[..., 2], args.sigma_e, args.pixel_arcmin)))
    print(
        f"wrote {out}: {what}; {float(masked_fraction(eps[..., 2])):.1%} of the pixels empty "
        f"or masked; the noise of {depth}"
    )
    return 0
