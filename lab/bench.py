"""How fast is the lab's VAE, trained by this library? Against PyTorch, and against the matrix products.

Three measurements, taken on the same machine in one run, one epoch of each in turn
(so that a noisy neighbour slows all three alike), each in its own process:

  ours   this library: VAE(D, (512,), 2, loss="mse"), Adam(lr=5e-4), lab.train.train_epoch
  torch  the same network, loss and optimiser in plain eager PyTorch, if it is installed
  gemm   the GEMM-bound limit: only the 14 matrix products of a training step, with the
         backend's own matmul on float32 arrays of the step's shapes, times the steps of
         an epoch. Every other operation (activations, loss, Adam, batching, Python) costs
         time on top, so a training step made of these products cannot take less.

Each framework trains in a separate process so that its peak resident memory is its own.
The parent starts the workers, sends each "epoch" in turn and reads one JSON line back:

    python -m lab.bench --worker ours --dataset fashion-mnist ...   (started by run_benchmark)
    <- {"ready": true, ...}   -> epoch   <- {"seconds": 3.2, "loss": 30.7}   ...   -> finish   <- {"peak_rss_mb": ...}

The reported numbers are medians over the measured epochs, after the warm-up epochs
(which fill caches, the memory allocator's pools and the BLAS thread pool); the ratios
are medians of the ratios within each round of epochs (see `ratios`).
"""

import argparse
import dataclasses
import importlib.util
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import NamedTuple

from models import VAE
from nn import Adam, Generator
from nn.backend import BackendError, get_backend, library_version, synchronize, to_backend

from .cli import bounded
from .data import DATASETS, DataError, load_dataset
from .train import train_epoch

KINDS = ("ours", "torch", "gemm")
LABELS = {"ours": "ours", "torch": "PyTorch", "gemm": "GEMM limit"}

# The lab's VAE (Part Two): these are not flags, since they define what is being measured.
HIDDEN = 512
LATENT = 2
LR = 5e-4

GEMM_REPEATS = 30  # timings of one step's products per shape and per epoch; their median is used

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _usable_cores():
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may run on (Linux)
    except AttributeError:
        return os.cpu_count() or 1


@dataclasses.dataclass
class BenchConfig:
    """A benchmark's settings. The defaults are the lab's training run."""

    dataset: str = "fashion-mnist"  # the lab's; "digits" for a quick run
    data_dir: str | None = None  # where the IDX files are, if not in a usual place
    epochs: int = 5  # measured epochs: the reported numbers are their medians
    warmup: int = 1  # epochs run first and not measured
    batch_size: int = 128  # the lab's
    threads: int = dataclasses.field(default_factory=_usable_cores)  # BLAS and PyTorch threads, each framework
    backend: str = "numpy"  # "cupy": ours on the GPU, PyTorch on CUDA, cuBLAS for the limit
    skip_torch: bool = False
    seed: int = 0


# --- The GEMM-bound limit -----------------------------------------------------------------


