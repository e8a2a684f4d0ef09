"""The training scripts end to end (lab/run.py behind apps/train_vae.py and apps/train_ae.py):
learning, outputs, stopping and resuming, and every kind of bad input."""

import json
import os
import shlex
import signal
import subprocess
import sys

import numpy as np
import pytest

from apps import train_ae, train_vae
from lab import run
from lab.data import DataError, load_dataset
from lab.files import load_npz, save_npz
from lab.config import TrainConfig, build_model
from lab.run import run_training
from lab.train import evaluate
from models import VAE
from nn import Generator
import paths

DIGITS = dict(dataset="digits", hidden=(64,), batch_size=64, lr=3e-3)
DIGITS_FLAGS = ["--dataset", "digits", "--hidden", "64", "--batch-size", "64", "--lr", "3e-3", "--no-progress"]
APPS = {"vae": train_vae, "ae": train_ae}
ROOT = str(paths.ROOT)


def train(tmp_path, name="run", **settings):
    config = TrainConfig(**{**DIGITS, **settings})
    out = tmp_path / name
    out.mkdir()
    _, _, history = run_training(config, str(out), show_progress=False)
    return config, out, history


def main(model, argv):
    """The script's main, as the command line runs it: its exit status, whether it returns or exits."""
    try:
        return APPS[model].main(argv)
    except SystemExit as exit_:
        return exit_.code


def weights(out):
    arrays, meta = load_npz(out / "checkpoint.npz")
    return {k: v for k, v in arrays.items() if k.startswith("model.")}, meta


# The mean image is the best any decoder that ignores its code can do, and where a model's
# output bias starts (Model.start_at); after 16 epochs it reconstructs below it. On digits with
# squared error the VAE's KL term keeps its code little used (KL about 0.4 nats): its margin is
# small, and with q(z|x) started at the prior (HEAD_SCALE) a seed can stay at the mean image
# for the first 10 epochs or so before the code comes into use (seed 0: about 12).
@pytest.mark.parametrize("model, ratio", [("vae", 0.95), ("ae", 0.7)])
def test_training_on_digits_reconstructs_better_than_the_mean_image(tmp_path, model, ratio):
    data = load_dataset("digits")
    config, out, history = train(tmp_path, model=model, epochs=16)
    untrained = build_model(config, data, Generator(config.seed))  # the run's initial weights
    start = evaluate(untrained, data.x_test, 1000, data.scale, Generator(1))["recon"]
    mean_image_error = np.mean(np.sum((data.x_test * data.scale - data.mean_image) ** 2, axis=1))
    assert history[-1]["test_recon"] < ratio * mean_image_error < start, (start, [h["test_recon"] for h in history])


def test_a_run_writes_metrics_checkpoint_and_figures(tmp_path):
    out = tmp_path / "run"
    assert main("vae", [*DIGITS_FLAGS, "--epochs", "2", "--out", str(out)]) == 0
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

    class CtrlCAfter30Steps(run.StopRequest):  # as if Ctrl-C came in the middle of epoch 2
        steps = 0

        def __call__(self):
            CtrlCAfter30Steps.steps += 1
            if CtrlCAfter30Steps.steps == 30:
                self.signum = signal.SIGINT
            return super().__call__()

    monkeypatch.setattr(run, "StopRequest", CtrlCAfter30Steps)
    stopped = tmp_path / "stopped"
    assert main("vae", [*DIGITS_FLAGS, "--epochs", "3", "--out", str(stopped)]) == 128 + signal.SIGINT
    assert "--resume" in capsys.readouterr().out  # the command to resume is printed
    _, meta = weights(stopped)
    assert meta["epoch"] == 1 and meta["partial"]["step"] == 30 - 24  # 24 steps per digits epoch
    monkeypatch.setattr(run, "StopRequest", CtrlCAfter30Steps.__mro__[1])
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
    assert main("vae", [*DIGITS_FLAGS, "--epochs", "3", "--out", str(out)]) == 1
    message = capsys.readouterr().err
    assert "in epoch 2, between steps 1 and 10" in message and "lower --lr" in message
    assert f"the checkpoint of epoch 1 is kept in {out / 'checkpoint.npz'}" in message
    _, meta = weights(out)
    assert meta["epoch"] == 1  # the last good epoch's checkpoint is kept


