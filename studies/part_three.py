"""Part Three's study: is a VAE "a powerful tool for data augmentation", as the lab says?

The same classifier (models/classifier.py) is trained on n labelled images of each class,
for several n and seeds, four ways (one Recipe record each), and scored on the whole test set:

  real    the n * classes labelled images alone;
  shift   those plus `extra` copies of each, moved by up to `max_shift` pixels each way
          (shift_images): the augmentation anyone would try first;
  cvae    those plus as many images drawn from a conditional VAE (models/cvae.py) trained on
          the same labelled images only, `extra` per real image, in equal numbers per class;
  m1      the classifier on the codes mu of the lab's VAE (2-D), trained on all the training
          images without their labels (Kingma et al. 2014's "M1": the VAE as a learned
          representation, the other way its "clearer latent space" could pay off).

Each training gets the same number of steps whatever the size of its set. For each n the
recipes are compared with `real` seed by seed (paired, `verdicts`): a difference counts when
every seed agrees on its sign and its mean is larger than the seed-to-seed standard deviation
of `real`.
"""

import dataclasses
import math
import os
import statistics
import time
from collections.abc import Callable

import numpy as np

from models import Classifier, ConditionalVAE
from nn import Adam, Generator
from nn.backend import get_backend, to_backend, to_numpy

from lab.cli import UsageError, prepare_out, print_now
from lab.config import LAB, build_model, config_from
from lab.data import Dataset, load_dataset
from lab.files import write_json, write_text
from lab.train import apply_in_batches, evaluate, fit
from .figures import save_curves_with_range, save_image_rows


@dataclasses.dataclass
class AugmentConfig:
    """The study's settings; the defaults take about ten minutes on a 2-core CPU. The lab's run
    (lab.config.LAB): its VAE is the M1 model, and the conditional VAE's shape."""

    dataset: str = LAB.dataset
    data_dir: str | None = None
    ns: tuple = (10, 30, 100, 300, 1000)  # labelled images per class
    seeds: tuple = (0, 1, 2)  # each: its own labelled subset, initial weights and noise
    hidden: tuple = (256,)  # the classifier's
    steps: int = 1500  # Adam steps for every classifier, whatever its training set's size
    batch_size: int = 64
    lr: float = 1e-3
    extra: int = 4  # shifted copies, or generated images, per labelled image
    max_shift: int = 2  # pixels, each way
    cvae_hidden: tuple = LAB.hidden  # the lab's VAE, conditioned on the class
    cvae_latent: int = LAB.latent_dim
    cvae_arch: str = LAB.arch  # the lab's MLP, or "conv": the convolutional VAE of models/conv.py
    cvae_channels: tuple = LAB.channels  # cvae_arch "conv": its convolutions' channels
    cvae_steps: int = 3000
    cvae_lr: float = 1e-3  # a larger step than the lab's 5e-4: it gets far fewer steps
    m1_epochs: int = 10  # of the lab's VAE (lab.config.LAB: its lr and batch) over all training images
    backend: str = "numpy"


QUICK = dict(dataset="digits", ns=(10, 30), seeds=(0, 1), hidden=(64,), steps=300, cvae_hidden=(64,),
             cvae_steps=400, m1_epochs=10, max_shift=1)  # --quick: seconds, for tests and a first look (8x8 images)


def study_config(given, quick=False, **fixed):
    """AugmentConfig from `given` (parsed flags, a dict: None is a flag not given) over QUICK's
    settings if `quick`, then `fixed`."""
    return config_from(AugmentConfig, given, QUICK if quick else None, **fixed)


# ------------------------------------------------------------------------------ the data


def shift_images(x, image_shape, shifts):
    """Each image of x: (N, H*W) moved by its row of shifts: (N, 2) ints (dy down, dx right).

    Pixels moved out of the frame are dropped and the ones moved in are 0, the background
    of these datasets: the same image, moved. Returns (N, H*W) of x's dtype. The classic
    augmentation, the `shift` recipe.
    """
    H, W = image_shape
    images = x.reshape(-1, H, W)
    moved = np.zeros_like(images)
    for dy, dx in {tuple(s) for s in np.asarray(shifts).tolist()}:  # each distinct shift once, for all its images
        rows = np.all(shifts == (dy, dx), axis=1)
        moved[rows, max(dy, 0):H + min(dy, 0), max(dx, 0):W + min(dx, 0)] = \
            images[rows, max(-dy, 0):H + min(-dy, 0), max(-dx, 0):W + min(-dx, 0)]
    return moved.reshape(x.shape)


