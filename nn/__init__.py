"""A small neural-network library with hand-written backward passes (no autograd)."""

from .backend import Generator, get_backend, namespace, to_backend, to_numpy
from .conv import Conv2d, ConvTranspose2d, Reshape
from .layers import Dense, LeakyReLU, ReLU, Sequential, Sigmoid, Tanh, sigmoid
from .losses import (bce, bce_terms, free_bits_kl, gaussian_kl, gaussian_nll, kl_per_dimension, mse, one_hot,
                     softmax_cross_entropy)
from .optim import SGD, Adam

__all__ = [
    "Adam", "Conv2d", "ConvTranspose2d", "Dense", "Generator", "LeakyReLU", "ReLU", "Reshape", "SGD", "Sequential",
    "Sigmoid", "Tanh",
    "bce", "bce_terms", "free_bits_kl", "gaussian_kl", "gaussian_nll", "get_backend", "kl_per_dimension", "mse", "namespace", "one_hot", "sigmoid", "softmax_cross_entropy",
    "to_backend", "to_numpy",
]
