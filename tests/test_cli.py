"""Tests of the command line (in-process through lensviz.cli.main, plus one subprocess)."""

import argparse
import json
import math
import os
import subprocess
import sys
import warnings
import zipfile
from importlib.metadata import entry_points
from pathlib import Path

import h5py
import numpy as np
import pytest

from lensviz import cli, data
from lensviz import constants as C
from lensviz.cli import data as cli_data
from lensviz.simulate import (
    DepthMix,
    SimulationConfig,
    depth_config,
    simulate_batch,
    simulate_mixed_batch,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sim8():
    """8 simulated test samples, seeds 0..7."""
    return simulate_batch(8, seed=0)


@pytest.fixture
def challenge_dir(tmp_path, sim8):
    eps, kappa = sim8
    path = tmp_path / "set"
    data.write_challenge_dir(path, eps, kappa, [f"{i:05d}_00001" for i in range(8)])
    return path


def run(capsys, *argv):
    """Run the CLI in-process; return (status, stdout, stderr)."""
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status, err, *fragments):
    assert status == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err


def no_leftovers(folder):
    return [p.name for p in Path(folder).iterdir() if p.name.startswith(".")] == []


def test_help_subprocess():
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run(
        [sys.executable, "-m", "lensviz", "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    for command in ("convert", "simulate", "conventions", "evaluate"):
        assert command in proc.stdout


def test_no_command_and_bad_arguments(capsys):
    assert cli.main([]) == 2
    capsys.readouterr()
    status, _, err = run(capsys, "simulate", "--n", "0", "--out", "x.h5")
    assert_one_line_error(status, err, "--n", "expected a positive integer, got 0", "--help")


def test_registry_builds_one_subparser_per_command():
    extra = cli.Command("hello", lambda args: 7, "say hello", (cli.arg("--name", default="x"),))
    parser = cli.build_parser((*cli.COMMANDS, extra))
    args = parser.parse_args(["hello", "--name", "y"])
    assert args.name == "y" and args._command.resolve()(args) == 7
    lazy = cli.Command("x", "lensviz.data:hdf5_length", "lazy")
    assert lazy.resolve() is data.hdf5_length


def test_simulate_writes_both_formats(tmp_path, capsys, sim8):
    eps, kappa = sim8
    status, out, _ = run(
        capsys, "simulate", "--n", 3, "--seed", 2, "--batch", 2, "--out", tmp_path / "s.h5"
    )
    assert status == 0 and "wrote 3 samples" in out
    e, k, names = data.read_hdf5(tmp_path / "s.h5")
    np.testing.assert_array_equal(e, eps[2:5])
    np.testing.assert_array_equal(k, kappa[2:5])
    assert names == ["seed00000002", "seed00000003", "seed00000004"]
    status, _, _ = run(capsys, "simulate", "--n", 3, "--seed", 2, "--out", tmp_path / "folder")
    assert status == 0
    e, k, names = data.read_challenge_dir(tmp_path / "folder")
    np.testing.assert_array_equal(e, eps[2:5].astype(np.float16).astype(np.float32))
    np.testing.assert_array_equal(k, kappa[2:5].astype(np.float16).astype(np.float32))
    assert names[0] == "seed00000002" and no_leftovers(tmp_path)
    status, _, err = run(capsys, "simulate", "--n", 1, "--out", tmp_path / "s.h5")
    assert_one_line_error(status, err, "s.h5: already exists; use --overwrite")


@pytest.mark.parametrize(
    ("options", "config"),
    [
        (("--n-gal", "inf"), SimulationConfig(n_gal=math.inf)),
        (("--n-gal", "100", "--sigma-e", "0.3"), SimulationConfig(n_gal=100.0, sigma_e=0.3)),
        (("--survey", "des"), depth_config("des")),
        (("--isolated",), SimulationConfig(margin_px=0, halo_kappa_min=0.0)),
        (("--masks", "--n-gal", "inf"), SimulationConfig(masks=True, n_gal=math.inf)),
    ],
)
def test_simulate_depth_and_field_options(tmp_path, capsys, options, config):
    out = tmp_path / "s.h5"
    status, stdout, _ = run(capsys, "simulate", "--n", 2, "--seed", 5, "--out", out, *options)
    assert status == 0 and f"n_gal {config.n_gal:g}" in stdout
    e, k, _ = data.read_hdf5(out)
    eps, kappa = simulate_batch(2, 5, config)
    np.testing.assert_array_equal(e, eps)
    np.testing.assert_array_equal(k, kappa)
    with h5py.File(out) as f:
        assert f.attrs["n_gal"] == config.n_gal and f.attrs["sigma_e"] == config.sigma_e
        assert f.attrs["margin_px"] == config.margin_px and f.attrs["masks"] == config.masks
    if math.isinf(config.n_gal):
        masked = e[..., 2] == C.EMPTY_PIXEL_SIGMA
        assert np.all(e[..., 2][~masked] == 0.0)  # no shape noise: Δε = 0
        assert masked.any() == config.masks


def test_simulate_mix(tmp_path, capsys):
    out = tmp_path / "mix.h5"
    status, stdout, _ = run(
        capsys,
        "simulate",
        "--n",
        3,
        "--seed",
        1_000_000,
        "--mix",
        "--compression",
        "none",
        "--out",
        out,
    )
    assert status == 0 and "depth mix" in stdout
    e, k, names = data.read_hdf5(out)
    eps, kappa, _ = simulate_mixed_batch(3, 1_000_000, DepthMix())
    np.testing.assert_array_equal(e, eps)
    np.testing.assert_array_equal(k, kappa)
    with h5py.File(out) as f:
        assert json.loads(f.attrs["depth_mix"]) == {
            "n_gal_range": [3.0, 1000.0],
            "noise_free_fraction": 0.15,
            "masked_fraction": 0.5,
            "sigma_e": 0.26,
        }
        assert "mixed_config" in f.attrs["n_gal"]


def test_simulate_bad_depth_options(tmp_path, capsys):
    out = tmp_path / "x.h5"
    for options, fragment in (
        (("--n-gal", 10, "--survey", "des"), "--n-gal and --survey"),
        (("--mix", "--survey", "deep"), "--survey and --mix"),
        (("--mix", "--masks"), "--masks and --mix"),
    ):
        status, _, err = run(capsys, "simulate", "--n", 1, "--out", out, *options)
        assert_one_line_error(status, err, fragment)
        assert not out.exists()
    for options in (
        ("--n-gal", "0"),
        ("--n-gal", "abc"),
        ("--n-gal", "nan"),
        ("--sigma-e", "1.5"),
        ("--survey", "sdss"),
    ):
        status, _, err = run(capsys, "simulate", "--n", 1, "--out", out, *options)
        assert_one_line_error(status, err, options[1])


@pytest.mark.parametrize(
    ("spec", "config"),
    [
        ("sim:3:5@des", depth_config("des")),
        ("sim:2@inf", SimulationConfig(n_gal=math.inf)),
        ("sim:2:9@ 250 ", SimulationConfig(n_gal=250.0)),
        ("sim:2:9", SimulationConfig()),
    ],
)
def test_sim_spec_takes_a_depth(spec, config):
    sim = cli_data._parse_sim(spec)
    eps, kappa, names = cli_data.load_data(spec)
    expected = simulate_batch(sim.n, sim.seed, config)
    np.testing.assert_array_equal(eps, expected[0])
    np.testing.assert_array_equal(kappa, expected[1])
    assert names[0] == cli_data._sim_name(sim.seed) and len(names) == sim.n


def test_sim_spec_mix():
    eps, kappa, _ = cli_data.load_data("sim:3:1000000@mix")
    expected = simulate_mixed_batch(3, 1_000_000)
    np.testing.assert_array_equal(eps, expected[0])
    np.testing.assert_array_equal(kappa, expected[1])


def test_depth_reaches_every_data_command(capsys, tmp_path):
    # evaluate and conventions read DATA through the same spec: no noise → KS93 ≈ κ
    r = {}
    for depth in ("inf", "des"):
        out = tmp_path / f"{depth}.json"
        status, _, _ = run(
            capsys,
            "evaluate",
            f"sim:4:40@{depth}",
            "--sigma",
            1,
            "--no-unet",
            "--no-wiener",
            "--json",
            out,
        )
        assert status == 0
        r[depth] = json.loads(out.read_text())["summary"]["ks93_raw"]["r"]["mean"]
    assert r["inf"] > 0.9 and r["des"] < 0.6
    status, out, _ = run(capsys, "conventions", "sim:4@noise-free", "--n", 4)
    assert status == 0 and "best: the identity" in out


def test_convert_round_trip(tmp_path, capsys, challenge_dir, sim8):
    out = tmp_path / "set.h5"
    status, stdout, _ = run(capsys, "convert", challenge_dir, out, "--batch", 3)
    assert status == 0 and "wrote 8 samples" in stdout
    e, k, names = data.read_hdf5(out)
    assert names == [f"{i:05d}_00001" for i in range(8)]
    np.testing.assert_allclose(e, sim8[0], rtol=2**-10, atol=1e-7)  # float16 precision
    np.testing.assert_allclose(k, sim8[1], rtol=2**-10, atol=1e-7)
    # Channel order: e1 of sample 5 at (y=17, x=90) is channel 0 of the channels-first file.
    raw = np.load(challenge_dir / "EPSILON" / "00005_00001.npy")
    assert e[5, 17, 90, 0] == np.float32(raw[0, 17, 90])
    assert e[5, 17, 90, 1] == np.float32(raw[1, 17, 90])
    assert e[5, 17, 90, 0] == pytest.approx(sim8[0][5, 17, 90, 0], rel=2**-10)
    # Reading a slice gives the right rows.
    e2, k2, n2 = data.read_hdf5(out, 2, 4)
    np.testing.assert_array_equal(e2, e[2:4])
    assert n2 == names[2:4]
    # Refuses to overwrite unless asked.
    status, _, err = run(capsys, "convert", challenge_dir, out)
    assert_one_line_error(status, err, "already exists")
    assert run(capsys, "convert", challenge_dir, out, "--overwrite", "--compression", "lzf")[0] == 0


def test_failed_convert_leaves_no_output(tmp_path, capsys, challenge_dir):
    bad = challenge_dir / "KAPPA" / "00006_00001.npy"
    bad.write_bytes(bad.read_bytes()[:500])  # truncated, in the last batch
    out = tmp_path / "out.h5"
    status, _, err = run(capsys, "convert", challenge_dir, out, "--batch", 2)
    assert_one_line_error(status, err, "00006_00001.npy", "truncated")
    assert not out.exists() and no_leftovers(tmp_path)


def test_interrupted_convert_leaves_no_output(tmp_path, capsys, challenge_dir, monkeypatch):
    calls = []
    original = data.HDF5Writer.append

    def append_then_interrupt(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(data.HDF5Writer, "append", append_then_interrupt)
    out = tmp_path / "out.h5"
    status, _, err = run(capsys, "convert", challenge_dir, out, "--batch", 2)
    assert status == 130 and "interrupted" in err
    assert not out.exists() and no_leftovers(tmp_path)


def test_convert_bad_input(tmp_path, capsys, challenge_dir):
    status, _, err = run(capsys, "convert", challenge_dir, tmp_path / "out.txt")
    assert_one_line_error(status, err, "out.txt", ".h5")
    (challenge_dir / "EPSILON" / "00003_00001.npy").unlink()
    status, _, err = run(capsys, "convert", challenge_dir, tmp_path / "o.h5")
    assert_one_line_error(status, err, "KAPPA file(s) without EPSILON: 00003_00001.npy")
    status, _, err = run(capsys, "convert", tmp_path / "nothing", tmp_path / "o.h5")
    assert_one_line_error(status, err, "nothing")
    assert not (tmp_path / "o.h5").exists()


def test_conventions_identity_on_simulated_data(capsys):
    status, out, _ = run(capsys, "conventions", "sim:12", "--n", 12)
    assert status == 0
    starred = next(line for line in out.splitlines() if line.startswith(" * "))
    assert "e1 +  e2 +  as stored" in starred and "(lensviz convention)" in starred
    assert "best: the identity" in out


@pytest.mark.parametrize(
    "variant",
    [
        {"transpose": True},
        {"negate_e1": True, "negate_e2": True},
        {"negate_e2": True, "transpose": True},
    ],
)
def test_conventions_recovers_foreign_variant(tmp_path, capsys, sim8, variant):
    eps, kappa = sim8
    path = tmp_path / "foreign.npz"
    np.savez(path, epsilon=data.apply_convention(eps, **variant), kappa=kappa)
    status, out, _ = run(capsys, "conventions", path)
    assert status == 0
    best = next(line for line in out.splitlines() if line.startswith("best:"))
    assert "NOT lensviz's convention" in best
    fix = best.split("apply_convention(eps, ")[1].rstrip(")")
    assert fix == ", ".join(
        f"{k}=True" for k in ("negate_e1", "negate_e2", "transpose") if variant.get(k)
    )


def test_evaluate_json(tmp_path, capsys):
    out = tmp_path / "eval.json"
    status, stdout, _ = run(capsys, "evaluate", "sim:12:3", "--json", out, "--per-map")
    assert status == 0
    assert "ks93_raw" in stdout and "ks93_smoothed" in stdout and "rmse" in stdout
    result = json.loads(out.read_text())
    assert {
        "data",
        "n_maps",
        "ks93_smoothing",
        "pad_px",
        "methods",
        "bootstrap",
        "summary",
        "names",
        "per_map",
    } <= set(result)
    assert result["n_maps"] == 12 and result["names"][0] == "seed00000003"
    assert "depth" in result["ks93_smoothing"]
    summary = result["summary"]
    # The shipped UNet and Wiener spectrum are scored beside KS93 by default.
    assert set(summary) == {"ks93_raw", "ks93_smoothed", "unet", "wiener"}
    assert summary["unet"]["rmse"]["mean"] < summary["ks93_raw"]["rmse"]["mean"]
    for method in summary.values():
        assert set(method) == {"wmape", "dicee", "dpeaks", "rmse", "r"}
        for stats in method.values():
            assert set(stats) == {"mean", "median", "std", "sem_boot", "n"}
    assert summary["ks93_smoothed"]["rmse"]["mean"] < summary["ks93_raw"]["rmse"]["mean"]
    assert summary["ks93_smoothed"]["r"]["mean"] > summary["ks93_raw"]["r"]["mean"]
    assert len(result["per_map"]["ks93_raw"]["rmse"]) == 12


def test_evaluate_one_observed_analytic_map(tmp_path, capsys):
    # An analytic κ observed at a depth: its tails are zero to float precision, where
    # WMAPE divides by |κ|. One map: no ±, no warnings, and the exploded WMAPE explained.
    yy, xx = np.mgrid[0:128, 0:128]
    kappa = 0.4 * np.exp(-((yy - 64.0) ** 2 + (xx - 64.0) ** 2) / 72.0)
    np.save(tmp_path / "k.npy", kappa.astype(np.float32))
    field = tmp_path / "field.npz"
    args = ("--pixel-arcmin", 0.5, "--n-gal", 30, "--out", field)
    assert run(capsys, "observe", tmp_path / "k.npy", *args)[0] == 0
    out = tmp_path / "e.json"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning fails the command
        status, stdout, err = run(
            capsys, "evaluate", field, "--no-unet", "--no-wiener", "--json", out
        )
    assert status == 0 and err == "", err
    assert f"{field}: 1 map of 0.5′ pixels;" in stdout and "±" not in stdout and "inf" not in stdout
    table = stdout.splitlines()
    wmape = next(line for line in table if line.startswith("wmape"))
    assert "*" not in wmape and "note: WMAPE of ks93_raw, ks93_smoothed is above" in stdout
    assert next(line for line in table if line.startswith("rmse")).endswith("*")
    summary = json.loads(out.read_text())["summary"]  # null, not NaN
    assert summary["ks93_raw"]["rmse"]["sem_boot"] is None
    assert summary["ks93_raw"]["rmse"]["n"] == 1
    assert 1e6 < summary["ks93_raw"]["wmape"]["mean"] < math.inf


def test_evaluate_given_sigma_and_file(tmp_path, capsys, challenge_dir):
    out = tmp_path / "eval.json"
    status, _, _ = run(
        capsys, "evaluate", challenge_dir, "--n", 5, "--sigma", 2.5, "--json", out, "--batch", 2
    )
    assert status == 0
    result = json.loads(out.read_text())
    assert result["ks93_smoothing"] == "σ = 2.5 px (given with --sigma)"
    assert result["n_maps"] == 5 and "per_map" not in result


def test_evaluate_bad_input(tmp_path, capsys, sim8):
    for spec in (
        "sim:abc",
        "sim:0",
        "sim:3:4:5",
        "sim:3@",
        "sim:3@sdss",
        "sim:3@0",
        "sim:3:1@des@inf",
        "sim:@des",
        "sim:3@nan",
    ):
        status, _, err = run(capsys, "evaluate", spec, "--sigma", 1)
        assert_one_line_error(status, err, repr(spec))
    status, _, err = run(capsys, "conventions", "sim:3@sdss")
    assert_one_line_error(status, err, "'sim:3@sdss'", "des, lsst, deep, noise-free", "mix")
    np.save(tmp_path / "eps.npy", sim8[0][:2])
    status, _, err = run(capsys, "evaluate", tmp_path / "eps.npy", "--sigma", 1)
    assert_one_line_error(status, err, "eps.npy", "ε only")
    status, _, err = run(capsys, "conventions", tmp_path / "eps.npy")
    assert_one_line_error(status, err, "ε only")
    np.save(tmp_path / "int.npy", np.zeros((2, 128, 128, 3), np.int32))
    status, _, err = run(capsys, "evaluate", tmp_path / "int.npy", "--sigma", 1)
    assert_one_line_error(status, err, "int.npy", "dtype int32")
    status, _, err = run(
        capsys, "evaluate", "sim:2", "--sigma", 1, "--json", tmp_path / "no" / "x.json"
    )
    assert_one_line_error(status, err, "does not exist")


def test_evaluate_depths_scores_each_depth_on_the_same_fields(tmp_path, capsys):
    out = tmp_path / "depths.json"
    status, stdout, _ = run(
        capsys, "evaluate", "sim:6:40", "--depths", "10,inf", "--no-unet", "--json", out
    )
    assert status == 0
    assert "10 gal/arcmin² (10)" in stdout and "no shape noise (inf)" in stdout
    depths = json.loads(out.read_text())["depths"]
    assert list(depths) == ["10", "inf"] and depths["inf"]["n_gal"] == float("inf")
    assert depths["inf"]["ks93_sigma_px"] < depths["10"]["ks93_sigma_px"]
    raw = {d: r["summary"]["ks93_raw"]["rmse"]["mean"] for d, r in depths.items()}
    assert raw["inf"] < raw["10"] / 3  # the same κ, far less noise
    assert set(depths["10"]["summary"]) == {"ks93_raw", "ks93_smoothed", "wiener"}


@pytest.mark.parametrize(
    "args",
    [
        ("sim:4@des", "--depths", "10"),
        ("sim:4", "--depths", "deep,x"),
        ("sim:4", "--depths", ","),
        ("missing.h5", "--depths", "10"),
    ],
)
def test_evaluate_depths_bad_input(capsys, args):
    status, _, err = run(capsys, "evaluate", *args, "--no-unet")
    assert status == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1


def test_predict_and_evaluate_warn_outside_the_unet_training_domain(tmp_path, capsys):
    # The legacy shipped UNet was trained at LSST depth only: no-noise maps are outside.
    from lensviz.nn.inference import save_model
    from lensviz.nn.unet import UNet, UNetConfig

    tiny = UNetConfig(base_filters=4, max_filters=8, depth=3, pad=0, n_decoder_dropout=1)
    weights = save_model(
        UNet(tiny, training_domain={"n_gal_range": [20.0, 40.0], "noise_free": False}),
        tmp_path / "m.keras",
    )
    status, _, err = run(
        capsys, "predict", "sim:3@inf", "--weights", weights, "--out", tmp_path / "p.h5"
    )
    assert status == 0
    assert "warning: 3 of 3 samples lie outside the UNet's training domain (noise)" in err
    with h5py.File(tmp_path / "p.h5") as f:
        assert f.attrs["outside_training_domain"] == 3
    status, _, err = run(capsys, "evaluate", "sim:3", "--weights", weights, "--no-wiener")
    assert status == 0 and "outside" not in err  # 30 gal/arcmin² lies inside [20, 40]
    status, _, err = run(
        capsys, "evaluate", "sim:3", "--depths", "30,inf", "--weights", weights, "--no-wiener"
    )
    assert status == 0 and "at depth inf: 3 of 3 samples" in err and "depth 30:" not in err


def test_outputs_are_replaced_only_with_overwrite(tmp_path, capsys):
    out = tmp_path / "eval.json"
    out.write_text("keep me")
    status, _, err = run(capsys, "evaluate", "sim:2", "--no-unet", "--no-wiener", "--json", out)
    assert status == 2 and "--overwrite" in err and out.read_text() == "keep me"
    status, _, _ = run(
        capsys, "evaluate", "sim:2", "--no-unet", "--no-wiener", "--json", out, "--overwrite"
    )
    assert status == 0 and json.loads(out.read_text())["n_maps"] == 2
    spec = tmp_path / "s.npz"
    spec.write_text("keep me")
    status, _, err = run(capsys, "powerspec", "--n", 2, "--out", spec)
    assert status == 2 and spec.read_text() == "keep me"


@pytest.mark.parametrize(
    "args",
    [
        ("predict", "sim:1", "--weights", "missing.keras", "--out", "p.h5"),
        ("predict", "sim:1", "--weights", "weights/kappa_power.npz", "--out", "p.h5"),
        ("predict", "sim:1", "--method", "ks93", "--out", "p.txt"),
        ("finetune", "--weights", "missing.keras", "--out", "f.keras"),
        ("predict", "sim:1", "--weights", "README.md.keras", "--out", "p.h5"),
        ("evaluate", "sim:1", "--weights", "README.md.keras"),
        ("finetune", "--weights", "README.md.keras", "--out", "f.keras"),
        ("card", "README.md.keras", "--out", "card"),
    ],
)
def test_bad_paths_fail_before_tensorflow_loads(args, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "kappa_power.npz").write_bytes(b"PK")
    (tmp_path / "README.md.keras").write_text("# not a model\n")
    status, _, err = run(capsys, *args)
    assert_one_line_error(status, err)
    assert "no such file" in err or "expected" in err or "not a zip archive" in err
    assert "File not found" not in err and "corrupt" not in err
    code = (
        "import sys\nfrom lensviz.cli import main\n"
        f"rc = main({[str(a) for a in args]!r})\n"
        "print(rc, 'tensorflow' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert proc.stdout.split()[-2:] == ["2", "False"], proc.stdout + proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md.keras", "weights"]


def test_a_keras_file_that_is_not_a_zip_archive_says_so(tmp_path, capsys):
    fake = tmp_path / "model.keras"
    fake.write_text("hello")
    status, _, err = run(capsys, "predict", "sim:1", "--weights", fake, "--out", tmp_path / "p.h5")
    assert_one_line_error(status, err, f"{fake}: not a zip archive", "Keras writes")
    assert not (tmp_path / "p.h5").exists()


@pytest.mark.parametrize(
    "args, accepted",
    [
        (("simulate", "--n", 1, "--out", "x.hdf"), ".h5/.hdf5 (HDF5)"),
        (
            ("simulate", "--n", 1, "--out", "x.txt"),
            "a folder name without a suffix, or ending in /, for a challenge",
        ),
        (("observe", "k.npy", "--pixel-arcmin", 1, "--n-gal", 30, "--out", "x.txt"), ".npz"),
        (("predict", "sim:1", "--method", "ks93", "--out", "x.hdf"), ".fits/.fit/.fts (FITS"),
        (("convert", "src", "x.hdf"), ".h5/.hdf5 (HDF5)"),
        (("powerspec", "--n", 2, "--out", "x.txt"), ".npz (NumPy archive)"),
        (("finetune", "--weights", "w.keras", "--out", "x.h5"), ".keras (Keras model)"),
    ],
)
def test_an_output_with_an_unknown_suffix_is_an_error_and_creates_nothing(
    args, accepted, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    zipfile.ZipFile("w.keras", "w").close()
    status, _, err = run(capsys, *args)
    name = args[-1]
    assert_one_line_error(status, err, "expected an output ending in", accepted, repr(name))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.keras"]


def test_a_challenge_folder_is_a_name_without_a_suffix_or_ending_in_a_slash(tmp_path, capsys):
    for out in (tmp_path / "plain", f"{tmp_path / 'set.v2'}/"):
        status, stdout, err = run(capsys, "simulate", "--n", 1, "--out", out)
        assert status == 0, err
        folder = Path(out)
        assert folder.is_dir() and len(list((folder / "KAPPA").iterdir())) == 1


def test_the_usage_line_names_the_program_as_it_was_run(capsys):
    # The installed script `lensviz` calls main() as it is: "usage: lensviz ...".
    (script,) = entry_points(group="console_scripts", name="lensviz")
    assert script.load() is cli.main
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert capsys.readouterr().out.startswith("usage: lensviz [-h]")
    status, _, err = run(capsys, "simulate", "--n", 0, "--out", "x.h5")
    assert (
        err.startswith("error: lensviz simulate: argument --n") and "(see lensviz simulate" in err
    )
    # `python -m lensviz` (lensviz/__main__.py) says so.
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run(
        [sys.executable, "-m", "lensviz", "train", "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stdout.startswith("usage: python -m lensviz train")


def test_every_argument_of_every_command_has_a_help_text():
    missing = [
        f"{command.name} {flags[0]}"
        for command in cli.COMMANDS
        for flags, kwargs in command.arguments
        if not kwargs.get("help")
    ]
    assert missing == []
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    train = sub.choices["train"].format_help()
    assert "multifocal, MSE weighted by 1 + w" in " ".join(train.split())
    assert "default combined" in " ".join(sub.choices["finetune"].format_help().split())


def test_the_hdf5_suffixes_of_the_cli_are_the_data_layers():
    assert cli._HDF5 == data.HDF5_SUFFIXES


def test_card_without_its_command_option_still_runs_the_card_command(tmp_path):
    # The card's --command option (the command that made the weights) shares the name of
    # the subcommand's dest; the CLI must dispatch on the subparser, not on args.command.
    weights = tmp_path / "w.keras"
    zipfile.ZipFile(weights, "w").close()  # an empty zip archive passes the argument check
    args = cli.build_parser().parse_args(["card", str(weights), "--out", str(tmp_path / "c")])
    assert args._command.name == "card" and args.command is None
