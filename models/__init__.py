"""The autoencoder and the variational autoencoder, built on nn/."""

from .autoencoder import AutoEncoder
from .vae import VAE

__all__ = ["VAE", "AutoEncoder"]
