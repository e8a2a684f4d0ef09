"""Pieces the autoencoder and the VAE share: building an MLP, and the output/loss head."""

from nn import Dense, LeakyReLU, ReLU, Sequential, Sigmoid, Tanh, bce, mse
from nn.backend import namespace

ACTIVATIONS = {"relu": ReLU, "leaky_relu": LeakyReLU, "tanh": Tanh, "sigmoid": Sigmoid}
LOSSES = ("mse", "bce")


def mlp(sizes, activation, rng, dtype, last_activation=False):
    """Dense layers of `sizes` (in, h1, ..., out) with `activation` between them.

    He init before a ReLU-like activation, Xavier before tanh/sigmoid or no activation.
    The last layer gets the activation only if `last_activation`.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}: choose one of {', '.join(ACTIVATIONS)}")
    layers = []
    n_layers = len(sizes) - 1
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        activated = i < n_layers - 1 or last_activation
        init = "he" if activated and activation in ("relu", "leaky_relu") else "xavier"
        layers.append(Dense(n_in, n_out, rng, init=init, dtype=dtype))
        if activated:
            layers.append(ACTIVATIONS[activation]())
    return Sequential(*layers)


class Reconstruction:
    """The decoder's output unit and the reconstruction loss, as one step.

    logits: (N, D) from the decoder's last Dense.  x_hat = sigmoid(logits), images in [0, 1]
    (or x_hat = logits when `linear`, as PCA's reconstructions are unbounded too).
    "mse": recon = 1/N sum (x_hat - x)**2, and dlogits = dx_hat * x_hat * (1 - x_hat).
    "bce": recon = BCE from the logits directly, and dlogits = (x_hat - x) / N: the
    sigmoid's derivative cancels against the log's, which is why BCE is computed from logits.
    """

    def __init__(self, loss="mse", linear=False):
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}: choose one of {', '.join(LOSSES)}")
        if linear and loss == "bce":
            raise ValueError("loss 'bce' needs a sigmoid output; a linear model uses loss 'mse'")
        self.loss, self.linear = loss, linear
        self.sigmoid = Sigmoid()

    def output(self, logits):
        """x_hat from the decoder's logits (no loss)."""
        return logits if self.linear else self.sigmoid.forward(logits)

    def forward(self, logits, x):
        """recon (a 0-d array), keeping dlogits for backward."""
        namespace(logits, x)
        if self.loss == "bce":
            recon, self.dlogits = bce(logits, x)
            return recon
        x_hat = self.output(logits)
        recon, dx_hat = mse(x_hat, x)
        self.dlogits = dx_hat if self.linear else self.sigmoid.backward(dx_hat)
        return recon

    def backward(self):
        return self.dlogits


def named_params(**parts):
    """One flat dict {"<part>.<name>": array} over the parts' own param dicts."""
    return {f"{part}.{k}": v for part, module in parts.items() for k, v in module.params.items()}


def named_grads(**parts):
    return {f"{part}.{k}": v for part, module in parts.items() for k, v in module.grads.items()}
