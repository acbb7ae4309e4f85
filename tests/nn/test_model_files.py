"""Hostile model files through lensviz.nn.inference.load_model (issue 21, item 6)."""

import struct

import keras
import pytest

from lensviz.data import DataError, DataTypeError, LimitError
from lensviz.nn.inference import load_model


def test_a_plain_dense_model_is_refused_when_loaded_not_when_predicting(tmp_path):
    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(1)])
    model.save(tmp_path / "dense.keras")
    with pytest.raises(DataTypeError, match=r"^dense\.keras: the model takes \(None, 10\)"):
        load_model(tmp_path / "dense.keras")
    per_pixel = keras.Sequential([keras.Input((64, 64, 3)), keras.layers.Dense(1)])
    per_pixel.save(tmp_path / "pixels.keras")  # (None, 64, 64, 1) out: not a κ map
    with pytest.raises(DataTypeError, match=r"gives \(None, 64, 64, 1\)"):
        load_model(tmp_path / "pixels.keras")


def test_refused_archives_never_reach_keras_and_leave_nothing(tmp_path):
    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(1)])
    model.save(tmp_path / "m.keras")
    raw = bytearray((tmp_path / "m.keras").read_bytes())
    at = raw.find(b"PK\x01\x02")
    while at >= 0:  # every member deflate64, as in the model list crash
        raw[at + 10 : at + 12] = struct.pack("<H", 9)
        at = raw.find(b"PK\x01\x02", at + 4)
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "d64.keras").write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"d64\.keras \[.*\]: .*method 9 \(deflate64\)"):
        load_model(folder / "d64.keras")
    raw = bytearray((tmp_path / "m.keras").read_bytes())
    at = raw.find(b"PK\x01\x02")
    while at >= 0:
        raw[at + 24 : at + 28] = struct.pack("<L", 3 * 2**30)
        at = raw.find(b"PK\x01\x02", at + 4)
    (folder / "bomb.keras").write_bytes(bytes(raw))
    with pytest.raises(LimitError, match=r"bomb\.keras"):
        load_model(folder / "bomb.keras")
    assert sorted(p.name for p in folder.iterdir()) == ["bomb.keras", "d64.keras"]
