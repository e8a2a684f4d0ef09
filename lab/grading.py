"""The grading engine: each exercise of lab/exercises.py checked, and a wrong answer diagnosed.

For each exercise, in turn, the student's function is put in place with the reference
version of every other exercise (so one unfinished or wrong exercise never fails another),
and the exercise's check runs on each of BACKENDS: an answer is correct when, on NumPy, its
worst relative error is below TOLERANCE and it changed none of its inputs, and on the
array-API backend it runs and gives the same. A wrong answer is run against the
exercise's classic mistakes, and one that gives the same result is named, with its hint;
one that matches none is diagnosed from its gradients (lab/diagnosis.py). An exception
names the line of the student's code it came from.

The student's functions are the ones the workspace's modules define when imported; the
reference ones are compiled from the workspace's .reference/ copies (in the project itself,
from its own files, so that grading there says every exercise is correct).
"""

import ast
import contextlib
import importlib
import os
import sys
from dataclasses import dataclass

import numpy as np

from nn.backend import get_backend, namespace
from nn.gradcheck import TOLERANCE, rel_error

from .diagnosis import as_float64, diagnoses, listed, raised, xp_hint
from .exercises import EXERCISES, with_mistake
from .workspace import REFERENCE, function_node

JSON_VERSION = 1  # of the --json layout: bumped only if a course's autograder would have to change
ROOT = "."  # the folder graded: a workspace, or the project itself
# Where every check runs, and how the scoreboard names it. NumPy first: a wrong answer is
# diagnosed there. array_api_strict has only what NumPy and CuPy share, so an answer that
# runs on it runs on a GPU too.
BACKENDS = {"numpy": "NumPy", "array_api_strict": "the array-API backend (what CuPy shares with NumPy)"}


# --- Putting one version of a function in place -------------------------------------------


def module_of(exercise):
    return importlib.import_module(exercise.file.removesuffix(".py").replace("/", "."))


def owner_of(exercise):
    """(the module or class that holds the exercise's function, the function's name)."""
    *classes, name = exercise.qualname.split(".")
    owner = module_of(exercise)
    for cls in classes:
        owner = getattr(owner, cls)
    return owner, name


def compiled(exercise, source, filename):
    """The exercise's function compiled from `source` (a whole file), in the globals of its live module."""
    node = function_node(ast.parse(source), exercise.qualname)
    namespace = {}
    exec(compile(ast.Module(body=[node], type_ignores=[]), filename, "exec"), vars(module_of(exercise)), namespace)
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


def reference_file(exercise):
    """(source, filename) of the exercise's reference file: .reference/<file> in a workspace, else <file>."""
    path = os.path.join(ROOT, REFERENCE, exercise.file)
    if not os.path.exists(path):
        path = os.path.join(ROOT, exercise.file)
    with open(path) as f:
        return f.read(), path


def in_workspace():
    return os.path.isdir(os.path.join(ROOT, REFERENCE))


# --- Comparing ----------------------------------------------------------------------------


def compare(got, expected):
    """({name: worst relative error}, ""), or (None, a message) when they cannot be compared
    (a missing gradient, a wrong shape)."""
    if set(got) != set(expected):
        missing, extra = [n for n in expected if n not in got], [n for n in got if n not in expected]
        return None, "; ".join([f"gradients missing: {listed(missing)}"] * bool(missing) +
                               [f"unexpected: {listed(extra)}"] * bool(extra))
    errors = {}
    for name in expected:
        a, b = as_float64(got[name]), as_float64(expected[name])
        if a.shape != b.shape:
            return None, f"{name} has shape {a.shape}, and should have {b.shape}"
        errors[name] = rel_error(a, b) if np.all(np.isfinite(a)) else float("inf")
    return errors, ""


def worst_per_part(errors):
    """{"encoder.0.W": e1, "encoder.0.b": e2, "dmu": e3} -> {"encoder": max(e1, e2), "dmu": e3}."""
    parts = {}
    for name, error in errors.items():
        parts.setdefault(name.split(".")[0], []).append(error)
    return {part: max(part_errors) for part, part_errors in parts.items()}


def correct(errors):
    return max(errors.values(), default=0.0) < TOLERANCE


# --- Grading ------------------------------------------------------------------------------


