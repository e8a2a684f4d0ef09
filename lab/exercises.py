"""The lab as exercises: which functions a student writes, the classic ways to get them wrong,
and the workspace in which they are blanked.

The project's source carries no solution markers. EXERCISES names the functions (file,
qualified name, order, the section of docs/derivations.md to read); `stub` blanks a body
on the syntax tree, keeping the signature and docstring and leaving every other byte of
the file as it is. MISTAKES is the library of classic wrong answers, each an edit of the
reference source (a transposed dW, a missing 1/N, log std read as log variance, ...): the
grader (apps/grade.py) runs each to recognise a student's gradient, and the tests plant
each in a workspace.
"""

import ast
import os
import shutil
from dataclasses import dataclass

REFERENCE = ".reference"  # where a workspace keeps the original exercise files, for the grader
SKIP = {".git", ".venv", ".pytest_cache", "__pycache__", "runs", "data", "exercises", REFERENCE}


@dataclass(frozen=True)
class Exercise:
    """One function to write. `section`: the heading of docs/derivations.md that derives it."""

    order: int
    file: str
    qualname: str
    section: str
    teaches: str

    @property
    def stub_message(self):
        return (f'exercise {self.order}, {self.qualname}: not written yet. Derive it in docs/derivations.md, '
                f'"{self.section}", then write it here.')


EXERCISES = (
    Exercise(1, "nn/gradcheck.py", "numerical_grad", "Checking a gradient",
             "the centred difference every other exercise is graded with"),
    Exercise(2, "nn/layers.py", "Dense.backward", "Dense", "the chain rule through a matrix product"),
    Exercise(3, "nn/layers.py", "ReLU.backward", "Activations", "an elementwise derivative"),
    Exercise(4, "nn/layers.py", "Sigmoid.backward", "Activations", "a derivative in terms of the output"),
    Exercise(5, "nn/layers.py", "Tanh.backward", "Activations", "the same, for tanh"),
    Exercise(6, "nn/losses.py", "mse", "Mean squared error", "a loss and the 1/N of averaging over a batch"),
    Exercise(7, "nn/losses.py", "bce", "Binary cross-entropy from logits",
             "why a loss takes logits: the sigmoid's derivative cancels"),
    Exercise(8, "nn/losses.py", "gaussian_kl", "KL divergence to the standard normal",
             "the VAE's prior term, in logvar"),
    Exercise(9, "nn/optim.py", "Adam.update", "Adam", "Algorithm 1, bias corrections included"),
    Exercise(10, "models/autoencoder.py", "AutoEncoder.backward", "The autoencoder",
             "a whole model's backward, composed from its layers'"),
    Exercise(11, "models/vae.py", "VAE.backward", "The VAE and the reparameterisation trick",
             "the reparameterisation gradient: two paths into mu and logvar"),
)


@dataclass(frozen=True)
class Mistake:
    """A classic wrong answer to an exercise: `edits` (reference text, wrong text) applied to
    the reference function's source; `hint` is what the grader tells a student whose
    gradient matches it."""

    exercise: str
    name: str
    hint: str
    edits: tuple


