"""bench.py: how fast, and how well, does this library train the lab's VAE? Against PyTorch, and the matrix products.

Three kinds, timed on the same machine in one run, one epoch of each in turn (so that a
noisy neighbour slows all three alike), each in a process of its own (so that its peak
memory is its own):

  ours   models.VAE, nn.Adam and lab.train.train_epoch: this library
  torch  models/torch_vae.py: the same network, loss and optimiser in PyTorch, if installed
  gemm   the GEMM-bound limit: only the matrix products of a training step, read off the
         model's own Dense layers (step_products), on the backend's matmul. Everything
         else a step does (activations, loss, Adam, batching, Python) costs time on top,
         so no training step made of these products can take less.

The medians are over the measured epochs, after warm-up epochs that fill caches, memory
pools and thread pools; the ratios are taken round by round (see `ratios`).

With --quality it measures learning instead of speed: the test loss of ours and of
PyTorch after every epoch, over several seeds, the two trained at the same time
(`run_quality`).
"""

import argparse
import contextlib
import dataclasses
import importlib.util
import multiprocessing
import os
import resource
import statistics
import sys
import time
from typing import NamedTuple

from lab.cli import (ProgressBar, RunFailed, UsageError, add_common_flags, backend_name_from, bounded, default_out,
                     int_list, prepare_out, progress_wanted, run_main)
from lab.data import DataError, load_dataset
from lab.files import write_json, write_text
from lab.plots import save_bar_chart, save_curves_with_range
from lab.train import evaluate, train_epoch
from models import VAE
from nn import Adam, Dense, Generator, Sequential
from nn.backend import BackendError, get_backend, library_version, synchronize, to_backend

KINDS = ("ours", "torch", "gemm")
LABELS = {"ours": "ours", "torch": "PyTorch", "gemm": "GEMM limit"}

# The lab's VAE (Part Two): not flags, since they define what is measured.
HIDDEN, LATENT, LR = 512, 2, 5e-4

GEMM_REPEATS = 30  # timings of one step's products per epoch; their median is used
QUALITY_EPOCHS, QUALITY_SEEDS = 20, (0, 1, 2)  # the lab's run, three times


def _usable_cores():
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may run on (Linux)
    except AttributeError:
        return os.cpu_count() or 1


@dataclasses.dataclass
class BenchConfig:
    """A benchmark's settings. The defaults are the lab's training run."""

    dataset: str = "fashion-mnist"  # the lab's; "digits" for a quick run
    data_dir: str | None = None
    epochs: int = 5  # measured epochs: the reported numbers are their medians
    warmup: int = 1  # epochs run first and not measured
    batch_size: int = 128  # the lab's
    threads: int = dataclasses.field(default_factory=_usable_cores)  # BLAS and PyTorch threads, each kind
    backend: str = "numpy"  # "cupy": ours on the GPU, PyTorch on CUDA, cuBLAS for the limit
    skip_torch: bool = False
    seed: int = 0


def lab_vae(data, rng):
    """The VAE of train_vae.py's defaults, built as it builds it."""
    return VAE(data.input_dim, (HIDDEN,), LATENT, loss="mse", x_mean=data.mean_image, rng=rng)


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


def step_products(model, batch):
    """The matrix products of one training step of `model` on `batch` rows, read off its Dense layers.

    Each Dense does y = x @ W forward, dW = x.T @ dout backward, and dx = dout @ W.T unless
    it is a first layer (input_grad False: nothing upstream of the data needs a gradient).
    """
    products = []
    for part, module in model.parts.items():
        layers = module.layers if isinstance(module, Sequential) else [module]
        for i, layer in enumerate(layers):
            if not isinstance(layer, Dense):
                continue
            name, n_in, n_out = f"{part}.{i}", layer.in_features, layer.out_features
            products += [Product(f"{name}: x @ W", (batch, n_in), (n_in, n_out)),
                         Product(f"{name}: x.T @ dout", (batch, n_in), (batch, n_out), "a")]
            if layer.input_grad:
                products.append(Product(f"{name}: dout @ W.T", (batch, n_out), (n_in, n_out), "b"))
    return products


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


# --- One process per kind: set up, then one epoch per request ------------------------------


