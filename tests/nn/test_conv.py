"""Conv2d, ConvTranspose2d and Reshape: gradient checks in float64 on every backend, the forward
against loops over output pixels, the adjoint identity, PyTorch's shapes, the errors, and five
classic mistakes, each planted and caught."""

import itertools
from dataclasses import dataclass

import numpy as np
import pytest

from nn import Conv2d, ConvTranspose2d, Generator, Reshape
from nn import conv
from nn.backend import CHECK_DTYPE, backend_name, to_numpy
from nn.conv import col2im, conv_output_size, conv_transpose_output_size, im2col
from nn.gradcheck import TOLERANCE, check_layer, rel_error

F64 = CHECK_DTYPE
WRONG = 1e-3  # a planted mistake is off by at least this much; a correct layer by under TOLERANCE
LAYERS = (Conv2d, ConvTranspose2d)
# (kernel, stride, padding): kernels 3 and 4, strides 1 and 2, paddings 0 and 1.
GEOMETRIES = [(k, s, p) for k in (3, 4) for s in (1, 2) for p in (0, 1)]
IMAGE = (2, 2, 5, 7)  # (N, C, H, W): odd sizes, two channels in and three out
# array-api-strict is there to prove the calls are the standard's, and they do not change with the
# geometry: two geometries (both branches of pad and crop, both kernels and strides) show them, at
# 0.6 to 1 s per check there, where NumPy takes 0.02 s.
STRICT_GEOMETRIES = [(3, 1, 0), (4, 2, 1)]


