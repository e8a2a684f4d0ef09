"""The lab as exercises: which functions a student writes, and how each is checked.

EXERCISES holds one record per function to write: its file and qualified name, the section
of docs/derivations.md to read, and its check. The grader (course/grading.py) runs each check.
Adding an exercise is adding one record (and, if it has any, its classic mistakes in
course/mistakes.py). This file holds no answer: the student's workspace keeps it as it is, and
a process that runs a student's code can import it without the answers coming with it.

A check calls its function the way the library does, on the backend it is given (NumPy, or
array_api_strict, which has only what NumPy and CuPy share), in float64, and gives it copies
of its inputs, to see afterwards whether it changed them in place.
"""

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from models import VAE, AutoEncoder
from nn import Conv2d, ConvTranspose2d, Dense, Generator, ReLU, Sigmoid, Tanh, gaussian_kl, gradcheck, losses
from nn.backend import CHECK_DTYPE, namespace, to_backend, to_numpy
from nn.optim import Adam

from lab.config import named

F64 = CHECK_DTYPE  # every check runs in float64, where centred differences are accurate


@dataclass(frozen=True)
class Exercise:
    """One function to write. `section`: the heading of docs/derivations.md that derives it.

    check(xp) -> Checked: what the function under test gives on backend `xp` and what it
    should give (computed independently, or by centred differences), and which inputs it
    changed. per_part: report the worst error of each part of a model ("encoder",
    "decoder", ...) rather than of each of its parameters. inputs_hint: what to do instead of
    changing an input in place. steps: ((part, n), ...), the numbered step of its section that
    gives each part, said of a wrong one; a model's in the order its backward computes them.
    """

    order: int
    file: str
    qualname: str
    section: str
    teaches: str
    check: Callable
    per_part: bool = False
    inputs_hint: str = "compute a new array"
    steps: tuple = ()

    @property
    def stub_message(self):
        return (f'exercise {self.order}, {self.qualname}: not written yet. Derive it in docs/derivations.md, '
                f'"{self.section}", then write it here.')


@dataclass
class Checked:
    """What a check found. got, expected: {name: array}, what the function gave and what it
    should have (NumPy or the check's backend). changed: the inputs it changed in place.
    symbols: {name: {"N": 5, ...}}, the numbers a wrong factor on that gradient may be
    named after. parts: a model's {part: the attribute holding it} ("mu": "self.mu_head"),
    to say whose backward never ran."""

    got: dict
    expected: dict
    changed: tuple = ()
    symbols: dict = field(default_factory=dict)
    parts: dict = field(default_factory=dict)


class Inputs:
    """Copies of the arrays a function is given (`inputs[name]`), and of what they held, to
    tell afterwards which ones it changed in place. The check keeps the originals."""

    def __init__(self, **arrays):
        self.given = {name: fresh(a) for name, a in arrays.items()}
        self.before = {name: to_numpy(a).copy() for name, a in arrays.items()}

    def __getitem__(self, name):
        return self.given[name]

    def changed(self):
        return tuple(name for name, a in self.given.items()
                     if not np.array_equal(to_numpy(a), self.before[name], equal_nan=True))


def fresh(a):
    """A copy of the array `a`, on its backend."""
    return namespace(a).asarray(a, copy=True)


def same(a, b):
    """Whether a and b are arrays of one shape holding the same numbers."""
    try:
        return np.array_equal(to_numpy(a), to_numpy(b), equal_nan=True)
    except Exception:  # not arrays at all
        return False


def each(names, **symbols):
    """The same symbols for every one of `names`: {name: symbols}."""
    return dict.fromkeys(names, symbols)


# --- What each exercise computes, and what it is checked against ---------------------------
#
# The functions are looked up on their modules (losses.mse, gradcheck.numerical_grad) when a
# check runs, so that a check runs whichever version the grader has put in place.


def numerical(f, wrt):
    """{name: df/d wrt[name]} by centred differences, with the numerical_grad in place: the
    reference, except while exercise 1 itself is graded."""
    return {name: gradcheck.numerical_grad(f, x) for name, x in wrt.items()}


