"""The convolutional architecture of the VAE, the autoencoder and the conditional VAE (`arch="conv"`).

For images x: (N, D) as rows, D = H W, with channels (c1, c2) and latent size J:

    encoder   x -> (N, 1, H, W) -> Conv2d(1, c1) -> ReLU -> Conv2d(c1, c2) -> ReLU -> (N, c2 H/4 W/4)
    heads     Dense(c2 H/4 W/4, J), as the MLP's (mu and logvar; the autoencoder's code)
    decoder   z -> Dense(J, c2 H/4 W/4) -> ReLU -> (N, c2, H/4, W/4)
                -> ConvTranspose2d(c2, c1) -> ReLU -> ConvTranspose2d(c1, 1) -> (N, D) logits

Every convolution has kernel 4, stride 2 and padding 1 (KERNEL, STRIDE, PADDING): each
Conv2d halves the image's sides, each ConvTranspose2d doubles them, and the decoder mirrors
the encoder layer for layer, the architecture of PyTorch's and Keras' convolutional VAE
examples. Images stay rows outside the networks, so the losses, the training loop, the
figures and the data are the MLP's, unchanged; `AsImages` and `Reshape` turn rows into
images and back.

The conditional VAE reads its one-hot class y: (N, C) beside x, as in models/cvae.py. The
MLP concatenates it to the row; here AsImages makes it C constant planes beside the image,
(N, 1 + C, H, W), so that every filter of the first layer sees the class everywhere.
The decoder reads [z, y] through its first Dense, as the MLP's does.
"""

import dataclasses
import math
from collections.abc import Callable

from nn import Conv2d, ConvTranspose2d, Dense, Reshape, Sequential
from nn.backend import namespace
from nn.layers import Layer

from .base import ACTIVATIONS, layer_init, mlp_decoder, mlp_encoder, named

CHANNELS = (32, 64)  # the two convolutions' output channels: PyTorch's and Keras' VAE examples
KERNEL, STRIDE, PADDING = 4, 2, 1  # each Conv2d halves the sides, each ConvTranspose2d doubles them


class AsImages(Layer):
    """Rows to images, with a condition as constant planes: x: (N, H W + C) -> (N, 1 + C, H, W).

    The first H W numbers of a row are the image, row-major; each of the last C (a one-hot
    class, or none when C = 0) fills one plane of H x W. backward(dout: (N, 1 + C, H, W))
    returns dx: (N, H W + C): the image plane reshaped back, and for each condition entry the
    sum of its plane (it was copied to every pixel, so every copy's gradient adds).
    """

    def __init__(self, image_shape, condition_dim=0):
        super().__init__()
        self.image_shape, self.condition_dim = tuple(image_shape), condition_dim

    def forward(self, x):
        xp = namespace(x)
        H, W = self.image_shape
        N, C = x.shape[0], self.condition_dim
        if x.shape[1] != H * W + C:
            raise ValueError(f"{self!r} expects rows of {H * W + C} numbers ({H}x{W} pixels and {C} condition "
                             f"entries), got input of shape {tuple(x.shape)}")
        image = xp.reshape(x[:, :H * W], (N, 1, H, W))
        if C == 0:
            return image
        planes = xp.reshape(x[:, H * W:], (N, C, 1, 1)) * xp.ones((1, 1, H, W), dtype=x.dtype)
        return xp.concat([image, planes], axis=1)

    def backward(self, dout):
        xp = namespace(dout)
        N, H, W = dout.shape[0], *self.image_shape
        image = xp.reshape(dout[:, :1, ...], (N, H * W))
        return xp.concat([image, xp.sum(dout[:, 1:, ...], axis=(2, 3))], axis=1)

    def __repr__(self):
        return f"AsImages({self.image_shape}, condition_dim={self.condition_dim})"


