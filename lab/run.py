"""A training run that survives interruption: what train_vae.py and train_ae.py share.

A run writes to its output folder, after every epoch: metrics.json (the history so far)
and checkpoint.npz (model, optimiser, generator state); both atomically, so an
interrupted or failed run keeps its last good epoch. Ctrl-C or SIGTERM stops between two
steps and saves the state there; `--resume` continues exactly where it stopped. At the
end come the figures every autoencoder shows (loss curve, reconstructions, codes, and the
decoded latent plane for a 2-D code); an application adds its own (the VAE's samples).
"""

import argparse
import dataclasses
import json
import os
import shlex
import sys

import numpy as np

from models.base import INIT_SCHEMES, LOSSES
from models.vae import warmed_up
from models.conv import ARCHS
from nn import Adam, Generator
from nn.backend import BackendError, backend_name, get_backend, to_backend, to_numpy

from . import plots
from .cli import (RunFailed, Stopped, StopRequest, UsageError, add_common_flags, backend_name_from, bounded,
                  default_out, number_list, prepare_out, progress_wanted, run_main)
from .config import TrainConfig, build_model, config_from, describe, model_kind
from .data import DataError, load_dataset
from .files import CheckpointError, load_npz, save_npz, write_json
from .train import EpochProgress, NonFiniteLoss, apply_in_batches, evaluate, fit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # where the top-level scripts are


def build_parser(prog, description, add_flags=None):
    """The common flags and the training flags, in the style of the PyTorch examples;
    add_flags(parser, defaults), if given, adds a script's own.

    Only flags given on the command line appear in the parsed namespace (SUPPRESS), so
    that --resume can tell them apart from the checkpoint's settings.
    """
    d = TrainConfig()
    p = argparse.ArgumentParser(prog=prog, description=description, argument_default=argparse.SUPPRESS)
    add_common_flags(p, d)
    p.add_argument("--epochs", type=bounded(int, 0, strict=True), help=f"total epochs, >= 1 (default: {d.epochs})")
    p.add_argument("--batch-size", type=bounded(int, 0, strict=True), help=f">= 1 (default: {d.batch_size})")
    p.add_argument("--lr", type=bounded(float, 0, strict=True), help=f"Adam learning rate, > 0 (default: {d.lr})")
    p.add_argument("--latent-dim", type=bounded(int, 0, strict=True), help=f">= 1 (default: {d.latent_dim})")
    p.add_argument("--hidden", type=number_list("widths", "512 or 512,256"),
                   help="hidden widths, comma-separated (default: 512)")
    p.add_argument("--arch", choices=ARCHS, help=f"network (default: {d.arch}, the lab's); conv: two convolutions "
                                                 "each way (models/conv.py), for images whose sides are multiples of 4")
    p.add_argument("--channels", type=number_list("channel counts", "32,64"),
                   help=f"--arch conv: the convolutions' output channels (default: {','.join(map(str, d.channels))})")
    p.add_argument("--loss", choices=LOSSES, help=f"reconstruction loss (default: {d.loss}); gaussian: a "
                                                  "Gaussian decoder whose variance is learned (a VAE's only)")
    p.add_argument("--init", choices=INIT_SCHEMES, help=f"initial weights (default: {d.init}); the decoder's "
                                                        "output always starts at the mean training image")
    p.add_argument("--no-explorer", action="store_true",
                   help="write no explorer.html (the page that runs the model's encoder and decoder, explorer/page.py)")
    if add_flags:
        add_flags(p, d)
    p.add_argument("--resume", metavar="CHECKPOINT", help="continue the run saved in this checkpoint.npz")
    p.add_argument("--overwrite", action="store_true",
                   help="start a new run in an --out folder that already holds one, replacing its checkpoint")
    return p


