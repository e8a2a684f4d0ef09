"""Losses, each returning its value and its gradient with respect to its inputs.

Convention (that of the reference PyTorch VAE example): a loss is summed over the
features of one example and averaged over the batch, so it reads as "per image" and
its gradient carries a 1/N. `reduction="mean"` averages over every element instead
(1/(N*D)), the convention of torch.nn.MSELoss's default. Derivations: docs/derivations.md.
"""

import math

from .backend import namespace
from .layers import sigmoid

REDUCTIONS = ("sum", "mean")
LOG_2PI = math.log(2 * math.pi)


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


def gaussian_nll(x_hat, x, x_logvar, reduction="sum"):
    """-log N(x; x_hat, sigma**2 I) of each image, sigma**2 = exp(x_logvar) one variance shared by
    every pixel and learned.   x_hat, x: (N, D); x_logvar: (1,).

    L = 1/N sum_{n,d} [(x - x_hat)**2 / (2 sigma**2) + x_logvar / 2 + log(2 pi) / 2], in nats.
    Returns (L, dx_hat, dx_logvar): L a 0-d array, dx_hat = dL/dx_hat: (N, D), dx_logvar = dL/dx_logvar:
    (1,). N is _divisor(x, reduction), as for mse. At sigma**2 = 1/2 it is mse plus a constant.

    Derived in docs/derivations.md, "A decoder that learns its variance":
    dx_hat = (x_hat - x) / (sigma**2 N) and dx_logvar = 1/N sum_{n,d} [1/2 - (x - x_hat)**2 / (2 sigma**2)].
    """
    xp = namespace(x_hat, x, x_logvar)
    if tuple(x_logvar.shape) != (1,):
        raise ValueError(f"x_logvar must be one log-variance shared by all pixels, shape (1,), "
                         f"got shape {tuple(x_logvar.shape)}")
    divisor = _divisor(x, reduction)
    var = xp.exp(x_logvar)  # (1,)
    diff = x_hat - x
    squared = xp.sum(diff * diff)
    loss = (squared / (2.0 * var[0]) + 0.5 * x.size * (x_logvar[0] + LOG_2PI)) / divisor
    dx_logvar = (0.5 * x.size - squared / (2.0 * var)) / divisor  # (1,)
    diff *= 1.0 / (var[0] * divisor)  # diff is ours: reuse it as the gradient
    return loss, diff, dx_logvar


def kl_per_dimension(mu, logvar):
    """The KL of each latent dimension, averaged over the batch: (KL_j: (J,), dmu, dlogvar: (N, J)), the
    J numbers gaussian_kl's total splits into, from gaussian_kl itself, one column at a time, and its
    gradients beside them: dmu[:, j] = dKL_j/dmu[:, j]. mu, logvar: (N, J)."""
    xp = namespace(mu, logvar)
    columns = [gaussian_kl(mu[:, j:j + 1], logvar[:, j:j + 1]) for j in range(mu.shape[1])]
    kl_j = xp.stack([kl for kl, _, _ in columns])  # (J,)
    return kl_j, xp.concat([dmu for _, dmu, _ in columns], axis=1), xp.concat([dlv for _, _, dlv in columns], axis=1)


def free_bits_kl(mu, logvar, floor):
    """The KL term with a floor of `floor` nats on each dimension (Kingma et al. 2016, "free bits").
    mu, logvar: (N, J).

    F = sum_j max(KL_j, floor), KL_j the batch's mean KL of dimension j (kl_per_dimension): a dimension
    whose KL is below the floor costs the floor, whatever it does, so nothing pushes it further to the
    prior. Returns (F, KL, dmu, dlogvar): F and KL = sum_j KL_j 0-d arrays, dmu = dF/dmu and
    dlogvar = dF/dlogvar: (N, J), gaussian_kl's gradients in the dimensions above the floor, 0 in the others.
    Derived in docs/derivations.md, "Free bits".
    """
    xp = namespace(mu, logvar)
    kl_j, dmu, dlogvar = kl_per_dimension(mu, logvar)
    paid = xp.astype(kl_j > floor, mu.dtype)  # (J,): 1 where KL_j is paid, 0 where the floor is
    return xp.sum(xp.maximum(kl_j, floor)), xp.sum(kl_j), dmu * paid, dlogvar * paid


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
