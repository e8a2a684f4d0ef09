"""The training scripts end to end: learning, outputs, resuming, and every kind of bad input."""

import json
import os

import numpy as np
import pytest

from lab import runner
from lab.data import DataError, load_dataset
from lab.runner import TrainConfig, main, run
from lab.train import evaluate
from models import VAE
from nn import Generator
from nn.checkpoint import load_npz

DIGITS = dict(dataset="digits", hidden=(64,), batch_size=64, lr=3e-3)


def train(tmp_path, name="run", **settings):
    config = TrainConfig(**{**DIGITS, **settings})
    out = tmp_path / name
    out.mkdir()
    return config, out, run(config, str(out), show_progress=False)


def weights(out):
    arrays, meta = load_npz(out / "checkpoint.npz")
    return {k: v for k, v in arrays.items() if k.startswith("model.")}, meta


@pytest.mark.parametrize("model", ["vae", "ae"])
def test_training_on_digits_lowers_the_test_loss_well_below_its_start(tmp_path, model):
    data = load_dataset("digits")
    config, out, history = train(tmp_path, model=model, epochs=8)
    untrained = runner.build_model(config, data.input_dim, Generator(config.seed))  # the run's initial weights
    start = evaluate(untrained, data.x_test, 1000, data.scale, Generator(1))["loss"]
    assert history[-1]["test_loss"] < 0.5 * start, (start, [h["test_loss"] for h in history])


def test_a_run_writes_metrics_checkpoint_and_figures(tmp_path):
    config, out, history = train(tmp_path, epochs=2)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["dataset"] == "digits" and len(metrics["epochs"]) == 2
    record = metrics["epochs"][-1]
    for key in ("epoch", "train_loss", "test_loss", "recon", "kl", "seconds", "samples_per_s"):
        assert np.isfinite(record[key]), key
    assert record["train_loss"] == pytest.approx(record["recon"] + record["kl"])
    for figure in ("loss_curve", "reconstructions", "samples", "latent_scatter", "manifold"):
        assert (out / f"{figure}.png").stat().st_size > 1000, figure
    assert not [f for f in os.listdir(out) if f.startswith(".tmp")]  # no temporary files left


def test_resume_ends_with_exactly_the_weights_of_an_uninterrupted_run(tmp_path):
    _, straight, _ = train(tmp_path, "straight", epochs=4)
    _, halves, _ = train(tmp_path, "halves", epochs=2)
    assert main("vae", ["--resume", str(halves / "checkpoint.npz"), "--epochs", "4", "--no-progress"]) == 0
    expected, _ = weights(straight)
    resumed, meta = weights(halves)
    assert meta["epoch"] == 4 and len(meta["history"]) == 4
    for name in expected:
        np.testing.assert_array_equal(resumed[name], expected[name], err_msg=name)


def test_ctrl_c_mid_epoch_saves_a_checkpoint_that_resumes_exactly(tmp_path, monkeypatch, capsys):
    _, straight, _ = train(tmp_path, "straight", epochs=3)

    class CtrlCAfter30Steps(runner.StopRequest):  # as if Ctrl-C came in the middle of epoch 2
        steps = 0

        def __call__(self):
            CtrlCAfter30Steps.steps += 1
            self.requested = self.requested or CtrlCAfter30Steps.steps == 30
            return self.requested

    monkeypatch.setattr(runner, "StopRequest", CtrlCAfter30Steps)
    _, stopped, _ = train(tmp_path, "stopped", epochs=3)
    assert "--resume" in capsys.readouterr().out  # the command to resume is printed
    _, meta = weights(stopped)
    assert meta["epoch"] == 1 and meta["partial"]["step"] == 30 - 24  # 24 steps per digits epoch
    monkeypatch.setattr(runner, "StopRequest", runner.StopRequest.__mro__[1])
    assert main("vae", ["--resume", str(stopped / "checkpoint.npz"), "--no-progress"]) == 0
    expected, _ = weights(straight)
    resumed, _ = weights(stopped)
    for name in expected:
        np.testing.assert_array_equal(resumed[name], expected[name], err_msg=name)


