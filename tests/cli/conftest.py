"""Fixtures of the command-line tests: a small HDF5 data set and an in-process runner."""

import pytest

from lensviz import data
from lensviz.cli import main
from lensviz.simulate import simulate_batch


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """6 simulated samples (seeds 70..75) in an HDF5 file, names in reverse order."""
    eps, kappa = simulate_batch(6, 70)
    path = tmp_path_factory.mktemp("d") / "set.h5"
    data.write_hdf5(path, eps, kappa, [f"z{5 - i}" for i in range(6)])  # names not sorted
    return path, eps, kappa


@pytest.fixture
def run_cli(capsys):
    """``run_cli(*argv) -> (status, stdout, stderr)``: the CLI in this process."""

    def run(*argv):
        status = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return status, out, err

    return run
