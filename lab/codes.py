"""What a trained VAE's code carries: the rate and the distortion of its loss, the KL of each
dimension, its active units, and traversals.png, each dimension swept with the others held.

The two terms of the VAE's loss are a trade (Alemi et al. 2018, "Fixing a Broken ELBO"): the
KL term is the *rate* R, the nats the code carries about an image, and the reconstruction term
the *distortion* D = E_q[-log p(x|z)], in nats under the decoder's own likelihood (the lab's
summed squared error plus its constant, (D/2) log pi). The ELBO is -(R + D). The rate splits
over the dimensions, R = sum_j KL_j; a dimension with KL_j near 0 is *collapsed*: its code is
the prior for every image, and Burda et al. (2016) count the others, the *active units*, as
the dimensions whose E_q[z_j] = mu_j varies over the images by more than ACTIVE.
"""

import dataclasses
import math
import os

import numpy as np

from models.base import MSE_LOGVAR
from models.likelihood import distortion, x_logvar_of
from nn import Generator, kl_per_dimension
from nn.backend import get_backend, resolve_dtype, to_backend, to_numpy

from . import plots
from .run import add_metrics
from .train import apply_in_batches

ACTIVE = 0.01  # Burda et al.'s threshold on Var_x(E_q[z_j])
TRAVERSAL = np.linspace(-3.0, 3.0, 9)  # the values each dimension is swept through
TRAVERSED = 10  # dimensions traversals.png shows: those of highest KL


@dataclasses.dataclass
class CodeReport:
    """A VAE's code on a set of images, per image and in nats.

    rate: sum_j KL_j; distortion: E_q[-log p(x|z)] at one z per image; elbo: -(rate + distortion);
    kl_per_dim: (J,) KL_j, the mean over the images of KL(q(z_j|x) || N(0, 1)); mean_variance:
    (J,) Var over the images of mu_j; active_units: how many of those exceed ACTIVE; x_variance:
    the decoder's variance sigma**2 (learned with loss "gaussian", 1/2 for "mse", None for "bce").
    """

    rate: float
    distortion: float
    elbo: float
    kl_per_dim: list
    mean_variance: list
    active_units: int
    x_variance: float | None

    def line(self):
        """The report in one line, as a run prints it at the end."""
        J = len(self.kl_per_dim)
        top = ", ".join(f"{k:.2f}" for k in sorted(self.kl_per_dim, reverse=True)[:TRAVERSED])
        variance = "" if self.x_variance is None else f"; the decoder's variance {self.x_variance:.4g}"
        return (f"code: rate {self.rate:.2f} nats, distortion {self.distortion:.2f} nats (ELBO {self.elbo:.2f}); "
                f"{self.active_units}/{J} active units; KL per dimension, largest first: {top}"
                + (" ..." if J > TRAVERSED else "") + variance)


def code_report(model, x, scale, rng, batch_size=1000):
    """The CodeReport of `model` on x: (N, D) uint8 on the model's backend; the noise of the
    distortion's z drawn from `rng`."""
    mu, logvar = (to_numpy(a).astype(np.float64)
                  for a in apply_in_batches(model.encode, x, batch_size, scale, model.dtype))
    kl_j = to_numpy(kl_per_dimension(mu, logvar)[0])
    mean_variance = mu.var(axis=0)
    dist = float(rng.xp.sum(apply_in_batches(lambda batch: distortion(model, batch, rng), x, batch_size, scale,
                                             model.dtype)))
    dist /= x.shape[0]
    rate = float(np.sum(kl_j))
    x_logvar = x_logvar_of(model)
    x_variance = {"mse": math.exp(MSE_LOGVAR), "bce": None}.get(model.loss) if x_logvar is None else math.exp(
        float(to_numpy(x_logvar)[0]))
    return CodeReport(rate=rate, distortion=dist, elbo=-(rate + dist), kl_per_dim=[float(k) for k in kl_j],
                      mean_variance=[float(v) for v in mean_variance],
                      active_units=int(np.sum(mean_variance > ACTIVE)), x_variance=x_variance)


def traversal(model, xp, mu0, dims):
    """(len(dims) * len(TRAVERSAL), D) images: each dimension in dims swept through TRAVERSAL, the
    others held at mu0: (J,), one row of images per dimension."""
    z = np.repeat(np.asarray(mu0, dtype=np.float64)[None, :], len(dims) * len(TRAVERSAL), axis=0)
    for row, j in enumerate(dims):
        z[row * len(TRAVERSAL):(row + 1) * len(TRAVERSAL), j] = TRAVERSAL
    return to_numpy(model.decode(xp.astype(to_backend(z, xp), resolve_dtype(xp, model.dtype))))


def strongest(report, n=TRAVERSED):
    """The n dimensions of highest KL, highest first."""
    return [int(j) for j in np.argsort(-np.asarray(report.kl_per_dim), kind="stable")[:n]]


def report_code(model, data, config, out, log=print):
    """At the end of a VAE's run: its CodeReport on the test set, printed and added to metrics.json as
    "code"; for a code of more than two dimensions, traversals.png (the ten of highest KL, swept from
    -3 to 3 with the others at the first test image's mean code). Returns the report."""
    rng = Generator(config.seed + 4, get_backend(config.backend))
    x_test = to_backend(data.x_test, rng.xp)
    report = code_report(model, x_test, data.scale, rng)
    log(report.line())
    add_metrics(out, code=dataclasses.asdict(report))
    if config.latent_dim > 2:
        dims = strongest(report)
        mu0 = to_numpy(apply_in_batches(model.code, x_test[:1, ...], 1, data.scale))[0]
        plots.save_traversals(traversal(model, rng.xp, mu0, dims), dims, TRAVERSAL, data.image_shape,
                              os.path.join(out, "traversals.png"),
                              title=f"the {len(dims)} dimensions of highest KL, each swept from -3 to 3")
    return report
