"""The training loop's pieces: batching uint8 data, stopping between steps, evaluating."""

import numpy as np
import pytest

from lab.train import EpochProgress, NonFiniteLoss, apply_in_batches, minibatches, train_epoch
from models import AutoEncoder
from nn import Adam, Generator
from nn.backend import to_numpy

X = np.arange(10 * 3, dtype=np.uint8).reshape(10, 3)


def test_minibatches_cover_the_data_in_the_given_order_and_scale_it(xp):
    x = xp.asarray(X)
    order = xp.asarray([9, 0, 5, 1, 2, 3, 4, 6, 7, 8])
    batches = [to_numpy(b) for b in minibatches(x, 4, 0.5, "float32", order)]
    assert [b.shape for b in batches] == [(4, 3), (4, 3), (2, 3)]  # the last one is smaller
    np.testing.assert_array_equal(np.concatenate(batches), X[to_numpy(order)] * 0.5)
    assert all(b.dtype == np.float32 for b in batches)


def test_apply_in_batches_equals_applying_at_once(xp):
    x = xp.asarray(X)
    out = apply_in_batches(lambda b: b * 2.0, x, 3, 1.0)
    np.testing.assert_array_equal(to_numpy(out), X * 2.0)
    mu, logvar = apply_in_batches(lambda b: (b, -b), x, 4, 1.0)
    np.testing.assert_array_equal(to_numpy(logvar), -X.astype(np.float32))


def small_model(seed=0):
    rng = Generator(seed)
    model = AutoEncoder(3, hidden=(4,), latent_dim=2, rng=rng)
    return model, Adam(model.params, lr=1e-2), rng


def test_an_epoch_stopped_between_steps_continues_to_the_same_weights():
    straight, opt, rng = small_model()
    train_epoch(straight, opt, X, 2, 1 / 255, rng)
    model, opt, rng = small_model()
    progress = EpochProgress(order=rng.permutation(10))
    calls = iter(range(100))
    train_epoch(model, opt, X, 2, 1 / 255, rng, progress=progress, should_stop=lambda: next(calls) == 1)
    assert (progress.step, progress.done) == (2, 4)
    train_epoch(model, opt, X, 2, 1 / 255, rng, progress=progress)
    assert progress.done == 10
    for name, p in straight.params.items():
        np.testing.assert_array_equal(model.params[name], p, err_msg=name)


def test_a_non_finite_loss_is_reported_with_epoch_and_steps():
    model, opt, rng = small_model()
    model.params["decoder.0.b"][...] = np.nan
    with pytest.raises(NonFiniteLoss, match="in epoch 7, between steps 1 and 5"):
        train_epoch(model, opt, X, 2, 1 / 255, rng, epoch=7)
