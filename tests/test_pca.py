"""compare_pca: the linear AE finds PCA's subspace; the metrics; bad input."""

import json

import numpy as np
import pytest

from lab import data as data_module
from lab.pca import (CompareConfig, compare, decoder_jacobian, main, pairwise_angles_deg, principal_angles_deg,
                     test_mse)

# digits has 1500 training images: many short epochs with a larger step and smaller batches
# give the linear AE the steps it needs to settle.
DIGITS = CompareConfig(dataset="digits", epochs=100, batch_size=64, linear_lr=1e-2, hidden=(64,))


@pytest.fixture(scope="module")
def digits_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    return compare(DIGITS, str(out), log=lambda *args: None), out


def test_the_linear_autoencoder_spans_the_pca_subspace(digits_results):
    results, _ = digits_results
    linear = results["methods"]["linear_ae"]
    assert max(linear["principal_angles_deg"]) < 5.0, linear
    # PCA is the best rank-k linear map on the training set: on the test set the linear AE
    # can only match it, up to the difference between the two sets.
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
        values = [entry["test_mse"], entry["mse_ratio_to_pca"], *entry["principal_angles_deg"]]
        assert len(entry["principal_angles_deg"]) == 2 and np.all(np.isfinite(values)), entry
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
    err = run_main(capsys, ["--dataset", "digits", "--latent-dim", "65", "--out", str(tmp_path)])
    assert "--latent-dim 65 is larger than the 64 pixels of digits" in err


def test_a_missing_dataset_says_how_to_get_it(capsys, tmp_path, monkeypatch):
    def offline(url, out):
        raise data_module.DataError(f"could not fetch {url}: no network in this test")

    monkeypatch.setattr(data_module, "_fetch", offline)
    err = run_main(capsys, ["--dataset", "fashion-mnist", "--data-dir", str(tmp_path / "empty"), "--out", str(tmp_path)])
    assert "apt-get install dataset-fashion-mnist" in err and "--dataset digits" in err
