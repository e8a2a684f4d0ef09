"""train_vae.py: the lab's variational autoencoder (Part Two), trained and drawn.

The run itself (epochs, checkpoints, resuming, Ctrl-C) is lab/run.py; the model is
models/vae.py. What is the VAE's own: its builder, its --beta flag, and the figure only a
generative model can draw, new images decoded from the prior.
"""

import os

from lab import plots, run
from models import VAE
from nn import Generator
from nn.backend import get_backend, to_numpy


def build_model(config, input_dim, rng):
    return VAE(input_dim, config.hidden, config.latent_dim, loss=config.loss, beta=config.beta, rng=rng)


def write_samples(model, data, config, out):
    """samples.png: 128 images decoded from z ~ N(0, I), the lab's "data augmentation"."""
    samples = to_numpy(model.sample(128, Generator(config.seed + 2, get_backend(config.backend))))
    plots.save_samples(samples, data.image_shape, os.path.join(out, "samples.png"),
                       title="VAE: new images from z ~ N(0, I)")


def main(argv=None):
    parser = run.build_parser("train_vae.py", "Train the lab's VAE and write its figures.", "vae")
    return run.main(parser, "vae", build_model, write_samples, argv)