def test_a_run_that_diverges_before_its_first_checkpoint_does_not_claim_one_is_kept(tmp_path, monkeypatch, capsys):
    forward = VAE.forward
    monkeypatch.setattr(VAE, "forward", lambda self, x, eps=None, rng=None: {  # as --lr 10 does, in epoch 1
        k: v * float("nan") for k, v in forward(self, x, eps, rng).items()})
    out = tmp_path / "diverged"
    assert main("vae", [*DIGITS_FLAGS, "--epochs", "2", "--out", str(out)]) == 1
    message = capsys.readouterr().err
    assert "in epoch 1" in message and "no checkpoint was written yet" in message and "is kept" not in message
    assert not (out / "checkpoint.npz").exists()


@pytest.mark.slow
def test_a_new_run_does_not_replace_the_checkpoint_of_the_run_in_its_out_folder(tmp_path, capsys):
    _, out, _ = train(tmp_path, epochs=2)
    err = run_main(capsys, "vae", [*DIGITS_FLAGS, "--epochs", "1", "--out", str(out)])
    assert f"--out {out} already holds a run" in err and "--resume" in err and "--overwrite" in err
    assert len(err.splitlines()) == 1
    assert weights(out)[1]["epoch"] == 2  # untouched
    assert main("vae", ["--resume", str(out / "checkpoint.npz"), "--epochs", "3", "--no-progress"]) == 0  # its own
    assert main("vae", [*DIGITS_FLAGS, "--epochs", "1", "--out", str(out), "--overwrite"]) == 0
    assert weights(out)[1]["epoch"] == 1


def test_resume_of_a_file_that_is_not_a_checkpoint_says_so_in_one_line(tmp_path, capsys):
    (tmp_path / "notes.npz").write_text("not an archive at all\n")
    np.save(tmp_path / "array.npy", np.zeros(3))
    for path in (tmp_path / "notes.npz", tmp_path / "array.npy"):
        err = run_main(capsys, "vae", ["--resume", str(path)])
        assert "not a readable checkpoint" in err and len(err.splitlines()) == 1
        assert "allow_pickle" not in err  # never invite unsafe loading


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "--epochs: must be > 0, got 0"),
    (["--batch-size", "-5"], "--batch-size: must be > 0"),
    (["--lr", "0"], "--lr: must be > 0"),
    (["--latent-dim", "0"], "--latent-dim: must be > 0"),
    (["--hidden", "512,-1"], "--hidden: widths must be >= 1"),
    (["--beta", "-1"], "--beta: must be >= 0"),
    (["--free-bits", "-0.5"], "--free-bits: must be >= 0"),
    (["--free-bits", "inf"], "--free-bits: must be a finite number, got inf"),
    (["--kl-warmup", "-1"], "--kl-warmup: must be >= 0"),
    (["--dataset", "cifar"], "invalid choice: 'cifar'"),
    (["--loss", "l1"], "invalid choice: 'l1'"),
    (["--init", "glorot"], "invalid choice: 'glorot'"),
    (["--log-likelihood", "1,0"], "--log-likelihood: sample counts must be >= 1, got 1,0"),
    (["--log-likelihood", "ten"], "--log-likelihood: expected comma-separated sample counts like 1,10,100,1000"),
])
def test_invalid_flags_are_argparse_errors_that_give_the_valid_range(args, message, capsys):
    assert main("vae", args) == 2
    assert message in capsys.readouterr().err


def run_main(capsys, model, args):
    status = main(model, args)
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
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
    err = run_main(capsys, "ae", ["--resume", checkpoint])
    assert "the checkpoint is of a VAE" in err and "continue it with train_vae.py --resume" in err
    arrays, meta = load_npz(checkpoint)
    meta["config"]["hidden"] = [32]  # a checkpoint whose arrays do not fit what its config builds
    save_npz(checkpoint, arrays, meta)
    assert "does not fit this model: parameter 'encoder.0.W'" in run_main(capsys, "vae", ["--resume", checkpoint])


def test_a_run_without_its_data_leaves_no_empty_folder(tmp_path, capsys):
    out = tmp_path / "run"
    err = run_main(capsys, "vae", ["--data-dir", str(tmp_path / "nowhere"), "--out", str(out)])
    assert "no such folder" in err and not out.exists()


