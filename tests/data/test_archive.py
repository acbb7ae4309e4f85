"""lensviz.data.archive: .keras model files checked before Keras opens them (issue 21, item 6)."""

import io
import struct
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from lensviz.data import DataError, DataTypeError, LimitError, UnsafeFileError, limits
from lensviz.data.archive import (
    WEIGHTS_MEMBER,
    check_keras_archive,
    check_model_signature,
    open_keras_weights,
)

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "nn" / "fixtures" / "pre_split_tiny.keras"


def _members(path=TINY) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {info.filename: z.read(info) for info in z.infolist()}


def _archive(members: dict[str, bytes], method=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, raw in members.items():
            z.writestr(name, raw)
    return buf.getvalue()


def _patch_directory(raw: bytes, *, method=None, flags=0, size=None) -> bytes:
    """Change every entry's method, flags or declared size (central directory and local)."""
    z = bytearray(raw)
    for sig, flag_at, method_at, size_at in ((b"PK\x01\x02", 8, 10, 24), (b"PK\x03\x04", 6, 8, 22)):
        i = z.find(sig)
        while i >= 0:
            if method is not None:
                z[i + method_at : i + method_at + 2] = struct.pack("<H", method)
            z[i + flag_at] |= flags
            if size is not None:
                z[i + size_at : i + size_at + 4] = struct.pack("<L", size)
            i = z.find(sig, i + 4)
    return bytes(z)


def _weights(build) -> bytes:
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        build(f)
    return buf.getvalue()


def test_the_shipped_and_fixture_models_pass():
    check_keras_archive(ROOT / "weights" / "lite.keras")
    check_keras_archive(TINY)
    with open_keras_weights(TINY) as f:
        assert isinstance(f, h5py.File) and len(f) > 0


@pytest.mark.parametrize(
    ("patch", "error", "words"),
    [
        ({"method": 9}, DataError, r"method 9 \(deflate64\); expected stored \(0\) or deflated"),
        ({"method": 12}, DataError, r"method 12 \(bzip2\)"),
        ({"flags": 0x1}, UnsafeFileError, "encrypted"),
        ({"size": 3 * 2**30}, LimitError, r"declares 3072\.0 MiB; the limit is 1 MiB"),
    ],
)
def test_members_are_checked_from_the_directory(tmp_path, patch, error, words):
    path = tmp_path / "m.keras"
    path.write_bytes(_patch_directory(TINY.read_bytes(), **patch))
    with pytest.raises(error, match=rf"^m\.keras \[.*\]: .*{words}"):
        check_keras_archive(path)


def test_a_deflated_model_is_fine_and_a_bomb_is_not(tmp_path):
    (tmp_path / "deflated.keras").write_bytes(_archive(_members(), zipfile.ZIP_DEFLATED))
    check_keras_archive(tmp_path / "deflated.keras")
    members = _members()
    members["config.json"] = b" " * (limits.MAX_MODEL_CONFIG_BYTES + 1)  # 1 MiB of spaces
    (tmp_path / "big.keras").write_bytes(_archive(members, zipfile.ZIP_DEFLATED))
    with pytest.raises(LimitError, match=r"big\.keras \[config\.json\]: .*MAX_MODEL_CONFIG"):
        check_keras_archive(tmp_path / "big.keras")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda m: m.update({"assets/x.bin": b"1"}), r"holds unexpected \['assets/x\.bin'\]"),
        (lambda m: m.pop(WEIGHTS_MEMBER), "has no model.weights.h5"),
        (lambda m: m.pop("config.json"), "has no config.json"),
    ],
)
def test_members_other_than_keras_three_are_refused(tmp_path, change, words):
    members = _members()
    change(members)
    (tmp_path / "m.keras").write_bytes(_archive(members))
    with pytest.raises(DataError, match=rf"^m\.keras: the archive {words}"):
        check_keras_archive(tmp_path / "m.keras")