MISTAKES = (
    Mistake("numerical_grad", "one-sided difference",
            "your estimate is a one-sided difference (f(x + h) - f(x)) / h, whose error shrinks only like h: "
            "the centred (f(x + h) - f(x - h)) / 2h errs like h**2",
            (("x_flat[i] = x_i - h", "x_flat[i] = x_i"), ("/ (2 * h)", "/ h"))),
    Mistake("numerical_grad", "divided by h", "your estimate is twice the derivative: f(x + h) - f(x - h) spans 2h",
            (("/ (2 * h)", "/ h"),)),
    Mistake("numerical_grad", "x not restored",
            "x is left at x_i - h after each coordinate: put x_flat[i] = x_i back before the next one, "
            "or every later coordinate is measured at the wrong point (and x is changed when you return)",
            (("        x_flat[i] = x_i\n", ""),)),
    Mistake("Dense.backward", "dW transposed",
            "your dW is dout.T @ x, the transpose of dL/dW: dW[i, o] = sum_n x[n, i] dout[n, o], that is "
            "x.T @ dout, of W's shape (in, out)",
            (('self.grads["W"] = self.x.T @ dout', 'self.grads["W"] = dout.T @ self.x'),)),
    Mistake("Dense.backward", "dW averaged",
            "your dW is divided by the batch size: the loss already averages over the batch (its gradient "
            "carries the 1/N), so a layer only sums over the rows",
            (('self.grads["W"] = self.x.T @ dout', 'self.grads["W"] = self.x.T @ dout / dout.shape[0]'),)),
    Mistake("Dense.backward", "db averaged",
            "your db is the mean of dout over the batch: b is added to every row, so every row's gradient "
            "reaches it in full: db = sum over n of dout",
            (("xp.sum(dout, axis=0)", "xp.mean(dout, axis=0)"),)),
    Mistake("ReLU.backward", "passes where x <= 0",
            "your gradient flows where the input was negative and stops where it was positive: the other way round",
            (("return dout * self.slope", "return dout * (1.0 - self.slope)"),)),
    Mistake("ReLU.backward", "derivative left out",
            "you return dout unchanged: ReLU's derivative is 0 where x <= 0, so the gradient stops there",
            (("return dout * self.slope", "return dout"),)),
    Mistake("Sigmoid.backward", "derivative y",
            "you multiply by y: the sigmoid's derivative is y (1 - y) (y is exp's derivative, not the sigmoid's)",
            (("return dout * self.y * (1.0 - self.y)", "return dout * self.y"),)),
    Mistake("Tanh.backward", "1 - y",
            "you multiply by 1 - y: tanh's derivative is 1 - tanh(x)**2 = 1 - y**2",
            (("(1.0 - self.y * self.y)", "(1.0 - self.y)"),)),
    Mistake("mse", "missing 1/N",
            "your dx_hat lacks the 1/N: the loss averages over the N images of the batch, and so does its gradient",
            (("diff *= 2.0 / divisor", "diff *= 2.0"),)),
    Mistake("mse", "missing 2", "d/dx_hat (x_hat - x)**2 = 2 (x_hat - x): your dx_hat lacks the 2",
            (("diff *= 2.0 / divisor", "diff *= 1.0 / divisor"),)),
    Mistake("mse", "sign flipped", "your dx_hat points the wrong way: d/dx_hat (x_hat - x)**2 = +2 (x_hat - x)",
            (("diff *= 2.0 / divisor", "diff *= -2.0 / divisor"),)),
    Mistake("bce", "sign flipped", "your dlogits is x - p: it is p - x, with p = sigmoid(logits)",
            (("dlogits = sigmoid(logits) - x", "dlogits = x - sigmoid(logits)"),)),
    Mistake("bce", "missing 1/N", "your dlogits lacks the 1/N of averaging over the batch",
            (("dlogits *= 1.0 / divisor", "dlogits *= 1.0"),)),
    Mistake("bce", "sigmoid's derivative kept",
            "you multiplied by the sigmoid's derivative p (1 - p): taken from the logits it cancels against the "
            "1 / (p (1 - p)) of the log, leaving (p - x) / N",
            (("dlogits = sigmoid(logits) - x",
              "dlogits = (sigmoid(logits) - x) * sigmoid(logits) * (1.0 - sigmoid(logits))"),)),
    Mistake("gaussian_kl", "logvar read as log std",
            "your KL reads logvar as the log of the standard deviation (sigma = exp(logvar)); here logvar is "
            "the log of the variance, sigma**2 = exp(logvar), as the sampler's std = exp(0.5 * logvar) assumes",
            (("var = xp.exp(logvar)", "var = xp.exp(2.0 * logvar)"),
             ("xp.sum(1.0 + logvar - mu * mu - var)", "xp.sum(1.0 + 2.0 * logvar - mu * mu - var)"),
             ("dlogvar = (var - 1.0) * (0.5 / divisor)", "dlogvar = (var - 1.0) / divisor"))),
    Mistake("gaussian_kl", "missing 1/2 in dlogvar",
            "d/dlogvar of -(1 + logvar - exp(logvar)) / 2 is (exp(logvar) - 1) / 2: your dlogvar lacks the 1/2",
            (("dlogvar = (var - 1.0) * (0.5 / divisor)", "dlogvar = (var - 1.0) / divisor"),)),
    Mistake("gaussian_kl", "dmu sign flipped", "your dmu is -mu / N: d/dmu of mu**2 / 2 is +mu",
            (("dmu = mu / divisor", "dmu = -mu / divisor"),)),
    Mistake("Adam.update", "no bias correction",
            "your steps have no bias correction: m and v start at 0 and underestimate the moments in the first "
            "steps; Algorithm 1 divides them by (1 - b1**t) and (1 - b2**t)",
            (("lr_t = self.lr * (1.0 - b2**t) ** 0.5 / (1.0 - b1**t)", "lr_t = self.lr"),
             ("eps_t = self.eps * (1.0 - b2**t) ** 0.5", "eps_t = self.eps"))),
    Mistake("Adam.update", "eps inside the square root",
            "your eps is inside the square root: Algorithm 1 adds it to sqrt(v_hat)",
            (("xp.sqrt(v) + eps_t", "xp.sqrt(v + eps_t)"),)),
    Mistake("Adam.update", "m rebound, not updated",
            "m = ... makes a new array, and the optimiser's own m never changes: update it in place "
            "(m *= b1; m += (1 - b1) * g)",
            (("m *= b1\n        m += (1.0 - b1) * g", "m = b1 * m + (1.0 - b1) * g"),)),
    Mistake("AutoEncoder.backward", "encoder left out",
            "the encoder gets no gradient: decoder.backward returns dL/dz, which encoder.backward takes",
            (("self.encoder.backward(self.decoder.backward(self.recon_loss.backward()))",
              "self.decoder.backward(self.recon_loss.backward())"),)),
    Mistake("VAE.backward", "std read as exp(logvar)",
            "your dlogvar is what std = exp(logvar) would give: the sampler uses std = exp(0.5 * logvar), "
            "so dz/dlogvar = eps * 0.5 * std",
            (("dz * self.eps * (0.5 * self.std)", "dz * self.eps * (self.std * self.std)"),)),
    Mistake("VAE.backward", "missing 0.5",
            "dz/dlogvar = eps * d std/dlogvar, and d exp(0.5 logvar)/dlogvar = 0.5 std: your dlogvar lacks the 0.5",
            (("dz * self.eps * (0.5 * self.std)", "dz * self.eps * self.std"),)),
    Mistake("VAE.backward", "beta dropped",
            "the KL's gradients enter without beta: the loss is recon + beta * KL",
            (("self.beta * self.dmu_kl", "self.dmu_kl"), ("self.beta * self.dlogvar_kl", "self.dlogvar_kl"))),
    Mistake("VAE.backward", "KL path missing",
            "mu and logvar reach the loss twice, through z and directly through the KL term: add the KL's gradients",
            (("dmu = dz + self.beta * self.dmu_kl", "dmu = dz"),
             ("dlogvar = dz * self.eps * (0.5 * self.std) + self.beta * self.dlogvar_kl",
              "dlogvar = dz * self.eps * (0.5 * self.std)"))),
    Mistake("VAE.backward", "reparameterisation path missing",
            "z = mu + std * eps depends on logvar through std: dlogvar needs dz * eps * 0.5 * std as well as the "
            "KL's part",
            (("dlogvar = dz * self.eps * (0.5 * self.std) + self.beta * self.dlogvar_kl",
              "dlogvar = self.beta * self.dlogvar_kl"),)),
    Mistake("VAE.backward", "one head left out of dh",
            "h feeds both heads, so dL/dh is the sum of what both heads' backward passes return",
            (("dh = self.mu_head.backward(dmu) + self.logvar_head.backward(dlogvar)",
              "self.logvar_head.backward(dlogvar)\n        dh = self.mu_head.backward(dmu)"),)),
)


