"""Gradient checks of every layer, in float64, on every backend; and the layers' errors."""

import numpy as np
import pytest

from nn import Dense, Generator, LeakyReLU, ReLU, Sequential, Sigmoid, Tanh
from nn.backend import CHECK_DTYPE, BackendError, to_numpy
from nn.gradcheck import TOLERANCE, check_layer, rel_error

F64 = CHECK_DTYPE  # gradient checks run in float64
TOL = TOLERANCE  # nn/gradcheck.py says why


def away_from_kink(x, xp, margin=0.1):
    """Move inputs out of (-margin, margin): at 0, ReLU has no derivative and the
    centred difference straddles the kink."""
    return xp.where(x >= 0, x + margin, x - margin)


def assert_layer_gradients(layer, x, rng, tol=TOL):
    errors = check_layer(layer, x, rng.normal(tuple(layer.forward(x).shape), F64)).errors
    assert max(errors.values()) < tol, errors


@pytest.mark.parametrize("init", ["he", "xavier"])
def test_dense_gradients(xp, init):
    rng = Generator(0, xp)
    assert_layer_gradients(Dense(6, 4, rng, init=init, dtype=F64), rng.normal((5, 6), F64), rng)


@pytest.mark.parametrize("make_layer", [ReLU, Sigmoid, Tanh, lambda: LeakyReLU(0.1)],
                         ids=["ReLU", "Sigmoid", "Tanh", "LeakyReLU"])
def test_activation_gradients(xp, make_layer):
    rng = Generator(1, xp)
    x = away_from_kink(2.0 * rng.normal((4, 7), F64), xp)
    assert_layer_gradients(make_layer(), x, rng)


def test_sequential_gradients_through_composition(xp):
    rng = Generator(2, xp)
    net = Sequential(Dense(5, 8, rng, dtype=F64), ReLU(), Dense(8, 8, rng, dtype=F64), Tanh(),
                     Dense(8, 3, rng, init="xavier", dtype=F64), Sigmoid())
    assert_layer_gradients(net, rng.normal((4, 5), F64), rng)
    assert set(net.grads) == set(net.params) == {"0.W", "0.b", "2.W", "2.b", "4.W", "4.b"}


class TransposedDense(Dense):
    """A Dense whose weight gradient is transposed (dout.T @ x instead of x.T @ dout)."""

    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["W"] = dout.T @ self.x  # the same shape only because the test's W is square
        return dx


class ScaledDense(Dense):
    """A Dense whose weight gradient is 1% too large."""

    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["W"] = self.grads["W"] * 1.01
        return dx


@pytest.mark.parametrize("broken", [TransposedDense, ScaledDense])
def test_checker_catches_a_wrong_backward(broken):
    rng = Generator(3, np)
    layer = broken(4, 4, rng, dtype=F64)
    errors = check_layer(layer, rng.normal((3, 4), F64), rng.normal((3, 4), F64)).errors
    assert errors["W"] > 1e-3, errors  # far above the tolerance
    assert errors["x"] < TOL and errors["b"] < TOL  # and it blames only W


def test_check_layer_returns_both_gradients_for_its_caller_to_compare():
    rng = Generator(3, np)
    layer = TransposedDense(4, 4, rng, dtype=F64)
    x, dout = rng.normal((3, 4), F64), rng.normal((3, 4), F64)
    check = check_layer(layer, x, dout)
    assert set(check.analytic) == set(check.numerical) == set(check.errors) == {"x", "W", "b"}
    np.testing.assert_array_equal(check.analytic["W"], dout.T @ x)  # what backward gave
    np.testing.assert_allclose(check.numerical["W"], x.T @ dout, rtol=1e-8)  # what dL/dW is
    assert check.errors["W"] == rel_error(check.analytic["W"], check.numerical["W"])


def test_rel_error_is_zero_for_equal_and_one_for_opposite():
    a = np.array([1.0, -2.0, 0.0])
    assert rel_error(a, a) == 0.0
    assert rel_error(a, -a) == 1.0


