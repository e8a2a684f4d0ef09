"""Gradient checks of the whole AE and VAE losses, in float64 with fixed noise."""

import numpy as np
import pytest

from models import VAE, AutoEncoder
from models.base import CODE_BIAS, HEAD_SCALE
from nn import Dense, Generator, kl_per_dimension
from nn.backend import CHECK_DTYPE, to_numpy
from nn.gradcheck import TOLERANCE, check_gradients, numerical_grad, rel_error

F64 = CHECK_DTYPE  # gradient checks run in float64
TOL = TOLERANCE
N, D, H, J = 4, 6, 5, 2


def batch(xp, seed=0):
    return xp.asarray(np.random.default_rng(seed).uniform(0, 1, (N, D)))


def model_errors(model, x, **forward_kwargs):
    """Relative error of every parameter's gradient of the full loss."""
    def f():
        return model.forward(x, **forward_kwargs)["loss"]

    f()
    model.backward()
    return check_gradients(f, model.params, model.grads)


@pytest.mark.parametrize("init", ["he-xavier", "uniform"])
@pytest.mark.parametrize("loss", ["mse", "bce"])
@pytest.mark.parametrize("beta", [1.0, 0.25, 4.0])
def test_vae_gradients(xp, loss, beta, init):
    # The heads at their scheme's full scale: with HEAD_SCALE's start, q(z|x) sits near the prior,
    # where the KL's gradient (exp(logvar) - 1) / 2 is about 0 and the check would compare
    # near-zero numbers, in which the centred difference's own truncation error shows.
    rng = Generator(1, xp)
    vae = VAE(D, hidden=(H,), latent_dim=J, loss=loss, beta=beta, init=init, head_scale=1.0, rng=rng, dtype=F64)
    eps = rng.normal((N, J), F64)  # fixed noise: the loss is a function of the parameters alone
    errors = model_errors(vae, batch(xp), eps=eps)
    assert set(errors) == set(vae.params)
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize("kwargs", [{"loss": "gaussian"}, {"free_bits": True}, {"loss": "gaussian", "free_bits": True}],
                         ids=["gaussian", "free-bits", "gaussian-free-bits"])
def test_vae_gradients_of_part_four(xp, kwargs):
    # The learned variance away from its start (log 1/2); a floor between the dimensions' KLs, so that
    # the check covers a dimension the floor holds and one it does not. (The conv VAE's: tests/models/test_conv.py.)
    rng = Generator(4, xp)
    vae = VAE(D, hidden=(H,), latent_dim=3, loss=kwargs.get("loss", "mse"), head_scale=1.0, rng=rng, dtype=F64)
    x, eps = batch(xp), rng.normal((N, 3), F64)
    if "likelihood" in vae.parts:
        vae.params["likelihood.x_logvar"][...] = -1.7
    if "free_bits" in kwargs:
        kl_j = np.sort(to_numpy(kl_per_dimension(*vae.encode(x))[0]))
        vae.free_bits = float(kl_j[0] + kl_j[1]) / 2
    errors = model_errors(vae, x, eps=eps)
    assert set(errors) == set(vae.params) and ("likelihood.x_logvar" in errors) == (kwargs.get("loss") == "gaussian")
    assert max(errors.values()) < TOL, errors


def test_the_learned_variance_starts_at_the_labs_loss():
    # At log(1/2), the gaussian decoder's loss is the lab's summed squared error plus (D/2) log(2 pi / 2)
    rng = Generator(5, np)
    x, eps = batch(np), rng.normal((N, J), F64)
    terms = {loss: VAE(D, hidden=(H,), latent_dim=J, loss=loss, rng=Generator(6, np), dtype=F64).forward(x, eps=eps)
             for loss in ("mse", "gaussian")}
    assert float(terms["gaussian"]["recon"] - terms["mse"]["recon"]) == pytest.approx(D / 2 * np.log(np.pi))
    assert float(terms["gaussian"]["kl"]) == float(terms["mse"]["kl"])


def test_free_bits_change_the_loss_not_the_reported_kl():
    rng = Generator(7, np)
    x, eps = batch(np), rng.normal((N, J), F64)
    plain, floored = (VAE(D, hidden=(H,), latent_dim=J, rng=Generator(8, np), dtype=F64, free_bits=floor).forward(
        x, eps=eps) for floor in (0.0, 50.0))
    assert float(floored["kl"]) == float(plain["kl"]) < 50.0
    assert float(floored["loss"]) == pytest.approx(float(plain["recon"]) + J * 50.0)


@pytest.mark.parametrize("kwargs", [{"loss": "mse"}, {"loss": "bce"}, {"linear": True},
                                    {"activation": "tanh", "hidden": (H, 3)}],
                         ids=["mse", "bce", "linear", "tanh-deep"])
def test_autoencoder_gradients(xp, kwargs):
    kwargs = {"hidden": (H,), **kwargs}
    ae = AutoEncoder(D, latent_dim=J, rng=Generator(2, xp), dtype=F64, **kwargs)
    errors = model_errors(ae, batch(xp))
    assert max(errors.values()) < TOL, errors


