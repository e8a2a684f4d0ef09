"""What train_ae.py and train_vae.py do: parse flags, train with checkpoints, write figures.

A run writes to its output folder, after every epoch: metrics.json (the history so far)
and checkpoint.npz (model, optimiser, generator state); both atomically, so an
interrupted or failed run keeps its last good epoch. Ctrl-C stops between two steps
and saves the state there; `--resume` continues exactly where it stopped.
"""

import argparse
import dataclasses
import json
import os
import signal
import sys
import tempfile
import time

import numpy as np

from models import VAE, AutoEncoder
from nn import Adam, Generator
from nn.backend import BACKENDS, BackendError, backend_name, get_backend, to_backend, to_numpy
from nn.checkpoint import CheckpointError, atomic_write, load_npz, save_npz

from . import plots
from .cli import bounded
from .data import DATASETS, DataError, load_dataset
from .train import EpochProgress, NonFiniteLoss, apply_in_batches, evaluate, train_epoch


@dataclasses.dataclass
class TrainConfig:
    """A run's settings. The defaults reproduce the lab (Part Two)."""

    model: str = "vae"  # "vae" or "ae": which script made the run
    dataset: str = "fashion-mnist"  # the lab's: harder than MNIST, same format
    data_dir: str | None = None  # where the IDX files are, if not in a usual place
    epochs: int = 20  # the lab's
    batch_size: int = 128  # the lab's
    lr: float = 5e-4  # the lab's Adam step size
    latent_dim: int = 2  # the lab's: a plane that can be drawn (manifold.png); 16 or more reconstructs sharper
    hidden: tuple = (512,)  # the lab's 784-512-latent MLP
    loss: str = "mse"  # the lab's summed squared error; "bce" treats pixels as Bernoulli probabilities
    beta: float = 1.0  # weight of the KL term (VAE); 1 gives the ELBO
    seed: int = 0  # initial weights, data order and the VAE's noise
    backend: str = "numpy"  # "cupy" for the GPU

    # Settings that fix the shapes of the parameters: a checkpoint only fits a run that shares them.
    ARCHITECTURE = ("model", "dataset", "latent_dim", "hidden", "loss")


def _hidden(text):
    try:
        sizes = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated widths like 512 or 512,256, got {text!r}") from None
    if not all(s > 0 for s in sizes):
        raise argparse.ArgumentTypeError(f"widths must be > 0, got {text}")
    return sizes


def build_parser(model):
    """Flags in the style of the PyTorch examples. Only flags given on the command line
    appear in the parsed namespace (SUPPRESS), so that --resume can tell them apart."""
    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog=f"train_{model}.py", argument_default=argparse.SUPPRESS,
        description=f"Train the lab's {'VAE' if model == 'vae' else 'autoencoder'} and write its figures.",
    )
    p.add_argument("--dataset", choices=DATASETS, help=f"default: {d.dataset}")
    p.add_argument("--data-dir", help="folder with the four IDX files (default: data/<dataset>/, then system folders)")
    p.add_argument("--epochs", type=bounded(int, 0, strict=True), help=f"total epochs, >= 1 (default: {d.epochs})")
    p.add_argument("--batch-size", type=bounded(int, 0, strict=True), help=f">= 1 (default: {d.batch_size})")
    p.add_argument("--lr", type=bounded(float, 0, strict=True), help=f"Adam learning rate, > 0 (default: {d.lr})")
    p.add_argument("--latent-dim", type=bounded(int, 0, strict=True), help=f">= 1 (default: {d.latent_dim})")
    p.add_argument("--hidden", type=_hidden, help="hidden widths, comma-separated (default: 512)")
    p.add_argument("--loss", choices=("mse", "bce"), help=f"reconstruction loss (default: {d.loss})")
    if model == "vae":
        p.add_argument("--beta", type=bounded(float, 0), help=f"KL weight, >= 0 (default: {d.beta})")
    p.add_argument("--seed", type=int, help=f"default: {d.seed}")
    p.add_argument("--backend", choices=BACKENDS[:2],
                   help="numpy (CPU) or cupy (GPU); default: $VAE_BACKEND, else numpy")
    p.add_argument("--out", help=f"output folder (default: runs/train_{model}-<timestamp>/)")
    p.add_argument("--resume", metavar="CHECKPOINT", help="continue the run saved in this checkpoint.npz")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (one line per epoch only)")
    return p


class UsageError(Exception):
    """A mistake in how the script was called; its message says what to change."""


