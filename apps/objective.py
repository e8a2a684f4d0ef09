"""objective.py: Part Four, what the VAE's objective trades: rate and distortion over a sweep of beta,
the decoder that learns its variance, and the remedies for collapsed dimensions.

The study, what it measures and why, is studies/objective.py; this script parses the
arguments, runs it and prints its table.
"""

import argparse
import sys

from lab.cli import bounded, number_list, run_study
from nn.backend import BACKEND_NAMES
from studies.objective import ObjectiveConfig, objective_table, study, study_config


def main(argv=None):
    d = ObjectiveConfig()
    p = argparse.ArgumentParser(prog="objective.py", description="Part Four: the lab's VAE over a sweep of the KL's "
                                "weight beta, with a learned decoder variance, and with the remedies for collapsed "
                                "dimensions: rate, distortion, the bound and the active units of each.")
    p.add_argument("--dataset", help=f"(default: {d.dataset}, the lab's)")
    p.add_argument("--epochs", type=bounded(int, 1), help=f"(default: {d.epochs}, the lab's)")
    p.add_argument("--betas", type=number_list("KL weights", "0.1,1,8", low=0, kind=float),
                   help=f"KL weights of the sweep (default: {','.join(f'{b:g}' for b in d.betas)})")
    p.add_argument("--latents", type=number_list("latent sizes", "2,16"),
                   help="latent sizes of the sweep and the learned variance (default: 2,16)")
    p.add_argument("--remedy-latents", type=number_list("latent sizes", "16,32"),
                   help="latent sizes the warm-up and free bits are measured at (default: 16,32)")
    p.add_argument("--warmup", type=bounded(int, 1), help=f"the warm-up models' --kl-warmup (default: {d.warmup})")
    p.add_argument("--free-bits", type=bounded(float, 0), help=f"the free-bits models' floor, nats (default: "
                                                               f"{d.free_bits})")
    p.add_argument("--bound-images", type=bounded(int, 1), help=f"test images L_100 is estimated on (default: "
                                                                f"{d.bound_images})")
    p.add_argument("--workers", type=bounded(int, 1), help=f"models trained at once (default: {d.workers})")
    p.add_argument("--backend", choices=BACKEND_NAMES[:2], help="numpy (CPU) or cupy (GPU); default: $VAE_BACKEND, "
                                                                "else numpy")
    p.add_argument("--out", help="output folder (default: runs/objective-<timestamp>/); a study stopped there "
                                 "resumes when run again with the same --out")
    p.add_argument("--quick", action="store_true", help="the digits, 5 epochs, betas 0.1,1,8, latents 2 and 4: "
                                                        "seconds, a first look")
    return run_study(p, argv, lambda quick, given, out: study(study_config(quick, **given), out),
                     lambda results, out: objective_table(results["runs"], results["config"]["bound_K"])
                     + f"\nresults.json, table.md and the figures (rate_distortion.png, bound_and_units.png, "
                       f"kl_per_dim.png, samples_traversals.png) in {out}, and each model's run in a folder of its own")


if __name__ == "__main__":
    sys.exit(main())
