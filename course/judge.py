"""The parent of the autograder: each exercise run by a child, and judged where no submitted code runs.

For each exercise the parent parses the student's file (course/intake.py), writes the child's
folder (course/stage.py), and starts the child (course/sandbox.py) as a uid of its own, with a
time limit. It computes the expected values itself, with the course's reference, at the check's
size and at a realistic one (course/realistic.py); reads the child's report, bounded and
validated, as numbers and as names it already knows; and judges with grading.judge. Every
message is its own. When the child ends, every process of its uid is killed. Nothing it wrote
survives it for a later exercise's child to read: where the kernel allows (root with
CAP_SYS_ADMIN, probed once by cleanup.namespaces_work), the child ran in mount and IPC namespaces of
its own (sandbox.isolated), gone with its last process; elsewhere the parent sweeps (cleanup.sweep):
the files of its uid in every world-writable folder (found once, before any child runs),
removed by a loop on folder descriptors (no depth or path-length limit, no count a child can
spend), within SWEEP_SECONDS (else the exercise is "crashed"), and its SysV IPC objects. An
exercise whose grading fails for any reason is "crashed"; the others are still graded.

What the child alone could report (an input changed in place, an array of another backend, the
array-API backend's run) is said as advice and changes no points (README, "For teachers").
"""

import ast
import builtins
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

from nn.backend import get_backend

from . import grading
from .cleanup import kill_user, namespaces_work, remove_tree, sweep, world_writable
from .diagnosis import listed
from .exercises import EXERCISES
from .intake import take_submission, their_function
from .points import TABLE, check_parts, load_table
from .realistic import REALISTIC, REALISTIC_TOLERANCE
from .results import shown
from .stage import calls, make_stage
from .xp_hints import XP_NAMES

FIRST_UID = 62000  # exercise k's child runs as uid (and gid) FIRST_UID + k, with no account: the course's spare uids
MAX_REPORT = 80 << 20  # bytes of a child's report read, at most (its arrays: about a million float64)
MAX_HEADER = 1 << 16  # bytes of one record's JSON line
EXCEPTIONS = {n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)} | {
    "AxisError", "LinAlgError", "_ArrayMemoryError"}  # the exception types named as they are
CHILD = "import sys; sys.path.insert(0, sys.argv[1]); from course.sandbox import main; main()"


@dataclasses.dataclass(frozen=True)
class Confinement:
    """How a child's leftovers are kept from later ones: its namespaces (`isolate`), or a sweep of
    the folders `writable` after it."""

    isolate: bool
    writable: tuple = ()


@dataclasses.dataclass
class Ran:
    """How a child ended: records ({(case, backend): (header, bytes)}) it wrote, how it ended."""

    records: dict
    timed_out: bool = False
    how: str = ""  # "" when it wrote every record, else how it ended


def spare_uid(exercise):
    return FIRST_UID + exercise.order if os.geteuid() == 0 else None


def run_child(stage, exercise, text, limit, workdir, uid, confinement=Confinement(False)):
    """Ran: the child for `exercise` run on the student's file `text` in the folder `stage`."""
    report = tempfile.NamedTemporaryFile(dir=workdir, delete=False)
    spec = {"exercise": exercise.qualname, "text": text, "fd": report.fileno(), "uid": uid,
            "backends": list(grading.BACKENDS), "isolate": confinement.isolate and uid is not None}
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/nonexistent",
           **dict.fromkeys(("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"), "1")}
    kill_user(uid)
    start = time.monotonic()
    with report:
        child = subprocess.Popen([sys.executable, "-I", "-c", CHILD, stage], cwd=stage, env=env, stdin=subprocess.PIPE,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(report.fileno(),),
                                 start_new_session=True, umask=0o077)
        try:
            child.stdin.write(json.dumps(spec).encode())
            child.stdin.close()
        except OSError:  # it ended before reading
            pass
        try:
            code = child.wait(timeout=max(0.1, limit - (time.monotonic() - start)))
        except subprocess.TimeoutExpired:
            code = None
        finally:
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            child.wait()
            kill_user(uid)
            if uid is not None and not spec["isolate"]:
                sweep(uid, confinement.writable)
    records, complete = read_report(report.name, exercise)
    os.remove(report.name)
    how = "" if complete and code == 0 else (f"killed by {signal.Signals(-code).name}" if code and code < 0 and
                                             -code in signal.valid_signals() else f"exit status {code}")
    return Ran(records, code is None, how)


