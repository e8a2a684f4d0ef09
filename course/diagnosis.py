"""What the grader can say about a wrong answer beyond its classic mistakes (course/exercises.py).

From the gradients themselves (DIAGNOSES, tried in order once no classic mistake matches,
each a function (checked, errors) -> a message or None): a gradient missing because a
layer's backward never ran, a transposed shape, a gradient that is zero everywhere, one
of the wrong sign, one off by a constant factor (named after N, h, beta where it is one).

From the exercise's record: which parts are right and which wrong, and the step of the
guided derivation the wrong ones come from (`wrong_steps`).

From the code: the student's line that led to an exception, and the library's line after it
where it was raised (`student_frame`, `helper_frame`; grading.Raised says them). The `xp`
form of a NumPy-only call is course/xp_hints.py's.
"""

import os
import re
import traceback
import types

import numpy as np

from nn.backend import to_numpy
from nn.gradcheck import TOLERANCE, rel_error


def as_float64(value):
    """`value` as a NumPy float64 array. An array of any backend goes through to_numpy (CuPy
    refuses an implicit copy to the host); what a student may return instead of an array
    (a number, a list, None) through np.asarray."""
    return np.asarray(to_numpy(value) if hasattr(value, "shape") else value, dtype=np.float64)


def listed(names):
    return ", ".join(names)


# --- From the gradients -------------------------------------------------------------------


def missing(checked, errors):
    """Every gradient of a model's part missing: that part's backward never ran (a backward
    is what fills a layer's grads)."""
    absent = [name for name in checked.expected if name not in checked.got]
    parts = [part for part, attr in checked.parts.items()
             if any(n.startswith(part + ".") for n in checked.expected)
             and all(n in absent for n in checked.expected if n.startswith(part + "."))]
    if not parts:
        return None
    attrs = [checked.parts[part] for part in parts]
    kinds = {attr.rpartition("_")[2] for attr in attrs}  # self.mu_head, self.logvar_head: "the heads'"
    whose = f"the {kinds.pop()}s'" if len(attrs) > 1 and len(kinds) == 1 and all("_" in a for a in attrs) else "the"
    names = [n for n in checked.expected if n.split(".")[0] in parts]
    return (f"{whose} backward ({listed(a + '.backward' for a in attrs)}) was never called: "
            f"it is what fills {listed(names)}")


def transposed(checked, errors):
    """A matrix of the transposed shape: the transpose of the right one, or only of its shape."""
    for name in checked.expected:
        if name not in checked.got:
            continue
        a, b = as_float64(checked.got[name]), as_float64(checked.expected[name])
        if a.ndim == 2 and a.shape != b.shape and a.shape == b.shape[::-1]:
            if rel_error(a.T, b) < TOLERANCE:
                return f"{name} is the transpose of the right one"
            return f"{name} has the transposed shape, {a.shape} for {b.shape}"
    return None


def factors(checked, errors):
    """{name: c} for each wrong gradient that is c times the right one, for one number c."""
    found = {}
    for name, error in (errors or {}).items():
        if error < TOLERANCE:
            continue
        g, e = as_float64(checked.got[name]).ravel(), as_float64(checked.expected[name]).ravel()
        if not np.all(np.isfinite(g)) or not np.any(e):
            continue
        c = float(g @ e / (e @ e))
        if np.linalg.norm(g - c * e) <= TOLERANCE * np.linalg.norm(g):
            found[name] = c
    return found


def zero(checked, errors):
    """A wrong gradient that is 0 everywhere, where the right one is not."""
    names = [name for name in errors or {} if errors[name] >= TOLERANCE and not np.any(as_float64(checked.got[name]))
             and np.any(as_float64(checked.expected[name]))]
    if not names:
        return None
    one = len(names) == 1
    return f"{listed(names)} {'is' if one else 'are'} zero everywhere: no gradient reached {'it' if one else 'them'}"


def sign_flipped(checked, errors):
    """A wrong gradient that is minus the right one."""
    names = [name for name, c in factors(checked, errors).items() if abs(c + 1.0) < 1e-6]
    if not names:
        return None
    return f"{listed(names)} {'has' if len(names) == 1 else 'have'} the wrong sign"


def named(c, symbols):
    """(expression, symbol, value) of `symbols` that c equals ("h**2", "h", 1e-4), or None."""
    for symbol, v in symbols.items():
        for expression, value in ((symbol, v), (f"1/{symbol}", 1 / v), (f"{symbol}**2", v * v),
                                  (f"1/{symbol}**2", 1 / (v * v))):
            if abs(c - value) <= 1e-6 * abs(value):
                return expression, symbol, v
    return None


def scaled(checked, errors):
    """Gradients c times the right ones (c not 0 or -1: those have their own diagnoses), grouped
    by what c is: "dW is 0.5 times the right one", or after a symbol, "grad is 1e-08 times the
    right one: h**2, with h = 0.0001"."""
    groups = {}
    for name, c in factors(checked, errors).items():
        if abs(c) < 1e-12 or abs(c + 1.0) < 1e-6:
            continue
        what = named(c, checked.symbols.get(name, {}))
        groups.setdefault(what[0] if what else f"{c:.3g}", []).append((name, c, what))
    sentences = []
    for key, members in groups.items():
        one = len(members) == 1
        names = listed(name for name, _, _ in members)
        verb, noun = ("is", "the right one") if one else ("are each", "the right ones")
        values = {(c, what[1], what[2]) for _, c, what in members if what}
        if not values:
            sentences.append(f"{names} {verb} {key} times {noun}")
        elif len(values) == 1:
            ((c, symbol, v),) = values
            sentences.append(f"{names} {verb} {c:.3g} times {noun}: {key}, with {symbol} = {v:g}")
        else:
            at = "; ".join(f"{c:.3g} at {symbol} = {v:g}" for _, c, (_, symbol, v) in members)
            sentences.append(f"{names} {verb} {key} times {noun} ({at})")
    return "; ".join(sentences) or None