def per_class_subset(y, n, rng):
    """Indices of n images of each class of the labels y: (N,), drawn without replacement by
    `rng` (a numpy.random.Generator), in a shuffled order: (n * classes,)."""
    picked = [rng.choice(np.flatnonzero(y == c), size=n, replace=False) for c in np.unique(y)]
    return rng.permutation(np.concatenate(picked))


def as_pixels(images, scale, like):
    """Images in [0, 1] as the dataset stores them (uint8, x / scale): so that every recipe's set is alike."""
    return np.clip(np.rint(images / scale), 0, 255).astype(like.dtype)


# ------------------------------------------------------------------------------ the records


@dataclasses.dataclass(frozen=True)
class Study:
    """What every classifier of the study shares: the settings, the data, the test set on the backend."""

    config: AugmentConfig
    data: Dataset
    xp: object  # the backend's array namespace
    x_test: object  # (n, D) uint8, on the backend
    y_test: object  # (n,)

    def pixels(self, x, y):
        """Features of labelled pixels x: (N, D) uint8 with labels y: (N,), host arrays, tested on the test images."""
        return Features(to_backend(x, self.xp), to_backend(y, self.xp), self.x_test, self.data.scale)


@dataclasses.dataclass(frozen=True)
class Labelled:
    """The labelled images one round (a seed and an n) starts from, on the host."""

    subset: np.ndarray  # (n * classes,) their indices in the training set
    x: np.ndarray  # (n * classes, D) uint8
    y: np.ndarray  # (n * classes,)
    host_rng: np.random.Generator  # the round's host stream: it drew the subset, and draws the shifts


@dataclasses.dataclass(frozen=True)
class Features:
    """What one classifier is trained and tested on, on the backend: x: (N, F) with labels y: (N,),
    x_test: (n, F); each minibatch is multiplied by `scale` (uint8 pixels: data.scale; codes: 1)."""

    x: object
    y: object
    x_test: object
    scale: float


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One way to train the classifier from n labelled images per class: what it is trained on."""

    key: str  # in results.json
    label: str  # in results.md and accuracy.png
    features: Callable  # (study, labelled, learned, rng) -> Features: its training set and its test set
    # (study, seed) -> `learned`: what `features` needs from every training image, unlabelled, learned once
    # per seed; None for a recipe that needs nothing beyond the labelled images.
    learn: Callable | None = None


def real_images(study, labelled, learned, rng):
    """The labelled images alone."""
    return study.pixels(labelled.x, labelled.y)


def with_shifted_copies(study, labelled, learned, rng):
    """The labelled images and `extra` copies of each, moved by up to max_shift pixels each way."""
    c = study.config
    copies = np.repeat(labelled.x, c.extra, axis=0)
    shifts = labelled.host_rng.integers(-c.max_shift, c.max_shift + 1, size=(copies.shape[0], 2))
    return study.pixels(np.concatenate([labelled.x, shift_images(copies, study.data.image_shape, shifts)]),
                        np.concatenate([labelled.y, np.repeat(labelled.y, c.extra)]))


def with_cvae_samples(study, labelled, learned, rng):
    """The labelled images and `extra` samples per image from a conditional VAE trained on them alone."""
    cvae = train_cvae(study, labelled.x, labelled.y, rng)
    labels = np.repeat(labelled.y, study.config.extra)  # as many of each class as its real ones times `extra`
    samples = to_numpy(cvae.sample(labels.shape[0], to_backend(labels, study.xp), rng))
    return study.pixels(np.concatenate([labelled.x, as_pixels(samples, study.data.scale, labelled.x)]),
                        np.concatenate([labelled.y, labels]))


def vae_codes(study, labelled, learned, rng):
    """The labelled images' codes mu under the M1 VAE (learned: train_m1_vae's), tested on the test images' codes."""
    z_train, z_test = learned
    xp = study.xp
    return Features(xp.take(z_train, to_backend(labelled.subset, xp), axis=0), to_backend(labelled.y, xp), z_test,
                    scale=1.0)


def train_m1_vae(study, seed):
    """mu of the training and test images, (N, 2) and (n, 2) on the backend, under the lab's VAE
    (lab.config.LAB) trained for m1_epochs on every training image without its label."""
    data, xp = study.data, study.xp
    rng = Generator(seed + 1000, xp)  # a stream of its own, apart from the classifiers'
    vae = build_model(LAB, data, rng)
    x_train = to_backend(data.x_train, xp)
    for _ in fit(vae, Adam(vae.params, lr=LAB.lr), x_train, LAB.batch_size, data.scale, rng,
                 epochs=study.config.m1_epochs):
        pass
    return tuple(apply_in_batches(vae.code, x, 1000, data.scale) for x in (x_train, study.x_test))


