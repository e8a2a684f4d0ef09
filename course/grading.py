"""The grading engine: each exercise of course/exercises.py checked, and a wrong answer diagnosed.

For each exercise, in turn, the student's function is put in place with the reference
version of every other exercise (so one unfinished or wrong exercise never fails another),
and the exercise's check runs on each of BACKENDS: an answer is correct when, on NumPy, its
worst relative error is below TOLERANCE and it changed none of its inputs, and on the
array-API backend it runs and gives the same. A wrong answer is run against the
exercise's classic mistakes, and one that gives the same result is named, with its hint;
one that matches none is diagnosed from its gradients, and its parts right and wrong are
named with the step of the derivation the wrong ones come from (course/diagnosis.py). An
exception names the student's line that led to it, and the library's line where it was
raised. Each check runs under the autograder's time limit for it, and a correct backward is
timed at a training step's size against the reference (course/timing.py).

Here, in the teacher's project, the student's functions are the ones its modules define when
imported and the reference ones are compiled from its own files (so that grading the project
says every exercise is correct). A workspace has no reference code: it grades against the
numbers of its key (course/key.py).

Running an answer and judging it are two steps, so that they can happen in two processes:
`run_check` runs a check and keeps only plain data (a Run: what the function gave, what it
changed, what it raised), and `judge` turns a Run and the expected values into a Result.
`make grade` does both here, in one process; the course's autograder (course/autograder.py)
runs the student's code in a process of its own and judges in one that never runs it.
"""

import ast
import contextlib
import dataclasses
import importlib
import os
import sys
from dataclasses import dataclass, field

import numpy as np

from nn.backend import get_backend, namespace
from nn.gradcheck import TOLERANCE, rel_error

from .diagnosis import as_float64, at, diagnoses, helper_frame, listed, student_frame, wrong_steps
from .exercises import EXERCISES, Checked
from .timing import TimedOut, limit_of, seconds, slow, time_limit
from .workspace import REFERENCE, function_node
from .xp_hints import xp_hint

KEY = os.path.join(".key", "key.npz")  # a workspace's answer key, as numbers (course/key.py)
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
    old, where = places(exercise)
    for place, attr in where:
        setattr(place, attr, function)
    try:
        yield
    finally:
        for place, attr in where:
            setattr(place, attr, old)


def places(exercise):
    """(the function in the exercise's place now, [(module or class, attribute)] where it is)."""
    owner, name = owner_of(exercise)
    old = vars(owner)[name]
    where = [(owner, name)]
    if isinstance(owner, type(sys)):
        where += [(m, attr) for m in list(sys.modules.values()) if m is not owner and
                  (getattr(m, "__name__", "") or "").split(".")[0] in ("nn", "models", "lab", "course", "apps")
                  for attr, value in list(vars(m).items()) if value is old]
    return old, where


def reference_file(exercise, root=None):
    """(source, filename) of the exercise's reference file: .reference/<file> in a workspace, else
    <file>; in `root`, else ROOT."""
    root = ROOT if root is None else root
    path = os.path.join(root, REFERENCE, exercise.file)
    if not os.path.exists(path):
        path = os.path.join(root, exercise.file)
    with open(path) as f:
        return f.read(), path


def in_workspace():
    return os.path.exists(os.path.join(ROOT, KEY))


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


