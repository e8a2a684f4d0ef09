"""tune.py: the report's "hyper-parameter tuning may be useful", measured with an Optuna study.

The study, its search space and its objective are studies/tuning.py; this script parses the
arguments, runs the search and the retrainings, and prints the table.
"""

import argparse
import sys

from lab.cli import bounded, number_list, run_study
from lab.data import DATASETS
from nn.backend import BACKEND_NAMES
from studies.tuning import TuneConfig, tuning_table, tune, tune_config


def main(argv=None):
    d = TuneConfig()
    p = argparse.ArgumentParser(prog="tune.py", description="An Optuna study of the lab's VAE's settings, "
                                "scored on a validation split; the best retrained and tested beside the lab's.")
    p.add_argument("--dataset", choices=DATASETS, help=f"default: {d.dataset}")
    p.add_argument("--trials", type=int, help=f"trials in all, a resumed study's included (default: {d.trials})")
    p.add_argument("--epochs", type=bounded(int, 1), help=f"of every trial and retraining (default: {d.epochs})")
    p.add_argument("--validation", type=bounded(int, 1), help=f"training images held out to score a trial "
                                                              f"(default: {d.validation})")
    p.add_argument("--seeds", type=number_list("seeds", "0,1,2", low=0), help="of the retrainings (default: 0,1,2)")
    p.add_argument("--bound-k", type=bounded(int, 1), help=f"K of the test bound L_K (default: {d.bound_k})")
    p.add_argument("--workers", type=int, help="processes that run trials together (default: 1)")
    p.add_argument("--storage", help="an Optuna storage URL, shared by workers on several machines "
                                     "(default: sqlite:///<out>/study.db)")
    p.add_argument("--study-name", help=f"(default: {d.study_name})")
    p.add_argument("--backend", choices=BACKEND_NAMES[:2], help="numpy (CPU) or cupy (GPU); default: "
                                                                "$VAE_BACKEND, else numpy")
    p.add_argument("--out", help="output folder; run again with the same --out to resume "
                                 "(default: runs/tune-<timestamp>/)")
    p.add_argument("--quick", action="store_true", help="digits, 4 trials of 3 epochs, one seed: a first look")
    return run_study(p, argv, lambda quick, given, out: tune(tune_config(quick, **given), out),
                     lambda results, out: tuning_table(results) + f"\nresults.json, table.md, history.png and "
                     f"importance.png in {out}; the study in {results['storage']}")


if __name__ == "__main__":
    sys.exit(main())
