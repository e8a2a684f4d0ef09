"""compare_pca.py: Part One, measured: PCA, a linear autoencoder, a nonlinear one and a VAE, side by side.

What is measured and why is studies/part_one.py's docstring; this script parses the arguments,
runs the comparison and prints its table. See docs/pca.md for why the linear AE lands on
PCA's subspace.
"""

import argparse

from lab.cli import add_common_flags, backend_name_from, bounded, default_out, progress_wanted, run_main
from studies.part_one import DATASET_DEFAULTS, CompareConfig, compare, comparison_table, default_config


def main(argv=None):
    """compare_pca.py's entry point; exit statuses as in lab.cli.run_main."""
    d = CompareConfig()
    p = argparse.ArgumentParser(prog="compare_pca.py",
                                description="PCA, a linear AE, an AE and a VAE side by side: Part One, measured.")
    add_common_flags(p, d)
    p.add_argument("--latent-dim", type=bounded(int, 1),
                   help=f"k, from 1 to the number of pixels (default: {d.latent_dim})")
    p.add_argument("--epochs", type=bounded(int, 1),
                   help=f"per trained model (default: {d.epochs}; {DATASET_DEFAULTS['digits']['epochs']} on digits)")
    p.add_argument("--no-explorer", action="store_true",
                   help="write no explorer_<model>.html (pages that run each autoencoder, explorer/page.py)")
    args = p.parse_args(argv)
    config = default_config(args.dataset or d.dataset, vars(args), backend=backend_name_from(args.backend))
    out = args.out or default_out(p.prog)

    def body():
        results = compare(config, out, show_progress=progress_wanted(args.no_progress), explorer=not args.no_explorer)
        print()
        print(comparison_table(results))
        print(f"\n{results['seconds']:.0f} s; results and figures in {out}")

    return run_main(p, body)