def test_unknown_backend_in_the_environment_is_a_clear_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("VAE_BACKEND", "tpu")
    assert "unknown $VAE_BACKEND 'tpu'" in run_main(capsys, "vae", ["--dataset", "digits", "--out", str(tmp_path)])


@pytest.mark.slow
def test_one_epoch_on_fashion_mnist(tmp_path):
    try:
        load_dataset("fashion-mnist", download=False)
    except DataError:
        if os.environ.get("CI") == "true":
            raise  # CI installs the Debian package: missing data there is a failure
        pytest.skip("FashionMNIST is not installed (apt-get install dataset-fashion-mnist)")
    config = TrainConfig(epochs=1)
    _, _, history = run_training(config, str(tmp_path), show_progress=False)
    assert history[0]["test_loss"] < 40.0  # per image; an untrained model scores about 120


@pytest.mark.slow
@pytest.mark.parametrize("model", ["vae", "ae"])
def test_a_whole_run_uses_only_the_array_api_standard(tmp_path, monkeypatch, model):
    # Training, evaluation and figures under array-api-strict: what passes here uses only
    # operations that CuPy implements too, so the same run works on the GPU.
    histories = {}
    for backend in ("array_api_strict", "numpy"):
        monkeypatch.setenv("VAE_BACKEND", backend)
        assert main(model, [*DIGITS_FLAGS, "--epochs", "2", "--out", str(tmp_path / backend)]) == 0
        histories[backend] = json.loads((tmp_path / backend / "metrics.json").read_text())["epochs"]
    assert histories["array_api_strict"][0]["epoch"] == 1 and (tmp_path / "array_api_strict" / "manifold.png").exists()
    assert [h["test_loss"] for h in histories["array_api_strict"]] == pytest.approx(
        [h["test_loss"] for h in histories["numpy"]], rel=1e-5)


