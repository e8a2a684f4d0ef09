"""Figures: the layouts are exact, every figure writes a readable PNG atomically and closes."""

import matplotlib.figure
import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pytest

from lab import plots

SHAPE = (8, 8)
CLASSES = [f"class {c}" for c in range(10)]
HISTORY = [{"epoch": e, "train_loss": 40 / e, "test_loss": 41 / e, "recon": 35 / e, "kl": 5.0} for e in (1, 2, 3)]


def images(n, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, SHAPE[0] * SHAPE[1]))


def read_png(path):
    """The PNG at path as an (h, w, channels) array, after checking it is a real picture."""
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and min(image.shape[:2]) > 200
    assert image[..., :3].std() > 0.05  # something was drawn, not a blank page
    return image


@pytest.fixture(autouse=True)
def no_figure_left_open():
    yield
    assert plt.get_fignums() == [], "a figure was left open"


# ---------------------------------------------------------------------- layouts


def test_image_grid_puts_each_image_in_its_cell_and_leaves_the_rest_blank():
    tiles = np.stack([np.arange(4) / 8, np.arange(4) / 8 + 0.5, np.full(4, 0.0)])  # three 2x2 images
    grid = plots.image_grid(tiles, (2, 2), nrows=2, ncols=2, pad=1)
    expected = np.array([
        [0.000, 0.125, 1.000, 0.500, 0.625],
        [0.250, 0.375, 1.000, 0.750, 0.875],
        [1.000, 1.000, 1.000, 1.000, 1.000],
        [0.000, 0.000, 1.000, 1.000, 1.000],
        [0.000, 0.000, 1.000, 1.000, 1.000],
    ])  # images row by row, each reshaped row-major; padding and the fourth cell blank (1.0)
    np.testing.assert_array_equal(grid, expected)


def test_image_grid_without_padding_and_with_more_images_than_cells():
    tiles = np.arange(5 * 4, dtype=np.float64).reshape(5, 4) / 20  # five 2x2 images into a 1x2 grid
    grid = plots.image_grid(tiles, (2, 2), nrows=1, ncols=2, pad=0)
    np.testing.assert_array_equal(grid, [[0.00, 0.05, 0.20, 0.25], [0.10, 0.15, 0.30, 0.35]])


def test_reconstruction_grid_puts_each_reconstruction_beneath_its_original():
    x = np.arange(4, dtype=np.float64)[:, None] * np.ones((1, 4)) / 10  # image i is all i/10
    x_hat = x + 0.5
    grid = plots.reconstruction_grid(x, x_hat, (2, 2), nrows=4, ncols=2)
    cell = lambda r, c: grid[3 * r:3 * r + 2, 3 * c:3 * c + 2]  # noqa: E731  2x2 images, pad 1
    for r, c, value in [(0, 0, 0.0), (0, 1, 0.1), (1, 0, 0.5), (1, 1, 0.6),
                        (2, 0, 0.2), (2, 1, 0.3), (3, 0, 0.7), (3, 1, 0.8)]:
        np.testing.assert_array_equal(cell(r, c), value)


def test_reconstruction_grid_refuses_odd_rows_and_too_few_images():
    with pytest.raises(ValueError, match="even"):
        plots.reconstruction_grid(images(64), images(64), SHAPE, nrows=7, ncols=16)
    with pytest.raises(ValueError, match="needs 64"):
        plots.reconstruction_grid(images(63), images(64), SHAPE, nrows=8, ncols=16)


def test_latent_grid_runs_row_by_row_from_the_top_left():
    z = plots.latent_grid(21, (-4.0, 4.0))
    assert z.shape == (441, 2) and z.dtype == np.float64
    assert tuple(z[0]) == (-4.0, 4.0)  # top left: z1 smallest, z2 largest
    assert tuple(z[20]) == (4.0, 4.0)  # end of the top row
    np.testing.assert_allclose(z[21], (-4.0, 3.6))  # start of the second row: z2 one step down
    assert tuple(z[-1]) == (4.0, -4.0)  # bottom right
    np.testing.assert_allclose(z[220], (0.0, 0.0), atol=1e-12)  # the centre of the grid is the origin