def read_report(path, exercise):
    """({(case, backend): (header, bytes)}, whether every record expected came): bounded, never raises."""
    records = {}
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_REPORT + 1)
    except OSError:
        return records, False
    at = 0
    while at < len(data) and len(data) <= MAX_REPORT:
        end = data.find(b"\n", at, at + MAX_HEADER)
        try:
            header = json.loads(data[at:end]) if end > 0 else None
            size = 8 * sum(int(np.prod(shape)) for _, shape in header["arrays"]) if plain(header) else -1
        except (ValueError, TypeError, KeyError, RecursionError, OverflowError):
            break
        if size < 0 or end + 1 + size > len(data) or (header["case"], header["backend"]) in records:
            break
        records[(header["case"], header["backend"])] = (header, data[end + 1:end + 1 + size])
        at = end + 1 + size
    wanted = {("check", b) for b in grading.BACKENDS} | ({("realistic", "numpy")} if exercise.qualname in REALISTIC
                                                         else set())
    return records, set(records) == wanted


def plain(header):
    """A record's JSON line has the layout of sandbox.record, with bounded names and shapes."""
    if not (isinstance(header, dict) and header.get("case") in ("check", "realistic")
            and header.get("backend") in grading.BACKENDS and isinstance(header.get("arrays"), list)
            and len(header["arrays"]) <= 64 and isinstance(header.get("changed"), list)
            and isinstance(header.get("foreign"), dict)):
        return False
    return all(isinstance(a, list) and len(a) == 2 and isinstance(a[0], str) and isinstance(a[1], list)
               and len(a[1]) <= 8 and all(type(n) is int and 0 <= n < 1 << 24 for n in a[1])
               and int(np.prod(a[1], dtype=np.float64)) <= MAX_REPORT // 8 for a in header["arrays"])


def received(record, expected, exercise, node, text):
    """The grading.Run of one record, in the parent's words: a quantity kept only when the check
    has it, an input only when the function has that argument, an exception's type only from
    EXCEPTIONS, its line only inside the student's function (its text read from their file)."""
    if record is None:
        return grading.Run({}, malformed="the process running it ended before this run")
    header, data = record
    if header["error"] is not None:
        error = header["error"] if isinstance(header["error"], dict) else {}
        kind = error.get("type") if error.get("type") in EXCEPTIONS else "an exception of its own"
        line = error.get("line")
        line = line if type(line) is int and node.lineno <= line <= node.end_lineno else None
        said = text.splitlines()[line - 1].strip()[:200] if line else ""
        return grading.Run({}, error=grading.Raised(kind, "run `make grade` in your workspace to read its message",
                                                    line, said))
    got, at, unknown = {}, 0, 0
    for name, shape in header["arrays"]:
        size = int(np.prod(shape))
        if name in expected:
            got[name] = np.frombuffer(data, np.float64, size, at).reshape(shape)
        unknown += name not in expected
        at += 8 * size
    arguments = {a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)}
    changed = tuple(n for n in expected_order(header["changed"], arguments))
    foreign = {n: m if m in ("numpy", "array_api_strict", "cupy") else "another library's"
               for n, m in header["foreign"].items() if n in expected and isinstance(m, str)}
    return grading.Run(got, changed, foreign, malformed=f"it gave {unknown} quantities the check has not" * bool(
        unknown and set(got) != set(expected)))


def expected_order(names, allowed):
    return [n for n in dict.fromkeys(names) if isinstance(n, str) and n in allowed]


def xp_advice(node, text):
    """'; write xp.exp for np.exp, ...' from the NumPy calls in the student's function, or ''."""
    source = "\n".join(text.splitlines()[node.lineno - 1:node.end_lineno])
    calls = re.findall(r"\b(?:np|numpy)\.(\w+)\(", source)
    forms = listed(f"xp.{XP_NAMES.get(f, f)} for np.{f}" for f in dict.fromkeys(calls) if f.isidentifier())
    return f"; write {forms}, with xp = namespace(...) of its input" if forms else ""


