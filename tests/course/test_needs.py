"""Which exercises a training run needs (course/needs.py), found by tracing one step, and the runs a
workspace's key records them for (course/key.py's training_runs)."""

import pytest

from course.key import training_runs
from course.needs import exercises_used
from lab.config import TrainConfig
from models.base import LOSSES
from models.conv import ARCHS


def used(**settings):
    return [e.qualname for e in exercises_used(TrainConfig(**settings))]


def test_the_runs_a_key_records_are_every_loss_each_model_takes():
    runs = set(training_runs())
    assert {loss for _, loss, _ in runs} == set(LOSSES)
    assert {("vae", "gaussian", arch) for arch in ARCHS} <= runs  # a learned variance: the VAE's alone
    assert not {("ae", "gaussian", arch) for arch in ARCHS} & runs


def test_the_vae_with_a_learned_variance_needs_gaussian_nll_instead_of_mse():
    assert used(model="vae", loss="gaussian") == ["Dense.backward", "ReLU.backward", "Sigmoid.backward",
                                                  "gaussian_kl", "Adam.update", "VAE.backward", "gaussian_nll"]
    assert "gaussian_nll" not in used(model="vae") and "mse" in used(model="vae")


def test_the_autoencoder_refuses_a_learned_variance_in_its_own_words():
    with pytest.raises(ValueError, match="loss 'gaussian' learns the decoder's variance"):
        exercises_used(TrainConfig(model="ae", loss="gaussian"))