@dataclass
class Result:
    """One exercise's grade. status: "not started", "wrong" or "correct"; errors: the worst
    relative error per checked quantity (or per part of a model), on NumPy; message: what
    went wrong besides the values (an exception, a changed input, another backend);
    mistake: the classic mistake a wrong answer matches; diagnoses: what its gradients
    say when it matches none. The JSON's "message" holds message and diagnoses, a line each."""

    exercise: object
    status: str
    errors: dict
    message: str = ""
    mistake: object = None
    diagnoses: tuple = ()

    def as_json(self):
        e = self.exercise
        return {"order": e.order, "exercise": e.qualname, "file": e.file, "section": e.section,
                "status": self.status, "errors": self.errors,
                "message": "\n".join(m for m in (self.message, *self.diagnoses) if m),
                "mistake": self.mistake and {"name": self.mistake.name, "hint": self.mistake.hint}}


def grade_one(exercise, student):
    """The Result of `student` (a function) for `exercise`, every other exercise being the reference."""
    first, *others = BACKENDS
    with installed(exercise, student):
        try:
            checked = exercise.check(get_backend(first))
        except NotImplementedError as err:
            if str(err) == exercise.stub_message:
                return Result(exercise, "not started", {}, "still the stub: it raises NotImplementedError")
            return Result(exercise, "wrong", {}, raised(err, exercise))
        except Exception as err:  # a student's code may fail in any way; say how, and go on
            return Result(exercise, "wrong", {}, raised(err, exercise))
        errors, problem = compare(checked.got, checked.expected)
        shown = worst_per_part(errors) if errors is not None and exercise.per_part else errors or {}
        if checked.changed:  # said instead of a wrong value: the check computed the expected from copies
            function = exercise.qualname.split(".")[-1]
            problem = "; ".join(filter(None, (
                problem, f"your {function} changed {listed(checked.changed)} in place: {exercise.inputs_hint}")))
        right = errors is not None and correct(errors)
        if right and not checked.changed:
            problem = problem or next(filter(None, (elsewhere(exercise, student, name) for name in others)), "")
            return Result(exercise, "wrong" if problem else "correct", shown, problem)
    mistake = diagnose(exercise, checked.got)  # a classic mistake may change an input, and nothing else
    found = () if mistake or right else tuple(f'{message}: reread docs/derivations.md, "{exercise.section}"'
                                              for message in diagnoses(checked, errors))
    return Result(exercise, "wrong", shown, problem, mistake, found)


def elsewhere(exercise, student, backend):
    """What goes wrong on `backend` with an answer right on NumPy: a message, or ""."""
    xp, on = get_backend(backend), f"on {BACKENDS[backend]}"
    try:
        checked = exercise.check(xp)
    except Exception as err:
        return f"{on}: {raised(err, exercise)}{xp_hint(err, exercise, student)}"
    foreign = {name: type(value).__module__.split(".")[0] for name, value in checked.got.items()
               if hasattr(value, "shape") and not lives_on(value, xp)}
    if foreign:  # np.exp(x) of an array_api_strict x, say: a NumPy array, which a GPU would refuse
        return (f"{on}: it returned {listed(sorted(set(foreign.values())))} arrays ({listed(foreign)}), not the "
                f"backend's own{xp_hint(None, exercise, student)}")
    errors, problem = compare(checked.got, checked.expected)
    if problem or not correct(errors):
        worst = problem or "worst relative error {1:.1e} ({0})".format(*max(errors.items(), key=lambda kv: kv[1]))
        return f"{on}: {worst}, where NumPy gives the right values"
    return ""


def lives_on(value, xp):
    try:
        return namespace(value) is xp
    except Exception:  # of no backend at all
        return False


def diagnose(exercise, got):
    """The classic mistake of `exercise` whose result equals `got`, or None."""
    reference_source, filename = reference_file(exercise)
    numpy = get_backend("numpy")
    for mistake in exercise.mistakes:
        wrong = compiled(exercise, with_mistake(reference_source, exercise, mistake), filename)
        with installed(exercise, wrong):
            try:
                theirs = exercise.check(numpy).got
            except Exception:
                continue
        errors, problem = compare(got, theirs)
        if not problem and correct(errors):
            return mistake
    return None


def grade(exercises=EXERCISES):
    """Grade each of `exercises` with the reference version of all the others: [Result]."""
    students = [vars(owner)[name] for owner, name in map(owner_of, exercises)]  # what the modules define
    with contextlib.ExitStack() as stack:
        for e in EXERCISES:  # the reference everywhere first...
            stack.enter_context(installed(e, compiled(e, *reference_file(e))))
        return [grade_one(e, student) for e, student in zip(exercises, students)]  # ...then each student's


def json_report(results):
    """The --json payload, for a course's autograder (its layout is JSON_VERSION's)."""
    return {"version": JSON_VERSION, "tolerance": TOLERANCE, "workspace": in_workspace(),
            "correct": sum(r.status == "correct" for r in results), "total": len(results),
            "exercises": [r.as_json() for r in results]}
