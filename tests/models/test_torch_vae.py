"""Our hand-written gradients against an independent autograd's: the conv layers and the whole
convolutional VAE (models/torch_vae.py's twin, with our weights copied in), in float64.
PyTorch is optional: without it these tests are skipped."""

import numpy as np
import pytest

from models import VAE
from nn import Conv2d, ConvTranspose2d, Generator
from nn.gradcheck import rel_error

torch = pytest.importorskip("torch", reason="PyTorch is an optional, independent reference")
F64 = "float64"
AUTOGRAD = 1e-8  # the same sums in another order: the two agree to rounding, far inside gradcheck's TOLERANCE


def as_torch(array):
    return torch.tensor(np.asarray(array), dtype=torch.float64, requires_grad=True)


@pytest.mark.parametrize("layer_class, function", [(Conv2d, torch.nn.functional.conv2d),
                                                   (ConvTranspose2d, torch.nn.functional.conv_transpose2d)],
                         ids=["Conv2d", "ConvTranspose2d"])
@pytest.mark.parametrize("kernel, stride, padding", [(3, 1, 0), (3, 2, 1), (4, 2, 1), (4, 1, 1)])
def test_layer_gradients_equal_autograd(layer_class, function, kernel, stride, padding):
    rng = Generator(0)
    layer = layer_class(2, 3, kernel, rng, stride=stride, padding=padding, dtype=F64)
    layer.params["b"] += rng.normal((3,), F64)
    x = rng.normal((2, 2, 7, 5), F64)
    y = layer.forward(x)
    dout = rng.normal(tuple(y.shape), F64)
    dx = layer.backward(dout)
    x_t, W_t, b_t = as_torch(x), as_torch(layer.params["W"]), as_torch(layer.params["b"])
    y_t = function(x_t, W_t, b_t, stride=stride, padding=padding)
    (y_t * torch.from_numpy(dout)).sum().backward()
    assert rel_error(y, y_t.detach().numpy()) < AUTOGRAD
    for ours, theirs in ((dx, x_t), (layer.grads["W"], W_t), (layer.grads["b"], b_t)):
        assert rel_error(ours, theirs.grad.numpy()) < AUTOGRAD


def test_conv_vae_gradients_equal_autograd():
    from models.torch_vae import TorchConvVAE

    rng = Generator(1)
    vae = VAE(64, latent_dim=3, head_scale=1.0, rng=rng, arch="conv", channels=(4, 6), image_shape=(8, 8), dtype=F64)
    twin = TorchConvVAE((8, 8), (4, 6), 3).double()
    theirs = dict(twin.named_parameters())
    for name, value in vae.params.items():  # "decoder.0.W" -> "decoder.0.weight"; a Dense's W is weight.T
        target = theirs[name.replace(".W", ".weight").replace(".b", ".bias")]
        is_dense = value.ndim == 2
        with torch.no_grad():
            target.copy_(torch.from_numpy(np.asarray(value.T if is_dense else value)))
    x, eps = rng.uniform((5, 64), 0.0, 1.0, F64), rng.normal((5, 3), F64)
    ours = vae.forward(x, eps=eps)
    vae.backward()
    terms = twin(torch.from_numpy(x), eps=torch.from_numpy(eps))
    terms["loss"].backward()
    assert abs(float(ours["loss"]) - terms["loss"].item()) < AUTOGRAD * abs(terms["loss"].item())
    for name, grad in vae.grads.items():
        target = theirs[name.replace(".W", ".weight").replace(".b", ".bias")].grad.numpy()
        assert rel_error(grad.T if grad.ndim == 2 else grad, target) < AUTOGRAD, name
