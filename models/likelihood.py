"""How likely does a trained VAE find the data? log p(x), bounded from below by importance weighting.

The training loss is not the likelihood: it is minus the ELBO (up to a constant), a lower
bound on log p(x) that is loose by KL(q(z|x) || p(z|x)), the price of an encoder that is
not the true posterior. Sampling K codes per image tightens it (Burda, Grosse &
Salakhutdinov 2016):

    log p(x) >= L_K = E[ log (1/K) sum_k w_k ],   w_k = p(x|z_k) p(z_k) / q(z_k|x),   z_k ~ q(z|x)

L_1 is the ELBO, L_K never falls as K grows, and it reaches log p(x) as K -> infinity.
With z_k = mu + std * eps_k, the three densities of a log-weight are (J latent dimensions)

    log q(z_k|x) = -1/2 sum_j (eps_kj**2 + logvar_j + log 2 pi)      (z - mu) / std = eps
    log p(z_k)   = -1/2 sum_j (z_kj**2 + log 2 pi)                   the prior N(0, I)
    log p(x|z_k) = decoder_log_likelihood(decoder logits at z_k, x)

and the average over k is taken in log space, log-sum-exp, so that weights of e**-500
neither underflow nor lose the largest one. docs/derivations.md, "The log-likelihood",
derives the decoder's constants.
"""

import math

from nn import bce_terms, sigmoid
from nn.backend import namespace
from nn.losses import LOG_2PI

from .base import MSE_LOGVAR
from .conv import architecture

# What p(x|z) is, for each reconstruction loss: the likelihood the loss is minus the log of.
DECODERS = {
    "mse": "Gaussian N(x_hat, 1/2 I): summed squared error is -log p(x|z) - (D/2) log(pi)",
    "bce": "Bernoulli(x_hat) per pixel: binary cross-entropy is -log p(x|z) (a density of x only for 0/1 pixels)",
    "gaussian": "Gaussian N(x_hat, sigma**2 I), sigma**2 learned: the loss's reconstruction term is -log p(x|z)",
}


def decoder_log_likelihood(logits, x, loss, x_logvar=None):
    """log p(x|z) of each row, summed over the last axis: (...,) for logits, x: (..., D), x in [0, 1].

    "mse", "gaussian": p(x|z) = N(x; x_hat, sigma**2 I), x_hat = sigmoid(logits), sigma**2 = exp(x_logvar),
           the decoder's learned log-variance, (1,), for "gaussian", and 1/2 for "mse":
           log p = -sum_d (x - x_hat)**2 / (2 sigma**2) - (D / 2) (log(2 pi) + x_logvar),
           for "mse" -sum_d (x - x_hat)**2 - (D / 2) log(pi).
    "bce": p(x|z) = prod_d x_hat**x (1 - x_hat)**(1 - x): log p = -sum_d bce_terms(logits, x).
    """
    xp = namespace(logits, x)
    if loss in ("mse", "gaussian"):
        if loss == "gaussian" and x_logvar is None:
            raise ValueError("loss 'gaussian' needs the decoder's log-variance x_logvar, (1,)")
        if loss == "mse":
            x_logvar = xp.full((1,), MSE_LOGVAR, dtype=logits.dtype)
        diff = x - sigmoid(logits)
        return -0.5 * (xp.sum(diff * diff, axis=-1) / xp.exp(x_logvar) + x.shape[-1] * (LOG_2PI + x_logvar))
    if loss == "bce":
        return -xp.sum(bce_terms(logits, x), axis=-1)
    raise ValueError(f"unknown loss {loss!r}: choose one of {', '.join(DECODERS)}")


def x_logvar_of(vae):
    """The decoder's learned log-variance, (1,), or None where its variance is fixed (or it has none)."""
    return vae.recon_loss.params.get("x_logvar")


def distortion(vae, x, rng):
    """-log p(x|z) of each image of x: (N, D) at one code z ~ q(z|x) drawn from `rng`: (N,), in nats.
    Its mean is the distortion D of the rate-distortion view (Alemi et al. 2018); the rate R is the KL,
    and the ELBO is -(D + R)."""
    xp = namespace(x)
    mu, logvar = vae.encode(x)
    z = mu + xp.exp(0.5 * logvar) * rng.normal(tuple(mu.shape), mu.dtype)
    return -decoder_log_likelihood(vae.decoder.forward(z), x, vae.loss, x_logvar_of(vae))


def log_weights(vae, x, K, rng):
    """log w_k for K codes drawn from q(z|x) for each image of x: (N, D). Returns (K, N), in float64."""
    xp = namespace(x)
    mu, logvar = vae.encode(x)  # (N, J) each
    std = xp.exp(0.5 * logvar)
    eps = rng.normal((K, *mu.shape), mu.dtype)  # (K, N, J)
    z = mu + std * eps  # (K, N, J)
    logits = vae.decoder.forward(xp.reshape(z, (-1, z.shape[-1])))  # (K N, D)
    log_px = decoder_log_likelihood(xp.reshape(logits, (K, *x.shape)), x, vae.loss, x_logvar_of(vae))  # (K, N)
    J = mu.shape[-1]
    log_pz = -0.5 * (xp.sum(z * z, axis=-1) + J * LOG_2PI)
    log_qz = -0.5 * (xp.sum(eps * eps + logvar, axis=-1) + J * LOG_2PI)
    # float64 from here: a sum of 784 terms of size 1 keeps 1e-4 in float32, and the
    # differences of the weights are what log-sum-exp sees.
    f64 = xp.float64
    return xp.astype(log_px, f64) + xp.astype(log_pz, f64) - xp.astype(log_qz, f64)


def importance_weighted_bound(vae, x, K, rng, max_rows=None):
    """L_K for each image of x: (N, D), a float64 array (N,), in nats; L_1 is the ELBO.

    The K codes of an image are decoded together, max_rows codes at a time (K N decoded
    images at once would take K N D floats; default: the architecture's decode_rows,
    models/conv.py).
    """
    xp = namespace(x)
    max_rows = max_rows or architecture(vae.arch).decode_rows
    per_chunk = max(1, max_rows // K)
    bounds = []
    for start in range(0, x.shape[0], per_chunk):
        log_w = log_weights(vae, x[start:min(start + per_chunk, x.shape[0]), ...], K, rng)  # (K, n)
        top = xp.max(log_w, axis=0)  # log-sum-exp: the largest weight factored out
        bounds.append(top + xp.log(xp.mean(xp.exp(log_w - top), axis=0)))
    return xp.concat(bounds, axis=0)


def bits_per_dim(nats, D):
    """A log-likelihood in nats per image as bits per pixel: -nats / (D ln 2)."""
    return -nats / (D * math.log(2))
