"""The course's autograder: the lab graded on Gradescope, where the submission is not trusted.

The grading engine is course/grading.py's, with a process boundary in it. The PARENT (run by
Gradescope's run_autograder, from the course's copy of the lab in /autograder/source) reads
the submission only as text: for each exercise it finds the student's file, parses it, and
starts a CHILD process for that exercise alone (`child_main`), with a time limit (the points
table's), as the unprivileged user `nobody` where the machine has one. The child imports the
course's lab, so that every other exercise is the reference; puts in place a function with the
reference's signature and the BODY of the student's function (taken from the syntax tree: no
other line of the student's file runs, not its imports, not its module-level assignments);
runs the exercise's check on each backend; and writes back plain data only (JSON: the arrays
it got, as lists, the inputs changed, an exception's type, message and line) to a file the
parent opened for it. The parent never runs submitted code: it computes the expected values
itself, with the reference, reads the child's JSON (anything malformed is a wrong answer),
and judges with grading.judge: the tolerance, the comparison, the classic mistakes and the
diagnoses are the parent's. A child that times out, is killed, or ends without writing gets a
result that says so; the parent alone writes results.json, and always writes one.

The points of each exercise, its split over parts (partial credit) and its time limit are
the table autograder/points.json (TABLE). `build` writes the zip to upload; `class_report`
counts statuses and classic mistakes over many results.json.
"""

import ast
import copy
import ctypes
import json
import linecache
import os
import pwd
import resource
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass

import numpy as np

from nn.backend import get_backend
from nn.gradcheck import TOLERANCE

from . import grading
from .diagnosis import as_float64, listed
from .exercises import EXERCISES, find
from lab.files import atomic_write
from .workspace import DERIVATIONS, answer_key, function_node

TABLE = os.path.join("autograder", "points.json")  # in the project, and in /autograder/source
USER = "nobody"  # whom each child runs as, when the parent runs as root and the machine has this user
MAX_FILE = 1 << 20  # bytes of a submitted file read, at most
MAX_OUTPUT = 32 << 20  # bytes a child may write (RLIMIT_FSIZE), and the most of its output read
MAX_VALUES = 1 << 20  # numbers a child may send back for one backend
MEMORY = 4 << 30  # address space of a child (RLIMIT_AS)
STATUSES = ("correct", "wrong", "not started", "timed out", "crashed", "does not parse", "not submitted")
# The packages a grader needs (requirements.txt gives their versions): what setup.sh installs.
GRADER_NEEDS = ("numpy", "array-api-compat", "array-api-strict")
SOURCE = ("nn", "models", "lab", "course", "apps", DERIVATIONS, "requirements.txt", TABLE)  # the zip's project files
TEMPLATES = ("setup.sh", "run_autograder")  # autograder/<name> of the project, at the zip's root
CHILD = "import sys; sys.path.insert(0, sys.argv[1]); from course.autograder import child_main; child_main()"


# --- The points table ---------------------------------------------------------------------


class TableError(ValueError):
    """The points table is not one the autograder can grade by; its message names the entry."""


@dataclass(frozen=True)
class Points:
    """What an exercise is worth: `points`, split over its `parts` by weight; its time limit."""

    points: float
    parts: dict
    time_limit_s: float


@dataclass(frozen=True)
class Table:
    exercises: dict  # {qualname: Points}
    right_values_wrong_otherwise: float
    visibility: str

    def __getitem__(self, exercise):
        return self.exercises[exercise.qualname]


def number(value, where, low=0.0):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= low or value == float("inf"):
        raise TableError(f"{TABLE}: {where} must be a number >= {low:g}, not {value!r}")
    return float(value)


