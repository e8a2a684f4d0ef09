"""How fast this library trains the lab's VAE: against PyTorch, and against the matrix products.

Three kinds, one Kind record each (KINDS), each run in a worker process of its own
(studies/workers.py: its peak memory is its own), one epoch of each in turn, so that a noisy
neighbour slows all of them alike:

  ours   models.VAE, nn.Adam and lab.train.train_epoch: this library
  torch  models/torch_vae.py: the same network, loss and optimiser in PyTorch, if installed
  gemm   the GEMM-bound limit: only the matrix products of a training step, read off the
         model's own Dense layers (step_products), on the backend's matmul. Everything
         else a step does (activations, loss, Adam, batching, Python) costs time on top,
         so no training step made of these products can take less.

The model, optimiser and batch size are the lab's (lab/config.py, `lab_config`). The medians
are over the measured epochs, after warm-up epochs that fill caches, memory pools and thread
pools; the ratios are taken round by round (`ratios`). The quality study (quality.py) runs
the training kinds concurrently and keeps their test loss after every epoch (`run_quality`).
"""

import argparse
import dataclasses
import importlib.util
import statistics
import time
from collections.abc import Callable
from typing import NamedTuple

from models.conv import ARCHS
from nn import Adam, Conv2d, ConvTranspose2d, Dense, Generator, Sequential
from nn.backend import BackendError, get_backend, library_version, synchronize, to_backend

from lab.cli import ProgressBar, bounded, int_list
from lab.config import build_model, describe, lab_config, named
from lab.data import DataError, load_dataset
from lab.train import evaluate, train_epoch
from .workers import Worker, usable_cores

LAB = lab_config()  # the lab's run: the model, optimiser and batch size that are measured
GEMM_REPEATS = 30  # timings of one step's products per epoch; their median is used


@dataclasses.dataclass
class BenchConfig:
    """A benchmark's settings. The model and optimiser are not among them: they are the lab's."""

    dataset: str = LAB.dataset  # "digits" for a quick run
    data_dir: str | None = None
    epochs: int = 5  # measured epochs: the reported numbers are their medians
    warmup: int = 1  # epochs run first and not measured
    batch_size: int = LAB.batch_size
    threads: int = dataclasses.field(default_factory=usable_cores)  # BLAS and PyTorch threads, each kind
    backend: str = "numpy"  # "cupy": ours on the GPU, PyTorch on CUDA, cuBLAS for the limit
    arch: str = LAB.arch  # the lab's MLP, or "conv" (models/conv.py)
    channels: tuple = LAB.channels  # arch "conv": the convolutions' output channels
    latent_dim: int = LAB.latent_dim
    skip: tuple = ()  # keys of kinds not to run
    seed: int = 0

    @property
    def network(self):
        """What is measured, in a title: "the lab's VAE", or "the conv VAE (channels 32,64, latent 2)"."""
        if (self.arch, self.latent_dim) == (LAB.arch, LAB.latent_dim):
            return "the lab's VAE"
        widths = "" if self.arch == "mlp" else f"channels {','.join(map(str, self.channels))}, "
        return f"the {self.arch} VAE ({widths}latent {self.latent_dim})"

    def train_config(self):
        """The lab's TrainConfig, on this benchmark's data, batch size, seed and backend."""
        return lab_config(dataset=self.dataset, data_dir=self.data_dir, batch_size=self.batch_size, seed=self.seed,
                          backend=self.backend, arch=self.arch, channels=self.channels, latent_dim=self.latent_dim)


# --- The GEMM-bound limit -----------------------------------------------------------------


class Product(NamedTuple):
    """One matrix product a @ b of a training step, with a and b as the model stores them.

    transpose: "a" or "b" when the product reads that array transposed (a view, as in
    x.T @ dout), None when neither.
    """

    name: str
    a_shape: tuple
    b_shape: tuple
    transpose: str | None = None

    def mkn(self):
        """(M, K, N) of the product (M, K) @ (K, N)."""
        m, k = self.a_shape[::-1] if self.transpose == "a" else self.a_shape
        k_b, n = self.b_shape[::-1] if self.transpose == "b" else self.b_shape
        assert k == k_b, f"{self.name}: inner sizes {k} and {k_b} differ"
        return m, k, n

    def flops(self):
        """2 M K N: one multiply and one add per term of each of the M N dot products of length K."""
        m, k, n = self.mkn()
        return 2 * m * k * n