# The steps numerical_grad is called with, beside its default: the library passes its own h
# (check_gradients(..., h)). For f = sum(c * x**3) the centred difference is exactly
# c * (3 x**2 + h**2), so the grader knows what each h must give; at h = 0.01 that is 1e-4
# from the derivative, which tells an estimate that uses its h from one that ignores it.
STEPS = (1e-2, 1e-3)


def check_numerical_grad(xp):
    rng = Generator(0, xp)
    x0, c = rng.uniform((3, 4), 0.5, 2.0, F64), rng.normal((3, 4), F64)  # 3 x**2 of size 1: h**2 shows
    got, changed = {}, set()
    for h in (None, *STEPS):
        given = Inputs(x=x0)  # f reads the very array numerical_grad nudges
        x = given["x"]
        got["grad" if h is None else f"grad(h={h:g})"] = gradcheck.numerical_grad(
            lambda: xp.sum(c * x**3), x, *(() if h is None else (h,)))
        changed.update(given.changed())
    x0, c = to_numpy(x0), to_numpy(c)
    expected = {"grad": 3 * x0**2 * c, **{f"grad(h={h:g})": c * (3 * x0**2 + h**2) for h in STEPS}}
    symbols = {"grad": {"h": 1e-4}, **{f"grad(h={h:g})": {"h": h} for h in STEPS}}  # 1e-4: the default
    return Checked(got, expected, tuple(changed), symbols)


def layer_check(make_layer, x_shape):
    """The check of a layer's backward: the gradients of x: x_shape and of every parameter,
    named as the scoreboard shows them ("dx", "dW", "db"), against centred differences of
    f = sum(layer.forward(x) * dout), dout of y's shape (nn/gradcheck.py, check_layer). The
    backward gets a copy of dout; f keeps the original. A layer with `input_grad` (the first
    layer of a network sets it False) runs its backward both ways: without dx it must still fill
    its grads and return None. A gradient it leaves out there, or gives otherwise than with dx,
    is checked as "dW, input_grad False"; a dx it returns shows as "dx, input_grad False"."""

    def check(xp):
        rng = Generator(1, xp)
        layer = make_layer(rng)
        x = rng.normal(x_shape, F64)
        dout = rng.normal(tuple(layer.forward(x).shape), F64)
        given = Inputs(dout=dout)
        got = {"dx": layer.backward(given["dout"]), **{f"d{name}": g for name, g in layer.grads.items()}}
        branches = hasattr(layer, "input_grad") and layer.params
        if branches:
            layer.input_grad, layer.grads = False, {}
            layer.forward(x)
            again = Inputs(dout=dout)
            dx = layer.backward(again["dout"])
            unlike = [name for name in layer.params if name not in layer.grads
                      or not same(layer.grads[name], got.get(f"d{name}"))]
            got |= {f"d{name}, input_grad False": layer.grads[name] for name in unlike if name in layer.grads}
            got |= {} if dx is None else {"dx, input_grad False": dx}
            layer.input_grad = True

        def f():
            return xp.sum(layer.forward(x) * dout)

        expected = {f"d{name}": g for name, g in numerical(f, {"x": x, **layer.params}).items()}
        if branches:
            expected |= {f"d{name}, input_grad False": expected[f"d{name}"] for name in unlike}
        changed = set(given.changed()) | (set(again.changed()) if branches else set())
        return Checked(got, expected, tuple(changed), each(expected, N=x_shape[0]))

    return check


# The convolutions' geometry: kernel 3 at stride 2, so that windows overlap (a pixel under two
# windows gets two terms, which only an adding col2im gives it); padding 1, so that the padding
# is cropped from dx; images of 5 x 3, odd and not square, and unequal channel counts, so that a transposed or
# misordered axis changes a shape, or else the numbers; N = 3, so that a factor of 2 is not
# named after N. ConvTranspose2d is the adjoint of the Conv2d: from its 3 x 2 output back to
# 5 x 3. Each check takes 0.01 s on NumPy, 0.25 s on array_api_strict.
CONV = dict(kernel_size=3, stride=2, padding=1, dtype=F64)


