"""The importance-weighted log-likelihood bound: against exact integration, scipy's densities, and the ELBO."""

import math

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

from models import VAE
from models.likelihood import bits_per_dim, decoder_log_likelihood, importance_weighted_bound, log_weights
from nn import Generator
from nn.backend import CHECK_DTYPE, to_numpy

D, H = 3, 4


def one_d_vae(loss, seed=0):
    """A VAE with a 1-D code, so that log p(x) = log of an integral over one z can be computed exactly.
    The larger scheme's weights, and heads at its full scale rather than started near the prior,
    put its untrained q(z|x) far enough from the posterior for a clear gap."""
    return VAE(D, hidden=(H,), latent_dim=1, loss=loss, init="he-xavier", head_scale=1.0, rng=Generator(seed),
               dtype=CHECK_DTYPE)


def images(loss, seed=1):
    x = np.random.default_rng(seed).uniform(0, 1, (2, D))
    return np.round(x) if loss == "bce" else x  # the Bernoulli decoder is a density of 0/1 pixels


def exact_log_px(vae, x):
    """log p(x) = log of the integral of p(x|z) N(z; 0, 1) over z, on a fine grid: (N,)."""
    z = np.linspace(-12, 12, 24001)[:, None]
    log_joint = decoder_log_likelihood(vae.decoder.forward(z)[:, None, :], x, vae.loss) + stats.norm.logpdf(z)
    return logsumexp(log_joint, axis=0) + math.log(z[1, 0] - z[0, 0])


@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_the_bound_rises_with_k_towards_the_exact_log_likelihood(loss):
    vae, x = one_d_vae(loss), images(loss)
    exact = exact_log_px(vae, x)
    rng, repeats = Generator(2), 2000
    # E[L_K], as the mean of `repeats` independent estimates for each image (the images tiled).
    mean_bound = {K: importance_weighted_bound(vae, np.tile(x, (repeats, 1)), K, rng).reshape(repeats, -1).mean(0)
                  for K in (1, 10, 100, 1000)}
    assert np.all(mean_bound[1] < exact - 0.1), (exact, mean_bound)  # the ELBO is well below log p(x) here,
    assert np.all(mean_bound[1] < mean_bound[10] - 0.01), mean_bound  # each K rises above the last,
    for small, large in ((10, 100), (100, 1000)):  # (once within the Monte Carlo noise of the end, by at most that)
        assert np.all(mean_bound[small] < mean_bound[large] + 1e-3), mean_bound
    np.testing.assert_allclose(mean_bound[1000], exact, atol=2e-3)  # and L_1000 is within 0.002 of log p(x)


@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_the_k1_bound_is_the_elbo_in_expectation(loss):
    # ELBO = E_q[log p(x|z)] - KL(q || p), the first term integrated exactly over the 1-D code.
    vae, x = one_d_vae(loss, seed=3), images(loss, seed=4)
    mu, logvar = (to_numpy(a)[:, 0] for a in vae.encode(x))
    std = np.exp(0.5 * logvar)
    z = np.linspace(-12, 12, 24001)[:, None]
    q = stats.norm.pdf(z, mu, std)  # (grid, N)
    expected_log_px = np.sum(q * decoder_log_likelihood(vae.decoder.forward(z)[:, None, :], x, loss), axis=0) * (
        z[1, 0] - z[0, 0])
    kl = -0.5 * (1 + logvar - mu**2 - std**2)
    elbo = expected_log_px - kl
    samples = log_weights(vae, x, 200_000, Generator(5))  # 200,000 estimates of L_1 per image
    standard_error = samples.std(axis=0) / math.sqrt(samples.shape[0])
    assert np.all(np.abs(samples.mean(axis=0) - elbo) < 4 * standard_error), (samples.mean(axis=0), elbo)


