"""What a VAE's code carries (lab/codes.py): rate and distortion against the loss's own terms,
active units, and traversals."""

import math

import numpy as np
import pytest

from lab.codes import ACTIVE, TRAVERSAL, code_report, strongest, traversal
from lab.train import evaluate
from models import VAE
from nn import Generator

N, D, J = 50, 12, 3


def images(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (N, D), dtype=np.uint8)


def vae(loss="mse", **kwargs):
    return VAE(D, hidden=(8,), latent_dim=J, loss=loss, head_scale=1.0, rng=Generator(1), dtype="float64", **kwargs)


@pytest.mark.parametrize("loss, constant", [("mse", D / 2 * math.log(math.pi)), ("gaussian", 0.0)])
def test_rate_and_distortion_are_the_loss_terms_in_nats(loss, constant):
    # With the same noise, the distortion is the loss's reconstruction term plus the decoder's constant
    # ((D/2) log pi for the lab's squared error, none for the learned variance's), and the rate its KL.
    model, x = vae(loss), images()
    report = code_report(model, x, 1 / 255, Generator(7), batch_size=20)
    terms = evaluate(model, x, 20, 1 / 255, Generator(7), dtype="float64")
    assert report.distortion == pytest.approx(terms["recon"] + constant, rel=1e-12)
    assert report.rate == pytest.approx(terms["kl"], rel=1e-12)
    assert report.elbo == -(report.rate + report.distortion)
    assert report.x_variance == pytest.approx(0.5)  # the gaussian decoder starts at the lab's variance


def test_a_dimension_the_encoder_ignores_is_inactive_and_carries_no_kl():
    model = vae()
    for name in ("mu.W", "mu.b", "logvar.W", "logvar.b"):  # dimension 1 is the prior N(0, 1) for every image
        model.params[name][..., 1] = 0.0
    report = code_report(model, images(), 1 / 255, Generator(2))
    assert report.kl_per_dim[1] == 0.0 and report.mean_variance[1] == 0.0
    assert report.active_units == sum(v > ACTIVE for v in report.mean_variance) == 2
    assert strongest(report)[-1] == 1 and "2/3 active units" in report.line()


def test_a_traversal_sweeps_one_dimension_per_row_and_holds_the_others():
    model = vae()
    mu0 = np.array([0.3, -0.2, 1.1])
    got = traversal(model, np, mu0, [2, 0])
    for row, j in enumerate([2, 0]):
        z = np.repeat(mu0[None], len(TRAVERSAL), axis=0)
        z[:, j] = TRAVERSAL
        np.testing.assert_allclose(got[row * len(TRAVERSAL):(row + 1) * len(TRAVERSAL)], model.decode(z), rtol=1e-6)
