"""lensviz.data.hdf5: HDF5 dataset files, read and written."""

import io
import os
import threading
import tracemalloc

import h5py
import numpy as np
import pytest

from lensviz import data
from lensviz._atomic import is_temp_name
from lensviz.cli import data as cli_data
from lensviz.data import limits
from lensviz.data.hdf5 import hdf5_grid, iter_hdf5, write_hdf5
from lensviz.simulate import simulate_batch
from tests.data import fuzz_inputs as fz

N = 4

# === HDF5 ===


def test_hdf5_round_trip_and_layout(tmp_path, arrays, leftovers):
    eps, kappa = arrays
    names = ["ñame-0", "b", "c", "d"]
    path = tmp_path / "x.h5"
    data.write_hdf5(path, eps, kappa, names, attrs={"seed_start": 5})
    assert leftovers(tmp_path) == []
    with h5py.File(path, "r") as f:
        assert f["epsilon"].shape == (N, 128, 128, 3) and f["epsilon"].dtype == np.float32
        assert f["kappa"].shape == (N, 128, 128) and f["kappa"].dtype == np.float32
        assert f["epsilon"].chunks == (1, 128, 128, 3) and f["epsilon"].compression == "gzip"
        assert f["epsilon"].maxshape == (None, 128, 128, 3)
        assert h5py.check_string_dtype(f["names"].dtype).encoding == "utf-8"
        assert f.attrs["seed_start"] == 5 and f.attrs["format"] == "lensviz"
    e, k, got = data.read_hdf5(path)
    np.testing.assert_array_equal(e, eps)
    np.testing.assert_array_equal(k, kappa)
    assert got == names
    assert data.hdf5_length(path) == N
    e, k, got = data.read_hdf5(path, start=1, stop=3)
    np.testing.assert_array_equal(e, eps[1:3])
    np.testing.assert_array_equal(k, kappa[1:3])
    assert got == names[1:3]
    e, k, got = data.read_hdf5(path, indices=[3, 0, 3])
    np.testing.assert_array_equal(e, eps[[3, 0, 3]])
    assert got == ["d", "ñame-0", "d"]
    assert len(data.read_hdf5(path, 2, 100)[0]) == 2  # stop clipped like a slice
    for kwargs in (
        {"start": 4},
        {"start": 2, "stop": 2},
        {"indices": [0, 4]},
        {"indices": []},
        {"start": -1},
        {"start": 1, "indices": [0]},
    ):
        with pytest.raises(ValueError):
            data.read_hdf5(path, **kwargs)


def test_hdf5_writer_appends_batches_atomically(tmp_path, arrays, leftovers):
    eps, kappa = arrays
    path = tmp_path / "x.h5"
    with data.HDF5Writer(path, compression="lzf") as w:
        w.append(eps[:3], kappa[:3])
        assert not path.exists()  # only the temporary exists while writing
        w.append(np.moveaxis(eps[3:], -1, 1).astype(np.float16), kappa[3:])
        assert w.n_written == N
    e, k, names = data.read_hdf5(path)
    np.testing.assert_array_equal(e, eps)
    assert names == ["000000", "000001", "000002", "000003"]
    assert leftovers(tmp_path) == []


def test_hdf5_writer_failures_leave_nothing(tmp_path, arrays, leftovers):
    eps, kappa = arrays
    path = tmp_path / "x.h5"
    bad = kappa.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"), data.HDF5Writer(path) as w:
        w.append(eps, kappa)
        w.append(eps, bad)
    assert not path.exists() and leftovers(tmp_path) == []
    with pytest.raises(ValueError, match="without κ"), data.HDF5Writer(path) as w:
        w.append(eps)
        w.append(eps, kappa)
    with pytest.raises(KeyboardInterrupt), data.HDF5Writer(path) as w:
        w.append(eps, kappa)
        raise KeyboardInterrupt
    with pytest.raises(ValueError, match="no samples"), data.HDF5Writer(path):
        pass
    with pytest.raises(TypeError), data.HDF5Writer(path, attrs={"bad": object()}):
        pass
    assert not path.exists() and leftovers(tmp_path) == []
    data.write_hdf5(path, eps, kappa)
    with pytest.raises(FileExistsError):
        data.write_hdf5(path, eps, kappa)
    data.write_hdf5(path, eps[:1], kappa[:1], overwrite=True)
    assert data.hdf5_length(path) == 1 and leftovers(tmp_path) == []


