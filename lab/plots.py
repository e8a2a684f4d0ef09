"""A run's figures, and the panels every other figure is drawn with, from plain NumPy arrays.

Images are rows of pixel values in [0, 1], shape (n, H*W), drawn as the dataset stores
them (0 black, 1 white) with nearest-neighbour pixels, never smoothed. Each save_* writes
a PNG atomically (a temporary file beside `path`, renamed over it once complete). Each
draw_* draws one panel onto a given Axes, so that a comparison can put several models side
by side (studies/figures.py), and a notebook can draw them inline.
"""

import contextlib

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from explorer.page import page_text, why_no_page

from .files import atomic_write

# Figures are matplotlib.figure.Figure objects, not pyplot's: they need no display and no
# backend setting (a PNG is drawn by Agg whatever backend is chosen), they are never left
# open in pyplot's list, and a notebook importing this module keeps its inline figures.
TAB10 = matplotlib.colormaps["tab10"]

DPI = 130
IMAGE_SIDE_PX = 900  # about how wide (or tall) a figure of tiled images is drawn, in screen pixels
BLANK = 1.0  # padding and empty cells of a tiled image: white, apart from the mostly black images


@contextlib.contextmanager
def figure_saved_to(path, fig):
    """Yield `fig` for drawing, then write it to `path` as a PNG.

    bbox_inches="tight" grows or crops the page to fit titles and tick labels without
    rescaling the Axes, which keeps the pixel-exact image figures of image_figure exact.
    """
    yield fig
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.1)


def image_figure(grid_shape):
    """A figure with one Axes that shows a (h, w) image at a whole number of screen pixels
    per image pixel, so that nearest-neighbour drawing makes every pixel the same size."""
    h, w = grid_shape
    scale = max(1, round(IMAGE_SIDE_PX / max(h, w)))
    fig = Figure(figsize=(scale * w / DPI, scale * h / DPI))
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    return fig, ax


def show_image(ax, image, title):
    """Draw one grayscale image (h, w) of values in [0, 1] on ax, without axes ticks."""
    ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])


# ---------------------------------------------------------------------------- loss

TRAIN_LABEL = "train (mean over the epoch, while it learns)"


def save_loss_curve(epochs, path, title="Training loss"):
    """Train and test loss per image against epoch; for a VAE also the two terms of its loss.

    epochs: records like {"epoch": 1, "train_loss": 40.1, "test_loss": 38.2, "recon": 30.0, "kl": 8.2}.
    A second panel, of the train loss's reconstruction and KL terms, is drawn when every
    record has both "recon" and "kl".
    """
    epoch = [r["epoch"] for r in epochs]
    has_terms = len(epochs) > 0 and all("recon" in r and "kl" in r for r in epochs)
    style = dict(marker="o" if len(epoch) <= 40 else None, markersize=4)  # markers only while they can be told apart
    fig = Figure(figsize=(11 if has_terms else 6, 4))
    axes = fig.subplots(1, 2 if has_terms else 1, squeeze=False)
    with figure_saved_to(path, fig):
        ax = axes[0, 0]
        # The train loss is the running mean over each epoch, taken while the weights still change
        # (why it sits above the test loss, measured at the epoch's end, in epoch 1).
        ax.plot(epoch, [r["train_loss"] for r in epochs], "-", label=TRAIN_LABEL, **style)
        ax.plot(epoch, [r["test_loss"] for r in epochs], "--", label="test (after the epoch)", **style)
        ax.set(xlabel="epoch", ylabel="loss per image", title=title)
        if has_terms:
            ax = axes[0, 1]
            ax.plot(epoch, [r["recon"] for r in epochs], "-", label="reconstruction", **style)
            ax.plot(epoch, [r["kl"] for r in epochs], "-", label="KL(q(z|x) || N(0, I))", color="C2", **style)
            ax.set(xlabel="epoch", ylabel="loss per image", title="Train loss = reconstruction + KL")
        for ax in axes[0]:
            if 0 < len(epoch) <= 10:  # a tick at each epoch, and room around a lone one
                ax.set_xticks(epoch)
                ax.set_xlim(min(epoch) - 0.5, max(epoch) + 0.5)
            else:
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
            ax.grid(alpha=0.3)
            ax.legend()
        fig.tight_layout()


# -------------------------------------------------------------------------- images


