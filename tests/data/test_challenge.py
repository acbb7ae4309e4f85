"""lensviz.data.challenge: challenge folders, read and written."""

import io
import os
import time

import numpy as np
import pytest

from lensviz import data
from lensviz._atomic import STALE_TEMP_AGE_S

N = 4

# === Challenge folders ===


def test_read_challenge_dir_round_trip(tmp_path, arrays, make_challenge_dir):
    eps, kappa = arrays
    names = ["00087_00323", "00001_00002", "00050_00001", "00002_00001"]
    root = make_challenge_dir(tmp_path / "set", eps, kappa, names)
    e, k, got = data.read_challenge_dir(root)
    order = np.argsort(names)
    assert got == sorted(names)
    assert e.shape == (N, 128, 128, 3) and e.dtype == np.float32 and k.dtype == np.float32
    np.testing.assert_array_equal(e, eps[order])  # values exact in float16
    np.testing.assert_array_equal(k, kappa[order])
    # e1 of "00087_00323" at pixel (y=3, x=100), straight from the channels-first file.
    raw = np.load(root / "EPSILON" / "00087_00323.npy")
    assert e[got.index("00087_00323"), 3, 100, 0] == np.float32(raw[0, 3, 100])
    assert e[got.index("00087_00323"), 3, 100, 1] == np.float32(raw[1, 3, 100])
    # Slices and batches.
    e2, k2, n2 = data.read_challenge_dir(root, 1, 3)
    assert n2 == sorted(names)[1:3]
    np.testing.assert_array_equal(e2, e[1:3])
    batches = list(data.iter_challenge_dir(root, 3))
    assert [len(b[0]) for b in batches] == [3, 1]
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), k)
    assert data.challenge_names(root) == sorted(names)
    assert data.dataset_length(root) == N


def test_challenge_dir_ignores_other_files(tmp_path, arrays, make_challenge_dir):
    root = make_challenge_dir(tmp_path / "set", *arrays, ["a", "b", "c", "d"])
    (root / "EPSILON" / ".DS_Store").write_text("x")
    (root / "KAPPA" / "README.txt").write_text("x")
    assert data.challenge_names(root) == ["a", "b", "c", "d"]


def test_challenge_dir_missing_and_empty_folders(tmp_path, arrays):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        data.read_challenge_dir(tmp_path / "nowhere")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ValueError, match=r"file\.txt.*not a folder"):
        data.read_challenge_dir(tmp_path / "file.txt")
    for sub, other in (("EPSILON", "KAPPA"), ("KAPPA", "EPSILON")):
        root = tmp_path / f"only_{sub}"
        (root / sub).mkdir(parents=True)
        with pytest.raises(ValueError, match=rf"only_{sub}.*missing subfolder {other}"):
            data.read_challenge_dir(root)
    root = tmp_path / "neither"
    root.mkdir()
    with pytest.raises(ValueError, match="missing subfolder EPSILON and KAPPA"):
        data.read_challenge_dir(root)
    root = tmp_path / "empty"
    (root / "EPSILON").mkdir(parents=True)
    (root / "KAPPA").mkdir()
    with pytest.raises(ValueError, match=r"EPSILON: holds no \.npy files"):
        data.read_challenge_dir(root)
    np.save(root / "EPSILON" / "a.npy", np.zeros((3, 128, 128), np.float16))
    with pytest.raises(ValueError, match=r"KAPPA: holds no \.npy files"):
        data.read_challenge_dir(root)


def test_challenge_dir_unpaired(tmp_path, arrays, make_challenge_dir):
    eps, kappa = arrays
    root = make_challenge_dir(tmp_path / "set", eps, kappa, ["a", "b", "c", "d"])
    (root / "EPSILON" / "b.npy").unlink()
    with pytest.raises(ValueError, match=r"1 KAPPA file\(s\) without EPSILON: b\.npy") as info:
        data.read_challenge_dir(root)
    assert "set" in str(info.value)
    (root / "KAPPA" / "b.npy").unlink()
    (root / "KAPPA" / "c.npy").unlink()
    with pytest.raises(ValueError, match=r"1 EPSILON file\(s\) without KAPPA: c\.npy"):
        data.read_challenge_dir(root)
    # Many unmatched names: listed, then truncated.
    for i in range(9):
        np.save(root / "KAPPA" / f"extra{i}.npy", kappa[0].astype(np.float16))
    with pytest.raises(ValueError, match=r"9 KAPPA file\(s\).*extra4\.npy, \.\.\. and 4 more"):
        data.read_challenge_dir(root)


