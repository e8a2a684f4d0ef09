"""How fast this library trains the lab's VAE, against PyTorch and the matrix products: the runs and the table.

The kinds (studies/trainers.py, one Kind record each) each run in a worker process of their own
(studies/workers.py: its peak memory is its own), one epoch of each in turn, so that a noisy
neighbour slows all of them alike. The medians are over the measured epochs, after warm-up
epochs that fill caches, memory pools and thread pools; the ratios are taken round by round
(`ratios`). The quality study (studies/learning.py) runs the training kinds concurrently and
keeps their test loss after every epoch.
"""

import statistics
import time

from nn.backend import BackendError, get_backend, synchronize

from lab.cli import ProgressBar, print_now
from lab.config import describe
from lab.data import DataError, load_dataset
from .trainers import KINDS
from .workers import Worker


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


def speed_table(config, results, kinds=KINDS):
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