def load_table(path):
    """The Table in the JSON file `path` (see autograder/points.json's "about")."""
    try:
        with open(path) as f:
            raw = json.load(f)
        entries, limit = raw["exercises"], number(raw["time_limit_s"], "time_limit_s", 0.1)
        share = number(raw["right_values_wrong_otherwise"], "right_values_wrong_otherwise")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise TableError(f"{path}: not a points table ({type(err).__name__}: {err})") from None
    if share > 1 or raw.get("visibility", "visible") not in ("visible", "hidden", "after_due_date", "after_published"):
        raise TableError(f"{TABLE}: right_values_wrong_otherwise must be at most 1, and visibility one of Gradescope's")
    names = [e.qualname for e in EXERCISES]
    if not isinstance(entries, dict) or sorted(entries) != sorted(names):
        raise TableError(f"{TABLE}: exercises must name each of {listed(names)}, once")
    table = {}
    for name in names:
        entry = entries[name]
        parts = entry.get("parts") if isinstance(entry, dict) else None
        if not isinstance(parts, dict) or not parts:
            raise TableError(f"{TABLE}: {name} needs its parts, {{part: weight}}")
        weights = {part: number(w, f"{name}'s weight of {part}") for part, w in parts.items()}
        if not sum(weights.values()) > 0:
            raise TableError(f"{TABLE}: {name}'s parts weigh nothing")
        table[name] = Points(number(entry.get("points"), f"{name}'s points"), weights,
                             number(entry.get("time_limit_s", limit), f"{name}'s time_limit_s", 0.1))
    return Table(table, share, raw.get("visibility", "visible"))


def parts_of(exercise, expected):
    """The part names of an exercise, as its Result reports them, from its check's expected."""
    return list(grading.worst_per_part(dict.fromkeys(expected, 0.0)) if exercise.per_part else expected)


def check_parts(table, exercise, expected):
    if sorted(table[exercise].parts) != sorted(parts_of(exercise, expected)):
        raise TableError(f"{TABLE}: the parts of {exercise.qualname} are {listed(parts_of(exercise, expected))}, "
                         f"not {listed(table[exercise].parts)}")


def earned(result, points, table):
    """The points a Result earns: all when correct; else each part right on NumPy earns its weight's
    share, the whole kept only in part (right_values_wrong_otherwise) when it is wrong otherwise."""
    if result.status == "correct":
        return points.points
    right = sum(w for part, w in points.parts.items() if result.parts.get(part, float("inf")) < TOLERANCE)
    share = right / sum(points.parts.values()) if result.status == "wrong" else 0.0
    return round(points.points * (table.right_values_wrong_otherwise if share == 1 else share), 4)


# --- The submission, as text --------------------------------------------------------------


@dataclass
class Submitted:
    """The student's file for an exercise file: where it was found, and its text (None when it
    was not found or cannot be read: `problem` says why)."""

    path: str = ""
    text: object = None
    problem: str = ""


def hidden(parts):
    return any(p.startswith(".") or p in ("__MACOSX", "__pycache__") for p in parts)  # .reference/, .git/, ...


def candidates(folder):
    """{path shown: (path parts, a function reading at most MAX_FILE + 1 bytes)}: every plain file
    of the submission, and every member of a zip in it (never unpacked); links are not followed."""
    found = {}
    for here, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not os.path.islink(os.path.join(here, d)))
        for name in sorted(files):
            path = os.path.join(here, name)
            rel = os.path.relpath(path, folder)
            if os.path.islink(path) or not os.path.isfile(path) or hidden(rel.split(os.sep)):
                continue
            if name.endswith(".zip"):
                found.update(zip_members(path, rel))
            else:
                found[rel] = (rel.split(os.sep), lambda path=path: read_plain(path))
    return found


def read_plain(path):
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as f:
        return f.read(MAX_FILE + 1)


def zip_members(path, rel):
    try:
        with zipfile.ZipFile(path) as z:
            infos = [i for i in z.infolist() if not i.is_dir() and not hidden(i.filename.split("/"))]
    except (zipfile.BadZipFile, OSError):
        return {}

    def reader(info):
        def read():
            with zipfile.ZipFile(path) as z, z.open(info) as f:
                return f.read(MAX_FILE + 1)
        return read

    return {f"{rel}:{i.filename}": (i.filename.split("/"), reader(i)) for i in infos}