def step_products(model, batch, x=None):
    """The matrix products of one training step of `model` on `batch` rows, read off its layers.

    Each Dense does y = x @ W forward, dW = x.T @ dout backward, and dx = dout @ W.T unless
    it is a first layer (input_grad False: nothing upstream of the data needs a gradient).
    A Conv2d does W_mat @ patches, dout_mat @ patches.T and W_mat.T @ dout_mat; a
    ConvTranspose2d W_mat.T @ x_mat, x_mat @ dpatches.T and W_mat @ dpatches (nn/conv.py).
    Their sizes depend on the image's, so a model with convolutions first runs forward on x,
    a batch of `batch` rows, and each convolution's sizes are read off what it kept.
    """
    if x is not None:
        model.forward(x)
    products = []
    for part, module in model.parts.items():
        layers = module.layers if isinstance(module, Sequential) else [module]
        for i, layer in enumerate(layers):
            products += layer_products(f"{part}.{i}", layer, batch)
    return products


def layer_products(name, layer, batch):
    """The products of one layer's forward and backward (none for a layer without weights)."""
    if isinstance(layer, Dense):
        n_in, n_out = layer.in_features, layer.out_features
        forward = [Product(f"{name}: x @ W", (batch, n_in), (n_in, n_out)),
                   Product(f"{name}: x.T @ dout", (batch, n_in), (batch, n_out), "a")]
        return forward + [Product(f"{name}: dout @ W.T", (batch, n_out), (n_in, n_out), "b")] * layer.input_grad
    if isinstance(layer, Conv2d):
        (rows, columns), out = layer.patches.shape, layer.out_channels  # (in k k, L N)
        return [Product(f"{name}: W_mat @ patches", (out, rows), (rows, columns)),
                Product(f"{name}: dout_mat @ patches.T", (out, columns), (rows, columns), "b")] + [
                Product(f"{name}: W_mat.T @ dout_mat", (out, rows), (out, columns), "a")] * layer.input_grad
    if isinstance(layer, ConvTranspose2d):
        (n_in, columns), k = layer.x_mat.shape, layer.kernel_size  # (in, H W N)
        rows = layer.out_channels * k * k
        return [Product(f"{name}: W_mat.T @ x_mat", (n_in, rows), (n_in, columns), "a"),
                Product(f"{name}: x_mat @ dpatches.T", (n_in, columns), (rows, columns), "b")] + [
                Product(f"{name}: W_mat @ dpatches", (n_in, rows), (rows, columns))] * layer.input_grad
    return []


def gemm_seconds(xp, products, repeats=GEMM_REPEATS, seed=0, dtype="float32"):
    """(median seconds of one pass over `products` with xp's matmul, their FLOP count)."""
    rng = Generator(seed, xp)
    operands = []
    for p in products:
        a, b = rng.normal(p.a_shape, dtype), rng.normal(p.b_shape, dtype)
        operands.append((a.T if p.transpose == "a" else a, b.T if p.transpose == "b" else b))
    times = []
    for _ in range(repeats):
        synchronize(xp)
        start = time.perf_counter()
        for a, b in operands:
            a @ b  # allocates its result, as the model's products do
        synchronize(xp)
        times.append(time.perf_counter() - start)
    return statistics.median(times), sum(p.flops() for p in products)


def steps_per_epoch(n, batch_size):
    """{batch rows: how many steps of that size}: full batches, and the smaller last one if any."""
    full, rest = divmod(n, batch_size)
    return {size: count for size, count in ((batch_size, full), (rest, 1)) if size and count}


# --- The kinds: what runs in each worker, and one record each -----------------------------
# A trainer is built as trainer(config, data, xp) in its worker: `info` (a dict) describes
# it, epoch() runs one epoch and returns its record, and a training kind's test_loss() gives
# the test loss per image, measured as train_vae.py measures it.


class Ours:
    """This library: models.VAE from lab/config.py, nn.Adam, lab.train.train_epoch."""

    def __init__(self, config, data, xp):
        lab, self.rng = config.train_config(), Generator(config.seed, xp)
        self.model = build_model(lab, data, self.rng)
        self.optimizer = Adam(self.model.params, lr=lab.lr)
        self.x = to_backend(data.x_train, xp)  # uint8 on the device; batches are converted as they are used
        self.x_test = to_backend(data.x_test, xp)
        self.config, self.scale, self.xp = config, data.scale, xp
        self.info = {"version": library_version(xp)}

    def epoch(self):
        return {"loss": train_epoch(self.model, self.optimizer, self.x, self.config.batch_size, self.scale,
                                    self.rng)["loss"]}

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