def make_config(model, given, resumed_config=None):
    """The run's TrainConfig from the flags `given`, over a checkpoint's config when resuming."""
    if resumed_config is None:
        return checked(config_from(TrainConfig, given, model=model, backend=backend_name_from(given.get("backend"))))
    defaults = TrainConfig()  # a checkpoint written before a setting existed ran with its default
    saved = dict(resumed_config, hidden=tuple(resumed_config["hidden"]),
                 channels=tuple(resumed_config.get("channels", defaults.channels)),
                 arch=resumed_config.get("arch", defaults.arch),
                 log_likelihood=tuple(resumed_config.get("log_likelihood", ())))
    if saved["model"] != model:
        theirs, ours = model_kind(saved["model"]), model_kind(model)
        raise UsageError(f"the checkpoint is of a {theirs.name}, and {ours.script} trains a {ours.name}: "
                         f"continue it with {theirs.script} --resume")
    for name in TrainConfig.SHAPE_SETTINGS:
        if name in given and given[name] != saved[name]:
            raise UsageError(
                f"the checkpoint was trained with --{name.replace('_', '-')} {saved[name]}, not {given[name]}: "
                "leave the flag out to continue it"
            )
    return checked(config_from(TrainConfig, given, saved))


def checked(config):
    """config, or a UsageError naming the settings that cannot go together."""
    if config.kl_warmup >= config.epochs:
        raise UsageError(f"a KL warm-up of {config.kl_warmup} epochs (--kl-warmup) is not shorter than the run "
                         f"(--epochs {config.epochs}): the KL weight would not reach beta = {config.beta:g} before it "
                         f"ends; give a warm-up of at most {config.epochs - 1} epochs, or more --epochs")
    if config.beta == 0 and (config.kl_warmup or config.free_bits):
        raise UsageError("--kl-warmup and --free-bits shape the KL term, which --beta 0 leaves out of the loss: "
                         "give a beta > 0, or leave them out")
    return config


def kl_schedule(model, config):
    """fit's before_epoch for a run with a KL warm-up: it sets the VAE's beta for each epoch (models/vae.py,
    warmed_up); None without one."""
    if not config.kl_warmup:
        return None

    def set_beta(epoch):
        model.beta = warmed_up(config.beta, epoch, config.kl_warmup)

    return set_beta


def save_checkpoint(path, config, model, optimizer, rng, history, epoch, progress=None):
    """Model and optimiser arrays, plus config, history and generator state as metadata.

    epoch: the last completed epoch. progress: the EpochProgress of an epoch stopped
    part-way (its order and partial sums), so that a resume continues it exactly.
    """
    arrays = {f"model.{k}": v for k, v in model.state_dict().items()}
    opt_state = optimizer.state_dict()
    arrays.update({f"optim.{k}": v for k, v in opt_state.items() if k != "t"})
    meta = {"config": dataclasses.asdict(config), "epoch": epoch, "optim_t": opt_state["t"],
            "rng_state": rng.get_state(), "history": history, "partial": None}
    if progress is not None:
        arrays["partial.order"] = to_numpy(progress.order)
        meta["partial"] = {"step": progress.step, "done": progress.done,
                           "totals": {k: float(v) for k, v in progress.totals.items()}}
    save_npz(path, arrays, meta)


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """A checkpoint read back: where it is, its arrays (name -> NumPy array) and its metadata."""

    path: str
    arrays: dict
    meta: dict


def load_checkpoint(path):
    arrays, meta = load_npz(path)
    if "config" not in meta or "epoch" not in meta:
        raise CheckpointError(f"{path}: not a checkpoint of train_ae.py or train_vae.py")
    return Checkpoint(path, arrays, meta)


def restore(arrays, meta, model, optimizer, rng, xp):
    """Load a checkpoint's state into a freshly built model, optimiser and generator."""
    prefix = {"model.": {}, "optim.": {}}
    for key, value in arrays.items():
        for p in prefix:
            if key.startswith(p):
                prefix[p][key[len(p):]] = value
    try:
        model.load_state_dict(prefix["model."])
        optimizer.load_state_dict({**prefix["optim."], "t": meta["optim_t"]})
    except ValueError as err:
        raise CheckpointError(f"the checkpoint does not fit this model: {err}") from None
    rng.set_state(meta["rng_state"])
    partial = meta.get("partial")
    if partial is None:
        return None
    return EpochProgress(order=to_backend(arrays["partial.order"], xp), step=partial["step"], done=partial["done"],
                         totals=dict(partial["totals"]))


