"""python -m apps.grade: the lab's grader (`make grade` in a workspace made by `make exercises`).

For each exercise of lab/exercises.py, in turn, the student's function is put in place
with the reference version of every other exercise (so one unfinished or wrong exercise
never fails another), and the exercise's checks run: the gradient checks against centred
differences for a backward, an independent computation for the rest. A gradient that
fails is run against the classic mistakes of lab/exercises.py; one that matches is named,
with a hint.

The student's functions are the ones the workspace's modules define when imported; the
reference ones are compiled from the workspace's .reference/ copies (in the project
itself, from its own files, so that `make grade` there says every exercise is correct).
Exit status: 0 when every exercise graded is correct, 1 otherwise, 2 on bad input.
"""

import argparse
import ast
import contextlib
import importlib
import os
import sys
from dataclasses import dataclass

import numpy as np

from lab.exercises import EXERCISES, MISTAKES, REFERENCE, find, function_node, with_mistake

try:  # these import the student's files: one that does not even import is said so, in one line
    from lab.cli import UsageError, run_main
    from lab.files import write_json
    from models import VAE, AutoEncoder
    from nn import Dense, Generator, ReLU, Sigmoid, Tanh, gaussian_kl, gradcheck, losses
    from nn.backend import CHECK_DTYPE
    from nn.gradcheck import TOLERANCE, rel_error
    from nn.optim import Adam
except Exception as err:  # a SyntaxError, or a name used before it exists
    where = f" ({err.filename}, line {err.lineno})" if isinstance(err, SyntaxError) else ""
    sys.exit(f"python -m apps.grade: error: the code does not import{where}: {type(err).__name__}: {err}")

F64 = CHECK_DTYPE
JSON_VERSION = 1  # of the --json layout: bumped only if a course's autograder would have to change


# --- What each exercise computes, and what it is checked against ---------------------------
#
# A check runs the function under test and returns (got, expected): dicts of arrays by name.
# expected is None when asked not to compute it (a diagnosis compares two `got`s only).


def numerical(f, x):
    return gradcheck.numerical_grad(f, x)  # whichever checker is in place: the reference, except in exercise 1


def check_numerical_grad(expect):
    rng = np.random.default_rng(0)
    x, c = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    x_before = x.copy()
    grad = gradcheck.numerical_grad(lambda: np.sum(np.sin(x) * c), x)
    got = {"grad": grad, "x afterwards": x}
    return got, expect and {"grad": np.cos(x_before) * c, "x afterwards": x_before}


def layer_check(make_layer, width_in, width_out):
    def check(expect):
        rng = Generator(1)
        layer = make_layer(rng)
        x, dout = rng.normal((5, width_in), F64), rng.normal((5, width_out), F64)

        def f():
            return np.sum(layer.forward(x) * dout)

        f()
        got = {"dx": layer.backward(dout), **{f"d{k}": v for k, v in layer.grads.items()}}
        return got, expect and {"dx": numerical(f, x), **{f"d{k}": numerical(f, p) for k, p in layer.params.items()}}

    return check


def check_mse(expect):
    rng = np.random.default_rng(2)
    x_hat, x = rng.uniform(0, 1, (4, 6)), rng.uniform(0, 1, (4, 6))
    loss, dx_hat = losses.mse(x_hat, x)
    return {"L": loss, "dx_hat": dx_hat}, expect and {
        "L": np.sum((x_hat - x) ** 2) / 4, "dx_hat": numerical(lambda: losses.mse(x_hat, x)[0], x_hat)}


def check_bce(expect):
    rng = np.random.default_rng(3)
    logits, x = rng.normal(size=(4, 6)), rng.uniform(0, 1, (4, 6))
    loss, dlogits = losses.bce(logits, x)
    p = 1 / (1 + np.exp(-logits))
    return {"L": loss, "dlogits": dlogits}, expect and {
        "L": -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p)) / 4,
        "dlogits": numerical(lambda: losses.bce(logits, x)[0], logits)}