def make_config(model, given, resumed_config=None):
    """The run's TrainConfig from the flags `given`, or from a checkpoint's config."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    settings = {k: v for k, v in given.items() if k in fields}
    if resumed_config is None:
        backend = settings.pop("backend", None) or os.environ.get("VAE_BACKEND") or "numpy"
        return TrainConfig(model=model, backend=backend, **settings)
    saved = dict(resumed_config, hidden=tuple(resumed_config["hidden"]))
    if saved["model"] != model:
        raise UsageError(f"the checkpoint is of a {saved['model']}, and train_{model}.py trains a {model}")
    for name in TrainConfig.ARCHITECTURE:
        if name in settings and settings[name] != saved[name]:
            raise UsageError(
                f"the checkpoint was trained with --{name.replace('_', '-')} {saved[name]}, not {settings[name]}: "
                "leave the flag out to continue it"
            )
    return TrainConfig(**{**saved, **settings})


def build_model(config, input_dim, rng):
    if config.model == "vae":
        return VAE(input_dim, config.hidden, config.latent_dim, loss=config.loss, beta=config.beta, rng=rng)
    return AutoEncoder(input_dim, config.hidden, config.latent_dim, loss=config.loss, rng=rng)


def prepare_out(out):
    """Create `out` and prove it writable now, not after an hour of training."""
    try:
        os.makedirs(out, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as err:
        raise UsageError(f"cannot write to --out {out}: {err.strerror}") from None
    return out


def write_json(path, data):
    """Atomically, like the checkpoint: a reader never sees half a file."""
    with atomic_write(path, "w") as f:
        json.dump(data, f, indent=2)


class StopRequest:
    """Ctrl-C asks the loop to stop after the current step; a second Ctrl-C stops at once."""

    def __init__(self):
        self.requested = False

    def __enter__(self):
        self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nstopping after this step and saving a checkpoint (Ctrl-C again to quit at once)", file=sys.stderr)

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self.previous)

    def __call__(self):
        return self.requested


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


def load_checkpoint(path):
    arrays, meta = load_npz(path)
    if "config" not in meta or "epoch" not in meta:
        raise CheckpointError(f"{path}: not a checkpoint of train_ae.py or train_vae.py")
    return arrays, meta


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


def run(config, out, resume_from=None, show_progress=True):
    """Train per `config`, writing metrics, checkpoints and figures to `out`. Returns the history."""
    xp = get_backend(config.backend)
    data = load_dataset(config.dataset, config.data_dir)
    rng = Generator(config.seed, xp)
    model = build_model(config, data.input_dim, rng)
    optimizer = Adam(model.params, lr=config.lr)
    history, first_epoch, progress = [], 1, None
    if resume_from is not None:
        arrays, meta = resume_from
        progress = restore(arrays, meta, model, optimizer, rng, xp)
        history, first_epoch = meta["history"], meta["epoch"] + 1
        optimizer.lr = config.lr

    x_train, x_test = to_backend(data.x_train, xp), to_backend(data.x_test, xp)  # uint8, once per run
    checkpoint, metrics = os.path.join(out, "checkpoint.npz"), os.path.join(out, "metrics.json")
    print(f"{config.model.upper()} {data.input_dim}-{'-'.join(map(str, config.hidden))}-{config.latent_dim} "
          f"on {data.name} ({data.x_train.shape[0]} train / {data.x_test.shape[0]} test images), "
          f"{backend_name(xp)} backend, writing to {out}")

    with StopRequest() as stop:
        for epoch in range(first_epoch, config.epochs + 1):
            start = time.perf_counter()
            progress = progress or EpochProgress(order=rng.permutation(data.x_train.shape[0]))
            done_before = progress.done  # > 0 when continuing an interrupted epoch
            with ProgressBar(show_progress, data.x_train.shape[0], progress.done, epoch, config.epochs) as bar:
                train = train_epoch(model, optimizer, x_train, config.batch_size, data.scale, rng,
                                    progress=progress, on_progress=bar, should_stop=stop, epoch=epoch)
            seconds = time.perf_counter() - start
            if stop.requested and progress.done < data.x_train.shape[0]:
                save_checkpoint(checkpoint, config, model, optimizer, rng, history, epoch - 1, progress)
                print(f"stopped in epoch {epoch} after {progress.step} steps; checkpoint saved. Resume with:\n"
                      f"  python train_{config.model}.py --resume {checkpoint}")
                return history
            test = evaluate(model, x_test, 1000, data.scale, Generator(config.seed + 1, xp))
            record = {"epoch": epoch, "train_loss": train["loss"], "test_loss": test["loss"],
                      **{k: train[k] for k in ("recon", "kl") if k in train},
                      "test_recon": test["recon"], "seconds": seconds,
                      "samples_per_s": (progress.done - done_before) / seconds}
            history.append(record)
            progress = None
            save_checkpoint(checkpoint, config, model, optimizer, rng, history, epoch)
            write_json(metrics, {"config": dataclasses.asdict(config), "epochs": history})
            kl = f"  (recon {train['recon']:.2f} + kl {train['kl']:.2f})" if "kl" in train else ""
            print(f"epoch {epoch:3d}/{config.epochs}  train {train['loss']:.3f}{kl}  test {test['loss']:.3f}  "
                  f"{seconds:.1f} s  {record['samples_per_s']:.0f} img/s")
            if stop.requested:
                print(f"stopped after epoch {epoch}; resume with: python train_{config.model}.py --resume {checkpoint}")
                return history

    write_figures(model, data, xp, history, config, out)
    print(f"done: metrics, checkpoint and figures in {out}")
    return history


class ProgressBar:
    """A tqdm bar over the epoch's images (loss and img/s), or nothing."""

    def __init__(self, enabled, total, initial, epoch, epochs):
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="img", unit_scale=True, leave=False,
                            desc=f"epoch {epoch}/{epochs}", dynamic_ncols=True)

    def __enter__(self):
        return self

    def __call__(self, progress, means):
        if self.bar is not None:
            self.bar.update(progress.done - self.bar.n)
            self.bar.set_postfix(loss=f"{means['loss']:.3f}", refresh=False)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()


