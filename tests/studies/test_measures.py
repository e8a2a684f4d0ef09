"""studies/measures.py: each of Part One's measurements on cases whose answer is known."""

import numpy as np
import pytest

from studies.measures import (code_fill, decoder_jacobian, fraction_inside, knn_accuracy, line_between,
                          pairwise_angles_deg, principal_angles_deg, reconstruction_mse, test_mse)


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


def test_line_between_runs_from_one_point_to_the_other_evenly():
    a, b = np.array([0.0, 2.0, 4.0]), np.array([1.0, 0.0, 4.0])
    line = line_between(a, b, 5)
    assert line.shape == (5, 3)
    np.testing.assert_array_equal(line[0], a)
    np.testing.assert_array_equal(line[-1], b)
    np.testing.assert_allclose(np.diff(line, axis=0), np.broadcast_to((b - a) / 4, (4, 3)))
