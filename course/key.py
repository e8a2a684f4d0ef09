"""The answer key a student's workspace grades with: numbers, not code.

`make exercises` runs every check in the teacher's project, where the reference functions and
the catalogue of classic mistakes (course/mistakes.py) are code, and writes what they give on
the grader's fixed inputs to <workspace>/.key/key.npz: each exercise's expected values, every
version of every classic mistake's values, the symbols and parts its diagnoses name, and which
exercises each training run needs. The names and hints ride along zlib-compressed, so that no
search of the workspace turns up an answer line; the numbers are what a gradient check prints
anyway. The workspace then holds no code that computes an answer: the student's own functions
are the only ones there, and an exercise that calls another (the VAE calls Dense) is graded once
the one it calls is correct.
"""

import contextlib
import json
import os
import zlib
from dataclasses import dataclass, field

import numpy as np

from lab.config import MODEL_KINDS
from models.base import LOSSES
from models.conv import ARCHS
from nn.backend import get_backend, namespace, to_numpy

from . import grading, timing
from .diagnosis import listed
from .exercises import EXERCISES, Checked, find
from .grading import KEY, BACKENDS, Result, compare, correct, installed, judge, owner_of, run_check


@dataclass
class Recorded:
    """One exercise as the key holds it: expected {name: array}, symbols, parts (as a Checked
    has them), mistakes: [(name, hint, [{name: array} of each version])], and seconds: the
    reference's backward at a training step's size (course/timing.py), None where it has none."""

    expected: dict
    symbols: dict = field(default_factory=dict)
    parts: dict = field(default_factory=dict)
    mistakes: list = field(default_factory=list)
    seconds: object = None


def plain(value):
    """{name: number}: a check's symbols with NumPy scalars made floats, for JSON."""
    return {name: {symbol: float(v) for symbol, v in symbols.items()} for name, symbols in value.items()}


def write_key(out, exercises, needs):
    """Write out/.key/key.npz from the reference and the catalogue in place now (the teacher's
    project). needs: {"vae/mse/mlp": [qualname, ...]}, which exercises each training run uses."""
    from . import mistakes  # the teacher's side: the catalogue

    numpy = get_backend("numpy")
    arrays, meta = {}, {"exercises": {}, "needs": needs}
    with grading.references():
        for exercise in exercises:
            checked = exercise.check(numpy)
            q = exercise.qualname
            arrays |= {f"{q}/expected/{name}": np.asarray(to_numpy(v), dtype=np.float64)
                       for name, v in checked.expected.items()}
            entry = {"expected": list(checked.expected), "symbols": plain(checked.symbols), "parts": checked.parts,
                     "mistakes": [], "seconds": timing.seconds(exercise)}
            source, filename = grading.reference_file(exercise)
            for i, mistake in enumerate(mistakes.of(exercise)):
                versions = []
                for v in range(len(mistake.versions)):
                    wrong = grading.compiled(exercise, mistakes.with_mistake(source, exercise, mistake, v), filename)
                    with grading.installed(exercise, wrong):
                        try:
                            got = exercise.check(numpy).got
                        except Exception:  # a version no running code can match (dout's shape refused)
                            continue
                    names = [name for name, value in got.items() if value is not None]
                    arrays |= {f"{q}/mistake/{i}/{len(versions)}/{name}": np.asarray(to_numpy(got[name]),
                                                                                    dtype=np.float64)
                               for name in names}
                    versions.append(names)
                entry["mistakes"].append({"name": mistake.name, "hint": mistake.hint, "versions": versions})
            meta["exercises"][q] = entry
    packed = np.frombuffer(zlib.compress(json.dumps(meta).encode()), dtype=np.uint8)
    os.makedirs(os.path.dirname(os.path.join(out, KEY)), exist_ok=True)
    np.savez_compressed(os.path.join(out, KEY), meta=packed, **arrays)


def training_runs():
    """Every (model, loss, arch) a workspace may train: the keys of a key's needs. Loss "gaussian"
    learns the decoder's variance, which only a VAE has (the autoencoder refuses it)."""
    return [(kind.key, loss, arch) for kind in MODEL_KINDS for loss in LOSSES for arch in ARCHS
            if loss != "gaussian" or kind.key == "vae"]