class LogStdVAE(VAE):
    """The classic bug: the sampler treats logvar as log std (z = mu + exp(logvar) eps)
    in its gradient, while the KL term treats it as log variance."""

    def backward(self):
        self.std = self.std * self.std  # exp(logvar) instead of exp(0.5 logvar)...
        self.eps = self.eps * 2.0  # ...and no 0.5: dz/dlogvar = eps * exp(logvar)
        super().backward()


def test_a_wrong_reparameterisation_gradient_fails_the_check():
    rng = Generator(3, np)
    vae = LogStdVAE(D, hidden=(H,), latent_dim=J, rng=rng, dtype=F64)
    errors = model_errors(vae, batch(np), eps=rng.normal((N, J), F64))
    assert errors["logvar.W"] > 1e-3 and errors["logvar.b"] > 1e-3, errors
    assert errors["mu.W"] < TOL  # the mu path is untouched


def test_vae_gradient_with_respect_to_the_noise_is_consistent():
    # z = mu + std * eps, so dL/deps = dz * std: check it against the loss, to confirm
    # that the model really uses the eps it was given.
    rng = Generator(4, np)
    vae = VAE(D, hidden=(H,), latent_dim=J, rng=rng, dtype=F64)
    x, eps = batch(np), rng.normal((N, J), F64)
    vae.forward(x, eps=eps)
    dz = vae.decoder.backward(vae.recon_loss.backward())
    numeric = numerical_grad(lambda: vae.forward(x, eps=eps)["loss"], eps)
    assert rel_error(dz * vae.std, numeric) < TOL


def test_kl_gradient_on_its_own_reaches_the_encoder():
    # With the reconstruction switched off (its dlogits zeroed), only the KL term drives the
    # gradients: through both heads, then through the trunk into the encoder's first layer.
    rng = Generator(5, np)
    vae = VAE(D, hidden=(H,), latent_dim=J, rng=rng, dtype=F64)
    x, eps = batch(np), rng.normal((N, J), F64)

    def kl():
        return vae.forward(x, eps=eps)["kl"]

    kl()
    vae.recon_loss.dlogits = vae.recon_loss.dlogits * 0.0
    vae.backward()
    encoder = {name: p for name, p in vae.params.items() if not name.startswith("decoder.")}
    assert {"encoder.0.W", "encoder.0.b", "mu.W", "logvar.b"} <= set(encoder)
    errors = check_gradients(kl, encoder, vae.grads)
    assert max(errors.values()) < TOL, errors
    assert np.abs(vae.grads["encoder.0.W"]).max() > 1e-3  # the KL term really moves the encoder
    assert all(not np.any(g) for name, g in vae.grads.items() if name.startswith("decoder."))  # and nothing else


def test_loss_terms_add_up(xp):
    rng = Generator(6, xp)
    vae = VAE(D, hidden=(H,), latent_dim=J, beta=2.0, rng=rng, dtype=F64)
    terms = vae.forward(batch(xp), eps=rng.normal((N, J), F64))
    assert float(terms["loss"]) == pytest.approx(float(terms["recon"]) + 2.0 * float(terms["kl"]), rel=1e-12)


def test_public_api_shapes(xp):
    rng = Generator(7, xp)
    vae = VAE(D, hidden=(H,), latent_dim=J, rng=rng)
    x = xp.astype(batch(xp), xp.float32)
    mu, logvar = vae.encode(x)
    assert tuple(mu.shape) == tuple(logvar.shape) == (N, J)
    assert np.array_equal(to_numpy(vae.code(x)), to_numpy(mu))  # the VAE's code is the mean of q(z|x)
    x_hat = to_numpy(vae.reconstruct(x))
    assert x_hat.shape == (N, D) and x_hat.dtype == np.float32 and 0 <= x_hat.min() and x_hat.max() <= 1
    assert tuple(vae.sample(3, rng).shape) == (3, D)
    ae = AutoEncoder(D, hidden=(H,), latent_dim=J, rng=rng)
    assert tuple(ae.code(x).shape) == (N, J) and tuple(ae.reconstruct(x).shape) == (N, D)


def test_a_model_is_not_a_layer_and_its_repr_shows_its_parts_and_settings():
    from nn.layers import Layer

    vae = VAE(D, hidden=(H,), latent_dim=J, beta=0.5)
    assert not isinstance(vae, Layer)  # backward() takes no dout: see models/base.py
    text = repr(vae)
    assert text.startswith("VAE(arch='mlp', loss='mse', beta=0.5,")
    for part in ("encoder=Sequential(", f"mu=Dense({H}, {J}", f"logvar=Dense({H}, {J}", "decoder=Sequential("):
        assert part in text, text
    assert repr(AutoEncoder(D, latent_dim=J, linear=True)).startswith("AutoEncoder(arch='mlp', loss='mse', linear=True,")


