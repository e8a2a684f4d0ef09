"""The training loop: `fit`, the one way every run and every study trains a model for a number
of epochs, one `train_epoch` after another; `evaluate` and `apply_in_batches` for what follows.

The data stay as compact uint8 arrays on the backend's device for the whole run;
each minibatch is gathered and converted to float in [0, 1] when it is used.
Loss terms are summed on the device and read back only at progress updates, so on a
GPU the step never waits for the host.
"""

import math
import time
from dataclasses import dataclass, field

from nn.backend import TRAIN_DTYPE, namespace, resolve_dtype

from .cli import ProgressBar

LOG_EVERY = 10  # steps between reads of the running loss (a host sync on the GPU)


class NonFiniteLoss(ArithmeticError):
    """The training loss became inf or NaN."""


def minibatches(x, batch_size, scale, dtype, order=None, y=None):
    """Yield float batches (B, D) of the uint8 images x: (N, D), times `scale`.

    order: indices into x (an array on x's backend), e.g. a permutation; None for 0..N-1.
    y: the labels, (N,) ints on x's backend, or None. When given, each item is
    (batch, labels): (B, D) and (B,), the labels of the same rows.
    The last batch is smaller when batch_size does not divide N.
    """
    xp = namespace(x) if y is None else namespace(x, y)
    if y is not None and tuple(y.shape) != (x.shape[0],):
        raise ValueError(f"labels y of shape {tuple(y.shape)} do not match images x of shape {tuple(x.shape)}: "
                         f"expected ({x.shape[0]},)")
    dtype = resolve_dtype(xp, dtype)
    n = x.shape[0] if order is None else order.shape[0]
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)  # the standard leaves out-of-range slices unspecified
        rows = x[start:stop, ...] if order is None else xp.take(x, order[start:stop], axis=0)
        batch = xp.astype(rows, dtype)
        batch *= scale
        if y is None:
            yield batch
        else:
            yield batch, (y[start:stop] if order is None else xp.take(y, order[start:stop], axis=0))


def _inputs(x, batch_size, scale, dtype, order=None, y=None):
    """minibatches as the arguments of model.forward: (batch,), or (batch, labels) when y is given."""
    for item in minibatches(x, batch_size, scale, dtype, order, y):
        yield (item,) if y is None else item


@dataclass
class EpochProgress:
    """Where an epoch stands: enough to stop after any step and resume exactly there.

    order: (N,) the epoch's shuffled indices; step: steps taken; done: images seen;
    totals: {term: sum over the images seen of term * batch size}, on the device.
    """

    order: object
    step: int = 0
    done: int = 0
    totals: dict = field(default_factory=dict)

    def means(self):
        """Mean loss terms per image so far, as floats (reads the device)."""
        return {k: float(v) / self.done for k, v in self.totals.items()}


def train_epoch(model, optimizer, x, batch_size, scale, rng, dtype=TRAIN_DTYPE, progress=None,
                on_progress=None, should_stop=None, epoch=1, y=None):
    """One pass over x: (N, D) uint8 in an order drawn from `rng`: the mean loss terms per image.

    y: the labels of x, (N,) ints on x's backend, for a model that reads them
    (model.forward(batch, labels)); None for one that does not (model.forward(batch)).

    progress: an EpochProgress to record into, e.g. an interrupted epoch's, to continue
    from where it stopped; by default a new one, in a new order drawn from `rng`.
    on_progress(progress, means) is called every LOG_EVERY steps and at the end.
    should_stop(): polled after every step; when true the epoch returns early, between
    two steps, so the parameters and optimiser state are never half-updated.
    Raises NonFiniteLoss, naming the epoch and the steps, if the loss stops being finite.
    """
    n = x.shape[0]
    progress = progress or EpochProgress(order=rng.permutation(n))
    checked_step = progress.step
    remaining = progress.order[progress.step * batch_size:]
    for inputs in _inputs(x, batch_size, scale, dtype, remaining, y):
        terms = model.forward(*inputs)
        model.backward()
        optimizer.step(model.grads)
        b = inputs[0].shape[0]
        for k, v in terms.items():
            progress.totals[k] = progress.totals[k] + v * b if k in progress.totals else v * b  # on the device
        progress.step += 1
        progress.done += b
        if progress.step % LOG_EVERY == 0 or progress.done == n:
            means = progress.means()  # the one host sync
            if not math.isfinite(means["loss"]):
                raise NonFiniteLoss(
                    f"the loss became {means['loss']} in epoch {epoch}, "
                    f"between steps {checked_step + 1} and {progress.step}"
                )
            checked_step = progress.step
            if on_progress:
                on_progress(progress, means)
        if should_stop and should_stop():
            break
    return progress.means()