def take_submission(folder):
    """{exercise file: Submitted}: each exercise file found at its path (under any folders: a
    zip's top folder is fine), or else by its name alone (loose files)."""
    found, taken = candidates(folder), {}
    for file in sorted({e.file for e in EXERCISES}):
        want = file.split("/")
        at_path = [p for p, (parts, _) in found.items() if parts[-len(want):] == want]
        by_name = [p for p, (parts, _) in found.items() if parts[-1] == want[-1]]
        chosen = min(at_path or by_name, key=lambda p: (len(found[p][0]), p), default=None)
        if chosen is None:
            taken[file] = Submitted(problem=f"no {file} in the submission (upload the workspace's {file}, or a zip "
                                            "of the workspace)")
            continue
        try:
            data = found[chosen][1]()
            if len(data) > MAX_FILE:
                raise ValueError(f"larger than {MAX_FILE >> 10} KiB")
            taken[file] = Submitted(chosen, data.decode("utf-8"))
        except (OSError, ValueError, zipfile.BadZipFile, RuntimeError) as err:  # UnicodeDecodeError is a ValueError
            taken[file] = Submitted(chosen, problem=f"your {chosen} cannot be read ({err})")
    return taken


def their_function(submitted, exercise):
    """(the FunctionDef of the exercise in the submitted text, or None; the Result if None)."""
    if submitted.text is None:
        return None, grading.Result(exercise, "not submitted", {}, submitted.problem)
    try:
        node = function_node(ast.parse(submitted.text), exercise.qualname)
    except SyntaxError as err:
        line = f" (line {err.lineno}: {(err.text or '').strip()})" if err.lineno else ""
        return None, grading.Result(exercise, "does not parse", {},
                                    f"your {submitted.path} does not parse{line}: {err.msg}")
    except KeyError:
        return None, grading.Result(exercise, "not submitted", {},
                                    f"{exercise.qualname} is not defined in your {submitted.path}")
    except (ValueError, RecursionError, MemoryError) as err:
        return None, grading.Result(exercise, "does not parse", {}, f"your {submitted.path} does not parse: {err}")
    if not isinstance(node, ast.FunctionDef):
        return None, grading.Result(exercise, "not submitted", {}, f"{exercise.qualname} is not a function (def)")
    return node, None


# --- The child: the student's function body, run where nothing is judged ------------------


def child_main():
    """Run one exercise's check with the student's function body in place; write plain data.

    Reads a JSON spec on stdin: {"exercise": qualname, "text": the student's file, "fd": the
    file descriptor to write to}. Everything trusted is imported and compiled before the
    privileges are dropped; the student's body runs after."""
    spec = json.loads(sys.stdin.read())
    out = os.fdopen(spec["fd"], "w")
    exercise = find(spec["exercise"])
    for backend in grading.BACKENDS:  # the reference's run first: whatever the check imports is imported
        exercise.check(get_backend(backend))  # now, while the packages can still be read
    reference, _ = grading.reference_file(exercise)
    node = copy.copy(function_node(ast.parse(reference), exercise.qualname))  # the reference's signature...
    theirs = function_node(ast.parse(spec["text"]), exercise.qualname)
    node.body, node.lineno, node.end_lineno = theirs.body, theirs.lineno, theirs.end_lineno  # ...their body
    linecache.cache[exercise.file] = (len(spec["text"]), None, spec["text"].splitlines(True), exercise.file)
    user = unprivileged()
    try:
        function = compiled_node(exercise, node)
        runs = {backend: sent(exercise, backend, function) for backend in grading.BACKENDS}
    except BaseException as err:  # compiling their body failed (a `nonlocal` with nothing to bind, say)
        runs = dict.fromkeys(grading.BACKENDS, {"error": vars(grading.Raised.of(err, exercise))})
    out.write(json.dumps({"complete": True, "user": user, "runs": runs}))
    out.flush()
    os._exit(0)  # no atexit handler of theirs runs, nor any thread of theirs goes on


