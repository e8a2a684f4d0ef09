"""Optimisers: Adam against Kingma & Ba's Algorithm 1 by hand; resuming is seamless."""

import numpy as np
import pytest

from nn import SGD, Adam
from nn.backend import to_numpy

# A fixed sequence of gradients for a 3-element parameter.
GRADS = [np.array([0.1, -0.2, 0.3]), np.array([0.5, 0.0, -0.1]), np.array([-0.3, 0.4, 0.2]),
         np.array([0.05, 0.05, -0.5])]


def adam_by_hand(theta, grads, alpha, beta1, beta2, eps):
    """Kingma & Ba (2015), Algorithm 1, line by line, in plain Python floats."""
    theta = list(theta)
    m = [0.0] * len(theta)
    v = [0.0] * len(theta)
    for t, g in enumerate(grads, start=1):
        for i, g_i in enumerate(g):
            m[i] = beta1 * m[i] + (1 - beta1) * g_i
            v[i] = beta2 * v[i] + (1 - beta2) * g_i**2
            m_hat = m[i] / (1 - beta1**t)
            v_hat = v[i] / (1 - beta2**t)
            theta[i] = theta[i] - alpha * m_hat / (v_hat**0.5 + eps)
    return theta


def run(optimizer_cls, xp, grads, **kwargs):
    params = {"theta": xp.asarray([1.0, 2.0, -1.0], dtype=xp.float64)}
    opt = optimizer_cls(params, **kwargs)
    for g in grads:
        opt.step({"theta": xp.asarray(g)})
    return params, opt


@pytest.mark.parametrize("eps", [1e-8, 0.1])  # a large eps makes its placement visible
def test_adam_matches_algorithm_1(xp, eps):
    params, _ = run(Adam, xp, GRADS, lr=0.01, betas=(0.9, 0.999), eps=eps)
    expected = adam_by_hand([1.0, 2.0, -1.0], GRADS, 0.01, 0.9, 0.999, eps)
    np.testing.assert_allclose(to_numpy(params["theta"]), expected, rtol=1e-12)


def test_adam_updates_in_place(xp):
    params = {"theta": xp.asarray([1.0, 2.0, -1.0], dtype=xp.float64)}
    theta = params["theta"]
    Adam(params, lr=0.1).step({"theta": xp.asarray(GRADS[0])})
    assert params["theta"] is theta and float(theta[0]) != 1.0


def test_sgd_momentum_by_hand(xp):
    params, _ = run(SGD, xp, GRADS[:2], lr=0.1, momentum=0.9)
    u1 = GRADS[0]
    u2 = 0.9 * u1 + GRADS[1]
    np.testing.assert_allclose(to_numpy(params["theta"]), np.array([1.0, 2.0, -1.0]) - 0.1 * u1 - 0.1 * u2)


@pytest.mark.parametrize("optimizer_cls, kwargs", [(Adam, {"lr": 0.01}), (SGD, {"lr": 0.1, "momentum": 0.9})])
def test_resuming_from_saved_state_follows_the_same_trajectory(xp, optimizer_cls, kwargs):
    straight, _ = run(optimizer_cls, xp, GRADS, **kwargs)
    params, first = run(optimizer_cls, xp, GRADS[:2], **kwargs)
    saved_theta, saved_state = to_numpy(params["theta"]).copy(), first.state_dict()
    resumed = {"theta": xp.asarray(saved_theta)}
    second = optimizer_cls(resumed, **kwargs)
    second.load_state_dict(saved_state)
    for g in GRADS[2:]:
        second.step({"theta": xp.asarray(g)})
    np.testing.assert_array_equal(to_numpy(resumed["theta"]), to_numpy(straight["theta"]))


def test_adam_without_restored_state_takes_a_different_path():
    # The resume test above would pass vacuously if the state did not matter.
    straight, _ = run(Adam, np, GRADS, lr=0.01)
    params, _ = run(Adam, np, GRADS[:2], lr=0.01)
    fresh = Adam(params, lr=0.01)
    for g in GRADS[2:]:
        fresh.step({"theta": g})
    assert not np.allclose(params["theta"], straight["theta"])


def test_loading_state_of_another_shape_is_refused():
    opt = Adam({"theta": np.zeros(3)})
    state = Adam({"theta": np.zeros(4)}).state_dict()
    with pytest.raises(ValueError, match=r"optimiser state 'm.theta' has shape \(3,\) here but \(4,\) in the state"):
        opt.load_state_dict(state)
    with pytest.raises(ValueError, match=r"optimiser states do not match: missing \['v.theta'\]"):
        opt.load_state_dict({k: v for k, v in Adam({"theta": np.zeros(3)}).state_dict().items() if k != "v.theta"})


def test_step_without_a_gradient_says_what_is_missing():
    with pytest.raises(ValueError, match=r"no gradient given for \['b'\]"):
        Adam({"W": np.zeros(2), "b": np.zeros(2)}).step({"W": np.ones(2)})


@pytest.mark.parametrize("lr", [0.0, -1e-3])
def test_learning_rate_must_be_positive(lr):
    with pytest.raises(ValueError, match="learning rate must be > 0"):
        Adam({"W": np.zeros(2)}, lr=lr)


def test_adam_keeps_first_moments_out_of_subnormal_range(xp):
    # Weights that never get a gradient: m shrinks by 0.9 a step. Without the flush it
    # would stall at the smallest subnormal (2 * tiny * 0.9 rounds back up) for good.
    tiny = np.finfo(np.float32).tiny  # the smallest normal float32
    params = {"W": xp.ones(5, dtype=xp.float32)}
    opt = Adam(params, lr=1e-3)
    opt.state["m"]["W"][...] = xp.asarray(np.array([1e-39, -1e-40, 1e-32, 3e-30, 0.5], np.float32))
    opt.state["v"]["W"][...] = 1.0
    zero = xp.zeros(5, dtype=xp.float32)
    for _ in range(300):  # 300 steps without gradient: 0.9**300 * 0.5 is about 1e-14
        opt.step({"W": zero})
        m = to_numpy(opt.state["m"]["W"])
        assert not np.any((m != 0) & (np.abs(m) < 10 * tiny)), m  # no subnormal, nor about to become one
    assert m[0] == m[1] == m[2] == 0.0
    assert m[4] == pytest.approx(0.5 * 0.9**300, rel=1e-4)  # a normal moment decays as Adam says
