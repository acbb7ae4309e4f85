"""lensviz.nn.pipelines: tf.data datasets (simulated, HDF5) and the TensorFlow symmetries."""

import numpy as np
import pytest

from lensviz import data
from lensviz.augment import apply_symmetry
from lensviz.inversion import ks93, ks93inv
from lensviz.nn.pipelines import apply_symmetry_tf, hdf5_dataset, simulated_dataset
from lensviz.simulate import simulate_batch


@pytest.fixture
def sample(kappa_maps, rng):
    kappa = kappa_maps[0]
    g1, g2 = ks93inv(kappa)
    noise = rng.normal(0, 0.05, size=(128, 128, 2)).astype(np.float32)
    de = rng.uniform(0.05, 0.1, size=(128, 128)).astype(np.float32)
    eps = np.stack([g1 + noise[..., 0], g2 + noise[..., 1], de], axis=-1)
    return eps, kappa


@pytest.mark.parametrize("g", range(8))
def test_tensorflow_matches_numpy(sample, g):
    eps, kappa = sample
    e_np, k_np = apply_symmetry(eps, kappa, g)
    e_tf, k_tf = apply_symmetry_tf(eps, kappa, g)
    np.testing.assert_array_equal(e_tf.numpy(), e_np)
    np.testing.assert_array_equal(k_tf.numpy(), k_np)


def test_simulated_dataset_shapes_and_determinism():
    ds = simulated_dataset(batch_size=2, seed_start=10, n_samples=4, augment=True, seed=3)
    batches = [(x.numpy(), y.numpy()) for x, y in ds]
    again = [
        (x.numpy(), y.numpy())
        for x, y in simulated_dataset(
            batch_size=2, seed_start=10, n_samples=4, augment=True, seed=3
        )
    ]
    assert len(batches) == 2 and batches[0][0].shape == (2, 128, 128, 3)
    assert batches[0][1].shape == (2, 128, 128)
    for (x1, y1), (x2, y2) in zip(batches, again):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)


def test_pipeline_augmentation_is_a_spin2_symmetry_of_the_simulated_sample():
    eps0, kappa0 = simulate_batch(3, 20)
    ds = simulated_dataset(batch_size=3, seed_start=20, n_samples=3, augment=True, seed=0)
    x, y = next(iter(ds))
    found = 0
    for i in range(3):
        matches = [
            g
            for g in range(8)
            if np.allclose(apply_symmetry(eps0[i], kappa0[i], g)[0], x.numpy()[i])
            and np.allclose(apply_symmetry(eps0[i], kappa0[i], g)[1], y.numpy()[i])
        ]
        found += len(matches) == 1
    assert found == 3


def test_ks93_channel_is_filled_for_a_fraction_of_samples():
    ds = simulated_dataset(
        batch_size=16, seed_start=30, n_samples=16, augment=False, with_ks93=True, ks93_fraction=0.5
    )
    x, _ = next(iter(ds))
    x = x.numpy()
    assert x.shape[-1] == 4
    filled = np.abs(x[..., 3]).max(axis=(1, 2)) > 0
    assert 0 < filled.sum() < 16

    i = int(np.argmax(filled))
    np.testing.assert_allclose(x[i, ..., 3], ks93(x[i, ..., 0], x[i, ..., 1])[0], atol=1e-6)


def test_hdf5_stream_reads_every_sample_once_per_pass(tmp_path):
    eps, kappa = simulate_batch(10, 40)
    path = tmp_path / "d.h5"
    data.write_hdf5(path, eps, kappa, [f"s{i}" for i in range(10)])
    ds = hdf5_dataset(path, batch_size=5, shuffle=True, augment=False, repeat=False, chunk_size=4)
    seen = np.concatenate([y.numpy() for _, y in ds])
    assert seen.shape == (10, 128, 128)
    order = [int(np.argmin([np.abs(k - s).max() for k in kappa])) for s in seen]
    assert sorted(order) == list(range(10))