def image_grid(images, image_shape, nrows, ncols, pad=1):
    """Tile images, row by row: (n, H*W) -> one (nrows*(H+pad)-pad, ncols*(W+pad)-pad) image.

    Image k goes to row k // ncols, column k % ncols. Cells beyond the n-th image, and the
    `pad` pixels between cells, are blank (BLANK, white); images beyond nrows*ncols are left out.
    """
    H, W = image_shape
    grid = np.full((nrows * (H + pad) - pad, ncols * (W + pad) - pad), BLANK, dtype=np.float64)
    for k, image in enumerate(images[: nrows * ncols]):
        r, c = divmod(k, ncols)
        top, left = r * (H + pad), c * (W + pad)
        grid[top:top + H, left:left + W] = np.reshape(image, (H, W))
    return grid


def reconstruction_grid(x, x_hat, image_shape, nrows=8, ncols=16):
    """The tiled image of save_reconstructions: rows of test images and of their reconstructions, alternating.

    x, x_hat: (n, H*W) with n >= nrows // 2 * ncols (64 for the lab's 8x16 grid). Row 2k holds
    test images k*ncols ... (k+1)*ncols - 1, and row 2k+1 their reconstructions, each beneath
    its original. nrows must be even.
    """
    if nrows % 2:
        raise ValueError(f"nrows = {nrows}: rows come in pairs (original, reconstruction), so it must be even")
    pairs = nrows // 2
    if len(x) < pairs * ncols or len(x_hat) < pairs * ncols:
        raise ValueError(f"a {nrows}x{ncols} grid needs {pairs * ncols} images and reconstructions, "
                         f"got {len(x)} and {len(x_hat)}")
    rows = []
    for k in range(pairs):
        rows.append(x[k * ncols:(k + 1) * ncols])
        rows.append(x_hat[k * ncols:(k + 1) * ncols])
    return image_grid(np.concatenate(rows), image_shape, nrows, ncols)


