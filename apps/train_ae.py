"""train_ae.py: the lab's plain autoencoder, the VAE's deterministic counterpart.

The run itself (epochs, checkpoints, resuming, Ctrl-C) is lab/run.py; the model is
models/autoencoder.py, built by lab/config.py. An autoencoder has no prior to sample from, so it draws no
figures beyond the common ones: its latent plane is the one to compare with the VAE's.
"""

from lab import run


def main(argv=None):
    parser = run.build_parser("train_ae.py", "Train the lab's autoencoder and write its figures.")
    return run.main(parser, "ae", argv=argv)
