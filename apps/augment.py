"""augment.py: Part Three. Is a VAE "a powerful tool for data augmentation", as the lab says?

The same classifier (models/classifier.py) is trained on n labelled images of each class,
for several n and seeds, four ways, and scored on the whole test set:

  real    the n * classes labelled images alone;
  shift   those plus `extra` copies of each, moved by up to `max_shift` pixels each way
          (lab.data.shift_images): the augmentation anyone would try first;
  cvae    those plus as many images drawn from a conditional VAE (models/cvae.py) trained on
          the same labelled images only, `extra` per real image, in equal numbers per class;
  m1      the classifier on the codes mu of the lab's VAE (2-D), trained on all the training
          images without their labels (Kingma et al. 2014's "M1": the VAE as a learned
          representation, the other way its "clearer latent space" could pay off).

Each training gets the same number of steps whatever the size of its set. For each n the
methods are compared with `real` seed by seed (paired): a difference counts when every
seed agrees on its sign and its mean is larger than the seed-to-seed standard deviation of
`real`.
"""

import argparse
import dataclasses
import math
import os
import statistics
import sys
import time

import numpy as np

from lab import plots
from lab.cli import (UsageError, add_common_flags, backend_name_from, bounded, default_out, int_list, prepare_out,
                     run_main)
from lab.data import load_dataset, per_class_subset, shift_images
from lab.files import write_json, write_text
from lab.train import apply_in_batches, evaluate, train_epoch
from models import VAE, Classifier, ConditionalVAE
from nn import Adam, Generator
from nn.backend import get_backend, to_backend, to_numpy

METHODS = ("real", "shift", "cvae", "m1")
LABELS = {"real": "real images only", "shift": "+ shifted copies", "cvae": "+ conditional VAE samples",
          "m1": "M1: classifier on VAE codes"}


@dataclasses.dataclass
class AugmentConfig:
    """The study's settings; the defaults take about ten minutes on a 2-core CPU."""

    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    ns: tuple = (10, 30, 100, 300, 1000)  # labelled images per class
    seeds: tuple = (0, 1, 2)  # each: its own labelled subset, initial weights and noise
    hidden: tuple = (256,)  # the classifier's
    steps: int = 1500  # Adam steps for every classifier, whatever its training set's size
    batch_size: int = 64
    lr: float = 1e-3
    extra: int = 4  # shifted copies, or generated images, per labelled image
    max_shift: int = 2  # pixels, each way
    cvae_hidden: tuple = (512,)  # the lab's VAE, conditioned on the class
    cvae_latent: int = 2
    cvae_steps: int = 3000
    cvae_lr: float = 1e-3  # a larger step than the lab's 5e-4: it gets far fewer steps
    m1_epochs: int = 10  # of the lab's VAE over all training images (lr 5e-4, batch 128)
    backend: str = "numpy"


QUICK = dict(dataset="digits", ns=(10, 30), seeds=(0, 1), hidden=(64,), steps=300, cvae_hidden=(64,),
             cvae_steps=400, m1_epochs=10, max_shift=1)  # --quick: seconds, for tests and a first look (8x8 images)


def fit(model, x, y, scale, steps, batch_size, lr, rng):
    """Adam on `model` for about `steps` steps over x: (N, D) (with labels y: (N,), or None), whole epochs."""
    optimizer = Adam(model.params, lr=lr)
    for _ in range(math.ceil(steps * batch_size / x.shape[0])):
        train_epoch(model, optimizer, x, batch_size, scale, rng, y=y)
    return model


def accuracy(config, data, x, y, scale, x_test, y_test, rng):
    """Test accuracy of the classifier trained on x: (N, D) with labels y, on the backend."""
    classifier = Classifier(x.shape[1], len(data.class_names), config.hidden, rng=rng)
    fit(classifier, x, y, scale, config.steps, config.batch_size, config.lr, rng)
    return evaluate(classifier, x_test, 1000, scale, rng, y=y_test)["accuracy"]


def as_pixels(images, scale, like):
    """Images in [0, 1] as the dataset stores them (uint8, x / scale): so that every method's set is alike."""
    return np.clip(np.rint(images / scale), 0, 255).astype(like.dtype)


def train_cvae(config, data, x, y, rng):
    mean = (x.mean(axis=0) * data.scale)  # of the labelled images only: no other data is seen
    xp = rng.xp
    cvae = ConditionalVAE(data.input_dim, len(data.class_names), config.cvae_hidden, config.cvae_latent,
                          x_mean=mean, rng=rng)
    return fit(cvae, to_backend(x, xp), to_backend(y, xp), data.scale, config.cvae_steps, config.batch_size,
               config.cvae_lr, rng)