def graded(source, exercise, submitted, table, workdir, confinement=Confinement(False)):
    """(Result, whether its code ran as a uid of its own): the exercise graded from the submitted file."""
    node, result = their_function(submitted, exercise)
    if node is None:
        return result, False
    if stub_only(node):
        return grading.Result(exercise, "not started", {}, "still the stub: it raises NotImplementedError"), False
    first, *others = grading.BACKENDS
    realistic = REALISTIC.get(exercise.qualname)
    (expected, realistic_expected), called = calls(lambda: (
        {b: exercise.check(get_backend(b)) for b in grading.BACKENDS},
        {k: np.asarray(v, dtype=np.float64) for k, v in realistic(np).items()} if realistic else {}))
    check_parts(table, exercise, expected[first].expected)
    uid = spare_uid(exercise)
    stage = tempfile.mkdtemp(dir=workdir)
    try:
        make_stage(source, exercise, stage, uid, called)
        ran = run_child(stage, exercise, submitted.text, table[exercise].time_limit_s, workdir, uid, confinement)
    finally:
        remove_tree(stage)
    runs = {key: received(ran.records.get(key), expected[key[1]].expected if key[0] == "check" else realistic_expected,
                          exercise, node, submitted.text)
            for key in [("check", b) for b in grading.BACKENDS] + [("realistic", "numpy")] * bool(realistic)}
    if ("check", first) not in ran.records:
        limit = table[exercise].time_limit_s
        status, said = ("timed out", f"still running after {limit:g} s, its time limit, and stopped: a loop that never "
                                     "ends?") if ran.timed_out else ("crashed", f"the process running it ended before "
                                     f"its check did ({ran.how}): does it call os._exit, or take more than 4 GiB?")
        return grading.Result(exercise, status, {}, said), uid is not None
    numpy_run = runs[("check", first)]
    result = grading.judge(exercise, dataclasses.replace(numpy_run, changed=(), foreign={}), expected[first],
                          root=source)
    advice = [f"your function changed {listed(numpy_run.changed)} in place: {exercise.inputs_hint} (the process "
              "running it said so; it costs no points here, for that process could have said otherwise)"] * bool(
        numpy_run.changed)
    for backend in others:
        problem = grading.elsewhere(exercise, runs[("check", backend)], expected[backend], backend)
        if problem:
            advice.append(problem + xp_advice(node, submitted.text) + " (it costs no points here: the process running "
                          "it could have said otherwise)")
    if realistic:
        result = at_realistic_size(result, runs[("realistic", "numpy")], realistic_expected, ran, exercise)
    return dataclasses.replace(result, diagnoses=(*result.diagnoses, *advice)), uid is not None


def at_realistic_size(result, run, expected, ran, exercise):
    """The Result with each part counted right only if it is right at the realistic size too."""
    errors = grading.every_error(run.got, expected)
    parts = grading.worst_per_part(errors) if exercise.per_part else errors
    gated = {p: e if parts.get(p, np.inf) < REALISTIC_TOLERANCE else np.inf for p, e in result.parts.items()}
    if ("realistic", "numpy") not in ran.records:
        said = ("it did not finish the same function at a realistic size (a training step's shapes) within its time "
                "limit: a backward that calls the forward pass for each number it differentiates (finite "
                "differences) takes hours there, where a derived one takes milliseconds")
        return dataclasses.replace(result, status="timed out" if ran.timed_out else "crashed", message=said,
                                   parts=dict.fromkeys(result.parts, np.inf))
    if run.error is not None or result.status == "correct" and gated != result.parts:
        worst = max(parts.values(), default=np.inf)
        said = (f"at a realistic size (a training step's shapes) it {run.error.said(exercise)}" if run.error else
                f"at a realistic size (a training step's shapes) its worst relative error is {shown(worst)}, where a "
                f"derived backward's is rounding's, below {REALISTIC_TOLERANCE:g}: is it computed by differences of "
                "the forward pass, or for the check's shapes only?")
        return dataclasses.replace(result, status="wrong", message="; ".join(filter(None, (result.message, said))),
                                   parts=gated)
    return dataclasses.replace(result, parts=gated)


def stub_only(node):
    """The body (after its docstring) is one `raise NotImplementedError(...)`: the workspace's stub."""
    body = node.body[1:] if ast.get_docstring(node) is not None else node.body
    return (len(body) == 1 and isinstance(body[0], ast.Raise) and isinstance(body[0].exc, ast.Call)
            and isinstance(body[0].exc.func, ast.Name) and body[0].exc.func.id == "NotImplementedError")


def grade_submission(root):
    """[Result] and the submission as taken, for root/submission graded with the course's copy of
    the lab in root/source: (results, taken, whether the children ran as uids of their own)."""
    source = os.path.abspath(os.path.join(root, "source"))
    table = load_table(os.path.join(source, TABLE))
    if os.geteuid() == 0:
        os.chmod(source, 0o700)  # the answer key: out of reach of every child's uid
    taken = take_submission(os.path.join(root, "submission"))
    results, isolated = [], True
    confinement = Confinement(True) if namespaces_work() else Confinement(False, world_writable())
    with tempfile.TemporaryDirectory(prefix="autograder-") as workdir:
        os.chmod(workdir, 0o711)  # a child may pass through to its own folder, and list nothing
        for exercise in EXERCISES:
            try:
                result, own = graded(source, exercise, taken[exercise.file], table, workdir, confinement)
            except Exception as err:  # the grader's own failure (a full disk, say): this exercise alone
                result, own = grading.Result(exercise, "crashed", {}, f"the autograder could not grade it "
                                             f"({type(err).__name__}): tell your teacher"), True
            results.append(result)
            isolated &= own or result.status in ("not started", "not submitted", "does not parse")
    return results, taken, isolated and os.geteuid() == 0
