"""Every figure of the project, drawn from plain NumPy arrays.

Images are rows of pixel values in [0, 1], shape (n, H*W), drawn in grayscale without
interpolation. Each save_* writes a PNG atomically and closes its figure; draw_*
functions draw one panel onto a given Axes, for figures of several panels.
"""

import matplotlib

matplotlib.use("Agg")  # no display needed: figures go to files

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from nn.checkpoint import atomic_write  # noqa: E402

DPI = 130


def _save(fig, path):
    fig.tight_layout()
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=DPI)
    plt.close(fig)


def save_loss_curve(epochs, path, title="Training loss"):
    """Train and test loss per image against epoch; for a VAE also its two terms.

    epochs: records like {"epoch": 1, "train_loss": ..., "test_loss": ..., "recon": ..., "kl": ...}.
    """
    epoch = [r["epoch"] for r in epochs]
    has_terms = all("kl" in r for r in epochs)
    fig, axes = plt.subplots(1, 2 if has_terms else 1, figsize=(11 if has_terms else 6, 4), squeeze=False)
    ax = axes[0, 0]
    ax.plot(epoch, [r["train_loss"] for r in epochs], "o-", label="train")
    ax.plot(epoch, [r["test_loss"] for r in epochs], "s--", label="test")
    ax.set(xlabel="epoch", ylabel="loss per image", title=title)
    if has_terms:
        ax = axes[0, 1]
        ax.plot(epoch, [r["recon"] for r in epochs], "o-", label="reconstruction (summed squared error)")
        ax.plot(epoch, [r["kl"] for r in epochs], "^-", label="KL(q(z|x) || N(0, I))")
        ax.set(xlabel="epoch", ylabel="per image", title="The two terms of the training loss")
    for ax in axes[0]:
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    _save(fig, path)


def image_grid(images, image_shape, nrows, ncols, pad=1):
    """Tile images: (n, H*W) -> one (nrows*(H+pad)-pad, ncols*(W+pad)-pad) array, row by row.

    Cells beyond the n-th image, and the padding, are blank (1.0, white).
    """
    H, W = image_shape
    grid = np.ones((nrows * (H + pad) - pad, ncols * (W + pad) - pad), dtype=np.float64)
    for k, image in enumerate(images[: nrows * ncols]):
        r, c = divmod(k, ncols)
        grid[r * (H + pad): r * (H + pad) + H, c * (W + pad): c * (W + pad) + W] = image.reshape(H, W)
    return grid


def _show_grid(ax, grid, title):
    ax.imshow(grid, cmap="gray_r", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])


def save_reconstructions(x, x_hat, image_shape, path, title="Test images and reconstructions", ncols=16, nrows=8):
    """The lab's 16x8 grid: `nrows` rows of `ncols`, originals and reconstructions alternating.

    x, x_hat: (n, H*W), n >= nrows // 2 * ncols; row 2k holds test images, row 2k+1 the
    reconstructions of the images just above them.
    """
    pairs = nrows // 2
    rows = []
    for k in range(pairs):
        rows.append(x[k * ncols:(k + 1) * ncols])
        rows.append(x_hat[k * ncols:(k + 1) * ncols])
    grid = image_grid(np.concatenate(rows), image_shape, nrows, ncols)
    fig, ax = plt.subplots(figsize=(ncols * 0.55, nrows * 0.6 + 0.6))
    _show_grid(ax, grid, title)
    H = image_shape[0]
    ax.set_yticks([(H + 1) * r + H / 2 for r in range(nrows)])
    ax.set_yticklabels(["original", "reconstruction"] * pairs, fontsize=7)
    ax.tick_params(left=False)
    _save(fig, path)


def save_samples(x, image_shape, path, title="Samples from the prior", nrows=8, ncols=16):
    """New images x: (n, H*W), tiled nrows x ncols."""
    fig, ax = plt.subplots(figsize=(ncols * 0.55, nrows * 0.55 + 0.6))
    _show_grid(ax, image_grid(x, image_shape, nrows, ncols), title)
    _save(fig, path)


def draw_latent_scatter(ax, z, labels, class_names, title):
    """Codes z: (n, k) coloured by class. k = 2 as is; k > 2 projected onto the first two
    principal components of z; k = 1 against the class, with a little vertical jitter."""
    z = np.asarray(z, dtype=np.float64)
    xlabel, ylabel = "z1", "z2"
    if z.shape[1] == 1:
        jitter = np.random.default_rng(0).uniform(-0.3, 0.3, len(z))
        z = np.column_stack([z[:, 0], labels + jitter])
        ylabel = "class (with jitter)"
    elif z.shape[1] > 2:
        centred = z - z.mean(axis=0)
        _, _, Vt = np.linalg.svd(centred, full_matrices=False)
        z = centred @ Vt[:2].T
        xlabel, ylabel = "PC 1 of z", "PC 2 of z"
        title = f"{title} (first 2 PCs of {Vt.shape[1]}-D codes)"
    cmap = plt.get_cmap("tab10")
    for c, name in enumerate(class_names):
        chosen = labels == c
        ax.scatter(z[chosen, 0], z[chosen, 1], s=3, alpha=0.5, color=cmap(c % 10), label=name, rasterized=True)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(markerscale=4, fontsize=7, loc="best", framealpha=0.8)


def save_latent_scatter(z, labels, class_names, path, title="Test set in latent space"):
    fig, ax = plt.subplots(figsize=(7, 6))
    draw_latent_scatter(ax, z, labels, class_names, title)
    _save(fig, path)


def latent_grid(n=21, extent=(-4.0, 4.0)):
    """(n*n, 2) latent points of a regular grid over [lo, hi]^2, in the order draw_manifold
    expects: row by row from the top (z2 = hi) down, z1 rising from left to right."""
    lo, hi = extent
    z1 = np.linspace(lo, hi, n)
    z2 = np.linspace(hi, lo, n)
    return np.array([(a, b) for b in z2 for a in z1], dtype=np.float64)


def draw_manifold(ax, images, image_shape, extent, title):
    """The decoder's images of latent_grid(n, extent), images: (n*n, H*W), as one picture
    whose axes are the latent coordinates."""
    n = int(round(np.sqrt(len(images))))
    H, W = image_shape
    ax.imshow(image_grid(images, image_shape, n, n, pad=0), cmap="gray_r", vmin=0.0, vmax=1.0,
              interpolation="nearest")
    lo, hi = extent
    ticks = np.linspace(lo, hi, 5)
    ax.set_xticks((ticks - lo) / (hi - lo) * (n - 1) * W + W / 2)
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.set_yticks((hi - ticks) / (hi - lo) * (n - 1) * H + H / 2)
    ax.set_yticklabels([f"{t:g}" for t in ticks])
    ax.set(xlabel="z1", ylabel="z2", title=title)


def save_manifold(images, image_shape, path, extent=(-4.0, 4.0), title="Decoded latent plane"):
    fig, ax = plt.subplots(figsize=(8, 8))
    draw_manifold(ax, images, image_shape, extent, title)
    _save(fig, path)


def save_bar_chart(labels, values, path, title, ylabel, reference=None):
    """Bars with their values written on them, and an optional dashed reference line."""
    fig, ax = plt.subplots(figsize=(1.6 * len(labels) + 2, 4))
    bars = ax.bar(labels, values, color=plt.get_cmap("tab10")(range(len(labels))))
    ax.bar_label(bars, fmt="%.2f")
    if reference is not None:
        ax.axhline(reference, ls="--", color="gray", label=f"reference {reference:.2f}")
        ax.legend()
    ax.set(title=title, ylabel=ylabel)
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)
