"""augment.py: Part Three. Is a VAE "a powerful tool for data augmentation", as the lab says?

The study, its four methods and its verdicts are studies/part_three.py; this script parses the
arguments, runs the study and prints its table.
"""

import argparse
import sys

from studies.part_three import AugmentConfig, accuracy_table, study, study_config
from lab.cli import add_common_flags, backend_name_from, bounded, default_out, number_list, run_main
from models.conv import ARCHS


def main(argv=None):
    d = AugmentConfig()
    p = argparse.ArgumentParser(prog="augment.py", description="Part Three: does a VAE's data help a classifier "
                                                               "trained on few labels?")
    add_common_flags(p, argparse.Namespace(dataset=d.dataset, seed="the seeds of --seeds"))  # --seed S: --seeds S
    p.add_argument("--n", dest="ns", metavar="N", type=number_list("image counts", "10,30,100"),
                   help=f"labelled images per class (default: {','.join(map(str, d.ns))})")
    p.add_argument("--seeds", type=number_list("seeds", "0,1,2", low=0),
                   help=f"(default: {','.join(map(str, d.seeds))})")
    p.add_argument("--extra", type=bounded(int, 0), metavar="K",
                   help=f"shifted copies or generated images per labelled image (default: {d.extra})")
    p.add_argument("--steps", type=bounded(int, 1), metavar="S",
                   help=f"Adam steps of every classifier (default: {d.steps})")
    p.add_argument("--cvae-arch", choices=ARCHS, help=f"the conditional VAE's network (default: {d.cvae_arch}, "
                                                      "the lab's); conv: models/conv.py's")
    p.add_argument("--cvae-latent", type=bounded(int, 1), metavar="J",
                   help=f"the conditional VAE's latent size (default: {d.cvae_latent}, the lab's)")
    p.add_argument("--quick", action="store_true", help="small settings on digits: seconds, a first look")
    args = p.parse_args(argv)
    if args.seed is not None and args.seeds is None:  # one seed, the common flag's way
        args.seeds = (args.seed,)
    config = study_config(vars(args), quick=args.quick, backend=backend_name_from(args.backend))
    out = args.out or default_out(p.prog)

    def body():
        results = study(config, out)
        print()
        print(accuracy_table(results, config))
        print(f"results.json, results.md, accuracy.png and cvae_samples.png in {out}")

    return run_main(p, body)


if __name__ == "__main__":
    sys.exit(main())