def needs_key(config):
    return f"{config.model}/{config.loss}/{config.arch}"


def read_key(root):
    """({qualname: Recorded}, needs) of root/.key/key.npz, or None where there is none."""
    path = os.path.join(root, KEY)
    if not os.path.exists(path):
        return None
    with np.load(path) as stored:
        meta = json.loads(zlib.decompress(stored["meta"].tobytes()))
        recorded = {}
        for q, entry in meta["exercises"].items():
            mistakes = [(m["name"], m["hint"], [{name: stored[f"{q}/mistake/{i}/{v}/{name}"] for name in names}
                                                for v, names in enumerate(m["versions"])])
                        for i, m in enumerate(entry["mistakes"])]
            recorded[q] = Recorded({name: stored[f"{q}/expected/{name}"] for name in entry["expected"]},
                                   entry["symbols"], entry["parts"], mistakes, entry.get("seconds"))
    return recorded, meta["needs"]



# --- Grading from the key -------------------------------------------------------------------


def traced(function, exercise, called):
    """`function`, adding exercise.qualname to the set `called` each time it runs."""

    def wrapper(*args, **kwargs):
        called.add(exercise.qualname)
        return function(*args, **kwargs)

    return wrapper


def skipped_differences(f, x, h=1e-4):
    """numerical_grad's stand-in while the expected values come from the key: the checks' own
    centred differences are not needed, and the student's numerical_grad may be a stub."""
    return namespace(x).zeros_like(x)


@dataclass(frozen=True)
class Recognised:
    """A classic mistake as the key names it."""

    name: str
    hint: str


def from_key(exercises, recorded):
    """[Result] of `exercises`, each judged against recorded[qualname]. An exercise whose check
    calls another that is not correct yet is "waiting" for it."""
    results = {}

    def result_of(exercise):
        if exercise.qualname not in results:
            results[exercise.qualname] = keyed(exercise, recorded[exercise.qualname], result_of)
        return results[exercise.qualname]

    return [result_of(e) for e in exercises]


def keyed(exercise, entry, result_of):
    """The Result of the student's function for `exercise`, from the key's `entry` (a Recorded)."""
    owner, name = owner_of(exercise)
    student, called, runs = vars(owner)[name], set(), {}
    gradient_check = find("numerical_grad")
    with contextlib.ExitStack() as stack:
        for other in EXERCISES:
            if other is not exercise and other is not gradient_check:
                other_owner, other_name = owner_of(other)
                stack.enter_context(installed(other, traced(vars(other_owner)[other_name], other, called)))
        if exercise is not gradient_check:
            stack.enter_context(installed(gradient_check, skipped_differences))
        for backend in BACKENDS:
            runs[backend] = run_check(exercise, backend, student)
            if runs[backend][1].error and runs[backend][1].error.type == timing.TimedOut.__name__:
                break  # its time is spent
    first = next(iter(BACKENDS))
    checked, run = runs[first]
    if exercise.stub_message in getattr(student, "__code__", compile("", "", "exec")).co_consts:  # not begun
        return Result(exercise, "not started", {}, "still the stub: it raises NotImplementedError")
    waiting = [find(q) for q in sorted(called) if result_of(find(q)).status != "correct"]
    if waiting:
        return Result(exercise, "waiting", {}, f"it calls {listed(f'{e.qualname} ({e.order})' for e in waiting)}, "
                                               f"not correct yet: graded once {'it is' if len(waiting) == 1 else 'they are'}")
    expected = dict(entry.expected)
    for name in checked.expected if checked else ():  # "dW, input_grad False" is dW
        expected.setdefault(name, entry.expected[name.split(",")[0]])
    reference = Checked({}, expected, (), entry.symbols, entry.parts)

    def recognise(got):
        for mistake_name, hint, versions in entry.mistakes:
            if any(not problem and correct(errors) for errors, problem in (compare(got, v) for v in versions)):
                return Recognised(mistake_name, hint)
        return None

    others = [(Checked({}, expected), there, backend) for backend, (_, there) in runs.items() if backend != first]
    return judge(exercise, run, reference, others, recognise=recognise)