class Product(NamedTuple):
    """One matrix product of a training step, a @ b, with a and b stored as the model stores them.

    a_shape, b_shape: the stored arrays. transpose: "a" or "b" when the product reads that
    array transposed (a view, as in x.T @ dout), None when neither.
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


def step_products(batch, input_dim, hidden=HIDDEN, latent=LATENT):
    """The matrix products of one VAE training step on a batch of `batch` images, as the model does them.

    Dense layers (name, in, out): y = x @ W forward; dW = x.T @ dout and, except for the
    first layer (nothing upstream of x needs a gradient), dx = dout @ W.T backward.
    """
    N = batch
    dense = [("encoder", input_dim, hidden), ("mu", hidden, latent), ("logvar", hidden, latent),
             ("decoder.0", latent, hidden), ("decoder.2", hidden, input_dim)]
    forward = [Product(f"{name}: x @ W", (N, n_in), (n_in, n_out)) for name, n_in, n_out in dense]
    weight_grads = [Product(f"{name}: x.T @ dout", (N, n_in), (N, n_out), "a") for name, n_in, n_out in dense]
    input_grads = [Product(f"{name}: dout @ W.T", (N, n_out), (n_in, n_out), "b") for name, n_in, n_out in dense[1:]]
    return forward + weight_grads + input_grads


def gemm_seconds(xp, products, repeats=GEMM_REPEATS, seed=0, dtype="float32"):
    """(median seconds of one pass over `products` with xp's matmul, their FLOP count).

    The operands are made once; each product allocates its result, as the model's do.
    """
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
            a @ b
        synchronize(xp)
        times.append(time.perf_counter() - start)
    return statistics.median(times), sum(p.flops() for p in products)


def steps_per_epoch(n, batch_size):
    """{batch rows: how many steps of that size}: full batches, and the smaller last one if any."""
    full, rest = divmod(n, batch_size)
    return {size: count for size, count in ((batch_size, full), (rest, 1)) if size and count}


def gemm_epoch(xp, n, batch_size, input_dim, repeats=GEMM_REPEATS):
    """The GEMM-bound limit of one epoch: {"seconds", "flops", "gflops_per_s"}.

    Each step size (the full batch, and the last, smaller one) is timed on its own.
    """
    seconds = flops = 0
    for rows, count in steps_per_epoch(n, batch_size).items():
        t, f = gemm_seconds(xp, step_products(rows, input_dim), repeats)
        seconds += count * t
        flops += count * f
    return {"seconds": seconds, "flops": flops, "gflops_per_s": flops / seconds / 1e9}


# --- The workers: one framework's training, one epoch per request ------------------------


class SkipWorker(Exception):
    """This framework cannot be measured here; its message says why."""


def peak_rss_mb():
    """The peak resident set size of this process so far, in MB (10^6 bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak * (1 if sys.platform == "darwin" else 1024) / 1e6  # bytes on macOS, KiB on Linux


class OursTrainer:
    """This library's VAE and Adam, trained by lab.train.train_epoch."""

    def __init__(self, config, data):
        self.xp = get_backend(config.backend)
        self.rng = Generator(config.seed, self.xp)
        self.model = VAE(data.input_dim, (HIDDEN,), LATENT, loss="mse", rng=self.rng)
        self.optimizer = Adam(self.model.params, lr=LR)
        self.x = to_backend(data.x_train, self.xp)  # uint8 on the device; batches are converted as they are used
        self.config, self.scale = config, data.scale
        self.info = {"device": "gpu" if config.backend == "cupy" else "cpu",
                     "version": library_version(self.xp)}

    def epoch(self):
        synchronize(self.xp)
        start = time.perf_counter()
        means = train_epoch(self.model, self.optimizer, self.x, self.config.batch_size, self.scale, self.rng)
        synchronize(self.xp)
        return {"seconds": time.perf_counter() - start, "loss": means["loss"]}


class TorchTrainer:
    """The same VAE in plain eager PyTorch, written the way its tutorials write it."""

    def __init__(self, config, data):
        import torch
        import torch.nn.functional as F
        from torch import nn

        if config.backend == "cupy" and not torch.cuda.is_available():
            raise SkipWorker("torch.cuda.is_available() is false: this PyTorch cannot use the GPU")
        torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        self.torch, self.F, self.config = torch, F, config
        self.device = torch.device("cuda" if config.backend == "cupy" else "cpu")
        # The whole training set as one float32 tensor in [0, 1], on the device.
        self.x = torch.from_numpy(data.x_train).to(self.device).float().mul_(data.scale)
        D, H, J = data.input_dim, HIDDEN, LATENT
        self.model = nn.ModuleDict({
            "encoder": nn.Sequential(nn.Linear(D, H), nn.ReLU()),
            "mu": nn.Linear(H, J),
            "logvar": nn.Linear(H, J),
            "decoder": nn.Sequential(nn.Linear(J, H), nn.ReLU(), nn.Linear(H, D), nn.Sigmoid()),
        }).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=LR)  # torch's defaults: see adam_variant
        self.info = {"device": self.device.type, "version": f"torch {torch.__version__}",
                     "threads": torch.get_num_threads(), "adam": self.adam_variant()}

    def adam_variant(self):
        """Which of its Adam implementations torch picks by default for these parameters."""
        params = list(self.model.parameters())
        try:  # the function Adam.step itself asks when neither foreach nor fused is given (private API)
            from torch.optim.optimizer import _default_to_fused_or_foreach

            _, foreach = _default_to_fused_or_foreach(params, differentiable=False, use_fused=False)
        except (ImportError, TypeError):
            return "default (foreach=None, fused=None)"
        return "foreach (default)" if foreach else "for-loop (default: foreach=None, fused=None)"

    def loss(self, x):
        m = self.model
        h = m["encoder"](x)
        mu, logvar = m["mu"](h), m["logvar"](h)
        z = mu + self.torch.exp(0.5 * logvar) * self.torch.randn_like(mu)
        x_hat = m["decoder"](z)
        n = x.shape[0]
        recon = self.F.mse_loss(x_hat, x, reduction="sum") / n
        kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum() / n
        return recon + kl

    def epoch(self):
        torch, x, batch_size = self.torch, self.x, self.config.batch_size
        self.sync()
        start = time.perf_counter()
        order = torch.randperm(x.shape[0], device=self.device)
        total = torch.zeros((), device=self.device)
        for i in range(0, x.shape[0], batch_size):
            batch = x[order[i:i + batch_size]]
            loss = self.loss(batch)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            total += loss.detach() * batch.shape[0]
        mean_loss = total.item() / x.shape[0]
        self.sync()
        return {"seconds": time.perf_counter() - start, "loss": mean_loss}

    def sync(self):
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()


class GemmTrainer:
    """Not training: an epoch's worth of the step's matrix products, the GEMM-bound limit."""

    def __init__(self, config, data):
        self.xp, self.config = get_backend(config.backend), config
        self.n, self.input_dim = data.x_train.shape
        self.info = {"device": "gpu" if config.backend == "cupy" else "cpu",
                     "steps": math.ceil(self.n / config.batch_size),
                     "products_per_step": len(step_products(config.batch_size, self.input_dim)),
                     "steps_by_batch_rows": steps_per_epoch(self.n, config.batch_size)}

    def epoch(self):
        return gemm_epoch(self.xp, self.n, self.config.batch_size, self.input_dim)


TRAINERS = {"ours": OursTrainer, "torch": TorchTrainer, "gemm": GemmTrainer}


def serve(kind, config, requests=sys.stdin, replies=None):
    """A worker's life: set up `kind`, then answer "epoch" and "finish" requests, one JSON line each.

    Anything else printed while training goes to stderr, so that the replies stay parseable.
    """
    replies = replies or sys.stdout
    sys.stdout = sys.stderr

    def reply(message):
        replies.write(json.dumps(message) + "\n")
        replies.flush()

    if kind == "torch":
        import torch  # noqa: F401  (here, so that rss_libraries counts it)
    rss_libraries = peak_rss_mb()  # the interpreter and its libraries, before the data and the model
    try:
        data = load_dataset(config.dataset, config.data_dir)
        trainer = TRAINERS[kind](config, data)
    except SkipWorker as reason:
        return reply({"skipped": str(reason)})
    except (DataError, BackendError) as err:
        return reply({"error": str(err)})
    reply({"ready": True, "images": data.x_train.shape[0], "input_dim": data.input_dim,
           "libraries_rss_mb": rss_libraries, **trainer.info})
    for line in requests:
        if line.strip() == "epoch":
            reply(trainer.epoch())
        elif line.strip() == "finish":
            return reply({"peak_rss_mb": peak_rss_mb()})


# --- The parent: start the workers, alternate their epochs, summarise ---------------------


class BenchError(Exception):
    """The benchmark could not run; its message says why."""


def thread_env(threads):
    """Environment variables that fix the thread count of every BLAS and OpenMP library numpy or torch may load.

    They must be set before the library loads, hence in a worker's environment at its start.
    """
    return {name: str(threads) for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def worker_args(config):
    args = ["--dataset", config.dataset, "--batch-size", str(config.batch_size), "--threads", str(config.threads),
            "--backend", config.backend, "--seed", str(config.seed)]
    return args + (["--data-dir", config.data_dir] if config.data_dir else [])


class Worker:
    """The parent's handle on one worker process (see `serve`)."""

    def __init__(self, kind, config):
        self.kind = kind
        env = {**os.environ, **thread_env(config.threads),
               "PYTHONPATH": os.pathsep.join(filter(None, [PROJECT_ROOT, os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen([sys.executable, "-m", "lab.bench", "--worker", kind, *worker_args(config)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

    def ready(self):
        """The worker's setup ({"ready": ...} or {"skipped": reason}); raises BenchError on an error."""
        message = self._read()
        if "error" in message:
            raise BenchError(message["error"])
        return message

    def request(self, what):
        self.process.stdin.write(what + "\n")
        self.process.stdin.flush()
        return self._read()

    def _read(self):
        line = self.process.stdout.readline()
        if not line:
            raise BenchError(f"the {self.kind} worker stopped with exit status {self.process.wait()} "
                             "(its error is printed above)")
        return json.loads(line)

    def close(self):
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def run_benchmark(config, kinds=KINDS, log=print):
    """Run `kinds` side by side, one epoch of each in turn: {kind: summary}.

    A summary holds the worker's setup, every epoch's record, the seconds of each measured
    epoch in order ("measured": round by round, the same rounds for every kind), their
    medians: seconds (per epoch), samples_per_s, and peak_rss_mb for the trainers.
    A kind that cannot run here has the summary {"skipped": why}.
    """
    workers = {kind: Worker(kind, config) for kind in kinds}  # they load their data in parallel
    try:
        setups = {kind: worker.ready() for kind, worker in workers.items()}
        results = {kind: {"skipped": s["skipped"]} for kind, s in setups.items() if "skipped" in s}
        running = {kind: w for kind, w in workers.items() if kind not in results}
        records = {kind: [] for kind in running}
        for epoch in range(1, config.warmup + config.epochs + 1):
            for kind, worker in running.items():
                records[kind].append(worker.request("epoch"))
            what = "warm-up" if epoch <= config.warmup else "measured"
            log(f"epoch {epoch} ({what}): " + ", ".join(
                f"{LABELS[kind]} {records[kind][-1]['seconds']:.2f} s" for kind in running))
        for kind, worker in running.items():
            measured = records[kind][config.warmup:]
            measured_seconds = [r["seconds"] for r in measured]
            seconds = statistics.median(measured_seconds)
            results[kind] = {**setups[kind], "epochs": records[kind], "measured": measured_seconds,
                             "seconds": seconds, "samples_per_s": setups[kind]["images"] / seconds}
            if kind == "gemm":
                results[kind]["flops"] = measured[0]["flops"]
                results[kind]["gflops_per_s"] = results[kind]["flops"] / seconds / 1e9
            else:
                results[kind]["loss"] = measured[-1]["loss"]
                results[kind].update(worker.request("finish"))
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


def format_table(config, results):
    """The results as readable text."""
    first = next(r for r in results.values() if "skipped" not in r)
    lines = [
        f"VAE {first['input_dim']}-{HIDDEN}-{LATENT} (MSE + KL), Adam lr {LR:g}, batch {config.batch_size}, float32, "
        f"{config.dataset}: {first['images']} images per epoch",
        f"backend {config.backend}, {config.threads} threads; medians of {config.epochs} epochs "
        f"after {config.warmup} warm-up, one epoch of each in turn",
        "",
        f"{'':34s}{'s/epoch':>9s}{'samples/s':>11s}{'peak RSS':>11s}{'loss':>9s}",
    ]
    for kind in KINDS:
        r = results.get(kind)
        if r is None:
            continue
        if "skipped" in r:
            lines.append(f"{LABELS[kind]:34s}skipped: {r['skipped']}")
            continue
        label = f"{LABELS[kind]} ({r['version'] if kind != 'gemm' else config.backend + ' matmul'}, {r['device']})"
        rss = f"{r['peak_rss_mb']:.0f} MB" if "peak_rss_mb" in r else "-"
        loss = f"{r['loss']:.2f}" if "loss" in r else "-"
        lines.append(f"{label:34s}{r['seconds']:9.3f}{r['samples_per_s']:11.0f}{rss:>11s}{loss:>9s}")
    for kind in KINDS:
        if "measured" in results.get(kind, {}):
            epochs = " ".join(f"{s:.2f}" for s in results[kind]["measured"])
            lines.append(f"{'':4s}{LABELS[kind]}, s per measured epoch in order: {epochs}")
    lines.append("")
    for name, r in ratios(results).items():
        other = LABELS[name.split("/")[1]]
        lines.append(f"ours / {other}: {r['median']:.2f}x the time per epoch "
                     f"(median of {len(r['rounds'])} rounds, each {r['min']:.2f}x to {r['max']:.2f}x)")
    if "seconds" in results.get("gemm", {}):
        g = results["gemm"]
        steps = ", ".join(f"{count} x {rows} rows" for rows, count in g["steps_by_batch_rows"].items())
        lines.append(f"GEMM limit: {g['products_per_step']} products per step, {g['steps']} steps ({steps}), "
                     f"{g['flops'] / 1e9:.1f} GFLOP per epoch at {g['gflops_per_s']:.1f} GFLOP/s")
    if "adam" in results.get("torch", {}):
        lines.append(f"PyTorch: eager mode, {results['torch']['threads']} threads, Adam {results['torch']['adam']}")
    if config.backend == "cupy":
        lines.append("peak RSS is host memory; GPU memory is not measured")
    for kind in ("ours", "torch"):
        if "libraries_rss_mb" in results.get(kind, {}):
            lines.append(f"{LABELS[kind]}: {results[kind]['libraries_rss_mb']:.0f} MB of the peak RSS "
                         "is the interpreter and libraries, before data and model")
    return "\n".join(lines)


def save_chart(results, path, config):
    """A bar chart of seconds per epoch: ours and PyTorch, with the GEMM limit as the floor line."""
    from .plots import save_bar_chart

    kinds = [k for k in ("ours", "torch") if "seconds" in results.get(k, {})]
    save_bar_chart([LABELS[k] for k in kinds], [results[k]["seconds"] for k in kinds], path,
                   title=f"VAE training on {config.dataset}, {config.backend}, {config.threads} threads",
                   ylabel="seconds per epoch (median)", reference=results.get("gemm", {}).get("seconds"),
                   reference_label="GEMM limit")


def torch_installed():
    """True when PyTorch can be imported (found without importing it: the parent never needs it)."""
    return importlib.util.find_spec("torch") is not None


# --- Command line -------------------------------------------------------------------------


def build_parser():
    d = BenchConfig()
    p = argparse.ArgumentParser(
        prog="bench.py",
        description="Time the lab's VAE training: this library against PyTorch and against the GEMM-bound limit.")
    p.add_argument("--dataset", choices=DATASETS, default=d.dataset,
                   help=f"default: {d.dataset}; digits for a quick run")
    p.add_argument("--data-dir", default=None, help="folder with the four IDX files (default: the usual places)")
    p.add_argument("--epochs", type=bounded(int, 1), default=d.epochs, help=f"measured epochs (default: {d.epochs})")
    p.add_argument("--warmup", type=bounded(int, 0), default=d.warmup,
                   help=f"epochs run first and not measured (default: {d.warmup})")
    p.add_argument("--batch-size", type=bounded(int, 1), default=d.batch_size, help=f"default: {d.batch_size}")
    p.add_argument("--threads", type=bounded(int, 1), default=d.threads,
                   help=f"threads for BLAS and PyTorch (default: the {d.threads} cores this process may use)")
    p.add_argument("--backend", choices=("numpy", "cupy"), default=d.backend,
                   help="numpy: CPU; cupy: GPU, against PyTorch on CUDA (default: numpy)")
    p.add_argument("--skip-torch", action="store_true", help="do not measure PyTorch")
    p.add_argument("--seed", type=int, default=d.seed, help=argparse.SUPPRESS)
    p.add_argument("--json", help="where to write all results (default: runs/bench-<timestamp>/results.json)")
    p.add_argument("--chart",
                   help="where to draw seconds per epoch (default: runs/bench-<timestamp>/seconds_per_epoch.png)")
    p.add_argument("--worker", choices=KINDS, help=argparse.SUPPRESS)  # run_benchmark starts its workers so
    return p


def main(argv=None):
    """bench.py's entry point: exit status 0 on success, 2 when the benchmark cannot run here."""
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    worker, json_path, chart_path = args.pop("worker"), args.pop("json"), args.pop("chart")
    config = BenchConfig(**args)
    if worker:
        serve(worker, config)
        return 0
    try:
        get_backend(config.backend)  # a missing CuPy or GPU is reported here, before any worker starts
        kinds = list(KINDS)
        skipped = {}
        if config.skip_torch:
            kinds.remove("torch")
        elif not torch_installed():
            kinds.remove("torch")
            skipped["torch"] = {"skipped": "PyTorch is not installed (it is optional: pip install torch)"}
        out = os.path.join("runs", f"bench-{time.strftime('%Y%m%d-%H%M%S')}")
        json_path = json_path or os.path.join(out, "results.json")
        chart_path = chart_path or os.path.join(out, "seconds_per_epoch.png")
        results = {**run_benchmark(config, kinds), **skipped}
    except (BackendError, BenchError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    print()
    print(format_table(config, results))
    for path in (json_path, chart_path):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(json_path, "w") as f:
        json.dump({"config": dataclasses.asdict(config), "results": results, "ratios": ratios(results),
                   "python": sys.version.split()[0], "platform": sys.platform}, f, indent=2)
    save_chart(results, chart_path, config)
    print(f"\nresults in {json_path}, chart in {chart_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
