"""augment.py (apps/augment.py): Part Three's study end to end on digits, its augmentation, and its bad input."""

import json

import numpy as np
import pytest

from apps.augment import METHODS, compare, main
from lab.data import per_class_subset, shift_images


def test_quick_run_on_digits_writes_every_output_with_accuracies_above_chance(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["--quick", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    for method in METHODS:
        for n, accuracies in results["accuracy"][method].items():
            assert len(accuracies) == 2 and all(0.2 < a <= 1.0 for a in accuracies), (method, n, accuracies)  # chance: 0.1
    assert set(results["comparisons"]) == {f"{m}@{n}" for m in METHODS[1:] for n in (10, 30)}
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


def test_a_difference_counts_only_when_every_seed_agrees_and_it_exceeds_the_spread():
    accuracies = {"real": {10: [0.50, 0.52, 0.54]}, "shift": {10: [0.60, 0.61, 0.65]},
                  "cvae": {10: [0.51, 0.51, 0.56]}, "m1": {10: [0.40, 0.45, 0.44]}}
    verdicts = {k: v["verdict"] for k, v in compare(accuracies, (10,)).items()}
    assert verdicts == {"shift@10": "better", "cvae@10": "within the spread", "m1@10": "worse"}


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
    from apps.augment import AugmentConfig, check
    from lab.cli import UsageError
    from lab.data import load_dataset

    data = load_dataset("digits")
    unlabelled = type(data)(data.name, data.x_train, None, data.x_test, None, data.scale, data.image_shape, ())
    with pytest.raises(UsageError, match="digits has no classes to learn: augment.py needs a labelled dataset"):
        check(AugmentConfig(dataset="digits", ns=(10,)), unlabelled)