class Ours:
    def __init__(self, config, data, xp):
        self.rng = Generator(config.seed, xp)
        self.model = lab_vae(data, self.rng)
        self.optimizer = Adam(self.model.params, lr=LR)
        self.x = to_backend(data.x_train, xp)  # uint8 on the device; batches are converted as they are used
        self.x_test = to_backend(data.x_test, xp)
        self.config, self.scale, self.xp = config, data.scale, xp
        self.info = {"version": library_version(xp)}

    def epoch(self):
        return {"loss": train_epoch(self.model, self.optimizer, self.x, self.config.batch_size, self.scale,
                                    self.rng)["loss"]}

    def test_loss(self):
        """As train_vae.py measures it: noise from a generator seeded seed + 1, batches of 1000."""
        return evaluate(self.model, self.x_test, 1000, self.scale, Generator(self.config.seed + 1, self.xp))["loss"]


class Torch:
    def __init__(self, config, data, xp):
        import torch

        from models import torch_vae

        device = "cuda" if config.backend == "cupy" else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise BackendError("torch.cuda.is_available() is false: this PyTorch cannot use the GPU")
        torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        self.x, self.x_test = (torch.from_numpy(x).to(device).float().mul_(data.scale)  # in [0, 1]
                               for x in (data.x_train, data.x_test))
        self.model = torch_vae.TorchVAE(data.input_dim, HIDDEN, LATENT).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=LR)
        self.torch_vae, self.torch, self.config = torch_vae, torch, config
        self.info = {"version": f"torch {torch.__version__}", "threads": torch.get_num_threads()}

    def epoch(self):
        return {"loss": self.torch_vae.train_epoch(self.model, self.optimizer, self.x, self.config.batch_size)}

    def test_loss(self):
        generator = self.torch.Generator(self.x.device).manual_seed(self.config.seed + 1)
        return self.torch_vae.evaluate(self.model, self.x_test, 1000, generator)


class Gemm:
    def __init__(self, config, data, xp):
        self.xp, self.steps = xp, steps_per_epoch(data.x_train.shape[0], config.batch_size)
        self.model = lab_vae(data, Generator(config.seed, xp))
        self.info = {"version": f"{config.backend} matmul", "steps_by_batch_rows": self.steps,
                     "products_per_step": len(step_products(self.model, config.batch_size))}

    def epoch(self):
        """Not the time this takes: each step size (the full batch, and the last, smaller one)
        timed on its own, times its count."""
        seconds = flops = 0
        for rows, count in self.steps.items():
            t, f = gemm_seconds(self.xp, step_products(self.model, rows))
            seconds, flops = seconds + count * t, flops + count * f
        return {"flops": flops, "seconds": seconds}


def peak_rss_mb():
    """The peak resident set size of this process so far, in MB (10^6 bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak * (1 if sys.platform == "darwin" else 1024) / 1e6  # bytes on macOS, KiB on Linux


def serve(kind, config, conn):
    """A worker process: set up `kind`, send its info, then answer each "epoch" with that
    epoch's record; anything else ends it with the process's peak memory."""
    libraries_rss = peak_rss_mb()  # the interpreter and libraries, before data and model
    try:
        xp = get_backend(config.backend)
        data = load_dataset(config.dataset, config.data_dir)
        trainer = {"ours": Ours, "torch": Torch, "gemm": Gemm}[kind](config, data, xp)
    except (DataError, BackendError) as err:
        return conn.send({"error": str(err)})
    conn.send({"images": data.x_train.shape[0], "input_dim": data.input_dim, "libraries_rss_mb": libraries_rss,
               **trainer.info})
    while conn.recv() == "epoch":
        synchronize(xp)
        start = time.perf_counter()
        record = trainer.epoch()
        synchronize(xp)
        record = {"seconds": time.perf_counter() - start, **record}  # the GEMM limit gives its own seconds
        if hasattr(trainer, "test_loss"):  # after the clock stopped
            record["test_loss"] = trainer.test_loss()
        conn.send(record)
    conn.send({"peak_rss_mb": peak_rss_mb()})


@contextlib.contextmanager
def thread_env(threads):
    """Fix the thread count of every BLAS and OpenMP library numpy or torch may load, for the
    processes started inside: these variables are read once, when a library loads."""
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update({name: str(threads) for name in names})
    try:
        yield
    finally:
        for name, value in saved.items():
            os.environ.pop(name) if value is None else os.environ.__setitem__(name, value)


class Worker:
    """The parent's end of one worker process (`serve`)."""

    def __init__(self, kind, config):
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: its memory is its own
        self.kind, (self.conn, child) = kind, context.Pipe()
        with thread_env(config.threads):
            self.process = context.Process(target=serve, args=(kind, config, child), daemon=True)
            self.process.start()
        child.close()

    def send(self, request):
        self.conn.send(request)

    def ask(self, request=None):
        """The worker's reply, to `request` if given (else to the one sent last)."""
        if request is not None:
            self.send(request)
        try:
            reply = self.conn.recv()
        except EOFError:
            self.process.join()
            raise RunFailed(f"the {LABELS[self.kind]} worker stopped with exit status {self.process.exitcode} "
                            "(its error is printed above)") from None
        if "error" in reply:  # the data or the backend cannot be had: bad input
            raise UsageError(reply["error"])
        return reply

    def close(self):
        self.conn.close()
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()


