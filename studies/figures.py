"""The studies' own figures: a bar per kind (bench.py), curves over seeds (quality.py, augment.py),
and methods side by side (compare_pca.py, augment.py), drawn with lab/plots.py's pieces.

As there: plain NumPy arrays in, a PNG written atomically, images in [0, 1] drawn as stored.
"""

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lab.plots import TAB10, draw_latent_scatter, draw_manifold, figure_saved_to, image_figure, image_grid, show_image


def save_bar_chart(labels, values, path, title, ylabel, reference=None, reference_label="reference"):
    """One bar per label with its value written on top, and an optional dashed horizontal
    line at `reference` (a lower bound, say), named in the legend as `reference_label`."""
    fig = Figure(figsize=(max(4.0, 1.3 * len(labels) + 2), 4))
    ax = fig.subplots()
    with figure_saved_to(path, fig):
        bars = ax.bar(labels, values, color=TAB10(np.arange(len(labels)) % 10))
        ax.bar_label(bars, labels=[f"{v:.4g}" for v in values], padding=2)
        ax.margins(y=0.12)  # room for the values above the tallest bar
        if reference is not None:
            ax.axhline(reference, ls="--", color="0.3", label=f"{reference_label} ({reference:.4g})")
            ax.margins(y=0.3)  # room for the legend above the bars and their values
            ax.legend(loc="upper center")
        ax.set(title=title, ylabel=ylabel)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)  # grid lines behind the bars
        if max((len(s) for s in labels), default=0) > 12:
            for label in ax.get_xticklabels():  # long names would overlap
                label.set(rotation=20, ha="right")
        fig.tight_layout()


def save_curves_with_range(curves, path, title, ylabel, xlabel="epoch", x=None, logx=False):
    """Several runs of each method as its mean curve and the band from the lowest to the highest run.

    curves: {label: array (runs, points)}, each run's value at the points x (default 1, 2, ...:
    after each epoch); logx: a logarithmic x axis.
    """
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    with figure_saved_to(path, fig):
        if logx:
            ax.set_xscale("log")
        for label, runs in curves.items():
            runs = np.asarray(runs, dtype=np.float64)
            points = np.arange(1, runs.shape[1] + 1) if x is None else np.asarray(x)
            line, = ax.plot(points, runs.mean(axis=0), "-", marker="o" if len(points) <= 40 else None, markersize=3,
                            label=f"{label} (mean of {runs.shape[0]})")
            ax.fill_between(points, runs.min(axis=0), runs.max(axis=0), color=line.get_color(), alpha=0.25, lw=0)
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
        if x is None:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        else:
            ax.set_xticks(points, [f"{p:g}" for p in points])
        ax.grid(alpha=0.3)
        ax.legend(title="shaded: lowest to highest run")
        fig.tight_layout()