def check_gaussian_kl(expect):
    rng = np.random.default_rng(4)
    mu, logvar = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    kl, dmu, dlogvar = losses.gaussian_kl(mu, logvar)
    var = np.exp(logvar)  # KL(N(mu, var) || N(0, 1)) = (var + mu**2 - 1 - log var) / 2, averaged over the batch
    return {"KL": kl, "dmu": dmu, "dlogvar": dlogvar}, expect and {
        "KL": np.sum(var + mu**2 - 1 - logvar) / 2 / 4,
        "dmu": numerical(lambda: losses.gaussian_kl(mu, logvar)[0], mu),
        "dlogvar": numerical(lambda: losses.gaussian_kl(mu, logvar)[0], logvar)}


def check_adam(expect):
    grads = [[0.1, -0.2, 0.3], [0.5, 0.0, -0.1], [-0.3, 0.4, 0.2], [0.05, 0.05, -0.5]]
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 0.1  # a large eps, so that where it goes shows
    params = {"p": np.array([1.0, 2.0, -1.0])}
    opt = Adam(params, lr=lr, betas=(b1, b2), eps=eps)
    for g in grads:
        opt.step({"p": np.array(g)})
    got = {"p": params["p"], "m": opt.state["m"]["p"], "v": opt.state["v"]["p"]}
    if not expect:
        return got, None
    p, m, v = np.array([1.0, 2.0, -1.0]), np.zeros(3), np.zeros(3)
    for t, g in enumerate(np.array(grads), start=1):  # Kingma & Ba (2015), Algorithm 1, line by line
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        p = p - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return got, {"p": p, "m": m, "v": v}


def by_part(errors_or_grads, reduce):
    """{"encoder.0.W": ..., "encoder.0.b": ...} -> {"encoder": reduce(those)}: one entry per part of a model."""
    parts = {}
    for name, value in errors_or_grads.items():
        parts.setdefault(name.split(".")[0], []).append(value)
    return {part: reduce(values) for part, values in parts.items()}


def model_check(make_model, **forward_kwargs):
    def check(expect):
        rng = Generator(30)  # a draw where no gradient is within rounding of 0, nor a ReLU within h of its kink
        model = make_model(rng)
        x = np.random.default_rng(6).uniform(0, 1, (4, 6))
        noise = {"eps": rng.normal((4, 2), F64)} if isinstance(model, VAE) else {}

        def f():
            return model.forward(x, **noise)["loss"]

        f()
        heads = capture_head_gradients(model)
        model.backward()
        got = {**heads, **model.grads}
        if not expect:
            return got, None
        expected = {name: numerical(f, p) for name, p in model.params.items()}
        if isinstance(model, VAE):
            expected.update(vae_head_gradients(model, x, noise["eps"]))
        return got, expected

    return check


def capture_head_gradients(model):
    """For the VAE: record what its heads' backward passes receive, dmu and dlogvar."""
    seen = {}
    if isinstance(model, VAE):
        for name, head in (("dmu", model.mu_head), ("dlogvar", model.logvar_head)):
            def backward(dout, head=head, name=name):
                seen[name] = dout
                return type(head).backward(head, dout)

            head.backward = backward
    return seen


def vae_head_gradients(vae, x, eps):
    """dL/dmu and dL/dlogvar by centred differences, the loss written from mu and logvar onwards."""
    mu, logvar = vae.encode(x)

    def loss():
        z = mu + np.exp(0.5 * logvar) * eps
        return vae.recon_loss.forward(vae.decoder.forward(z), x) + vae.beta * gaussian_kl(mu, logvar)[0]

    return {"dmu": numerical(loss, mu), "dlogvar": numerical(loss, logvar)}


CHECKS = {
    "numerical_grad": check_numerical_grad,
    "Dense.backward": layer_check(lambda rng: Dense(4, 3, rng, dtype=F64), 4, 3),
    "ReLU.backward": layer_check(lambda rng: ReLU(), 4, 4),
    "Sigmoid.backward": layer_check(lambda rng: Sigmoid(), 4, 4),
    "Tanh.backward": layer_check(lambda rng: Tanh(), 4, 4),
    "mse": check_mse,
    "bce": check_bce,
    "gaussian_kl": check_gaussian_kl,
    "Adam.update": check_adam,
    "AutoEncoder.backward": model_check(lambda rng: AutoEncoder(6, (5,), 2, rng=rng, dtype=F64)),
    # heads at full scale: at HEAD_SCALE's start near the prior the KL's gradients are near 0
    "VAE.backward": model_check(lambda rng: VAE(6, (5,), 2, beta=0.5, head_scale=1.0, rng=rng, dtype=F64)),
}


