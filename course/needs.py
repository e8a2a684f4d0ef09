"""Which exercises a training run needs: the ones whose functions one training step of its model
calls, found by taking that step with the reference functions in place, each one traced.

The lab's VAE on squared error calls Dense, ReLU and Sigmoid's backward passes, mse, gaussian_kl,
Adam.update and VAE.backward; not bce, gaussian_nll, Tanh, AutoEncoder.backward, numerical_grad or
the convolutions. With arch "conv" it calls Conv2d.backward and ConvTranspose2d.backward too (the
first convolution's backward runs for its dW and db, though it skips dx); with loss "gaussian",
gaussian_nll instead of mse. So a student can train the VAE as soon as the exercises it runs on
are correct (apps/grade.py --before-training).
"""

import contextlib
import dataclasses
from types import SimpleNamespace

import numpy as np

from nn import Adam, Generator

from lab.config import TrainConfig, build_model
from .exercises import EXERCISES
from . import grading
from .grading import compiled, in_workspace, installed, reference_file
from .key import needs_key, read_key, traced, training_runs


def exercises_used(config, exercises=EXERCISES):
    """The exercises, of `exercises`, whose functions one training step (forward, backward, Adam)
    of the model `config` describes calls. The step is taken on a model of the same kind, loss and
    architecture on 4 x 4 images, with 4 hidden units or channels (2, 2): which functions run
    does not depend on the sizes. In a workspace, where there is no reference to take the step
    with, the key says (make_workspace took each step in the teacher's project). A model that
    refuses config's settings (the autoencoder, loss "gaussian") raises its ValueError, there too."""
    rng = Generator(0)
    # all build_model reads of a dataset; 4 x 4 is the smallest image two convolutions halve twice
    data = SimpleNamespace(input_dim=16, mean_image=np.full(16, 0.5), image_shape=(4, 4))
    model = build_model(dataclasses.replace(config, hidden=(4,), channels=(2, 2), latent_dim=2), data, rng)
    if in_workspace():
        needed = read_key(grading.ROOT)[1][needs_key(config)]
        return [exercise for exercise in exercises if exercise.qualname in needed]
    called = set()
    with contextlib.ExitStack() as stack:
        for exercise in exercises:
            stack.enter_context(installed(exercise, traced(compiled(exercise, *reference_file(exercise)), exercise,
                                                           called)))
        model.forward(rng.uniform((3, 16), 0.0, 1.0), rng=rng)
        model.backward()
        Adam(model.params, lr=config.lr).step(model.grads)
    return [exercise for exercise in exercises if exercise.qualname in called]


def every_training_run():
    """{"vae/mse/mlp": [qualname, ...]}: exercises_used of every training run a workspace may take."""
    return {needs_key(config): [e.qualname for e in exercises_used(config)]
            for config in (TrainConfig(model=model, loss=loss, arch=arch) for model, loss, arch in training_runs())}
