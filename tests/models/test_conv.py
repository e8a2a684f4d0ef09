"""The convolutional VAE, autoencoder and conditional VAE (arch="conv"): whole-model gradient
checks in float64 with fixed noise, a planted mistake in each end, AsImages, the start at the mean
image, and the one-line errors of an architecture that cannot fit the data."""

import numpy as np
import pytest

from models import VAE, AutoEncoder, ConditionalVAE
from models.conv import AsImages, check_image_shape
from nn import Generator
from nn.backend import CHECK_DTYPE, backend_name, to_numpy
from nn.gradcheck import TOLERANCE, check_layer, numerical_grad

F64 = CHECK_DTYPE
IMAGE = (8, 8)  # the digits' size: two halvings give a 2 x 2 grid
N, D, J, C = 3, 64, 2, 3
CHANNELS = (2, 3)  # few, so that centred differences over every weight take well under a second
# tanh, not ReLU: a centred difference across a ReLU's kink is wrong by up to half the jump, and
# with a few hundred units one of them sits near its kink for some weight. The backward does not
# depend on which activation it runs through.
SMOOTH = dict(arch="conv", channels=CHANNELS, image_shape=IMAGE, activation="tanh", dtype=F64)


def batch(xp, seed=0):
    return xp.asarray(np.random.default_rng(seed).uniform(0, 1, (N, D))), xp.asarray([2, 0, 1])


def errors_of(model, f):
    """Each parameter's error against its gradient's scale: max |analytic - numerical| over
    max (|analytic| + |numerical|). Not elementwise, as the MLPs' checks are: weight sharing sums a
    kernel weight's gradient over every output pixel, some of those sums cancel to 1e-5 of the
    largest, and a centred difference of a loss of about 50 is good to about 1e-11 absolute, so
    such an entry's own relative error would measure rounding, not the backward."""
    f()
    model.backward()
    analytic = model.grads
    numerical = {name: numerical_grad(f, p) for name, p in model.params.items()}
    return {name: float(np.max(np.abs(to_numpy(analytic[name]) - to_numpy(numerical[name])))
                        / np.max(np.abs(to_numpy(analytic[name])) + np.abs(to_numpy(numerical[name]))))
            for name in numerical}


def one_strict_check(xp, loss="mse"):
    """array-api-strict proves the calls are the standard's, and the CuPy stand-in that nothing
    moves between host and device; the models share their calls, so each runs the VAE's check
    alone (7 s on array-api-strict, where NumPy takes 0.2 s). The conv layers have their own there."""
    if backend_name(xp) != "numpy" and loss != "mse":
        pytest.skip("a backend other than NumPy runs the conv VAE's mse check alone (the same calls)")


@pytest.mark.parametrize("loss", ["mse", "bce", "gaussian"])
def test_conv_vae_gradients(xp, loss):
    one_strict_check(xp, loss)
    rng = Generator(1, xp)
    vae = VAE(D, latent_dim=J, loss=loss, head_scale=1.0, rng=rng, **SMOOTH)
    x, eps = batch(xp)[0], rng.normal((N, J), F64)
    errors = errors_of(vae, lambda: vae.forward(x, eps=eps)["loss"])
    assert set(errors) == set(vae.params) and any(".W" in k and "encoder" in k for k in errors)
    assert max(errors.values()) < TOLERANCE, errors


def test_conv_autoencoder_gradients(xp):
    one_strict_check(xp, "ae")
    ae = AutoEncoder(D, latent_dim=J, rng=Generator(2, xp), **SMOOTH)
    x = batch(xp)[0]
    errors = errors_of(ae, lambda: ae.forward(x)["loss"])
    assert max(errors.values()) < TOLERANCE, errors


def test_conv_conditional_vae_gradients(xp):
    one_strict_check(xp, "cvae")
    rng = Generator(3, xp)
    cvae = ConditionalVAE(D, C, latent_dim=J, rng=rng, **SMOOTH)
    x, labels = batch(xp)
    eps = rng.normal((N, J), F64)
    errors = errors_of(cvae, lambda: cvae.forward(x, labels, eps=eps)["loss"])
    assert max(errors.values()) < TOLERANCE, errors


