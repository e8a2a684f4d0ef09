"""Losses: values against independent formulas, gradients against centred differences."""

import math

import numpy as np
import pytest

from nn import Generator, bce, free_bits_kl, gaussian_kl, gaussian_nll, kl_per_dimension, mse, softmax_cross_entropy
from nn.backend import CHECK_DTYPE, to_numpy
from nn.gradcheck import TOLERANCE, check_gradients

F64 = CHECK_DTYPE  # gradient checks run in float64
TOL = TOLERANCE


def inputs(xp, seed=0, shape=(4, 6)):
    rng = Generator(seed, xp)
    x = xp.asarray(np.random.default_rng(seed).uniform(0, 1, shape))  # targets in [0, 1]
    return rng, rng.normal(shape, F64), x


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_mse_gradient(xp, reduction):
    _, x_hat, x = inputs(xp)
    _, dx_hat = mse(x_hat, x, reduction)
    errors = check_gradients(lambda: mse(x_hat, x, reduction)[0], {"x_hat": x_hat}, {"x_hat": dx_hat})
    assert errors["x_hat"] < TOL, errors


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_bce_gradient(xp, reduction):
    _, logits, x = inputs(xp, seed=1)
    _, dlogits = bce(logits, x, reduction)
    errors = check_gradients(lambda: bce(logits, x, reduction)[0], {"logits": logits}, {"logits": dlogits})
    assert errors["logits"] < TOL, errors


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_kl_gradients(xp, reduction):
    rng, mu, _ = inputs(xp, seed=2, shape=(5, 3))
    logvar = rng.normal((5, 3), F64)
    _, dmu, dlogvar = gaussian_kl(mu, logvar, reduction)
    errors = check_gradients(lambda: gaussian_kl(mu, logvar, reduction)[0],
                             {"mu": mu, "logvar": logvar}, {"mu": dmu, "logvar": dlogvar})
    assert max(errors.values()) < TOL, errors


def test_mse_value_is_summed_over_features_and_averaged_over_batch():
    x_hat = np.array([[1.0, 2.0], [0.0, 0.0]])
    x = np.zeros((2, 2))
    assert float(mse(x_hat, x)[0]) == (1 + 4 + 0 + 0) / 2  # per image
    assert float(mse(x_hat, x, "mean")[0]) == (1 + 4 + 0 + 0) / 4  # per element


def test_bce_matches_the_textbook_formula_where_that_is_safe():
    _, logits, x = inputs(np, seed=3)
    p = 1 / (1 + np.exp(-logits))
    textbook = -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p)) / x.shape[0]
    assert float(bce(logits, x)[0]) == pytest.approx(textbook, rel=1e-12)


def test_bce_is_finite_at_saturated_logits(xp):
    logits = xp.asarray([[-1000.0, 1000.0, -50.0, 50.0]], dtype=xp.float32)
    x = xp.asarray([[1.0, 0.0, 0.0, 1.0]], dtype=xp.float32)
    loss, dlogits = bce(logits, x)  # RuntimeWarnings (overflow, log of 0) fail this suite
    assert float(loss) == pytest.approx(2000.0, rel=1e-6)  # -log sigmoid(-1000) = 1000, twice
    np.testing.assert_allclose(to_numpy(dlogits), [[-1.0, 1.0, 0.0, 0.0]], atol=1e-6)


def test_kl_matches_the_formula_in_terms_of_std():
    # KL(N(m, s^2) || N(0, 1)) = -log s + (s^2 + m^2) / 2 - 1/2, written with the standard
    # deviation s, so a logvar / log-std mix-up inside gaussian_kl would fail here.
    m, s = 0.7, 1.9
    mu, logvar = np.array([[m]]), np.array([[math.log(s**2)]])
    expected = -math.log(s) + (s**2 + m**2) / 2 - 0.5
    assert float(gaussian_kl(mu, logvar)[0]) == pytest.approx(expected, rel=1e-12)


def test_kl_is_zero_exactly_at_the_prior():
    kl, dmu, dlogvar = gaussian_kl(np.zeros((3, 2)), np.zeros((3, 2)))
    assert float(kl) == 0.0 and not dmu.any() and not dlogvar.any()


def test_unknown_reduction_lists_the_valid_ones():
    with pytest.raises(ValueError, match="choose one of sum, mean"):
        mse(np.zeros((2, 2)), np.zeros((2, 2)), reduction="batchmean")


def class_inputs(xp, seed=4):
    """logits: (5, 4) float64 and labels: (5,), every class at least once."""
    return Generator(seed, xp).normal((5, 4), F64), xp.asarray([0, 3, 1, 2, 3])


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_softmax_cross_entropy_gradient(xp, reduction):
    logits, labels = class_inputs(xp)
    _, dlogits = softmax_cross_entropy(logits, labels, reduction)
    errors = check_gradients(lambda: softmax_cross_entropy(logits, labels, reduction)[0],
                             {"logits": logits}, {"logits": dlogits})
    assert errors["logits"] < TOL, errors


