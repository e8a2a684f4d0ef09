"""How long a student's code may run, and how long it would make training take.

Time limits: `make grade` runs each exercise's check under the autograder's limit for it
(autograder/points.json's time_limit_s), by SIGALRM: a check still running then is stopped where
it is (TimedOut, raised in the student's code) and the exercise is "timed out", while the others
are still graded. A loop in Python stops within the limit; one call into NumPy that runs longer
stops when it returns.

Speed: a backward can be right and too slow to train with (a loop over every output pixel of a
convolution: right on the check's 5 x 3 images, hours for an epoch). STEPS runs each backward
once more at the size of a step of `make vae` (the lab's VAE, a batch of 128 x 784 -> 512; the
conv VAE's first layer on 128 images of 28 x 28), and one more than SLOWER times the reference is
correct with a warning that says how long training would spend in it. In the teacher's project
the reference runs beside it; a workspace holds no reference code, so `make exercises` measures
the reference there and stores its seconds in the key (course/key.py). The two machines differ,
by a factor of a few at most: a warning is for a factor of SLOWER, where that does not matter.
"""

import contextlib
import json
import math
import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from lab.config import TrainConfig
from models import VAE, AutoEncoder
from nn import Conv2d, ConvTranspose2d, Dense, Generator, ReLU, Sigmoid, Tanh, losses
from nn.backend import get_backend, to_backend

TIME_LIMIT_S = 30.0  # where autograder/points.json cannot be read: its default
SLOWER = 20  # a backward this many times slower than the reference is said to be slow...
NOTICED_S = 10.0  # ...where it adds this many seconds to an epoch (an activation's microseconds do not)
TRAINING_IMAGES = 60_000  # an epoch of `make vae`: Fashion-MNIST's training set


class TimedOut(BaseException):
    """Raised in the student's code when its time is up: a BaseException, so that the
    `except Exception` of a check (or of the student) does not take it for a wrong answer."""


@contextlib.contextmanager
def time_limit(seconds):
    """Raise TimedOut in whatever runs when the block has run `seconds`. Signals reach the main
    thread only: elsewhere the block runs with no limit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise TimedOut(seconds)

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def limit_of(exercise, root="."):
    """The exercise's time_limit_s in root/autograder/points.json (the top-level one where it names
    none), or TIME_LIMIT_S where the table cannot be read."""
    try:
        with open(os.path.join(root, "autograder", "points.json")) as f:
            table = json.load(f)
        return float(table["exercises"].get(exercise.qualname, {}).get("time_limit_s", table["time_limit_s"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return TIME_LIMIT_S


# --- Each backward at a training step's size ------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One backward at the size of a training step: `what` it is, the `command` that trains with
    it, and `backward(xp) -> a function of no arguments` that runs it (its forward already run)."""

    what: str
    command: str
    backward: Callable


def images(xp, n=128):
    return to_backend(np.random.default_rng(8).uniform(0, 1, (n, 784)).astype(np.float32), xp)


def layer(make, x_shape, input_grad=True):
    def prepared(xp):
        rng = Generator(7, xp)
        unit = make(rng)
        if hasattr(unit, "input_grad"):
            unit.input_grad = input_grad
        y = unit.forward(rng.normal(x_shape))
        dout = rng.normal(tuple(y.shape))
        return lambda: unit.backward(dout)

    return prepared


def model(make, **noise):
    def prepared(xp):
        rng = Generator(12, xp)
        m = make(rng)
        x = images(xp)
        m.forward(x, **{name: rng.normal((128, 2)) for name in noise})
        return m.backward

    return prepared


def likelihood(xp):
    """gaussian_nll, value and gradients, of a batch of 128 images (looked up when it runs: whichever is in place)."""
    rng = Generator(14, xp)
    x_hat, x, x_logvar = rng.uniform((128, 784), 0.0, 1.0), images(xp), xp.full((1,), -2.0, dtype=xp.float32)
    return lambda: losses.gaussian_nll(x_hat, x, x_logvar)


MLP = "the lab's VAE, 784 -> 512 -> 2, on a batch of 128"
CONV = '`make vae ARGS="--arch conv"`'
STEPS = {
    "Dense.backward": Step("Dense 784 -> 512 on a batch of 128", "`make vae`",
                           layer(lambda rng: Dense(784, 512, rng), (128, 784))),
    "ReLU.backward": Step("ReLU on a batch of 128 x 512", "`make vae`", layer(lambda rng: ReLU(), (128, 512))),
    "Sigmoid.backward": Step("Sigmoid on a batch of 128 x 512", "`make vae`",
                             layer(lambda rng: Sigmoid(), (128, 512))),
    "Tanh.backward": Step("Tanh on a batch of 128 x 512", "`make vae`", layer(lambda rng: Tanh(), (128, 512))),
    "AutoEncoder.backward": Step("the lab's autoencoder, 784 -> 512 -> 2, on a batch of 128", "`make ae`",
                                 model(lambda rng: AutoEncoder(784, (512,), 2, rng=rng))),
    "VAE.backward": Step(MLP, "`make vae`", model(lambda rng: VAE(784, (512,), 2, rng=rng), eps=True)),
    "Conv2d.backward": Step("the conv VAE's first layer, 1 -> 32 channels, on 128 images of 28 x 28", CONV,
                            layer(lambda rng: Conv2d(1, 32, 4, rng, stride=2, padding=1), (128, 1, 28, 28),
                                  input_grad=False)),
    "ConvTranspose2d.backward": Step("the conv VAE's last layer, 32 -> 1 channels, to 128 images of 28 x 28", CONV,
                                     layer(lambda rng: ConvTranspose2d(32, 1, 4, rng, stride=2, padding=1),
                                           (128, 32, 14, 14))),
    "gaussian_nll": Step("a batch of 128 images of 784 pixels", '`make vae ARGS="--loss gaussian"`',
                         likelihood),
}


def seconds(exercise, limit=None):
    """The best of up to three runs of the exercise's backward at its step's size, on NumPy, with
    whatever is installed now (None for an exercise with no Step); `limit` where it ran out of
    time (one run past the limit is stopped)."""
    step = STEPS.get(exercise.qualname)
    if step is None:
        return None
    run, best, spent = step.backward(get_backend("numpy")), math.inf, 0.0
    with time_limit(limit) if limit else contextlib.nullcontext():
        try:
            for _ in range(3):
                start = time.perf_counter()
                run()
                best = min(best, time.perf_counter() - start)
                spent += best
                if spent > 1.0:  # slow enough to know
                    break
        except TimedOut:
            return limit
    return best


def duration(s):
    return f"{s:.2g} s" if s < 90 else f"{s / 60:.2g} min" if s < 5400 else f"{s / 3600:.2g} h"


def slow(exercise, took, reference, limit=None):
    """The warning for a backward that took `took` seconds where the reference takes `reference`,
    or "" where it is not SLOWER times slower (or either is unknown)."""
    step, config = STEPS[exercise.qualname], TrainConfig()
    steps = math.ceil(TRAINING_IMAGES / config.batch_size)
    if took is None or not reference or took < SLOWER * reference or steps * took < NOTICED_S:
        return ""
    more = "more than " if limit and took >= limit else ""
    return (f"correct, but slow: its backward takes {more}{duration(took)} on {step.what}, {took / reference:.0f} "
            f"times the reference's {duration(reference)}; an epoch of {step.command} ({steps} steps) would spend "
            f"{more or 'at least '}{duration(steps * took)} in it, its {config.epochs} epochs "
            f"{duration(config.epochs * steps * took)}: write it as the matrix products of its section")
