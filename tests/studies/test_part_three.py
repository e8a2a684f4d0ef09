"""augment.py (apps/augment.py, studies/part_three.py): Part Three's study end to end on digits, what each
recipe's record makes its classifier train on, its augmentation, its verdicts, and its bad input."""

import json

import numpy as np
import pytest

from apps.augment import main
from studies.part_three import (CVAE, M1, QUICK, REAL, RECIPES, SHIFT, AugmentConfig, Labelled, Study, check,
                              per_class_subset, shift_images, study_config, train_m1_vae, verdicts)
from lab.cli import UsageError
from lab.data import load_dataset
from nn import Generator
from nn.backend import get_backend, to_numpy


@pytest.mark.slow
def test_quick_run_on_digits_writes_every_output_with_accuracies_above_chance(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["--quick", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    for recipe in (m.key for m in RECIPES):
        for n, accuracies in results["accuracy"][recipe].items():
            assert len(accuracies) == 2 and all(0.2 < a <= 1.0 for a in accuracies), (recipe, n, accuracies)  # chance: 0.1
    assert set(results["comparisons"]) == {f"{m}@{n}" for m in ("shift", "cvae", "m1") for n in (10, 30)}
    assert "| 10 |" in (out / "results.md").read_text() and "| 10 |" in capsys.readouterr().out
    for figure in ("accuracy", "cvae_samples"):
        assert (out / f"{figure}.png").stat().st_size > 3000, figure


def test_a_shifted_image_is_the_same_image_moved():
    image = np.zeros((6, 7), np.uint8)
    image[2:4, 2:5] = [[1, 2, 3], [4, 5, 6]]  # a blob away from the borders
    x = np.stack([image.ravel()] * 3)
    moved = shift_images(x, (6, 7), np.array([[1, -2], [0, 0], [-2, 1]])).reshape(3, 6, 7)
    np.testing.assert_array_equal(moved[0], np.roll(np.roll(image, 1, axis=0), -2, axis=1))  # down 1, left 2
    np.testing.assert_array_equal(moved[1], image)
    np.testing.assert_array_equal(moved[2], np.roll(np.roll(image, -2, axis=0), 1, axis=1))
    assert moved.dtype == np.uint8 and all(m.sum() == image.sum() for m in moved)  # nothing lost, nothing added
    edge = shift_images(x[:1], (6, 7), np.array([[0, 5]])).reshape(6, 7)  # moved out of the frame: background
    assert edge.sum() == 0


def test_per_class_subset_takes_n_distinct_images_of_each_class():
    y = np.repeat(np.arange(4), [5, 6, 7, 8])
    picked = per_class_subset(y, 3, np.random.default_rng(0))
    assert len(set(picked.tolist())) == 12 and np.array_equal(np.bincount(y[picked]), [3, 3, 3, 3])


@pytest.fixture(scope="module")
def digits_study():
    """A Study on digits with three labelled images of each class and a short conditional VAE."""
    data, xp = load_dataset("digits"), get_backend("numpy")
    config = study_config({"cvae_steps": 10, "m1_epochs": 1}, quick=True)
    study = Study(config, data, xp, xp.asarray(data.x_test), xp.asarray(data.y_test))
    host_rng = np.random.default_rng([0, 3])
    subset = per_class_subset(data.y_train, 3, host_rng)
    return study, Labelled(subset, data.x_train[subset], data.y_train[subset], host_rng)


def test_real_images_are_the_labelled_pixels_tested_on_the_test_pixels(digits_study):
    study, labelled = digits_study
    f = REAL.features(study, labelled, None, Generator(0))
    np.testing.assert_array_equal(to_numpy(f.x), labelled.x)
    np.testing.assert_array_equal(to_numpy(f.y), labelled.y)
    assert f.x_test is study.x_test and f.scale == study.data.scale


def test_shifted_copies_are_extra_moved_images_of_each_labelled_one(digits_study):
    study, labelled = digits_study
    f = SHIFT.features(study, labelled, None, Generator(0))
    x, y, N, extra = to_numpy(f.x), to_numpy(f.y), len(labelled.y), study.config.extra
    assert x.shape == ((1 + extra) * N, 64) and x.dtype == np.uint8
    np.testing.assert_array_equal(x[:N], labelled.x)  # the real images first
    np.testing.assert_array_equal(y, np.concatenate([labelled.y, np.repeat(labelled.y, extra)]))
    copies = x[N:].reshape(N, extra, 64)
    # Each copy is its image moved by at most max_shift (1): it matches one of the 9 shifts of that image.
    moves = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    for image, its_copies in zip(labelled.x, copies):
        shifted = [shift_images(image[None], (8, 8), np.array([m]))[0] for m in moves]
        assert all(any(np.array_equal(c, s) for s in shifted) for c in its_copies)
    assert not np.array_equal(copies, np.repeat(labelled.x[:, None], extra, axis=1))  # not all left in place


def test_cvae_samples_are_extra_images_of_the_same_classes(digits_study):
    study, labelled = digits_study
    f = CVAE.features(study, labelled, None, Generator(0))
    x, y, N, extra = to_numpy(f.x), to_numpy(f.y), len(labelled.y), study.config.extra
    assert x.shape == ((1 + extra) * N, 64) and x.dtype == np.uint8 and f.scale == study.data.scale
    np.testing.assert_array_equal(x[:N], labelled.x)
    np.testing.assert_array_equal(np.bincount(y[N:]), np.full(10, 3 * extra))  # as many per class as asked
    assert not np.array_equal(x[N:N + N], labelled.x)  # drawn, not copied


def test_m1_trains_on_the_labelled_images_codes_under_the_lab_vae(digits_study):
    study, labelled = digits_study
    assert M1.learn is train_m1_vae and all(m.learn is None for m in (REAL, SHIFT, CVAE))
    z_train, z_test = train_m1_vae(study, seed=0)
    assert z_train.shape == (1500, 2) and z_test.shape == (297, 2)  # the lab's 2-D code, every image
    f = M1.features(study, labelled, (z_train, z_test), Generator(0))
    np.testing.assert_array_equal(to_numpy(f.x), to_numpy(z_train)[labelled.subset])  # the labelled ones' codes
    assert f.x_test is z_test and f.scale == 1.0  # codes are floats already: no pixel scale


def test_the_quick_settings_lie_under_the_flags_given():
    config = study_config({"ns": (10,), "steps": None, "out": "elsewhere"}, quick=True, backend="numpy")
    assert (config.dataset, config.ns, config.steps) == ("digits", (10,), QUICK["steps"])
    assert study_config({"seeds": (4,)}).seeds == (4,) and study_config({}) == AugmentConfig()


def test_a_difference_counts_only_when_every_seed_agrees_and_it_exceeds_the_spread():
    accuracies = {"real": {10: [0.50, 0.52, 0.54]}, "shift": {10: [0.60, 0.61, 0.65]},
                  "cvae": {10: [0.51, 0.51, 0.56]}, "m1": {10: [0.40, 0.45, 0.44]}}
    found = {k: v["verdict"] for k, v in verdicts(accuracies, (10,)).items()}
    assert found == {"shift@10": "better", "cvae@10": "within the spread", "m1@10": "worse"}
    against_shift = verdicts(accuracies, (10,), baseline="shift")
    assert set(against_shift) == {"real@10", "cvae@10", "m1@10"} and against_shift["real@10"]["verdict"] == "worse"


@pytest.mark.parametrize("args, message", [
    (["--quick", "--n", "10,500"], "n = 500 images per class is more than the"),
    (["--quick", "--n", "0"], "--n: image counts must be >= 1, got 0"),
    (["--quick", "--n", "ten"], "--n: expected comma-separated image counts"),
])
def test_bad_input_is_one_line(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err.strip().splitlines()[-1] and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_a_dataset_without_classes_is_refused_in_one_line():
    data = load_dataset("digits")
    unlabelled = type(data)(data.name, data.x_train, None, data.x_test, None, data.scale, data.image_shape, ())
    with pytest.raises(UsageError, match="digits has no classes to learn: augment.py needs a labelled dataset"):
        check(AugmentConfig(dataset="digits", ns=(10,)), unlabelled)
