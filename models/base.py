"""What every model shares: the Model interface, building an MLP, the reconstruction loss (the
decoder's output unit and its loss, as one step), and `named`, the look-up of a record by its name."""

import math
import textwrap

from nn import Dense, LeakyReLU, ReLU, Sequential, Sigmoid, Tanh, bce, gaussian_nll, mse
from nn.backend import load_arrays, namespace, resolve_dtype, to_backend, to_numpy


class Model:
    """A network that ends in its own loss: the interface the training loop relies on.

    A model is not a Layer. A layer is one step of the chain rule: backward(dout) takes
    the gradient of its output and returns that of its input. A model starts the chain:

      forward(x, rng=None) -> {"loss": L, ...}  its loss terms for a batch x: (N, D), as
                                                0-d arrays, per image; `rng` draws any noise
      backward()            fills `grads` with dL/dparam for the batch of the last forward
      params, grads         flat dicts "<part>.<layer>.<name>" over the parts' own arrays
                            (an optimiser updating `params` in place updates the layers)
      code(x) -> (N, J)     the code of x, no noise: what the figures and the metrics use
      decode(z) -> (N, D),  reconstruct(x) -> (N, D)
      state_dict(), load_state_dict(state)  the parameters as NumPy arrays, for checkpoints

    A subclass builds its layers, names them in `self.parts` (name -> layer) and calls
    `self.collect_params()`.
    """

    parts = {}
    settings = ()  # names of the attributes repr shows beside the parts

    def collect_params(self):
        self.params = {f"{part}.{k}": v for part, layer in self.parts.items() for k, v in layer.params.items()}

    @property
    def grads(self):
        return {f"{part}.{k}": v for part, layer in self.parts.items() for k, v in layer.grads.items()}

    def reconstruct(self, x):
        return self.decode(self.code(x))

    def start_at(self, x_mean):
        """Set the decoder's output bias so that, before any training, every image decodes to
        about x_mean: (input_dim,), the mean training image. The decoder's first steps then
        go into the differences between images, not into finding their average (for the
        linear AE this is PCA's centring)."""
        b = [layer for layer in self.decoder.layers if "b" in layer.params][-1].params["b"]
        xp = namespace(b)
        # Each output bias covers the pixels it is added to: one each after a Dense (b: (D,)), a whole
        # channel after a transposed convolution (b: (channels,)). It starts at the logit of their mean.
        covered = xp.reshape(to_backend(x_mean, xp), (b.shape[0], -1))
        b[...] = xp.astype(self.recon_loss.logits_of(xp.mean(covered, axis=1)), b.dtype)

    def state_dict(self):
        return {name: to_numpy(p) for name, p in self.params.items()}

    def load_state_dict(self, state):
        load_arrays(self.params, state)

    def __repr__(self):
        settings = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.settings)
        parts = "".join(f"\n  {name}={textwrap.indent(repr(layer), '  ').lstrip()}," for name, layer in self.parts.items())
        return f"{type(self).__name__}({settings},{parts}\n)"


def named(records, name, what, field="key", error=ValueError):
    """The record of `records` whose `field` is `name`; else `error` naming `what` and the names there are.
    The one look-up by name of every table of records (architectures, models, datasets, benchmark
    kinds, exercises)."""
    for record in records:
        if getattr(record, field) == name:
            return record
    raise error(f"unknown {what} {name!r}: choose one of {', '.join(getattr(r, field) for r in records)}")


ACTIVATIONS = {"relu": ReLU, "leaky_relu": LeakyReLU, "tanh": Tanh, "sigmoid": Sigmoid}
LOSSES = ("mse", "bce", "gaussian")
MSE_LOGVAR = math.log(0.5)  # summed squared error is -log N(x; x_hat, sigma**2 I) + const at sigma**2 = 1/2


INIT_SCHEMES = ("he-xavier", "uniform")

# A decoder's first layer reads the code z. With zero biases, each of its ReLU units
# computes max(z @ w_k, 0), and every one of those kinks is a line through z = 0: the whole
# decoder can then only vary an image with the direction of z, scaled along each ray from
# the origin, until training has moved the biases, which Adam does by about lr a step.
# Biases drawn uniform in +-CODE_BIAS, the scale of the prior N(0, I), put the kinks where
# the codes are from the first step: measured, the lab's VAE gets 2.4 nats further in its
# first epoch (README, "Model quality"). This one tensor is all of the difference from
# PyTorch's default initialisation that matters to how fast it learns.
CODE_BIAS = 1.0

# A VAE's two heads give q(z|x)'s mean and log-variance. Drawn at the scheme's full scale
# on the trunk's ReLU features, they put the untrained codes of all images around one
# point, up to 1.4 from the origin in a direction that depends on the draw, and the
# training unfolds the code layout from there: measured over seeds 0-9, the test loss
# after the first epoch then varied 2.7 times as much as PyTorch's, and a seed kept its
# place to epoch 20 (correlation 0.83). With the heads' weights scaled by HEAD_SCALE,
# q(z|x) starts close to the prior N(0, I) for every image (the codes' mean within 0.14
# of 0, their spread 0.03 to 0.06), and the seed-to-seed spread is PyTorch's (README,
# "Model quality", which also measures other changes that damp it).
HEAD_SCALE = 0.1