def test_hdf5_epsilon_only(tmp_path, arrays):
    path = tmp_path / "eps.h5"
    data.write_hdf5(path, arrays[0])
    e, k, names = data.read_hdf5(path)
    assert k is None and len(names) == N
    np.testing.assert_array_equal(e, arrays[0])


def _write_raw_h5(path, **datasets):
    with h5py.File(path, "w") as f:
        for key, value in datasets.items():
            f[key] = value


def test_hdf5_bad_layouts(tmp_path, arrays):
    eps, kappa = arrays
    path = tmp_path / "raw.h5"
    _write_raw_h5(path, kappa=kappa)
    with pytest.raises(ValueError, match=r"raw\.h5: has no dataset 'epsilon' \(found \['kappa'\]"):
        data.read_hdf5(path)
    with pytest.raises(ValueError, match="'epsilon'"):
        data.hdf5_length(path)
    _write_raw_h5(path, epsilon=eps[..., :2])
    with pytest.raises(ValueError, match=r"raw\.h5: dataset 'epsilon' has shape \(4, 128, 128, 2"):
        data.read_hdf5(path)
    _write_raw_h5(path, epsilon=eps, kappa=kappa[:3])
    with pytest.raises(ValueError, match=r"'kappa' has shape \(3, 128, 128\).*holds 4"):
        data.read_hdf5(path)
    _write_raw_h5(path, epsilon=eps.astype(np.int32))
    with pytest.raises(TypeError, match=r"raw\.h5: dataset 'epsilon' has dtype int32"):
        data.read_hdf5(path)
    bad = eps.copy()
    bad[3, 0, 0, 0] = np.inf
    _write_raw_h5(path, epsilon=bad, kappa=kappa)
    with pytest.raises(ValueError, match=r"raw\.h5 \[epsilon\]: ε contains 1 NaN"):
        data.read_hdf5(path)
    assert len(data.read_hdf5(path, 0, 3)[0]) == 3  # the finite rows read fine
    _write_raw_h5(path, epsilon=eps, names=np.arange(N))
    with pytest.raises(ValueError, match="'names'"):
        data.read_hdf5(path)
    # Channels-first ε in a foreign file is accepted, and names default to indices.
    _write_raw_h5(path, epsilon=np.moveaxis(eps, -1, 1))
    e, k, names = data.read_hdf5(path, 1, 3)
    np.testing.assert_array_equal(e, eps[1:3])
    assert k is None and names == ["000001", "000002"]


def test_hdf5_truncated_and_corrupt(tmp_path, arrays):
    path = tmp_path / "x.h5"
    data.write_hdf5(path, *arrays)
    raw = path.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=r"cut\.h5: cannot read as HDF5.*truncated"):
        data.read_hdf5(cut)
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    with pytest.raises(ValueError, match=r"text\.h5: cannot read as HDF5"):
        data.hdf5_length(text)
    with pytest.raises(FileNotFoundError):
        data.read_hdf5(tmp_path / "missing.h5")


def test_hdf5_reads_only_the_requested_chunks(tmp_path, arrays):
    """Corrupt the last sample's chunk: slices before it still read, the whole file not."""
    eps, kappa = arrays
    path = tmp_path / "x.h5"
    data.write_hdf5(path, eps, kappa)
    with h5py.File(path, "r") as f:
        info = f["epsilon"].id.get_chunk_info_by_coord((N - 1, 0, 0, 0))
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + 16)
        fh.write(os.urandom(256))
    e, k, _ = data.read_hdf5(path, 0, N - 1)
    np.testing.assert_array_equal(e, eps[:-1])
    with pytest.raises(ValueError, match=r"x\.h5: cannot read dataset 'epsilon'.*corrupt"):
        data.read_hdf5(path)


# === Hostile HDF5 files (issue 11): refused from the structure, before any data is read ===


SECRET = b"root:x:0:0:LENSVIZ-SECRET:/root:/bin/bash\n"


def _h5_bytes(build) -> bytes:
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        build(f)
    return buf.getvalue()


def _all_readers(tmp_path, name, raw):
    """Call every reader entry point on the same bytes; return the errors raised."""
    path = tmp_path / name
    path.write_bytes(raw)
    errors = []
    for read in (
        lambda: data.load_upload(name, raw),
        lambda: data.load_dataset(path, 0, 512),
        lambda: data.hdf5_length(path),
        lambda: cli_data.load_data(str(path)),
    ):
        with pytest.raises(data.DataError) as info:
            read()
        errors.append(info.value)
    return errors