def installed(module):
    """True when `module` can be imported (found without importing it: the parent never needs it)."""
    return importlib.util.find_spec(module) is not None


def select_kinds(skip=(), kinds=KINDS):
    """(the kinds to run, {key: {"skipped": why}} for those that cannot): those in `skip` are left out."""
    chosen, skipped = [], {}
    for kind in kinds:
        if kind.key in skip:
            continue
        if kind.needs and not installed(kind.needs):
            skipped[kind.key] = {"skipped": f"{kind.label} is not installed (it is optional: pip install {kind.needs})"}
        else:
            chosen.append(kind)
    return chosen, skipped


def add_flags(parser, defaults):
    """The flags the benchmark and the quality study share, beside lab.cli's common ones."""
    def kind_keys(text):
        keys = tuple(text.split(","))
        for key in keys:
            try:
                kind_named(key)
            except ValueError as err:
                raise argparse.ArgumentTypeError(str(err)) from None
        return keys

    parser.add_argument("--batch-size", type=bounded(int, 1), help=f"default: the lab's, {defaults.batch_size}")
    parser.add_argument("--threads", type=bounded(int, 1),
                        help=f"threads for BLAS and PyTorch (default: the {defaults.threads} cores this may use)")
    parser.add_argument("--arch", choices=ARCHS, help=f"the network (default: {defaults.arch}, the lab's)")
    parser.add_argument("--channels", type=int_list("channel counts", "32,64"),
                        help=f"--arch conv: the convolutions' channels (default: {','.join(map(str, defaults.channels))})")
    parser.add_argument("--latent-dim", type=bounded(int, 1), help=f"default: the lab's, {defaults.latent_dim}")
    parser.add_argument("--skip", metavar="KIND[,KIND]", type=kind_keys,
                        help=f"kinds not to run, of {', '.join(k.key for k in KINDS)} (say, --skip torch)")


# --- Running them -------------------------------------------------------------------------


class Measured:
    """A kind's job in its worker (studies/workers.py): each step() is one epoch of its trainer,
    timed, then, off the clock, its test loss if it trains."""

    def __init__(self, kind, config):
        self.xp = get_backend(config.backend)
        data = load_dataset(config.dataset, config.data_dir)
        self.kind, self.trainer = kind, kind.trainer(config, data, self.xp)
        self.info = {"images": data.x_train.shape[0], "input_dim": data.input_dim,
                     "model": describe(config.train_config(), data), **self.trainer.info}

    def step(self):
        synchronize(self.xp)
        start = time.perf_counter()
        record = self.trainer.epoch()
        synchronize(self.xp)
        clock, own = time.perf_counter() - start, record.pop("seconds", None)
        record = {"seconds": own if self.kind.times_itself else clock, **record}
        if self.kind.trains:
            record["test_loss"] = self.trainer.test_loss()
        return record


def summarise(kind, setup, records, finish, warmup):
    """A kind's results: its setup, every epoch's record, the seconds of each measured epoch in
    order ("measured"), their median ("seconds") and the rates at that median; a training kind
    adds its last test loss and its worker's peak RSS."""
    measured = [r["seconds"] for r in records[warmup:]]
    seconds = statistics.median(measured)
    summary = {**setup, "epochs": records, "measured": measured, "seconds": seconds,
               "samples_per_s": setup["images"] / seconds}
    if kind.counts_flops:
        summary["gflops_per_s"] = setup["flops"] / seconds / 1e9
    if kind.trains:
        summary.update(peak_rss_mb=finish["peak_rss_mb"], test_loss=records[-1]["test_loss"])
    return summary


def print_now(line):
    print(line, flush=True)  # before a worker's error, if one follows


