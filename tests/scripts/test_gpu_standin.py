"""The cupy code path, run on the CuPy stand-in (tests/standin.py) where no GPU is: the scripts,
the studies and the grader as a user with a GPU runs them, and proof that the stand-in catches
what array-api-strict lets through (a device array handed to NumPy, matplotlib or scikit-learn)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import paths
import standin
from apps import train_ae, train_vae
from lab import run
from nn.backend import get_backend, to_backend, to_numpy

pytestmark = pytest.mark.slow  # every test here runs a script, a notebook or a process

ROOT = str(paths.ROOT)
DIGITS_FLAGS = ["--dataset", "digits", "--hidden", "32", "--epochs", "2", "--no-progress", "--backend", "cupy"]


def exit_status(main, argv):
    try:
        return main(argv)
    except SystemExit as exit_:
        return exit_.code


def test_the_standin_refuses_what_cupy_refuses(gpu_standin):
    xp = get_backend("cupy")
    x = to_backend(np.arange(6.0).reshape(2, 3), xp)
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
        np.asarray(x)
    with pytest.raises(TypeError, match="Unsupported type"):
        x + np.ones(3)  # a host array in a device operation
    with pytest.raises(BufferError):
        np.from_dlpack(x)
    total = xp.sum(x)
    assert isinstance(total, gpu_standin.ndarray) and total.shape == () and float(total) == 15.0
    np.testing.assert_array_equal(to_numpy(x), np.arange(6.0).reshape(2, 3))  # the explicit way, x.get()
    assert isinstance(np.exp(x), gpu_standin.ndarray)  # NumPy's functions run on the device, as on CuPy


@pytest.mark.parametrize("model", ["vae", "ae"])
def test_a_planted_np_asarray_at_the_edge_fails_on_the_standin_and_not_on_array_api_strict(
        gpu_standin, tmp_path, monkeypatch, model):
    # The commonest GPU failure: a figure drawn from a device array, which NumPy converts
    # implicitly for every other backend. The tests must catch it without a GPU.
    monkeypatch.setattr(run, "to_numpy", np.asarray)
    script = {"vae": train_vae, "ae": train_ae}[model]
    monkeypatch.setenv("VAE_BACKEND", "array_api_strict")  # not a --backend choice: a backend for the tests
    flags = [f for f in DIGITS_FLAGS if f not in ("--backend", "cupy")]
    assert exit_status(script.main, [*flags, "--out", str(tmp_path / "strict")]) == 0
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
        script.main([*DIGITS_FLAGS, "--out", str(tmp_path / "gpu")])


def test_train_vae_runs_on_the_standin_with_its_figures_and_the_likelihood_bound(gpu_standin, tmp_path):
    out = tmp_path / "vae"
    assert exit_status(train_vae.main, [*DIGITS_FLAGS, "--out", str(out), "--log-likelihood", "1,10"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["backend"] == "cupy" and len(metrics["epochs"]) == 2
    assert set(metrics["log_likelihood"]["bounds"]) == {"1", "10"}
    for figure in ("loss_curve", "reconstructions", "samples", "latent_scatter", "manifold"):
        assert (out / f"{figure}.png").stat().st_size > 1000, figure


def test_train_ae_runs_on_the_standin_and_resumes_there(gpu_standin, tmp_path):
    out = tmp_path / "ae"
    assert exit_status(train_ae.main, [*DIGITS_FLAGS, "--out", str(out)]) == 0
    assert exit_status(train_ae.main, ["--resume", str(out / "checkpoint.npz"), "--epochs", "3",
                                       "--no-progress"]) == 0
    assert len(json.loads((out / "metrics.json").read_text())["epochs"]) == 3
    assert (out / "manifold.png").exists()


def test_a_script_started_as_a_process_runs_on_the_standin(tmp_path):
    # What a user with a GPU types, in a process of its own: the stand-in is found as `cupy`.
    done = subprocess.run([sys.executable, os.path.join(ROOT, "train_vae.py"), *DIGITS_FLAGS, "--out",
                           str(tmp_path / "run")], env=standin.subprocess_env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "cupy backend" in done.stdout


def test_the_grader_grades_the_project_correct_with_the_gpu_backend_chosen(gpu_standin, monkeypatch):
    # A student on a GPU machine sets VAE_BACKEND=cupy for training: grading must not depend on it
    # (its checks run in float64 NumPy), nor trip over a device array anywhere on the way.
    from course import grading

    monkeypatch.setenv("VAE_BACKEND", "cupy")
    results = grading.grade()
    assert [r.status for r in results] == ["correct"] * len(results), [(r.exercise.qualname, r.message)
                                                                          for r in results if r.status != "correct"]


def test_the_benchmark_runs_on_the_standin_in_its_worker_processes(tmp_path):
    # Each kind runs in a spawned process of its own: the stand-in must be what those import as cupy.
    done = subprocess.run([sys.executable, os.path.join(ROOT, "bench.py"), "--backend", "cupy", "--dataset", "digits",
                           "--epochs", "1", "--warmup", "0", "--skip", "torch", "--out", str(tmp_path), "--no-progress"],
                          env=standin.subprocess_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    assert results["ours"]["version"].startswith("cupy") and results["gemm"]["version"] == "cupy matmul"


def test_compare_pca_runs_on_the_standin(gpu_standin, tmp_path):
    from apps import compare_pca

    out = tmp_path / "pca"
    assert exit_status(compare_pca.main, ["--dataset", "digits", "--epochs", "3", "--backend", "cupy", "--out",
                                          str(out), "--no-progress"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["backend"] == "cupy" and set(results["methods"]) == {"pca", "linear_ae", "ae", "vae"}
    for figure in ("embeddings", "reconstructions", "manifolds", "interpolations"):
        assert (out / f"{figure}.png").exists(), figure


def test_augment_quick_runs_on_the_standin(gpu_standin, tmp_path):
    from apps import augment

    out = tmp_path / "augment"
    assert exit_status(augment.main, ["--quick", "--n", "10", "--seeds", "0", "--backend", "cupy", "--out",
                                      str(out)]) == 0
    accuracy = json.loads((out / "results.json").read_text())["accuracy"]
    assert set(accuracy) == {"real", "shift", "cvae", "m1"}
    assert (out / "accuracy.png").exists() and (out / "cvae_samples.png").exists()
