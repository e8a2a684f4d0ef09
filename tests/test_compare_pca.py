"""compare_pca.py (apps/compare_pca.py): the linear AE finds PCA's subspace; every number written; bad input."""

import json

import numpy as np
import pytest

from apps.compare_pca import compare, default_config, main
from lab import data as data_module


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
    # The same plane, but not in PCA's orthonormal basis: nothing fixes the lengths of its
    # decoder directions (nor the angle between them, which the gradient descent's start decides).
    results, _ = digits_results
    assert results["methods"]["pca"]["decoder_angles_deg"] == [pytest.approx(90.0)]
    assert results["methods"]["pca"]["decoder_norms"] == pytest.approx([1.0, 1.0])
    assert max(abs(n - 1.0) for n in results["methods"]["linear_ae"]["decoder_norms"]) > 0.5


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
    for figure in ("embeddings", "manifolds", "reconstructions", "interpolations"):
        assert (out / f"{figure}.png").stat().st_size > 5000, figure


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
