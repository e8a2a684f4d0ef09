"""Convolutions with hand-written backward passes: Conv2d, ConvTranspose2d and Reshape.

Batches are (N, C, H, W), and the weights have PyTorch's layouts, so that a student can
hold them against PyTorch's documentation and weights move between the two unchanged:
Conv2d's W is (out, in, k, k), ConvTranspose2d's W is (in, out, k, k), b is (out,).

Inside the layers a batch is kept as (C, H, W, N), channels first and batch last (`inner`
turns the interface's (N, C, H, W) into it and `outer` back, both views). A convolution is
then one matrix product over image patches for the whole batch. `im2col` gathers, for every
output pixel of every image, the k x k window of the padded input it sees, as a column:
patches (C k k, L N), with L = H_out W_out output pixels per image, the columns in (h, w, n)
order. Then y = W_mat @ patches: (out, L N), already in the layers' layout. `col2im` is its
adjoint: it puts columns back where im2col took them, *adding* where windows overlap, and
crops the padding. Both walk the k x k kernel offsets and take, at each, one strided slice
of the padded image, the same slice (`window`); nothing here needs stride tricks.

ConvTranspose2d is the adjoint of Conv2d: its forward is a convolution's input gradient
(col2im), its input gradient a convolution (im2col). So the two layers share these two
functions, and no line of either is written twice.

Derived in docs/derivations.md, "Convolution", in the names used here.
"""

import math

from .backend import TRAIN_DTYPE, namespace
from .layers import Layer, initial_params


def conv_output_size(size, kernel, stride, padding):
    """H_out of a convolution: the number of k-wide windows, `stride` apart, in size + 2 padding."""
    return (size + 2 * padding - kernel) // stride + 1


def conv_transpose_output_size(size, kernel, stride, padding):
    """H_out of a transposed convolution: the smallest image that conv_output_size maps back to `size`
    (PyTorch's formula with output_padding = 0)."""
    return (size - 1) * stride - 2 * padding + kernel


def pad(x_i, padding):
    """x_i: (C, H, W, N) -> (C, H + 2p, W + 2p, N), zeros around every image. (xp.pad is not in the standard.)"""
    if padding == 0:
        return x_i
    xp = namespace(x_i)
    C, H, W, N = x_i.shape
    x_padded = xp.zeros((C, H + 2 * padding, W + 2 * padding, N), dtype=x_i.dtype)
    x_padded[:, padding:padding + H, padding:padding + W, :] = x_i
    return x_padded


def crop(x_padded, padding):
    """The inverse of pad's frame: (C, H + 2p, W + 2p, N) -> (C, H, W, N), the interior."""
    if padding == 0:
        return x_padded
    return x_padded[:, padding:-padding, padding:-padding, :]


def window(i, j, stride, H_out, W_out):
    """The index of kernel offset (i, j) in every window: rows i, i + s, ..., i + s (H_out - 1),
    columns likewise, of a padded (C, H, W, N) batch. (The stop is the last row + 1, not
    i + s H_out: the standard leaves a stop past the end of an axis unspecified.)"""
    return (slice(None), slice(i, i + stride * (H_out - 1) + 1, stride),
            slice(j, j + stride * (W_out - 1) + 1, stride), slice(None))


def inner(x):
    """(N, C, H, W) -> (C, H, W, N): a batch in the layers' own layout. A view: no number moves.

    Inside the layers a batch lives channels first and batch last. Channels first: one channel's
    pixels of the whole batch form a row of a matrix, so im2col's columns are all output pixels
    of all N images at once and a convolution is one matrix product for the batch, whose output
    comes out in the same layout, ready for the next layer. Batch last: each strided slice of
    im2col and col2im then moves runs of N contiguous numbers, not runs of W_out (measured: a
    quarter of the time im2col and col2im take with (C, N, H, W))."""
    return namespace(x).permute_dims(x, (1, 2, 3, 0))


def outer(x_i):
    """(C, H, W, N) -> (N, C, H, W): `inner`'s inverse, back to the interface's layout. A view."""
    return namespace(x_i).permute_dims(x_i, (3, 0, 1, 2))