def check_mse(xp):
    rng = Generator(2, xp)
    x_hat, x = rng.uniform((4, 6), 0.0, 1.0, F64), rng.uniform((4, 6), 0.0, 1.0, F64)
    given = Inputs(x_hat=x_hat, x=x)
    loss, dx_hat = losses.mse(given["x_hat"], given["x"])
    expected = {"L": np.sum((to_numpy(x_hat) - to_numpy(x)) ** 2) / 4,
                **numerical(lambda: losses.mse(fresh(x_hat), fresh(x))[0], {"dx_hat": x_hat})}
    return Checked({"L": loss, "dx_hat": dx_hat}, expected, given.changed(), each(expected, N=4))


def check_bce(xp):
    rng = Generator(3, xp)
    logits, x = rng.normal((4, 6), F64), rng.uniform((4, 6), 0.0, 1.0, F64)
    given = Inputs(logits=logits, x=x)
    loss, dlogits = losses.bce(given["logits"], given["x"])
    ln, xn = to_numpy(logits), to_numpy(x)
    p = 1 / (1 + np.exp(-ln))
    expected = {"L": -np.sum(xn * np.log(p) + (1 - xn) * np.log(1 - p)) / 4,
                **numerical(lambda: losses.bce(fresh(logits), fresh(x))[0], {"dlogits": logits})}
    return Checked({"L": loss, "dlogits": dlogits}, expected, given.changed(), each(expected, N=4))


def check_gaussian_kl(xp):
    rng = Generator(4, xp)
    mu, logvar = rng.normal((4, 3), F64), rng.normal((4, 3), F64)
    given = Inputs(mu=mu, logvar=logvar)
    kl, dmu, dlogvar = losses.gaussian_kl(given["mu"], given["logvar"])
    m, lv = to_numpy(mu), to_numpy(logvar)
    # KL(N(mu, var) || N(0, 1)) = (var + mu**2 - 1 - log var) / 2, averaged over the batch
    expected = {"KL": np.sum(np.exp(lv) + m**2 - 1 - lv) / 2 / 4,
                **numerical(lambda: losses.gaussian_kl(fresh(mu), fresh(logvar))[0], {"dmu": mu, "dlogvar": logvar})}
    return Checked({"KL": kl, "dmu": dmu, "dlogvar": dlogvar}, expected, given.changed(), each(expected, N=4))


# The decoder's log-variance in gaussian_nll's check: not the lab's log(1/2), where the loss is
# mse plus a constant and an answer that fixes the variance at 1/2 would pass; not 0, where
# sigma = sigma**2 hides a gradient divided by the one for the other; and far from the best
# variance (S / (N D), about 0.16 here), where dx_logvar is 0 and its sign cannot show.
X_LOGVAR = -1.0


def check_gaussian_nll(xp):
    rng = Generator(5, xp)
    x_hat, x = rng.uniform((4, 6), 0.0, 1.0, F64), rng.uniform((4, 6), 0.0, 1.0, F64)
    x_logvar = to_backend(np.array([X_LOGVAR]), xp)  # (1,), float64
    given = Inputs(x_hat=x_hat, x=x, x_logvar=x_logvar)
    loss, dx_hat, dx_logvar = losses.gaussian_nll(given["x_hat"], given["x"], given["x_logvar"])
    var = np.exp(X_LOGVAR)
    # -log N(x; x_hat, var) of each pixel = ((x - x_hat)**2 / var + log(2 pi var)) / 2, summed, averaged over the batch
    expected = {"L": np.sum((to_numpy(x) - to_numpy(x_hat)) ** 2 / var + np.log(2 * np.pi * var)) / 2 / 4,
                **numerical(lambda: losses.gaussian_nll(fresh(x_hat), fresh(x), fresh(x_logvar))[0],
                            {"dx_hat": x_hat, "dx_logvar": x_logvar})}
    return Checked({"L": loss, "dx_hat": dx_hat, "dx_logvar": dx_logvar}, expected, given.changed(),
                   each(expected, N=4, sigma=np.sqrt(var)))


