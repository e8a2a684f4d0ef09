"""The quality study (quality.py): does this library's VAE learn as fast as the same network in PyTorch?

The training kinds of studies/trainers.py train the lab's VAE from each seed at the same time, each
in its worker process, and report the test loss after every epoch (measured alike: one noise
draw per image from a generator seeded seed + 1). Their seconds mean nothing here, since the
kinds share the machine; only what they learn is compared.
"""

import dataclasses
import statistics

from lab.cli import print_now
from .speed import run_benchmark
from .trainers import kind_named


def run_quality(config, seeds, kinds, log=print_now, show_progress=False):
    """The test loss per image after each epoch, each kind trained from each seed, the kinds
    concurrently: {key: [[loss after epoch 1, 2, ...] for each seed]}."""
    curves = {kind.key: [] for kind in kinds}
    for seed in seeds:
        log(f"seed {seed}:")
        results = run_benchmark(dataclasses.replace(config, seed=seed, warmup=0), kinds, log, show_progress,
                                concurrently=True)
        for key, curve in curves.items():
            curve.append([record["test_loss"] for record in results[key]["epochs"]])
    return curves


def spread(losses):
    """'mean ± sd (lowest - highest)' of several seeds' losses: sd is the sample standard
    deviation (n - 1), the seed-to-seed spread; with one seed, only the loss."""
    if len(losses) == 1:
        return f"{losses[0]:.2f}"
    return (f"{statistics.mean(losses):.2f} ± {statistics.stdev(losses):.2f} "
            f"({min(losses):.2f} - {max(losses):.2f})")


def quality_table(curves):
    """`run_quality`'s curves as a Markdown table: each kind's `spread` over seeds per epoch,
    and with two kinds, the difference of their means."""
    kinds = [kind_named(key) for key in curves]
    pair = len(kinds) == 2
    rows = ["| epoch | " + " | ".join(f"{k.label}: mean ± sd (lowest - highest)" for k in kinds)
            + (f" | {kinds[0].label} - {kinds[1].label} |" if pair else " |"),
            "|---" * (len(kinds) + 1 + pair) + "|"]
    losses = [list(zip(*curves[k.key])) for k in kinds]  # per kind, per epoch: the seeds' losses
    for epoch in range(len(losses[0])):
        cells = [spread(kind_losses[epoch]) for kind_losses in losses]
        if pair:
            cells.append(f"{statistics.mean(losses[0][epoch]) - statistics.mean(losses[1][epoch]):+.2f}")
        rows.append(f"| {epoch + 1} | " + " | ".join(cells) + " |")
    return "\n".join(rows)
