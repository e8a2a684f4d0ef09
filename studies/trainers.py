"""What the benchmark times: one Kind record each (KINDS), and the trainer each builds in its worker.

  ours   models.VAE, nn.Adam and lab.train.fit: this library
  torch  models/torch_vae.py: the same network, loss and optimiser in PyTorch, if installed
  gemm   the GEMM-bound limit: only the matrix products of a training step (studies/gemm.py)

A trainer is built as trainer(config, data, xp) in its worker (config: a BenchConfig,
studies/flags.py): `info` (a dict) describes it, epoch() runs one epoch and returns its record,
and a training kind's test_loss() gives the test loss per image, measured as train_vae.py
measures it. The model, optimiser and batch size are the lab's (lab.config.LAB).
"""

import dataclasses
import importlib.util
from collections.abc import Callable

from nn import Adam, Generator
from nn.backend import BackendError, library_version, to_backend

from lab.config import build_model, named
from lab.train import evaluate, fit
from .gemm import gemm_seconds, step_products, steps_per_epoch


class Ours:
    """This library: models.VAE from lab/config.py, nn.Adam, lab.train.fit."""

    def __init__(self, config, data, xp):
        lab, self.rng = config.train_config(), Generator(config.seed, xp)
        self.model = build_model(lab, data, self.rng)
        x = to_backend(data.x_train, xp)  # uint8 on the device; batches are converted as they are used
        self.x_test = to_backend(data.x_test, xp)
        self.epochs = fit(self.model, Adam(self.model.params, lr=lab.lr), x, config.batch_size, data.scale, self.rng,
                          epochs=config.warmup + config.epochs)
        self.config, self.scale, self.xp = config, data.scale, xp
        self.info = {"version": library_version(xp)}

    def epoch(self):
        return {"loss": next(self.epochs).means["loss"]}

    def test_loss(self):
        """Noise from a generator seeded seed + 1, batches of 1000: as train_vae.py measures it."""
        return evaluate(self.model, self.x_test, 1000, self.scale, Generator(self.config.seed + 1, self.xp))["loss"]


class Torch:
    """The same network, loss and optimiser in PyTorch (models/torch_vae.py), on the CPU or CUDA."""

    def __init__(self, config, data, xp):
        import torch

        from models import torch_vae

        device = "cuda" if config.backend == "cupy" else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise BackendError("torch.cuda.is_available() is false: this PyTorch cannot use the GPU")
        torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        lab = config.train_config()
        self.x, self.x_test = (torch.from_numpy(x).to(device).float().mul_(data.scale)  # in [0, 1]
                               for x in (data.x_train, data.x_test))
        self.model = torch_vae.twin(lab, data.input_dim, data.image_shape).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lab.lr)
        self.torch_vae, self.torch, self.config = torch_vae, torch, config
        self.info = {"version": f"torch {torch.__version__}", "threads": torch.get_num_threads()}

    def epoch(self):
        return {"loss": self.torch_vae.train_epoch(self.model, self.optimizer, self.x, self.config.batch_size)}

    def test_loss(self):
        generator = self.torch.Generator(self.x.device).manual_seed(self.config.seed + 1)
        return self.torch_vae.evaluate(self.model, self.x_test, 1000, generator)


class Gemm:
    """The GEMM-bound limit: one epoch's matrix products, read off the lab's model, timed alone."""

    def __init__(self, config, data, xp):
        self.xp, self.steps = xp, steps_per_epoch(data.x_train.shape[0], config.batch_size)
        model = build_model(config.train_config(), data, Generator(config.seed, xp))
        self.products = {rows: step_products(model, rows, xp.zeros((rows, data.input_dim), dtype=xp.float32))
                         for rows in self.steps}  # for each step size: the full batch, the last
        self.info = {"version": f"{config.backend} matmul", "steps_by_batch_rows": self.steps,
                     "products_per_step": len(self.products[config.batch_size]),
                     "flops": sum(count * sum(p.flops() for p in self.products[rows])
                                  for rows, count in self.steps.items())}  # of one epoch

    def epoch(self):
        """Not the time this takes: each step size (the full batch, and the last, smaller one)
        timed on its own, times its count."""
        return {"seconds": sum(count * gemm_seconds(self.xp, self.products[rows])[0]
                               for rows, count in self.steps.items())}


def training_note(kind, result):
    """How much of a training kind's peak memory it had before it loaded anything."""
    return (f"{kind.label}: {result['libraries_rss_mb']:.0f} MB of the peak RSS is the interpreter and libraries, "
            "before data and model")


def gemm_note(kind, result):
    """What the GEMM limit is made of, and the rate it ran at."""
    steps = ", ".join(f"{count} x {rows} rows" for rows, count in result["steps_by_batch_rows"].items())
    return (f"{kind.label}: {result['products_per_step']} products per step, {steps}, "
            f"{result['flops'] / 1e9:.1f} GFLOP per epoch at {result['gflops_per_s']:.1f} GFLOP/s")


@dataclasses.dataclass(frozen=True)
class Kind:
    """One thing the benchmark times: everything the benchmark and the quality study know of it.

    key: its name in results.json, --skip and the ratios ("ours/torch"); label: in the table,
    the log and the figures; trainer: built in the worker (see above); note(kind, result):
    its line under the table.
    trains: a training run: its test loss after every epoch (off the clock), its peak RSS,
      a bar in the figure. Otherwise a bound on the time, a dashed line in the figure.
    times_itself: its epoch() returns its own "seconds", instead of the clock around it.
    counts_flops: its info gives the FLOPs of an epoch ("flops"), so GFLOP/s are reported.
    needs: a module it imports that the project does not require; without it, it is skipped.
    """

    key: str
    label: str
    trainer: type
    note: Callable
    trains: bool = True
    times_itself: bool = False
    counts_flops: bool = False
    needs: str | None = None


KINDS = (Kind("ours", "ours", Ours, training_note),
         Kind("torch", "PyTorch", Torch, training_note, needs="torch"),
         Kind("gemm", "GEMM limit", Gemm, gemm_note, trains=False, times_itself=True, counts_flops=True))


def kind_named(key):
    """The Kind called `key`."""
    return named(KINDS, key, "kind")


def importable(module):
    """True when `module` can be imported (found without importing it: the parent never needs it)."""
    return importlib.util.find_spec(module) is not None


def select_kinds(skip=(), kinds=KINDS):
    """(the kinds to run, {key: {"skipped": why}} for those that cannot): those in `skip` are left out."""
    chosen, skipped = [], {}
    for kind in kinds:
        if kind.key in skip:
            continue
        if kind.needs and not importable(kind.needs):
            skipped[kind.key] = {"skipped": f"{kind.label} is not installed (it is optional: pip install {kind.needs})"}
        else:
            chosen.append(kind)
    return chosen, skipped
