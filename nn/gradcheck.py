"""Checking a backward pass against the definition of the derivative.

numerical_grad estimates df/dx one coordinate at a time, from f evaluated a step h to
either side of x. The smaller h, the closer the estimate comes to the derivative, until
rounding pulls the other way: f is only known to about 1e-16 * |f|, and dividing by a
small step magnifies that. For losses of size 1 to 100 in float64, h = 1e-4 balances the two.

Derived in docs/derivations.md, "Checking a gradient": the centred difference, whose error
shrinks like h**2 (a one-sided difference's only like h),

    df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / (2h).

How close is close enough, stated here once and used by every test: a backward passes
when the largest elementwise relative error (rel_error) is below TOLERANCE = 1e-6. A
correct one does far better in float64: 1e-11 to 1e-8 for a single layer, at most about
2e-7 for a whole VAE (many more operations between a weight and the loss). A wrong one
(a transposed or 1%-scaled gradient, log std read as log variance) is off by 1e-3 or more.
"""

from dataclasses import dataclass

from .backend import namespace

TOLERANCE = 1e-6


def numerical_grad(f, x, h=1e-4):
    """Finite-difference estimate of df/dx.   x: any shape; returns an array of x's shape.

    f: a function of no arguments returning a scalar, which reads `x`. Each coordinate
    of `x` is nudged in place, f is evaluated, and the coordinate is restored, so x is
    unchanged afterwards. h: the step, the caller's to choose. Use float64: in float32,
    rounding swamps the difference.
    """
    xp = namespace(x)
    grad = xp.zeros_like(x)
    # Views (copy=False refuses to copy), so that writing x_flat[i] moves x itself.
    x_flat = xp.reshape(x, (-1,), copy=False)
    grad_flat = xp.reshape(grad, (-1,), copy=False)
    for i in range(x_flat.shape[0]):
        x_i = float(x_flat[i])
        x_flat[i] = x_i + h
        f_plus = float(f())
        x_flat[i] = x_i - h
        f_minus = float(f())
        x_flat[i] = x_i
        grad_flat[i] = (f_plus - f_minus) / (2 * h)
    return grad


def rel_error(a, b):
    """max_i |a_i - b_i| / max(|a_i| + |b_i|, 1e-8): 0 when equal, 1 when unrelated."""
    xp = namespace(a, b)
    return float(xp.max(xp.abs(a - b) / xp.maximum(xp.abs(a) + xp.abs(b), 1e-8)))


def check_gradients(f, wrt, analytic, h=1e-4):
    """Relative error between `analytic[name]` and the numerical gradient of f
    with respect to `wrt[name]`, for every name: {name: rel_error}."""
    return {name: rel_error(analytic[name], numerical_grad(f, x, h)) for name, x in wrt.items()}


@dataclass
class GradientCheck:
    """A backward against centred differences, by the name of what is differentiated ("x", "W", ...):
    `analytic` holds the gradients backward gave, `numerical` their estimates; `errors` compares them."""

    analytic: dict
    numerical: dict

    @property
    def errors(self):
        """{name: rel_error of the two gradients}."""
        return {name: rel_error(self.analytic[name], self.numerical[name]) for name in self.numerical}


def check_layer(layer, x, dout):
    """A layer's backward checked for its input "x" and every parameter: a GradientCheck.

    The scalar checked is f = sum(layer.forward(x) * dout): its gradient with respect
    to the output is exactly `dout`, so backward(dout) must return df/dx and fill
    layer.grads with df/dparam. The two gradients come back uncompared, for a caller that
    reports a gradient of the wrong shape itself (the grader); `.errors` compares them.
    """
    xp = namespace(x, dout)

    def f():
        return xp.sum(layer.forward(x) * dout)

    f()
    analytic = {"x": layer.backward(dout), **layer.grads}
    return GradientCheck(analytic, {name: numerical_grad(f, p) for name, p in {"x": x, **layer.params}.items()})