def _panels(n, size, ncols):
    nrows = -(-n // ncols)
    fig = Figure(figsize=(size * ncols, size * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes.ravel()


def save_embeddings(codes, labels, class_names, path, title="Test set, encoded by each method"):
    """One scatter panel per method, in a row; the class legend once, beside the last.
    codes: {method: (n, k) codes of the same n test images}."""
    fig, axes = _panels(len(codes), 4.5, ncols=len(codes))
    with figure_saved_to(path, fig):
        for i, (ax, (method, z)) in enumerate(zip(axes, codes.items())):
            draw_latent_scatter(ax, z, labels, class_names, method, legend=i == len(codes) - 1)
        fig.suptitle(title)


def save_manifolds(planes, image_shape, path, title="Each method's decoder over its latent plane"):
    """One draw_manifold panel per method, two to a row.
    planes: {method: (images in latent_grid order, extent)}."""
    fig, axes = _panels(len(planes), 7.0, ncols=2)
    with figure_saved_to(path, fig):
        for ax, (method, (images, extent)) in zip(axes, planes.items()):
            draw_manifold(ax, images, image_shape, extent, method)
        fig.suptitle(title)


def save_image_rows(rows, image_shape, path, title="Test images and each method's reconstructions"):
    """Rows of images, one labelled row per entry of rows: {label: (n, H*W)}, all of the same n."""
    n = len(next(iter(rows.values())))
    grid = image_grid(np.concatenate(list(rows.values())), image_shape, len(rows), n)
    fig, ax = image_figure(grid.shape)
    with figure_saved_to(path, fig):
        show_image(ax, grid, title)
        H = image_shape[0]
        ax.set_yticks([(H + 1) * r + (H - 1) / 2 for r in range(len(rows))], list(rows))
        ax.tick_params(left=False)


# --- Part Four (studies/objective.py): one record per model, runs[i] with its arrays[name] ---------

MARKERS = {"learned variance": "*", "warm-up": "s", "free bits": "D"}  # the beta sweep is drawn as lines
VIRIDIS = matplotlib.colormaps["viridis"]


def draw_beta_curves(ax, runs, y, label, groups=("beta sweep", *MARKERS)):
    """The beta sweep as one line per latent size through its models' (beta, y(run)), and the other models
    of `groups` as markers at their beta (the learned variance at its equivalent, 2 sigma**2); a log x axis."""
    for i, k in enumerate(sorted({r["latent_dim"] for r in runs})):
        sweep = sorted((r["beta"], y(r)) for r in runs if r["group"] == "beta sweep" and r["latent_dim"] == k)
        colour = TAB10(i)
        if sweep:
            ax.plot(*zip(*sweep), "o-", color=colour, label=f"latent {k}, beta sweep")
        for r in runs:
            if r["latent_dim"] == k and r["group"] in MARKERS and r["group"] in groups:
                ax.plot(r["beta_equivalent"] if r["group"] == "learned variance" else r["beta"], y(r),
                        MARKERS[r["group"]], color=colour, markersize=11 if r["group"] == "learned variance" else 7,
                        markeredgecolor="black", label=f"latent {k}, {r['group']}")
    ax.set_xscale("log")
    ax.set(xlabel="beta, the KL's weight (the learned variance at its equivalent, 2 sigma**2)", ylabel=label)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def save_rate_distortion(runs, path, title):
    """Each model at (rate, squared error): the beta sweep's curves, beta written beside each point, the
    other models as markers; the dashed lines are the lab's loss (beta = 1) held at the lab's model's value."""
    fig = Figure(figsize=(8, 6))
    ax = fig.subplots()
    with figure_saved_to(path, fig):
        for i, k in enumerate(sorted({r["latent_dim"] for r in runs})):
            colour = TAB10(i)
            sweep = sorted((r["rate"], r["squared_error"], r["beta"]) for r in runs
                           if r["group"] == "beta sweep" and r["latent_dim"] == k)
            if sweep:
                ax.plot([s[0] for s in sweep], [s[1] for s in sweep], "o-", color=colour, label=f"latent {k}, beta sweep")
                for rate, se, beta in sweep:
                    ax.annotate(f"{beta:g}", (rate, se), textcoords="offset points", xytext=(4, 4), fontsize=7)
            for r in runs:
                if r["latent_dim"] == k and r["group"] in MARKERS:
                    ax.plot(r["rate"], r["squared_error"], MARKERS[r["group"]], color=colour, markeredgecolor="black",
                            markersize=11 if r["group"] == "learned variance" else 7,
                            label=f"latent {k}, {r['group']}")
                if r["latent_dim"] == k and r["group"] == "beta sweep" and r["beta"] == 1.0:
                    total = r["rate"] + r["squared_error"]
                    ax.axline((0, total), slope=-1, ls="--", lw=0.8, color=colour, alpha=0.6)
        ax.set(title=title, xlabel="rate: KL(q(z|x) || p(z)), nats per image",
               ylabel="distortion: summed squared error per image")
        ax.set_xlim(left=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)


def save_objective_figures(runs, arrays, config, out):
    """Part Four's figures in `out`: rate_distortion.png, bound_and_units.png (L_K and the active units
    against beta), kl_per_dim.png (each latent-16-or-larger model's KL per dimension, largest first),
    and samples_traversals.png (chosen models' samples beside their traversals)."""
    save_rate_distortion(runs, out / "rate_distortion.png", f"Rate against distortion, {config.dataset}")
    fig = Figure(figsize=(13, 4.5))
    axes = fig.subplots(1, 2)
    with figure_saved_to(out / "bound_and_units.png", fig):
        fixed = ("beta sweep", "warm-up", "free bits")  # the learned variance's density is on another scale
        draw_beta_curves(axes[0], runs, lambda r: r["bound"], f"L_{config.bound_K}, nats per test image", fixed)
        draw_beta_curves(axes[1], runs, lambda r: r["active_units"], "active units (Var of mu_j > 0.01)")
        axes[0].set_title("the bound on log p(x), decoder variance 1/2 (the learned one's: table)")
        axes[1].set_title("dimensions in use")
    wide = [r for r in runs if r["latent_dim"] > 2]
    fig = Figure(figsize=(9, 5))
    ax = fig.subplots()
    with figure_saved_to(out / "kl_per_dim.png", fig):
        sweep = [r for r in wide if r["group"] == "beta sweep" and r["latent_dim"] == min(x["latent_dim"] for x in wide)]
        others = [r for r in wide if r not in sweep]
        for i, r in enumerate(sweep):  # the sweep from dark (small beta) to light; the other models dashed
            ax.plot(range(1, r["latent_dim"] + 1), sorted(r["kl_per_dim"], reverse=True), marker=".",
                    color=VIRIDIS(i / max(1, len(sweep) - 1)), label=r["name"])
        for i, r in enumerate(others):
            ax.plot(range(1, r["latent_dim"] + 1), sorted(r["kl_per_dim"], reverse=True), marker="x", ls="--",
                    color=TAB10((i + 1) % 10), label=r["name"])
        ax.set_yscale("symlog", linthresh=0.01)
        ax.set(title="The KL of each dimension, largest first", xlabel="dimension, by KL",
               ylabel="KL_j, nats per test image")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, ncols=2)
    betas = [r["beta"] for r in runs if r["group"] == "beta sweep"]
    shown = [r for r in wide if r["group"] != "beta sweep" or r["beta"] in (min(betas), 1.0, max(betas))] or runs
    save_samples_and_traversals(shown, arrays, out / "samples_traversals.png")


def save_samples_and_traversals(runs, arrays, path, image_shape=None):
    """A row per model: 16 samples from the prior, then its traversal of the five dimensions of highest KL."""
    fig = Figure(figsize=(15, 2.2 * len(runs)))
    axes = fig.subplots(len(runs), 2, squeeze=False, width_ratios=(1, 1.1))
    with figure_saved_to(path, fig):
        for (left, right), r in zip(axes, runs):
            a = arrays[r["name"]]
            side = int(round(np.sqrt(a["samples"].shape[1])))
            shape = image_shape or (side, side)
            show_image(left, image_grid(a["samples"][:16], shape, 2, 8), f"{r['name']}: samples")
            dims = list(a["dims"])
            show_image(right, image_grid(a["traversal"], shape, len(dims), len(a["traversal"]) // len(dims)),
                       f"traversals of z{', z'.join(map(str, dims))} (rows), -3 to 3")