def mlp(sizes, activation, rng, dtype, init="he-xavier", last_activation=False, first_bias=None):
    """Dense layers of `sizes` (in, h1, ..., out) with `activation` between them.

    init "he-xavier": He before a ReLU-like activation, Xavier before tanh, sigmoid or none,
    biases 0. "uniform": every layer W, b ~ U(+-1/sqrt(fan_in)), PyTorch's nn.Linear default.
    first_bias: if given, the first layer's biases are drawn uniform in +-first_bias instead
    (CODE_BIAS, for a decoder). The last layer gets the activation only if `last_activation`.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}: choose one of {', '.join(ACTIVATIONS)}")
    if init not in INIT_SCHEMES:
        raise ValueError(f"unknown init {init!r}: choose one of {', '.join(INIT_SCHEMES)}")
    layers = []
    n_layers = len(sizes) - 1
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        activated = i < n_layers - 1 or last_activation
        layers.append(Dense(n_in, n_out, rng, init=layer_init(init, activated, activation), dtype=dtype))
        if activated:
            layers.append(ACTIVATIONS[activation]())
    if first_bias is not None:
        first = layers[0]
        first.params["b"][...] = rng.uniform(tuple(first.params["b"].shape), -first_bias, first_bias, dtype)
    return Sequential(*layers)


def layer_init(scheme, activated, activation="relu"):
    """One layer's init under a model's scheme: "he-xavier" gives "he" before a ReLU-like
    activation and "xavier" before tanh, sigmoid or none; "uniform" gives "uniform"."""
    if scheme == "uniform":
        return scheme
    return "he" if activated and activation in ("relu", "leaky_relu") else "xavier"


def mlp_encoder(*, input_dim, hidden, activation, init, rng, dtype, condition_dim=0, **_):
    """(trunk, width): rows (N, input_dim + condition_dim) -> Dense -> activation per hidden width
    -> (N, width), width = hidden[-1] (the input itself when hidden is empty: the linear AE's)."""
    trunk = mlp((input_dim + condition_dim, *hidden), activation, rng, dtype, init, last_activation=True)
    if trunk.layers:
        trunk.layers[0].input_grad = False  # nothing upstream of the data needs a gradient
    return trunk, (hidden[-1] if hidden else input_dim + condition_dim)


def mlp_decoder(*, code_dim, input_dim, hidden, activation, init, rng, dtype, first_bias, **_):
    """rows (N, code_dim) -> reversed(hidden)... -> logits (N, input_dim) (`mlp`, with first_bias)."""
    return mlp((code_dim, *reversed(hidden), input_dim), activation, rng, dtype, init, first_bias=first_bias)


class Reconstruction:
    """The decoder's output unit and the reconstruction loss, as one step: -log p(x|z) up to a constant.

    logits: (N, D) from the decoder's last Dense.  x_hat = sigmoid(logits), images in [0, 1]
    (or x_hat = logits when `linear`, as PCA's reconstructions are unbounded too).
    "mse": recon = 1/N sum (x_hat - x)**2, and dlogits is mse's gradient taken back through
    Sigmoid.backward: a Gaussian p(x|z) whose variance is fixed at 1/2. "bce": recon = BCE from the
    logits directly, and dlogits is bce's own gradient: the sigmoid's derivative cancels against
    the log's, which is why BCE is computed from logits (docs/derivations.md, "Binary cross-entropy
    from logits"). "gaussian": a Gaussian p(x|z) whose variance, one for every pixel, is learned:
    recon = gaussian_nll(x_hat, x, x_logvar), in nats, and params {"x_logvar": (1,)}, starting at
    log(1/2), the variance "mse" fixes (docs/derivations.md, "A decoder that learns its variance").
    xp, dtype: where that parameter lives.
    """

    def __init__(self, loss="mse", linear=False, xp=None, dtype=None):
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}: choose one of {', '.join(LOSSES)}")
        if linear and loss != "mse":
            raise ValueError(f"loss {loss!r} needs a sigmoid output; a linear model uses loss 'mse'")
        self.loss, self.linear = loss, linear
        self.sigmoid = Sigmoid()
        self.params, self.grads = {}, {}
        if loss == "gaussian":
            if xp is None:
                raise ValueError("loss 'gaussian' learns the decoder's variance: a model that takes it gives "
                                 "Reconstruction the xp and dtype of its parameters")
            self.params["x_logvar"] = xp.full((1,), MSE_LOGVAR, dtype=resolve_dtype(xp, dtype))

    def output(self, logits):
        """x_hat from the decoder's logits (no loss)."""
        return logits if self.linear else self.sigmoid.forward(logits)

    def logits_of(self, x_hat):
        """The logits whose output is x_hat: logit(x_hat) = log(x_hat / (1 - x_hat)), clipped to
        [0.001, 0.999] first (a pixel black in every image would need -inf); x_hat itself when linear."""
        if self.linear:
            return x_hat
        xp = namespace(x_hat)
        x_hat = xp.clip(x_hat, 1e-3, 1.0 - 1e-3)
        return xp.log(x_hat / (1.0 - x_hat))

    def forward(self, logits, x):
        """recon (a 0-d array), keeping dlogits for backward."""
        namespace(logits, x)
        if self.loss == "bce":
            recon, self.dlogits = bce(logits, x)
            return recon
        x_hat = self.output(logits)
        if self.loss == "gaussian":
            recon, dx_hat, self.dx_logvar = gaussian_nll(x_hat, x, self.params["x_logvar"])
        else:
            recon, dx_hat = mse(x_hat, x)
        self.dlogits = dx_hat if self.linear else self.sigmoid.backward(dx_hat)
        return recon

    def backward(self):
        """dL/dlogits: (N, D); with a learned variance, also fills grads["x_logvar"]."""
        if self.params:
            self.grads["x_logvar"] = self.dx_logvar
        return self.dlogits

    def __repr__(self):
        return f"Reconstruction({self.loss!r}" + (", linear=True)" if self.linear else ")")
