"""Distributed training: strategies, TF_CONFIG, sharded pipelines, restart, two real workers."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from lensviz import data
from lensviz.nn.callbacks import ProgressCallback
from lensviz.nn.distribution import (
    BACKUP_DIR,
    backup_epoch,
    cluster_config,
    distributed_dataset,
    distribution_strategy,
    is_chief,
)
from lensviz.nn.inference import load_model, predict_kappa
from lensviz.nn.pipelines import hdf5_dataset, simulated_dataset
from lensviz.nn.training import TrainConfig, train
from lensviz.simulate import simulate_batch

ROOT = Path(__file__).resolve().parents[2]


def _tf_config(workers, index, kind="worker"):
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": kind, "index": index}})


# === TF_CONFIG and strategies ===


def test_cluster_config_reads_and_checks_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert cluster_config() is None
    monkeypatch.setenv("TF_CONFIG", _tf_config(["127.0.0.1:1234", "127.0.0.1:1235"], 1))
    assert cluster_config()["task"] == {"type": "worker", "index": 1}
    bad = {
        "{not json": "not valid JSON",
        '{"task": {"type": "worker", "index": 0}}': "no cluster.worker",
        _tf_config(["127.0.0.1:1234"], 1): "not a task of the cluster",
        _tf_config(["127.0.0.1"], 0): "host:port",
        _tf_config(["127.0.0.1:1234"], 0, kind="ps"): "not a task of the cluster",
    }
    for text, message in bad.items():
        monkeypatch.setenv("TF_CONFIG", text)
        with pytest.raises(ValueError, match=f"TF_CONFIG.*{message}"):
            cluster_config()


def test_strategies_by_name(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs the cluster in the TF_CONFIG"):
        distribution_strategy("multiworker")
    with pytest.raises(ValueError, match="takes one device"):
        distribution_strategy("one", ["/cpu:0", "/cpu:1"])
    with pytest.raises(ValueError, match="distribution must be one of"):
        distribution_strategy("parameter-server")
    with pytest.raises(ValueError, match="distribution must be one of"):
        TrainConfig(distribution="tpu")
    auto = distribution_strategy("auto")  # no GPU here: one device
    assert auto.num_replicas_in_sync == 1 and is_chief(auto)
    one = distribution_strategy("one", ["/cpu:0"])
    assert isinstance(one, tf.distribute.OneDeviceStrategy) and is_chief(one)
    # A TF_CONFIG of one task is no cluster: auto stays on one device.
    monkeypatch.setenv("TF_CONFIG", _tf_config(["127.0.0.1:1234"], 0))
    assert distribution_strategy("auto").num_replicas_in_sync == 1


class _FakeStrategy:
    def __init__(self, replicas):
        self.num_replicas_in_sync = replicas
        self.made = []

    def distribute_datasets_from_function(self, fn):
        ctx = tf.distribute.InputContext(
            num_input_pipelines=2, input_pipeline_id=1, num_replicas_in_sync=4
        )
        return fn(ctx)


def test_distributed_dataset_gives_each_worker_its_share_and_per_replica_batches():
    calls = []

    def make(batch, shard):
        calls.append((batch, shard))
        return "dataset"

    assert distributed_dataset(_FakeStrategy(1), make, 8) == "dataset"
    assert calls == [(8, (1, 0))]
    assert distributed_dataset(_FakeStrategy(4), make, 8) == "dataset"
    assert calls[-1] == (2, (2, 1))  # worker 1 of 2, 8 maps over 4 replicas
    with pytest.raises(ValueError, match="multiple of the 3 replicas"):
        distributed_dataset(_FakeStrategy(3), make, 8)


# === Sharding at the source ===


def test_sharded_simulated_streams_split_the_seeds_between_workers():
    def first_batch(batch, shard=(1, 0)):
        ds = simulated_dataset(batch, 700, n_samples=4, augment=False, shard=shard)
        return next(iter(ds))[1].numpy()

    whole = first_batch(4)
    np.testing.assert_array_equal(first_batch(2, (2, 0)), whole[[0, 2]])
    np.testing.assert_array_equal(first_batch(2, (2, 1)), whole[[1, 3]])
    np.testing.assert_array_equal(whole[1], simulate_batch(1, 701)[1][0])
    sharded = simulated_dataset(2, 700, n_samples=4, augment=False, shard=(2, 1))
    off = tf.data.experimental.AutoShardPolicy.OFF
    assert sharded.options().experimental_distribute.auto_shard_policy == off
    with pytest.raises(ValueError, match="shard"):
        simulated_dataset(2, 700, shard=(2, 2))


def test_sharded_hdf5_streams_read_disjoint_chunks(tmp_path):
    eps, kappa = simulate_batch(6, 710)
    path = tmp_path / "six.h5"
    data.write_hdf5(path, eps, kappa)

    def maps(shard, chunk_size=2):
        ds = hdf5_dataset(
            path, 1, shuffle=False, augment=False, repeat=False, chunk_size=chunk_size, shard=shard
        )
        return np.concatenate([k.numpy() for _, k in ds])

    np.testing.assert_array_equal(maps((2, 0)), kappa[[0, 1, 4, 5]])
    np.testing.assert_array_equal(maps((2, 1)), kappa[[2, 3]])
    # A chunk larger than a share is cut so that both workers get maps.
    np.testing.assert_array_equal(maps((2, 1), chunk_size=512), kappa[3:])


# === Restart: BackupAndRestore ===


class _Crash(Exception):
    pass


@pytest.mark.slow  # two short training runs
def test_a_failed_run_resumes_after_its_last_complete_epoch(tmp_path, tiny_overrides, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    out = tmp_path / "run"
    cfg = TrainConfig(
        model_overrides=tiny_overrides,
        epochs=3,
        steps_per_epoch=2,
        batch_size=2,
        val_samples=2,
        patience=5,
    )

    def crash_after_the_second_epoch(progress):
        if progress.stage == "epoch_end" and progress.epoch == 1:
            raise _Crash

    with pytest.raises(_Crash):
        train(cfg, out, on_progress=crash_after_the_second_epoch)
    assert backup_epoch(out / BACKUP_DIR) == 2  # the state of epoch 2 was saved
    first = json.loads((out / "history.json").read_text())
    assert [r["epoch"] for r in first] == [1, 2]
    summary = train(cfg, out)
    assert summary["resumed_from_epoch"] == 2 and summary["epochs_run"] == 1
    history = json.loads((out / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2, 3]
    assert history[:2] == first  # the earlier epochs are kept as they were
    assert not (out / BACKUP_DIR).exists()  # a completed run deletes its backup
    assert summary["best"]["val_loss"] == min(r["val_loss"] for r in history)


def test_progress_after_a_restart_times_only_this_runs_steps():
    seen = []
    progress = ProgressCallback(seen.append, epochs=3, steps=2, min_interval_s=0.0)
    progress.on_train_begin()
    progress.on_epoch_begin(2)  # resumed after 2 epochs: 2 steps of this run are left
    progress.on_train_batch_end(0, {"loss": 1.0})
    p = seen[-1]
    assert (p.epoch, p.step) == (2, 1) and p.fraction == 5 / 6
    np.testing.assert_allclose(p.eta_s, p.elapsed_s, rtol=1e-9)  # 1 step done, 1 to go


def test_a_corrupt_backup_is_a_clear_error(tmp_path):
    (tmp_path / BACKUP_DIR).mkdir()
    (tmp_path / BACKUP_DIR / "training_metadata.json").write_text("{oops")
    with pytest.raises(ValueError, match="delete .*backup"):
        backup_epoch(tmp_path / BACKUP_DIR)
    assert backup_epoch(tmp_path / "nothing") == 0


# === Two real workers on loopback ===


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@pytest.mark.slow  # two TensorFlow processes train for a few steps (about a minute)
def test_two_workers_on_loopback_train_in_sync_and_only_the_chief_saves(tmp_path):
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    out = tmp_path / "run"
    argv = [
        sys.executable, "-m", "lensviz", "train", "--preset", "lite", "--out", str(out),
        "--epochs", "2", "--steps", "3", "--batch", "4", "--val-n", "4",
        "--distribution", "multiworker",
    ]  # fmt: skip
    procs = []
    try:
        for i in range(2):
            tmp = tmp_path / f"tmp{i}"
            tmp.mkdir()
            env = {
                **os.environ,
                "TF_CONFIG": _tf_config(workers, i),
                "TF_CPP_MIN_LOG_LEVEL": "3",
                "CUDA_VISIBLE_DEVICES": "-1",
                "TMPDIR": str(tmp),
            }
            procs.append(
                subprocess.Popen(
                    argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    text=True, start_new_session=True,
                )
            )  # fmt: skip
        results = [p.communicate(timeout=420) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, 9)
                p.wait()
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err[-3000:]
    summaries = [json.loads(o[o.index("{") : o.rindex("}") + 1]) for o, _ in results]
    chief, other = summaries
    assert chief["chief"] and not other["chief"]
    for s in summaries:
        assert s["replicas"] == 2 and s["workers"] == 2 and s["distribution"] == "multiworker"
        assert s["epochs_run"] == 2 and s["samples_seen"] == 2 * 3 * 4
    # Synchronous replicas: the same averaged loss on both, the same weights up to round-off.
    assert chief["best"]["loss"] == other["best"]["loss"]
    np.testing.assert_allclose(chief["best"]["val_loss"], other["best"]["val_loss"], rtol=1e-4)
    assert "a worker: the chief writes" in results[1][0]
    # The chief wrote the run folder; the other worker's files went to its own temp dir,
    # which is gone; no backup is left after a completed run.
    names = sorted(p.name for p in out.iterdir())
    assert names == ["config.json", "history.csv", "history.json", "model.keras", "summary.json"]
    assert json.loads((out / "summary.json").read_text())["chief"] is True
    assert [r["epoch"] for r in json.loads((out / "history.json").read_text())] == [1, 2]
    assert list((tmp_path / "tmp1").iterdir()) == []
    eps, _ = simulate_batch(2, 720)
    assert np.isfinite(predict_kappa(load_model(out / "model.keras"), eps)).all()