def check_adam(xp):
    grads = [[0.1, -0.2, 0.3], [0.5, 0.0, -0.1], [-0.3, 0.4, 0.2], [0.05, 0.05, -0.5]]
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 0.1  # a large eps, so that where it goes shows
    params = {"p": xp.asarray([1.0, 2.0, -1.0], dtype=xp.float64)}
    opt = Adam(params, lr=lr, betas=(b1, b2), eps=eps)
    changed = set()
    for g in grads:  # p, m and v are updated in place; g must stay as it was given
        given = Inputs(g=xp.asarray(g, dtype=xp.float64))
        opt.step({"p": given["g"]})
        changed.update(given.changed())
    p, m, v = np.array([1.0, 2.0, -1.0]), np.zeros(3), np.zeros(3)
    for t, g in enumerate(np.array(grads), start=1):  # Kingma & Ba (2015), Algorithm 1, line by line
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        p = p - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return Checked({"p": params["p"], "m": opt.state["m"]["p"], "v": opt.state["v"]["p"]}, {"p": p, "m": m, "v": v},
                   tuple(changed))


# A model's checks: a draw (Generator(30)) where no gradient is within rounding of 0, nor a
# ReLU within h of its kink, and a batch x: (4, 6) of pixels in [0, 1].


def model_gradients(model, x, **noise):
    """Checked: dL/dparam from the model's backward, and by centred differences of the loss
    of the batch x. noise: fixed noise for forward (a VAE's eps), so that the loss is a
    deterministic function of the parameters."""

    def loss():
        return model.forward(x, **noise)["loss"]

    loss()
    model.backward()
    got = model.grads
    parts = {part: next(f"self.{attr}" for attr, value in vars(model).items() if value is layer)
             for part, layer in model.parts.items()}
    return Checked(got, numerical(loss, model.params), symbols=each(model.params, N=4), parts=parts)


def batch(xp):
    return to_backend(np.random.default_rng(6).uniform(0, 1, (4, 6)), xp)


def check_autoencoder(xp):
    return model_gradients(AutoEncoder(6, (5,), 2, rng=Generator(30, xp), dtype=F64), batch(xp))


def check_vae(xp):
    rng = Generator(30, xp)
    # The heads at full scale: at HEAD_SCALE's start, near the prior, the KL's gradients are near 0.
    vae = VAE(6, (5,), 2, beta=0.5, head_scale=1.0, rng=rng, dtype=F64)
    x, eps = batch(xp), rng.normal((4, 2), F64)
    checked = model_gradients(vae, x, eps=eps)
    # And the dL/dmu and dL/dlogvar its backward keeps, against the loss written from mu and logvar onwards.
    kept = {name: getattr(vae, name) for name in ("dmu", "dlogvar") if hasattr(vae, name)}
    mu, logvar = vae.encode(x)

    def loss():
        z = mu + xp.exp(0.5 * logvar) * eps
        return vae.recon_loss.forward(vae.decoder.forward(z), x) + vae.beta * gaussian_kl(mu, logvar)[0]

    checked.got = {**kept, **checked.got}
    checked.expected = {**checked.expected, **numerical(loss, {"dmu": mu, "dlogvar": logvar})}
    checked.symbols = each(checked.expected, N=4, beta=0.5)
    return checked


