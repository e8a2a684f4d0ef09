"""The studies' figures: each writes a readable PNG, of the layout asked for, and closes its figure."""

import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pytest

from studies import figures

SHAPE = (8, 8)
CLASSES = [f"class {c}" for c in range(10)]


def images(n, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, SHAPE[0] * SHAPE[1]))


@pytest.fixture(autouse=True)
def no_figure_left_open():
    yield
    assert plt.get_fignums() == [], "a figure was left open"


def test_every_study_figure_is_written_as_a_png(tmp_path):
    figures.save_bar_chart(["ours", "PyTorch"], [2.2, 2.4], tmp_path / "bars.png", "Seconds per epoch", "seconds",
                           reference=1.1, reference_label="GEMM-bound limit")
    figures.save_curves_with_range({"ours": [[3.0, 2.0, 1.5], [3.2, 2.1, 1.4]]}, tmp_path / "curves.png", "Loss",
                                   "loss")
    z, labels = np.random.default_rng(0).normal(size=(50, 2)), np.arange(50) % 10
    figures.save_embeddings({"PCA": z, "VAE": z * 2}, labels, CLASSES, tmp_path / "embeddings.png")
    figures.save_manifolds({"PCA": (images(441), (-3.0, 3.0)), "VAE": (images(441, 1), (-4.0, 4.0))}, SHAPE,
                           tmp_path / "manifolds.png")
    figures.save_image_rows({"test image": images(12), "PCA": images(12, 1)}, SHAPE, tmp_path / "rows.png")
    shapes = {p.stem: matplotlib.image.imread(p).shape for p in tmp_path.iterdir()}
    assert sorted(shapes) == ["bars", "curves", "embeddings", "manifolds", "rows"]  # no temporary files
    assert shapes["embeddings"][1] > 1.5 * shapes["embeddings"][0]  # two panels side by side
    assert shapes["rows"][1] > 4 * shapes["rows"][0]  # two rows of twelve images