@pytest.mark.parametrize(
    "folder, content, match",
    [
        ("EPSILON", np.zeros((128, 128), np.float16), r"EPSILON/b\.npy: ε has shape \(128, 128\)"),
        ("EPSILON", np.zeros((2, 3, 128, 128), np.float16), r"EPSILON/b\.npy: has shape \(2, 3"),
        ("KAPPA", np.zeros((3, 128, 128), np.float16), r"KAPPA/b\.npy: has shape .*3 samples"),
        ("KAPPA", np.full((128, 128), np.nan, np.float16), r"KAPPA/b\.npy: κ contains"),
        ("KAPPA", np.zeros((128, 128), np.int16), r"KAPPA/b\.npy: κ has dtype int16"),
        ("EPSILON", np.array(["a"], dtype=object), r"EPSILON/b\.npy.*pickled or object"),
    ],
)
def test_challenge_dir_bad_file(tmp_path, arrays, folder, content, match, make_challenge_dir):
    root = make_challenge_dir(tmp_path / "set", *arrays, ["a", "b", "c", "d"])
    np.save(root / folder / "b.npy", content, allow_pickle=True)
    with pytest.raises((ValueError, TypeError), match=match):
        data.read_challenge_dir(root)


def test_challenge_dir_truncated_file(tmp_path, arrays, make_challenge_dir):
    root = make_challenge_dir(tmp_path / "set", *arrays, ["a", "b", "c", "d"])
    path = root / "EPSILON" / "c.npy"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match=r"EPSILON/c\.npy: cannot read.*truncated"):
        data.read_challenge_dir(root)
    # The samples before it can still be read on their own.
    assert data.read_challenge_dir(root, 0, 2)[2] == ["a", "b"]


def test_write_challenge_dir(tmp_path, arrays, leftovers):
    eps, kappa = arrays
    out = tmp_path / "out"
    data.write_challenge_dir(out, eps, kappa, ["s0", "s1", "s2", "s3"])
    raw = np.load(out / "EPSILON" / "s2.npy")
    assert raw.shape == (3, 128, 128) and raw.dtype == np.float16
    assert np.load(out / "KAPPA" / "s2.npy").dtype == np.float16
    np.testing.assert_array_equal(raw[0], eps[2, ..., 0])
    e, k, names = data.read_challenge_dir(out)
    np.testing.assert_array_equal(e, eps)
    np.testing.assert_array_equal(k, kappa)
    assert leftovers(tmp_path) == []
    with pytest.raises(FileExistsError, match="out"):
        data.write_challenge_dir(out, eps, kappa, ["x0", "x1", "x2", "x3"])
    data.write_challenge_dir(out, eps[:1], kappa[:1], ["new"], overwrite=True)
    assert data.challenge_names(out) == ["new"]
    assert leftovers(tmp_path) == []


def test_write_challenge_dir_failures_leave_nothing(tmp_path, arrays, leftovers):
    eps, kappa = arrays
    out = tmp_path / "out"
    for names, match in (
        (["a", "b", "a", "c"], "duplicate"),
        (["a", "../b", "c", "d"], "name"),
        (["a", "b"], "2 names for 4 samples"),
    ):
        with pytest.raises(ValueError, match=match):
            data.write_challenge_dir(out, eps, kappa, names)
        assert not out.exists() and leftovers(tmp_path) == []
    with pytest.raises(ValueError, match=r"out: e1 = .* out of bounds.*\|e1\|, \|e2\| ≤ 5"):
        data.write_challenge_dir(out, eps * 1e6, kappa, ["a", "b", "c", "d"])
    with pytest.raises(RuntimeError), data.ChallengeDirWriter(out) as w:
        w.append(eps[:2], kappa[:2], ["a", "b"])
        raise RuntimeError("boom")
    assert not out.exists() and leftovers(tmp_path) == []


