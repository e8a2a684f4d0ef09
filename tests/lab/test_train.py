"""The training loop's pieces: batching uint8 data, stopping between steps, evaluating."""

import numpy as np
import pytest

from lab.train import EpochProgress, NonFiniteLoss, apply_in_batches, evaluate, fit, minibatches, train_epoch
from models import AutoEncoder, Classifier, ConditionalVAE
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


def test_fit_is_train_epoch_after_train_epoch_with_the_lr_scaled_before_each():
    by_hand, opt, rng = small_model()
    for factor in (1.0, 0.5, 0.5):
        opt.lr *= factor
        train_epoch(by_hand, opt, X, 4, 1 / 255, rng)
    model, optimizer, rng = small_model()
    def halve_after_the_first(epoch):
        optimizer.lr *= 1.0 if epoch == 1 else 0.5

    epochs = list(fit(model, optimizer, X, 4, 1 / 255, rng, epochs=3, before_epoch=halve_after_the_first))
    assert [e.number for e in epochs] == [1, 2, 3] and all(e.images == 10 and e.seconds > 0 for e in epochs)
    assert optimizer.lr == opt.lr == 1e-2 * 0.25
    for name, p in by_hand.params.items():
        np.testing.assert_array_equal(model.params[name], p)


def test_fit_continues_an_interrupted_epoch_and_counts_only_its_own_images():
    straight, opt, rng = small_model()
    train_epoch(straight, opt, X, 2, 1 / 255, rng)
    model, optimizer, rng = small_model()
    progress = EpochProgress(order=rng.permutation(10))
    train_epoch(model, optimizer, X, 2, 1 / 255, rng, progress=progress, should_stop=lambda: True)  # one step
    (epoch,) = fit(model, optimizer, X, 2, 1 / 255, rng, epochs=1, progress=progress)
    assert (epoch.progress.done, epoch.images) == (10, 8)
    for name, p in straight.params.items():
        np.testing.assert_array_equal(model.params[name], p)


def test_a_non_finite_loss_is_reported_with_epoch_and_steps():
    model, opt, rng = small_model()
    model.params["decoder.0.b"][...] = np.nan
    with pytest.raises(NonFiniteLoss, match="in epoch 7, between steps 1 and 5"):
        train_epoch(model, opt, X, 2, 1 / 255, rng, epoch=7)


Y = np.array([1, 0, 2, 2, 1, 0, 0, 1, 2, 1])  # labels of the rows of X


def test_minibatches_with_labels_keep_rows_and_labels_together(xp):
    x, y = xp.asarray(X), xp.asarray(np.arange(10))  # row i of X starts with 3 i: its label is i
    order = xp.asarray([9, 0, 5, 1, 2, 3, 4, 6, 7, 8])
    pairs = [(to_numpy(b), to_numpy(labels)) for b, labels in minibatches(x, 4, 1.0, "float32", order, y)]
    assert [labels.shape for _, labels in pairs] == [(4,), (4,), (2,)]
    for batch, labels in pairs:
        np.testing.assert_array_equal(batch[:, 0], 3 * labels)
    np.testing.assert_array_equal(np.concatenate([labels for _, labels in pairs]), to_numpy(order))
    in_order = [to_numpy(labels) for _, labels in minibatches(x, 4, 1.0, "float32", y=y)]
    np.testing.assert_array_equal(np.concatenate(in_order), np.arange(10))
    with pytest.raises(ValueError, match=r"labels y of shape \(9,\) do not match images x of shape \(10, 3\)"):
        next(minibatches(x, 4, 1.0, "float32", y=y[:9]))


def test_apply_in_batches_passes_the_labels(xp):
    out = apply_in_batches(lambda b, labels: b[:, 0] + xp.astype(labels, b.dtype), xp.asarray(X), 3, 1.0,
                           y=xp.asarray(Y))
    np.testing.assert_array_equal(to_numpy(out), X[:, 0] + Y)


def test_train_epoch_with_labels_is_the_hand_written_loop():
    scale, batch_size = 1 / 255, 3
    model, rng = Classifier(3, 3, hidden=(4,), rng=Generator(0)), Generator(1)
    optimizer = Adam(model.params, lr=1e-2)
    means = train_epoch(model, optimizer, X, batch_size, scale, rng, y=Y)

    hand, hand_rng = Classifier(3, 3, hidden=(4,), rng=Generator(0)), Generator(1)
    hand_optimizer = Adam(hand.params, lr=1e-2)
    order = hand_rng.permutation(10)
    totals = {"loss": 0.0, "accuracy": 0.0}
    for start in range(0, 10, batch_size):
        rows = order[start:start + batch_size]
        terms = hand.forward(X[rows].astype(np.float32) * np.float32(scale), Y[rows])
        hand.backward()
        hand_optimizer.step(hand.grads)
        for k in totals:
            totals[k] += float(terms[k]) * len(rows)
    for name, p in hand.params.items():
        np.testing.assert_array_equal(model.params[name], p, err_msg=name)
    assert means == pytest.approx({k: v / 10 for k, v in totals.items()}, rel=1e-6)


def test_evaluate_with_labels_is_the_hand_written_loop():
    cvae = ConditionalVAE(3, 3, hidden=(4,), latent_dim=2, rng=Generator(0))
    means = evaluate(cvae, X, 4, 1 / 255, Generator(5), y=Y)  # the noise eps drawn from Generator(5)
    rng, totals = Generator(5), {"loss": 0.0, "recon": 0.0, "kl": 0.0}
    for start in range(0, 10, 4):
        rows = slice(start, start + 4)
        terms = cvae.forward(X[rows].astype(np.float32) * np.float32(1 / 255), Y[rows], rng=rng)
        for k in totals:
            totals[k] += float(terms[k]) * len(Y[rows])
    assert means == pytest.approx({k: v / 10 for k, v in totals.items()}, rel=1e-6)