def augmented(config, data, method, x, y, rng, host_rng):
    """(x, y) of the training set of `method`, on the host: the real images and their extra ones."""
    if method == "real":
        return x, y
    if method == "shift":
        copies = np.repeat(x, config.extra, axis=0)
        shifts = host_rng.integers(-config.max_shift, config.max_shift + 1, size=(copies.shape[0], 2))
        return np.concatenate([x, shift_images(copies, data.image_shape, shifts)]), np.concatenate(
            [y, np.repeat(y, config.extra)])
    cvae = train_cvae(config, data, x, y, rng)
    labels = np.repeat(y, config.extra)  # as many of each class as its real ones times `extra`
    samples = to_numpy(cvae.sample(labels.shape[0], to_backend(labels, rng.xp), rng))
    return np.concatenate([x, as_pixels(samples, data.scale, x)]), np.concatenate([y, labels])


def m1_codes(config, data, seed, xp):
    """mu of the training and test images under the lab's VAE trained on every training image, unlabelled."""
    rng = Generator(seed, xp)
    vae = VAE(data.input_dim, (512,), 2, x_mean=data.mean_image, rng=rng)
    optimizer = Adam(vae.params, lr=5e-4)
    x_train = to_backend(data.x_train, xp)
    for _ in range(config.m1_epochs):
        train_epoch(vae, optimizer, x_train, 128, data.scale, rng)
    return (apply_in_batches(vae.code, x, 1000, data.scale) for x in (x_train, to_backend(data.x_test, xp)))


def run_seed(seed, n, method):
    """One seed per (seed, n, method): every training its own stream, the same in every run."""
    return (seed * 100_000 + n) * 10 + METHODS.index(method)


def check(config, data):
    """The study's input, checked before any training: UsageError saying what is wrong."""
    classes = len(data.class_names)
    if data.y_train is None or classes < 2:
        raise UsageError(f"{data.name} has no classes to learn: augment.py needs a labelled dataset")
    smallest = min(np.bincount(data.y_train, minlength=classes))
    if max(config.ns) > smallest:
        raise UsageError(f"n = {max(config.ns)} images per class is more than the {smallest} of the smallest class "
                         f"of {data.name}: choose --n at most {smallest}")


def log_line(line):
    print(line, flush=True)  # a line as soon as it is known, also into a log file


def study(config, out, log=log_line):
    """Run the study; write results.json, results.md, accuracy.png and cvae_samples.png to `out`."""
    start = time.perf_counter()
    xp = get_backend(config.backend)
    data = load_dataset(config.dataset, config.data_dir)
    check(config, data)
    prepare_out(out)
    x_test, y_test = to_backend(data.x_test, xp), to_backend(data.y_test, xp)
    accuracies = {m: {n: [] for n in config.ns} for m in METHODS}
    for seed in config.seeds:
        codes_train, codes_test = m1_codes(config, data, seed + 1000, xp)
        log(f"seed {seed}: the M1 VAE trained ({time.perf_counter() - start:.0f} s)")
        for n in config.ns:
            host_rng = np.random.default_rng([seed, n])
            subset = per_class_subset(data.y_train, n, host_rng)
            x, y = data.x_train[subset], data.y_train[subset]
            for method in METHODS:
                rng = Generator(run_seed(seed, n, method), xp)
                if method == "m1":
                    acc = accuracy(config, data, xp.take(codes_train, to_backend(subset, xp), axis=0),
                                   to_backend(y, xp), 1.0, codes_test, y_test, rng)
                else:
                    x_m, y_m = augmented(config, data, method, x, y, rng, host_rng)
                    acc = accuracy(config, data, to_backend(x_m, xp), to_backend(y_m, xp), data.scale, x_test, y_test,
                                   rng)
                accuracies[method][n].append(acc)
                log(f"seed {seed}, n = {n:4d}, {method:5s}: test accuracy {acc:.4f} "
                    f"({time.perf_counter() - start:.0f} s)")
    results = {"config": dataclasses.asdict(config), "accuracy": {m: {str(n): a for n, a in by_n.items()}
                                                                   for m, by_n in accuracies.items()},
               "comparisons": compare(accuracies, config.ns), "seconds": time.perf_counter() - start}
    write_json(os.path.join(out, "results.json"), results)
    write_text(os.path.join(out, "results.md"), results_table(results, config))
    plots.save_curves_with_range({LABELS[m]: [[accuracies[m][n][s] for n in config.ns] for s in
                                              range(len(config.seeds))] for m in METHODS},
                                 os.path.join(out, "accuracy.png"), title=f"{data.name}: test accuracy against "
                                 "labelled images per class", ylabel="test accuracy", xlabel="labelled images per class",
                                 x=config.ns, logx=True)
    cvae_samples(config, data, out, xp)
    return results