def log_line(line):
    print(line, flush=True)


def run_benchmark(config, kinds=KINDS, log=log_line, show_progress=False, concurrently=False):
    """Run `kinds` side by side, one epoch of each in turn: {kind: summary}.

    A summary holds the worker's setup, every epoch's record, the seconds of each measured
    epoch in order ("measured": the same rounds for every kind), their median ("seconds"),
    samples_per_s, and the trainers' peak_rss_mb. `concurrently`: each round's epochs run at
    the same time instead, one process per kind; their seconds then mean nothing, only their
    test losses do (--quality: half the wall time with two kinds on two cores).
    """
    workers = {kind: Worker(kind, config) for kind in kinds}  # they load their data in parallel
    try:
        setups = {kind: worker.ask() for kind, worker in workers.items()}
        records = {kind: [] for kind in kinds}
        for epoch in range(1, config.warmup + config.epochs + 1):
            with ProgressBar(show_progress, len(kinds), desc=f"round {epoch}", unit="epoch") as bar:
                if concurrently:
                    for kind in kinds:
                        workers[kind].send("epoch")
                for done, kind in enumerate(kinds, start=1):
                    records[kind].append(workers[kind].ask(None if concurrently else "epoch"))
                    bar(done)
            if concurrently:  # the seconds mean nothing: report what was learnt
                log(f"epoch {epoch}: test loss " + ", ".join(
                    f"{LABELS[kind]} {records[kind][-1]['test_loss']:.2f}" for kind in kinds))
            else:
                what = "warm-up" if epoch <= config.warmup else "measured"
                log(f"epoch {epoch} ({what}): " + ", ".join(
                    f"{LABELS[kind]} {records[kind][-1]['seconds']:.2f} s" for kind in kinds))
        results = {}
        for kind, worker in workers.items():
            measured = [r["seconds"] for r in records[kind][config.warmup:]]
            seconds = statistics.median(measured)
            results[kind] = {**setups[kind], "epochs": records[kind], "measured": measured, "seconds": seconds,
                             "samples_per_s": setups[kind]["images"] / seconds, **worker.ask("finish")}
            if kind == "gemm":
                results[kind].pop("peak_rss_mb")  # not a training run
                results[kind]["flops"] = records[kind][-1]["flops"]
                results[kind]["gflops_per_s"] = results[kind]["flops"] / seconds / 1e9
            else:
                results[kind]["test_loss"] = records[kind][-1]["test_loss"]
        return results
    finally:
        for worker in workers.values():
            worker.close()


def ratios(results):
    """ours/PyTorch and ours/limit, in seconds per epoch (how many times longer ours takes).

    Each is taken round by round, ours against the other's epoch of the same round, and
    summarised as {"median", "min", "max", "rounds"}. Epochs of one round run back to back,
    so a slowdown of a shared machine that outlasts a round slows both and cancels out of
    their ratio; a ratio of the two medians would keep it when the slow rounds differ.
    """
    ours = results.get("ours", {}).get("measured")
    summary = {}
    for other in ("torch", "gemm"):
        theirs = results.get(other, {}).get("measured")
        if ours and theirs:
            rounds = [a / b for a, b in zip(ours, theirs)]
            summary[f"ours/{other}"] = {"median": statistics.median(rounds), "min": min(rounds),
                                        "max": max(rounds), "rounds": rounds}
    return summary


def run_quality(config, seeds, kinds=("ours", "torch"), log=log_line, show_progress=False):
    """The test loss per image after each epoch, each kind trained from each seed, the kinds
    concurrently: {kind: [[loss after epoch 1, 2, ...] for each seed]}."""
    curves = {kind: [] for kind in kinds}
    for seed in seeds:
        log(f"seed {seed}:")
        results = run_benchmark(dataclasses.replace(config, seed=seed, warmup=0), kinds, log, show_progress,
                                concurrently=True)
        for kind in kinds:
            curves[kind].append([record["test_loss"] for record in results[kind]["epochs"]])
    return curves