def test_manifold_draws_each_latent_point_where_its_ticks_say():
    n, lo, hi = 5, -2.0, 2.0
    z = plots.latent_grid(n, (lo, hi))
    # "Decode" z into flat 8x8 images whose brightness records z: top four rows z1, bottom four z2.
    record = lambda v: (v - lo) / (hi - lo)  # noqa: E731  [lo, hi] -> [0, 1]
    decoded = np.concatenate([np.repeat(record(z[:, :1]), 32, axis=1), np.repeat(record(z[:, 1:]), 32, axis=1)],
                             axis=1)
    fig, ax = plt.subplots()
    plots.draw_manifold(ax, decoded, SHAPE, (lo, hi), "manifold")
    picture = ax.images[0].get_array()
    x_ticks = {t.get_text().replace("\u2212", "-"): p for t, p in zip(ax.get_xticklabels(), ax.get_xticks())}
    y_ticks = {t.get_text().replace("\u2212", "-"): p for t, p in zip(ax.get_yticklabels(), ax.get_yticks())}
    plt.close(fig)
    assert picture.shape == (n * 8, n * 8)
    # The end ticks sit on the centres of the corner cells (pixel centres are whole numbers).
    assert (x_ticks["-2"], x_ticks["2"]) == (3.5, (n - 1) * 8 + 3.5)
    assert (y_ticks["2"], y_ticks["-2"]) == (3.5, (n - 1) * 8 + 3.5)
    for z1 in (-2.0, 0.0, 2.0):
        for z2 in (-2.0, 1.0, 2.0):
            column, row = int(x_ticks[f"{z1:g}"]), int(y_ticks[f"{z2:g}"])  # a pixel in the cell the ticks name
            top = row - row % 8
            assert picture[top, column] == pytest.approx(record(z1))  # top half of the cell
            assert picture[top + 7, column] == pytest.approx(record(z2))  # bottom half


def test_manifold_refuses_images_that_fill_no_square():
    fig, ax = plt.subplots()
    try:
        with pytest.raises(ValueError, match="square"):
            plots.draw_manifold(ax, images(440), SHAPE, (-4.0, 4.0), "manifold")
    finally:
        plt.close(fig)


# ---------------------------------------------------------------- latent scatter


def scatter_points(z, labels):
    """The (x, y) points and RGBA colours draw_latent_scatter drew, and the Axes' labels."""
    fig, ax = plt.subplots()
    plots.draw_latent_scatter(ax, z, labels, CLASSES, "codes")
    collection = ax.collections[0]
    drawn = collection.get_offsets(), collection.get_facecolors(), ax.get_xlabel(), ax.get_ylabel(), ax.get_title()
    plt.close(fig)
    return drawn


def sort_rows(a):
    return a[np.lexsort(a.T[::-1])]


def test_scatter_of_2d_codes_draws_z_itself_coloured_by_class():
    rng = np.random.default_rng(1)
    z, labels = rng.normal(size=(200, 2)), rng.integers(0, 10, 200)
    points, colours, xlabel, ylabel, _ = scatter_points(z, labels)
    assert (xlabel, ylabel) == ("z1", "z2")
    expected_colours = plt.get_cmap("tab10")(labels)[:, :3]
    drawn = sort_rows(np.column_stack([points, colours[:, :3]]))
    np.testing.assert_allclose(drawn, sort_rows(np.column_stack([z, expected_colours])))


def test_scatter_of_5d_codes_draws_their_first_two_principal_components():
    rng = np.random.default_rng(2)
    # Codes that lie in a plane of R^5, rotated and shifted: their first two principal
    # components are that plane, so distances between points survive the projection.
    plane = rng.normal(size=(300, 2)) * [3.0, 1.0]
    rotation, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    z = np.column_stack([plane, np.zeros((300, 3))]) @ rotation.T + 7.0
    points, _, xlabel, ylabel, title = scatter_points(z, rng.integers(0, 10, 300))
    assert xlabel.startswith("PC 1 of z") and ylabel.startswith("PC 2 of z") and "5-D" in title
    distances = lambda p: np.linalg.norm(p[:, None] - p[None], axis=-1)  # noqa: E731
    np.testing.assert_allclose(np.sort(distances(np.asarray(points)).ravel()), np.sort(distances(plane).ravel()),
                               atol=1e-8)
    assert np.asarray(points)[:, 0].std() > np.asarray(points)[:, 1].std()  # PC 1 holds the most variance


def test_scatter_of_1d_codes_draws_z_against_its_class():
    rng = np.random.default_rng(3)
    z, labels = rng.normal(size=(200, 1)), rng.integers(0, 10, 200)
    points, _, xlabel, _, _ = scatter_points(z, labels)
    assert xlabel == "z1"
    drawn = sort_rows(np.asarray(points))
    # Each point keeps z as its x and sits within the jitter of its own class on y.
    expected = sort_rows(np.column_stack([z[:, 0], labels]))
    np.testing.assert_array_equal(drawn[:, 0], expected[:, 0])
    assert np.all(np.abs(drawn[:, 1] - expected[:, 1]) <= 0.3)


