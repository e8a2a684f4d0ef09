"""The conditional VAE (Kingma et al. 2014, "M2"; Sohn et al. 2015): a VAE told the class of each image.

Forward, for a batch x: (N, D) with labels: (N,) ints in [0, C), latent size J, hidden width H:

    y      = onehot(labels)                  (N, C)       data, like x: nothing upstream to train
    h      = encoder([x, y])                 (N, H)       [a, b]: the columns of a, then of b
    mu     = h @ W_mu + b_mu                 (N, J)
    logvar = h @ W_logvar + b_logvar         (N, J)
    z      = mu + exp(0.5 * logvar) * eps    (N, J)       eps ~ N(0, I)
    x_hat  = sigmoid(decoder([z, y]))        (N, D)
    loss   = recon(x_hat, x) + beta * KL(N(mu, std**2) || N(0, I))      per image

It is the VAE (models/vae.py) with one layer more at the front of each network, `Condition`,
which puts y beside what the network reads: [x, y] into the encoder, [z, y] into the decoder.
So forward and backward are the VAE's own, inherited, not written again: VAE.backward runs
the decoder's backward, and the decoder's first layer is now the Condition, whose backward
is the one new step (docs/derivations.md, "The conditional VAE").
"""

from nn import Generator, Sequential, one_hot
from nn.backend import TRAIN_DTYPE, namespace
from nn.layers import Layer

from .base import Reconstruction
from .conv import CHANNELS
from .vae import VAE, kl_weight, vae_layers


class Condition(Layer):
    """[a, y]: a: (N, F) with the condition y: (N, C) beside it, (N, F + C). y is set before each
    pass (ConditionalVAE.condition_on).

    backward(dout: (N, F + C)) returns da = dout[:, :F]: a concatenation hands each block its own
    columns back. y's columns, dout[:, F:], are dropped: y is data, with nothing behind it to train.
    """

    def __init__(self):
        super().__init__()
        self.y = None

    def forward(self, a):
        xp = namespace(a, self.y)
        self.width = a.shape[1]
        return xp.concat([a, self.y], axis=1)

    def backward(self, dout):
        return dout[:, :self.width]

    def __repr__(self):
        return "Condition()"


class ConditionalVAE(VAE):
    """[input_dim + n_classes] -> hidden... -> (mu, logvar) in R^latent_dim;
    [latent_dim + n_classes] -> reversed(hidden)... -> input_dim.

    Every method that reads images or codes also takes their labels: (N,) ints on the same
    backend. Heads, sampler, KL term, output head, forward, backward and the init / x_mean
    arguments are the VAE's (models/vae.py); `forward(x, labels, eps)` takes fixed noise for a
    gradient check. arch, channels, image_shape: the VAE's; with "conv" the class enters the
    encoder as C constant planes beside the image (models/conv.py, AsImages).
    """

    def __init__(self, input_dim, n_classes, hidden=(512,), latent_dim=2, loss="mse", beta=1.0, activation="relu",
                 init="he-xavier", x_mean=None, rng=None, dtype=TRAIN_DTYPE, arch="mlp", channels=CHANNELS,
                 image_shape=None):
        self.rng = rng = rng or Generator(0)
        self.n_classes, self.latent_dim, self.beta, self.dtype = n_classes, latent_dim, kl_weight(beta), dtype
        # [x, y] into the encoder and [z, y] into the decoder: each first layer is C inputs wider.
        encoder, self.mu_head, self.logvar_head, decoder = vae_layers(
            input_dim=input_dim, hidden=hidden, latent_dim=latent_dim, activation=activation, init=init, rng=rng,
            dtype=dtype, condition_dim=n_classes, arch=arch, channels=channels, image_shape=image_shape)
        self.encoder = Sequential(Condition(), *encoder.layers)
        self.decoder = Sequential(Condition(), *decoder.layers)
        self.recon_loss = Reconstruction(loss)
        self.loss, self.init, self.arch = loss, init, arch
        self.settings = ("n_classes", "arch", "loss", "beta", "init")
        self.parts = {"encoder": self.encoder, "mu": self.mu_head, "logvar": self.logvar_head, "decoder": self.decoder}
        self.collect_params()
        if x_mean is not None:
            self.start_at(x_mean)

    def condition_on(self, labels, like):
        """Set y = onehot(labels): (N, n_classes), in the dtype of `like`, for both ends to read."""
        y = one_hot(labels, self.n_classes, like)
        self.encoder.layers[0].y = self.decoder.layers[0].y = y

    def encode(self, x, labels):
        """(mu, logvar) of q(z|x, y), each (N, latent_dim)."""
        self.condition_on(labels, x)
        return super().encode(x)

    def decode(self, z, labels):
        """x_hat: (N, input_dim), pixel means in [0, 1], of images of class `labels` with code z."""
        self.condition_on(labels, z)
        return super().decode(z)

    def code(self, x, labels):
        """mu: (N, latent_dim), the mean of q(z|x, y), without noise."""
        return self.encode(x, labels)[0]

    def reconstruct(self, x, labels):
        return self.decode(self.code(x, labels), labels)

    def sample(self, n, labels, rng):
        """n new images of the classes `labels`: (n,) ints, decoded from z ~ N(0, I) drawn from `rng`.
        Returns (n, input_dim) in [0, 1]."""
        z = rng.normal((n, self.latent_dim), self.dtype)
        return self.decode(z, labels)

    def forward(self, x, labels, eps=None, rng=None):
        """The VAE's loss terms of a batch x: (N, input_dim) of class labels: (N,), as 0-d arrays:
        {"loss", "recon", "kl"}. eps, rng: as VAE.forward's."""
        self.condition_on(labels, x)  # made once for both ends
        return super().forward(x, eps, rng)
