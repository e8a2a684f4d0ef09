"""The studies' own figures: a bar per kind (bench.py), curves over seeds (quality.py, augment.py),
and methods side by side (compare_pca.py, augment.py), drawn with lab/plots.py's pieces.

As there: plain NumPy arrays in, a PNG written atomically, images in [0, 1] drawn as stored.
"""

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
