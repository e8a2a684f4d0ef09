"""Which exercises a training run needs: the ones whose functions one training step of its model
calls, found by taking that step with the reference functions in place, each one traced.

The lab's VAE on squared error calls Dense, ReLU and Sigmoid's backward passes, mse, gaussian_kl,
Adam.update and VAE.backward; not bce, Tanh, AutoEncoder.backward or numerical_grad. So a student
can train the VAE as soon as the exercises it runs on are correct (apps/grade.py --before-training).
"""

import contextlib
import dataclasses
import functools
from types import SimpleNamespace

import numpy as np

from nn import Adam, Generator

from .config import build_model
from .exercises import EXERCISES
from .grading import compiled, installed, reference_file


def traced(function, exercise, called):
    """`function`, adding exercise.qualname to the set `called` each time it runs."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        called.add(exercise.qualname)
        return function(*args, **kwargs)

    return wrapper


def exercises_used(config, exercises=EXERCISES):
    """The exercises, of `exercises`, whose functions one training step (forward, backward, Adam)
    of the model `config` describes calls. The step is taken on a model of the same kind and loss
    with 6 pixels and 4 hidden units: which functions run does not depend on the sizes."""
    called = set()
    with contextlib.ExitStack() as stack:
        for exercise in exercises:
            stack.enter_context(installed(exercise, traced(compiled(exercise, *reference_file(exercise)), exercise,
                                                           called)))
        data = SimpleNamespace(input_dim=6, mean_image=np.full(6, 0.5))  # all build_model reads of a dataset
        rng = Generator(0)
        model = build_model(dataclasses.replace(config, hidden=(4,), latent_dim=2), data, rng)
        model.forward(rng.uniform((3, 6), 0.0, 1.0), rng=rng)
        model.backward()
        Adam(model.params, lr=config.lr).step(model.grads)
    return [exercise for exercise in exercises if exercise.qualname in called]
