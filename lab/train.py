"""The training loop shared by train_ae.py, train_vae.py and compare_pca.py.

The data stay as compact uint8 arrays on the backend's device for the whole run;
each minibatch is gathered and converted to float in [0, 1] when it is used.
Loss terms are summed on the device and read back only at progress updates, so on a
GPU the step never waits for the host.
"""

import math

from nn.backend import namespace, resolve_dtype

LOG_EVERY = 10  # steps between reads of the running loss (a host sync on the GPU)


class NonFiniteLoss(ArithmeticError):
    """The training loss became inf or NaN."""


def minibatches(x, batch_size, scale, dtype, order=None):
    """Yield float batches (B, D) of the uint8 images x: (N, D), times `scale`.

    order: a permutation of range(N) (an array on x's backend), or None for 0..N-1.
    The last batch is smaller when batch_size does not divide N.
    """
    xp = namespace(x)
    dtype = resolve_dtype(xp, dtype)
    n = x.shape[0]
    for start in range(0, n, batch_size):
        rows = x[start:start + batch_size] if order is None else xp.take(x, order[start:start + batch_size], axis=0)
        batch = xp.astype(rows, dtype)
        batch *= scale
        yield batch


def train_epoch(model, optimizer, x, batch_size, scale, rng, dtype="float32", on_progress=None, epoch=1):
    """One pass over x: (N, D) uint8 in an order drawn from `rng`; mean loss terms per image.

    on_progress(n_images_done, terms_so_far) is called every LOG_EVERY steps and at the end.
    Raises NonFiniteLoss, naming the epoch and the steps, if the loss stops being finite.
    """
    n = x.shape[0]
    totals, done, checked_step = {}, 0, 0
    for step, batch in enumerate(minibatches(x, batch_size, scale, dtype, rng.permutation(n)), start=1):
        terms = model.forward(batch)
        model.backward()
        optimizer.step(model.grads)
        b = batch.shape[0]
        for k, v in terms.items():
            totals[k] = totals[k] + v * b if k in totals else v * b  # stays on the device
        done += b
        if step % LOG_EVERY == 0 or done == n:
            means = {k: float(v) / done for k, v in totals.items()}  # the one host sync
            if not math.isfinite(means["loss"]):
                raise NonFiniteLoss(
                    f"the loss became {means['loss']} in epoch {epoch}, between steps {checked_step + 1} and {step}"
                )
            checked_step = step
            if on_progress:
                on_progress(done, means)
    return {k: float(v) / n for k, v in totals.items()}


def evaluate(model, x, batch_size, scale, rng, dtype="float32"):
    """Mean loss terms per image over x: (N, D) uint8, in order; VAE noise drawn from `rng`."""
    totals = {}
    for batch in minibatches(x, batch_size, scale, dtype):
        for k, v in model.forward(batch, rng=rng).items():
            totals[k] = totals[k] + v * batch.shape[0] if k in totals else v * batch.shape[0]
    return {k: float(v) / x.shape[0] for k, v in totals.items()}


def apply_in_batches(fn, x, batch_size, scale, dtype="float32"):
    """fn applied to float batches of x: (N, D) uint8, results concatenated: (N, ...).

    For encode/reconstruct over a whole test set without one (N, H) activation at once.
    """
    xp = namespace(x)
    outputs = [fn(batch) for batch in minibatches(x, batch_size, scale, dtype)]
    if isinstance(outputs[0], tuple):
        return tuple(xp.concat(parts, axis=0) for parts in zip(*outputs))
    return xp.concat(outputs, axis=0)