def test_softmax_cross_entropy_matches_minus_log_softmax_of_the_true_class():
    logits, labels = class_inputs(np, seed=5)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)  # the textbook softmax, safe at this size
    picked = p[np.arange(len(labels)), labels]
    assert float(softmax_cross_entropy(logits, labels)[0]) == pytest.approx(-np.log(picked).mean(), rel=1e-12)
    assert float(softmax_cross_entropy(logits, labels, "mean")[0]) == pytest.approx(
        -np.log(picked).sum() / logits.size, rel=1e-12)  # per element: N * C
    np.testing.assert_allclose(softmax_cross_entropy(logits, labels)[1],
                               (p - np.eye(logits.shape[1])[labels]) / len(labels), rtol=1e-12)


def test_softmax_cross_entropy_is_finite_at_huge_logits(xp):
    logits = xp.asarray([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 1000.0]], dtype=xp.float32)
    labels = xp.asarray([1, 2])
    loss, dlogits = softmax_cross_entropy(logits, labels)  # RuntimeWarnings (overflow, log of 0) fail this suite
    # -log p: 2000 for the first row (its label's logit is 2000 below the max), log 2 for the tie.
    assert float(loss) == pytest.approx((2000.0 + math.log(2.0)) / 2, rel=1e-6)
    np.testing.assert_allclose(to_numpy(dlogits), [[0.5, -0.5, 0.0], [0.0, 0.25, -0.25]], atol=1e-7)


@pytest.mark.parametrize("labels, message", [
    ([0, 1, 3, 1, 0], r"labels must lie in \[0, 3\) for 3 classes, got labels from 0 to 3"),
    ([0, -1, 2, 1, 0], r"labels must lie in \[0, 3\) .* got labels from -1 to 2"),
    ([0, 1, 2], r"labels must be integers of shape \(5,\) for inputs of shape \(5, 3\), got labels of shape \(3,\)"),
    ([0.0, 1.0, 2.0, 1.0, 0.0], r"labels must be integers .* and dtype float64"),
], ids=["too-large", "negative", "wrong-length", "not-integers"])
def test_softmax_cross_entropy_refuses_bad_labels_naming_both(labels, message):
    logits = np.zeros((5, 3))
    with pytest.raises(ValueError, match=message) as error:
        softmax_cross_entropy(logits, np.asarray(labels))
    assert "\n" not in str(error.value)  # one line


# --- The learned decoder variance and free bits (Part Four) ---------------------------------


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("x_logvar", [math.log(0.5), -3.0, 1.2])
def test_gaussian_nll_gradients(xp, reduction, x_logvar):
    _, x_hat, x = inputs(xp, seed=5)
    logvar = xp.asarray([x_logvar], dtype=xp.float64)
    _, dx_hat, dx_logvar = gaussian_nll(x_hat, x, logvar, reduction)
    assert tuple(dx_logvar.shape) == (1,)
    errors = check_gradients(lambda: gaussian_nll(x_hat, x, logvar, reduction)[0],
                             {"x_hat": x_hat, "x_logvar": logvar}, {"x_hat": dx_hat, "x_logvar": dx_logvar})
    assert max(errors.values()) < TOL, errors


def test_gaussian_nll_is_the_normal_density_and_mse_plus_a_constant_at_variance_one_half():
    from scipy import stats

    rng = np.random.default_rng(7)
    x_hat, x = rng.uniform(0, 1, (3, 5)), rng.uniform(0, 1, (3, 5))
    for var in (0.5, 0.01, 2.0):
        loss, _, _ = gaussian_nll(x_hat, x, np.array([math.log(var)]))
        assert float(loss) == pytest.approx(-stats.norm.logpdf(x, x_hat, math.sqrt(var)).sum() / 3, rel=1e-12)
    loss, dx_hat, _ = gaussian_nll(x_hat, x, np.array([math.log(0.5)]))
    assert float(loss) - float(mse(x_hat, x)[0]) == pytest.approx(5 / 2 * math.log(math.pi), rel=1e-12)
    np.testing.assert_allclose(dx_hat, mse(x_hat, x)[1], rtol=1e-12)


def test_the_best_shared_variance_is_the_mean_squared_error_per_pixel():
    # dL/dx_logvar = 0 where sigma**2 = 1/(N D) sum (x - x_hat)**2: the gradient is 0 there and nowhere else
    rng = np.random.default_rng(8)
    x_hat, x = rng.uniform(0, 1, (4, 6)), rng.uniform(0, 1, (4, 6))
    best = np.mean((x - x_hat) ** 2)
    assert abs(float(gaussian_nll(x_hat, x, np.array([math.log(best)]))[2][0])) < 1e-12
    assert float(gaussian_nll(x_hat, x, np.array([math.log(best) + 0.1]))[2][0]) > 0


def test_gaussian_nll_refuses_a_variance_of_another_shape():
    with pytest.raises(ValueError, match=r"shape \(1,\), got shape \(6,\)"):
        gaussian_nll(np.zeros((2, 6)), np.zeros((2, 6)), np.zeros(6))


