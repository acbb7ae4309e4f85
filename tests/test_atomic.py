"""lensviz._atomic: atomic writes, fsync, temporary names and their cleanup."""

import os
import time
from pathlib import Path

import pytest

from lensviz._atomic import (
    STALE_TEMP_AGE_S,
    atomic_path,
    is_temp_name,
    remove_stale_temps,
    write_text,
)


def test_success_replaces_target_with_normal_mode(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    write_text(target, "new")
    assert target.read_text() == "new"
    assert oct(os.stat(target).st_mode & 0o777) == "0o644"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_failure_leaves_target_and_no_temporary(tmp_path):
    target = tmp_path / "w.keras"
    target.write_bytes(b"weights")
    with pytest.raises(RuntimeError), atomic_path(target, suffix=".keras") as tmp:
        assert tmp.name == "w.keras" and tmp.parent.parent == tmp_path
        assert is_temp_name(tmp.parent.name)
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"weights"
    assert [p.name for p in tmp_path.iterdir()] == ["w.keras"]


def test_the_file_is_fsynced_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(
        os,
        "fsync",
        lambda fd: (events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))), real_fsync(fd)),
    )
    monkeypatch.setattr(
        os, "replace", lambda a, b: (events.append(("replace", str(b))), real_replace(a, b))
    )
    write_text(tmp_path / "a.json", "{}")
    kinds = [e[0] for e in events]
    assert kinds == ["fsync", "replace", "fsync"]
    assert events[0][1].endswith("/a.json") and is_temp_name(Path(events[0][1]).parent.name)
    assert events[2][1] == str(tmp_path)


def test_temporaries_are_never_listed_as_models(tmp_path):
    with atomic_path(tmp_path / "lite.keras", suffix=".keras") as tmp:
        tmp.write_bytes(b"half")
        assert list(tmp_path.glob("*.keras")) == []
        assert list(tmp_path.glob("*.h5")) == []
    assert [p.name for p in tmp_path.glob("*.keras")] == ["lite.keras"]


@pytest.mark.parametrize(
    "name, temp",
    [
        (".lite.keras.abcd_123.tmp", True),
        (".out.h5.k2j4h5g6.tmp", True),
        ("lite.keras", False),
        (".lite.keras.abc.tmp", False),  # too short a token
        (".lite.keras.abcd1234.tmp.keras", False),  # the old pattern ended in .keras
        ("lite.keras.abcd1234.tmp", False),  # not hidden
    ],
)
def test_temp_name_pattern(name, temp):
    assert is_temp_name(name) is temp


def test_remove_stale_temps_only_removes_old_matching_leftovers(tmp_path):
    old = time.time() - 2 * STALE_TEMP_AGE_S
    stale_dir = tmp_path / ".w.keras.abcd1234.tmp"
    stale_dir.mkdir()
    (stale_dir / "w.keras").write_bytes(b"x")
    stale_file = tmp_path / ".x.h5.zzzz9999.tmp"
    stale_file.write_bytes(b"x")
    other_target = tmp_path / ".v.keras.aaaa1111.tmp"
    other_target.write_bytes(b"x")
    fresh = tmp_path / ".w.keras.bbbb2222.tmp"
    fresh.mkdir()
    keep = tmp_path / ".hidden"
    keep.write_bytes(b"x")
    for p in (stale_dir / "w.keras", stale_dir, stale_file, other_target, keep):
        os.utime(p, (old, old))
    assert remove_stale_temps(tmp_path, target="w.keras") == [stale_dir]
    assert sorted(p.name for p in remove_stale_temps(tmp_path)) == [
        other_target.name,
        stale_file.name,
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden", fresh.name]
    assert remove_stale_temps(tmp_path / "missing") == []