EXERCISES = (
    Exercise(
        order=1, file="nn/gradcheck.py", qualname="numerical_grad", section="Checking a gradient",
        teaches="the centred difference every other exercise is graded with",
        check=check_numerical_grad, steps=(("grad", 2), ("grad(h=0.01)", 4), ("grad(h=0.001)", 4)),
        inputs_hint="nudge x and put each coordinate back: x must hold what it held when numerical_grad returns"),
    Exercise(
        order=2, file="nn/layers.py", qualname="Dense.backward", section="Dense",
        teaches="the chain rule through a matrix product",
        check=layer_check(lambda rng: Dense(4, 3, rng, dtype=F64), (5, 4)), steps=(("dx", 5), ("dW", 3), ("db", 4))),
    Exercise(
        order=3, file="nn/layers.py", qualname="ReLU.backward", section="Activations",
        teaches="an elementwise derivative",
        check=layer_check(lambda rng: ReLU(), (5, 4)), steps=(("dx", 3),)),
    Exercise(
        order=4, file="nn/layers.py", qualname="Sigmoid.backward", section="Activations",
        teaches="a derivative in terms of the output",
        check=layer_check(lambda rng: Sigmoid(), (5, 4)), steps=(("dx", 4),)),
    Exercise(
        order=5, file="nn/layers.py", qualname="Tanh.backward", section="Activations",
        teaches="the same, for tanh",
        check=layer_check(lambda rng: Tanh(), (5, 4)), steps=(("dx", 5),)),
    Exercise(
        order=6, file="nn/losses.py", qualname="mse", section="Mean squared error",
        teaches="a loss and the 1/N of averaging over a batch",
        check=check_mse, steps=(("L", 1), ("dx_hat", 1))),
    Exercise(
        order=7, file="nn/losses.py", qualname="bce", section="Binary cross-entropy from logits",
        teaches="why a loss takes logits: the sigmoid's derivative cancels",
        check=check_bce, steps=(("L", 1), ("dlogits", 3))),
    Exercise(
        order=8, file="nn/losses.py", qualname="gaussian_kl", section="KL divergence to the standard normal",
        teaches="the VAE's prior term, in logvar",
        check=check_gaussian_kl, steps=(("KL", 1), ("dmu", 2), ("dlogvar", 3))),
    Exercise(
        order=9, file="nn/optim.py", qualname="Adam.update", section="Adam",
        teaches="Algorithm 1, bias corrections included",
        check=check_adam, steps=(("p", 2), ("m", 1), ("v", 1))),
    Exercise(
        order=10, file="models/autoencoder.py", qualname="AutoEncoder.backward", section="The autoencoder",
        teaches="a whole model's backward, composed from its layers'",
        check=check_autoencoder, per_part=True, steps=(("decoder", 1), ("encoder", 3))),
    Exercise(
        order=11, file="models/vae.py", qualname="VAE.backward", section="The VAE and the reparameterisation trick",
        teaches="the reparameterisation gradient: two paths into mu and logvar",
        check=check_vae, per_part=True,
        steps=(("decoder", 4), ("dmu", 3), ("dlogvar", 2), ("mu", 5), ("logvar", 5), ("encoder", 5))),
    Exercise(
        order=12, file="nn/conv.py", qualname="Conv2d.backward", section="Convolution",
        teaches="a convolution's backward: one matrix product over patches, and col2im",
        check=layer_check(lambda rng: Conv2d(2, 3, rng=rng, **CONV), (3, 2, 5, 3)),
        steps=(("dx", 6), ("dW", 4), ("db", 5))),
    Exercise(
        order=13, file="nn/conv.py", qualname="ConvTranspose2d.backward", section="Convolution",
        teaches="the adjoint's backward: a convolution of dout",
        check=layer_check(lambda rng: ConvTranspose2d(3, 2, rng=rng, **CONV), (3, 3, 3, 2)),
        steps=(("dx", 11), ("dW", 10), ("db", 10))),
    Exercise(
        order=14, file="nn/losses.py", qualname="gaussian_nll", section="A decoder that learns its variance",
        teaches="a likelihood whose variance is learned: a gradient for a parameter every pixel shares",
        check=check_gaussian_nll, steps=(("L", 1), ("dx_hat", 1), ("dx_logvar", 2))),
)


def find(qualname):
    """The Exercise named `qualname` (KeyError naming the ones there are)."""
    return named(EXERCISES, qualname, "exercise", field="qualname", error=KeyError)