def compiled_node(exercise, node):
    """The function of the FunctionDef `node`, in the exercise's module, put in its place
    everywhere; the reference it replaces is kept nowhere."""
    owner, _ = grading.owner_of(exercise)
    method = isinstance(owner, type)
    if method:  # inside a class statement, so that super() in their body has its __class__ cell
        node = ast.fix_missing_locations(ast.copy_location(
            ast.ClassDef(name=owner.__name__, bases=[], keywords=[], body=[node], decorator_list=[]), node))
    namespace = {}
    exec(compile(ast.Module(body=[node], type_ignores=[]), exercise.file, "exec"),
         vars(grading.module_of(exercise)), namespace)
    function = vars(namespace[node.name])[node.body[0].name] if method else namespace[node.name]
    if "__class__" in function.__code__.co_freevars:  # super() finds the real class, not the shell's
        function.__closure__[function.__code__.co_freevars.index("__class__")].cell_contents = owner
    _, where = grading.places(exercise)
    for place, attr in where:
        setattr(place, attr, function)
    return function


def sent(exercise, backend, function):
    """What the check on `backend` gave, as JSON-able plain data."""
    try:
        _, run = grading.run_check(exercise, backend, function)
    except BaseException as err:  # sys.exit() in their body, say: an answer that raised
        run = grading.Run({}, error=grading.Raised.of(err, exercise))
    if run.error is not None:
        return {"error": vars(run.error), "hint": run.hint}
    got, malformed = {}, []
    for name, value in run.got.items():
        try:
            a = as_float64(value)
            got[str(name)] = {"shape": list(a.shape), "values": a.ravel().tolist()}
        except Exception:
            malformed.append(f"your function gave {name} as a {type(value).__name__}, not an array of numbers")
    return {"got": got, "changed": [str(c) for c in run.changed], "foreign": {str(k): str(v) for k, v in
            run.foreign.items()}, "hint": run.hint, "malformed": "; ".join(malformed)}


def unprivileged():
    """Drop to USER when running as root (and limit what a child may take): the name run as."""
    for limit, value in ((resource.RLIMIT_FSIZE, MAX_OUTPUT), (resource.RLIMIT_AS, MEMORY),
                         (resource.RLIMIT_CORE, 0)):
        soft, hard = resource.getrlimit(limit)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(limit, (value, value))
    try:
        ctypes.CDLL(None).prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS: no setuid program gives root back
    except (OSError, AttributeError):
        pass
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()).pw_name
    try:
        user = pwd.getpwnam(USER)
    except KeyError:
        return "root"
    resource.setrlimit(resource.RLIMIT_NPROC, (64, 64))
    os.setgroups([])
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)
    os.chdir("/")
    return USER


# --- The parent: running a child, and reading what it wrote -------------------------------


@dataclass
class Ran:
    """How a child ended: runs ({backend: Run}) when it wrote its result, else what happened."""

    runs: dict = None
    status: str = ""
    message: str = ""
    user: str = ""