# === Symbolic links, fsync, leftovers of killed writers ===


def test_symbolic_links_in_a_challenge_folder_are_refused(tmp_path, arrays, make_challenge_dir):
    root = make_challenge_dir(tmp_path / "set", *arrays, ["a", "b", "c", "d"])
    outside = tmp_path / "outside.npy"
    np.save(outside, np.zeros((3, 128, 128), np.float16))  # valid: would pass every check
    (root / "EPSILON" / "b.npy").unlink()
    (root / "EPSILON" / "b.npy").symlink_to(outside)
    with pytest.raises(data.UnsafeFileError, match=r"set/EPSILON/b\.npy: is a symbolic link"):
        data.read_challenge_dir(root)
    with pytest.raises(data.UnsafeFileError):
        data.dataset_length(root)
    root2 = make_challenge_dir(tmp_path / "set2", *arrays, ["a", "b", "c", "d"])
    (root2 / "KAPPA").rename(tmp_path / "elsewhere")
    (root2 / "KAPPA").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(data.UnsafeFileError, match=r"set2/KAPPA: is a symbolic link"):
        data.load_dataset(root2)


def test_challenge_writer_fsyncs_every_file_before_the_rename(tmp_path, arrays, monkeypatch):
    synced, renamed = [], []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    def rename(src, dst):
        renamed.append((str(src), len(synced)))
        real_rename(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", rename)
    data.write_challenge_dir(tmp_path / "out", *arrays, ["a", "b", "c", "d"])
    files = [s for s in synced if s.endswith(".npy")]
    assert len(files) == 8  # 4 ε + 4 κ files
    ((src, n_synced_before),) = renamed
    assert n_synced_before >= 8 + 3  # the files, EPSILON/, KAPPA/ and the folder itself
    assert synced[-1] == str(tmp_path)  # the parent, after the rename


def test_stale_temporaries_of_a_killed_writer_are_removed(tmp_path, arrays):
    stale = tmp_path / ".out.abcd1234.tmp"
    (stale / "EPSILON").mkdir(parents=True)
    fresh = tmp_path / ".out.efgh5678.tmp"  # a write in progress: left alone
    fresh.mkdir()
    old = time.time() - 2 * STALE_TEMP_AGE_S
    os.utime(stale / "EPSILON", (old, old))
    os.utime(stale, (old, old))
    data.write_challenge_dir(tmp_path / "out", *arrays, ["a", "b", "c", "d"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.efgh5678.tmp", "out"]


@pytest.mark.parametrize("stem", [b"a\nb", b"t\tb", b"e\x1b[2J", b"bad\xff", b"a\xe2\x80\xaeb"])
def test_challenge_file_names_must_be_printable_utf8(tmp_path, stem):
    # issue 21, item 5: such names became sample names
    root = os.fsencode(tmp_path / "set")
    for sub, array in ((b"EPSILON", np.full((3, 128, 128), 0.1, "f2")), (b"KAPPA", None)):
        os.makedirs(os.path.join(root, sub))
        buf = io.BytesIO()
        np.save(buf, array if array is not None else np.zeros((128, 128), "f2"))
        with open(os.path.join(root, sub, stem + b".npy"), "wb") as f:
            f.write(buf.getvalue())
    words = "is not UTF-8" if stem == b"bad\xff" else "(control characters|characters)"
    for read in (
        lambda: data.load_dataset(tmp_path / "set"),
        lambda: data.dataset_length(tmp_path / "set"),
        lambda: list(data.iter_dataset(tmp_path / "set", 4)),
    ):
        with pytest.raises(data.DataError, match=rf"set/EPSILON/.*\.npy: .*{words}") as err:
            read()
        assert str(err.value).isprintable()