def test_the_issue_reproducer_is_refused_everywhere(tmp_path):
    secret = tmp_path / "passwd"
    secret.write_bytes(SECRET * 1000)
    raw = _h5_bytes(
        lambda f: f.create_dataset(
            "epsilon",
            shape=(1, 128, 128, 3),
            dtype="<f4",
            external=[(str(secret), 0, h5py.h5f.UNLIMITED)],
        )
    )
    for err in _all_readers(tmp_path, "x.h5", raw):
        assert isinstance(err, data.UnsafeFileError)
        assert "x.h5" in str(err) and "external file" in str(err)
        assert "LENSVIZ-SECRET" not in str(err) and str(secret) not in str(err)


def test_a_self_referencing_virtual_dataset_is_refused_before_hdf5_resolves_it(tmp_path):
    def build(f):
        layout = h5py.VirtualLayout(shape=(1, 128, 128, 3), dtype="<f4")
        layout[...] = h5py.VirtualSource(".", "epsilon", shape=(1, 128, 128, 3))
        f.create_virtual_dataset("epsilon", layout, fillvalue=0)

    for err in _all_readers(tmp_path, "v.h5", _h5_bytes(build)):
        assert isinstance(err, data.UnsafeFileError) and "virtual dataset" in str(err)


@pytest.mark.parametrize("kind", ["soft", "dangling", "loop", "self", "external", "deep"])
def test_links_are_never_followed(tmp_path, arrays, kind):
    other = tmp_path / "other.h5"
    data.write_hdf5(other, *arrays)

    def build(f):
        if kind == "soft":
            f["real"] = arrays[0]
            f["epsilon"] = h5py.SoftLink("/real")
        elif kind == "dangling":
            f["epsilon"] = h5py.SoftLink("/nothing")
        elif kind == "loop":
            f["epsilon"] = h5py.SoftLink("/a")
            f["a"] = h5py.SoftLink("/epsilon")
        elif kind == "self":
            f["epsilon"] = h5py.SoftLink("/epsilon")
        elif kind == "external":
            f["epsilon"] = h5py.ExternalLink(str(other), "/epsilon")
        else:  # good data, and a loop hidden in a subgroup
            f["epsilon"] = arrays[0]
            f.create_group("meta/deeper")["up"] = h5py.SoftLink("/meta")

    for err in _all_readers(tmp_path, "l.h5", _h5_bytes(build)):
        assert isinstance(err, data.UnsafeFileError), err
        assert "l.h5" in str(err) and "link" in str(err)


def test_a_hard_link_cycle_is_walked_once(tmp_path, arrays):
    def build(f):
        f["epsilon"] = arrays[0]
        group = f.create_group("g")
        group["up"] = group

    e, _, _ = data.load_upload("c.h5", _h5_bytes(build))
    np.testing.assert_array_equal(e, arrays[0])


@pytest.mark.parametrize("kind", ["contiguous", "chunked", "partial", "kappa"])
def test_unwritten_datasets_are_refused(tmp_path, arrays, kind):
    def build(f):
        if kind == "contiguous":
            f.create_dataset("epsilon", shape=(20000, 128, 128, 3), dtype="<f4")
        elif kind == "chunked":
            f.create_dataset(
                "epsilon", shape=(20000, 128, 128, 3), dtype="<f4", chunks=(1, 128, 128, 3)
            )
        elif kind == "partial":
            ds = f.create_dataset(
                "epsilon", shape=(4, 128, 128, 3), dtype="<f4", chunks=(1, 128, 128, 3)
            )
            ds[:3] = arrays[0][:3]
        else:
            f["epsilon"] = arrays[0]
            f.create_dataset("kappa", shape=(4, 128, 128), dtype="<f4")

    raw = _h5_bytes(build)
    assert kind not in ("contiguous", "chunked") or len(raw) < 20_000  # 3.9 GB declared
    for err in _all_readers(tmp_path, "u.h5", raw):
        assert "never (fully) written" in str(err) and "u.h5" in str(err)


def test_huge_chunks_and_plugin_filters_are_refused(tmp_path, arrays):
    raw = _h5_bytes(
        lambda f: f.create_dataset(
            "epsilon",
            shape=(3000, 128, 128, 3),
            dtype="<f4",
            chunks=(3000, 128, 128, 3),
            compression="gzip",
        )
    )
    for err in _all_readers(tmp_path, "c.h5", raw):
        assert isinstance(err, data.LimitError) and "MAX_HDF5_CHUNK_BYTES" in str(err)
    raw = _h5_bytes(
        lambda f: f.create_dataset(
            "epsilon", data=arrays[0], chunks=(1, 128, 128, 3), scaleoffset=4
        )
    )
    with pytest.raises(data.UnsafeFileError, match=r"s\.h5: /epsilon uses the HDF5 filter 6"):
        data.load_upload("s.h5", raw)
    # The filters lensviz and h5py write are accepted.
    raw = _h5_bytes(
        lambda f: f.create_dataset(
            "epsilon",
            data=arrays[0],
            chunks=(1, 128, 128, 3),
            compression="lzf",
            fletcher32=True,
            shuffle=True,
        )
    )
    np.testing.assert_array_equal(data.load_upload("ok.h5", raw).eps, arrays[0])