# --- Putting one version of a function in place -------------------------------------------


def owner_of(exercise):
    """(the module or class that holds the exercise's function, the function's name)."""
    module = importlib.import_module(exercise.file.removesuffix(".py").replace("/", "."))
    *classes, name = exercise.qualname.split(".")
    owner = module
    for cls in classes:
        owner = getattr(owner, cls)
    return owner, name


def compiled(exercise, source, filename):
    """The exercise's function compiled from `source` (a whole file), in the globals of its live module."""
    node = function_node(ast.parse(source), exercise.qualname)
    module = importlib.import_module(exercise.file.removesuffix(".py").replace("/", "."))
    namespace = {}
    exec(compile(ast.Module(body=[node], type_ignores=[]), filename, "exec"), vars(module), namespace)
    return namespace[node.name]


@contextlib.contextmanager
def installed(exercise, function):
    """`function` in the exercise's place while the block runs. A module-level function is also
    replaced wherever the project imported it by name (`from nn import mse` in models/base.py)."""
    owner, name = owner_of(exercise)
    old = vars(owner)[name]
    places = [(owner, name)]
    if isinstance(owner, type(sys)):
        places += [(m, attr) for m in list(sys.modules.values()) if m is not owner and
                   (getattr(m, "__name__", "") or "").split(".")[0] in ("nn", "models", "lab", "apps")
                   for attr, value in list(vars(m).items()) if value is old]
    for place, attr in places:
        setattr(place, attr, function)
    try:
        yield
    finally:
        for place, attr in places:
            setattr(place, attr, old)


# --- Grading ------------------------------------------------------------------------------


@dataclass
class Result:
    """One exercise's grade. status: "not started", "wrong" or "correct"; errors: the worst
    relative error per checked quantity; mistake: the classic mistake a wrong answer matches."""

    exercise: object
    status: str
    errors: dict
    message: str = ""
    mistake: object = None

    def as_json(self):
        e = self.exercise
        return {"order": e.order, "exercise": e.qualname, "file": e.file, "section": e.section,
                "status": self.status, "errors": self.errors, "message": self.message,
                "mistake": self.mistake and {"name": self.mistake.name, "hint": self.mistake.hint}}


def compare(got, expected):
    """{name: worst relative error}, or a message when they cannot be compared (a missing
    gradient, a wrong shape)."""
    if set(got) != set(expected):
        missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
        return None, f"gradients missing: {', '.join(missing) or '-'}; unexpected: {', '.join(extra) or '-'}"
    errors = {}
    for name in expected:
        a, b = np.asarray(got[name], dtype=np.float64), np.asarray(expected[name], dtype=np.float64)
        if a.shape != b.shape:
            return None, f"{name} has shape {a.shape}, and should have {b.shape}"
        errors[name] = rel_error(a, b) if np.all(np.isfinite(a)) else float("inf")
    return errors, ""


def matches(got, other):
    errors, problem = compare(got, other)
    return not problem and max(errors.values(), default=0.0) < TOLERANCE


def grade_one(exercise, student):
    """The Result of `student` (a function) for `exercise`, every other exercise being the reference."""
    check = CHECKS[exercise.qualname]
    with installed(exercise, student):
        try:
            got, expected = check(True)
        except NotImplementedError as err:
            if str(err) == exercise.stub_message:
                return Result(exercise, "not started", {}, "still the stub: it raises NotImplementedError")
            return Result(exercise, "wrong", {}, f"raised NotImplementedError: {err}")
        except Exception as err:  # a student's code may fail in any way; say how, and go on
            return Result(exercise, "wrong", {}, f"raised {type(err).__name__}: {err}")
    errors, problem = compare(got, expected)
    if errors is not None and exercise.qualname.endswith(".backward") and exercise.qualname.split(".")[0] in (
            "VAE", "AutoEncoder"):
        errors = by_part(errors, max)
    if errors is not None and max(errors.values(), default=0.0) < TOLERANCE:
        return Result(exercise, "correct", errors)
    return Result(exercise, "wrong", errors or {}, problem, diagnose(exercise, got))