@dataclass
class Epoch:
    """One epoch of `fit`, done, or stopped part-way by should_stop (progress.done < N then).

    number: from 1; means: its mean loss terms per image (train_epoch's); progress: where it
    stands (an EpochProgress); images: the images trained on in this call (fewer than
    progress.done when it continued an interrupted epoch); seconds: how long it took.
    """

    number: int
    means: dict
    progress: EpochProgress
    images: int
    seconds: float


def fit(model, optimizer, x, batch_size, scale, rng, *, epochs, first=1, y=None, progress=None, before_epoch=None,
        should_stop=None, show_progress=False):
    """Train `model` with `optimizer` on x: (N, D) uint8 (labels y: (N,), or None), epochs first to
    `epochs`, each one train_epoch in an order drawn from `rng`: yields an Epoch after each.

    progress: an interrupted epoch's EpochProgress, to continue `first` where it stopped;
    before_epoch(epoch): called before each epoch trains, to set what a schedule sets (a step size that
    decays, the KL warm-up); None: nothing changes between epochs;
    should_stop, and NonFiniteLoss: as train_epoch's. show_progress: a bar over each epoch.
    """
    n = x.shape[0]
    for number in range(first, epochs + 1):
        start = time.perf_counter()
        if before_epoch is not None:
            before_epoch(number)
        progress = progress or EpochProgress(order=rng.permutation(n))
        done_before = progress.done  # > 0 when continuing an interrupted epoch
        with ProgressBar(show_progress, n, progress.done, f"epoch {number}/{epochs}") as bar:
            means = train_epoch(model, optimizer, x, batch_size, scale, rng, progress=progress,
                                on_progress=lambda p, means: bar(p.done, **means), should_stop=should_stop,
                                epoch=number, y=y)
        yield Epoch(number, means, progress, progress.done - done_before, time.perf_counter() - start)
        progress = None


def evaluate(model, x, batch_size, scale, rng, dtype=TRAIN_DTYPE, y=None):
    """Mean loss terms per image over x: (N, D) uint8, in order; VAE noise drawn from `rng`.
    y: the labels of x, (N,) ints, passed as model.forward(batch, labels, rng=rng); or None."""
    totals = {}
    for inputs in _inputs(x, batch_size, scale, dtype, y=y):
        b = inputs[0].shape[0]
        for k, v in model.forward(*inputs, rng=rng).items():
            totals[k] = totals[k] + v * b if k in totals else v * b
    return {k: float(v) / x.shape[0] for k, v in totals.items()}


def apply_in_batches(fn, x, batch_size, scale, dtype=TRAIN_DTYPE, y=None):
    """fn applied to float batches of x: (N, D) uint8, results concatenated: (N, ...).

    For encode/reconstruct over a whole test set without one (N, H) activation at once.
    y: the labels of x, (N,) ints: then fn(batch, labels) is called; None: fn(batch).
    """
    xp = namespace(x)
    outputs = [fn(*inputs) for inputs in _inputs(x, batch_size, scale, dtype, y=y)]
    if isinstance(outputs[0], tuple):
        return tuple(xp.concat(parts, axis=0) for parts in zip(*outputs))
    return xp.concat(outputs, axis=0)
