"""The variational autoencoder (Kingma & Welling 2014), forward and backward by hand.

Forward, for a batch x: (N, D), with latent size J and hidden width H:

    h      = encoder(x)                      (N, H)   trunk: Dense + activation layers
    mu     = h @ W_mu + b_mu                 (N, J)   mean of q(z|x)
    logvar = h @ W_logvar + b_logvar         (N, J)   log of its variance
    std    = exp(0.5 * logvar)               (N, J)
    z      = mu + std * eps,  eps ~ N(0, I)  (N, J)   the reparameterisation trick
    x_hat  = sigmoid(decoder(z))             (N, D)
    loss   = recon(x_hat, x) + beta * KL(N(mu, std**2) || N(0, I))      per image

KL is the rate (nats the code carries about an image), recon the distortion (-log p(x|z), up to
a constant for "mse"); beta sets the price of a nat. With free_bits, the KL term is
free_bits_kl's: each dimension's KL is paid only above that floor (nn/losses.py).

The backward runs through these steps in reverse (docs/derivations.md, "The VAE and the
reparameterisation trick"), with eps a constant given to the network.

Derived in docs/derivations.md, "The VAE and the reparameterisation trick": eps is a constant,
so z is a plain differentiable function of mu and logvar:

    dz      = decoder.backward(dlogits)
    dmu     = dz                     + beta * dKL/dmu      (dz/dmu = 1)
    dlogvar = dz * eps * 0.5 * std   + beta * dKL/dlogvar  (dz/dlogvar = eps * 0.5 * std)
    dh      = dmu @ W_mu.T + dlogvar @ W_logvar.T          (h feeds both heads)
"""

from nn import Dense, Generator, free_bits_kl, gaussian_kl
from nn.backend import TRAIN_DTYPE, namespace

from .base import CODE_BIAS, HEAD_SCALE, Model, Reconstruction
from .conv import CHANNELS, architecture


def vae_layers(*, input_dim, hidden, latent_dim, activation, init, rng, dtype, head_scale=HEAD_SCALE,
               condition_dim=0, arch="mlp", channels=CHANNELS, image_shape=None):
    """(encoder, mu_head, logvar_head, decoder) of a VAE: the trunk of `arch` (models/conv.py,
    Architecture) from (input_dim + condition_dim) to its width, the two heads width -> latent_dim
    (their weights scaled by head_scale), and the decoder (latent_dim + condition_dim) -> input_dim.
    "mlp": the trunk is Dense layers of widths `hidden`, the decoder their mirror; "conv": the
    convolutions of `channels` over images of `image_shape`, (H, W). condition_dim: the width of a
    condition both ends read beside their input (the conditional VAE's one-hot class), 0 for none."""
    hidden = tuple(hidden)
    if arch == "mlp" and not hidden:
        raise ValueError("a VAE needs at least one hidden layer in its encoder trunk, e.g. hidden=(512,)")
    build = architecture(arch)
    shapes = dict(input_dim=input_dim, hidden=hidden, channels=tuple(channels), image_shape=image_shape,
                  activation=activation, init=init, rng=rng, dtype=dtype)
    encoder, width = build.encoder(**shapes, condition_dim=condition_dim)
    head_init = "uniform" if init == "uniform" else "xavier"
    mu_head = Dense(width, latent_dim, rng, init=head_init, dtype=dtype)
    logvar_head = Dense(width, latent_dim, rng, init=head_init, dtype=dtype)
    for head in (mu_head, logvar_head):
        head.params["W"] *= head_scale  # q(z|x) starts near the prior for every image
    decoder = build.decoder(**shapes, code_dim=latent_dim + condition_dim, first_bias=CODE_BIAS)
    return encoder, mu_head, logvar_head, decoder


def kl_weight(beta):
    """beta, checked: the weight of the KL term must be >= 0 (1 gives the ELBO)."""
    if not beta >= 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    return beta


def warmed_up(beta, epoch, warmup):
    """The KL weight in epoch `epoch` (from 1) of a warm-up over `warmup` epochs (Sonderby et al. 2016):
    beta * (epoch - 1) / warmup, from 0 in the first epoch up to beta from epoch warmup + 1 on.
    warmup 0: beta throughout."""
    return beta if warmup == 0 else beta * min(1.0, (epoch - 1) / warmup)