def find(qualname):
    """The Exercise named `qualname`."""
    for exercise in EXERCISES:
        if exercise.qualname == qualname:
            return exercise
    raise KeyError(f"no exercise {qualname!r}: the exercises are {', '.join(e.qualname for e in EXERCISES)}")


def function_node(tree, qualname):
    """The FunctionDef of `qualname` ("f" or "Class.method") in a module's syntax tree."""
    scope = tree
    for part in qualname.split("."):
        scope = next((node for node in scope.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))
                      and node.name == part), None)
        if scope is None:
            raise KeyError(f"{qualname} is not defined in this file")
    return scope


def _lines_of(source, qualname):
    """(lines, first, last): the file's lines, and lines[first:last], the function's body after its docstring."""
    node = function_node(ast.parse(source), qualname)
    has_docstring = ast.get_docstring(node) is not None
    first = node.body[0].end_lineno if has_docstring else node.body[0].lineno - 1
    return source.splitlines(keepends=True), first, node.end_lineno


def stub(source, exercise):
    """`source` with the body of the exercise's function, after its docstring, replaced by
    one `raise NotImplementedError(<its stub message>)`; every other line as it was."""
    lines, first, last = _lines_of(source, exercise.qualname)
    indent = lines[first][:len(lines[first]) - len(lines[first].lstrip())]
    raise_line = f"{indent}raise NotImplementedError({exercise.stub_message!r})\n"
    return "".join(lines[:first] + [raise_line] + lines[last:])