DIAGNOSES = (missing, transposed, zero, sign_flipped, scaled)


def diagnoses(checked, errors):
    """The messages of DIAGNOSES for a wrong answer: [str]. errors: {name: relative error}
    of each gradient (None when they could not be compared)."""
    return [message for diagnosis in DIAGNOSES if (message := diagnosis(checked, errors))]


# --- Where the wrong parts come from -------------------------------------------------------


def step_titles(section, root="."):
    """{n: title} of the numbered steps of `section` in root/docs/derivations.md (a step is a
    paragraph that opens "**2. Through the sampler, to `logvar`.**"), {} where there is none."""
    try:
        with open(os.path.join(root, "docs", "derivations.md")) as f:
            text = f.read()
    except OSError:
        return {}
    found = re.search(rf"^## {re.escape(section)}\b.*?(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    return {int(n): title for n, title in re.findall(r"^\*\*(\d+)\. (.*?)\.?\*\*", found.group(0), re.MULTILINE)
            } if found else {}


def wrong_steps(exercise, parts, root="."):
    """'decoder, dmu right; dlogvar wrong: step 2 (Through the sampler, to `logvar`) of
    docs/derivations.md, "The VAE ..."', or None where every part is right or the exercise names
    no steps. parts: {part: worst relative error}; "dW, input_grad False" is dW's. Each part is
    named after the step of the derivation that gives it (exercise.steps); a model's parts
    (per_part) are a chain, in the order its backward computes them, so the first wrong one
    carries its error into those after it and its step is the one named."""
    steps = dict(exercise.steps)
    wrong = [p for p, error in parts.items() if not error < TOLERANCE]
    if not steps or not wrong:
        return None
    right = [p for p, error in parts.items() if error < TOLERANCE]
    order = [*steps, None]
    for names in (right, wrong):
        names.sort(key=lambda p: order.index(p.split(",")[0] if p.split(",")[0] in steps else None))
    titles = step_titles(exercise.section, root)

    def step(n):
        return f"step {n}" + (f" ({titles[n]})" if n in titles else "")

    where = f'of docs/derivations.md, "{exercise.section}"'
    said = f"{listed(right)} right; " if right else ""
    first = wrong[0].split(",")[0]
    if exercise.per_part and first in steps:
        after = f", from {wrong[0]} on" if len({steps.get(p.split(",")[0]) for p in wrong}) > 1 else ""
        return f"{said}{listed(wrong)} wrong{after}: {step(steps[first])} {where}"
    groups = {}
    for p in wrong:
        groups.setdefault(steps.get(p.split(",")[0]), []).append(p)
    return said + "; ".join(f"{listed(ps)} wrong" + (f": {step(n)}" if n else "") for n, ps in groups.items()) + \
        f" {where}"


# --- From the code ------------------------------------------------------------------------

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # where the library's files are
INSTALLED = {".venv", "site-packages", "dist-packages"}  # folders of packages installed there: not the library


def lines_of(code):
    """Every line a code object runs, with those of the code it holds (comprehensions, lambdas)."""
    lines = {line for _, _, line in code.co_lines() if line is not None}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            lines |= lines_of(const)
    return lines


def frames(err):
    return [traceback.FrameSummary(frame.f_code.co_filename, line, frame.f_code.co_name)
            for frame, line in traceback.walk_tb(err.__traceback__)]


def student_index(err, exercise, student=None):
    """The index in frames(err) of the last frame in the student's function (`student`; without
    it, in the exercise's file), or None."""
    code = getattr(student, "__code__", None)
    if code is not None:
        lines = lines_of(code)
        found = [i for i, f in enumerate(frames(err)) if f.filename == code.co_filename and f.lineno in lines]
    else:
        parts = exercise.file.split("/")
        found = [i for i, f in enumerate(frames(err))
                 if os.path.normpath(f.filename).split(os.sep)[-len(parts):] == parts]
    return found[-1] if found else None


def student_frame(err, exercise, student=None):
    """The FrameSummary of the student's line that led to `err`: the last one inside their function."""
    i = student_index(err, exercise, student)
    return None if i is None else frames(err)[i]


def helper_frame(err, exercise, student=None):
    """The FrameSummary of the library's line where `err` was raised, when the student's line called
    it (col2im's reshape, two calls down from Conv2d.backward), or None: the last frame after the
    student's in the project's own files."""
    i = student_index(err, exercise, student)
    if i is None:
        return None
    after = [f for f in frames(err)[i + 1:] if os.path.abspath(f.filename).startswith(PROJECT + os.sep)
             and not INSTALLED & set(os.path.abspath(f.filename).split(os.sep))]
    return after[-1] if after else None


def at(frame):
    """'nn/conv.py, line 40 (patches = xp.reshape(...))' of a FrameSummary."""
    path = os.path.relpath(os.path.abspath(frame.filename), PROJECT)
    path = frame.filename if path.startswith("..") else path
    return f"{path}, line {frame.lineno}" + (f" ({frame.line.strip()})" if frame.line else "")

