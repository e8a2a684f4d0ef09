"""compare_pca.py (apps/compare_pca.py): the linear AE finds PCA's subspace; the metrics; bad input."""

import json

import numpy as np
import pytest

from lab import data as data_module
from apps.compare_pca import (code_fill, compare, decoder_jacobian, default_config, fraction_inside,
                     knn_accuracy, main, pairwise_angles_deg, principal_angles_deg, reconstruction_mse,
                     test_mse)


@pytest.fixture(scope="module")
def digits_results(tmp_path_factory):
    """The comparison as `compare_pca.py --dataset digits` runs it, with digits' own defaults."""
    out = tmp_path_factory.mktemp("compare")
    return compare(default_config("digits"), str(out), log=lambda *args: None), out


def test_the_linear_autoencoder_spans_the_pca_subspace(digits_results):
    results, _ = digits_results
    linear = results["methods"]["linear_ae"]
    assert max(linear["principal_angles_deg"]) < 5.0, linear
    # PCA is the best rank-k linear map on the training set: there the linear AE can only
    # match it, up to float32 rounding; on the test set, up to the difference between the sets.
    assert 1.0 - 1e-5 < linear["train_mse_ratio_to_pca"] < 1.03, linear
    assert 0.99 < linear["mse_ratio_to_pca"] < 1.03, linear


def test_the_linear_autoencoder_is_not_pca_itself(digits_results):
    results, _ = digits_results
    between = results["methods"]["linear_ae"]["decoder_angles_deg"][0]
    assert results["methods"]["pca"]["decoder_angles_deg"] == [pytest.approx(90.0)]
    assert abs(between - 90.0) > 1.0  # the same plane, spanned by directions that are not orthogonal


def test_every_number_is_present_and_finite_and_written(digits_results):
    results, out = digits_results
    for method in ("ae", "vae"):
        entry = results["methods"][method]
        values = [entry["test_mse"], entry["mse_ratio_to_pca"], *entry["principal_angles_deg"],
                  entry["decoder_angle_deg"], *entry["code_std"]]
        assert len(entry["principal_angles_deg"]) == 2 and np.all(np.isfinite(values)), entry
    for method, entry in results["methods"].items():
        # Ten classes: chance is about 0.1, and even PCA's two components keep most digits apart.
        assert 0.3 < entry["knn_accuracy"] <= 1.0, (method, entry)
        assert 0.0 < entry["codes_in_plane"] <= 1.0 and 0.0 < entry["code_fill"] <= 1.0, (method, entry)
    assert json.loads((out / "results.json").read_text())["methods"].keys() == {"pca", "linear_ae", "ae", "vae"}
    assert "| linear AE |" in (out / "results.md").read_text()
    for figure in ("embeddings", "manifolds", "reconstructions"):
        assert (out / f"{figure}.png").stat().st_size > 5000, figure