def with_mistake(source, mistake):
    """`source` with `mistake`'s edits made inside its exercise's function: what a student
    who made that mistake would have written."""
    lines, first, last = _lines_of(source, mistake.exercise)
    body = "".join(lines[first:last])
    for old, new in mistake.edits:
        if body.count(old) != 1:
            raise ValueError(f"mistake {mistake.name!r}: {old!r} is not in {mistake.exercise} exactly once")
        body = body.replace(old, new)
    return "".join(lines[:first]) + body + "".join(lines[last:])


def make_workspace(root, out):
    """Copy the project at `root` to `out` with every exercise's body stubbed, and the original
    exercise files under out/.reference/ for the grader. Returns the stubbed files."""
    if os.path.exists(out) and os.listdir(out):
        raise FileExistsError(f"{out} already exists and is not empty: it may hold a student's work; "
                              "give another folder, or remove it first")
    target = os.path.abspath(out)

    def ignore(folder, names):  # what a workspace does not need, and the workspace itself if it lies inside root
        return [n for n in names if n in SKIP or n.endswith(".pyc") or os.path.abspath(os.path.join(folder, n)) == target]

    shutil.copytree(root, out, ignore=ignore, dirs_exist_ok=True)
    by_file = {}
    for exercise in EXERCISES:
        by_file.setdefault(exercise.file, []).append(exercise)
    for file, exercises in by_file.items():
        with open(os.path.join(root, file)) as f:
            source = f.read()
        os.makedirs(os.path.dirname(os.path.join(out, REFERENCE, file)), exist_ok=True)
        with open(os.path.join(out, REFERENCE, file), "w") as f:
            f.write(source)
        for exercise in exercises:
            source = stub(source, exercise)
        with open(os.path.join(out, file), "w") as f:
            f.write(source)
    venv = os.path.join(root, ".venv")
    if os.path.isdir(venv) and not os.path.exists(os.path.join(out, ".venv")):
        os.symlink(os.path.abspath(venv), os.path.join(out, ".venv"))  # the same packages, installed once
    return sorted(by_file)
