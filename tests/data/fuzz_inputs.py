"""A deterministic generator of malformed and hostile inputs, and one trial runner.

:func:`generate` builds, from a seed, more than 1,000 malformed inputs in the classes of
:data:`CLASSES` (plus a few valid controls), and :func:`run_trial` feeds one input to
one entry point of :data:`ENTRY_POINTS` and classifies what came out. Used by
``tests/data/test_fuzz.py`` and ``benchmarks/fuzz_report.py``.

Every case that could make a reader reach outside its input points at planted secret
files in ``workdir`` (:func:`plant_secrets`): ``secret.bin`` holds float32 values that
would pass every value check, so a reader that followed external storage, a link or a
virtual dataset would return them; ``secret.txt`` holds a marker text. :func:`run_trial`
looks for both in every array, name and message that comes back, and for files left
behind (a refused input leaves no file and no temporary).

The second round (issue 21) adds entry points beyond the dataset readers: ``fits_out``
(a field file read and written back as a κ FITS file with hostile cards, as
``predict --out .fits`` and the app's download do: the write must never fail, its
header must be ASCII and hold no server path), ``model`` (the ``.keras`` check that the
model list and :func:`lensviz.nn.inference.load_model` run first), ``kappa`` and
``mask`` (the maps that ``observe`` reads, with its memory check), ``settings`` (the
memory budget of simulation and observation settings; small ones are run and their
traced peak compared with the estimate) and ``cache_key`` (uploads that must not share
the app's cache key).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import pickle
import struct
import tracemalloc
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
from astropy.io import fits

from lensviz import data
from lensviz.cli import data as cli_data
from lensviz.data import limits
from lensviz.data.archive import check_keras_archive
from lensviz.simulate import SimulationConfig, observe_kappa, simulate_batch

__all__ = [
    "Case",
    "Trial",
    "CLASSES",
    "ENTRY_POINTS",
    "OUTCOMES",
    "plant_secrets",
    "generate",
    "run_trial",
    "count_table",
    "bomb_npz_bytes",
    "names_bomb_npz_bytes",
    "aliased_names_h5",
]

CLASSES = (
    "valid",
    "truncation",
    "random_bytes",
    "bitflip",
    "wrong_dtype",
    "wrong_shape",
    "nonfinite",
    "extreme_values",
    "pickle",
    "npy_header",
    "huge_shape",
    "npz_bomb",
    "zip_method",
    "h5_external_storage",
    "h5_virtual",
    "h5_links",
    "h5_unwritten",
    "h5_huge_chunk",
    "h5_filter_compact",
    "non_utf8_names",
    "bad_names",
    "layout",
    "challenge_folder",
    "pair",
    "fits",
    "h5_aliased_strings",
    "fits_headers",
    "challenge_names",
    "model_files",
    "maps",
    "settings",
    "upload_keys",
)
ENTRY_POINTS = (
    "upload",
    "pair",
    "server",
    "cli",
    "fits_out",
    "model",
    "kappa",
    "mask",
    "settings",
    "cache_key",
)
OUTCOMES = ("accepted", "DataError", "DataTypeError", "UnsafeFileError", "LimitError")
DOCUMENTED = (data.DataError,)  # every documented reader error derives from DataError
PEAK_BUDGET = 64 * 2**20  # tracemalloc peak of one trial on these small inputs (bytes)
SECRET_TEXT = b"root:x:0:0:LENSVIZ-SECRET-MARKER:/root:/bin/bash\n"
SECRET_PERIOD = 256  # float32 values in one period of secret.bin (1 KiB)
NPIX = 128


# === Cases and trials ===


@dataclasses.dataclass(frozen=True)
class Case:
    """One input: a single file, an upload pair or a challenge folder.

    ``files`` maps a path relative to the case folder to bytes, or to a ``Path`` for
    a symbolic link. A single file has one entry; a pair has two ``.npy`` entries; a
    folder has entries under ``name/``.
    """

    klass: str
    name: str
    kind: str  # "file", "pair", "folder", "model", "map", "settings" or "keys"
    expect: str  # "refused", "accepted" or "either"
    files: dict

    def entry_points(self) -> tuple[str, ...]:
        if self.kind == "file" and self.name.endswith(".fits"):
            return ("upload", "server", "cli", "fits_out")
        return {
            "file": ("upload", "server", "cli"),
            "pair": ("pair",),
            "folder": ("server", "cli"),
            "model": ("model",),
            "map": ("kappa", "mask"),
            "settings": ("settings",),
            "keys": ("cache_key",),
        }[self.kind]


@dataclasses.dataclass(frozen=True)
class Trial:
    """What one entry point did with one case."""

    klass: str
    name: str
    entry: str
    expect: str
    outcome: str  # one of OUTCOMES, or "escaped:<type>"
    message: str
    peak_bytes: int
    leaked: bool
    problems: tuple[str, ...]


# === Secrets ===


def _secret_values() -> np.ndarray:
    period = (0.0123 + 1e-5 * np.arange(SECRET_PERIOD)).astype("<f4")
    return np.tile(period, 4 * NPIX * NPIX * 3 // SECRET_PERIOD)  # 4 samples of ε


def plant_secrets(workdir: Path) -> dict[str, Path]:
    """Write the secret files (and an HDF5 file made of them) that hostile cases point at."""
    workdir.mkdir(parents=True, exist_ok=True)
    paths = {
        "bin": workdir / "secret.bin",
        "txt": workdir / "secret.txt",
        "h5": workdir / "secret.h5",
        "npy": workdir / "secret_eps.npy",
    }
    values = _secret_values()
    paths["bin"].write_bytes(values.tobytes())
    paths["txt"].write_bytes(SECRET_TEXT * 4000)
    eps = values[: NPIX * NPIX * 3].reshape(1, NPIX, NPIX, 3)
    with h5py.File(paths["h5"], "w") as f:
        f["epsilon"] = eps
        f["kappa"] = eps[..., 0]
    np.save(paths["npy"], np.moveaxis(eps[0], -1, 0))
    return paths


def _leaks(blobs: list[bytes]) -> bool:
    marker = _secret_values()[:16].tobytes()
    text = SECRET_TEXT[11:33]
    return any(marker in b or text in b for b in blobs)


# === Building blocks ===


def _eps(rng, n=1, dtype="<f4") -> np.ndarray:
    eps = np.empty((n, NPIX, NPIX, 3), np.float64)
    eps[..., :2] = np.clip(rng.normal(0, 0.1, (n, NPIX, NPIX, 2)), -0.9, 0.9)
    eps[..., 2] = rng.uniform(0.05, 0.3, (n, NPIX, NPIX))
    return eps.astype(dtype)


def _kappa(rng, n=1, dtype="<f4") -> np.ndarray:
    return np.clip(rng.normal(0, 0.05, (n, NPIX, NPIX)), -0.5, 2).astype(dtype)


def _npy(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def _npz(compressed=False, **arrays) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return _fix_zip_times(buf.getvalue())


def _h5(build: Callable[[h5py.File], None]) -> bytes:
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        build(f)
    return buf.getvalue()


def _npy_raw(header: bytes, payload: bytes = b"", version: bytes = b"\x01\x00") -> bytes:
    size = (
        struct.pack("<H", len(header) % 2**16)
        if version == b"\x01\x00"
        else struct.pack("<I", len(header))
    )
    return b"\x93NUMPY" + version + size + header + payload


def _header(descr="'<f4'", shape="(1, 128, 128, 3)", fortran="False") -> bytes:
    return f"{{'descr': {descr}, 'fortran_order': {fortran}, 'shape': {shape}, }}\n".encode()


def _good_file(rng, fmt: str, n: int = 1) -> bytes:
    eps, kappa = _eps(rng, n), _kappa(rng, n)
    if fmt == "npy":
        return _npy(eps.astype("<f2"))
    if fmt == "npz":
        return _npz(
            bool(rng.integers(2)),
            epsilon=eps,
            kappa=kappa,
            names=np.array([f"s{i}" for i in range(n)]),
        )

    def build(f):
        f.create_dataset("epsilon", data=eps, chunks=(1, NPIX, NPIX, 3), compression="gzip")
        f.create_dataset("kappa", data=kappa, chunks=(1, NPIX, NPIX), compression="gzip")
        f.create_dataset("names", data=[f"s{i}" for i in range(n)], dtype=h5py.string_dtype())

    return _h5(build)


def _streamed_npz(members: dict[str, tuple[dict, bytes, int]]) -> bytes:
    """An .npz whose members are written as a stream: name → (header, chunk, repeats)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, (header, chunk, repeats) in members.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as fh:
                hdr = io.BytesIO()
                np.lib.format.write_array_header_1_0(hdr, header)
                fh.write(hdr.getvalue())
                for _ in range(repeats):
                    fh.write(chunk)
    return _fix_zip_times(buf.getvalue())


