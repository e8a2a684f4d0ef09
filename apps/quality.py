"""quality.py: does this library's VAE learn as fast as the same network in PyTorch?

Each training kind of studies/trainers.py (ours, and PyTorch if installed) trains the lab's VAE
(lab/config.py) from each seed, the kinds at the same time in processes of their own, and
measures the test loss after every epoch the same way (one noise draw per image from a
generator seeded seed + 1): studies.learning.run_quality. This script parses the arguments, prints
the table and writes quality.json, quality.md and quality.png.
"""

import argparse
import dataclasses
import os

from studies.figures import save_curves_with_range
from studies.flags import BenchConfig, add_flags
from studies.trainers import select_kinds
from lab.cli import (UsageError, add_common_flags, backend_name_from, bounded, default_out, number_list, prepare_out,
                     progress_wanted, run_main)
from lab.config import LAB, config_from
from lab.files import write_json, write_text
from studies.learning import quality_table, run_quality
from nn.backend import get_backend

SEEDS = (0, 1, 2)  # the lab's run, three times


def parser():
    d = BenchConfig(epochs=LAB.epochs, warmup=0)
    p = argparse.ArgumentParser(prog="quality.py", description="The test loss after every epoch of the lab's VAE, "
                                                               "this library against PyTorch, over seeds.")
    add_common_flags(p, d)
    add_flags(p, d)
    p.add_argument("--epochs", type=bounded(int, 1), help=f"default: the lab's, {d.epochs}")
    p.add_argument("--seeds", type=number_list("seeds", "0,1,2", low=0), default=SEEDS,
                   help=f"comma-separated (default: {','.join(map(str, SEEDS))})")
    return p


def main(argv=None):
    """quality.py's entry point; exit statuses as in lab.cli.run_main."""
    p = parser()
    args = p.parse_args(argv)
    if args.seed is not None:
        p.error("quality.py trains from several seeds: give them as --seeds, e.g. --seeds 0,1,2")
    out = args.out or default_out(p.prog)
    config = config_from(BenchConfig, vars(args), epochs=args.epochs or LAB.epochs, warmup=0,
                         backend=backend_name_from(args.backend))

    def body():
        get_backend(config.backend)  # a missing CuPy or GPU is reported here, before any worker starts
        chosen, skipped = select_kinds(config.skip)
        kinds = [kind for kind in chosen if kind.trains]  # only a training run has a test loss
        if not kinds:
            raise UsageError("--skip leaves nothing that trains")
        for why in skipped.values():
            print(f"skipped: {why['skipped']}")
        prepare_out(out)
        curves = run_quality(config, args.seeds, kinds, show_progress=progress_wanted(args.no_progress))
        table = quality_table(curves)
        print()
        print(table)
        seeds = ", ".join(map(str, args.seeds))
        write_json(os.path.join(out, "quality.json"),
                   {"config": dataclasses.asdict(config), "seeds": list(args.seeds), "test_loss": curves})
        write_text(os.path.join(out, "quality.md"),
                   f"# Test loss per image after each epoch, seeds {seeds}\n\n"
                   f"{config.network[0].upper()}{config.network[1:]} on {config.dataset}, batch {config.batch_size}, Adam lr {LAB.lr:g}.\n\n{table}\n")
        save_curves_with_range({kind.label: curves[kind.key] for kind in kinds}, os.path.join(out, "quality.png"),
                               title=f"{config.network[0].upper()}{config.network[1:]} on {config.dataset}: test loss, seeds {seeds}",
                               ylabel="test loss per image")
        print(f"\nquality.json, quality.md and quality.png in {out}")

    return run_main(p, body)