@pytest.mark.parametrize("k", [1, 2, 5])
def test_latent_scatter_is_saved_for_any_code_size(tmp_path, k):
    rng = np.random.default_rng(k)
    plots.save_latent_scatter(rng.normal(size=(300, k)), rng.integers(0, 10, 300), CLASSES, tmp_path / "scatter.png")
    read_png(tmp_path / "scatter.png")


# ----------------------------------------------------------------- saved figures


def test_every_figure_is_written_as_a_png_and_closed(tmp_path):
    plots.save_loss_curve(HISTORY, tmp_path / "loss_vae.png")
    plots.save_loss_curve([{k: r[k] for k in ("epoch", "train_loss", "test_loss")} for r in HISTORY],
                          tmp_path / "loss_ae.png")
    plots.save_reconstructions(images(64), images(64, seed=1), SHAPE, tmp_path / "recon.png")
    plots.save_samples(images(128), SHAPE, tmp_path / "samples.png")
    plots.save_manifold(images(441), SHAPE, tmp_path / "manifold.png")
    shapes = {p.stem: read_png(p).shape for p in tmp_path.iterdir()}
    assert sorted(shapes) == ["loss_ae", "loss_vae", "manifold", "recon", "samples"]  # no temporary files
    assert shapes["loss_vae"][1] > 1.5 * shapes["loss_ae"][1]  # the VAE's loss terms get a panel of their own
    # Tiled images are drawn at a whole number (> 1) of screen pixels per image pixel.
    assert shapes["recon"][1] >= 2 * (16 * 9 - 1) and shapes["manifold"][0] >= 2 * 21 * 8


def test_tiled_images_keep_their_pixels_sharp(tmp_path):
    # A checkerboard image: with nearest-neighbour drawing every screen pixel is black or
    # white; any smoothing would blend them into greys.
    board = (np.indices(SHAPE).sum(axis=0) % 2).astype(np.float64).ravel()
    plots.save_samples(np.tile(board, (128, 1)), SHAPE, tmp_path / "samples.png", title="")
    gray = read_png(tmp_path / "samples.png")[..., :3].mean(axis=-1)
    h, w = gray.shape
    middle = gray[h // 4:3 * h // 4, w // 4:3 * w // 4]
    assert np.mean((middle > 0.02) & (middle < 0.98)) < 0.01


def test_images_are_drawn_as_stored_zero_black(tmp_path):
    plots.save_samples(np.zeros((128, 64)), SHAPE, tmp_path / "samples.png", title="")
    gray = read_png(tmp_path / "samples.png")[..., :3].mean(axis=-1)
    h, w = gray.shape
    assert gray[h // 4:3 * h // 4, w // 4:3 * w // 4].mean() < 0.3  # black cells, thin white lines between


def test_a_save_that_fails_half_way_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "loss.png"
    path.write_bytes(b"the previous figure")

    def savefig_then_fail(fig, fname, **kwargs):
        if hasattr(fname, "write"):
            fname.write(b"half a PNG")
        else:
            with open(fname, "wb") as f:
                f.write(b"half a PNG")
        raise OSError("disk full")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig_then_fail)
    with pytest.raises(OSError, match="disk full"):
        plots.save_loss_curve(HISTORY, path)
    assert path.read_bytes() == b"the previous figure"
    assert [p.name for p in tmp_path.iterdir()] == ["loss.png"]  # the temporary file is gone too


def test_a_failed_drawing_keeps_the_old_file_and_closes_its_figure(tmp_path):
    path = tmp_path / "loss.png"
    path.write_bytes(b"the previous figure")
    broken = [{"epoch": 1, "train_loss": 1.0}]  # no "test_loss": fails while drawing
    with pytest.raises(KeyError):
        plots.save_loss_curve(broken, path)
    assert path.read_bytes() == b"the previous figure"
    assert [p.name for p in tmp_path.iterdir()] == ["loss.png"]  # no temporary file left behind
    # (the autouse fixture checks that the figure was closed)


def test_a_save_replaces_an_existing_file(tmp_path):
    path = tmp_path / "loss.png"
    path.write_bytes(b"the previous figure")
    plots.save_loss_curve(HISTORY, path)
    read_png(path)
    assert [p.name for p in tmp_path.iterdir()] == ["loss.png"]


def test_many_saves_leave_no_figure_open(tmp_path):
    for i in range(8):
        plots.save_loss_curve(HISTORY, tmp_path / "loss.png", title=f"chart {i}")
        assert plt.get_fignums() == []
