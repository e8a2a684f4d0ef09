"""train_ae.py: the lab's plain autoencoder, the VAE's deterministic counterpart.

The run itself (epochs, checkpoints, resuming, Ctrl-C) is lab/run.py; the model is
models/autoencoder.py. An autoencoder has no prior to sample from, so it draws no
figures beyond the common ones: its latent plane is the one to compare with the VAE's.
"""

from lab import run
from models import AutoEncoder


def build_model(config, data, rng):
    return AutoEncoder(data.input_dim, config.hidden, config.latent_dim, loss=config.loss, init=config.init,
                       x_mean=data.mean_image, rng=rng)


def main(argv=None):
    parser = run.build_parser("train_ae.py", "Train the lab's autoencoder and write its figures.", "ae")
    return run.main(parser, "ae", build_model, argv=argv)