def compare(accuracies, ns):
    """For each n and method, the paired differences with `real`, seed by seed, and the verdict."""
    comparisons = {}
    for n in ns:
        real = accuracies["real"][n]
        spread = statistics.stdev(real) if len(real) > 1 else 0.0
        for method in METHODS[1:]:
            differences = [a - r for a, r in zip(accuracies[method][n], real)]
            mean = statistics.mean(differences)
            agree = all(d > 0 for d in differences) or all(d < 0 for d in differences)
            verdict = ("better" if mean > 0 else "worse") if agree and abs(mean) > spread else "within the spread"
            comparisons[f"{method}@{n}"] = {"mean_difference": mean, "differences": differences,
                                            "real_spread": spread, "verdict": verdict}
    return comparisons


def results_table(results, config):
    acc, comparisons = results["accuracy"], results["comparisons"]
    rows = ["| n per class | " + " | ".join(LABELS[m] for m in METHODS) + " |", "|---" * (len(METHODS) + 1) + "|"]
    for n in config.ns:
        cells = []
        for m in METHODS:
            values = acc[m][str(n)]
            cell = f"{statistics.mean(values):.3f} ± {statistics.stdev(values) if len(values) > 1 else 0:.3f}"
            if m != "real":
                c = comparisons[f"{m}@{n}"]
                cell += f" ({c['mean_difference']:+.3f}, {c['verdict']})"
            cells.append(cell)
        rows.append(f"| {n} | " + " | ".join(cells) + " |")
    return (f"# Test accuracy with n labelled images per class, {results['config']['dataset']}\n\n"
            f"Mean ± standard deviation over seeds {', '.join(map(str, config.seeds))}; in brackets, the mean "
            "difference with real images only, seed by seed, and whether it is larger than the seed-to-seed "
            "spread of real images only with every seed agreeing on its sign.\n\n" + "\n".join(rows)
            + f"\n\n{config.steps} Adam steps per classifier (lr {config.lr:g}, batch {config.batch_size}); "
            f"{config.extra} extra images per labelled one; the whole study took {results['seconds']:.0f} s.\n")


def cvae_samples(config, data, out, xp):
    """cvae_samples.png: 10 samples of each class (one row per class) from a conditional VAE trained on
    the largest n of the first seed."""
    seed, n = config.seeds[0], max(config.ns)
    subset = per_class_subset(data.y_train, n, np.random.default_rng([seed, n]))
    rng = Generator(run_seed(seed, n, "cvae"), xp)
    cvae = train_cvae(config, data, data.x_train[subset], data.y_train[subset], rng)
    classes = len(data.class_names)
    labels = np.repeat(np.arange(classes), 10)
    samples = to_numpy(cvae.sample(labels.shape[0], to_backend(labels, xp), Generator(seed + 2, xp)))
    plots.save_image_rows({name: samples[c * 10:(c + 1) * 10] for c, name in enumerate(data.class_names)},
                          data.image_shape, os.path.join(out, "cvae_samples.png"),
                          title=f"Conditional VAE trained on {n} labelled images per class: 10 samples per class")


def main(argv=None):
    d = AugmentConfig()
    p = argparse.ArgumentParser(prog="augment.py", description="Part Three: does a VAE's data help a classifier "
                                                               "trained on few labels?")
    add_common_flags(p, argparse.Namespace(dataset=d.dataset, seed="the seeds of --seeds"))  # --seed S: --seeds S
    p.add_argument("--n", type=int_list("image counts", "10,30,100"), help=f"labelled images per class "
                   f"(default: {','.join(map(str, d.ns))})")
    p.add_argument("--seeds", type=int_list("seeds", "0,1,2", low=0),
                   help=f"(default: {','.join(map(str, d.seeds))})")
    p.add_argument("--extra", type=bounded(int, 0), metavar="K",
                   help=f"shifted copies or generated images per labelled image (default: {d.extra})")
    p.add_argument("--steps", type=bounded(int, 1), metavar="S",
                   help=f"Adam steps of every classifier (default: {d.steps})")
    p.add_argument("--quick", action="store_true", help="small settings on digits: seconds, a first look")
    args = p.parse_args(argv)
    given = {"dataset": args.dataset, "data_dir": args.data_dir, "ns": args.n, "seeds": args.seeds,
             "extra": args.extra, "steps": args.steps}
    settings = {**(QUICK if args.quick else {}), **{k: v for k, v in given.items() if v is not None}}
    if args.seed is not None and args.seeds is None:  # one seed, the common flag's way
        settings["seeds"] = (args.seed,)
    config = AugmentConfig(**settings, backend=backend_name_from(args.backend))
    out = args.out or default_out(p.prog)

    def body():
        results = study(config, out)
        print()
        print(results_table(results, config))
        print(f"results.json, results.md, accuracy.png and cvae_samples.png in {out}")

    return run_main(p, body)


if __name__ == "__main__":
    sys.exit(main())