def run_child(source, exercise, text, limit, workdir):
    """Ran: the exercise's check run by a child process on the student's file `text`."""
    folder = tempfile.mkdtemp(dir=workdir)  # new files each time: nothing left running can write into them
    spec, out, log = (os.path.join(folder, name) for name in ("spec.json", "out.json", "stderr.txt"))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
           **dict.fromkeys(("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"), "1")}
    with open(out, "w") as result, open(log, "w") as stderr:
        with open(spec, "w") as f:  # the one descriptor the child writes its result to
            json.dump({"exercise": exercise.qualname, "text": text, "fd": result.fileno()}, f)
        with open(spec) as stdin:
            start = time.monotonic()
            child = subprocess.Popen([sys.executable, "-I", "-c", CHILD, source], cwd=source, env=env, stdin=stdin,
                                     stdout=subprocess.DEVNULL, stderr=stderr, pass_fds=(result.fileno(),),
                                     start_new_session=True)
        try:
            code = child.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            try:
                os.killpg(child.pid, signal.SIGKILL)  # the child, and whatever it started in its group
            except (ProcessLookupError, PermissionError):
                pass
            child.wait()
        took = time.monotonic() - start
    if code is None:
        return Ran(status="timed out", message=f"still running after {limit:g} s, its time limit, and stopped: "
                                               "a loop that never ends? (each other exercise was graded on its own)")
    try:
        with open(out) as f:
            data = json.loads(f.read(MAX_OUTPUT) or "null")
    except (OSError, ValueError, RecursionError):
        data = None
    if code != 0 or not isinstance(data, dict) or data.get("complete") is not True:
        how = f"killed by {signal.Signals(-code).name}" if code < 0 and -code in signal.valid_signals() else (
            f"exit status {code}")
        with open(log, errors="replace") as f:
            tail = f.read()[-600:].strip()
        return Ran(status="crashed", message=f"the process running it ended before its check did ({how}, after "
                                             f"{took:.1f} s): does it call os._exit or sys.exit, or take more than "
                                             f"{MEMORY >> 30} GiB?" + (f" It said: {tail}" if tail else ""))
    runs = data["runs"] if isinstance(data.get("runs"), dict) else {}
    return Ran({backend: received(runs.get(backend)) for backend in grading.BACKENDS},
               user=str(data.get("user", ""))[:40])


def received(data):
    """The Run of a child's plain data for one backend; anything malformed is said so."""
    try:
        if not isinstance(data, dict):
            raise ValueError("no result")
        hint = text_of(data.get("hint", ""))
        if data.get("error") is not None:
            e = data["error"]
            line = e.get("line")
            if line is not None and (isinstance(line, bool) or not isinstance(line, int)):
                raise ValueError("a line that is no number")
            return grading.Run({}, error=grading.Raised(text_of(e["type"], 80), text_of(e["message"]), line,
                                                        text_of(e.get("text", ""), 200)), hint=hint)
        got, count = {}, 0
        for name, value in data["got"].items():
            shape, values = value["shape"], value["values"]
            if not (isinstance(shape, list) and all(type(n) is int and n >= 0 for n in shape) and len(shape) <= 8
                    and isinstance(values, list) and all(type(v) in (int, float) for v in values)):
                raise ValueError(f"{name} is not an array of numbers")
            count += len(values)
            if count > MAX_VALUES or len(values) != int(np.prod(shape)):
                raise ValueError(f"{name} has more numbers than its shape, or too many")
            got[text_of(name, 80)] = np.asarray(values, dtype=np.float64).reshape(shape)
        changed = tuple(text_of(c, 80) for c in data.get("changed", []))
        foreign = {text_of(k, 80): text_of(v, 80) for k, v in data.get("foreign", {}).items()}
        return grading.Run(got, changed, foreign, hint=hint, malformed=text_of(data.get("malformed", "")))
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        return grading.Run({}, malformed=f"what came back from the process running your code cannot be read: {err}")


def text_of(value, limit=1000):
    if not isinstance(value, str):
        raise TypeError(f"a {type(value).__name__} where a text belongs")
    return value if len(value) <= limit else value[:limit] + " ..."


# --- Grading a submission -----------------------------------------------------------------


def graded(source, exercise, submitted, table, workdir):
    """(Result, the user its code ran as): the exercise graded from the submitted file."""
    node, result = their_function(submitted, exercise)
    if node is None:
        return result, ""
    expected = {backend: None for backend in grading.BACKENDS}

    def reference(backend):  # the check run here, with the course's code: never the student's
        if expected[backend] is None:
            expected[backend] = exercise.check(get_backend(backend))
        return expected[backend]

    check_parts(table, exercise, reference("numpy").expected)
    ran = run_child(source, exercise, submitted.text, table[exercise].time_limit_s, workdir)
    if ran.runs is None:
        return grading.Result(exercise, ran.status, {}, ran.message), ""
    first, *others = grading.BACKENDS
    lazily = ((reference(b), ran.runs[b], b) for b in others)
    return grading.judge(exercise, ran.runs[first], reference(first), lazily), ran.user