REAL = Recipe("real", "real images only", real_images)  # the baseline every other recipe is compared with
SHIFT = Recipe("shift", "+ shifted copies", with_shifted_copies)
CVAE = Recipe("cvae", "+ conditional VAE samples", with_cvae_samples)
M1 = Recipe("m1", "M1: classifier on VAE codes", vae_codes, learn=train_m1_vae)
RECIPES = (REAL, SHIFT, CVAE, M1)


# ------------------------------------------------------------------------------ training


def fit_for_steps(model, x, y, scale, steps, batch_size, lr, rng):
    """Adam on `model` for about `steps` steps over x: (N, D) with labels y: (N,), in whole epochs."""
    for _ in fit(model, Adam(model.params, lr=lr), x, batch_size, scale, rng,
                 epochs=math.ceil(steps * batch_size / x.shape[0]), y=y):
        pass
    return model


def accuracy(study, features, rng):
    """Test accuracy of the classifier trained on `features`."""
    c = study.config
    classifier = Classifier(features.x.shape[1], len(study.data.class_names), c.hidden, rng=rng)
    fit_for_steps(classifier, features.x, features.y, features.scale, c.steps, c.batch_size, c.lr, rng)
    return evaluate(classifier, features.x_test, 1000, features.scale, rng, y=study.y_test)["accuracy"]


def train_cvae(study, x, y, rng):
    """A conditional VAE trained on the labelled images x: (N, D) uint8 with labels y: (N,), host arrays."""
    c, data, xp = study.config, study.data, study.xp
    mean = x.mean(axis=0) * data.scale  # of the labelled images only: no other data is seen
    cvae = ConditionalVAE(data.input_dim, len(data.class_names), c.cvae_hidden, c.cvae_latent, x_mean=mean, rng=rng,
                          arch=c.cvae_arch, channels=c.cvae_channels, image_shape=data.image_shape)
    return fit_for_steps(cvae, to_backend(x, xp), to_backend(y, xp), data.scale, c.cvae_steps, c.batch_size,
                         c.cvae_lr, rng)


def run_seed(seed, n, recipe):
    """One seed per (seed, n, recipe): every training its own stream, the same in every run."""
    return (seed * 100_000 + n) * 10 + RECIPES.index(recipe)


def check(config, data):
    """The study's input, checked before any training: UsageError saying what is wrong."""
    classes = len(data.class_names)
    if data.y_train is None or classes < 2:
        raise UsageError(f"{data.name} has no classes to learn: augment.py needs a labelled dataset")
    smallest = min(np.bincount(data.y_train, minlength=classes))
    if max(config.ns) > smallest:
        raise UsageError(f"n = {max(config.ns)} images per class is more than the {smallest} of the smallest class "
                         f"of {data.name}: choose --n at most {smallest}")


def study(config, out, log=print_now):
    """Run the study; write results.json, results.md, accuracy.png and cvae_samples.png to `out`."""
    start = time.perf_counter()
    xp = get_backend(config.backend)
    data = load_dataset(config.dataset, config.data_dir)
    check(config, data)
    prepare_out(out)
    s = Study(config, data, xp, to_backend(data.x_test, xp), to_backend(data.y_test, xp))
    accuracies = {m.key: {n: [] for n in config.ns} for m in RECIPES}  # results.json's "accuracy"
    for seed in config.seeds:
        learned = {}
        for recipe in RECIPES:
            if recipe.learn is not None:
                learned[recipe] = recipe.learn(s, seed)
                log(f"seed {seed}: {recipe.key} learned from the unlabelled training images "
                    f"({time.perf_counter() - start:.0f} s)")
        for n in config.ns:
            host_rng = np.random.default_rng([seed, n])
            subset = per_class_subset(data.y_train, n, host_rng)
            labelled = Labelled(subset, data.x_train[subset], data.y_train[subset], host_rng)
            for recipe in RECIPES:
                rng = Generator(run_seed(seed, n, recipe), xp)
                acc = accuracy(s, recipe.features(s, labelled, learned.get(recipe), rng), rng)
                accuracies[recipe.key][n].append(acc)
                log(f"seed {seed}, n = {n:4d}, {recipe.key:5s}: test accuracy {acc:.4f} "
                    f"({time.perf_counter() - start:.0f} s)")
    results = {"config": dataclasses.asdict(config),
               "accuracy": {key: {str(n): a for n, a in by_n.items()} for key, by_n in accuracies.items()},
               "comparisons": verdicts(accuracies, config.ns), "seconds": time.perf_counter() - start}
    write_json(os.path.join(out, "results.json"), results)
    write_text(os.path.join(out, "results.md"), accuracy_table(results, config))
    curves = {m.label: [[accuracies[m.key][n][i] for n in config.ns] for i in range(len(config.seeds))]
              for m in RECIPES}  # (seeds, ns) for each recipe
    save_curves_with_range(curves, os.path.join(out, "accuracy.png"),
                                 title=f"{data.name}: test accuracy against labelled images per class",
                                 ylabel="test accuracy", xlabel="labelled images per class", x=config.ns, logx=True)
    cvae_samples(s, out)
    return results