def test_sigmoid_is_stable_at_large_inputs(xp):
    x = xp.asarray([[-1000.0, -40.0, -5.0, 0.0, 5.0, 40.0, 1000.0]], dtype=xp.float32)
    y = to_numpy(Sigmoid().forward(x))  # RuntimeWarnings (overflow) are errors in this suite
    expected = 1 / (1 + np.exp(-np.array([[-700.0, -40.0, -5.0, 0.0, 5.0, 40.0, 700.0]])))
    # Absolute accuracy of float32 rounding everywhere. (Relative accuracy in the far tail,
    # sigmoid(-40) = 4e-18, is not kept: nothing here takes the log of a sigmoid output.)
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-7)


def test_float32_stays_float32(xp):
    rng = Generator(4, xp)
    net = Sequential(Dense(3, 4, rng), ReLU(), Dense(4, 2, rng), Sigmoid())
    x = rng.normal((2, 3))
    y = net.forward(x)
    dx = net.backward(y)
    assert y.dtype == dx.dtype == xp.float32
    assert all(g.dtype == xp.float32 for g in net.grads.values())


def test_first_layer_can_skip_its_input_gradient():
    rng = Generator(5, np)
    layer = Dense(3, 2, rng)
    layer.input_grad = False
    layer.forward(rng.normal((4, 3)))
    assert layer.backward(rng.normal((4, 2))) is None
    assert layer.grads["W"].shape == (3, 2)


def test_dense_rejects_wrong_width():
    layer = Dense(4, 2, Generator(0, np))
    with pytest.raises(ValueError, match=r"expects input of shape \(N, 4\), got \(3, 5\)"):
        layer.forward(np.zeros((3, 5), dtype=np.float32))


def test_mixed_backends_are_refused():
    import array_api_strict

    layer = Dense(4, 2, Generator(0, array_api_strict))
    with pytest.raises(BackendError, match="different backends"):
        layer.forward(np.zeros((3, 4), dtype=np.float32))


def test_unknown_init_lists_the_valid_ones():
    with pytest.raises(ValueError, match="choose one of he, xavier"):
        Dense(4, 2, Generator(0, np), init="kaiming")


@pytest.mark.parametrize("init, variance", [("he", 2 / 400), ("xavier", 2 / 600), ("uniform", 1 / (3 * 400))])
def test_init_variance(init, variance):
    layer = Dense(400, 200, Generator(0, np), init=init)
    W, b = layer.params["W"], layer.params["b"]
    assert abs(W.var() / variance - 1) < 0.02 and abs(W.mean()) < 0.01 * W.std()
    if init == "uniform":  # PyTorch's nn.Linear default: W and b uniform in +-1/sqrt(fan_in)
        assert np.abs(W).max() <= 1 / 20 and np.abs(b).max() <= 1 / 20 and abs(b.var() / variance - 1) < 0.2
    else:
        assert not np.any(b)


def test_state_dict_round_trips_through_npz(tmp_path, xp):
    from lab.files import load_npz, save_npz

    rng = Generator(6, xp)
    net = Sequential(Dense(3, 5, rng), ReLU(), Dense(5, 2, rng))
    save_npz(tmp_path / "net.npz", net.state_dict())
    other = Sequential(Dense(3, 5, Generator(7, xp)), ReLU(), Dense(5, 2, Generator(8, xp)))
    W_before = other.params["0.W"]
    state, _ = load_npz(tmp_path / "net.npz")
    other.load_state_dict(state)
    for name, p in net.params.items():
        np.testing.assert_array_equal(to_numpy(other.params[name]), to_numpy(p))
    assert other.params["0.W"] is W_before  # loaded in place: an optimiser's references stay valid


def test_loading_a_wrong_shape_names_the_parameter_and_both_shapes():
    net = Sequential(Dense(3, 5, Generator(0, np)))
    state = {"0.W": np.zeros((3, 4), np.float32), "0.b": np.zeros(5, np.float32)}
    with pytest.raises(ValueError, match=r"parameter '0.W' has shape \(3, 5\) here but \(3, 4\) in the state"):
        net.load_state_dict(state)


def test_loading_missing_parameters_names_them():
    net = Sequential(Dense(3, 5, Generator(0, np)))
    with pytest.raises(ValueError, match=r"missing \['0.b'\]"):
        net.load_state_dict({"0.W": np.zeros((3, 5), np.float32)})