def im2col(x_i, kernel, stride, padding):
    """x_i: (C, H, W, N), the layers' layout -> patches: (C k k, H_out W_out N), where

        patches[(c, i, j), (h, w, n)] = x_padded[c, s h + i, s w + j, n]

    the k x k window under output pixel (h, w) of image n, one column per output pixel."""
    xp = namespace(x_i)
    C, H, W, N = x_i.shape
    H_out, W_out = (conv_output_size(size, kernel, stride, padding) for size in (H, W))
    x_padded = pad(x_i, padding)
    patches = xp.empty((C, kernel, kernel, H_out, W_out, N), dtype=x_i.dtype)  # every entry is written below
    for i in range(kernel):
        for j in range(kernel):
            patches[:, i, j, ...] = x_padded[window(i, j, stride, H_out, W_out)]  # (C, H_out, W_out, N)
    return xp.reshape(patches, (C * kernel * kernel, H_out * W_out * N))


def col2im(patches, x_shape, kernel, stride, padding):
    """The adjoint of im2col: patches: (C k k, H_out W_out N) -> dx_i: x_shape = (C, H, W, N), where

        dx_padded[c, s h + i, s w + j, n] += patches[(c, i, j), (h, w, n)]   over all (i, j, h, w)

    then the padding cropped. It adds: a pixel under several overlapping windows gets a term from each."""
    xp = namespace(patches)
    C, H, W, N = x_shape
    H_out, W_out = (conv_output_size(size, kernel, stride, padding) for size in (H, W))
    patches = xp.reshape(patches, (C, kernel, kernel, H_out, W_out, N))
    dx_padded = xp.zeros((C, H + 2 * padding, W + 2 * padding, N), dtype=patches.dtype)
    for i in range(kernel):
        for j in range(kernel):
            dx_padded[window(i, j, stride, H_out, W_out)] += patches[:, i, j, ...]
    return crop(dx_padded, padding)


def _check_geometry(name, kernel_size, stride, padding):
    for what, value, least in (("kernel_size", kernel_size, 1), ("stride", stride, 1), ("padding", padding, 0)):
        if not isinstance(value, int) or value < least:
            raise ValueError(f"{name}: {what} must be an int >= {least} (square kernels, strides and paddings), "
                             f"got {value!r}")


class _Convolution(Layer):
    """What Conv2d and ConvTranspose2d share: their geometry, the input check and repr."""

    def _setup(self, in_channels, out_channels, kernel_size, stride, padding, init):
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding, self.init = kernel_size, stride, padding, init
        _check_geometry(repr(self), kernel_size, stride, padding)
        self.input_grad = True  # False skips dx (backward returns None): the first layer never needs it

    def _check_input(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{self!r} expects input of shape (N, {self.in_channels}, H, W), got {tuple(x.shape)}")

    def __repr__(self):
        extra = f", stride={self.stride}" if self.stride != 1 else ""
        extra += f", padding={self.padding}" if self.padding else ""
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}{extra})"