def test_the_log_weights_match_scipy_densities():
    vae = VAE(5, hidden=(4,), latent_dim=3, rng=Generator(6), dtype=CHECK_DTYPE)
    x = np.random.default_rng(7).uniform(0, 1, (4, 5))
    K = 6
    log_w = log_weights(vae, x, K, Generator(8))
    eps = Generator(8).normal((K, 4, 3), CHECK_DTYPE)  # the same draws
    mu, logvar = vae.encode(x)
    std = np.exp(0.5 * logvar)
    z = mu + std * eps
    x_hat = 1 / (1 + np.exp(-vae.decoder.forward(z.reshape(-1, 3)).reshape(K, 4, 5)))
    expected = (stats.norm.logpdf(x, x_hat, math.sqrt(0.5)).sum(-1)  # log p(x|z), sigma^2 = 1/2
                + stats.norm.logpdf(z).sum(-1)  # log p(z)
                - stats.norm.logpdf(z, mu, std).sum(-1))  # log q(z|x)
    np.testing.assert_allclose(log_w, expected, rtol=1e-12)


def test_the_decoder_likelihoods_match_scipy():
    rng = np.random.default_rng(9)
    logits, x = rng.normal(size=(3, 7)), rng.uniform(0, 1, (3, 7))
    x_hat = 1 / (1 + np.exp(-logits))
    np.testing.assert_allclose(decoder_log_likelihood(logits, x, "mse"),
                               stats.norm.logpdf(x, x_hat, math.sqrt(0.5)).sum(-1), rtol=1e-12)
    binary = np.round(x)
    np.testing.assert_allclose(decoder_log_likelihood(logits, binary, "bce"),
                               stats.bernoulli.logpmf(binary, x_hat).sum(-1), rtol=1e-12)
    # Summed squared error is -log p(x|z) - (D/2) log(pi): the loss is the likelihood up to a constant.
    sse = np.sum((x - x_hat) ** 2, axis=-1)
    np.testing.assert_allclose(-decoder_log_likelihood(logits, x, "mse") - sse, 7 / 2 * math.log(math.pi))
    # The learned variance's: the normal density at its own variance.
    np.testing.assert_allclose(decoder_log_likelihood(logits, x, "gaussian", np.array([-2.5])),
                               stats.norm.logpdf(x, x_hat, math.exp(-1.25)).sum(-1), rtol=1e-12)
    with pytest.raises(ValueError, match="choose one of mse, bce"):
        decoder_log_likelihood(logits, x, "l1")


def test_bits_per_dim():
    assert bits_per_dim(-784 * math.log(2), 784) == pytest.approx(1.0)


def test_the_bound_is_computed_on_the_arrays_backend(xp):
    vae = VAE(D, hidden=(H,), latent_dim=2, rng=Generator(10, xp), dtype=CHECK_DTYPE)
    x = xp.asarray(images("mse"))
    bound = importance_weighted_bound(vae, x, 7, Generator(11, xp), max_rows=8)  # one image per chunk
    assert type(bound) is type(x) and tuple(bound.shape) == (2,) and np.all(np.isfinite(to_numpy(bound)))


def test_a_learned_variance_enters_the_bound_and_its_elbo_is_minus_the_loss():
    # With loss "gaussian" the reconstruction term is -log p(x|z) itself: the ELBO estimated with
    # K = 1 and the loss agree in expectation: over 2,000 draws of the noise, within four standard errors
    # (and at a variance of 1/2, the lab's, 6 log(pi) / 2 nats apart: the constant "mse" leaves out).
    rng = Generator(3)
    vae = VAE(6, hidden=(5,), latent_dim=2, loss="gaussian", head_scale=1.0, rng=rng, dtype="float64")
    vae.params["likelihood.x_logvar"][...] = -2.0
    x = rng.uniform((5, 6), 0.0, 1.0, "float64")
    elbo = np.array([np.mean(importance_weighted_bound(vae, x, 1, Generator(s))) for s in range(2000)])
    loss = np.array([float(vae.forward(x, rng=Generator(5000 + s))["loss"]) for s in range(2000)])
    error = math.sqrt(elbo.var() / len(elbo) + loss.var() / len(loss))
    assert abs(elbo.mean() + loss.mean()) < 4 * error, (elbo.mean(), -loss.mean(), error)