def save_reconstructions(x, x_hat, image_shape, path, title="Test images and reconstructions", ncols=16, nrows=8):
    """The lab's 16x8 grid of reconstruction_grid: 64 test images, each with its reconstruction
    beneath it; the rows are labelled "original" and "reconstruction" on the left."""
    grid = reconstruction_grid(x, x_hat, image_shape, nrows, ncols)
    fig, ax = image_figure(grid.shape)
    with figure_saved_to(path, fig):
        show_image(ax, grid, title)
        H = image_shape[0]
        ax.set_yticks([(H + 1) * r + (H - 1) / 2 for r in range(nrows)])  # the middle of each row
        ax.set_yticklabels(["original", "reconstruction"] * (nrows // 2))
        ax.tick_params(left=False)


def save_samples(x, image_shape, path, title="Samples from the prior", nrows=8, ncols=16):
    """New images x: (n, H*W), tiled nrows x ncols row by row (the first nrows*ncols of them)."""
    grid = image_grid(x, image_shape, nrows, ncols)
    fig, ax = image_figure(grid.shape)
    with figure_saved_to(path, fig):
        show_image(ax, grid, title)


def draw_traversals(ax, images, dims, values, image_shape, title):
    """images: (len(dims) * len(values), H*W), one row per dimension of `dims` swept through `values`
    (lab/codes.py, traversal), tiled with each row named z_j and each column its value."""
    grid = image_grid(images, image_shape, len(dims), len(values))
    show_image(ax, grid, title)
    H, W = image_shape
    ax.set_yticks([(H + 1) * r + (H - 1) / 2 for r in range(len(dims))], [f"z{j}" for j in dims])
    ax.set_xticks([(W + 1) * c + (W - 1) / 2 for c in range(len(values))], [f"{v:g}" for v in values])
    ax.tick_params(left=False, bottom=False)


def save_traversals(images, dims, values, image_shape, path, title="Traversals"):
    """The picture of draw_traversals as a figure of its own (traversals.png)."""
    fig, ax = image_figure(((image_shape[0] + 1) * len(dims) - 1, (image_shape[1] + 1) * len(values) - 1))
    with figure_saved_to(path, fig):
        draw_traversals(ax, images, dims, values, image_shape, title)


# -------------------------------------------------------------------- latent space


def draw_latent_scatter(ax, z, labels, class_names, title, legend=True):
    """Codes z: (n, k) as points coloured by their class labels: (n,) ints indexing class_names.

    k = 2: z as it is. k > 2: projected onto the first two principal components of z
    (the directions of largest variance, from the SVD of the centred codes). k = 1: z
    against the class, with a little vertical jitter so that the points do not hide one another.
    """
    z = np.asarray(z, dtype=np.float64)
    labels = np.asarray(labels)
    n, k = z.shape
    xlabel, ylabel = "z1", "z2"
    if k == 1:
        jitter = np.random.default_rng(0).uniform(-0.3, 0.3, n)
        z = np.column_stack([z[:, 0], labels + jitter])
        ylabel = "class"
    elif k > 2:
        centred = z - z.mean(axis=0)
        _, S, Vt = np.linalg.svd(centred, full_matrices=False)
        z = centred @ Vt[:2].T  # (n, 2): coordinates along the first two principal axes
        share = S**2 / np.sum(S**2)  # fraction of the codes' variance along each axis
        xlabel, ylabel = (f"PC {i + 1} of z ({100 * share[i]:.0f}% of variance)" for i in range(2))
        title = f"{title}\n(first 2 principal components of the {k}-D codes)"

    # One scatter in a random order, not one per class: otherwise the class drawn last
    # would cover the others wherever they overlap.
    order = np.random.default_rng(0).permutation(n)
    colours = TAB10(labels[order] % 10)
    ax.scatter(z[order, 0], z[order, 1], s=4, c=colours, alpha=0.5, linewidths=0)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    if k == 1:
        ax.set_yticks(range(len(class_names)), class_names)  # the classes name themselves: no legend needed
    elif legend:
        handles = [Line2D([], [], ls="", marker="o", color=TAB10(c % 10), label=name)
                   for c, name in enumerate(class_names)]
        # Beside the Axes, not on them: with thousands of codes any place inside hides some.
        ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def save_latent_scatter(z, labels, class_names, path, title="Test set in latent space"):
    """The scatter of draw_latent_scatter as a figure of its own."""
    fig = Figure(figsize=(8, 6.5))
    ax = fig.subplots()
    with figure_saved_to(path, fig):
        draw_latent_scatter(ax, z, labels, class_names, title)
        fig.tight_layout()


def latent_grid(n=21, extent=(-4.0, 4.0)):
    """(n*n, 2) latent points (z1, z2) of a regular n x n grid over [lo, hi]^2, in the order
    draw_manifold expects: row by row from the top (z2 = hi) down to z2 = lo, and within a
    row z1 rising from lo to hi. So point i*n + j is (z1_j, z2_i), as read on a map."""
    lo, hi = extent
    z1 = np.linspace(lo, hi, n)  # left to right
    z2 = np.linspace(hi, lo, n)  # top to bottom
    Z1, Z2 = np.meshgrid(z1, z2)  # (n, n) each, indexed [row, column]
    return np.column_stack([Z1.ravel(), Z2.ravel()]).astype(np.float64)


def draw_manifold(ax, images, image_shape, extent, title):
    """The decoder's images of latent_grid(n, extent) as one picture on latent axes.

    images: (n*n, H*W) in latent_grid's order (row-major, z2 falling down the rows, z1
    rising across the columns). The ticks are latent coordinates, placed at the centres of
    the cells whose image was decoded from exactly that point.
    """
    n = int(round(np.sqrt(len(images))))
    if n * n != len(images):
        raise ValueError(f"{len(images)} images do not fill a square grid; decode latent_grid(n) for some n")
    H, W = image_shape
    ax.imshow(image_grid(images, image_shape, n, n, pad=0), cmap="gray", vmin=0.0, vmax=1.0,
              interpolation="nearest")
    lo, hi = extent
    ticks = np.linspace(lo, hi, 5)
    # Cell j is centred on pixel j*W + (W-1)/2 and holds z1 = lo + j*(hi-lo)/(n-1); likewise down the rows for z2.
    ax.set_xticks((ticks - lo) / (hi - lo) * (n - 1) * W + (W - 1) / 2, [f"{t:g}" for t in ticks])
    ax.set_yticks((hi - ticks) / (hi - lo) * (n - 1) * H + (H - 1) / 2, [f"{t:g}" for t in ticks])
    ax.set(xlabel="z1", ylabel="z2", title=title)


def save_manifold(images, image_shape, path, extent=(-4.0, 4.0), title="Decoded latent plane"):
    """The picture of draw_manifold as a figure of its own (the lab's figures 1 and 2)."""
    n = int(round(np.sqrt(len(images))))
    fig, ax = image_figure((n * image_shape[0], n * image_shape[1]))
    with figure_saved_to(path, fig):
        draw_manifold(ax, images, image_shape, extent, title)


def write_explorer(path, model, data, z, log=print, **about):
    """explorer.html of `model` (explorer/page.py) to `path`, atomically; returns path, or None (and logs
    one line why) where the page cannot show the model. z: (n, J) its test codes; about: page_text's."""
    reason = why_no_page(model)
    if reason:
        log(reason)
        return None
    with atomic_write(path) as f:  # bytes: the page is UTF-8 whatever the locale
        f.write(page_text(model, data, z, **about).encode("utf-8"))
    return path