def write_figures(model, data, xp, history, config, out):
    """The lab's figures, and the ones every VAE tutorial shows."""
    name = "VAE" if config.model == "vae" else "Autoencoder"
    x_test = to_backend(data.x_test, xp)
    where = lambda f: os.path.join(out, f)  # noqa: E731
    plots.save_loss_curve(history, where("loss_curve.png"), title=f"{name} on {data.name}: loss per image")

    n_show = 64
    x = data.x_test[:n_show] * data.scale
    x_hat = to_numpy(apply_in_batches(model.reconstruct, x_test[:n_show, ...], n_show, data.scale))
    plots.save_reconstructions(x, x_hat, data.image_shape, where("reconstructions.png"),
                               title=f"{name}: test images (odd rows) and their reconstructions (even rows)")

    encode = (lambda b: model.encode(b)[0]) if config.model == "vae" else model.encode  # the VAE's code is mu
    z = to_numpy(apply_in_batches(encode, x_test, 1000, data.scale))
    plots.save_latent_scatter(z, data.y_test, data.class_names, where("latent_scatter.png"),
                              title=f"{name}: test set in latent space")

    if config.model == "vae":
        samples = to_numpy(model.sample(128, Generator(config.seed + 2, xp)))
        plots.save_samples(samples, data.image_shape, where("samples.png"), title="VAE: new images from z ~ N(0, I)")
    if config.latent_dim == 2:
        grid = to_backend(plots.latent_grid(21, (-4.0, 4.0)).astype(np.float32), xp)
        plots.save_manifold(to_numpy(model.decode(grid)), data.image_shape, where("manifold.png"), extent=(-4.0, 4.0),
                            title=f"{name}: decoded latent plane, z in [-4, 4]^2")


def main(model, argv=None):
    """The scripts' entry point: exit status 0 on success, 1 on a training failure, 2 on bad input."""
    parser = build_parser(model)
    given = vars(parser.parse_args(argv))
    try:
        resumed = None
        if "resume" in given:
            resumed = load_checkpoint(given["resume"])
            config = make_config(model, given, resumed[1]["config"])
            out = given.get("out", os.path.dirname(given["resume"]) or ".")
        else:
            config = make_config(model, given)
            out = given.get("out", os.path.join("runs", f"train_{model}-{time.strftime('%Y%m%d-%H%M%S')}"))
        prepare_out(out)
        run(config, out, resumed, show_progress=not given.get("no_progress", False))
    except (UsageError, DataError, BackendError, CheckpointError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    except NonFiniteLoss as err:
        parser.exit(1, f"{parser.prog}: error: {err}. Try a lower --lr; the last good checkpoint is kept.\n")
    return 0