def test_a_compression_bomb_is_refused_from_its_storage_size():
    def build(f):
        ds = f.create_dataset(
            "epsilon",
            shape=(400, 128, 128, 3),
            dtype="<f4",
            chunks=(1, 128, 128, 3),
            compression="gzip",
            compression_opts=1,
        )
        ds[...] = np.zeros(ds.shape, "<f4")  # (a scalar would be written chunk by chunk, slowly)

    raw = _h5_bytes(build)
    assert len(raw) < 2**20  # 79 MB of zeros
    with pytest.raises(data.LimitError, match=r"b\.h5: /epsilon .*compression ratio over 100"):
        data.load_upload("b.h5", raw)


def test_compact_storage_is_refused(arrays):
    def build(f):
        f["epsilon"] = arrays[0]
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_layout(h5py.h5d.COMPACT)
        space = h5py.h5s.create_simple((1, 128, 128))
        h5py.h5d.create(f.id, b"kappa", h5py.h5t.IEEE_F16LE, space, dcpl)

    with pytest.raises(data.DataError, match=r"k\.h5: /kappa has compact storage"):
        data.load_upload("k.h5", _h5_bytes(build))


def test_non_utf8_names_give_a_clear_error(arrays):
    """Formerly an AttributeError (ds.name on an AsStrView)."""

    def build(f):
        f["epsilon"] = arrays[0][:1]
        f.create_dataset(
            "names", data=np.array([b"\xff\xfe"], object), dtype=h5py.string_dtype("utf-8")
        )

    with pytest.raises(
        data.DataError,
        match=r"n\.h5 \[names\]: the sample name '\\xff\\xfe' "
        "is not UTF-8",
    ):
        data.load_upload("n.h5", _h5_bytes(build))


def test_too_many_links_and_deep_groups_are_refused(arrays):
    def many(f):
        f["epsilon"] = arrays[0]
        for i in range(data.limits.MAX_HDF5_LINKS):
            f.create_group(f"g{i}")

    with pytest.raises(data.LimitError, match=r"m\.h5: the file holds more than 256 links"):
        data.load_upload("m.h5", _h5_bytes(many))

    def deep(f):
        f["epsilon"] = arrays[0]
        f.create_group("/".join("g" * 10))

    with pytest.raises(data.LimitError, match=r"d\.h5: /g/g/g/g/g/g/g/g: groups are nested"):
        data.load_upload("d.h5", _h5_bytes(deep))


def test_writer_refuses_chunks_it_could_not_read_back(tmp_path):
    with pytest.raises(ValueError, match="samples_per_chunk=342"):
        data.HDF5Writer(tmp_path / "x.h5", samples_per_chunk=342)


def test_writer_temporary_is_never_listed_as_a_dataset(tmp_path, arrays):
    path = tmp_path / "x.h5"
    with data.HDF5Writer(path) as w:
        w.append(*arrays)
        assert list(tmp_path.glob("*.h5")) == [] and list(tmp_path.glob("*.hdf5")) == []
        (temp,) = tmp_path.iterdir()
        assert is_temp_name(temp.name) and temp.is_dir()
    assert [p.name for p in tmp_path.iterdir()] == ["x.h5"]


def test_predictions_round_trip_and_bounds(tmp_path, arrays):
    kappa = arrays[1]
    path = tmp_path / "p.h5"
    data.write_predictions(path, kappa, list("abcd"), attrs={"method": "ks93"}, kappa_std=kappa**2)
    k, names, attrs = data.read_predictions(path)
    np.testing.assert_array_equal(k, kappa)
    assert names == list("abcd") and attrs["method"] == "ks93"
    k, names, _ = data.read_predictions(path, 1, 3)
    np.testing.assert_array_equal(k, kappa[1:3])
    assert names == ["b", "c"]
    with pytest.raises(data.DataError, match=r"q\.h5 \[kappa_pred\]: κ = 1e\+06"):
        data.write_predictions(tmp_path / "q.h5", kappa * 0 + 1e6, list("abcd"))
    assert not (tmp_path / "q.h5").exists()