def test_kl_per_dimension_is_zero_at_the_prior():
    mu, logvar = np.array([[0.0, 1.0], [0.0, -1.0]]), np.array([[0.0, np.log(2.0)], [0.0, np.log(2.0)]])
    assert np.allclose(kl_per_dimension(mu, logvar)[0], [0.0, 0.5 * (1 + 2 - 1 - np.log(2.0))])


def test_kl_per_dimension_splits_the_kl_and_its_gradients():
    rng = Generator(9, np)
    mu, logvar = rng.normal((5, 4), F64), rng.normal((5, 4), F64)
    kl_j, dmu, dlogvar = kl_per_dimension(mu, logvar)
    kl, dmu_all, dlogvar_all = gaussian_kl(mu, logvar)
    assert kl_j.shape == (4,) and float(np.sum(kl_j)) == pytest.approx(float(kl), rel=1e-12)
    np.testing.assert_allclose(kl_j, [float(gaussian_kl(mu[:, [j]], logvar[:, [j]])[0]) for j in range(4)])
    np.testing.assert_allclose(dmu, dmu_all, rtol=1e-12)
    np.testing.assert_allclose(dlogvar, dlogvar_all, rtol=1e-12)


@pytest.mark.parametrize("floor", [0.0, 0.3, 0.8, 5.0])
def test_free_bits_gradients(xp, floor):
    rng = Generator(10, xp)
    mu, logvar = rng.normal((6, 4), F64), rng.normal((6, 4), F64)
    kl_j = to_numpy(kl_per_dimension(mu, logvar)[0])
    assert np.min(np.abs(kl_j - floor)) > 1e-3  # no dimension at its kink, where F has no derivative
    paid, kl, dmu, dlogvar = free_bits_kl(mu, logvar, floor)
    assert float(paid) == pytest.approx(float(np.sum(np.maximum(kl_j, floor))), rel=1e-12)
    assert float(kl) == pytest.approx(float(np.sum(kl_j)), rel=1e-12)
    errors = check_gradients(lambda: free_bits_kl(mu, logvar, floor)[0],
                             {"mu": mu, "logvar": logvar}, {"mu": dmu, "logvar": dlogvar})
    assert max(errors.values()) < TOL, errors
    # below the floor a dimension gets no gradient at all; above it, the KL's own
    below = kl_j < floor
    assert np.all(to_numpy(dmu)[:, below] == 0) and np.all(to_numpy(dlogvar)[:, below] == 0)
    np.testing.assert_allclose(to_numpy(dmu)[:, ~below], to_numpy(gaussian_kl(mu, logvar)[1])[:, ~below])


def test_free_bits_with_the_floor_applied_per_image_fails_the_check():
    # The floor is on each dimension's KL averaged over the batch; masking per image is another
    # objective, and the check says so.
    rng = Generator(11, np)
    mu, logvar = rng.normal((6, 4), F64), rng.normal((6, 4), F64)
    floor = 0.8
    paid, _, dmu, dlogvar = free_bits_kl(mu, logvar, floor)
    per_image = 0.5 * (np.exp(logvar) + mu**2 - 1 - logvar)  # each image's KL of each dimension
    wrong = (per_image > floor).astype(float)
    _, dmu_all, dlogvar_all = gaussian_kl(mu, logvar)
    errors = check_gradients(lambda: free_bits_kl(mu, logvar, floor)[0], {"mu": mu, "logvar": logvar},
                             {"mu": dmu_all * wrong, "logvar": dlogvar_all * wrong})
    assert max(errors.values()) > 1e-2, errors


def test_losses_of_part_four_equal_autograd():
    torch = pytest.importorskip("torch", reason="PyTorch is an optional, independent reference")
    rng = np.random.default_rng(12)
    x_hat, x, logvar = rng.uniform(0, 1, (5, 7)), rng.uniform(0, 1, (5, 7)), np.array([-1.3])
    t = {name: torch.tensor(a, dtype=torch.float64, requires_grad=True)
         for name, a in (("x_hat", x_hat), ("logvar", logvar))}
    nll = -torch.distributions.Normal(t["x_hat"], torch.exp(0.5 * t["logvar"])).log_prob(torch.from_numpy(x))
    (nll.sum() / 5).backward()
    loss, dx_hat, dx_logvar = gaussian_nll(x_hat, x, logvar)
    assert float(loss) == pytest.approx(nll.sum().item() / 5, rel=1e-12)
    np.testing.assert_allclose(dx_hat, t["x_hat"].grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(dx_logvar, t["logvar"].grad.numpy(), rtol=1e-10)

    mu, lv = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    mu_t, lv_t = (torch.tensor(a, requires_grad=True) for a in (mu, lv))
    q = torch.distributions.Normal(mu_t, torch.exp(0.5 * lv_t))
    kl_j = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).mean(dim=0)
    torch.clamp(kl_j, min=0.8).sum().backward()
    paid, _, dmu, dlogvar = free_bits_kl(mu, lv, 0.8)
    assert float(paid) == pytest.approx(torch.clamp(kl_j, min=0.8).sum().item(), rel=1e-12)
    np.testing.assert_allclose(dmu, mu_t.grad.numpy(), rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(dlogvar, lv_t.grad.numpy(), rtol=1e-10, atol=1e-15)