def grade_submission(root):
    """The results.json payload for root/submission, graded with root/source (the current
    directory's project when it is the same): {score, execution_time, output, tests, ...}."""
    start = time.monotonic()
    source = os.path.abspath(os.path.join(root, "source"))
    grading.ROOT = source
    table = load_table(os.path.join(source, TABLE))
    if os.geteuid() == 0:
        os.chmod(source, 0o700)  # the answer key: out of reach of a child that runs as USER
    taken = take_submission(os.path.join(root, "submission"))
    results, users = [], set()
    with tempfile.TemporaryDirectory(prefix="autograder-") as workdir:
        for exercise in EXERCISES:
            result, user = graded(source, exercise, taken[exercise.file], table, workdir)
            results.append(result)
            users.add(user)
    return results_json(results, table, taken, users - {""}, time.monotonic() - start)


def results_json(results, table, taken, users, seconds):
    tests = [test_entry(r, table) for r in results]
    score = round(sum(t["score"] for t in tests), 4)
    total = sum(t["max_score"] for t in tests)
    correct = sum(r.status == "correct" for r in results)
    files = [f"{md(file)} (from {md(s.path)})" if s.text is not None else f"{md(file)}: {md(s.problem)}"
             for file, s in sorted(taken.items())]
    as_whom = f"as the user {listed(sorted(users))}" if users else "(none ran)"
    output = "\n".join([
        f"**{score:g} of {total:g} points**: {correct} of {len(results)} exercises correct.", "",
        f"Each exercise was graded on its own: the body of your function, with the course's copy of the lab for "
        f"everything else (its tolerance, {TOLERANCE:g}, its checks and its reference solutions), in a process of "
        f"its own with a time limit, {as_whom}. Nothing else of your files runs. Your files:", "",
        *[f"- {line}" for line in files]])
    return {"score": score, "execution_time": round(seconds), "output": output, "output_format": "md",
            "visibility": table.visibility, "stdout_visibility": "hidden",
            "extra_data": {"correct": correct, "exercises": len(results)}, "tests": tests}


def test_entry(result, table):
    e, points = result.exercise, table[result.exercise]
    score = earned(result, points, table)
    parts = {part: finite(result.parts.get(part)) for part in points.parts}
    return {"name": f"{e.order} {e.qualname}", "number": str(e.order), "score": score, "max_score": points.points,
            "status": "passed" if result.status == "correct" else "failed", "output": markdown(result, points, score),
            "output_format": "md", "visibility": table.visibility,
            "extra_data": {"exercise": e.qualname, "status": result.status, "errors": parts,
                           "mistake": result.mistake and result.mistake.name,
                           "message": "\n".join(m for m in (result.message, *result.diagnoses) if m)}}


def finite(x):
    return x if isinstance(x, float) and np.isfinite(x) else None


def md(text):
    """`text` with Markdown's and HTML's special characters escaped: shown as written."""
    return "".join("\\" + c if c in "\\`*_[]<>|#" else c for c in str(text))