# === Strings: aliased heap objects (issue 21, item 1) ===

STORAGES = [
    {},
    {"chunks": 64},
    {"chunks": 64, "compression": "gzip"},
    {"chunks": 64, "compression": "lzf"},
]


@pytest.mark.parametrize("storage", STORAGES, ids=["contiguous", "chunked", "gzip", "lzf"])
def test_aliased_names_are_refused_before_they_are_materialised(tmp_path, storage):
    # 300 descriptors of one 2 MB string: 600 MB if read, 2 MB in the file
    raw = fz.aliased_names_h5(300, 2_000_000, field=64, **storage)
    assert len(raw) < 20 * 2**20
    path = tmp_path / "alias.h5"
    path.write_bytes(raw)
    readers = {
        "upload": lambda: data.load_upload("alias.h5", raw),
        "server": lambda: data.load_dataset(path, 0, 512),
        "cli": lambda: cli_data.load_data(str(path), need_kappa=False),
        "batches": lambda: list(data.iter_dataset(path, 64)),
    }
    for where, read in readers.items():
        tracemalloc.start()
        try:
            with pytest.raises(data.LimitError, match=r"alias\.h5: dataset 'names': the string "):
                read()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        # the names are checked before any map is read: at most the one 2 MB string that
        # lzf names read (600 MB when every alias was materialised)
        assert peak < 8 * 2**20, (where, peak)


@pytest.mark.parametrize("storage", STORAGES, ids=["contiguous", "chunked", "gzip", "lzf"])
def test_names_of_every_storage_read_back_exactly(tmp_path, storage):
    names = [f"s{i}-ñ" for i in range(50)]
    path = tmp_path / "n.h5"
    eps = np.full((50, 64, 64, 3), 0.1, np.float32)
    options = {} if not storage else {"chunks": (7,), "compression": storage.get("compression")}
    with h5py.File(path, "w") as f:
        f["epsilon"] = eps
        f.create_dataset("names", data=names, dtype=h5py.string_dtype(), **options)
    assert data.load_dataset(path).names == names
    assert data.read_hdf5(path, 9, 30)[2] == names[9:30]
    assert data.read_hdf5(path, indices=[40, 3, 3, 9, 48])[2] == [
        names[i] for i in (40, 3, 3, 9, 48)
    ]
    assert data.load_upload("n.h5", path.read_bytes()).names == names


def test_file_attributes_are_read_within_bounds(tmp_path, arrays):
    eps, kappa = arrays
    path = tmp_path / "p.h5"
    data.write_predictions(path, kappa, list("abcd"), attrs={"method": "ks93", "pad_px": 8})
    assert data.read_predictions(path)[2]["pad_px"] == 8
    for value, words in (
        (np.array(["a", "b"], dtype=object), "is an array of 2 strings"),
        ("x" * (limits.MAX_ATTR_CHARS * 4 + 1), "bytes; expected at most"),
        (np.zeros(2000), "2000 values"),
    ):
        with h5py.File(path, "r+") as f:
            f.attrs.create(
                "bad",
                value,
                dtype=h5py.string_dtype()
                if isinstance(value, np.ndarray) and value.dtype == object
                else None,
            )
        with pytest.raises(data.LimitError, match=rf"p\.h5: attribute 'bad' .*{words}"):
            data.read_predictions(path)
        with h5py.File(path, "r+") as f:
            del f.attrs["bad"]


# === Threads ===


def test_a_file_streamed_in_one_thread_stays_readable_while_another_uses_hdf5(tmp_path):
    # Without HDF5_LOCK, opening and closing the file (its pixel scale) or writing another
    # file in this thread made the reader thread's chunk reads fail about once in 100.
    eps, kappa = simulate_batch(10, 300)
    path = tmp_path / "ten.h5"
    write_hdf5(path, eps, kappa, [f"s{i:02d}" for i in range(10)], compression=None)
    errors, stop = [], threading.Event()

    def stream():
        while not stop.is_set():
            try:
                for _ in iter_hdf5(path, 3):
                    pass
            except Exception as exc:  # noqa: BLE001 - any failure is the finding
                errors.append(repr(exc))

    reader = threading.Thread(target=stream)
    reader.start()
    try:
        for i in range(300):
            hdf5_grid(path, str(path))
            if i % 10 == 0:
                write_hdf5(tmp_path / f"out{i}.h5", eps[:2], kappa[:2], ["a", "b"])
    finally:
        stop.set()
        reader.join()
    assert errors == []
