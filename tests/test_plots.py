"""Figures: the grid layout is exact, every figure writes a readable PNG and closes."""

import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pytest

from lab import plots

SHAPE = (8, 8)
RNG = np.random.default_rng(0)
IMAGES = RNG.uniform(0, 1, (128, 64))


def test_image_grid_puts_each_image_in_its_cell_and_leaves_the_rest_blank():
    images = np.stack([np.full(4, 0.1), np.full(4, 0.2), np.full(4, 0.3)])  # three 2x2 images
    grid = plots.image_grid(images, (2, 2), nrows=2, ncols=2, pad=1)
    assert grid.shape == (5, 5)
    assert (grid[0:2, 0:2] == 0.1).all() and (grid[0:2, 3:5] == 0.2).all() and (grid[3:5, 0:2] == 0.3).all()
    assert (grid[3:5, 3:5] == 1.0).all() and (grid[2, :] == 1.0).all()  # empty cell and padding


def test_latent_grid_runs_row_by_row_from_the_top_left():
    z = plots.latent_grid(21, (-4.0, 4.0))
    assert z.shape == (441, 2)
    assert tuple(z[0]) == (-4.0, 4.0) and tuple(z[20]) == (4.0, 4.0) and tuple(z[-1]) == (4.0, -4.0)


def read_png(path):
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and min(image.shape[:2]) > 200
    return image


@pytest.mark.parametrize("k", [1, 2, 5])
def test_latent_scatter_for_any_code_size(tmp_path, k):
    plots.save_latent_scatter(RNG.normal(size=(300, k)), RNG.integers(0, 10, 300), [str(c) for c in range(10)],
                              tmp_path / "scatter.png")
    read_png(tmp_path / "scatter.png")


def test_every_figure_is_written_and_closed(tmp_path):
    history = [{"epoch": e, "train_loss": 40 / e, "test_loss": 41 / e, "recon": 35 / e, "kl": 5.0} for e in (1, 2, 3)]
    plots.save_loss_curve(history, tmp_path / "loss.png")
    plots.save_loss_curve([{k: r[k] for k in ("epoch", "train_loss", "test_loss")} for r in history],
                          tmp_path / "loss_ae.png")
    plots.save_reconstructions(IMAGES[:64], IMAGES[64:], SHAPE, tmp_path / "recon.png")
    plots.save_samples(IMAGES, SHAPE, tmp_path / "samples.png")
    plots.save_manifold(RNG.uniform(0, 1, (441, 64)), SHAPE, tmp_path / "manifold.png")
    plots.save_bar_chart(["ours", "reference"], [2.2, 2.4], tmp_path / "bars.png", "Seconds", "s", reference=1.1)
    for name in ("loss", "loss_ae", "recon", "samples", "manifold", "bars"):
        read_png(tmp_path / f"{name}.png")
    assert plt.get_fignums() == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{n}.png" for n in ("loss", "loss_ae", "recon", "samples", "manifold", "bars"))  # no temporary files
