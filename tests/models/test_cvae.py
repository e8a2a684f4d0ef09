"""The conditional VAE: whole-model gradient checks in float64 with fixed noise, a planted mistake
(a gradient pushed into the one-hot labels), and its public methods."""

import numpy as np
import pytest

from models import ConditionalVAE
from models.cvae import Condition
from nn import Generator
from nn.backend import CHECK_DTYPE, to_numpy
from nn.gradcheck import TOLERANCE, check_gradients

F64 = CHECK_DTYPE  # gradient checks run in float64
TOL = TOLERANCE
N, D, H, J, C = 4, 6, 5, 2, 3


def batch(xp, seed=0):
    """x: (N, D) in [0, 1] and labels: (N,) covering every class."""
    return xp.asarray(np.random.default_rng(seed).uniform(0, 1, (N, D))), xp.asarray([2, 0, 1, 2])


def model_errors(model, x, labels, eps):
    """Relative error of every parameter's gradient of the full loss, at fixed noise eps."""
    def f():
        return model.forward(x, labels, eps=eps)["loss"]

    f()
    model.backward()
    return check_gradients(f, model.params, model.grads)


@pytest.mark.parametrize("loss", ["mse", "bce"])
@pytest.mark.parametrize("beta", [1.0, 0.25, 4.0])
def test_cvae_gradients(xp, loss, beta):
    rng = Generator(1, xp)
    cvae = ConditionalVAE(D, C, hidden=(H,), latent_dim=J, loss=loss, beta=beta, rng=rng, dtype=F64)
    eps = rng.normal((N, J), F64)  # fixed noise: the loss is a function of the parameters alone
    errors = model_errors(cvae, *batch(xp), eps)
    assert set(errors) == set(cvae.params)
    assert max(errors.values()) < TOL, errors


class LabelsIntoCode(Condition):
    """The mistake: y's share of the decoder's input gradient, dout[:, J:], is added into dz, as if
    the one-hot labels were part of the code. With n_classes == latent_dim the shapes agree,
    so nothing fails but the gradient check."""

    def backward(self, dout):
        return dout[:, :self.width] + dout[:, self.width:]  # wrong: the right dz is dout[:, :J] alone


def test_a_gradient_pushed_into_the_labels_fails_the_check():
    rng = Generator(3, np)
    x, _ = batch(np)
    labels, eps = np.array([1, 0, 1, 1]), rng.normal((N, J), F64)
    cvae = ConditionalVAE(D, J, hidden=(H,), latent_dim=J, rng=Generator(3, np), dtype=F64)
    assert max(model_errors(cvae, x, labels, eps).values()) < TOL  # the same model, right backward: passes
    wrong = ConditionalVAE(D, J, hidden=(H,), latent_dim=J, rng=Generator(3, np), dtype=F64)
    wrong.decoder.layers[0] = LabelsIntoCode()  # the Condition before the decoder: no parameters to move
    errors = model_errors(wrong, x, labels, eps)
    upstream = {name: e for name, e in errors.items() if not name.startswith("decoder.")}
    assert set(upstream) == {"encoder.1.W", "encoder.1.b", "mu.W", "mu.b", "logvar.W", "logvar.b"}
    assert min(upstream.values()) > 1e-2, errors  # every parameter upstream of z is wrong...
    assert max(e for name, e in errors.items() if name.startswith("decoder.")) < TOL  # ...the decoder is not


def test_the_class_reaches_both_ends(xp):
    rng = Generator(4, xp)
    cvae = ConditionalVAE(D, C, hidden=(H,), latent_dim=J, rng=rng, dtype=F64)
    x, labels = batch(xp)
    others = (labels + 1) % C
    assert not np.allclose(to_numpy(cvae.code(x, labels)), to_numpy(cvae.code(x, others)))
    z = rng.normal((N, J), F64)
    assert not np.allclose(to_numpy(cvae.decode(z, labels)), to_numpy(cvae.decode(z, others)))
    assert cvae.encoder.layers[1].input_grad is False  # no gradient for [x, y] is computed at all


