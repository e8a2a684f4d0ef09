"""bench.py: how fast does this library train the lab's VAE? Against PyTorch, and against the matrix products.

The kinds are studies/trainers.py, how they are run and what the table shows studies/speed.py,
the worker processes studies/workers.py; this script parses the arguments, runs the kinds, prints the
table and writes results.json and seconds_per_epoch.png. How well the two learn is
another script, quality.py.
"""

import argparse
import dataclasses
import os
import sys

from studies.figures import save_bar_chart
from studies.flags import BenchConfig, add_flags
from studies.speed import ratios, run_benchmark, speed_table
from studies.trainers import select_kinds
from lab.cli import (UsageError, add_common_flags, backend_name_from, bounded, default_out, prepare_out,
                     progress_wanted, run_main)
from lab.config import config_from
from lab.files import write_json
from nn.backend import get_backend


def parser():
    d = BenchConfig()
    p = argparse.ArgumentParser(prog="bench.py", description="Time the lab's VAE training: this library against "
                                                             "PyTorch and against the GEMM-bound limit.")
    add_common_flags(p, d)
    add_flags(p, d)
    p.add_argument("--epochs", type=bounded(int, 1), help=f"measured epochs (default: {d.epochs})")
    p.add_argument("--warmup", type=bounded(int, 0), help=f"epochs run first and not measured (default: {d.warmup})")
    p.add_argument("--quality", action="store_true", help=argparse.SUPPRESS)  # moved: a pointer to quality.py
    return p


def save_figure(config, results, kinds, path):
    """A bar per training kind that ran, at its median seconds per epoch; a bound as a dashed line."""
    ran = [kind for kind in kinds if "seconds" in results.get(kind.key, {})]
    bars = [kind for kind in ran if kind.trains]
    bound = next((kind for kind in ran if not kind.trains), None)
    line = {} if bound is None else {"reference": results[bound.key]["seconds"], "reference_label": bound.label}
    save_bar_chart([kind.label for kind in bars], [results[kind.key]["seconds"] for kind in bars], path,
                   title=f"Training {config.network} on {config.dataset}, {config.backend}, {config.threads} threads",
                   ylabel="seconds per epoch (median)", **line)


def main(argv=None):
    """bench.py's entry point; exit statuses as in lab.cli.run_main."""
    p = parser()
    args = p.parse_args(argv)
    if args.quality:
        p.exit(2, "bench.py: error: --quality is a script of its own now: python quality.py (see --help)\n")
    out = args.out or default_out(p.prog)
    config = config_from(BenchConfig, vars(args), backend=backend_name_from(args.backend))

    def body():
        get_backend(config.backend)  # a missing CuPy or GPU is reported here, before any worker starts
        kinds, skipped = select_kinds(config.skip)
        if not kinds:
            raise UsageError("--skip leaves nothing to run")
        prepare_out(out)
        results = {**run_benchmark(config, kinds, show_progress=progress_wanted(args.no_progress)), **skipped}
        print()
        print(speed_table(config, results))
        write_json(os.path.join(out, "results.json"),
                   {"config": dataclasses.asdict(config), "results": results, "ratios": ratios(results),
                    "python": sys.version.split()[0], "platform": sys.platform})
        save_figure(config, results, kinds, os.path.join(out, "seconds_per_epoch.png"))
        print(f"\nresults.json and seconds_per_epoch.png in {out}")

    return run_main(p, body)
