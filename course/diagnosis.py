"""What the grader can say about a wrong answer beyond its classic mistakes (course/exercises.py).

From the gradients themselves (DIAGNOSES, tried in order once no classic mistake matches,
each a function (checked, errors) -> a message or None): a gradient missing because a
layer's backward never ran, a transposed shape, a gradient that is zero everywhere, one
of the wrong sign, one off by a constant factor (named after N, h, beta where it is one).

From the code: where in the student's file an exception was raised (`raised`), and the
`xp` form of a NumPy-only call that failed on the array-API backend (`xp_hint`, from the
table XP_FORMS).
"""

import inspect
import os
import re
import traceback

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


# --- From the code ------------------------------------------------------------------------


def raised(err, exercise):
    """'raised ValueError at nn/layers.py, line 88 (dx = dout @ self.W): matmul: ...': the line
    is the last one of the traceback in the exercise's file, the student's."""
    frame = student_frame(err, exercise)
    where = f" at {exercise.file}, line {frame.lineno} ({frame.line.strip()})" if frame and frame.line else (
        f" at {exercise.file}, line {frame.lineno}" if frame else "")
    return f"raised {type(err).__name__}{where}: {err}"


def student_frame(err, exercise):
    parts = exercise.file.split("/")
    frames = [f for f in traceback.extract_tb(err.__traceback__)
              if os.path.normpath(f.filename).split(os.sep)[-len(parts):] == parts]
    return frames[-1] if frames else None


# NumPy's array methods and attributes that the array API standard (so CuPy's common ground
# with NumPy, and array_api_strict) does not have, and what to write instead: {x} is the array,
# {args} the call's arguments, {, args} them after a comma if there are any.
XP_FORMS = {
    **{name: f"xp.{name}({{x}}{{, args}})" for name in (
        "sum", "mean", "max", "min", "prod", "std", "var", "any", "all", "argmax", "argmin", "clip", "round")},
    "astype": "xp.astype({x}{, args})",
    "reshape": "xp.reshape({x}, {shape}) (with copy=False where it must be a view of {x})",
    "flatten": "xp.reshape({x}, (-1,))",
    "ravel": "xp.reshape({x}, (-1,))",
    "flat": "xp.reshape({x}, (-1,), copy=False)",
    "copy": "xp.asarray({x}, copy=True)",
    "dot": "{x} @ {args}",
    "transpose": "xp.permute_dims({x}{, args}), or {x}.T for a matrix",
    "item": "float({x})",
}
# NumPy's functions whose array-API name differs (np.exp is xp.exp).
XP_NAMES = {"concatenate": "concat", "power": "pow", "absolute": "abs", "transpose": "permute_dims"}


def xp_hint(err, exercise, student):
    """'write xp.sum(dout, axis=0), with xp = namespace(dout)' for a NumPy-only call that failed,
    or '' when there is none to name."""
    frame = student_frame(err, exercise) if err is not None else None
    line = frame.line if frame and frame.line else ""
    name = getattr(err, "name", None) if isinstance(err, AttributeError) else None
    if name in XP_FORMS and (match := re.search(rf"\.{name}\b", line)):
        x = receiver(line[:match.start()])
        rest = line[match.end():]
        args = inside(rest) if rest.startswith("(") else ""
        shape = args if args.startswith("(") or not args else f"({args},)" if "," not in args else f"({args})"
        form = (XP_FORMS[name].replace("{, args}", f", {args}" if args else "").replace("{args}", args)
                .replace("{shape}", shape).replace("{x}", x))
        # namespace() of the array itself, or of the first array an expression reads
        arrays = re.findall(r"(?<![\"'\w.])([A-Za-z_][\w.]*)(?![\w.\[(\"'])", x)
        return f"; write {form}, with xp = namespace({arrays[0] if arrays else x})"
    numpy_call = r"\b(?:np|numpy)\.(\w+)\(([^,()]*)"
    calls = re.findall(numpy_call, line) or re.findall(numpy_call, source_of(student))
    if calls:
        forms = listed(f"xp.{XP_NAMES.get(f, f)} for np.{f}" for f in dict.fromkeys(f for f, _ in calls))
        return f"; write {forms}, with xp = namespace({calls[0][1].strip() or 'x'})"
    return ""


def source_of(function):
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        return ""


def receiver(text):
    """The expression a method is called on, at the end of `text`: 'self.grads["b"]', '(a * b)'."""
    i, depth = len(text), 0
    while i > 0:
        ch = text[i - 1]
        if depth or ch in ")]":
            depth += (ch in ")]") - (ch in "([")
        elif not (ch.isalnum() or ch in "_."):
            break
        i -= 1
    return text[i:]


def inside(text):
    """What lies inside the brackets `text` starts with."""
    depth = 0
    for i, ch in enumerate(text):
        depth += (ch in "([") - (ch in ")]")
        if depth == 0:
            return text[1:i]
    return text[1:]