def test_principal_angles_of_known_subspaces():
    rng = np.random.default_rng(0)
    basis, _ = np.linalg.qr(rng.normal(size=(10, 4)))
    A, B = basis[:, :2], basis[:, 2:]
    mixed = A @ np.array([[2.0, 1.0], [0.5, -3.0]])  # the same plane, other (non-orthogonal) directions
    np.testing.assert_allclose(principal_angles_deg(mixed, A), [0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(principal_angles_deg(A, B), [90.0, 90.0])
    tilted = np.column_stack([A[:, 0], np.cos(0.1) * A[:, 1] + np.sin(0.1) * B[:, 0]])
    np.testing.assert_allclose(principal_angles_deg(tilted, A), [0.0, np.degrees(0.1)], atol=1e-6)


def test_pairwise_angles_and_jacobian():
    assert pairwise_angles_deg(np.array([[1.0, 0.0], [0.0, 3.0]])) == [pytest.approx(90.0)]
    assert pairwise_angles_deg(np.array([[1.0, 1.0], [0.0, 1.0]])) == [pytest.approx(45.0)]
    M = np.arange(6.0).reshape(3, 2)
    np.testing.assert_allclose(decoder_jacobian(lambda z: z @ M.T + 1.0, np.array([0.3, -2.0])), M)
    assert test_mse(np.ones((2, 3)), np.zeros((2, 3))) == 3.0  # summed over pixels, averaged over images
    x = np.arange(12, dtype=np.uint8).reshape(4, 3)
    half = reconstruction_mse(lambda b: b + 0.5, x, scale=0.1, batch_size=3)  # batches of 3 and 1
    assert half == pytest.approx(0.75)  # 3 pixels * 0.5**2


def test_knn_accuracy_counts_the_votes_of_the_nearest_training_codes():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 50)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    z_train, z_test = (centres[y] + rng.normal(size=(150, 2)) for _ in range(2))
    assert knn_accuracy(z_train, y, z_test, y) == 1.0  # three far-apart clusters
    assert knn_accuracy(z_train, y, z_test, (y + 1) % 3) == 0.0  # every test label wrong
    mixed = rng.normal(size=(150, 2))  # one cloud: the codes say nothing of the class
    assert knn_accuracy(mixed, y, rng.normal(size=(150, 2)), y) < 0.5


def test_fraction_inside_counts_codes_in_the_square():
    z = np.array([[0.0, 0.0], [3.9, -3.9], [4.1, 0.0], [0.0, -5.0]])
    assert fraction_inside(z, (-4.0, 4.0)) == 0.5


def test_code_fill_is_high_for_a_gaussian_cloud_and_low_with_gaps():
    rng = np.random.default_rng(0)
    cloud = rng.normal(size=(20000, 2))
    assert code_fill(cloud) > 0.97
    # The same cloud stretched and sheared: whitening undoes any linear map.
    assert code_fill(cloud @ np.array([[5.0, 0.0], [3.0, 0.1]])) == pytest.approx(code_fill(cloud), abs=0.02)
    # Four tight clusters at the corners of a square: the whitened grid is mostly empty between them.
    corners = np.array([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])
    clusters = corners[rng.integers(0, 4, 20000)] + 0.05 * rng.normal(size=(20000, 2))
    assert code_fill(clusters) < 0.2
    # A collapsed code (one direction without variance) is a line, not 0/0.
    line = np.column_stack([rng.normal(size=20000), np.zeros(20000)])
    assert 0.0 < code_fill(line) < 0.2


def test_the_script_prints_the_table_and_the_folder(capsys, tmp_path):
    out = tmp_path / "run"
    assert main(["--dataset", "digits", "--epochs", "1", "--no-progress", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| linear AE |" in printed and f"results and figures in {out}" in printed
    assert json.loads((out / "results.json").read_text())["config"]["epochs"] == 1


def run_main(capsys, args):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err
    return err


@pytest.mark.parametrize("args, message", [
    (["--latent-dim", "0"], "--latent-dim: must be >= 1, got 0"),
    (["--epochs", "0"], "--epochs: must be >= 1, got 0"),
    (["--dataset", "cifar"], "invalid choice: 'cifar'"),
])
def test_invalid_flags(capsys, args, message):
    assert message in run_main(capsys, args)


def test_a_latent_size_above_the_input_size_is_refused(capsys, tmp_path):
    err = run_main(capsys, ["--dataset", "digits", "--latent-dim", "65", "--out", str(tmp_path / "run")])
    assert "--latent-dim 65 is larger than the 64 pixels of digits" in err
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_a_missing_dataset_says_how_to_get_it(capsys, tmp_path, monkeypatch):
    def offline(url, out):
        raise data_module.DataError(f"could not fetch {url}: no network in this test")

    monkeypatch.setattr(data_module, "_fetch", offline)
    err = run_main(capsys, ["--dataset", "fashion-mnist", "--data-dir", str(tmp_path / "empty"),
                            "--out", str(tmp_path / "run")])
    assert "apt-get install dataset-fashion-mnist" in err and "--dataset digits" in err
    assert not (tmp_path / "run").exists()
