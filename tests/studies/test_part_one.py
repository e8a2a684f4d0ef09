"""compare_pca.py (apps/compare_pca.py, studies/part_one.py): the linear AE finds PCA's subspace; each method's
record reads its own plane and subspace; measure against known answers; every number written; bad input."""

import dataclasses
import json

import numpy as np
import pytest

from apps.compare_pca import main
from lab import download
from studies.part_one import (AE, LINEAR_AE, METHODS, PCA, VAE, Fitted, Method, Plane, compare, default_config,
                         fit_pca_method, measure, train_autoencoder)
from lab.data import load_dataset
from studies.measures import decoder_jacobian
from models import VAE as VAEModel
from nn import Generator
from nn.backend import get_backend, to_numpy


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


def test_the_dataset_defaults_lie_under_the_flags_given():
    config = default_config("digits", {"epochs": None, "seed": 3, "out": "elsewhere"}, backend="numpy")
    assert (config.epochs, config.linear_lr, config.seed) == (100, 1e-2, 3)  # digits' own, then the flag given
    assert default_config("digits", {"epochs": 7}).epochs == 7
    assert default_config("fashion-mnist").hidden == (512,)  # the lab's (lab/config.py)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def fitted_by_hand(method, subspace, x_hat, z_test, z_train, plane=Plane()):
    return Fitted(method, z_test=z_test, z_train=z_train, x_hat=x_hat, train_mse=float(np.sum(x_hat ** 2)),
                  decode=lambda z: z, plane=plane, subspace=subspace, seconds=0.0)


def test_measure_compares_a_method_with_the_reference_on_known_answers(digits):
    rng = np.random.default_rng(0)
    x_test = digits.x_test.astype(np.float64) * digits.scale
    n, D = x_test.shape
    U, _ = np.linalg.qr(rng.normal(size=(D, 2)))  # the reference's plane, orthonormal
    # Each class's codes about its own point (3y + 1, 0): the classes 3 apart, the noise 0.1.
    z_train, z_test = (np.column_stack([3.0 * y + 1.0, np.zeros(len(y))]) + 0.1 * rng.normal(size=(len(y), 2))
                       for y in (digits.y_train, digits.y_test))
    reference = fitted_by_hand(PCA, U, x_test + 0.1, z_test, z_train)
    # The same plane in another basis, twice the error per pixel, and its codes drawn on a plane
    # whose coordinates (z - (10, 0)) / (2, 1) put z1 in [2, 18], classes 1 to 5, inside [-4, 4].
    same_plane = U @ np.array([[2.0, 1.0], [0.0, 3.0]])
    other = fitted_by_hand(Method("other", "other"), same_plane, x_test + 0.2, z_test, z_train,
                           plane=Plane(centre=np.array([10.0, 0.0]), scale=np.array([2.0, 1.0])))
    entry = measure(other, reference=reference, data=digits)
    np.testing.assert_allclose(entry["principal_angles_deg"], [0.0, 0.0], atol=1e-6)
    assert entry["mse_ratio_to_pca"] == pytest.approx(4.0) and entry["test_mse"] == pytest.approx(0.04 * D)
    assert entry["decoder_angles_deg"] == [pytest.approx(np.degrees(np.arctan2(3.0, 1.0)))]
    assert entry["decoder_norms"] == pytest.approx([2.0, np.sqrt(10.0)])
    assert entry["knn_accuracy"] == 1.0  # the classes 3 apart, the noise 0.1
    assert entry["codes_in_plane"] == np.mean((digits.y_test >= 1) & (digits.y_test <= 5))  # in its plane's coordinates
    assert "principal_angles_deg" not in measure(reference, reference=reference, data=digits)


def test_a_plane_in_std_units_maps_its_coordinates_to_the_codes_and_back():
    z = np.random.default_rng(0).normal(loc=[3.0, -1.0], scale=[0.5, 4.0], size=(1000, 2))
    plane = Plane.over_spread(z)
    g = plane.coordinates(z)
    np.testing.assert_allclose(g.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(g.std(axis=0), 1.0)
    np.testing.assert_allclose(plane.codes(g), z)
    assert plane.extent == (-3.0, 3.0) and plane.unit == " std of its codes"
    assert Plane().extent == (-4.0, 4.0) and np.array_equal(Plane().coordinates(z), z)  # the lab's: the codes


def test_each_autoencoder_record_reads_its_own_plane_and_subspace(digits):
    config = default_config("digits", {"epochs": 1})
    rng = Generator(0, get_backend("numpy"))
    fitted = {}
    for method in (LINEAR_AE, AE):
        model = method.build(config, digits, rng)
        fitted[method] = f = train_autoencoder(method, model, digits, config, rng, log=lambda line: None)
        assert f.z_test.shape == (297, 2) and f.z_train.shape == (1500, 2) and f.x_hat.shape == (297, 64)
        np.testing.assert_allclose(f.decode(f.z_test[:5]), f.x_hat[:5], atol=1e-5)  # decode: codes -> images
        if method is LINEAR_AE:
            linear_model = model
    linear, ae = fitted[LINEAR_AE], fitted[AE]
    # The linear decoder: its plane is the row space of its weights, drawn over +-3 std of its codes.
    np.testing.assert_array_equal(linear.subspace, to_numpy(linear_model.params["decoder.0.W"]).T)
    assert linear.plane.extent == (-3.0, 3.0)
    np.testing.assert_allclose(linear.plane.coordinates(linear.z_test).std(axis=0), 1.0)
    # The ReLU decoder: the plane it is tangent to at the mean code; its own plane is the lab's square of codes.
    np.testing.assert_allclose(ae.subspace, decoder_jacobian(ae.decode, ae.z_test.mean(axis=0)))
    assert ae.plane.extent == (-4.0, 4.0) and np.array_equal(ae.plane.coordinates(ae.z_test), ae.z_test)


def test_the_records_are_the_lab_models_and_name_the_interpolated_rows(digits):
    config = default_config("digits")
    vae = VAE.build(config, digits, Generator(0))
    assert isinstance(vae, VAEModel) and vae.params["encoder.0.W"].shape == (64, *config.hidden)
    assert [m.key for m in METHODS] == ["pca", "linear_ae", "ae", "vae"]  # results.json's order
    assert [m.key for m in METHODS if m.interpolated] == ["ae", "vae"]
    assert VAE.lr(config) == AE.lr(config) == config.lr and LINEAR_AE.lr(config) == config.linear_lr
    pca = fit_pca_method(digits, 2)
    np.testing.assert_allclose(pca.subspace.T @ pca.subspace, np.eye(2), atol=1e-6)  # orthonormal components
    np.testing.assert_allclose(pca.plane.coordinates(pca.z_train).std(axis=0, ddof=1), 1.0, rtol=1e-4)
    assert dataclasses.is_dataclass(pca) and pca.method is PCA


@pytest.mark.slow
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
        raise download.DataError(f"could not fetch {url}: no network in this test")

    monkeypatch.setattr(download, "fetch", offline)
    err = run_main(capsys, ["--dataset", "fashion-mnist", "--data-dir", str(tmp_path / "empty"),
                            "--out", str(tmp_path / "run")])
    assert "apt-get install dataset-fashion-mnist" in err and "--dataset digits" in err
    assert not (tmp_path / "run").exists()
