"""The autoencoder, the variational autoencoder, its conditional form and a classifier, built on nn/."""

from .autoencoder import AutoEncoder
from .classifier import Classifier
from .cvae import ConditionalVAE
from .vae import VAE

__all__ = ["VAE", "AutoEncoder", "Classifier", "ConditionalVAE"]