def script(name, *args, **popen):
    """A real process running the top-level script `name`, its output unbuffered."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": ROOT}
    return subprocess.Popen([sys.executable, os.path.join(ROOT, name), *args], env=env, text=True, **popen)


@pytest.mark.slow
def test_sigterm_mid_epoch_saves_the_epoch_so_far_and_resumes_to_the_uninterrupted_weights(tmp_path):
    # The run prints its first line once SIGTERM is handled; a SIGTERM sent then lands in the
    # first of epoch 1's 750 steps (batches of 2), long before its end.
    settings = dict(DIGITS, batch_size=2, lr=1e-3, epochs=3)
    _, straight, _ = train(tmp_path, "straight", **settings)
    out = tmp_path / "stopped"
    flags = ["--dataset", "digits", "--hidden", "64", "--batch-size", "2", "--lr", "1e-3", "--epochs", "3"]
    process = script("train_vae.py", *flags, "--out", str(out), stdout=subprocess.PIPE)
    assert process.stdout.readline().startswith("VAE 64-64-2 on digits")
    process.send_signal(signal.SIGTERM)
    rest = process.stdout.read()
    assert process.wait(timeout=60) == 128 + signal.SIGTERM
    _, meta = weights(out)
    assert meta["epoch"] == 0 and 0 < meta["partial"]["step"] < 750  # part of epoch 1 was saved
    # The printed command, run as printed: with this Python (not a bare `python`, which may lack
    # the requirements), from the same folder, and no PYTHONPATH.
    printed = shlex.split(next(line for line in rest.splitlines() if "resume with: " in line).split("resume with: ")[1])
    assert os.path.samefile(printed[0], sys.executable) and printed[2:] == ["--resume", str(out / "checkpoint.npz")]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    assert subprocess.run([*printed, "--no-progress"], env=env, capture_output=True).returncode == 0
    expected, _ = weights(straight)
    resumed, _ = weights(out)
    for name in expected:
        np.testing.assert_array_equal(resumed[name], expected[name], err_msg=name)


@pytest.mark.slow
def test_resume_with_no_epochs_left_to_train_says_so_and_redraws_the_figures(tmp_path, capsys):
    out = tmp_path / "run"
    assert main("ae", [*DIGITS_FLAGS, "--epochs", "2", "--out", str(out)]) == 0
    trained, _ = weights(out)
    (out / "loss_curve.png").unlink()
    capsys.readouterr()
    for epochs in ("1", "2"):
        assert main("ae", ["--resume", str(out / "checkpoint.npz"), "--epochs", epochs, "--no-progress"]) == 0
        printed = capsys.readouterr().out
        assert (f"nothing to train: the checkpoint has 2 epochs, and --epochs {epochs} asks for no more "
                "(give --epochs 3 or more to go on); redrawing its figures") in printed
    assert (out / "loss_curve.png").exists()
    after, meta = weights(out)
    assert meta["epoch"] == 2 and all(np.array_equal(after[k], trained[k]) for k in trained)


@pytest.mark.slow
def test_with_output_to_a_file_there_is_no_progress_bar_and_one_line_per_epoch(tmp_path):
    log = tmp_path / "log.txt"
    with open(log, "w") as f:
        process = script("train_ae.py", "--dataset", "digits", "--hidden", "64", "--epochs", "3",
                         "--out", str(tmp_path / "run"), stdout=f, stderr=subprocess.STDOUT)
        assert process.wait(timeout=120) == 0
    text = log.read_text()
    assert "\r" not in text and "img/s]" not in text  # no bar redrawn
    assert [line.split()[1] for line in text.splitlines() if line.startswith("epoch")] == ["1/3", "2/3", "3/3"]


def test_the_bar_is_shown_only_when_both_output_streams_are_terminals(monkeypatch):
    for stdout_tty, stderr_tty in ((True, True), (True, False), (False, True), (False, False)):
        monkeypatch.setattr(sys.stdout, "isatty", lambda: stdout_tty, raising=False)
        monkeypatch.setattr(sys.stderr, "isatty", lambda: stderr_tty, raising=False)
        assert run.progress_wanted(no_progress=False) == (stdout_tty and stderr_tty)
        assert run.progress_wanted(no_progress=True) is False


def test_log_likelihood_flag_writes_the_bounds_and_k1_is_minus_the_test_loss_shifted(tmp_path, capsys):
    out = tmp_path / "run"
    assert main("vae", [*DIGITS_FLAGS, "--epochs", "2", "--out", str(out), "--log-likelihood", "1,30"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    bounds = metrics["log_likelihood"]["bounds"]
    assert metrics["log_likelihood"]["test_images"] == 297 and "Gaussian" in metrics["log_likelihood"]["decoder"]
    assert bounds["30"]["nats"] > bounds["1"]["nats"]
    # -ELBO = loss + (D/2) log(pi) for the summed-squared-error VAE (docs/derivations.md), D = 64 pixels:
    # the same expectation, estimated with other noise and a sampled rather than closed-form KL.
    expected = -(metrics["epochs"][-1]["test_loss"] + 32 * np.log(np.pi))
    assert bounds["1"]["nats"] == pytest.approx(expected, rel=0.02)
    assert bounds["1"]["bits_per_dim"] == pytest.approx(-bounds["1"]["nats"] / (64 * np.log(2)))
    assert "(the ELBO)" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("name", ["train_vae.py", "train_ae.py", "compare_pca.py", "augment.py", "bench.py"])
def test_a_script_started_without_its_requirements_says_how_to_set_them_up(name):
    # -S: this Python without its site-packages, as a system Python without the requirements.
    done = subprocess.run([sys.executable, "-S", os.path.join(ROOT, name), "--help"], capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "make venv" in done.stderr and len(done.stderr.strip().splitlines()) == 1


CONV_FLAGS = ["--dataset", "digits", "--arch", "conv", "--channels", "4,8", "--batch-size", "64", "--lr", "3e-3",
              "--no-progress"]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["vae", "ae"])
def test_a_conv_run_writes_every_figure_and_resumes(tmp_path, model):
    out = tmp_path / "run"
    assert main(model, [*CONV_FLAGS, "--epochs", "1", "--out", str(out)]) == 0
    for figure in ("loss_curve", "reconstructions", "latent_scatter", "manifold"):
        assert (out / f"{figure}.png").stat().st_size > 1000, figure
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["arch"] == "conv" and metrics["config"]["channels"] == [4, 8]
    assert main(model, ["--resume", str(out / "checkpoint.npz"), "--epochs", "2", "--no-progress"]) == 0
    assert len(json.loads((out / "metrics.json").read_text())["epochs"]) == 2


def test_an_image_size_the_conv_decoder_cannot_rebuild_is_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    err = run_main(capsys, "vae", [*CONV_FLAGS, "--channels", "4,4,4,4", "--out", str(out)])
    assert "multiples of 16 (16, 32," in err and "not 8x8" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_a_checkpoint_from_before_the_arch_setting_resumes_as_an_mlp(tmp_path):
    _, out, _ = train(tmp_path, epochs=1)
    arrays, meta = load_npz(out / "checkpoint.npz")
    del meta["config"]["arch"], meta["config"]["channels"]
    save_npz(out / "checkpoint.npz", arrays, meta)
    assert main("vae", ["--resume", str(out / "checkpoint.npz"), "--epochs", "2", "--no-progress"]) == 0


def test_a_vae_run_reports_its_code_and_draws_its_traversals(tmp_path, capsys):
    out = tmp_path / "run"
    assert main("vae", [*DIGITS_FLAGS, "--epochs", "2", "--latent-dim", "3", "--out", str(out)]) == 0
    code = json.loads((out / "metrics.json").read_text())["code"]
    assert len(code["kl_per_dim"]) == len(code["mean_variance"]) == 3 and 0 <= code["active_units"] <= 3
    assert code["rate"] == pytest.approx(sum(code["kl_per_dim"])) and code["elbo"] == pytest.approx(
        -(code["rate"] + code["distortion"]))
    assert code["x_variance"] == 0.5  # the lab's summed squared error: a Gaussian decoder of variance 1/2
    assert (out / "traversals.png").stat().st_size > 1000
    assert f"{code['active_units']}/3 active units" in capsys.readouterr().out


def test_a_two_dimensional_code_gets_the_plane_and_no_traversals(tmp_path):
    out = tmp_path / "run"
    assert main("vae", [*DIGITS_FLAGS, "--epochs", "1", "--out", str(out)]) == 0
    assert (out / "manifold.png").exists() and not (out / "traversals.png").exists()


def test_the_kl_warmup_raises_beta_linearly_from_zero_and_is_recorded(tmp_path):
    out = tmp_path / "run"
    assert main("vae", [*DIGITS_FLAGS, "--epochs", "4", "--beta", "2", "--kl-warmup", "2", "--out", str(out)]) == 0
    epochs = json.loads((out / "metrics.json").read_text())["epochs"]
    assert [e["beta"] for e in epochs] == [0.0, 1.0, 2.0, 2.0]
    assert epochs[0]["train_loss"] == pytest.approx(epochs[0]["recon"])  # no KL in the loss of the first epoch


def test_a_learned_variance_run_learns_it_and_reports_its_density(tmp_path):
    out = tmp_path / "run"
    assert main("vae", [*DIGITS_FLAGS, "--epochs", "3", "--loss", "gaussian", "--out", str(out),
                        "--log-likelihood", "1"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    code, record = metrics["code"], metrics["epochs"][-1]
    assert code["x_variance"] < 0.45  # moved from its start, the lab's 1/2, towards the squared error per pixel
    assert "learned" in metrics["log_likelihood"]["decoder"]
    # the loss's reconstruction term is -log p(x|z) itself: the ELBO is minus the test loss (other noise)
    assert metrics["log_likelihood"]["bounds"]["1"]["nats"] == pytest.approx(-record["test_loss"], rel=0.02)


@pytest.mark.parametrize("model, args, message", [
    ("vae", ["--epochs", "3", "--kl-warmup", "3"],
     "a KL warm-up of 3 epochs (--kl-warmup) is not shorter than the run (--epochs 3): the KL weight would not "
     "reach beta = 1 before it ends"),
    ("vae", ["--beta", "0", "--free-bits", "0.5"], "which --beta 0 leaves out of the loss"),
    ("ae", ["--loss", "gaussian"], "an autoencoder has none"),
])
def test_settings_that_cannot_go_together_are_one_line(tmp_path, capsys, model, args, message):
    err = run_main(capsys, model, [*DIGITS_FLAGS, *args, "--out", str(tmp_path / "run")])
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_a_run_resumed_in_its_warmup_goes_on_with_the_warmups_beta(tmp_path):
    config, out, history = train(tmp_path, epochs=2, kl_warmup=3, beta=1.5)
    resumed = run.load_checkpoint(str(out / "checkpoint.npz"))
    _, _, history = run_training(TrainConfig(**{**DIGITS, "epochs": 4, "kl_warmup": 3, "beta": 1.5}), str(out),
                                 resumed, show_progress=False)
    assert [e["beta"] for e in history] == [0.0, 0.5, 1.0, 1.5]