def test_models_load_their_own_state_and_refuse_another_shape():
    a, b = VAE(D, hidden=(H,), latent_dim=J, rng=Generator(1)), VAE(D, hidden=(H,), latent_dim=J, rng=Generator(2))
    W = b.params["mu.W"]
    b.load_state_dict(a.state_dict())
    assert all(np.array_equal(b.params[k], a.params[k]) for k in a.params) and b.params["mu.W"] is W
    with pytest.raises(ValueError, match=r"parameter 'mu.W' has shape \(5, 2\) here but \(5, 3\)"):
        b.load_state_dict(VAE(D, hidden=(H,), latent_dim=3).state_dict() | {"decoder.0.W": np.zeros((2, H))})


def test_invalid_model_settings_are_refused():
    with pytest.raises(ValueError, match="choose one of mse, bce, gaussian"):
        VAE(D, loss="l1")
    with pytest.raises(ValueError, match="beta must be >= 0"):
        VAE(D, beta=-1.0)
    with pytest.raises(ValueError, match="linear model uses loss 'mse'"):
        AutoEncoder(D, linear=True, loss="bce")
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        AutoEncoder(D, activation="gelu")
    with pytest.raises(ValueError, match="free_bits must be >= 0 nats, got -0.5"):
        VAE(D, free_bits=-0.5)
    with pytest.raises(ValueError, match="an autoencoder has none"):
        AutoEncoder(D, loss="gaussian")


def test_the_two_inits_draw_each_layer_as_documented():
    vae = VAE(784, hidden=(512,), latent_dim=2, rng=Generator(0))  # the default, he-xavier
    assert [x.init for x in vae.decoder.layers if isinstance(x, Dense)] == ["he", "xavier"]
    assert vae.encoder.layers[0].init == "he" and vae.mu_head.init == "xavier"
    assert not np.any(vae.encoder.layers[0].params["b"]) and not np.any(vae.mu_head.params["b"])
    # The decoder's first layer reads the code: its biases start uniform in +-CODE_BIAS, the prior's scale.
    b = vae.decoder.layers[0].params["b"]
    assert CODE_BIAS == 1.0 and 0.95 < np.abs(b).max() <= 1.0 and abs(b.var() - 1 / 3) < 0.05
    assert np.std(vae.decoder.layers[0].params["W"]) == pytest.approx(1.0, rel=0.05)  # He: 2 / fan_in, fan_in 2
    # The heads start at HEAD_SCALE times Xavier's scale, 2 / (512 + 2), so that q(z|x) starts near the prior.
    for head in (vae.mu_head, vae.logvar_head):
        assert np.var(head.params["W"]) == pytest.approx(HEAD_SCALE**2 * 2 / 514, rel=0.1)
    assert HEAD_SCALE == 0.1
    other = VAE(784, hidden=(512,), latent_dim=2, init="uniform", rng=Generator(0))
    assert {x.init for x in other.decoder.layers + other.encoder.layers if isinstance(x, Dense)} == {"uniform"}
    assert np.abs(other.encoder.layers[0].params["b"]).max() <= 784**-0.5 and np.any(other.encoder.layers[0].params["b"])
    assert np.abs(other.decoder.layers[0].params["b"]).max() > 2**-0.5  # CODE_BIAS here too
    assert np.abs(other.mu_head.params["W"]).max() <= HEAD_SCALE * 512**-0.5  # and HEAD_SCALE
    assert np.var(other.mu_head.params["W"]) == pytest.approx(HEAD_SCALE**2 / (3 * 512), rel=0.1)
    linear = AutoEncoder(784, latent_dim=2, linear=True, rng=Generator(0))
    assert not np.any(linear.decoder.layers[0].params["b"])  # no ReLU kinks to place
    with pytest.raises(ValueError, match="unknown init 'glorot': choose one of he-xavier, uniform"):
        VAE(D, init="glorot")


@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_start_at_sets_the_output_bias_to_the_logit_of_the_mean_image(loss):
    x_mean = np.array([0.0, 0.2, 0.5, 0.9, 1.0, 0.0005])
    vae = VAE(6, hidden=(5,), latent_dim=2, loss=loss, x_mean=x_mean, rng=Generator(0), dtype=F64)
    clipped = np.clip(x_mean, 1e-3, 1 - 1e-3)
    np.testing.assert_allclose(vae.decoder.layers[-1].params["b"], np.log(clipped / (1 - clipped)), rtol=1e-12)
    linear = AutoEncoder(6, latent_dim=2, linear=True, x_mean=x_mean, rng=Generator(0), dtype=F64)
    np.testing.assert_array_equal(linear.decoder.layers[-1].params["b"], x_mean)  # PCA's centring
    # With the decoder's weights zeroed, every code decodes to the (clipped) mean image.
    vae.decoder.layers[-1].params["W"][...] = 0.0
    np.testing.assert_allclose(vae.decode(np.zeros((3, 2))), np.broadcast_to(clipped, (3, 6)), rtol=1e-12)