def test_the_weights_are_a_hostile_hdf5_file_too(tmp_path, tmp_path_factory):
    secret = tmp_path_factory.mktemp("s") / "secret.h5"
    with h5py.File(secret, "w") as f:
        f["x"] = np.ones(4)
    members = _members()
    members[WEIGHTS_MEMBER] = _weights(
        lambda f: f.__setitem__("x", h5py.ExternalLink(str(secret), "x"))
    )
    (tmp_path / "link.keras").write_bytes(_archive(members))
    with pytest.raises(
        UnsafeFileError, match=r"link\.keras \[model\.weights\.h5\]: /x is an external link"
    ):
        check_keras_archive(tmp_path / "link.keras")
    # 1 GiB of zeros declared by a gzip dataset of a few kB: refused from its storage size
    members[WEIGHTS_MEMBER] = _weights(
        lambda f: f.create_dataset(
            "w", shape=(2**28,), dtype="f4", chunks=(2**22,), compression="gzip", fillvalue=0
        ).write_direct(np.zeros(2**22, "f4"), dest_sel=np.s_[: 2**22])
    )
    (tmp_path / "bomb.keras").write_bytes(_archive(members))
    with pytest.raises(DataError, match=r"bomb\.keras \[model\.weights\.h5\]"):
        check_keras_archive(tmp_path / "bomb.keras")


def test_corrupt_and_missing_files_name_the_file(tmp_path):
    (tmp_path / "c.keras").write_bytes(b"not a zip at all")
    with pytest.raises(
        DataError, match=r"^c\.keras: cannot read as a \.keras model: it is corrupt"
    ):
        check_keras_archive(tmp_path / "c.keras")
    raw = TINY.read_bytes()
    (tmp_path / "t.keras").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=r"^t\.keras"):
        check_keras_archive(tmp_path / "t.keras")
    with pytest.raises(FileNotFoundError, match="none.keras: no such model file"):
        check_keras_archive(tmp_path / "none.keras")
    (tmp_path / "w.zip").write_bytes(raw)
    with pytest.raises(DataError, match=r"w\.zip: a model file must end in \.keras"):
        check_keras_archive(tmp_path / "w.zip")


@pytest.mark.parametrize(
    ("shape_in", "shape_out"),
    [
        ((None, 10), (None, 1)),  # a plain Dense model: IndexError when predicting before
        ((None, 128, 128, 3), (None, 128, 128, 1)),
        ((None, 128, 128, 3), (None, 64, 64)),
        ([(None, 128, 128, 3), (None, 128, 128, 3)], (None, 128, 128)),
        ((None, None, None, 3), (None, None, None)),
        ((1, 128, 128, 3), (1, 128, 128)),
    ],
)
def test_model_signatures_that_are_not_a_unet_are_refused(shape_in, shape_out):
    with pytest.raises(DataTypeError, match=r"^m\.keras: the model takes .* expected maps"):
        check_model_signature(shape_in, shape_out, "m.keras")


def test_unet_signatures_pass():
    for channels in (3, 4, 5):
        check_model_signature((None, 128, 128, channels), (None, 128, 128), "m.keras")
    check_model_signature((None, 96, 64, 3), (None, 96, 64), "m.keras")


def test_a_weights_member_declaring_3_gib_is_refused_before_it_is_read(tmp_path):
    raw = bytearray(TINY.read_bytes())
    entry = raw.find(b"PK\x01\x02")
    while entry >= 0:  # the central-directory entry of the weights member
        n = struct.unpack("<H", raw[entry + 28 : entry + 30])[0]
        if raw[entry + 46 : entry + 46 + n] == WEIGHTS_MEMBER.encode():
            raw[entry + 24 : entry + 28] = struct.pack("<L", 3 * 2**30)
        entry = raw.find(b"PK\x01\x02", entry + 4)
    (tmp_path / "bomb.keras").write_bytes(bytes(raw))
    with pytest.raises(
        LimitError,
        match=r"bomb\.keras \[model\.weights\.h5\]: .* 3072\.0 MiB; the limit is 512 MiB",
    ):
        check_keras_archive(tmp_path / "bomb.keras")