class VAE(Model):
    """input_dim -> hidden... -> (mu, logvar) in R^latent_dim; latent_dim -> reversed(hidden)... -> input_dim.

    `rng` draws the noise eps in training (and the initial weights); `forward(x, eps)`
    takes fixed noise instead, which makes the loss a deterministic function of the
    parameters, so that it can be gradient-checked. init: "he-xavier" or "uniform"
    (models/base.py, `mlp`; either way the decoder's first biases are drawn in +-CODE_BIAS);
    head_scale: the factor on the heads' initial weights (HEAD_SCALE: q(z|x) starts near the
    prior; 1.0 for the scheme's full scale); x_mean: the mean training image, for `start_at`.
    arch: "mlp", the lab's, or "conv" (models/conv.py: convolutions with `channels` over images of
    `image_shape`, (H, W); `hidden` is then unused). Either way x is a batch of rows, (N, input_dim).
    loss "gaussian": the decoder's variance is learned, a part "likelihood" of its own (Reconstruction).
    free_bits: the floor, in nats, on each dimension's KL in the loss (0: none; free_bits_kl).
    """

    free_bits = 0.0  # no floor: what a subclass that builds its own layers (the conditional VAE) has

    def __init__(self, input_dim, hidden=(512,), latent_dim=2, loss="mse", beta=1.0, activation="relu",
                 init="he-xavier", head_scale=HEAD_SCALE, x_mean=None, rng=None, dtype=TRAIN_DTYPE,
                 arch="mlp", channels=CHANNELS, image_shape=None, free_bits=0.0):
        self.rng = rng = rng or Generator(0)
        self.latent_dim, self.beta, self.dtype = latent_dim, kl_weight(beta), dtype
        if not free_bits >= 0:
            raise ValueError(f"free_bits must be >= 0 nats, got {free_bits}")
        self.free_bits = free_bits
        self.encoder, self.mu_head, self.logvar_head, self.decoder = vae_layers(
            input_dim=input_dim, hidden=hidden, latent_dim=latent_dim, activation=activation, init=init, rng=rng,
            dtype=dtype, head_scale=head_scale, arch=arch, channels=channels, image_shape=image_shape)
        self.recon_loss = Reconstruction(loss, xp=rng.xp, dtype=dtype)
        self.loss, self.init, self.head_scale, self.arch = loss, init, head_scale, arch
        self.settings = ("arch", "loss", "beta", "init", "head_scale") + (("free_bits",) if free_bits else ())
        self.parts = {"encoder": self.encoder, "mu": self.mu_head, "logvar": self.logvar_head, "decoder": self.decoder}
        if self.recon_loss.params:  # the learned variance of p(x|z)
            self.parts["likelihood"] = self.recon_loss
        self.collect_params()
        if x_mean is not None:
            self.start_at(x_mean)

    def encode(self, x):
        """(mu, logvar) of q(z|x), each (N, latent_dim)."""
        h = self.encoder.forward(x)
        return self.mu_head.forward(h), self.logvar_head.forward(h)

    def decode(self, z):
        """x_hat: (N, input_dim), pixel means in [0, 1]."""
        return self.recon_loss.output(self.decoder.forward(z))

    def code(self, x):
        """mu: (N, latent_dim), the mean of q(z|x): the VAE's code of x without noise.
        reconstruct(x) decodes it: the VAE's best single reconstruction of x."""
        return self.encode(x)[0]

    def sample(self, n, rng):
        """n new images, decoded from z ~ N(0, I) drawn from `rng`: (n, input_dim)."""
        return self.decode(rng.normal((n, self.latent_dim), self.dtype))

    def forward(self, x, eps=None, rng=None):
        """The loss terms of a batch x: (N, input_dim), as 0-d arrays: {"loss", "recon", "kl"}.

        eps: (N, latent_dim) noise; when None it is drawn from `rng`, else from the
        generator the model was built with.
        """
        xp = namespace(x)
        h = self.encoder.forward(x)
        mu, logvar = self.mu_head.forward(h), self.logvar_head.forward(h)
        if eps is None:
            eps = (rng or self.rng).normal(tuple(mu.shape), mu.dtype)
        std = xp.exp(0.5 * logvar)
        z = mu + std * eps
        recon = self.recon_loss.forward(self.decoder.forward(z), x)
        if self.free_bits:  # the KL term paid is the floored one; the KL itself is still reported
            paid, kl, self.dmu_kl, self.dlogvar_kl = free_bits_kl(mu, logvar, self.free_bits)
        else:
            kl, self.dmu_kl, self.dlogvar_kl = gaussian_kl(mu, logvar)
            paid = kl
        self.eps, self.std = eps, std  # what backward needs of the sampling step
        return {"loss": recon + self.beta * paid, "recon": recon, "kl": kl}

    def backward(self):
        """Fill self.grads with dloss/dparam for the batch of the last forward.

        Keeps self.dmu and self.dlogvar: (N, latent_dim), dloss/dmu and dloss/dlogvar, the
        gradients the heads receive (part of the contract: the grader checks them too).
        What forward kept for it: self.eps and self.std, (N, latent_dim), of the sampling step,
        and self.dmu_kl, self.dlogvar_kl, the KL term's own gradients (gaussian_kl's, or with free bits
        free_bits_kl's, masked by dimension). Every part's
        backward must run (recon_loss, decoder, both heads, encoder): each fills its own grads.
        """
        # 1. The reconstruction term, back through the decoder to the code z.
        dz = self.decoder.backward(self.recon_loss.backward())
        # 2. Through z = mu + std * eps, with std = exp(0.5 * logvar); plus the KL term,
        #    which reads mu and logvar directly.
        dmu = dz + self.beta * self.dmu_kl
        dlogvar = dz * self.eps * (0.5 * self.std) + self.beta * self.dlogvar_kl
        self.dmu, self.dlogvar = dmu, dlogvar
        # 3. Both heads read the trunk's output h, so their gradients with respect to h add.
        dh = self.mu_head.backward(dmu) + self.logvar_head.backward(dlogvar)
        self.encoder.backward(dh)
