"""Losses, each returning its value and its gradient with respect to its inputs.

Convention (that of the reference PyTorch VAE example): a loss is summed over the
features of one example and averaged over the batch, so it reads as "per image" and
its gradient carries a 1/N. `reduction="mean"` averages over every element instead
(1/(N*D)), the convention of torch.nn.MSELoss's default. Derivations: docs/derivations.md.
"""

from .backend import namespace
from .layers import sigmoid

REDUCTIONS = ("sum", "mean")


def _divisor(x, reduction):
    """N for "sum" (per example), N*D for "mean" (per element)."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}: choose one of {', '.join(REDUCTIONS)}")
    n_examples = x.shape[0]
    return n_examples if reduction == "sum" else n_examples * (x.size // n_examples)


def mse(x_hat, x, reduction="sum"):
    """Squared error L = 1/N sum_{n,d} (x_hat - x)**2.   x_hat, x: (N, D).

    Returns (L, dx_hat): L a 0-d array, dx_hat = dL/dx_hat: (N, D). N is _divisor(x, reduction),
    which is N * D for reduction="mean". x_hat and x are left as they were.

    Derived in docs/derivations.md, "Mean squared error": dx_hat = 2 (x_hat - x) / N.
    """
    xp = namespace(x_hat, x)
    divisor = _divisor(x, reduction)
    diff = x_hat - x
    loss = xp.sum(diff * diff) / divisor
    diff *= 2.0 / divisor  # diff is ours: reuse it as the gradient
    return loss, diff


def bce(logits, x, reduction="sum"):
    """Binary cross-entropy of targets x in [0, 1] against p = sigmoid(logits).  logits, x: (N, D).

    L = 1/N sum -[x log p + (1 - x) log(1 - p)], computed from the logits as
    max(l, 0) - l x + log(1 + exp(-|l|)) (bce_terms, below), which never takes the log of 0
    nor overflows. Returns (L, dlogits): L a 0-d array, dlogits = dL/dlogits: (N, D).
    N is _divisor(x, reduction), as for mse.

    Derived in docs/derivations.md, "Binary cross-entropy from logits": dlogits = (sigmoid(logits) - x) / N.
    """
    divisor = _divisor(x, reduction)
    loss = namespace(logits, x).sum(bce_terms(logits, x)) / divisor
    dlogits = sigmoid(logits) - x
    dlogits *= 1.0 / divisor
    return loss, dlogits


def bce_terms(logits, x):
    """-[x log p + (1 - x) log(1 - p)] for each element, p = sigmoid(logits): (N, D), as bce sums them."""
    xp = namespace(logits, x)
    return xp.maximum(logits, 0.0) - logits * x + xp.log1p(xp.exp(-xp.abs(logits)))


def gaussian_kl(mu, logvar, reduction="sum"):
    """KL( N(mu, exp(logvar)) || N(0, I) ), in closed form.   mu, logvar: (N, J).

    KL = -1/2 * 1/N sum_{n,j} (1 + logvar - mu**2 - exp(logvar)), logvar the log of the variance.
    Returns (KL, dmu, dlogvar): KL a 0-d array, dmu = dKL/dmu and dlogvar = dKL/dlogvar: (N, J).
    N is _divisor(mu, reduction), as for mse.

    Derived in docs/derivations.md, "KL divergence to the standard normal":
    dmu = mu / N and dlogvar = (exp(logvar) - 1) / (2N).
    """
    xp = namespace(mu, logvar)
    divisor = _divisor(mu, reduction)
    var = xp.exp(logvar)
    kl = -0.5 * xp.sum(1.0 + logvar - mu * mu - var) / divisor
    dmu = mu / divisor
    dlogvar = (var - 1.0) * (0.5 / divisor)
    return kl, dmu, dlogvar


def one_hot(labels, n_classes, like):
    """y: (N, n_classes) with y[n, c] = 1.0 if labels[n] == c else 0.0, in the dtype of `like` (N, ...).

    labels: (N,) integers in [0, n_classes), on like's backend. Checking the range costs one
    read from the device, worth it: an out-of-range label would match no class, silently.
    """
    xp = namespace(like, labels)
    if labels.ndim != 1 or labels.shape[0] != like.shape[0] or not xp.isdtype(labels.dtype, "integral"):
        raise ValueError(f"labels must be integers of shape ({like.shape[0]},) for inputs of shape "
                         f"{tuple(like.shape)}, got labels of shape {tuple(labels.shape)} and dtype {labels.dtype}")
    if bool(xp.any((labels < 0) | (labels >= n_classes))):
        raise ValueError(f"labels must lie in [0, {n_classes}) for {n_classes} classes, "
                         f"got labels from {int(xp.min(labels))} to {int(xp.max(labels))}")
    return xp.astype(xp.arange(n_classes) == labels[:, None], like.dtype)


def softmax_cross_entropy(logits, labels, reduction="sum"):
    """Cross-entropy of class indices against p = softmax(logits).  logits: (N, C), labels: (N,) ints in [0, C).

    L = 1/N sum_n -log p[n, labels[n]], computed as log p = shifted - log sum_c exp(shifted),
    shifted = logits - (row max): the same p, with no exp above 1 and no log of 0.
    Returns (L, dlogits) with dlogits = (p - onehot(labels)) / N  (docs/derivations.md, "Softmax cross-entropy").
    """
    xp = namespace(logits, labels)
    if logits.ndim != 2:
        raise ValueError(f"logits must be (N, C), got shape {tuple(logits.shape)}")
    onehot = one_hot(labels, logits.shape[1], logits)  # (N, C)
    divisor = _divisor(logits, reduction)
    shifted = logits - xp.max(logits, axis=1, keepdims=True)  # (N, C), every row's largest is 0
    exp_shifted = xp.exp(shifted)
    sum_exp = xp.sum(exp_shifted, axis=1, keepdims=True)  # (N, 1), at least 1
    log_p = shifted - xp.log(sum_exp)
    loss = -xp.sum(onehot * log_p) / divisor
    dlogits = exp_shifted / sum_exp - onehot  # p - onehot
    dlogits *= 1.0 / divisor
    return loss, dlogits