def markdown(result, points, score):
    """A test's output: the verdict, the worst error of each part against the tolerance, what
    went wrong, the classic mistake and its hint, and the derivation's section to read."""
    e = result.exercise
    sections = [f"**{result.status}**: {score:g} of {points.points:g} points"]
    if result.status in ("correct", "wrong") and result.parts:
        rows = ["| part | worst relative error | |", "|:--|--:|:--|"]
        for part in points.parts:
            error = result.parts.get(part, float("inf"))
            verdict = f"right (below {TOLERANCE:g})" if error < TOLERANCE else "wrong"
            rows.append(f"| {md(part)} | {error:.1e} | {verdict} |" if np.isfinite(error) else
                        f"| {md(part)} | missing, or of the wrong shape | wrong |")
        sections.append("\n".join(rows))
    said = [f"- {md(m)}" for m in (result.message, *result.diagnoses) if m]
    sections += ["\n".join(said)] if said else []
    if result.mistake:
        sections.append(f"Looks like **{md(result.mistake.name)}**: {md(result.mistake.hint)}")
    elif result.status == "wrong" and not (result.diagnoses or result.message) and not grading.correct(result.parts):
        sections.append("Matches none of the classic mistakes.")
    if result.status != "correct" and not result.diagnoses:  # a diagnosis names the section itself
        sections.append(f'Read docs/derivations.md, "{md(e.section)}".')
    return "\n\n".join(sections)


def scoreboard(payload):
    """The lines run_autograder prints (Gradescope keeps them for the instructor)."""
    lines = [f"{t['name']:26s}{t['extra_data']['status']:16s}{t['score']:g} / {t['max_score']:g}"
             for t in payload["tests"]]
    return "\n".join(lines + [f"total {payload['score']:g} / {sum(t['max_score'] for t in payload['tests']):g}"])


def failed(err, seconds):
    """The results.json of a grader that could not grade (its own fault, never the submission's)."""
    return {"score": 0.0, "execution_time": round(seconds), "output_format": "md", "tests": [],
            "output": f"The autograder could not grade this submission: {md(type(err).__name__)}: {md(err)}. "
                      "This is the course's fault, not yours: tell your teacher."}


def write_results(root, payload):
    folder = os.path.join(root, "results")
    os.makedirs(folder, exist_ok=True)
    with atomic_write(os.path.join(folder, "results.json"), "w") as f:
        json.dump(payload, f, indent=2, allow_nan=False)


# --- The zip to upload --------------------------------------------------------------------


def grader_requirements(root):
    """The lines of requirements.txt that name GRADER_NEEDS (their versions kept in one place)."""
    with open(os.path.join(root, "requirements.txt")) as f:
        lines = [line.split("#")[0].strip() for line in f]
    chosen = [line for line in lines if line and line.split(">")[0].split("=")[0].split("<")[0].strip() in GRADER_NEEDS]
    if len(chosen) != len(GRADER_NEEDS):
        raise TableError(f"requirements.txt must name each of {listed(GRADER_NEEDS)}")
    return "".join(line + "\n" for line in chosen)