def run_benchmark(config, kinds=KINDS, log=print_now, show_progress=False, concurrently=False):
    """Run `kinds` side by side, one epoch of each in turn: {key: `summarise`'s results}.

    concurrently: each round's epochs run at the same time instead, one process per kind;
    their seconds then mean nothing, only their test losses do (the quality study: half the
    wall time with two kinds on two cores), and the log gives those.
    """
    workers = {kind: Worker(kind.label, Measured, (kind, config), config.threads, expected=(DataError, BackendError))
               for kind in kinds}  # they load their data in parallel
    try:
        setups = {kind: worker.ask() for kind, worker in workers.items()}
        records = {kind: [] for kind in kinds}
        for epoch in range(1, config.warmup + config.epochs + 1):
            with ProgressBar(show_progress, len(kinds), desc=f"round {epoch}", unit="epoch") as bar:
                if concurrently:
                    for worker in workers.values():
                        worker.send("step")
                for done, (kind, worker) in enumerate(workers.items(), start=1):
                    records[kind].append(worker.ask(None if concurrently else "step"))
                    bar(done)
            if concurrently:
                log(f"epoch {epoch}: test loss " + ", ".join(
                    f"{kind.label} {records[kind][-1]['test_loss']:.2f}" for kind in kinds))
            else:
                what = "warm-up" if epoch <= config.warmup else "measured"
                log(f"epoch {epoch} ({what}): " + ", ".join(
                    f"{kind.label} {records[kind][-1]['seconds']:.2f} s" for kind in kinds))
        return {kind.key: summarise(kind, setups[kind], records[kind], worker.ask("finish"), config.warmup)
                for kind, worker in workers.items()}
    finally:
        for worker in workers.values():
            worker.close()


def ratios(results, kinds=KINDS):
    """The first kind's time per epoch (ours) over each other's: how many times longer ours takes.

    Each is taken round by round, ours against the other's epoch of the same round, and
    summarised as {"median", "min", "max", "rounds"}. Epochs of one round run back to back,
    so a slowdown of a shared machine that outlasts a round slows both and cancels out of
    their ratio; a ratio of the two medians would keep it when the slow rounds differ.
    """
    subject, *others = kinds
    ours, summary = results.get(subject.key, {}).get("measured"), {}
    for other in others:
        theirs = results.get(other.key, {}).get("measured")
        if ours and theirs:
            rounds = [a / b for a, b in zip(ours, theirs)]
            summary[f"{subject.key}/{other.key}"] = {"median": statistics.median(rounds), "min": min(rounds),
                                                     "max": max(rounds), "rounds": rounds}
    return summary


def format_table(config, results, kinds=KINDS):
    """The results as readable text: a row per kind, the measured epochs, the ratios, the notes."""
    lab, device = config.train_config(), "gpu" if config.backend == "cupy" else "cpu"
    first = next(r for r in results.values() if "skipped" not in r)
    lines = [f"{first['model']} ({lab.loss.upper()} + KL), "
             f"Adam lr {lab.lr:g}, batch {config.batch_size}, float32, {config.dataset}: {first['images']} images "
             f"per epoch", f"backend {config.backend}, {config.threads} threads; medians of {config.epochs} epochs "
             f"after {config.warmup} warm-up, one epoch of each in turn", "",
             f"{'':34s}{'s/epoch':>9s}{'samples/s':>11s}{'peak RSS':>11s}{'test loss':>11s}"]
    ran = [(kind, results[kind.key]) for kind in kinds if "seconds" in results.get(kind.key, {})]
    for kind in kinds:
        r = results.get(kind.key, {})
        if "skipped" in r:
            lines.append(f"{kind.label:34s}skipped: {r['skipped']}")
        elif r:
            rss, loss = (f"{r['peak_rss_mb']:.0f} MB", f"{r['test_loss']:.2f}") if kind.trains else ("-", "-")
            label = f"{kind.label} ({r['version']}, {device})"
            lines.append(f"{label:34s}{r['seconds']:9.3f}{r['samples_per_s']:11.0f}{rss:>11s}{loss:>11s}")
    lines += [f"    {kind.label}, s per measured epoch in order: " + " ".join(f"{s:.2f}" for s in r["measured"])
              for kind, r in ran] + [""]
    (subject, *others), pairs = kinds, ratios(results, kinds)
    for kind in others:
        if r := pairs.get(f"{subject.key}/{kind.key}"):
            lines.append(f"{subject.label} / {kind.label}: {r['median']:.2f}x the time per epoch "
                         f"(median of {len(r['rounds'])} rounds, each {r['min']:.2f}x to {r['max']:.2f}x)")
    lines += [kind.note(kind, r) for kind, r in ran]
    if config.backend == "cupy":
        lines.append("peak RSS is host memory; GPU memory is not measured")
    return "\n".join(lines)