def conv2d_reference(x, W, b, stride, padding):
    """The definition, one output pixel at a time (NumPy, float64): PyTorch's cross-correlation,
    y[n, o, h, w] = sum_{c, i, j} W[o, c, i, j] x_padded[n, c, s h + i, s w + j] + b[o]."""
    k, s, p = W.shape[2], stride, padding
    x_padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    N, _, H, W_in = x.shape
    y = np.empty((N, W.shape[0], (H + 2 * p - k) // s + 1, (W_in + 2 * p - k) // s + 1))
    for n, o, h, w in np.ndindex(y.shape):
        y[n, o, h, w] = np.sum(W[o] * x_padded[n, :, s * h:s * h + k, s * w:s * w + k]) + b[o]
    return y


def conv_transpose2d_reference(x, W, b, stride, padding):
    """The definition, one output pixel at a time (NumPy, float64): output pixel (h, w) receives
    input pixel (r, q) through kernel tap (i, j) where s r + i - p = h and s q + j - p = w."""
    k, s, p = W.shape[2], stride, padding
    N, _, H, W_in = x.shape
    y = np.empty((N, W.shape[1], (H - 1) * s - 2 * p + k, (W_in - 1) * s - 2 * p + k))
    for n, o, h, w in np.ndindex(y.shape):
        total = b[o]
        for i, j in np.ndindex(k, k):
            r, q = h + p - i, w + p - j  # s times the input pixel's row and column
            if r % s == 0 and q % s == 0 and 0 <= r // s < H and 0 <= q // s < W_in:
                total += x[n, :, r // s, q // s] @ W[:, o, i, j]
        y[n, o, h, w] = total
    return y


REFERENCE = {Conv2d: conv2d_reference, ConvTranspose2d: conv_transpose2d_reference}


def make(layer_class, xp, kernel, stride, padding, channels=(2, 3), seed=0):
    """(layer, x, rng) in float64 on `xp`, with a nonzero bias so that the checks see b too."""
    rng = Generator(seed, xp)
    layer = layer_class(*channels, kernel, rng, stride=stride, padding=padding, dtype=F64)
    layer.params["b"] += rng.normal(tuple(layer.params["b"].shape), F64)
    x = rng.normal((IMAGE[0], channels[0], *IMAGE[2:]), F64)
    return layer, x, rng


def gradient_errors(layer, x, rng):
    return check_layer(layer, x, rng.normal(tuple(layer.forward(x).shape), F64)).errors


def reference_error(layer, x):
    """rel_error of the layer's forward against the loop over output pixels."""
    reference = next(REFERENCE[c] for c in LAYERS if isinstance(layer, c))
    W, b = (to_numpy(layer.params[name]) for name in ("W", "b"))
    expected = reference(to_numpy(x), W, b, layer.stride, layer.padding)
    y = layer.forward(x)
    assert tuple(y.shape) == expected.shape
    return rel_error(to_numpy(y), expected)


@pytest.mark.parametrize("layer_class", LAYERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("kernel, stride, padding", GEOMETRIES)
def test_gradients_of_x_W_and_b(xp, layer_class, kernel, stride, padding):
    if backend_name(xp) == "array_api_strict" and (kernel, stride, padding) not in STRICT_GEOMETRIES:
        pytest.skip(f"array-api-strict: the calls are those of {STRICT_GEOMETRIES}, checked there")
    layer, x, rng = make(layer_class, xp, kernel, stride, padding)
    errors = gradient_errors(layer, x, rng)
    assert set(errors) == {"x", "W", "b"} and max(errors.values()) < TOLERANCE, errors


@pytest.mark.parametrize("layer_class", LAYERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("kernel, stride, padding", GEOMETRIES)
def test_forward_equals_the_loop_over_output_pixels(xp, layer_class, kernel, stride, padding):
    layer, x, _ = make(layer_class, xp, kernel, stride, padding)
    assert reference_error(layer, x) < 1e-12


# (kernel, stride, padding, H, W) for which the transposed convolution gives back x's size exactly
@pytest.mark.parametrize("kernel, stride, padding, H, W", [(3, 1, 0, 5, 7), (3, 2, 1, 5, 7), (4, 2, 1, 6, 8),
                                                           (4, 2, 0, 6, 8), (3, 2, 0, 5, 7)])
def test_transposed_convolution_is_the_adjoint(xp, kernel, stride, padding, H, W):
    """<C x, y> = <x, C^T y>, C = Conv2d(2, 3) and C^T = ConvTranspose2d(3, 2) with the same W, bias 0."""
    rng = Generator(1, xp)
    C = Conv2d(2, 3, kernel, rng, stride=stride, padding=padding, dtype=F64)
    C_T = ConvTranspose2d(3, 2, kernel, rng, stride=stride, padding=padding, dtype=F64)
    C_T.params["W"] = C.params["W"]  # (3, 2, k, k): Conv2d's (out, in) is ConvTranspose2d's (in, out)
    x = rng.normal((2, 2, H, W), F64)
    Cx = C.forward(x)
    y = rng.normal(tuple(Cx.shape), F64)
    C_Ty = C_T.forward(y)
    assert C_Ty.shape == x.shape
    left, right = float(xp.sum(Cx * y)), float(xp.sum(x * C_Ty))
    assert abs(left - right) <= 1e-10 * abs(left), (left, right)


def test_col2im_is_the_adjoint_of_im2col(xp):
    """<im2col(x), P> = <x, col2im(P)>: the pair both layers share, at stride 2 and padding 1."""
    rng = Generator(2, xp)
    x = rng.normal((2, 3, 5, 7), F64)
    patches = im2col(x, 3, 2, 1)
    P = rng.normal(tuple(patches.shape), F64)
    left, right = float(xp.sum(patches * P)), float(xp.sum(x * col2im(P, x.shape, 3, 2, 1)))
    assert abs(left - right) <= 1e-10 * abs(left), (left, right)


@pytest.mark.parametrize("layer, x_shape, y_shape", [
    (lambda rng: Conv2d(1, 16, 3, rng, stride=2, padding=1), (4, 1, 28, 28), (4, 16, 14, 14)),
    (lambda rng: Conv2d(16, 32, 3, rng, stride=2, padding=1), (4, 16, 14, 14), (4, 32, 7, 7)),
    (lambda rng: Conv2d(2, 3, 3, rng), (1, 2, 5, 7), (1, 3, 3, 5)),
    (lambda rng: Conv2d(2, 3, 4, rng, stride=2, padding=1), (1, 2, 5, 7), (1, 3, 2, 3)),
    (lambda rng: ConvTranspose2d(32, 16, 4, rng, stride=2, padding=1), (4, 32, 7, 7), (4, 16, 14, 14)),
    (lambda rng: ConvTranspose2d(16, 1, 4, rng, stride=2, padding=1), (4, 16, 14, 14), (4, 1, 28, 28)),
    (lambda rng: ConvTranspose2d(2, 3, 3, rng, stride=2), (1, 2, 5, 7), (1, 3, 11, 15)),
    (lambda rng: ConvTranspose2d(3, 2, 3, rng, stride=2, padding=1), (1, 3, 4, 4), (1, 2, 7, 7)),
], ids=lambda v: "x".join(map(str, v)) if isinstance(v, tuple) else None)
def test_output_shapes_are_pytorch_s(layer, x_shape, y_shape):
    """Shapes PyTorch gives for the same layers (its documentation's formulas, dilation 1, output_padding 0)."""
    layer = layer(Generator(0, np))
    assert layer.forward(np.zeros(x_shape, np.float32)).shape == y_shape


def test_output_size_arithmetic():
    assert conv_output_size(28, 3, 2, 1) == 14 and conv_output_size(7, 4, 2, 1) == 3
    assert conv_transpose_output_size(7, 4, 2, 1) == 14 and conv_transpose_output_size(5, 3, 2, 0) == 11
    for size, k, s, p in itertools.product(range(1, 9), range(1, 5), range(1, 3), range(2)):
        if conv_transpose_output_size(size, k, s, p) >= 1:  # the transposed size maps back to `size`
            assert conv_output_size(conv_transpose_output_size(size, k, s, p), k, s, p) == size


def test_weight_layouts_are_pytorch_s():
    rng = Generator(0, np)
    conv2d, conv_t = Conv2d(2, 3, 4, rng), ConvTranspose2d(2, 3, 4, rng)
    assert conv2d.params["W"].shape == (3, 2, 4, 4) and conv2d.params["b"].shape == (3,)  # (out, in, k, k)
    assert conv_t.params["W"].shape == (2, 3, 4, 4) and conv_t.params["b"].shape == (3,)  # (in, out, k, k)


def test_reshape_gradients(xp):
    rng = Generator(3, xp)
    for layer, x in ((Reshape((3, 2, 2)), rng.normal((4, 12), F64)),
                     (Reshape((12,)), rng.normal((4, 3, 2, 2), F64))):
        y = layer.forward(x)
        assert y.shape == (4, *layer.shape)
        assert max(gradient_errors(layer, x, rng).values()) < TOLERANCE
        assert layer.backward(y).shape == x.shape


def test_float32_stays_float32(xp):
    rng = Generator(4, xp)
    for layer in (Conv2d(2, 3, 3, rng, stride=2, padding=1), ConvTranspose2d(2, 3, 4, rng, stride=2, padding=1)):
        y = layer.forward(rng.normal((2, 2, 5, 7)))
        dx = layer.backward(y)
        assert y.dtype == dx.dtype == xp.float32 and all(g.dtype == xp.float32 for g in layer.grads.values())


@pytest.mark.parametrize("layer_class", LAYERS, ids=lambda c: c.__name__)
def test_first_layer_can_skip_its_input_gradient(layer_class):
    layer, x, rng = make(layer_class, np, 3, 2, 1)
    layer.input_grad = False
    y = layer.forward(x)
    assert layer.backward(y) is None and layer.grads["W"].shape == layer.params["W"].shape


def test_conv_init_variance():
    W = Conv2d(32, 16, 3, Generator(0, np)).params["W"]
    assert abs(W.var() / (2 / (32 * 9)) - 1) < 0.05  # He: 2 / fan_in, fan_in = in k k
    W = ConvTranspose2d(64, 8, 4, Generator(0, np), stride=2).params["W"]
    assert abs(W.var() / (2 / (64 * 16 / 4)) - 1) < 0.05  # fan_in = in k k / stride**2 (PyTorch's: out k k)


def test_conv_transpose_he_init_doubles_the_variance_of_unit_noise():
    """He's promise, var(y) = 2 var(x) before a ReLU, holds away from the border with fan_in = in k k / s**2."""
    rng = Generator(5, np)
    layer = ConvTranspose2d(64, 8, 4, rng, stride=2, padding=1)
    y = layer.forward(rng.normal((8, 64, 8, 8)))
    assert abs(y[:, :, 1:-1, 1:-1].var() / 2 - 1) < 0.1


@pytest.mark.parametrize("make_layer, x_shape, message", [
    (lambda rng: Conv2d(1, 1, 5, rng), (1, 1, 3, 4),
     r"Conv2d\(1, 1, kernel_size=5\): kernel_size 5 is larger than the padded image 3x4 \(input \(1, 1, 3, 4\)"),
    (lambda rng: Conv2d(1, 1, 5, rng, padding=1), (1, 1, 2, 9), r"larger than the padded image 4x11"),
    (lambda rng: Conv2d(2, 3, 3, rng), (1, 3, 5, 5), r"expects input of shape \(N, 2, H, W\), got \(1, 3, 5, 5\)"),
    (lambda rng: Conv2d(2, 3, 3, rng), (4, 50), r"expects input of shape \(N, 2, H, W\), got \(4, 50\)"),
    (lambda rng: ConvTranspose2d(3, 2, 3, rng), (1, 2, 5, 5), r"expects input of shape \(N, 3, H, W\), got"),
    (lambda rng: ConvTranspose2d(1, 1, 3, rng, padding=2), (1, 1, 1, 4),
     r"padding 2 crops the whole output of input \(1, 1, 1, 4\)"),
    (lambda rng: Reshape((16, 7, 7)), (4, 700), r"Reshape\(\(16, 7, 7\)\) needs 784 numbers per example, got input "
                                                r"of shape \(4, 700\)"),
])
def test_bad_input_is_one_line(make_layer, x_shape, message):
    layer = make_layer(Generator(0, np))
    with pytest.raises(ValueError, match=message) as error:
        layer.forward(np.zeros(x_shape, np.float32))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("what, value", [("kernel_size", 0), ("stride", 0), ("padding", -1), ("stride", 1.5)])
def test_bad_geometry_is_one_line(what, value):
    geometry = {"kernel_size": 3, "stride": 1, "padding": 0, what: value}
    kernel = geometry.pop("kernel_size")
    with pytest.raises(ValueError, match=f"{what} must be an int >= ") as error:
        Conv2d(2, 3, kernel, Generator(0, np), **geometry)
    assert "\n" not in str(error.value)


# Five classic mistakes, each planted into the shared functions or a layer, and the check that catches it.

def col2im_assigning(patches, x_shape, kernel, stride, padding):
    """col2im with `=` for `+=`: where windows overlap, the last one wins."""
    C, H, W, N = x_shape
    H_out, W_out = conv_output_size(H, kernel, stride, padding), conv_output_size(W, kernel, stride, padding)
    patches = np.reshape(patches, (C, kernel, kernel, H_out, W_out, N))
    dx_padded = np.zeros((C, H + 2 * padding, W + 2 * padding, N))
    for i in range(kernel):
        for j in range(kernel):
            dx_padded[conv.window(i, j, stride, H_out, W_out)] = patches[:, i, j]
    return conv.crop(dx_padded, padding)


def window_without_stride(i, j, stride, H_out, W_out):
    """Every kernel offset's window as if stride were 1, in im2col and col2im alike."""
    return slice(None), slice(i, i + H_out), slice(j, j + W_out), slice(None)


def with_weight_as(transform):
    """A plant: the layer's forward uses transform(W) where it should use W; backward is left as it was."""
    def plant(monkeypatch, layer_class):
        class Planted(layer_class):
            def forward(self, x):
                W = self.params["W"]
                self.params["W"] = transform(W)
                try:
                    return super().forward(x)
                finally:
                    self.params["W"] = W
        return Planted
    return plant


def patching(name, replacement):
    """A plant: nn.conv's `name` replaced, for both layers, which share it."""
    def plant(monkeypatch, layer_class):
        monkeypatch.setattr(conv, name, replacement)
        return layer_class
    return plant


@dataclass(frozen=True)
class Mistake:
    """A mistake, how to plant it, and for each layer the checks that must catch it: "gradient"
    (check_layer), "reference" (the loop over output pixels) or "shape" (y's or dx's shape)."""

    name: str
    plant: object  # (monkeypatch, layer_class) -> the layer class to build
    caught_by: dict  # layer class -> tuple of checks


MISTAKES = [
    # Conv2d's dx adds up overlapping windows; ConvTranspose2d's forward stamps overlapping kernels.
    Mistake("col2im assigns instead of adding", patching("col2im", col2im_assigning),
            {Conv2d: ("gradient",), ConvTranspose2d: ("reference", "gradient")}),
    # True convolution instead of PyTorch's cross-correlation in forward, backward unchanged.
    Mistake("kernel flipped", with_weight_as(lambda W: np.flip(W, axis=(2, 3))),
            {Conv2d: ("reference", "gradient"), ConvTranspose2d: ("reference", "gradient")}),
    # Read W as (in, out) in Conv2d, (out, in) in ConvTranspose2d: runs only with as many channels in as
    # out (with unequal counts test_weight_layouts_are_pytorch_s catches it).
    Mistake("weight layout transposed", with_weight_as(lambda W: np.permute_dims(W, (1, 0, 2, 3))),
            {Conv2d: ("reference", "gradient"), ConvTranspose2d: ("reference", "gradient")}),
    Mistake("padding not cropped", patching("crop", lambda x_padded, padding: x_padded),
            {Conv2d: ("shape",), ConvTranspose2d: ("shape",)}),
    # The same shape, the wrong window: the top-left corner of the padded gradient.
    Mistake("padding cropped from one corner", patching("crop", lambda x_padded, padding: x_padded[
                :, :x_padded.shape[1] - 2 * padding, :x_padded.shape[2] - 2 * padding, :]),
            {Conv2d: ("gradient",), ConvTranspose2d: ("reference", "gradient")}),
    # In im2col and col2im alike, so that forward and backward agree: only the reference sees it.
    Mistake("stride ignored", patching("window", window_without_stride),
            {Conv2d: ("reference",), ConvTranspose2d: ("reference",)}),
]


@pytest.mark.parametrize("layer_class", LAYERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("mistake", MISTAKES, ids=lambda m: m.name.replace(" ", "-"))
def test_each_planted_mistake_is_caught(monkeypatch, mistake, layer_class):
    # Stride 2 under a kernel of 3 (windows overlap, stride matters), padding 1, three channels each way.
    planted = mistake.plant(monkeypatch, layer_class)
    layer, x, rng = make(planted, np, 3, 2, 1, channels=(3, 3))
    failed = set()
    y = layer.forward(x)
    expected = REFERENCE[layer_class](x, layer.params["W"], layer.params["b"], 2, 1)
    if y.shape != expected.shape or layer.backward(np.ones(y.shape)).shape != x.shape:
        failed.add("shape")
    else:
        if rel_error(y, expected) > WRONG:
            failed.add("reference")
        if max(gradient_errors(layer, x, rng).values()) > WRONG:
            failed.add("gradient")
    assert set(mistake.caught_by[layer_class]) <= failed, failed
    monkeypatch.undo()  # and the same checks pass on the layer as it is
    layer, x, rng = make(layer_class, np, 3, 2, 1, channels=(3, 3))
    assert reference_error(layer, x) < 1e-12 and max(gradient_errors(layer, x, rng).values()) < TOLERANCE