def verdicts(accuracies, ns, baseline=REAL.key):
    """For each n and each recipe but the baseline, the paired differences with the baseline, seed
    by seed, and the verdict. accuracies: {recipe key: {n: [accuracy of each seed]}}."""
    comparisons = {}
    for n in ns:
        base = accuracies[baseline][n]
        spread = statistics.stdev(base) if len(base) > 1 else 0.0
        for key in accuracies:
            if key == baseline:
                continue
            differences = [a - r for a, r in zip(accuracies[key][n], base)]
            mean = statistics.mean(differences)
            agree = all(d > 0 for d in differences) or all(d < 0 for d in differences)
            verdict = ("better" if mean > 0 else "worse") if agree and abs(mean) > spread else "within the spread"
            comparisons[f"{key}@{n}"] = {"mean_difference": mean, "differences": differences,
                                         "real_spread": spread, "verdict": verdict}
    return comparisons


def accuracy_table(results, config):
    """results.md: mean ± std of each recipe's accuracy for each n, with its verdict against `real`."""
    acc, comparisons = results["accuracy"], results["comparisons"]
    rows = ["| n per class | " + " | ".join(m.label for m in RECIPES) + " |", "|---" * (len(RECIPES) + 1) + "|"]
    for n in config.ns:
        cells = []
        for m in RECIPES:
            values = acc[m.key][str(n)]
            cell = f"{statistics.mean(values):.3f} ± {statistics.stdev(values) if len(values) > 1 else 0:.3f}"
            if m is not REAL:
                c = comparisons[f"{m.key}@{n}"]
                cell += f" ({c['mean_difference']:+.3f}, {c['verdict']})"
            cells.append(cell)
        rows.append(f"| {n} | " + " | ".join(cells) + " |")
    return (f"# Test accuracy with n labelled images per class, {results['config']['dataset']}\n\n"
            f"Mean ± standard deviation over seeds {', '.join(map(str, config.seeds))}; in brackets, the mean "
            "difference with real images only, seed by seed, and whether it is larger than the seed-to-seed "
            "spread of real images only with every seed agreeing on its sign.\n\n" + "\n".join(rows)
            + f"\n\n{config.steps} Adam steps per classifier (lr {config.lr:g}, batch {config.batch_size}); "
            f"{config.extra} extra images per labelled one; the conditional VAE: {cvae_network(config)}, "
            f"{config.cvae_steps} Adam steps (lr {config.cvae_lr:g}); the whole study took {results['seconds']:.0f} s.\n")


def cvae_network(config):
    """The conditional VAE in words: "mlp 512, latent 2" or "conv 32,64, latent 16"."""
    widths = config.cvae_hidden if config.cvae_arch == "mlp" else config.cvae_channels
    return f"{config.cvae_arch} {','.join(map(str, widths))}, latent {config.cvae_latent}"


def cvae_samples(study, out):
    """cvae_samples.png: 10 samples of each class (one row per class) from a conditional VAE trained on
    the largest n of the first seed."""
    config, data, xp = study.config, study.data, study.xp
    seed, n = config.seeds[0], max(config.ns)
    subset = per_class_subset(data.y_train, n, np.random.default_rng([seed, n]))
    cvae = train_cvae(study, data.x_train[subset], data.y_train[subset], Generator(run_seed(seed, n, CVAE), xp))
    labels = np.repeat(np.arange(len(data.class_names)), 10)
    samples = to_numpy(cvae.sample(labels.shape[0], to_backend(labels, xp), Generator(seed + 2, xp)))
    save_image_rows({name: samples[c * 10:(c + 1) * 10] for c, name in enumerate(data.class_names)},
                          data.image_shape, os.path.join(out, "cvae_samples.png"),
                          title=f"Conditional VAE trained on {n} labelled images per class: 10 samples per class")