def run_training(config, out, resume_from=None, show_progress=True):
    """Train per `config`, writing metrics and checkpoints to `out`: (model, data, history).

    The model is build_model(config, data, rng) (lab/config.py). resume_from: the Checkpoint
    to continue. Raises Stopped after saving, when Ctrl-C or SIGTERM came, and
    RunFailed when the loss stops being finite.
    """
    xp = get_backend(config.backend)
    data = load_dataset(config.dataset, config.data_dir)
    rng = Generator(config.seed, xp)
    try:
        model = build_model(config, data, rng)
    except ValueError as err:  # settings no model can have for these data, say --arch conv on 7x7 images
        raise UsageError(f"{data.name}: {err}") from None
    optimizer = Adam(model.params, lr=config.lr)
    history, first_epoch, progress = [], 1, None
    if resume_from is not None:
        arrays, meta = resume_from.arrays, resume_from.meta
        progress = restore(arrays, meta, model, optimizer, rng, xp)
        history, first_epoch = meta["history"], meta["epoch"] + 1
        optimizer.lr = config.lr
        if first_epoch > config.epochs:
            part = f" and {progress.step} steps of epoch {first_epoch}" if progress else ""
            print(f"nothing to train: the checkpoint has {meta['epoch']} epochs{part}, and --epochs {config.epochs} "
                  f"asks for no more (give --epochs {first_epoch} or more to go on); redrawing its figures")
            return model, data, history

    x_train, x_test = to_backend(data.x_train, xp), to_backend(data.x_test, xp)  # uint8, once per run
    checkpoint, metrics = os.path.join(out, "checkpoint.npz"), os.path.join(out, "metrics.json")
    n = data.x_train.shape[0]
    resume = f"resume with: {command_line(config.kind.script, '--resume', checkpoint)}"
    # What a failure can truthfully say was kept: the checkpoint this run started from, or the last it wrote.
    kept = f"the checkpoint {resume_from.path} is kept" if resume_from else "no checkpoint was written yet"
    with StopRequest() as stop:  # from here on, Ctrl-C and SIGTERM stop the run cleanly
        print(f"{describe(config, data)} "
              f"on {data.name} ({n} train / {data.x_test.shape[0]} test images), "
              f"{backend_name(xp)} backend, writing to {out}", flush=True)
        try:  # NonFiniteLoss, from any epoch: what was kept is `kept` at that moment
            for epoch in fit(model, optimizer, x_train, config.batch_size, data.scale, rng, epochs=config.epochs,
                             first=first_epoch, progress=progress, before_epoch=kl_schedule(model, config),
                             should_stop=stop, show_progress=show_progress):
                if stop.signum is not None and epoch.progress.done < n:
                    save_checkpoint(checkpoint, config, model, optimizer, rng, history, epoch.number - 1,
                                    epoch.progress)
                    print(f"stopped in epoch {epoch.number} after {epoch.progress.step} steps; checkpoint saved; "
                          f"{resume}")
                    raise Stopped(stop.signum)
                train, seconds = epoch.means, epoch.seconds
                test = evaluate(model, x_test, 1000, data.scale, Generator(config.seed + 1, xp))
                record = {"epoch": epoch.number, "train_loss": train["loss"], "test_loss": test["loss"],
                          **{k: train[k] for k in ("recon", "kl") if k in train},
                          "test_recon": test["recon"], "seconds": seconds, "samples_per_s": epoch.images / seconds,
                          **({"beta": model.beta} if config.kl_warmup else {})}
                history.append(record)
                save_checkpoint(checkpoint, config, model, optimizer, rng, history, epoch.number)
                write_json(metrics, {"config": dataclasses.asdict(config), "epochs": history})
                kept = f"the checkpoint of epoch {epoch.number} is kept in {checkpoint}"
                kl = f"  (recon {train['recon']:.2f} + kl {train['kl']:.2f})" if "kl" in train else ""
                print(f"epoch {epoch.number:3d}/{config.epochs}  train {train['loss']:.3f}{kl}  "
                      f"test {test['loss']:.3f}  {seconds:.1f} s  {record['samples_per_s']:.0f} img/s", flush=True)
                if stop.signum is not None:  # came after the last step, or while evaluating and saving
                    print(f"stopped after epoch {epoch.number}; checkpoint saved; {resume}")
                    raise Stopped(stop.signum)
        except NonFiniteLoss as err:
            raise RunFailed(f"{err}. Try a lower --lr; {kept}") from None
    return model, data, history


