import os

import pytest

from lensviz._atomic import atomic_path, is_temp_name, write_text


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