def diagnose(exercise, got):
    """The classic mistake whose result `got` equals, or None."""
    reference_source, filename = reference_file(exercise)
    for mistake in (m for m in MISTAKES if m.exercise == exercise.qualname):
        wrong = compiled(exercise, with_mistake(reference_source, mistake), filename)
        with installed(exercise, wrong):
            try:
                theirs, _ = CHECKS[exercise.qualname](False)
            except Exception:
                continue
        if matches(got, theirs):
            return mistake
    return None


ROOT = "."


def reference_file(exercise):
    """(source, filename) of the exercise's reference file: .reference/<file> in a workspace, else <file>."""
    path = os.path.join(ROOT, REFERENCE, exercise.file)
    if not os.path.exists(path):
        path = os.path.join(ROOT, exercise.file)
    with open(path) as f:
        return f.read(), path


def grade(exercises=EXERCISES):
    """Grade each of `exercises` with the reference version of all the others: [Result]."""
    students = {e.qualname: vars(owner)[name] for e in EXERCISES for owner, name in [owner_of(e)]}
    with contextlib.ExitStack() as stack:
        for e in EXERCISES:  # the reference everywhere first...
            stack.enter_context(installed(e, compiled(e, *reference_file(e))))
        return [grade_one(e, students[e.qualname]) for e in exercises]  # ...then each student's, one at a time


def in_workspace():
    return os.path.isdir(os.path.join(ROOT, REFERENCE))


# --- The scoreboard -----------------------------------------------------------------------


def scoreboard(results):
    lines = [f"{'':3s}{'exercise':23s}{'status':13s}worst relative error of each (correct below {TOLERANCE:g})"]
    for r in results:
        errors = "  ".join(f"{name} {value:.1e}" for name, value in r.errors.items())
        lines.append(f"{r.exercise.order:2d} {r.exercise.qualname:23s}{r.status:13s}{errors or r.message}")
        if r.status == "wrong" and r.errors and r.message:
            lines.append(f"{'':39s}{r.message}")
        if r.mistake:
            lines.append(f"{'':39s}looks like '{r.mistake.name}': {r.mistake.hint}")
        elif r.status == "wrong" and r.errors:
            lines.append(f"{'':39s}matches none of the classic mistakes: read docs/derivations.md, "
                         f"\"{r.exercise.section}\"")
    correct = sum(r.status == "correct" for r in results)
    lines.append(f"\n{correct} of {len(results)} correct")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m apps.grade",
                                description="Grade the lab's exercises: gradient checks, and a diagnosis of "
                                            "wrong answers.")
    p.add_argument("exercises", nargs="*", metavar="EXERCISE",
                   help="only these, by number or name (default: all), e.g. 2 or Dense.backward")
    p.add_argument("--json", metavar="FILE", help="also write the scoreboard as JSON, for a course's autograder")
    p.add_argument("--before-training", action="store_true",
                   help="what `make vae` runs first: in a workspace, train only once every exercise is correct")
    args = p.parse_args(argv)

    def body():
        chosen = [select(name) for name in args.exercises] or list(EXERCISES)
        if args.before_training:
            return before_training()
        results = grade(chosen)
        print(scoreboard(results))
        if args.json:
            write_json(args.json, {"version": JSON_VERSION, "tolerance": TOLERANCE, "workspace": in_workspace(),
                                   "correct": sum(r.status == "correct" for r in results), "total": len(results),
                                   "exercises": [r.as_json() for r in results]})
        if any(r.status != "correct" for r in results):
            sys.exit(1)

    return run_main(p, body)


def select(name):
    if name.isdigit() and 1 <= int(name) <= len(EXERCISES):
        return EXERCISES[int(name) - 1]
    try:
        return find(name)
    except KeyError as err:
        raise UsageError(f"{err.args[0]}; or give a number from 1 to {len(EXERCISES)}") from None


def before_training():
    """In a workspace: say whether the VAE will train on the student's own code, or stop."""
    if not in_workspace():
        return
    results = grade()
    open_ones = [r for r in results if r.status != "correct"]
    if open_ones:
        print(f"{len(open_ones)} of {len(results)} exercises are not correct yet "
              f"({', '.join(r.exercise.qualname for r in open_ones)}): `make grade` shows where they stand. "
              "The VAE trains on your code once all are.", file=sys.stderr)
        sys.exit(1)
    print(f"all {len(results)} exercises correct: the VAE trains on your own code")


if __name__ == "__main__":
    sys.exit(main())