def build(root, zip_path):
    """Write the Gradescope autograder zip of the project at `root` to `zip_path`: setup.sh and
    run_autograder at its root, the project's files beside them (the exercise files and
    docs/derivations.md as the answer key has them). Returns the files written."""
    table = load_table(os.path.join(root, TABLE))
    with grading.references():
        for exercise in EXERCISES:  # the table's parts are the checks' parts
            check_parts(table, exercise, exercise.check(get_backend("numpy")).expected)
    exercise_files = {e.file for e in EXERCISES} | {DERIVATIONS}
    files = {name: open(os.path.join(root, "autograder", name), "rb").read() for name in TEMPLATES}
    files["autograder/requirements.txt"] = grader_requirements(root).encode()
    for item in SOURCE:
        paths = [item] if os.path.isfile(os.path.join(root, item)) else sorted(
            os.path.relpath(os.path.join(here, name), root) for here, dirs, names in os.walk(os.path.join(root, item))
            if "__pycache__" not in here for name in names if name.endswith(".py"))
        for path in paths:
            path = path.replace(os.sep, "/")
            files[path] = (answer_key(root, path) if path in exercise_files else
                           open(os.path.join(root, path)).read()).encode()
    with atomic_write(zip_path) as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (0o100755 if name in TEMPLATES else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return sorted(files)


# --- The class report ---------------------------------------------------------------------


def found_results(paths):
    """Every results.json among `paths`, a folder searched recursively (as a Gradescope export)."""
    found = []
    for path in paths:
        if os.path.isdir(path):
            found += sorted(os.path.join(here, "results.json") for here, _, names in os.walk(path)
                            if "results.json" in names)
        else:
            found.append(path)
    return found


@dataclass
class Tally:
    """One exercise across the class: how many submissions had each status, and each mistake."""

    name: str
    statuses: dict
    mistakes: dict
    score: float = 0.0
    max_score: float = 0.0


def class_counts(payloads):
    """[Tally] per exercise (by test name, in order), from results.json payloads."""
    tallies = {}
    for payload in payloads:
        for test in payload.get("tests", []):
            extra = test.get("extra_data") or {}
            tally = tallies.setdefault(test["name"], Tally(test["name"], dict.fromkeys(STATUSES, 0), {}))
            status = extra.get("status", "correct" if test.get("status") == "passed" else "wrong")
            tally.statuses[status] = tally.statuses.get(status, 0) + 1
            if extra.get("mistake"):
                tally.mistakes[extra["mistake"]] = tally.mistakes.get(extra["mistake"], 0) + 1
            tally.score += test.get("score", 0.0)
            tally.max_score += test.get("max_score", 0.0)
    return sorted(tallies.values(), key=lambda t: (int(t.name.split()[0]) if t.name.split()[0].isdigit() else 0,
                                                   t.name))


def class_markdown(tallies, submissions):
    """The class report as a Markdown table: statuses, mean points, and the mistakes by count."""
    shown = [s for s in STATUSES if s in STATUSES[:4] or any(t.statuses.get(s) for t in tallies)]
    lines = [f"# Class report: {submissions} submissions", "",
             "| exercise | " + " | ".join(shown) + " | mean points | classic mistakes (how many made them) |",
             "|:--|" + "--:|" * (len(shown) + 1) + ":--|"]
    for t in tallies:
        n = sum(t.statuses.values()) or 1
        mistakes = ", ".join(f"{md(m)} ({c})" for m, c in sorted(t.mistakes.items(), key=lambda mc: (-mc[1], mc[0])))
        lines.append(f"| {md(t.name)} | " + " | ".join(str(t.statuses.get(s, 0)) for s in shown) +
                     f" | {t.score / n:.3g} of {t.max_score / n:g} | {mistakes or '-'} |")
    return "\n".join(lines) + "\n"


def save_class_figure(tallies, path):
    """One figure: each exercise's submissions by status (left), and each classic mistake's count (right).
    matplotlib is imported here, on the teacher's machine: the grader's has none."""
    from matplotlib.figure import Figure

    from lab.plots import DPI, TAB10

    mistakes = [(f"{t.name.split()[0]}: {m}", c) for t in tallies for m, c in t.mistakes.items()]
    fig = Figure(figsize=(12, 0.4 * max(len(tallies), len(mistakes), 4) + 1.5))
    left, right = fig.subplots(1, 2)
    y = np.arange(len(tallies))
    start = np.zeros(len(tallies))
    for i, status in enumerate(STATUSES):
        counts = np.array([t.statuses.get(status, 0) for t in tallies], dtype=float)
        if counts.any():
            left.barh(y, counts, left=start, color=TAB10(i), label=status)
            start += counts
    left.set_yticks(y, [t.name for t in tallies])
    left.invert_yaxis()
    left.set_xlabel("submissions")
    left.set_title("How each exercise went")
    left.legend(loc="lower right", fontsize="small")
    right.barh(np.arange(len(mistakes)), [c for _, c in mistakes], color=TAB10(3))
    right.set_yticks(np.arange(len(mistakes)), [m for m, _ in mistakes])
    right.invert_yaxis()
    right.set_xlabel("submissions that made it")
    right.set_title("Classic mistakes recognised")
    fig.tight_layout()
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=DPI)
