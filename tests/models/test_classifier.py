"""The classifier: its whole-model gradient in float64, its outputs, and that it learns the digits."""

import numpy as np
import pytest

from lab.data import load_dataset
from lab.train import evaluate, train_epoch
from models import Classifier
from nn import Adam, Generator
from nn.backend import CHECK_DTYPE, to_numpy
from nn.gradcheck import TOLERANCE, check_gradients

F64 = CHECK_DTYPE  # gradient checks run in float64
N, D, H, C = 5, 6, 7, 3


def batch(xp, seed=0):
    return xp.asarray(np.random.default_rng(seed).uniform(0, 1, (N, D))), xp.asarray([0, 2, 1, 2, 0])


@pytest.mark.parametrize("hidden", [(H,), (H, 4)], ids=["one-hidden", "two-hidden"])
def test_classifier_gradients(xp, hidden):
    model = Classifier(D, C, hidden=hidden, rng=Generator(1, xp), dtype=F64)
    x, labels = batch(xp)

    def f():
        return model.forward(x, labels)["loss"]

    f()
    model.backward()
    errors = check_gradients(f, model.params, model.grads)
    assert set(errors) == set(model.params)
    assert max(errors.values()) < TOLERANCE, errors


def test_predict_and_probabilities(xp):
    model = Classifier(D, C, hidden=(H,), rng=Generator(2, xp))
    x, labels = batch(xp)
    x = xp.astype(x, xp.float32)
    p = to_numpy(model.probabilities(x))
    predicted = to_numpy(model.predict(x))
    assert p.shape == (N, C) and p.dtype == np.float32 and p.min() >= 0
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    assert predicted.shape == (N,) and np.array_equal(predicted, p.argmax(axis=1))  # the most probable class
    terms = model.forward(x, labels)
    assert float(terms["accuracy"]) == pytest.approx(np.mean(predicted == to_numpy(labels)))
    assert repr(model).startswith(f"Classifier(n_classes={C}, init='he-xavier',\n  network=Sequential(")


def test_a_classifier_learns_the_digits():
    data = load_dataset("digits")
    rng = Generator(0)
    model = Classifier(data.input_dim, len(data.class_names), hidden=(64,), rng=rng)
    optimizer = Adam(model.params, lr=1e-2)
    before = evaluate(model, data.x_test, 297, data.scale, rng, y=data.y_test)
    for epoch in range(5):
        train_epoch(model, optimizer, data.x_train, 32, data.scale, rng, y=data.y_train)
    after = evaluate(model, data.x_test, 297, data.scale, rng, y=data.y_test)
    assert before["accuracy"] < 0.3 < 0.8 < after["accuracy"], (before, after)
    assert after["loss"] < before["loss"] / 3
    x_test = (data.x_test * data.scale).astype(np.float32)
    assert np.mean(to_numpy(model.predict(x_test)) == data.y_test) == pytest.approx(after["accuracy"])