def test_a_non_finite_loss_stops_with_the_epoch_and_step_and_keeps_the_last_checkpoint(tmp_path, monkeypatch, capsys):
    calls = {"n": 0}
    forward = VAE.forward

    def poisoned(self, x, eps=None, rng=None):
        terms = forward(self, x, eps, rng)
        if rng is None:  # training steps only
            calls["n"] += 1
            if calls["n"] > 24 + 5:  # in epoch 2
                terms["loss"] = terms["loss"] * float("nan")
        return terms

    monkeypatch.setattr(VAE, "forward", poisoned)
    out = tmp_path / "nan"
    args = ["--dataset", "digits", "--hidden", "64", "--batch-size", "64", "--epochs", "3", "--out", str(out),
            "--no-progress"]
    with pytest.raises(SystemExit) as exit_info:
        main("vae", args)
    assert exit_info.value.code == 1
    message = capsys.readouterr().err
    assert "in epoch 2, between steps 1 and 10" in message and "lower --lr" in message
    _, meta = weights(out)
    assert meta["epoch"] == 1  # the last good epoch's checkpoint is kept


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "--epochs: must be > 0, got 0"),
    (["--batch-size", "-5"], "--batch-size: must be > 0"),
    (["--lr", "0"], "--lr: must be > 0"),
    (["--latent-dim", "0"], "--latent-dim: must be > 0"),
    (["--hidden", "512,-1"], "--hidden: widths must be > 0"),
    (["--beta", "-1"], "--beta: must be >= 0"),
    (["--dataset", "cifar"], "invalid choice: 'cifar'"),
    (["--loss", "l1"], "invalid choice: 'l1'"),
])
def test_invalid_flags_are_argparse_errors_that_give_the_valid_range(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main("vae", args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def run_main(capsys, model, args):
    with pytest.raises(SystemExit) as exit_info:
        main(model, args)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err
    return err.strip()


def test_an_unwritable_out_fails_before_training(tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    err = run_main(capsys, "vae", ["--dataset", "digits", "--out", str(tmp_path / "file" / "run")])
    assert "cannot write to --out" in err and len(err.splitlines()) == 1


def test_resume_of_a_missing_or_corrupted_checkpoint(tmp_path, capsys):
    assert "no such checkpoint" in run_main(capsys, "vae", ["--resume", str(tmp_path / "nope.npz")])
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 truncated")
    assert "not a readable checkpoint" in run_main(capsys, "vae", ["--resume", str(tmp_path / "bad.npz")])


def test_resume_of_an_incompatible_checkpoint_names_the_mismatch(tmp_path, capsys):
    _, out, _ = train(tmp_path, epochs=1)
    checkpoint = str(out / "checkpoint.npz")
    assert "trained with --latent-dim 2, not 3" in run_main(capsys, "vae", ["--resume", checkpoint, "--latent-dim", "3"])
    assert "the checkpoint is of a vae" in run_main(capsys, "ae", ["--resume", checkpoint])
    arrays, meta = load_npz(checkpoint)
    meta["config"]["hidden"] = [32]  # a checkpoint whose arrays do not fit what its config builds
    from nn.checkpoint import save_npz

    save_npz(checkpoint, arrays, meta)
    assert "does not fit this model: parameter 'encoder.0.W'" in run_main(capsys, "vae", ["--resume", checkpoint])


def test_unknown_backend_in_the_environment_is_a_clear_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("VAE_BACKEND", "tpu")
    assert "unknown $VAE_BACKEND 'tpu'" in run_main(capsys, "vae", ["--dataset", "digits", "--out", str(tmp_path)])


def test_one_epoch_on_fashion_mnist(tmp_path):
    try:
        load_dataset("fashion-mnist", download=False)
    except DataError:
        if os.environ.get("CI") == "true":
            raise  # CI installs the Debian package: missing data there is a failure
        pytest.skip("FashionMNIST is not installed (apt-get install dataset-fashion-mnist)")
    config = TrainConfig(epochs=1)
    history = run(config, str(tmp_path), show_progress=False)
    assert history[0]["test_loss"] < 40.0  # per image; an untrained model scores about 120


def test_a_whole_run_uses_only_the_array_api_standard(tmp_path):
    # Training, evaluation and figures under array-api-strict: what passes here uses only
    # operations that CuPy implements too, so the same run works on the GPU.
    _, strict, strict_history = train(tmp_path, "strict", epochs=2, backend="array_api_strict")
    _, plain, numpy_history = train(tmp_path, "numpy", epochs=2)
    assert (strict / "manifold.png").exists()
    assert [h["test_loss"] for h in strict_history] == pytest.approx([h["test_loss"] for h in numpy_history], rel=1e-5)