def every_error(got, expected):
    """{name: worst relative error} of every expected quantity, inf where `got` lacks it, has
    another shape or is no array: what partial credit counts, where compare gives up."""
    errors = {}
    for name in expected:
        try:
            a, b = as_float64(got[name]), as_float64(expected[name])
            errors[name] = rel_error(a, b) if a.shape == b.shape and np.all(np.isfinite(a)) else float("inf")
        except (KeyError, TypeError, ValueError):
            errors[name] = float("inf")
    return errors


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
    say when it matches none. The JSON's "message" holds message and diagnoses, a line each.
    parts: the worst error of every part, inf where one is missing or misshapen (what the
    autograder's partial credit counts; not in the JSON)."""

    exercise: object
    status: str
    errors: dict
    message: str = ""
    mistake: object = None
    diagnoses: tuple = ()
    parts: dict = field(default_factory=dict)

    def as_json(self):
        e = self.exercise
        return {"order": e.order, "exercise": e.qualname, "file": e.file, "section": e.section,
                "status": self.status, "errors": self.errors,
                "message": "\n".join(m for m in (self.message, *self.diagnoses) if m),
                "mistake": self.mistake and {"name": self.mistake.name, "hint": self.mistake.hint}}


@dataclass
class Raised:
    """An exception, as plain data: its type's name, its message, and the line of the
    student's function that led to it (line: its number or None; text: that line); helper:
    where in the library's code that line called it was raised ("col2im at nn/conv.py, line 60
    (...)"), or "" where it was raised in the student's line itself."""

    type: str
    message: str
    line: object = None
    text: str = ""
    helper: str = ""

    @classmethod
    def of(cls, err, exercise, student=None):
        frame, helper = student_frame(err, exercise, student), helper_frame(err, exercise, student)
        return cls(type(err).__name__, str(err), frame and frame.lineno, (frame and frame.line or "").strip(),
                   f"{helper.name} at {at(helper)}" if helper else "")

    def said(self, exercise):
        """'raised ValueError at nn/conv.py, line 202 (return outer(col2im(...))), in col2im at
        nn/conv.py, line 60 (...): cannot reshape ...'"""
        where = "" if self.line is None else f" at {exercise.file}, line {self.line}" + (
            f" ({self.text})" if self.text else "")
        if self.type == TimedOut.__name__:
            return f"timed out: still running after {self.message} s, the autograder's limit for it" + (
                f"; it was{where}" if where else "")
        return f"raised {self.type}{where}" + (f", in {self.helper}" if self.helper else "") + f": {self.message}"

    def is_stub(self, exercise):
        return self.type == "NotImplementedError" and self.message == exercise.stub_message


@dataclass
class Run:
    """What running an exercise's check on one backend gave, as plain data: got ({name: array}),
    changed (the inputs changed in place), foreign ({name: module} of returned arrays not of
    the backend), error (a Raised, or None), hint (the xp form of a NumPy-only call, or ""),
    malformed (why what came back cannot be judged, or "")."""

    got: dict
    changed: tuple = ()
    foreign: dict = field(default_factory=dict)
    error: object = None
    hint: str = ""
    malformed: str = ""


def run_check(exercise, backend, student):
    """(the Checked, or None if it raised; the Run) of the exercise's check on `backend`, with
    whatever is installed now. student: the function under test (for the xp hint)."""
    xp = get_backend(backend)
    hinted = backend != next(iter(BACKENDS))  # on NumPy a NumPy call is no mistake
    limit = limit_of(exercise, ROOT)
    try:
        with time_limit(limit):
            checked = exercise.check(xp)
    except TimedOut as err:  # stopped where it was: said, and the next exercise graded
        return None, Run({}, error=dataclasses.replace(Raised.of(err, exercise, student), message=f"{limit:g}"))
    except Exception as err:  # a student's code may fail in any way; say how, and go on
        return None, Run({}, error=Raised.of(err, exercise, student),
                         hint=xp_hint(err, exercise, student) if hinted else "")
    foreign = {name: type(value).__module__.split(".")[0] for name, value in checked.got.items()
               if hasattr(value, "shape") and not lives_on(value, xp)}
    hint = xp_hint(None, exercise, student) if foreign and hinted else ""
    return checked, Run(checked.got, tuple(checked.changed), foreign, hint=hint)


def judge(exercise, run, reference, elsewhere_runs=(), root=None, recognise=None):
    """The Result of an answer from `run` (its Run on NumPy), judged against `reference` (a
    Checked: the expected values, and the symbols and parts its diagnoses name), with the
    TOLERANCE, the mistakes and the diagnoses of this process. elsewhere_runs: (Checked,
    Run, backend) on each other backend, read only for an answer right on NumPy. root: where the
    reference files are (ROOT when None)."""
    if run.error is not None:
        if run.error.is_stub(exercise):
            return Result(exercise, "not started", {}, "still the stub: it raises NotImplementedError")
        if run.error.type == TimedOut.__name__:
            return Result(exercise, "timed out", {}, run.error.said(exercise))
        return Result(exercise, "wrong", {}, run.error.said(exercise))
    every = every_error(run.got, reference.expected)
    parts = worst_per_part(every) if exercise.per_part else every
    if run.malformed:
        return Result(exercise, "wrong", {}, run.malformed, parts=parts)
    errors, problem = compare(run.got, reference.expected)
    shown = worst_per_part(errors) if errors is not None and exercise.per_part else errors or {}
    if run.changed:  # said instead of a wrong value: the check computed the expected from copies
        function = exercise.qualname.split(".")[-1]
        problem = "; ".join(filter(None, (
            problem, f"your {function} changed {listed(run.changed)} in place: {exercise.inputs_hint}")))
    right = errors is not None and correct(errors)
    if right and not run.changed:
        problem = problem or next(filter(None, (elsewhere(exercise, other, there, backend)
                                                for there, other, backend in elsewhere_runs)), "")
        return Result(exercise, "wrong" if problem else "correct", shown, problem, parts=parts)
    # a classic mistake may change an input, and nothing else; recognise: got -> one, from a workspace's key
    mistake = (recognise or (lambda got: diagnose(exercise, got, root)))(run.got)
    checked = Checked(run.got, reference.expected, run.changed, reference.symbols, reference.parts)
    found = () if mistake or right else tuple(f'{message}: reread docs/derivations.md, "{exercise.section}"'
                                              for message in diagnoses(checked, errors))
    if not (mistake or right) and (not found or not all(e >= TOLERANCE for e in parts.values())):
        found += tuple(filter(None, [wrong_steps(exercise, parts, ROOT if root is None else root)]))  # right and wrong
    return Result(exercise, "wrong", shown, problem, mistake, found, parts)


def grade_one(exercise, student):
    """The Result of `student` (a function) for `exercise`, every other exercise being the reference."""
    first, *others = BACKENDS
    with installed(exercise, student):
        checked, run = run_check(exercise, first, student)
        elsewhere_runs = (run_check(exercise, backend, student) + (backend,) for backend in others)
        return judge(exercise, run, checked, elsewhere_runs)


def elsewhere(exercise, run, reference, backend):
    """What goes wrong on `backend` with an answer right on NumPy, from its Run there and the
    reference Checked there (None if unused): a message, or ""."""
    on = f"on {BACKENDS[backend]}"
    if run.error is not None:
        return f"{on}: {run.error.said(exercise)}{run.hint}"
    if run.malformed:
        return f"{on}: {run.malformed}"
    if run.foreign:  # np.exp(x) of an array_api_strict x, say: a NumPy array, which a GPU would refuse
        return (f"{on}: it returned {listed(sorted(set(run.foreign.values())))} arrays ({listed(run.foreign)}), "
                f"not the backend's own{run.hint}")
    errors, problem = compare(run.got, reference.expected)
    if problem or not correct(errors):
        worst = problem or "worst relative error {1:.1e} ({0})".format(*max(errors.items(), key=lambda kv: kv[1]))
        return f"{on}: {worst}, where NumPy gives the right values"
    return ""


def lives_on(value, xp):
    try:
        return namespace(value) is xp
    except Exception:  # of no backend at all
        return False


def diagnose(exercise, got, root=None):
    """The classic mistake of `exercise` whose result equals `got`, or None."""
    from . import mistakes  # the catalogue: in the teacher's project only

    reference_source, filename = reference_file(exercise, root)
    numpy = get_backend("numpy")
    for mistake in mistakes.of(exercise):
        for version in range(len(mistake.versions)):
            wrong = compiled(exercise, mistakes.with_mistake(reference_source, exercise, mistake, version), filename)
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
    """Grade each of `exercises` with the reference version of all the others: [Result]. In a
    workspace, against its key (course/key.py). A correct backward is timed at a training step's
    size too, and warned of where it is much slower than the reference (course/timing.py)."""
    students = [vars(owner)[name] for owner, name in map(owner_of, exercises)]  # what the modules define
    if in_workspace():  # no reference code there: its key's numbers, and the student's own functions
        from .key import from_key, read_key

        recorded = read_key(ROOT)[0]
        return [timed(r, lambda e: recorded[e.qualname].seconds, contextlib.nullcontext)
                for r in from_key(exercises, recorded)]
    with references():  # the reference everywhere first...
        return [timed(grade_one(e, student), seconds, lambda: installed(e, student))  # ...then each student's
                for e, student in zip(exercises, students)]


def timed(result, reference_seconds, students):
    """`result`, with a warning in its message where it is correct and its backward, timed at a
    training step's size with the block `students()` in place, is much slower than
    reference_seconds(exercise)."""
    if result.status != "correct":
        return result
    exercise, limit = result.exercise, limit_of(result.exercise, ROOT)
    reference = reference_seconds(exercise)
    if not reference:
        return result
    with students():
        took = seconds(exercise, limit)
    return dataclasses.replace(result, message=slow(exercise, took, reference, limit))


@contextlib.contextmanager
def references():
    """Every exercise's reference version in place while the block runs."""
    with contextlib.ExitStack() as stack:
        for e in EXERCISES:
            stack.enter_context(installed(e, compiled(e, *reference_file(e))))
        yield


def json_report(results):
    """The --json payload, for a course's autograder (its layout is JSON_VERSION's)."""
    return {"version": JSON_VERSION, "tolerance": TOLERANCE, "workspace": in_workspace(),
            "correct": sum(r.status == "correct" for r in results), "total": len(results),
            "exercises": [r.as_json() for r in results]}
