"""Layers with hand-written backward passes.

Every layer follows one protocol:
  forward(x)      computes y and keeps on `self` what backward needs;
  backward(dout)  takes dout = dL/dy, returns dx = dL/dx, and fills `self.grads`
                  (dL/dparam) with the same keys as `self.params`. It leaves dout
                  as it was: the caller may still need it.
Gradients are overwritten, never accumulated, so there is nothing to zero between steps.
The derivation of every backward is in docs/derivations.md, in the names used here.
"""

import math

from .backend import TRAIN_DTYPE, load_arrays, namespace, resolve_dtype, to_numpy

# How a Dense layer starts. "he" and "xavier" draw W from a normal distribution of the
# variance that keeps activations' variance constant through depth (He: 2 / fan_in, for a
# layer before a ReLU; Xavier: 2 / (fan_in + fan_out), before tanh, sigmoid or nothing),
# and set b = 0. "uniform" is PyTorch's nn.Linear default: W and b uniform in
# +-1/sqrt(fan_in) (variance 1 / (3 fan_in)); its nonzero biases matter for a layer
# whose input is a 2-D code (models/base.py, `mlp`, says why).
INITS = ("he", "xavier", "uniform")


def initial_params(init, rng, dtype, *, shape, n_out, fan_in, fan_out):
    """(W: shape, b: (n_out,)) drawn from `rng` as `init` says, for a layer of these fans: the one
    initial draw of every layer with weights (Dense: shape (fan_in, fan_out); nn/conv.py's kernels)."""
    if init == "uniform":
        bound = 1.0 / math.sqrt(fan_in)
        return rng.uniform(shape, -bound, bound, dtype), rng.uniform((n_out,), -bound, bound, dtype)
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}: choose one of {', '.join(INITS)}")
    variance = 2.0 / fan_in if init == "he" else 2.0 / (fan_in + fan_out)
    W = rng.normal(shape, dtype)
    W *= math.sqrt(variance)
    return W, rng.xp.zeros((n_out,), dtype=resolve_dtype(rng.xp, dtype))


class Layer:
    """Base class: parameter-free unless a subclass fills `params`."""

    def __init__(self):
        self.params = {}
        self.grads = {}

    def state_dict(self):
        """The parameters as NumPy arrays, by name: what a checkpoint stores."""
        return {name: to_numpy(p) for name, p in self.params.items()}

    def load_state_dict(self, state):
        """Copy `state` (name -> array) into the parameters, in place (nn.backend.load_arrays)."""
        load_arrays(self.params, state)

    def __repr__(self):
        return f"{type(self).__name__}()"


class Dense(Layer):
    """Fully connected layer, y = x @ W + b.

    x: (N, in_features), W: (in_features, out_features), b: (out_features,), y: (N, out_features).
    backward(dout: (N, out_features)) fills grads "W" and "b" and returns dx: (N, in_features);
    `input_grad = False` skips dx (returns None): the first layer of a network never needs it.

    Derived in docs/derivations.md, "Dense": dW = x.T @ dout, db = sum_n dout, dx = dout @ W.T.
    """

    def __init__(self, in_features, out_features, rng, init="he", dtype=TRAIN_DTYPE):
        super().__init__()
        self.in_features, self.out_features, self.init = in_features, out_features, init
        W, b = initial_params(init, rng, dtype, shape=(in_features, out_features), n_out=out_features,
                              fan_in=in_features, fan_out=out_features)
        self.params = {"W": W, "b": b}
        self.input_grad = True

    def forward(self, x):
        W, b = self.params["W"], self.params["b"]
        namespace(x, W)  # refuses an input from another backend
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"Dense({self.in_features}, {self.out_features}) expects input of shape "
                f"(N, {self.in_features}), got {tuple(x.shape)}"
            )
        self.x = x
        y = x @ W
        y += b  # in place: one (N, out) array instead of two
        return y

    def backward(self, dout):
        xp = namespace(dout)
        self.grads["W"] = self.x.T @ dout
        self.grads["b"] = xp.sum(dout, axis=0)
        return dout @ self.params["W"].T if self.input_grad else None

    def __repr__(self):
        return f"Dense({self.in_features}, {self.out_features}, init={self.init!r})"


class ReLU(Layer):
    """y = max(x, 0), elementwise.  x, y: (N, D).

    forward keeps slope = 1.0 where x > 0, else 0.0, as floats; backward(dout) returns dx: (N, D).

    Derived in docs/derivations.md, "Activations" (which says why slope is floats, not a select):
    dx = dout * slope, for slope is the derivative.
    """

    def forward(self, x):
        xp = namespace(x)
        self.slope = xp.astype(x > 0, x.dtype)
        return xp.maximum(x, 0.0)

    def backward(self, dout):
        return dout * self.slope


class LeakyReLU(Layer):
    """y = x if x > 0 else alpha * x.  x, y: (N, D).  dx = dout, or alpha * dout where x <= 0."""

    def __init__(self, alpha=0.01):
        super().__init__()
        self.alpha = alpha

    def forward(self, x):
        xp = namespace(x)
        self.positive = x > 0
        return xp.where(self.positive, x, self.alpha * x)

    def backward(self, dout):
        xp = namespace(dout)
        return xp.where(self.positive, dout, self.alpha * dout)

    def __repr__(self):
        return f"LeakyReLU(alpha={self.alpha})"


def sigmoid(x):
    """1 / (1 + exp(-x)), computed as (1 + tanh(x / 2)) / 2: the same function, which never
    overflows (exp(-x) does for x < -88 in float32) and costs one transcendental call."""
    xp = namespace(x)
    y = xp.tanh(0.5 * x)
    y += 1.0
    y *= 0.5
    return y


class Sigmoid(Layer):
    """y = sigmoid(x) = 1 / (1 + exp(-x)).  x, y: (N, D).

    forward keeps y; backward(dout) returns dx: (N, D).

    Derived in docs/derivations.md, "Activations": dx = dout * y * (1 - y).
    """

    def forward(self, x):
        self.y = sigmoid(x)
        return self.y

    def backward(self, dout):
        return dout * self.y * (1.0 - self.y)


class Tanh(Layer):
    """y = tanh(x).  x, y: (N, D).

    forward keeps y; backward(dout) returns dx: (N, D).

    Derived in docs/derivations.md, "Activations": dx = dout * (1 - y**2).
    """

    def forward(self, x):
        self.y = namespace(x).tanh(x)
        return self.y

    def backward(self, dout):
        return dout * (1.0 - self.y * self.y)


class Sequential(Layer):
    """Layers applied in order; backward runs them in reverse (the chain rule).

    `params` and `grads` are flat dicts named "<layer index>.<param>" ("0.W", "2.b"),
    holding the layers' own arrays: an optimiser that updates `params` in place
    updates the layers.
    """

    def __init__(self, *layers):
        self.layers = list(layers)
        self.params = {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.params.items()}

    @property
    def grads(self):
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.grads.items()}

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout):
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
            if dout is None:  # a layer with input_grad = False: nothing before it needs a gradient
                return None
        return dout

    def __repr__(self):
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential(\n  {inner}\n)"
