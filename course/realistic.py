"""Each backward exercise at a realistic size: what makes a backward that is not one score nothing.

A check (course/exercises.py) runs its function on a few numbers, where centred differences
are cheap: a "backward" that calls numerical_grad, or loops over its inputs calling the forward
pass twice for each, gives the right values there. REALISTIC runs the same function at the size
of a training step (a Dense layer of 784 x 512 on a batch of 64, a VAE of 784-512-16, ...),
where such a backward needs hundreds of thousands of forward passes: minutes to hours, against
a time limit of seconds. An elementwise difference of two forward calls (for an activation or a
loss) finishes, and is off by ~1e-9 where a derived backward is off by rounding alone (~1e-15):
REALISTIC_TOLERANCE tells them apart. The parent computes the expected values by running the
same case with the course's reference functions; the child runs it with the student's.
"""

import numpy as np

from models import VAE, AutoEncoder
from nn import Conv2d, ConvTranspose2d, Dense, Generator, ReLU, Sigmoid, Tanh, losses
from nn.backend import CHECK_DTYPE, to_backend

F64 = CHECK_DTYPE
REALISTIC_TOLERANCE = 1e-10  # a derived backward's rounding is ~1e-15; a difference quotient's error ~1e-9 at best
CONV = dict(kernel_size=3, stride=2, padding=1, dtype=F64)


def layer_case(make_layer, x_shape):
    """{"dx", "dW", ...}: the layer's backward of a random dout, named as its check names them."""

    def case(xp):
        rng = Generator(7, xp)
        layer = make_layer(rng)
        x = rng.normal(x_shape, F64)
        dout = rng.normal(tuple(layer.forward(x).shape), F64)
        return {"dx": layer.backward(dout), **{f"d{name}": g for name, g in layer.grads.items()}}

    return case


def images(xp, n=64):
    return to_backend(np.random.default_rng(8).uniform(0, 1, (n, 784)), xp)


def mse_case(xp):
    loss, dx_hat = losses.mse(Generator(9, xp).uniform((512, 784), 0.0, 1.0, F64), images(xp, 512))
    return {"L": loss, "dx_hat": dx_hat}


def bce_case(xp):
    loss, dlogits = losses.bce(Generator(10, xp).normal((512, 784), F64), images(xp, 512))
    return {"L": loss, "dlogits": dlogits}


def gaussian_kl_case(xp):
    rng = Generator(11, xp)
    kl, dmu, dlogvar = losses.gaussian_kl(rng.normal((4096, 64), F64), rng.normal((4096, 64), F64))
    return {"KL": kl, "dmu": dmu, "dlogvar": dlogvar}


def gaussian_nll_case(xp):
    x_logvar = xp.asarray([-1.7], dtype=xp.float64)  # a learned variance, not the lab's 1/2
    loss, dx_hat, dx_logvar = losses.gaussian_nll(Generator(14, xp).uniform((512, 784), 0.0, 1.0, F64),
                                                  images(xp, 512), x_logvar)
    return {"L": loss, "dx_hat": dx_hat, "dx_logvar": dx_logvar}


def autoencoder_case(xp):
    model = AutoEncoder(784, (512,), 16, rng=Generator(12, xp), dtype=F64)
    model.forward(images(xp))
    model.backward()
    return dict(model.grads)


def vae_case(xp):
    rng = Generator(13, xp)
    vae = VAE(784, (512,), 16, beta=0.5, head_scale=1.0, rng=rng, dtype=F64)
    vae.forward(images(xp), eps=rng.normal((64, 16), F64))
    vae.backward()
    kept = {name: getattr(vae, name) for name in ("dmu", "dlogvar") if hasattr(vae, name)}
    return {**kept, **vae.grads}


# {qualname: case(xp) -> {name: array}}; numerical_grad is a difference by definition, Adam no gradient.
REALISTIC = {
    "Dense.backward": layer_case(lambda rng: Dense(784, 512, rng, dtype=F64), (64, 784)),
    "ReLU.backward": layer_case(lambda rng: ReLU(), (128, 2048)),
    "Sigmoid.backward": layer_case(lambda rng: Sigmoid(), (128, 2048)),
    "Tanh.backward": layer_case(lambda rng: Tanh(), (128, 2048)),
    "mse": mse_case,
    "bce": bce_case,
    "gaussian_kl": gaussian_kl_case,
    "AutoEncoder.backward": autoencoder_case,
    "VAE.backward": vae_case,
    "Conv2d.backward": layer_case(lambda rng: Conv2d(8, 16, rng=rng, **CONV), (64, 8, 28, 28)),
    "ConvTranspose2d.backward": layer_case(lambda rng: ConvTranspose2d(16, 8, rng=rng, **CONV), (64, 16, 14, 14)),
    "gaussian_nll": gaussian_nll_case,
}