def command_line(script, *args):
    """The command that runs the top-level `script` with `args`, as the user can type it here: with the
    Python running now (a bare `python` may lack the requirements, which `make` installs into .venv),
    and paths relative to the current folder where they lie inside it."""

    def shortest(path):
        relative = os.path.relpath(path)
        return path if relative.startswith("..") else relative

    return shlex.join([shortest(sys.executable), shortest(os.path.join(ROOT, script)), *args])


def refuse_to_replace_a_run(out, script, resuming_from, overwrite):
    """UsageError when `out` holds another run's checkpoint: a new run there would replace it
    after its first epoch. Continuing that very checkpoint, or --overwrite, is allowed."""
    existing = os.path.join(out, "checkpoint.npz")
    if overwrite or not os.path.exists(existing):
        return
    if resuming_from and os.path.exists(resuming_from) and os.path.samefile(existing, resuming_from):
        return
    raise UsageError(f"--out {out} already holds a run ({existing}): continue it with "
                     f"{command_line(script, '--resume', existing)}, or give another --out, "
                     "or add --overwrite to replace it")


def add_metrics(out, **entries):
    """Add `entries` to the run's metrics.json, beside its config and epochs."""
    path = os.path.join(out, "metrics.json")
    with open(path) as f:
        metrics = json.load(f)
    write_json(path, {**metrics, **entries})


def write_figures(model, data, history, config, out, name, explorer=True):
    """The figures every autoencoder shows: loss curve, reconstructions, codes, and (2-D code) the latent
    plane; and, if `explorer`, explorer.html, the page that runs the model's encoder and decoder (explorer/page.py)."""
    xp = get_backend(config.backend)
    x_test = to_backend(data.x_test, xp)
    where = lambda f: os.path.join(out, f)  # noqa: E731
    plots.save_loss_curve(history, where("loss_curve.png"), title=f"{name} on {data.name}: loss per image")

    n_show = 64
    x = data.x_test[:n_show] * data.scale
    x_hat = to_numpy(apply_in_batches(model.reconstruct, x_test[:n_show, ...], n_show, data.scale))
    plots.save_reconstructions(x, x_hat, data.image_shape, where("reconstructions.png"),
                               title=f"{name}: test images (odd rows) and their reconstructions (even rows)")

    z = to_numpy(apply_in_batches(model.code, x_test, 1000, data.scale))
    plots.save_latent_scatter(z, data.y_test, data.class_names, where("latent_scatter.png"),
                              title=f"{name}: test set in latent space")
    if explorer:  # from the codes just computed
        last = history[-1] if history else {}
        plots.write_explorer(where("explorer.html"), model, data, z, name=name, epochs=last.get("epoch", 0),
                       test_loss=last.get("test_loss"))

    if config.latent_dim == 2:
        grid = to_backend(plots.latent_grid(21, (-4.0, 4.0)).astype(np.float32), xp)
        plots.save_manifold(to_numpy(model.decode(grid)), data.image_shape, where("manifold.png"), extent=(-4.0, 4.0),
                            title=f"{name}: decoded latent plane, z in [-4, 4]^2")


def main(parser, model, finish=None, argv=None):
    """A training script: parse, train (or resume), draw the figures. See lab.cli.run_main for exit statuses.

    model: the key of its ModelKind (lab/config.py), as stored in the config;
    finish(model, data, config, out), if given, does what only this script does at the
    end (its own figures, its own evaluations).
    """
    given = vars(parser.parse_args(argv))

    def body():
        resumed = None
        if "resume" in given:
            resumed = load_checkpoint(given["resume"])
            config = make_config(model, given, resumed.meta["config"])
            out = given.get("out", os.path.dirname(given["resume"]) or ".")
        else:
            config = make_config(model, given)
            out = given.get("out", default_out(parser.prog))
        refuse_to_replace_a_run(out, config.kind.script, resumed and resumed.path, given.get("overwrite", False))
        created = not os.path.exists(out)
        prepare_out(out)
        try:
            net, data, history = run_training(config, out, resumed,
                                     show_progress=progress_wanted(given.get("no_progress", False)))
        except (DataError, BackendError, UsageError):  # nothing ran: leave no empty folder behind
            if created and not os.listdir(out):
                os.rmdir(out)
            raise
        write_figures(net, data, history, config, out, config.kind.name,
                      explorer=not given.get("no_explorer", False))
        if finish:
            finish(net, data, config, out)
        print(f"done: metrics, checkpoint and figures in {out}")

    return run_main(parser, body)