def bomb_npz_bytes(n_samples: int = 3000) -> bytes:
    """An honest gzip bomb: ``n_samples`` ε of zeros (2.36 GB for 3000), about 2.5 MB."""
    sample = bytes(NPIX * NPIX * 3 * 4)
    header = {"descr": "<f4", "fortran_order": False, "shape": (n_samples, NPIX, NPIX, 3)}
    return _streamed_npz({"epsilon": (header, sample, n_samples)})


def names_bomb_npz_bytes(n_names: int = 30_000_000) -> bytes:
    """One valid ε and ``n_names`` names (120 MB for 3×10⁷), about 120 kB."""
    eps = _npy(np.zeros((1, NPIX, NPIX, 3), "<f4"))
    chunk = np.full(1_000_000, "a", "<U1").tobytes()
    header = {"descr": "<U1", "fortran_order": False, "shape": (n_names,)}
    buf = io.BytesIO(_streamed_npz({"names": (header, chunk, n_names // 1_000_000)}))
    with zipfile.ZipFile(buf, "a") as zf:
        zf.writestr("epsilon.npy", eps)
    return _fix_zip_times(buf.getvalue())


def aliased_names_h5(
    n: int = 400, big: int = 5_000_000, chunks: int | None = None, compression=None, field=64
) -> bytes:
    """An ``.h5`` whose ``n`` variable-length ``names`` all point at one ``big``-byte string.

    The file stores the string once; every 16-byte descriptor of ``names`` is a copy of
    the first (issue 21: 400 × 5 MB in a 5 MB file cost 1.95 GB before the error).
    ``chunks`` and ``compression`` (None, ``"gzip"``, or ``"lzf"``, whose chunks are
    then stored unfiltered with the filter marked as skipped) choose the storage.
    """
    buf = io.BytesIO()
    eps = np.zeros((n, field, field, 3), "<f4")
    eps[..., 2] = 0.1
    with h5py.File(buf, "w") as f:
        f.create_dataset("epsilon", data=eps, chunks=(1, field, field, 3))
        names = ["x" * big] + [f"s{i}" for i in range(1, n)]
        if chunks is None:
            f.create_dataset("names", data=names, dtype=h5py.string_dtype())
            offset = f["names"].id.get_offset()
        else:
            f.create_dataset("first", data=names[:1], dtype=h5py.string_dtype())
            f.create_dataset(
                "names",
                data=names,
                dtype=h5py.string_dtype(),
                chunks=(chunks,),
                compression=compression,
            )
            offset = None
    raw = bytearray(buf.getvalue())
    if offset is not None:
        raw[offset + 16 : offset + 16 * n] = bytes(raw[offset : offset + 16]) * (n - 1)
        return bytes(raw)
    with h5py.File(io.BytesIO(bytes(raw)), "r") as f:  # the descriptor of the big string
        at = f["first"].id.get_offset()
    first = bytes(raw[at : at + 16])
    buf = io.BytesIO(bytes(raw))
    with h5py.File(buf, "r+") as f:
        ds = f["names"]
        for start in range(0, n, chunks):
            descriptors = first * chunks
            if compression == "gzip":
                ds.id.write_direct_chunk((start,), zlib.compress(descriptors), 0)
            else:  # unfiltered; a skipped lzf is marked in the filter mask
                ds.id.write_direct_chunk((start,), descriptors, 0 if compression is None else 1)
    return buf.getvalue()


_ZIP_EPOCH = struct.pack("<2H", 0, (0 << 9) | (1 << 5) | 1)  # 00:00 on 1980-01-01


def _fix_zip_times(raw: bytes) -> bytes:
    """The zip ``raw`` with every entry dated 1980-01-01, so that its bytes are reproducible."""
    z = bytearray(raw)
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        infos, at = zf.infolist(), zf.start_dir
    for info in infos:
        z[info.header_offset + 10 : info.header_offset + 14] = _ZIP_EPOCH
    for _ in infos:  # the central directory entries, in order
        z[at + 12 : at + 16] = _ZIP_EPOCH
        n, m, k = struct.unpack("<3H", z[at + 28 : at + 34])
        at += 46 + n + m + k
    return bytes(z)


def _patch_zip(raw: bytes, method: int | None = None, flags: int = 0) -> bytes:
    z = bytearray(raw)
    for sig, flag_at, method_at in ((b"PK\x01\x02", 8, 10), (b"PK\x03\x04", 6, 8)):
        i = z.find(sig)
        while i >= 0:
            if method is not None:
                z[i + method_at : i + method_at + 2] = struct.pack("<H", method)
            z[i + flag_at] |= flags
            i = z.find(sig, i + 4)
    return bytes(z)


# === The classes ===


def _truncation(rng, n):
    for i in range(n):
        fmt = ("npy", "npz", "h5")[i % 3]
        raw = _good_file(rng, fmt)
        cut = int(rng.integers(0, len(raw)))
        yield "refused", f"trunc_{i:04d}.{fmt}", raw[:cut]


def _random_bytes(rng, n):
    prefixes = (b"", b"\x93NUMPY\x01\x00", b"PK\x03\x04", b"\x89HDF\r\n\x1a\n", b"PK\x05\x06")
    for i in range(n):
        fmt = ("npy", "npz", "h5")[i % 3]
        size = int(rng.integers(1, 4000))
        payload = prefixes[i % len(prefixes)] + rng.bytes(size)
        yield "refused", f"random_{i:04d}.{fmt}", payload


def _bitflip(rng, n):
    for i in range(n):
        fmt = ("npy", "npz", "h5")[i % 3]
        z = bytearray(_good_file(rng, fmt))
        for _ in range(int(rng.integers(1, 6))):
            at = int(rng.integers(0, min(len(z), 4096) if rng.integers(2) else len(z)))
            z[at] = int(rng.integers(0, 256))
        yield "either", f"flip_{i:04d}.{fmt}", bytes(z)


_BAD_DTYPES = (
    "<i1",
    "<i2",
    "<i4",
    "<i8",
    "<u1",
    "<u2",
    "<c8",
    "<c16",
    "?",
    "<U4",
    "S4",
    "<M8[s]",
    "<m8[s]",
)


def _wrong_dtype(rng, n):
    for i in range(n):
        dtype = _BAD_DTYPES[i % len(_BAD_DTYPES)]
        fmt = ("npy", "npz", "h5")[(i // len(_BAD_DTYPES)) % 3]
        arr = np.zeros((1, NPIX, NPIX, 3), dtype)
        if fmt == "npy":
            raw = _npy(arr)
        elif fmt == "npz":
            raw = (
                _npz(epsilon=arr)
                if i % 2
                else _npz(epsilon=_eps(rng), kappa=np.zeros((1, NPIX, NPIX), dtype))
            )
        else:
            if dtype.startswith(("<U", "<M", "<m")):  # types h5py cannot store
                dtype = "<i4"
            zeros = np.zeros((1, NPIX, NPIX, 3), dtype)
            raw = _h5(lambda f, a=zeros: f.create_dataset("epsilon", data=a))
        yield "refused", f"dtype_{i:04d}.{fmt}", raw
    yield "refused", "dtype_struct.npy", _npy(np.zeros((1, NPIX, NPIX, 3), [("a", "<f4")]))


# Fields of any size from MIN_FIELD_PX (64) to MAX_FIELD_PX (2048) a side are valid.
_BAD_SHAPES = (
    (NPIX, NPIX),
    (2, NPIX, NPIX, 2),
    (1, 63, 64, 3),
    (1, 1, NPIX, NPIX, 3),
    (0, NPIX, NPIX, 3),
    (),
    (5,),
    (3, NPIX, 63),
    (NPIX, 3, NPIX),
    (1, NPIX, NPIX, 4),
    (4, NPIX, NPIX),
    (2, 2, NPIX, NPIX),
    (1, 64, 2049, 3),
)


def _wrong_shape(rng, n):
    for i in range(n):
        shape = _BAD_SHAPES[i % len(_BAD_SHAPES)]
        fmt = ("npy", "npz", "h5")[(i // len(_BAD_SHAPES)) % 3]
        arr = np.zeros(shape, "<f2")
        if fmt == "npy":
            raw = _npy(arr)
        elif fmt == "npz":
            raw = _npz(epsilon=arr)
        else:
            raw = _h5(lambda f, a=arr: f.create_dataset("epsilon", data=a))
        yield "refused", f"shape_{i:04d}.{fmt}", raw
        if i % 4 == 0:  # a valid ε with a κ of the wrong shape
            kappa = np.zeros(((1, NPIX, 64), (NPIX,), (1, 1, NPIX, NPIX))[i // 4 % 3], "<f4")
            yield "refused", f"shape_k{i:04d}.npz", _npz(epsilon=_eps(rng), kappa=kappa)


_BAD_VALUES = {
    "nan": np.nan,
    "inf": np.inf,
    "-inf": -np.inf,
    "e36": 1e36,
    "e_big": 5.5,
    "e_neg": -0.01,
    "de_big": 10.5,
    "k_big": 150.0,
    "f64_overflow": 1e40,
}


def _put_bad_value(rng, kind: str, fmt: str) -> bytes:
    eps, kappa = _eps(rng, 2, "<f8"), _kappa(rng, 2, "<f8")
    s, y, x = (int(rng.integers(0, m)) for m in (2, NPIX, NPIX))
    in_kappa = kind == "k_big" or (
        kind in ("nan", "inf", "-inf") and fmt != "npy" and rng.integers(3) == 0
    )
    if in_kappa:
        kappa[s, y, x] = _BAD_VALUES[kind]
    else:
        channel = 2 if kind in ("e_neg", "de_big") else int(rng.integers(0, 2))
        eps[s, y, x, channel] = _BAD_VALUES[kind]
    dtype = "<f8" if kind == "f64_overflow" else "<f4"
    eps, kappa = eps.astype(dtype), kappa.astype(dtype)
    if fmt == "npy":
        return _npy(eps)
    if fmt == "npz":
        return _npz(epsilon=eps, kappa=kappa)

    def build(f):
        f.create_dataset("epsilon", data=eps, chunks=(1, NPIX, NPIX, 3))
        f.create_dataset("kappa", data=kappa)

    return _h5(build)


def _nonfinite(rng, n):
    for i in range(n):
        fmt = ("npy", "npz", "h5")[i % 3]
        yield (
            "refused",
            f"nonfinite_{i:04d}.{fmt}",
            _put_bad_value(rng, ("nan", "inf", "-inf")[(i // 3) % 3], fmt),
        )


def _extreme(rng, n):
    kinds = ("e36", "e_big", "e_neg", "de_big", "k_big", "f64_overflow")
    for i in range(n):
        fmt = ("npy", "npz", "h5")[i % 3]
        kind = kinds[(i // 3) % len(kinds)]
        if kind == "k_big" and fmt == "npy":
            fmt = "npz"
        yield "refused", f"extreme_{i:04d}.{fmt}", _put_bad_value(rng, kind, fmt)


class _Payload:
    def __reduce__(self):
        return (print, ("lensviz unpickled a payload",))


def _pickle(rng, n):
    for i in range(n):
        proto = int(rng.integers(0, 6))
        which = i % 5
        if which == 0:
            yield "refused", f"pickle_{i:04d}.npy", pickle.dumps({"epsilon": 1}, protocol=proto)
        elif which == 1:
            yield "refused", f"pickle_{i:04d}.npy", pickle.dumps(_Payload(), protocol=proto)
        elif which == 2:
            yield "refused", f"pickle_{i:04d}.npy", _npy(np.array([_Payload(), 1], object))
        elif which == 3:
            yield (
                "refused",
                f"pickle_{i:04d}.npz",
                _npz(epsilon=_eps(rng), names=np.array([_Payload()], object)),
            )
        else:
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as zf:
                zf.writestr("epsilon.npy", pickle.dumps(_Payload(), protocol=proto))
            yield "refused", f"pickle_{i:04d}.npz", _fix_zip_times(buf.getvalue())


_HEADERS = (
    b"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 128",  # unterminated
    b"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 128, 128, 3)\n",
    b"[1, 2, 3]\n",
    b"{'descr': '<f4', 'shape': (1, 128, 128, 3), }\n",  # missing key
    b"{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 128, 128, 3), }\n",
    b"{'descr': '<f4', 'fortran_order': False, 'shape': (1.5, 128, 128, 3), }\n",
    b"{'descr': '<x9', 'fortran_order': False, 'shape': (1, 128, 128, 3), }\n",
    b"{'descr': 'O', 'fortran_order': False, 'shape': (1, 128, 128, 3), }\n",
    b"{'descr': '<f4', 'fortran_order': 'yes', 'shape': (1, 128, 128, 3), }\n",
    b"{'descr': '<f4', 'fortran_order': False, 'shape': (1L, 128L, 128L, 3L), }\n",  # Python 2
    b"(" * 3000 + b")" * 3000,
    b"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 128, 128, 3), 'x': 1}\n",
    b"\xff\xfe{'descr': '<f4'}\n",
    b"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1, 128, 128, 3), }\n",
    b"{'descr': '<U99999999999', 'fortran_order': False, 'shape': (1,), }\n",
    b"{'descr': '<f4', 'fortran_order': False, 'shape': (2**70,), }\n",
    b"{'descr': '<f4', 'fortran_order': False, 'shape': " + b"(" * 200 + b")" * 200 + b", }\n",
    b"\x00" * 64,
)


def _npy_header(rng, n):
    payload = _eps(rng).astype("<f4").tobytes()
    for i in range(n):
        header = _HEADERS[i % len(_HEADERS)]
        variant = (i // len(_HEADERS)) % 5
        if variant == 0:
            raw = _npy_raw(header, payload)
        elif variant == 1:  # header length beyond the data
            raw = b"\x93NUMPY\x01\x00\xff\xff" + header
        elif variant == 2:
            raw = _npy_raw(header, payload, b"\x02\x00")
        elif variant == 3:  # unknown format versions
            raw = _npy_raw(header, payload, bytes([int(rng.integers(3, 256)), 0]))
        else:  # a valid header inside an .npz member
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as zf:
                zf.writestr("epsilon.npy", _npy_raw(header, payload))
            yield (
                ("either" if b"128L" in header else "refused"),
                f"header_{i:04d}.npz",
                _fix_zip_times(buf.getvalue()),
            )
            continue
        python2 = b"128L" in header and variant in (0, 2)  # numpy still reads these
        yield "either" if python2 else "refused", f"header_{i:04d}.npy", raw


def _huge_shape(rng, n):
    shapes = (
        "(1000000, 128, 128, 3)",
        "(3000, 128, 128, 3)",
        "(10**13, 128, 128, 3)",
        "(2048, 3, 128, 128)",
        "(9223372036854775807, 128, 128, 3)",
    )
    for i in range(n):
        shape = shapes[i % len(shapes)]
        shape = shape.replace("10**13", str(10**13))
        kind = (i // len(shapes)) % 4
        if kind == 0:
            yield "refused", f"huge_{i:04d}.npy", _npy_raw(_header(shape=shape), rng.bytes(4096))
        elif kind == 1:
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
                zf.writestr("epsilon.npy", _npy_raw(_header(shape=shape), bytes(65536)))
            yield "refused", f"huge_{i:04d}.npz", _fix_zip_times(buf.getvalue())
        elif kind == 2:
            big = (int(rng.integers(3000, 10**6)), NPIX, NPIX, 3)
            yield (
                "refused",
                f"huge_{i:04d}.h5",
                _h5(
                    lambda f, s=big: f.create_dataset(
                        "epsilon",
                        shape=s,
                        dtype="<f4",
                        chunks=(1, NPIX, NPIX, 3),
                        compression="gzip",
                    )
                ),
            )
        else:  # declared in an .npz member, with the zip directory agreeing
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as zf:
                zf.writestr("epsilon.npy", _npy_raw(_header(shape=shape), bytes(1024)))
            raw = bytearray(_fix_zip_times(buf.getvalue()))
            yield "refused", f"huge_{i:04d}.npz", bytes(raw)


def _npz_bomb(rng, n, bomb: bytes, names_bomb: bytes):
    for i in range(n):
        kind = i % 5
        if kind == 0:
            yield "refused", f"bomb_{i:04d}.npz", bomb
        elif kind == 1:
            yield "refused", f"bomb_{i:04d}.npz", names_bomb
        elif kind == 2:  # more members than allowed
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as zf:
                zf.writestr("epsilon.npy", _npy(_eps(rng)))
                for j in range(limits.MAX_ZIP_MEMBERS + int(rng.integers(1, 3000))):
                    zf.writestr(f"x{j}.npy", b"")
            yield "refused", f"bomb_{i:04d}.npz", _fix_zip_times(buf.getvalue())
        elif kind == 3:  # a member whose directory entry lies about its size
            raw = bytearray(_npz(epsilon=_eps(rng)))
            at = raw.find(b"PK\x01\x02")
            raw[at + 24 : at + 28] = struct.pack("<L", 0xFFFFFFF0)
            yield "either", f"bomb_{i:04d}.npz", bytes(raw)
        else:  # a huge comment before the end record
            raw = _npz(epsilon=_eps(rng))
            yield (
                "refused",
                f"bomb_{i:04d}.npz",
                raw[:-2] + struct.pack("<H", 65535) + (b"PK\x05\x06" + bytes(18)) * 10,
            )


def _zip_method(rng, n):
    for i in range(n):
        raw = _npz(bool(i % 2), epsilon=_eps(rng), kappa=_kappa(rng))
        kind = (i // 2) % 6
        patched = {
            0: _patch_zip(raw, 9),
            1: _patch_zip(raw, flags=0x01),
            2: _patch_zip(raw, 12),
            3: _patch_zip(raw, 14),
            4: _patch_zip(raw, flags=0x20),
            5: _patch_zip(raw, 99, flags=0x41),
        }[kind]
        yield "refused", f"zip_{i:04d}.npz", patched


def _h5_external(rng, n, secrets):
    for i in range(n):
        target = str(secrets["bin" if i % 3 else "txt"])
        offset = 1024 * int(rng.integers(0, 8))
        key = ("epsilon", "kappa", "names")[i % 3]
        eps = _eps(rng)

        def build(f, target=target, offset=offset, key=key, eps=eps):
            ext = [(target, offset, h5py.h5f.UNLIMITED)]
            if key == "epsilon":
                f.create_dataset("epsilon", shape=(1, NPIX, NPIX, 3), dtype="<f4", external=ext)
            else:
                f["epsilon"] = eps
                shape, dtype = ((1, NPIX, NPIX), "<f4") if key == "kappa" else ((1,), "S16")
                f.create_dataset(key, shape=shape, dtype=dtype, external=ext)

        yield "refused", f"external_{i:04d}.h5", _h5(build)


def _create_virtual(f, name: bytes, layout) -> None:
    """``f.create_virtual_dataset`` without a modification time, so the bytes are reproducible."""
    dcpl = layout._get_dcpl(f.filename)
    dcpl.set_obj_track_times(False)
    space = h5py.h5s.create_simple(layout.shape)
    h5py.h5d.create(f.id, name, h5py.h5t.py_create(np.dtype(layout.dtype)), space, dcpl=dcpl)


def _h5_virtual(rng, n, secrets):
    shape = (1, NPIX, NPIX, 3)
    for i in range(n):
        kind = i % 4

        def build(f, kind=kind, i=i):
            layout = h5py.VirtualLayout(shape=shape, dtype="<f4")
            if kind == 0:  # its own source: HDF5 would recurse until it crashes
                layout[...] = h5py.VirtualSource(".", "epsilon", shape=shape)
            elif kind == 1:  # another file on the server
                layout[...] = h5py.VirtualSource(str(secrets["h5"]), "epsilon", shape=shape)
            elif kind == 2:  # another dataset of the same file
                f["src"] = np.zeros(shape, "<f4")
                layout[...] = h5py.VirtualSource(".", "src", shape=shape)
            else:  # a relative source path, resolved against the file's folder
                layout[...] = h5py.VirtualSource(
                    f"../secrets/{secrets['h5'].name}", "epsilon", shape=shape
                )
            _create_virtual(f, b"epsilon", layout)
            if i % 8 >= 4:  # hide it under a group, next to good data
                f.move("epsilon", "g/epsilon")
                f["epsilon"] = _eps(rng)

        yield "refused", f"virtual_{i:04d}.h5", _h5(build)


def _h5_links(rng, n, secrets):
    for i in range(n):
        kind = i % 8
        eps = _eps(rng)
        expect = "refused"

        def build(f, kind=kind, eps=eps):
            if kind == 0:
                f["real"] = eps
                f["epsilon"] = h5py.SoftLink("/real")
            elif kind == 1:
                f["epsilon"] = h5py.SoftLink("/nothing")
            elif kind == 2:
                f["epsilon"] = h5py.SoftLink("/a")
                f["a"] = h5py.SoftLink("/epsilon")
            elif kind == 3:
                f["epsilon"] = h5py.SoftLink("/epsilon")
            elif kind == 4:
                f["epsilon"] = h5py.ExternalLink(str(secrets["h5"]), "/epsilon")
            elif kind == 5:
                f["epsilon"] = eps
                f["kappa"] = h5py.ExternalLink(str(secrets["h5"]), "/kappa")
            elif kind == 6:
                f["epsilon"] = eps
                g = f.create_group("meta/deeper")
                g["loop"] = h5py.SoftLink("/meta")
            else:  # a hard link cycle: legal HDF5, walked once
                f["epsilon"] = eps
                g = f.create_group("g")
                g["up"] = g

        if kind == 7:
            expect = "either"
        yield expect, f"links_{i:04d}.h5", _h5(build)


def _h5_unwritten(rng, n):
    for i in range(n):
        kind = i % 4
        k = int(rng.integers(1, 3000))

        def build(f, kind=kind, k=k):
            if kind == 0:
                f.create_dataset("epsilon", shape=(k, NPIX, NPIX, 3), dtype="<f4")
            elif kind == 1:
                f.create_dataset(
                    "epsilon",
                    shape=(k, NPIX, NPIX, 3),
                    dtype="<f4",
                    chunks=(1, NPIX, NPIX, 3),
                    fillvalue=0.0,
                )
            elif kind == 2:
                ds = f.create_dataset(
                    "epsilon", shape=(3, NPIX, NPIX, 3), dtype="<f4", chunks=(1, NPIX, NPIX, 3)
                )
                ds[0] = _eps(rng)[0]
            else:
                f["epsilon"] = _eps(rng)
                f.create_dataset("kappa", shape=(1, NPIX, NPIX), dtype="<f4")

        yield "refused", f"unwritten_{i:04d}.h5", _h5(build)


def _h5_huge_chunk(rng, n):
    for i in range(n):
        k = int(rng.integers(342, 5000))  # 342 samples of float32 ε: just over 64 MiB

        def build(f, k=k, i=i):
            f.create_dataset(
                "epsilon",
                shape=(k, NPIX, NPIX, 3),
                dtype="<f4",
                chunks=(k, NPIX, NPIX, 3),
                compression="gzip",
            )
            if i % 2:
                f.create_dataset("names", shape=(10**7,), dtype="S8", chunks=(10**7,))

        yield "refused", f"chunk_{i:04d}.h5", _h5(build)


def _h5_filter_compact(rng, n):
    for i in range(n):
        kind = i % 3
        eps, kappa = _eps(rng), _kappa(rng)

        def build(f, kind=kind, eps=eps, kappa=kappa):
            if kind == 0:
                f.create_dataset("epsilon", data=eps, chunks=(1, NPIX, NPIX, 3), scaleoffset=4)
            elif kind == 1:
                f["epsilon"] = eps
                space = h5py.h5s.create_simple((1, NPIX, NPIX))
                dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
                dcpl.set_layout(h5py.h5d.COMPACT)
                dcpl.set_obj_track_times(False)
                dsid = h5py.h5d.create(f.id, b"kappa", h5py.h5t.IEEE_F16LE, space, dcpl)
                dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, kappa.astype("<f2"))
            else:
                f.create_dataset("epsilon", data=eps, chunks=(1, NPIX, NPIX, 3), compression="lzf")

        raw = _h5(build)
        if kind == 2:  # an unknown filter id, which would make HDF5 look for a plugin
            at = raw.find(b"lzf\x00") - 8
            raw = raw[:at] + struct.pack("<H", 32123) + raw[at + 2 :]
        yield "refused", f"filter_{i:04d}.h5", raw


def _non_utf8_names(rng, n):
    bad = (b"\xff\xfe", b"ok\x80", b"\xc3\x28", b"\xed\xa0\x80")
    for i in range(n):
        name = bad[i % len(bad)]
        kind = (i // len(bad)) % 3
        eps = _eps(rng)
        if kind == 0:

            def build(f, eps=eps, name=name):
                f["epsilon"] = eps
                f.create_dataset(
                    "names", data=np.array([name], object), dtype=h5py.string_dtype("utf-8")
                )

            yield "refused", f"utf8_{i:04d}.h5", _h5(build)
        elif kind == 1:
            yield "refused", f"utf8_{i:04d}.npz", _npz(epsilon=eps, names=np.array([name], "S8"))
        else:  # a link with a non-UTF-8 name beside good data

            def build(f, eps=eps, name=name):
                f["epsilon"] = eps
                f.create_dataset(name, data=np.zeros(3))

            yield "either", f"utf8_{i:04d}.h5", _h5(build)


def _bad_names(rng, n):
    names = (
        ["a\x1b[2Jb"],
        ["x" * (limits.MAX_NAME_CHARS + 1)],
        ["a", "b"],
        ["\n"],
        ["a\u202eb"],
        [""],
    )
    for i in range(n):
        bad = names[i % len(names)]
        fmt = ("npz", "h5")[(i // len(names)) % 2]
        eps = _eps(rng)
        if fmt == "npz":
            raw = _npz(epsilon=eps, names=np.array(bad))
        else:

            def build(f, eps=eps, bad=bad):
                f["epsilon"] = eps
                f.create_dataset("names", data=bad, dtype=h5py.string_dtype())

            raw = _h5(build)
        expect = "either" if bad == [""] else "refused"
        yield expect, f"names_{i:04d}.{fmt}", raw
    yield "refused", "names_numeric.npz", _npz(epsilon=_eps(rng), names=np.arange(1))
    yield "refused", "names_2d.npz", _npz(epsilon=_eps(rng), names=np.array([["a"]]))


def _layout(rng, n):
    for i in range(n):
        kind = i % 6
        eps, kappa = _eps(rng, 2), _kappa(rng, 2)

        def build(f, kind=kind, eps=eps, kappa=kappa):
            if kind == 1:
                f["kappa"] = kappa
            elif kind == 2:
                f.create_group("epsilon")
            elif kind == 3:
                f["epsilon"] = eps
                f["kappa"] = kappa[:1]
            else:
                f["epsilon"] = eps
                f.create_group("names")

        if kind == 0:
            raw, fmt = _npz(kappa=kappa), "npz"
        elif kind == 5:
            raw, fmt = _npz(epsilon=eps, kappa=kappa, names=np.array(["a", "b", "c"])), "npz"
        else:
            raw, fmt = _h5(build), "h5"
        yield "refused", f"layout_{i:04d}.{fmt}", raw


def _challenge_folders(rng, n, secrets):
    for i in range(n):
        kind = i % 6
        name = f"folder_{i:04d}"
        files = {}
        names = [f"{j:05d}_00001" for j in range(2)]
        for stem in names:
            files[f"{name}/EPSILON/{stem}.npy"] = _npy(
                np.moveaxis(_eps(rng)[0], -1, 0).astype("<f2")
            )
            files[f"{name}/KAPPA/{stem}.npy"] = _npy(_kappa(rng)[0].astype("<f2"))
        first = f"{name}/EPSILON/{names[0]}.npy"
        if kind == 0:  # a symbolic link to a valid file outside the folder
            files[first] = secrets["npy"]
        elif kind == 1:
            files[f"{name}/KAPPA/{names[1]}.npy"] = secrets["txt"]
        elif kind == 2:
            del files[first]
        elif kind == 3:
            files[first] = files[first][: int(rng.integers(0, len(files[first])))]
        elif kind == 4:
            files[first] = _npy(np.full((3, NPIX, NPIX), 1e4, "<f2"))
        else:
            files[first] = pickle.dumps(_Payload())
        yield Case("challenge_folder", name, "folder", "refused", files)


def _pairs(rng, n):
    for i in range(n):
        kind = i % 6
        e = _npy(np.moveaxis(_eps(rng)[0], -1, 0).astype("<f2"))
        k = _npy(_kappa(rng)[0].astype("<f2"))
        if kind == 0:
            k = _npy(_kappa(rng, 2))
        elif kind == 1:
            e = e[: int(rng.integers(0, len(e)))]
        elif kind == 2:
            k = rng.bytes(int(rng.integers(1, 3000)))
        elif kind == 3:
            e = _npy_raw(_header(shape="(3000, 3, 128, 128)"), bytes(1024))
        elif kind == 4:
            k = _npy(np.full((NPIX, NPIX), np.nan, "<f4"))
        else:
            k = pickle.dumps(_Payload())
        yield Case(
            "pair",
            f"pair_{i:04d}",
            "pair",
            "refused",
            {f"pair_{i:04d}_eps.npy": e, f"pair_{i:04d}_kappa.npy": k},
        )


def _valid(rng, n):
    for i in range(n):
        fmt = ("npy", "npz", "h5")[i % 3]
        yield "accepted", f"valid_{i:04d}.{fmt}", _good_file(rng, fmt, 1 + i % 3)
    e = _npy(np.moveaxis(_eps(rng)[0], -1, 0).astype("<f2"))
    k = _npy(_kappa(rng)[0].astype("<f2"))
    yield Case(
        "valid",
        "valid_pair",
        "pair",
        "accepted",
        {"valid_pair_kappa.npy": k, "valid_pair_eps.npy": e},
    )


# === Round two (issue 21): aliased strings, FITS headers, names, models, maps, settings ===


def _h5_aliased(rng, n):
    """HDF5 names that alias one large heap object, in every storage; short aliases pass."""
    storages = (
        {},
        {"chunks": 16},
        {"chunks": 16, "compression": "gzip"},
        {"chunks": 16, "compression": "lzf"},
    )
    for i in range(n):
        storage = storages[i % 4]
        short = i % 5 == 4  # aliasing a short name is legal (every sample named alike)
        big = 40 if short else int(rng.integers(1_000_000, 3_000_000))
        count = int(rng.integers(24, 64))
        raw = aliased_names_h5(count, big, field=64, **storage)
        yield ("either" if short else "refused"), f"alias_{i:04d}.h5", raw


def _fits_with_header(rng, cards: dict) -> bytes:
    """A lensviz field file whose image headers carry ``cards`` (a WCS and more)."""
    eps = _eps(rng)[0]
    header = fits.Header(cards)
    hdus = [fits.PrimaryHDU()]
    for name, i in (("E1", 0), ("E2", 1), ("SIGMA", 2)):
        hdus.append(
            fits.ImageHDU(np.ascontiguousarray(eps[..., i]), header=header.copy(), name=name)
        )
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits.HDUList(hdus).writeto(buf)
    return buf.getvalue()


_GOOD_WCS = {
    "CTYPE1": "RA---TAN",
    "CTYPE2": "DEC--TAN",
    "CRPIX1": 64.5,
    "CRPIX2": 64.5,
    "CRVAL1": 150.0,
    "CRVAL2": 2.0,
    "CDELT1": -0.5 / 60,
    "CDELT2": 0.5 / 60,
}


def _set_card(raw: bytes, key: str, value: bytes) -> bytes:
    """Every card ``key`` of the file rewritten with the raw ``value`` (any bytes)."""
    z = bytearray(raw)
    tag = key.ljust(8).encode() + b"= "
    at = z.find(tag)
    while at >= 0:
        z[at : at + 80] = (tag + value.rjust(20)).ljust(80)[:80]
        at = z.find(tag, at + 80)
    return bytes(z)


def _fits_headers(rng, n):
    """Field files whose WCS or pixel-scale cards are hostile (issue 21, item 4)."""
    good = _fits_with_header(rng, _GOOD_WCS)
    for i in range(n):
        kind = i % 10
        raw, expect = good, "either"
        if kind == 0:
            raw = _set_card(good, "CRVAL1", b"NAN")
        elif kind == 1:
            raw = _set_card(good, "CRVAL2", b"-INF")
        elif kind == 2:
            raw = _set_card(good, "CTYPE1", b"'RA-\x1b-TAN'")
        elif kind == 3:
            raw = _set_card(good, "CDELT1", b"0.0")
        elif kind == 4:
            raw = _set_card(good, "CTYPE2", b"'GLAT-XYZ'")
        elif kind == 5:  # bit flips inside the WCS cards only
            z = bytearray(good)
            start = z.find(b"CTYPE1")
            for pos in rng.integers(start, start + 8 * 80, 4):
                z[pos] ^= 1 << int(rng.integers(7))
            raw = bytes(z)
        elif kind == 6:  # a pixel scale beyond the bounds: refused, naming the card
            raw = _fits_with_header(rng, {"PIXARCM": float(rng.choice([-1.0, 0.0, 1e9]))})
            expect = "refused"
        elif kind == 7:
            raw = _fits_with_header(rng, {**_GOOD_WCS, "CDELT1": -2.0 / 60})  # 2′ × 0.5′
        elif kind == 8:
            raw = _fits_with_header(rng, {"PIXARCM": "half"})
            expect = "refused"
        else:  # bytes that are not ASCII in a header: refused before astropy sees them
            raw = _fits_with_header(rng, {**_GOOD_WCS, "OBJECT": "field n"})
            raw, expect = _set_card(raw, "OBJECT", "'field ñ'".encode()), "refused"
        yield expect, f"header_{i:04d}.fits", raw


_BAD_STEMS = (b"a\nb", b"tab\tname", b"\xff\xfe", b"e\x1b[2J", b"rlo\xe2\x80\xaex", b"ok_name")


def _challenge_names(rng, n):
    """Challenge folders whose file names are not printable UTF-8 (issue 21, item 5)."""
    for i in range(n):
        stem = _BAD_STEMS[i % len(_BAD_STEMS)]
        name = f"names_{i:04d}"
        text = os.fsdecode(stem)
        files = {
            f"{name}/EPSILON/{text}.npy": _npy(np.moveaxis(_eps(rng)[0], -1, 0).astype("<f2")),
            f"{name}/KAPPA/{text}.npy": _npy(_kappa(rng)[0].astype("<f2")),
        }
        expect = "accepted" if stem == b"ok_name" else "refused"
        yield Case("challenge_names", name, "folder", expect, files)


_TINY_MODEL = Path(__file__).resolve().parents[1] / "nn" / "fixtures" / "pre_split_tiny.keras"


def _zip_members(raw: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        return {info.filename: z.read(info) for info in z.infolist()}


def _zip_of(members: dict[str, bytes], method=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, raw in members.items():
            z.writestr(name, raw)
    return _fix_zip_times(buf.getvalue())


def _declare(raw: bytes, member: str, size: int) -> bytes:
    """The zip ``raw`` with ``member``'s declared (uncompressed) size set to ``size``."""
    z = bytearray(raw)
    at = z.find(b"PK\x01\x02")
    while at >= 0:
        n = struct.unpack("<H", z[at + 28 : at + 30])[0]
        if z[at + 46 : at + 46 + n] == member.encode():
            z[at + 24 : at + 28] = struct.pack("<L", size)
        at = z.find(b"PK\x01\x02", at + 4)
    return bytes(z)


def _model_files(rng, n, secrets):
    """.keras archives (issue 21, item 6): methods, bombs, members, hostile weights."""
    good = _TINY_MODEL.read_bytes()
    members = _zip_members(good)
    yield Case("model_files", "model_valid.keras", "model", "accepted", {"model_valid.keras": good})
    for i in range(n):
        kind = i % 12
        expect = "refused"
        if kind == 0:
            raw = _patch_zip(good, 9)  # deflate64: NotImplementedError in zipfile
        elif kind == 1:
            raw = _patch_zip(good, int(rng.choice([12, 14, 93, 99])))
        elif kind == 2:
            raw = _patch_zip(good, flags=0x1)
        elif kind == 3:  # a 3 GiB weights member, declared
            raw = _declare(good, "model.weights.h5", 3 * 2**30)
        elif kind == 4:
            raw = _declare(good, "config.json", int(rng.integers(2**21, 2**31)))
        elif kind == 5:
            raw = _zip_of({**members, "assets/payload.bin": rng.bytes(64)})
        elif kind == 6:
            raw = _zip_of({k: v for k, v in members.items() if k != "model.weights.h5"})
        elif kind == 7:
            raw = good[: int(rng.integers(10, len(good)))]
        elif kind == 8:  # weights that link to a file on the server
            raw = _zip_of(
                {
                    **members,
                    "model.weights.h5": _h5(
                        lambda f: f.__setitem__(
                            "x", h5py.ExternalLink(str(secrets["h5"]), "/epsilon")
                        )
                    ),
                }
            )
        elif kind == 9:  # weights whose dataset keeps its data in a server file
            ext = [(str(secrets["bin"]), 0, h5py.h5f.UNLIMITED)]
            raw = _zip_of(
                {
                    **members,
                    "model.weights.h5": _h5(
                        lambda f, ext=ext: f.create_dataset("w", (64,), "<f4", external=ext)
                    ),
                }
            )
        elif kind == 10:
            raw = _zip_of(members, zipfile.ZIP_DEFLATED)
            expect = "accepted"
        else:
            z = bytearray(good)
            for pos in rng.integers(0, len(z), 6):
                z[pos] ^= 1 << int(rng.integers(8))
            raw, expect = bytes(z), "either"
        name = f"model_{i:04d}.keras"
        yield Case("model_files", name, "model", expect, {name: raw})


def _maps(rng, n):
    """κ maps and masks for observing (issue 21, items 3 and 8): empty, dates, sizes."""
    good = _kappa(rng)[0]
    bad = (
        (np.zeros((0, 64)), "refused"),
        (np.zeros((0, 64, 64)), "refused"),
        (np.zeros((64, 64), "M8[s]"), "refused"),
        (np.zeros((64, 64), "m8[ms]"), "refused"),
        (np.zeros((64, 64), "c8"), "refused"),
        (np.zeros((63, 128)), "refused"),
        (np.full((64, 64), np.nan), "refused"),
        (np.zeros((2, 64, 64)), "refused"),
        (good, "accepted"),
        (good.astype("<f2"), "accepted"),
    )
    for i in range(n):
        array, expect = bad[i % len(bad)]
        if i // len(bad) % 2:
            buf = io.BytesIO()
            if array.dtype.name in ("float32", "float64") and array.ndim == 2 and array.size:
                fits.PrimaryHDU(np.asarray(array)).writeto(buf)
                yield Case(
                    "maps",
                    f"map_{i:04d}.fits",
                    "map",
                    expect,
                    {f"map_{i:04d}.fits": buf.getvalue()},
                )
                continue
        yield Case("maps", f"map_{i:04d}.npy", "map", expect, {f"map_{i:04d}.npy": _npy(array)})


def _settings(rng, n):
    """Extreme but allowed settings (issue 21, item 2): any depth and pixel scale, sizes
    and batches; small ones are run and their traced peak compared with the estimate."""
    for i in range(n):
        kind = i % 3
        if kind == 0:  # observe a small map at any depth and pixel scale: run it
            settings = {
                "observe": [int(rng.integers(64, 200)), int(rng.integers(64, 200))],
                "n_gal": float(10 ** rng.uniform(-1, 6)),
                "pixel_arcmin": float(10 ** rng.uniform(-2, np.log10(60))),
                "run": True,
            }
        elif kind == 1:  # simulate a batch of small fields at any depth: run it
            settings = {
                "simulate": [int(rng.integers(1, 3)), 64, int(rng.integers(0, 32))],
                "n_gal": float(10 ** rng.uniform(-1, 6)),
                "run": True,
            }
        else:  # large sizes and batches: estimated only
            settings = {
                "simulate": [int(10 ** rng.uniform(0, 6)), int(rng.integers(64, 2049)), 128],
                "observe": [int(rng.integers(64, 2049)), int(rng.integers(64, 2049))],
                "pad": int(rng.integers(0, 4096)),
            }
        name = f"settings_{i:04d}"
        raw = json.dumps(settings).encode()
        yield Case("settings", name, "settings", "either", {f"{name}.json": raw})


def _upload_keys(rng, n):
    """Uploads that must not share a cache key (issue 21, item 7)."""
    for i in range(n):
        a, b = rng.bytes(int(rng.integers(1, 64))), rng.bytes(int(rng.integers(0, 64)))
        name = f"keys_{i:04d}"
        yield Case(
            "upload_keys", name, "keys", "accepted", {f"{name}_eps.npy": a, f"{name}_kappa.npy": b}
        )


# === The generator ===


def _fits_field(rng, eps=None, kappa=None, extra=None) -> bytes:
    """A lensviz field file (primary + E1, E2, SIGMA [, KAPPA] [, extra HDUs])."""
    eps = _eps(rng)[0] if eps is None else eps
    hdus = [fits.PrimaryHDU()]
    for name, i in (("E1", 0), ("E2", 1), ("SIGMA", 2)):
        hdus.append(fits.ImageHDU(np.ascontiguousarray(eps[..., i]), name=name))
    if kappa is not None:
        hdus.append(fits.ImageHDU(kappa, name="KAPPA"))
    hdus += list(extra or [])
    buf = io.BytesIO()
    fits.HDUList(hdus).writeto(buf)
    return buf.getvalue()


def _fits(rng, n):
    """FITS field files: valid, truncated, corrupted headers, huge or odd declarations,
    compressed images, too many HDUs, wrong types and values."""
    good = _fits_field(rng, kappa=_kappa(rng)[0])
    yield "accepted", "fits_valid.fits", good
    for i in range(n):
        kind = i % 10
        raw = bytearray(good)
        expect = "refused"
        if kind == 0:  # truncated anywhere
            raw = raw[: int(rng.integers(1, len(raw)))]
        elif kind == 1:  # a header card's digits changed (NAXIS1, NAXIS2, BITPIX)
            key = (b"NAXIS1  =", b"NAXIS2  =", b"BITPIX  =")[i // 10 % 3]
            at = raw.find(key, 2880)
            value = (b"2049", b"-1", b"24", b"100000000")[i // 30 % 4]
            raw[at + 10 : at + 30] = value.rjust(20)
        elif kind == 2:  # garbage bytes in a header
            at = int(rng.integers(2880, 2880 * 2))
            raw[at : at + 8] = bytes(rng.integers(128, 256, 8).tolist())
        elif kind == 3:  # huge declared data
            raw = bytearray(_raw_fits_header(("NAXIS1", 10**6), ("NAXIS2", 10**6)))
        elif kind == 4:  # a tile-compressed image
            buf = io.BytesIO()
            fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(_eps(rng)[0, ..., 0])]).writeto(buf)
            raw = bytearray(buf.getvalue())
        elif kind == 5:  # more HDUs than allowed
            extra = [
                fits.ImageHDU(np.zeros((2, 2), np.float32)) for _ in range(limits.MAX_FITS_HDUS)
            ]
            raw = bytearray(_fits_field(rng, extra=extra))
        elif kind == 6:  # integers where floats are expected
            eps = _eps(rng)[0]
            raw = bytearray(_fits_field(rng, eps=(eps * 1000).astype(np.int16)))
        elif kind == 7:  # out-of-bounds or infinite values
            eps = _eps(rng)[0]
            eps[3, 4, i // 10 % 3] = (np.inf, 1e30, -5.0)[i // 10 % 3]
            raw = bytearray(_fits_field(rng, eps=eps))
        elif kind == 8:  # E2 missing, or a field too small
            if i // 10 % 2:
                raw = bytearray(_fits_field(rng, eps=_eps(rng)[0, :32, :32]))
            else:
                buf = io.BytesIO()
                fits.HDUList(
                    [fits.PrimaryHDU(), fits.ImageHDU(_eps(rng)[0, ..., 0], name="E1")]
                ).writeto(buf)
                raw = bytearray(buf.getvalue())
        else:  # random bit flips anywhere: read or refused, never anything else
            for pos in rng.integers(0, len(raw), 6):
                raw[pos] ^= 1 << int(rng.integers(8))
            expect = "either"
        yield expect, f"fits_{i:04d}.fits", bytes(raw)


def _raw_fits_header(*axes) -> bytes:
    cards = [
        "SIMPLE  =                    T",
        "BITPIX  =                  -32",
        f"NAXIS   = {len(axes):>20}",
    ]
    cards += [f"{key:<8}= {value:>20}" for key, value in axes]
    text = "".join(c.ljust(80) for c in [*cards, "END"])
    return text.ljust(2880).encode("ascii") + bytes(2880)


_COUNTS = {  # cases per class (the valid controls are not counted as malformed)
    "fits": 60,
    "valid": 12,
    "truncation": 120,
    "random_bytes": 90,
    "bitflip": 90,
    "wrong_dtype": 60,
    "wrong_shape": 60,
    "nonfinite": 36,
    "extreme_values": 54,
    "pickle": 40,
    "npy_header": 90,
    "huge_shape": 24,
    "npz_bomb": 15,
    "zip_method": 36,
    "h5_external_storage": 30,
    "h5_virtual": 24,
    "h5_links": 40,
    "h5_unwritten": 24,
    "h5_huge_chunk": 16,
    "h5_filter_compact": 15,
    "non_utf8_names": 36,
    "bad_names": 36,
    "layout": 30,
    "challenge_folder": 30,
    "pair": 48,
    "h5_aliased_strings": 24,
    "fits_headers": 60,
    "challenge_names": 30,
    "model_files": 60,
    "maps": 60,
    "settings": 30,
    "upload_keys": 40,
}
_CACHE: dict = {}


def generate(seed: int, secrets: dict[str, Path], scale: float = 1.0) -> list[Case]:
    """All cases, deterministically from ``seed``.

    Parameters
    ----------
    seed : int
    secrets : dict
        From :func:`plant_secrets`.
    scale : float, optional
        Multiplies the number of cases of every class.
    """
    rng = np.random.default_rng(seed)
    if "bombs" not in _CACHE:
        _CACHE["bombs"] = (bomb_npz_bytes(), names_bomb_npz_bytes())
    n = {k: max(1, round(v * scale)) for k, v in _COUNTS.items()}
    makers = {
        "valid": _valid(rng, n["valid"]),
        "truncation": _truncation(rng, n["truncation"]),
        "random_bytes": _random_bytes(rng, n["random_bytes"]),
        "bitflip": _bitflip(rng, n["bitflip"]),
        "wrong_dtype": _wrong_dtype(rng, n["wrong_dtype"]),
        "wrong_shape": _wrong_shape(rng, n["wrong_shape"]),
        "nonfinite": _nonfinite(rng, n["nonfinite"]),
        "extreme_values": _extreme(rng, n["extreme_values"]),
        "pickle": _pickle(rng, n["pickle"]),
        "npy_header": _npy_header(rng, n["npy_header"]),
        "huge_shape": _huge_shape(rng, n["huge_shape"]),
        "npz_bomb": _npz_bomb(rng, n["npz_bomb"], *_CACHE["bombs"]),
        "zip_method": _zip_method(rng, n["zip_method"]),
        "h5_external_storage": _h5_external(rng, n["h5_external_storage"], secrets),
        "h5_virtual": _h5_virtual(rng, n["h5_virtual"], secrets),
        "h5_links": _h5_links(rng, n["h5_links"], secrets),
        "h5_unwritten": _h5_unwritten(rng, n["h5_unwritten"]),
        "h5_huge_chunk": _h5_huge_chunk(rng, n["h5_huge_chunk"]),
        "h5_filter_compact": _h5_filter_compact(rng, n["h5_filter_compact"]),
        "non_utf8_names": _non_utf8_names(rng, n["non_utf8_names"]),
        "bad_names": _bad_names(rng, n["bad_names"]),
        "layout": _layout(rng, n["layout"]),
        "challenge_folder": _challenge_folders(rng, n["challenge_folder"], secrets),
        "pair": _pairs(rng, n["pair"]),
        "fits": _fits(rng, n["fits"]),
        "h5_aliased_strings": _h5_aliased(rng, n["h5_aliased_strings"]),
        "fits_headers": _fits_headers(rng, n["fits_headers"]),
        "challenge_names": _challenge_names(rng, n["challenge_names"]),
        "model_files": _model_files(rng, n["model_files"], secrets),
        "maps": _maps(rng, n["maps"]),
        "settings": _settings(rng, n["settings"]),
        "upload_keys": _upload_keys(rng, n["upload_keys"]),
    }
    cases = []
    for klass in CLASSES:
        for item in makers[klass]:
            if isinstance(item, Case):
                cases.append(item)
            else:
                expect, name, raw = item
                cases.append(Case(klass, name, "file", expect, {name: raw}))
    return cases


# === Running a trial ===


def _materialize(case: Case, root: Path) -> Path:
    """Write the case's files under ``root``; return the file or folder to read."""
    for rel, content in case.files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            continue
        if isinstance(content, Path):
            path.symlink_to(content)
        else:
            path.write_bytes(content)
    return root / case.name


#: Cards a FITS output gets beside the input's header, as the app and the CLI write them:
#: a method label with σ, a sample name that is not ASCII, a server's weights path.
HOSTILE_CARDS = {
    "METHOD": "KS93 (σ 4 px)",
    "DATA": "échantillon\x1b[2J ñ",
    "weights": "/srv/lensviz/weights/lite.keras",
    "NGAL": float("nan"),
}
_EPS_ENTRIES = ("upload", "pair", "server", "cli")


def _write_fits_out(path: Path, out: Path) -> bytes:
    """``predict --out .fits`` on a field file: read it, write a κ with its header."""
    field = data.load_dataset(path)
    out.mkdir(exist_ok=True)
    kappa = np.clip(field.eps[0, ..., 0], -1, 1)
    pixel = field.pixel_arcmin if field.pixel_known else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", data.DataWarning)  # an invalid WCS is left out
        data.write_kappa_fits(
            out / "k.fits", kappa, field.header, attrs=HOSTILE_CARDS, pixel_arcmin=pixel
        )
    raw = (out / "k.fits").read_bytes()
    with fits.open(io.BytesIO(raw)) as hdul:
        hdul.verify("exception")
    return raw


def _run_settings(name: str, raw: bytes) -> dict:
    """Check the settings' memory; run the small ones and trace their peak."""
    settings = json.loads(raw)
    out = {"estimate": 0, "peak": 0}
    if "simulate" in settings:
        batch, npix, margin = settings["simulate"]
        out["estimate"] = limits.check_simulation(batch, npix, npix + 2 * margin, 1, name)
    if "observe" in settings:
        estimate = limits.check_observation(settings["observe"], settings.get("pad"), name)
        out["estimate"] = max(out["estimate"], estimate)
    if settings.get("run"):
        rng = np.random.default_rng(0)
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        if "observe" in settings:
            kappa = np.clip(rng.normal(0, 0.05, settings["observe"]), -0.5, 2).astype("<f4")
            observe_kappa(kappa, rng, settings["n_gal"], 0.26, settings["pixel_arcmin"])
        else:
            config = SimulationConfig(npix=npix, margin_px=margin, n_gal=settings["n_gal"])
            simulate_batch(batch, 0, config)
        out["peak"] = tracemalloc.get_traced_memory()[1] - base
    return out


def _keys(case: Case) -> list[str]:
    """Keys of the case's pair and of every variant that must differ from it."""
    (a_name, a), (b_name, b) = case.files.items()
    variants = [
        [(a_name, a), (b_name, b)],
        [(a_name, a + b)],  # one file of the pair's bytes joined
        [(a_name.replace(".npy", ".txt"), a), (b_name, b)],  # another suffix
        [("renamed_" + a_name, a), (b_name, b)],  # another name (the sample name)
        [(a_name, a), (b_name, b + b"\0")],
    ]
    return [data.upload_key(files) for files in variants]


def _call(case: Case, entry: str, root: Path):
    if entry == "upload":
        ((name, raw),) = case.files.items()
        return data.load_upload(name, raw)
    if entry == "pair":
        return data.load_uploads(list(case.files.items()))
    if entry in ("kappa", "mask"):
        ((name, raw),) = case.files.items()
        if entry == "mask":
            return data.load_mask_upload(name, raw, (NPIX, NPIX))
        kappa, _ = data.load_kappa_upload(name, raw)
        limits.check_observation(kappa.shape, source=name)  # observe: before any work
        return kappa
    if entry == "settings":
        ((_, raw),) = case.files.items()
        return _run_settings(case.name, raw)
    if entry == "cache_key":
        return _keys(case)
    path = _materialize(case, root)
    if entry == "server":
        return data.load_dataset(path, 0, 512)
    if entry == "fits_out":
        return _write_fits_out(path, root / f"{case.name}.out")
    if entry == "model":
        return check_keras_archive(path)
    return cli_data.load_data(str(path), need_kappa=False)


def _check_other(entry: str, result) -> list[str]:
    """What an accepted result of the round-two entry points must be."""
    if entry == "fits_out":
        end = result.find(b"END     ")
        header = result[: end if end > 0 else 2880]
        if not all(32 <= c < 127 for c in header):
            return ["the FITS output's header is not printable ASCII"]
        if b"/srv/" in result:
            return ["the FITS output holds a server path"]
        return []
    if entry == "kappa":
        if not (
            isinstance(result, np.ndarray)
            and result.ndim == 2
            and result.dtype == np.float32
            and np.isfinite(result).all()
        ):
            return ["an accepted κ map is not a finite 2-D float32 map"]
        return []
    if entry == "mask":
        return [] if result.dtype == bool and result.shape == (NPIX, NPIX) else ["bad mask"]
    if entry == "settings":
        if result["estimate"] > limits.MAX_WORK_BYTES:
            return ["settings over the memory budget were accepted"]
        if result["peak"] > result["estimate"]:
            return [f"traced peak {result['peak']} over the estimate {result['estimate']}"]
        return []
    if entry == "cache_key":
        return [] if len(set(result)) == len(result) else ["two different uploads share a key"]
    return []


def _result_blobs(entry: str, result) -> list[bytes]:
    if entry in _EPS_ENTRIES:
        eps, kappa, names = result
        return [
            eps.tobytes(),
            b"" if kappa is None else kappa.tobytes(),
            "\n".join(names).encode("utf-8", "backslashreplace"),
        ]
    if isinstance(result, bytes):
        return [result]
    if isinstance(result, np.ndarray):
        return [result.tobytes()]
    return [repr(result).encode()]


def _check_accepted(result) -> list[str]:
    eps, kappa, names = result
    problems = []
    if not (
        isinstance(eps, np.ndarray)
        and eps.dtype == np.float32
        and eps.ndim == 4
        and eps.shape[-1] == 3
        and all(limits.MIN_FIELD_PX <= d <= limits.MAX_FIELD_PX for d in eps.shape[1:3])
        and np.isfinite(eps).all()
    ):
        problems.append("accepted ε is not a finite (N, ny, nx, 3) float32 array")
    elif (
        np.abs(eps[..., :2]).max() > limits.EPS_COMPONENT_MAX
        or eps[..., 2].min() < 0
        or eps[..., 2].max() > limits.DELTA_EPS_MAX
    ):
        problems.append("accepted ε is out of bounds")
    if kappa is not None and not (
        kappa.shape == eps.shape[:3]
        and np.isfinite(kappa).all()
        and np.abs(kappa).max() <= limits.KAPPA_ABS_MAX
    ):
        problems.append("accepted κ is not finite, in bounds and one per sample")
    if len(names) != len(eps) or not all(isinstance(s, str) and s.isprintable() for s in names):
        problems.append("accepted names are not one printable str per sample")
    return problems


def run_trial(case: Case, entry: str, root: Path) -> Trial:
    """Feed ``case`` to ``entry`` (files written under ``root``) and judge the outcome.

    The outcome is the documented error type raised, ``"accepted"``, or
    ``"escaped:<type>"`` for anything else. ``problems`` lists what breaks the error
    contract: an escaped type, a message that does not name the input, secret bytes
    in any output, an accepted hostile case, a peak over :data:`PEAK_BUDGET`.
    """
    problems = []
    message, result, accepted = "", None, False
    before = {p.name for p in root.iterdir()} if root.is_dir() else set()
    tracemalloc.start()
    try:
        result = _call(case, entry, root)
        outcome, accepted = "accepted", True
    except DOCUMENTED as exc:
        outcome, message = type(exc).__name__, str(exc)
    except Exception as exc:  # noqa: BLE001 - classifying what escapes is the point
        outcome, message = f"escaped:{type(exc).__name__}", str(exc)
        problems.append(f"undocumented exception {type(exc).__name__}: {message[:200]}")
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    blobs = [message.encode("utf-8", "backslashreplace")]
    if accepted:
        blobs += _result_blobs(entry, result)
        problems += (
            _check_accepted(result) if entry in _EPS_ENTRIES else _check_other(entry, result)
        )
        if case.expect == "refused":
            problems.append("a malformed input was accepted")
    elif case.expect == "accepted":
        problems.append(f"a valid input was refused: {message}")
    # nothing is lost or left: no new file beside the case's own, no hidden temporary
    if root.is_dir():
        allowed = {rel.split("/")[0] for rel in case.files} | {f"{case.name}.out"}
        new = {p.name for p in root.iterdir()} - before - allowed
        out = root / f"{case.name}.out"
        left = [p.name for p in out.iterdir() if p.name != "k.fits"] if out.is_dir() else []
        if new or left or (out.is_dir() and not accepted and any(out.iterdir())):
            problems.append(f"files left behind: {sorted(new) + left}")
    if outcome != "accepted" and not any(
        name.split("/")[0] in message for name in [case.name, *case.files]
    ):
        problems.append(f"the message does not name the input: {message[:200]}")
    if "\n" in message or "\r" in message:
        problems.append("the message spans several lines")
    leaked = _leaks(blobs)
    if leaked:
        problems.append("bytes of a planted secret reached the output")
    if peak > PEAK_BUDGET:
        problems.append(f"peak memory {peak / 2**20:.1f} MiB over {PEAK_BUDGET / 2**20:.0f} MiB")
    return Trial(
        case.klass, case.name, entry, case.expect, outcome, message, peak, leaked, tuple(problems)
    )


def count_table(trials: list[Trial]) -> dict[str, dict[str, int]]:
    """Class → outcome → number of trials."""
    table: dict[str, dict[str, int]] = {}
    for t in trials:
        row = table.setdefault(t.klass, {})
        row[t.outcome] = row.get(t.outcome, 0) + 1
    return table