class Conv2d(_Convolution):
    """2-D convolution (PyTorch's cross-correlation, no kernel flip), as one matrix product over patches.

    x: (N, in, H, W), W: (out, in, k, k), b: (out,), y: (N, out, H_out, W_out), with
    H_out = conv_output_size(H, k, stride, padding) = (H + 2 padding - k) // stride + 1, and

        y[n, o, h, w] = sum_{c, i, j} W[o, c, i, j] x_padded[n, c, s h + i, s w + j] + b[o].

    forward computes y_mat = W_mat @ patches: (out, L N), with W_mat = W as (out, in k k), adds
    b[o] to row o and outer()s it into y. It keeps `self.patches` = im2col(inner(x)): (in k k, L N),
    L = H_out W_out, a column per output pixel of every image, in (h, w, n) order, and
    `self.x_shape`, x's shape in the layers' layout: (in, H, W, N).
    backward(dout: y's shape) fills grads "W" and "b", of W's and b's shapes, and returns dx:
    (N, in, H, W); if `input_grad` is False it returns None (it still fills both grads).

    Derived in docs/derivations.md, "Convolution": with dout_mat = inner(dout) as (out, L N),
    dW = dout_mat @ patches.T reshaped to W's shape, db = sum(dout_mat, axis=1) (every column of
    row o), dx = outer(col2im(W_mat.T @ dout_mat)).

    init: as Dense's (nn/layers.py), with fan_in = in k k and fan_out = out k k (PyTorch's fans).
    """

    def __init__(self, in_channels, out_channels, kernel_size, rng, stride=1, padding=0, init="he",
                 dtype=TRAIN_DTYPE):
        super().__init__()
        self._setup(in_channels, out_channels, kernel_size, stride, padding, init)
        k = kernel_size
        W, b = initial_params(init, rng, dtype, shape=(out_channels, in_channels, k, k), n_out=out_channels,
                              fan_in=in_channels * k * k, fan_out=out_channels * k * k)
        self.params = {"W": W, "b": b}

    def forward(self, x):
        W, b = self.params["W"], self.params["b"]
        xp = namespace(x, W)  # refuses an input from another backend
        self._check_input(x)
        N, _, H, W_in = x.shape
        k, s, p = self.kernel_size, self.stride, self.padding
        if k > H + 2 * p or k > W_in + 2 * p:
            raise ValueError(f"{self!r}: kernel_size {k} is larger than the padded image "
                             f"{H + 2 * p}x{W_in + 2 * p} (input {tuple(x.shape)} padded by {p})")
        H_out, W_out = conv_output_size(H, k, s, p), conv_output_size(W_in, k, s, p)
        x_i = inner(x)  # (in, H, W, N)
        self.x_shape = tuple(x_i.shape)
        self.patches = im2col(x_i, k, s, p)  # (in k k, L N)
        W_mat = xp.reshape(W, (self.out_channels, -1))  # (out, in k k)
        y = xp.reshape(W_mat @ self.patches, (self.out_channels, H_out, W_out, N))  # (out, H_out, W_out, N)
        y += xp.reshape(b, (self.out_channels, 1, 1, 1))
        return outer(y)

    def backward(self, dout):
        xp = namespace(dout)
        W = self.params["W"]
        dout_mat = xp.reshape(inner(dout), (self.out_channels, -1))  # (out, L N)
        self.grads["W"] = xp.reshape(dout_mat @ self.patches.T, W.shape)  # (out, in k k) -> (out, in, k, k)
        self.grads["b"] = xp.sum(dout_mat, axis=1)
        if not self.input_grad:
            return None
        dpatches = xp.reshape(W, (self.out_channels, -1)).T @ dout_mat  # (in k k, L N)
        return outer(col2im(dpatches, self.x_shape, self.kernel_size, self.stride, self.padding))