def check_image_shape(image_shape, input_dim, channels):
    """(H, W), checked: the conv architecture needs images, whose sides the decoder can rebuild.
    Each of its len(channels) transposed convolutions doubles the sides of the grid it starts
    from, so it rebuilds exactly the sides that are multiples of 2**len(channels)."""
    if image_shape is None or math.prod(image_shape) != input_dim:
        raise ValueError(f"arch 'conv' needs images, and this data has rows of {input_dim} numbers with no image "
                         "shape: use arch 'mlp'")
    factor = 2 ** len(channels)
    if not channels or any(side % factor or side < factor for side in image_shape):
        sides = ", ".join(str(factor * m) for m in range(1, 9))
        raise ValueError(f"arch 'conv' with {len(channels)} convolutions halves the sides {len(channels)} times and "
                         f"its decoder doubles them back, so it rebuilds images whose sides are multiples of {factor} "
                         f"({sides}, ...), not {image_shape[0]}x{image_shape[1]}: pad or crop the images, or use "
                         "arch 'mlp'")
    return tuple(image_shape)


def conv_encoder(*, input_dim, image_shape, channels, activation, init, rng, dtype, condition_dim=0, **_):
    """(trunk, width): rows (N, input_dim + condition_dim) -> AsImages -> [Conv2d -> ReLU] per
    channel count -> rows (N, width), width = channels[-1] H W / 4**len(channels), for the heads."""
    H, W = check_image_shape(image_shape, input_dim, channels)
    layers, c_in = [AsImages(image_shape, condition_dim)], 1 + condition_dim
    for c_out in channels:
        layers += [Conv2d(c_in, c_out, KERNEL, rng, stride=STRIDE, padding=PADDING, init=layer_init(init, True, activation),
                          dtype=dtype), ACTIVATIONS[activation]()]
        c_in = c_out
    layers[1].input_grad = False  # the first convolution reads the data: nothing upstream needs a gradient
    grid = (H // 2 ** len(channels), W // 2 ** len(channels))
    width = channels[-1] * grid[0] * grid[1]
    return Sequential(*layers, Reshape((width,))), width


def conv_decoder(*, code_dim, input_dim, image_shape, channels, activation, init, rng, dtype, first_bias, **_):
    """rows (N, code_dim) -> Dense -> ReLU -> (N, channels[-1], H / 2**n, W / 2**n) -> [ConvTranspose2d
    -> ReLU] back through the channels -> ConvTranspose2d(channels[0], 1) -> logits (N, input_dim).
    first_bias: the first Dense's biases drawn uniform in +-first_bias (CODE_BIAS, models/base.py)."""
    H, W = check_image_shape(image_shape, input_dim, channels)
    grid = (channels[-1], H // 2 ** len(channels), W // 2 ** len(channels))
    first = Dense(code_dim, math.prod(grid), rng, init=layer_init(init, True, activation), dtype=dtype)
    first.params["b"][...] = rng.uniform(tuple(first.params["b"].shape), -first_bias, first_bias, dtype)
    layers = [first, ACTIVATIONS[activation](), Reshape(grid)]
    widths = (*reversed(channels), 1)
    for i, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:])):
        activated = i < len(channels) - 1
        layers.append(ConvTranspose2d(c_in, c_out, KERNEL, rng, stride=STRIDE, padding=PADDING,
                                      init=layer_init(init, activated, activation), dtype=dtype))
        if activated:
            layers.append(ACTIVATIONS[activation]())
    return Sequential(*layers, Reshape((input_dim,)))


@dataclasses.dataclass(frozen=True)
class Architecture:
    """How a model's encoder trunk and decoder are built: "mlp" (the lab's) or "conv".

    encoder(*, input_dim, hidden, channels, image_shape, activation, init, rng, dtype,
    condition_dim) -> (trunk, width): rows in, rows of `width` out, for the heads;
    decoder(*, code_dim, ..., first_bias) -> rows of logits (N, input_dim). Each reads the
    settings it needs (hidden widths, or channels and image_shape) and ignores the others.
    decode_rows: how many codes to decode at once where many are (models/likelihood.py): the
    conv decoder's largest array is its first transposed convolution's patches, 32 k k = 512
    numbers for each of the 7 x 7 pixels it reads, 25,088 a code on FashionMNIST (the MLP's
    largest is its 784 pixels), so it takes a sixteenth of the rows.
    """

    key: str
    encoder: Callable
    decoder: Callable
    decode_rows: int


ARCHITECTURES = (Architecture("mlp", mlp_encoder, mlp_decoder, decode_rows=8192),
                 Architecture("conv", conv_encoder, conv_decoder, decode_rows=512))
ARCHS = tuple(a.key for a in ARCHITECTURES)


def architecture(key):
    """The Architecture called `key`."""
    return named(ARCHITECTURES, key, "arch")