class SwappedConvVAE(VAE):
    """A mistake: the decoder's second transposed convolution given the first one's channel order,
    as if W were (out, in, k, k): with as many channels in as out the shapes agree."""

    def backward(self):
        layer = self.decoder.layers[3]
        W = layer.params["W"]
        super().backward()
        layer.grads["W"] = np.permute_dims(layer.grads["W"], (1, 0, 2, 3))
        assert layer.params["W"] is W


def test_a_planted_mistake_in_a_conv_vae_fails_the_check():
    rng = Generator(5)
    vae = SwappedConvVAE(D, latent_dim=J, head_scale=1.0, rng=rng, **{**SMOOTH, "channels": (4, 4)})
    x, eps = batch(np)[0], rng.normal((N, J), F64)
    errors = errors_of(vae, lambda: vae.forward(x, eps=eps)["loss"])
    assert errors["decoder.3.W"] > 1e-3 and errors["encoder.1.W"] < TOLERANCE, errors


def test_as_images_gradient_and_planes(xp):
    rng = Generator(6, xp)
    layer = AsImages((4, 6), condition_dim=2)
    x = rng.normal((3, 26), F64)
    y = layer.forward(x)
    assert tuple(y.shape) == (3, 3, 4, 6)
    y_np, x_np = to_numpy(y), to_numpy(x)
    assert np.array_equal(y_np[:, 0], x_np[:, :24].reshape(3, 4, 6))
    assert np.all(y_np[:, 1:] == x_np[:, 24:, None, None])  # each condition entry fills its plane
    errors = check_layer(layer, x, rng.normal((3, 3, 4, 6), F64)).errors
    assert max(errors.values()) < TOLERANCE, errors


def test_the_decoder_starts_at_the_mean_intensity():
    # One output bias per channel after a transposed convolution: it starts at the logit of the
    # mean pixel of the mean image, so that an untrained model's images have the data's brightness.
    x_mean = np.linspace(0.0, 0.6, D)
    vae = VAE(D, latent_dim=J, x_mean=x_mean, rng=Generator(7), arch="conv", channels=CHANNELS, image_shape=IMAGE)
    b = to_numpy(vae.decoder.layers[-2].params["b"])
    assert b.shape == (1,) and abs(1 / (1 + np.exp(-b[0])) - x_mean.mean()) < 1e-6


def test_conv_keeps_the_data_as_rows():
    rng = Generator(8)
    vae = VAE(D, latent_dim=J, rng=rng, arch="conv", channels=CHANNELS, image_shape=IMAGE)
    x = rng.uniform((5, D), 0.0, 1.0)
    assert vae.code(x).shape == (5, J) and vae.reconstruct(x).shape == (5, D) and vae.sample(4, rng).shape == (4, D)


@pytest.mark.parametrize("image_shape, input_dim, message", [
    ((7, 7), 49, r"multiples of 4 \(4, 8, 12,"),
    ((28, 30), 840, "not 28x30"),
    ((2, 2), 4, "multiples of 4"),
    (None, 64, "no image shape: use arch 'mlp'"),
    ((8, 8), 60, "rows of 60 numbers"),
])
def test_shapes_the_architecture_cannot_fit_are_one_line(image_shape, input_dim, message):
    with pytest.raises(ValueError, match=message) as error:
        VAE(input_dim, arch="conv", channels=(4, 4), image_shape=image_shape)
    assert "\n" not in str(error.value)


def test_other_bad_settings_are_one_line():
    with pytest.raises(ValueError, match="unknown arch 'cnn': choose one of mlp, conv"):
        VAE(D, arch="cnn", image_shape=IMAGE)
    with pytest.raises(ValueError, match="linear autoencoder .* use arch 'mlp'"):
        AutoEncoder(D, linear=True, arch="conv", image_shape=IMAGE)
    assert check_image_shape((28, 28), 784, (32, 64)) == (28, 28)