class ConvTranspose2d(_Convolution):
    """2-D transposed convolution: the adjoint of Conv2d(out, in, k, stride, padding) with the same W.

    x: (N, in, H, W), W: (in, out, k, k), b: (out,), y: (N, out, H_out, W_out), with
    H_out = conv_transpose_output_size(H, k, stride, padding) = (H - 1) stride - 2 padding + k, and

        y_padded[n, o, s h + i, s w + j] += sum_c W[c, o, i, j] x[n, c, h, w],   y = crop(y_padded) + b[o]:

    every input pixel stamps its k x k kernel onto the output, `stride` apart. With W_mat = W as
    (in, out k k) and x_mat = inner(x) as (in, H W N), forward is y = col2im(W_mat.T @ x_mat) + b:
    a convolution's input gradient. forward keeps `self.x_mat` and `self.x_shape`, x's shape in
    the interface's layout: (N, in, H, W). backward(dout: y's shape) fills grads "W" and "b", of
    W's and b's shapes, and returns dx: (N, in, H, W); if `input_grad` is False it returns None
    (it still fills both grads).

    Derived in docs/derivations.md, "Convolution": with dpatches = im2col(inner(dout)):
    (out k k, H W N), dW = x_mat @ dpatches.T reshaped to W's shape, db = sum of dout over
    (n, h, w), dx = W_mat @ dpatches: (in, H W N), reshaped to (in, H, W, N) and outer()'d:
    its input gradient is a convolution.

    init: as Dense's (nn/layers.py), with fan_in = in k k / stride**2, the number of products
    summed into one output pixel on average (each input pixel's stamp covers k k output pixels, and
    input pixels are `stride` apart), and fan_out = out k k. PyTorch takes fan_in = W.shape[1] k k
    = out k k, the fan of the convolution this is the adjoint of; with it a He-initialised layer's
    output variance is off by in / (out stride**2).
    """

    def __init__(self, in_channels, out_channels, kernel_size, rng, stride=1, padding=0, init="he",
                 dtype=TRAIN_DTYPE):
        super().__init__()
        self._setup(in_channels, out_channels, kernel_size, stride, padding, init)
        k = kernel_size
        W, b = initial_params(init, rng, dtype, shape=(in_channels, out_channels, k, k), n_out=out_channels,
                              fan_in=in_channels * k * k / stride**2, fan_out=out_channels * k * k)
        self.params = {"W": W, "b": b}

    def forward(self, x):
        W, b = self.params["W"], self.params["b"]
        xp = namespace(x, W)  # refuses an input from another backend
        self._check_input(x)
        N, _, H, W_in = x.shape
        k, s, p = self.kernel_size, self.stride, self.padding
        H_out, W_out = conv_transpose_output_size(H, k, s, p), conv_transpose_output_size(W_in, k, s, p)
        if H_out < 1 or W_out < 1:
            raise ValueError(f"{self!r}: padding {p} crops the whole output of input {tuple(x.shape)} "
                             f"((H - 1) stride - 2 padding + k = {H_out}x{W_out})")
        self.x_shape = tuple(x.shape)
        self.x_mat = xp.reshape(inner(x), (self.in_channels, -1))  # (in, H W N)
        patches = xp.reshape(W, (self.in_channels, -1)).T @ self.x_mat  # (out k k, H W N)
        y = col2im(patches, (self.out_channels, H_out, W_out, N), k, s, p)  # (out, H_out, W_out, N)
        y += xp.reshape(b, (self.out_channels, 1, 1, 1))
        return outer(y)

    def backward(self, dout):
        xp = namespace(dout)
        N, _, H, W_in = self.x_shape
        W = self.params["W"]
        dpatches = im2col(inner(dout), self.kernel_size, self.stride, self.padding)  # (out k k, H W N)
        self.grads["W"] = xp.reshape(self.x_mat @ dpatches.T, W.shape)  # (in, out k k) -> (in, out, k, k)
        self.grads["b"] = xp.sum(dout, axis=(0, 2, 3))
        if not self.input_grad:
            return None
        dx = xp.reshape(W, (self.in_channels, -1)) @ dpatches  # (in, H W N)
        return outer(xp.reshape(dx, (self.in_channels, H, W_in, N)))


class Reshape(Layer):
    """Each example reshaped: x: (N, *any) -> y: (N, *shape), between dense and convolutional parts.

    Reshape((C, H, W)) turns a Dense's (N, C H W) into images, Reshape((C H W,)) images into rows
    (row-major, as PyTorch's view and nn.Unflatten). backward(dout: (N, *shape)) returns dx of x's
    shape: the same numbers, reshaped back.
    """

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x):
        xp = namespace(x)
        if math.prod(x.shape[1:]) != math.prod(self.shape):
            raise ValueError(f"{self!r} needs {math.prod(self.shape)} numbers per example, "
                             f"got input of shape {tuple(x.shape)}")
        self.x_shape = tuple(x.shape)
        return xp.reshape(x, (x.shape[0], *self.shape))

    def backward(self, dout):
        return namespace(dout).reshape(dout, self.x_shape)

    def __repr__(self):
        return f"Reshape({self.shape})"
