"""The GEMM-bound limit of a training step: its matrix products, read off a model's own layers,
their FLOPs, and their time alone on the backend's matmul.

Everything else a step does (activations, loss, Adam, batching, Python) costs time on top, so no
training step made of these products can take less. The benchmark's "gemm" kind
(studies/trainers.py) times one epoch of them.
"""

import statistics
import time
from typing import NamedTuple

from nn import Conv2d, ConvTranspose2d, Dense, Generator, Sequential
from nn.backend import synchronize

GEMM_REPEATS = 30  # timings of one step's products per epoch; their median is used


class Product(NamedTuple):
    """One matrix product a @ b of a training step, with a and b as the model stores them.

    transpose: "a" or "b" when the product reads that array transposed (a view, as in
    x.T @ dout), None when neither.
    """

    name: str
    a_shape: tuple
    b_shape: tuple
    transpose: str | None = None

    def mkn(self):
        """(M, K, N) of the product (M, K) @ (K, N)."""
        m, k = self.a_shape[::-1] if self.transpose == "a" else self.a_shape
        k_b, n = self.b_shape[::-1] if self.transpose == "b" else self.b_shape
        assert k == k_b, f"{self.name}: inner sizes {k} and {k_b} differ"
        return m, k, n

    def flops(self):
        """2 M K N: one multiply and one add per term of each of the M N dot products of length K."""
        m, k, n = self.mkn()
        return 2 * m * k * n


def step_products(model, batch, x=None):
    """The matrix products of one training step of `model` on `batch` rows, read off its layers.

    Each Dense does y = x @ W forward, dW = x.T @ dout backward, and dx = dout @ W.T unless
    it is a first layer (input_grad False: nothing upstream of the data needs a gradient).
    A Conv2d does W_mat @ patches, dout_mat @ patches.T and W_mat.T @ dout_mat; a
    ConvTranspose2d W_mat.T @ x_mat, x_mat @ dpatches.T and W_mat @ dpatches (nn/conv.py).
    Their sizes depend on the image's, so a model with convolutions first runs forward on x,
    a batch of `batch` rows, and each convolution's sizes are read off what it kept.
    """
    if x is not None:
        model.forward(x)
    products = []
    for part, module in model.parts.items():
        layers = module.layers if isinstance(module, Sequential) else [module]
        for i, layer in enumerate(layers):
            products += layer_products(f"{part}.{i}", layer, batch)
    return products


def layer_products(name, layer, batch):
    """The products of one layer's forward and backward (none for a layer without weights)."""
    if isinstance(layer, Dense):
        n_in, n_out = layer.in_features, layer.out_features
        forward = [Product(f"{name}: x @ W", (batch, n_in), (n_in, n_out)),
                   Product(f"{name}: x.T @ dout", (batch, n_in), (batch, n_out), "a")]
        return forward + [Product(f"{name}: dout @ W.T", (batch, n_out), (n_in, n_out), "b")] * layer.input_grad
    if isinstance(layer, Conv2d):
        (rows, columns), out = layer.patches.shape, layer.out_channels  # (in k k, L N)
        return [Product(f"{name}: W_mat @ patches", (out, rows), (rows, columns)),
                Product(f"{name}: dout_mat @ patches.T", (out, columns), (rows, columns), "b")] + [
                Product(f"{name}: W_mat.T @ dout_mat", (out, rows), (out, columns), "a")] * layer.input_grad
    if isinstance(layer, ConvTranspose2d):
        (n_in, columns), k = layer.x_mat.shape, layer.kernel_size  # (in, H W N)
        rows = layer.out_channels * k * k
        return [Product(f"{name}: W_mat.T @ x_mat", (n_in, rows), (n_in, columns), "a"),
                Product(f"{name}: x_mat @ dpatches.T", (n_in, columns), (rows, columns), "b")] + [
                Product(f"{name}: W_mat @ dpatches", (n_in, rows), (rows, columns))] * layer.input_grad
    return []


def gemm_seconds(xp, products, repeats=GEMM_REPEATS, seed=0, dtype="float32"):
    """(median seconds of one pass over `products` with xp's matmul, their FLOP count)."""
    rng = Generator(seed, xp)
    operands = []
    for p in products:
        a, b = rng.normal(p.a_shape, dtype), rng.normal(p.b_shape, dtype)
        operands.append((a.T if p.transpose == "a" else a, b.T if p.transpose == "b" else b))
    times = []
    for _ in range(repeats):
        synchronize(xp)
        start = time.perf_counter()
        for a, b in operands:
            a @ b  # allocates its result, as the model's products do
        synchronize(xp)
        times.append(time.perf_counter() - start)
    return statistics.median(times), sum(p.flops() for p in products)


def steps_per_epoch(n, batch_size):
    """{batch rows: how many steps of that size}: full batches, and the smaller last one if any."""
    full, rest = divmod(n, batch_size)
    return {size: count for size, count in ((batch_size, full), (rest, 1)) if size and count}