@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_forward_at_zero_noise_is_reconstruct_and_the_kl_of_encode(xp, loss):
    # forward writes its steps out; with eps = 0 they must be the public methods' (which
    # test_the_class_reaches_both_ends shows read the class): z = mu, x_hat = reconstruct(x, labels).
    cvae = ConditionalVAE(D, C, hidden=(H,), latent_dim=J, loss=loss, rng=Generator(8, xp), dtype=F64)
    x, labels = batch(xp)
    terms = cvae.forward(x, labels, eps=xp.zeros((N, J), dtype=xp.float64))
    x_hat = to_numpy(cvae.reconstruct(x, labels))
    mu, logvar = (to_numpy(a) for a in cvae.encode(x, labels))
    x = to_numpy(x)
    recon = (x_hat - x) ** 2 if loss == "mse" else -(x * np.log(x_hat) + (1 - x) * np.log(1 - x_hat))
    assert float(terms["recon"]) == pytest.approx(recon.sum() / N, rel=1e-10)
    assert float(terms["kl"]) == pytest.approx(-0.5 * np.sum(1 + logvar - mu**2 - np.exp(logvar)) / N, rel=1e-12)


def test_public_api_shapes(xp):
    rng = Generator(5, xp)
    cvae = ConditionalVAE(D, C, hidden=(H,), latent_dim=J, rng=rng)
    x, labels = batch(xp)
    x = xp.astype(x, xp.float32)
    mu, logvar = cvae.encode(x, labels)
    assert tuple(mu.shape) == tuple(logvar.shape) == (N, J)
    assert np.array_equal(to_numpy(cvae.code(x, labels)), to_numpy(mu))
    x_hat = to_numpy(cvae.reconstruct(x, labels))
    assert x_hat.shape == (N, D) and x_hat.dtype == np.float32
    images = to_numpy(cvae.sample(7, xp.asarray([0, 1, 2, 0, 1, 2, 2]), rng))
    assert images.shape == (7, D) and images.dtype == np.float32 and 0 <= images.min() and images.max() <= 1
    terms = cvae.forward(x, labels, rng=rng)
    assert set(terms) == {"loss", "recon", "kl"} and all(t.shape == () for t in terms.values())
    assert cvae.n_classes == C
    assert repr(cvae).startswith(f"ConditionalVAE(n_classes={C}, arch='mlp', loss='mse', beta=1.0, init='he-xavier',")


@pytest.mark.parametrize("call, message", [
    (lambda m, x: m.forward(x, np.array([0, 1, 3, 2])), r"labels must lie in \[0, 3\) .* got labels from 0 to 3"),
    (lambda m, x: m.sample(2, np.array([-1, 0]), Generator(0)), r"labels must lie in \[0, 3\) .* from -1 to 0"),
    (lambda m, x: m.code(x, np.array([0, 1])), r"labels must be integers of shape \(4,\) for inputs of shape \(4, 6\), "
                                               r"got labels of shape \(2,\)"),
    (lambda m, x: m.decode(np.zeros((4, J)), np.zeros(4)), r"got labels of shape \(4,\) and dtype float64"),
], ids=["too-large", "negative", "wrong-length", "not-integers"])
def test_bad_labels_are_refused_in_one_line(call, message):
    cvae = ConditionalVAE(D, C, hidden=(H,), latent_dim=J, rng=Generator(6), dtype=F64)
    with pytest.raises(ValueError, match=message) as error:
        call(cvae, batch(np)[0])
    assert "\n" not in str(error.value)


def test_start_at_and_invalid_settings():
    x_mean = np.linspace(0.1, 0.9, D)
    cvae = ConditionalVAE(D, C, hidden=(H,), latent_dim=J, x_mean=x_mean, rng=Generator(7), dtype=F64)
    np.testing.assert_allclose(cvae.decoder.layers[-1].params["b"], np.log(x_mean / (1 - x_mean)), rtol=1e-12)
    with pytest.raises(ValueError, match="beta must be >= 0"):
        ConditionalVAE(D, C, beta=-1.0)
    with pytest.raises(ValueError, match="choose one of mse, bce"):
        ConditionalVAE(D, C, loss="l1")


def test_the_backward_is_the_vaes_own():
    # One copy of the VAE's backward steps: the conditional VAE inherits it, and its one new step
    # is the Condition layer's backward at the front of the decoder.
    from models import VAE

    assert "backward" not in vars(ConditionalVAE) and ConditionalVAE.backward is VAE.backward