def spread(losses):
    """'mean ± sd (lowest - highest)' of several seeds' losses: sd is the sample standard
    deviation (n - 1), the seed-to-seed spread; with one seed, only the loss."""
    if len(losses) == 1:
        return f"{losses[0]:.2f}"
    return (f"{statistics.mean(losses):.2f} ± {statistics.stdev(losses):.2f} "
            f"({min(losses):.2f} - {max(losses):.2f})")


def quality_table(curves):
    """The curves as a Markdown table: each kind's `spread` over seeds per epoch."""
    kinds = list(curves)
    rows = ["| epoch | " + " | ".join(f"{LABELS[k]}: mean ± sd (lowest - highest)" for k in kinds)
            + (" | ours - PyTorch |" if len(kinds) == 2 else " |"),
            "|---" * (len(kinds) + 1 + (len(kinds) == 2)) + "|"]
    losses = {k: list(zip(*curves[k])) for k in kinds}  # per epoch: the seeds' losses
    for epoch in range(len(losses[kinds[0]])):
        cells = [spread(losses[k][epoch]) for k in kinds]
        if len(kinds) == 2:
            cells.append(f"{statistics.mean(losses[kinds[0]][epoch]) - statistics.mean(losses[kinds[1]][epoch]):+.2f}")
        rows.append(f"| {epoch + 1} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def format_table(config, results):
    """The results as readable text."""
    first = next(r for r in results.values() if "skipped" not in r)
    device = "gpu" if config.backend == "cupy" else "cpu"
    lines = [f"VAE {first['input_dim']}-{HIDDEN}-{LATENT} (MSE + KL), Adam lr {LR:g}, batch {config.batch_size}, "
             f"float32, {config.dataset}: {first['images']} images per epoch",
             f"backend {config.backend}, {config.threads} threads; medians of {config.epochs} epochs "
             f"after {config.warmup} warm-up, one epoch of each in turn", "",
             f"{'':34s}{'s/epoch':>9s}{'samples/s':>11s}{'peak RSS':>11s}{'test loss':>11s}"]
    for kind, r in ((k, results[k]) for k in KINDS if k in results):
        if "skipped" in r:
            lines.append(f"{LABELS[kind]:34s}skipped: {r['skipped']}")
            continue
        rss = f"{r['peak_rss_mb']:.0f} MB" if "peak_rss_mb" in r else "-"
        loss = f"{r['test_loss']:.2f}" if "test_loss" in r else "-"
        label = f"{LABELS[kind]} ({r['version']}, {device})"
        lines.append(f"{label:34s}{r['seconds']:9.3f}{r['samples_per_s']:11.0f}{rss:>11s}{loss:>11s}")
    for kind, r in results.items():
        if "measured" in r:
            lines.append(f"    {LABELS[kind]}, s per measured epoch in order: "
                         + " ".join(f"{s:.2f}" for s in r["measured"]))
    lines.append("")
    for name, r in ratios(results).items():
        lines.append(f"ours / {LABELS[name.split('/')[1]]}: {r['median']:.2f}x the time per epoch "
                     f"(median of {len(r['rounds'])} rounds, each {r['min']:.2f}x to {r['max']:.2f}x)")
    if "seconds" in results.get("gemm", {}):
        g = results["gemm"]
        steps = ", ".join(f"{count} x {rows} rows" for rows, count in g["steps_by_batch_rows"].items())
        lines.append(f"GEMM limit: {g['products_per_step']} products per step, {steps}, "
                     f"{g['flops'] / 1e9:.1f} GFLOP per epoch at {g['gflops_per_s']:.1f} GFLOP/s")
    for kind in ("ours", "torch"):
        if "libraries_rss_mb" in results.get(kind, {}):
            lines.append(f"{LABELS[kind]}: {results[kind]['libraries_rss_mb']:.0f} MB of the peak RSS "
                         "is the interpreter and libraries, before data and model")
    if config.backend == "cupy":
        lines.append("peak RSS is host memory; GPU memory is not measured")
    return "\n".join(lines)


def torch_installed():
    """True when PyTorch can be imported (found without importing it: the parent never needs it)."""
    return importlib.util.find_spec("torch") is not None


def main(argv=None):
    """bench.py's entry point; exit statuses as in lab.cli.run_main."""
    d = BenchConfig()
    p = argparse.ArgumentParser(prog="bench.py", description="Time the lab's VAE training: this library against "
                                                             "PyTorch and against the GEMM-bound limit; or, with "
                                                             "--quality, compare how fast the two learn.")
    add_common_flags(p, d)
    p.add_argument("--epochs", type=bounded(int, 1),
                   help=f"measured epochs (default: {d.epochs}; with --quality, {QUALITY_EPOCHS})")
    p.add_argument("--warmup", type=bounded(int, 0), default=d.warmup,
                   help=f"epochs run first and not measured (default: {d.warmup})")
    p.add_argument("--batch-size", type=bounded(int, 1), default=d.batch_size, help=f"default: {d.batch_size}")
    p.add_argument("--threads", type=bounded(int, 1), default=d.threads,
                   help=f"threads for BLAS and PyTorch (default: the {d.threads} cores this process may use)")
    p.add_argument("--skip-torch", action="store_true", help="do not measure PyTorch")
    p.add_argument("--quality", action="store_true",
                   help="measure learning, not speed: the test loss after each epoch, ours and PyTorch, per seed")
    p.add_argument("--seeds", type=int_list("seeds", "0,1,2", low=0), default=QUALITY_SEEDS,
                   help=f"with --quality: the seeds, comma-separated (default: {','.join(map(str, QUALITY_SEEDS))})")
    args = vars(p.parse_args(argv))
    out, no_progress = args.pop("out") or default_out(p.prog), args.pop("no_progress")
    quality, seeds = args.pop("quality"), args.pop("seeds")
    args["backend"] = backend_name_from(args["backend"])
    args["epochs"] = args["epochs"] or (QUALITY_EPOCHS if quality else d.epochs)
    config = BenchConfig(**{k: v for k, v in args.items() if v is not None})

    def body():
        get_backend(config.backend)  # a missing CuPy or GPU is reported here, before any worker starts
        kinds, skipped = list(KINDS), {}
        if config.skip_torch or not torch_installed():
            kinds.remove("torch")
            if not config.skip_torch:
                skipped["torch"] = {"skipped": "PyTorch is not installed (it is optional: pip install torch)"}
        prepare_out(out)
        if quality:
            return write_quality(config, seeds, [k for k in kinds if k != "gemm"], out, progress_wanted(no_progress))
        results = {**run_benchmark(config, kinds, show_progress=progress_wanted(no_progress)), **skipped}
        print()
        print(format_table(config, results))
        write_json(os.path.join(out, "results.json"),
                   {"config": dataclasses.asdict(config), "results": results, "ratios": ratios(results),
                    "python": sys.version.split()[0], "platform": sys.platform})
        kinds_timed = [k for k in ("ours", "torch") if "seconds" in results.get(k, {})]
        save_bar_chart([LABELS[k] for k in kinds_timed], [results[k]["seconds"] for k in kinds_timed],
                       os.path.join(out, "seconds_per_epoch.png"),
                       title=f"VAE training on {config.dataset}, {config.backend}, {config.threads} threads",
                       ylabel="seconds per epoch (median)", reference=results.get("gemm", {}).get("seconds"),
                       reference_label="GEMM limit")
        print(f"\nresults.json and seconds_per_epoch.png in {out}")

    return run_main(p, body)


def write_quality(config, seeds, kinds, out, show_progress):
    """bench.py --quality: run_quality, then quality.json, quality.md and quality.png in `out`."""
    curves = run_quality(config, seeds, kinds, show_progress=show_progress)
    table = quality_table(curves)
    print()
    print(table)
    write_json(os.path.join(out, "quality.json"), {"config": dataclasses.asdict(config), "seeds": list(seeds),
                                                   "test_loss": curves})
    write_text(os.path.join(out, "quality.md"),
               f"# Test loss per image after each epoch, seeds {', '.join(map(str, seeds))}\n\n"
               f"The lab's VAE on {config.dataset}, batch {config.batch_size}, Adam lr {LR:g}.\n\n{table}\n")
    save_curves_with_range({LABELS[k]: curves[k] for k in kinds}, os.path.join(out, "quality.png"),
                           title=f"The lab's VAE on {config.dataset}: test loss, seeds "
                                 f"{', '.join(map(str, seeds))}", ylabel="test loss per image")
    print(f"\nquality.json, quality.md and quality.png in {out}")
