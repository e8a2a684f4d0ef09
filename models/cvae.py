"""The conditional VAE (Kingma et al. 2014, "M2"; Sohn et al. 2015): a VAE told the class of each image.

Forward, for a batch x: (N, D) with labels: (N,) ints in [0, C), latent size J, hidden width H:

    y      = onehot(labels)                  (N, C)       data, like x: nothing upstream to train
    h      = encoder([x, y])                 (N, H)       [a, b]: the columns of a, then of b
    mu     = h @ W_mu + b_mu                 (N, J)
    logvar = h @ W_logvar + b_logvar         (N, J)
    z      = mu + exp(0.5 * logvar) * eps    (N, J)       eps ~ N(0, I)
    x_hat  = sigmoid(decoder([z, y]))        (N, D)
    loss   = recon(x_hat, x) + beta * KL(N(mu, std**2) || N(0, I))      per image

Backward (docs/derivations.md, "The conditional VAE"): the VAE's, with one new step. The
decoder's first layer returns the gradient of its whole input, d[z, y] = (dz, dy): a
concatenation's backward hands each block its own columns back. dz goes on into the
sampler; dy is dropped, since y is data, with no parameters behind it. At the other end,
the encoder's first layer reads [x, y] and, as in every model here, computes no input
gradient at all.

    dzy     = decoder.backward(dlogits)      (N, J + C)
    dz      = dzy[:, :J]                     the first J columns; dzy[:, J:] = dy, unused
    dmu     = dz                     + beta * dKL/dmu
    dlogvar = dz * eps * 0.5 * std   + beta * dKL/dlogvar
    dh      = dmu @ W_mu.T + dlogvar @ W_logvar.T
"""

from nn import Generator, gaussian_kl, one_hot
from nn.backend import TRAIN_DTYPE, namespace

from .base import Model, Reconstruction
from .conv import CHANNELS
from .vae import kl_weight, vae_layers


class ConditionalVAE(Model):
    """[input_dim + n_classes] -> hidden... -> (mu, logvar) in R^latent_dim;
    [latent_dim + n_classes] -> reversed(hidden)... -> input_dim.

    Every method that reads images or codes also takes their labels: (N,) ints on the same
    backend. Heads, sampler, KL term, output head and the init / x_mean arguments are the
    VAE's (models/vae.py); `forward(x, labels, eps)` takes fixed noise for a gradient check.
    arch, channels, image_shape: the VAE's; with "conv" the class enters the encoder as C
    constant planes beside the image (models/conv.py, AsImages).
    """

    def __init__(self, input_dim, n_classes, hidden=(512,), latent_dim=2, loss="mse", beta=1.0, activation="relu",
                 init="he-xavier", x_mean=None, rng=None, dtype=TRAIN_DTYPE, arch="mlp", channels=CHANNELS,
                 image_shape=None):
        self.rng = rng = rng or Generator(0)
        self.n_classes, self.latent_dim, self.beta, self.dtype = n_classes, latent_dim, kl_weight(beta), dtype
        # [x, y] into the encoder and [z, y] into the decoder: each first layer is C inputs wider.
        self.encoder, self.mu_head, self.logvar_head, self.decoder = vae_layers(
            input_dim=input_dim, hidden=hidden, latent_dim=latent_dim, activation=activation, init=init, rng=rng,
            dtype=dtype, condition_dim=n_classes, arch=arch, channels=channels, image_shape=image_shape)
        self.recon_loss = Reconstruction(loss)
        self.loss, self.init, self.arch = loss, init, arch
        self.settings = ("n_classes", "arch", "loss", "beta", "init")
        self.parts = {"encoder": self.encoder, "mu": self.mu_head, "logvar": self.logvar_head, "decoder": self.decoder}
        self.collect_params()
        if x_mean is not None:
            self.start_at(x_mean)

    def onehot(self, labels, like):
        """y: (N, n_classes), the one-hot rows of labels, in the dtype of `like`."""
        return one_hot(labels, self.n_classes, like)

    def encode(self, x, labels):
        """(mu, logvar) of q(z|x, y), each (N, latent_dim)."""
        xp = namespace(x)
        h = self.encoder.forward(xp.concat([x, self.onehot(labels, x)], axis=1))  # [x, y]: (N, D + C)
        return self.mu_head.forward(h), self.logvar_head.forward(h)

    def decode(self, z, labels):
        """x_hat: (N, input_dim), pixel means in [0, 1], of images of class `labels` with code z."""
        xp = namespace(z)
        return self.recon_loss.output(self.decoder.forward(xp.concat([z, self.onehot(labels, z)], axis=1)))

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
        """The loss terms of a batch x: (N, input_dim) of class labels: (N,), as 0-d arrays: {"loss", "recon", "kl"}.

        eps: (N, latent_dim) noise; when None it is drawn from `rng`, else from the
        generator the model was built with.
        """
        xp = namespace(x)
        y = self.onehot(labels, x)  # (N, C), made once for both ends
        h = self.encoder.forward(xp.concat([x, y], axis=1))
        mu, logvar = self.mu_head.forward(h), self.logvar_head.forward(h)
        if eps is None:
            eps = (rng or self.rng).normal(tuple(mu.shape), mu.dtype)
        std = xp.exp(0.5 * logvar)
        z = mu + std * eps
        recon = self.recon_loss.forward(self.decoder.forward(xp.concat([z, y], axis=1)), x)
        kl, self.dmu_kl, self.dlogvar_kl = gaussian_kl(mu, logvar)
        self.eps, self.std = eps, std  # what backward needs of the sampling step
        return {"loss": recon + self.beta * kl, "recon": recon, "kl": kl}

    def backward(self):
        """Fill self.grads with dloss/dparam for the batch of the last forward."""
        # 1. The reconstruction term, back through the decoder to its input [z, y].
        dzy = self.decoder.backward(self.recon_loss.backward())  # (N, J + C)
        # 2. The concatenation's backward: z's columns go back to z. y's (dzy[:, J:]) would go
        #    to the labels, which are data: they are dropped.
        dz = dzy[:, :self.latent_dim]
        # 3. Through z = mu + std * eps and the KL term, exactly as in the VAE.
        dmu = dz + self.beta * self.dmu_kl
        dlogvar = dz * self.eps * (0.5 * self.std) + self.beta * self.dlogvar_kl
        # 4. Both heads read h; the encoder's first layer stops the chain at [x, y].
        dh = self.mu_head.backward(dmu) + self.logvar_head.backward(dlogvar)
        self.encoder.backward(dh)
