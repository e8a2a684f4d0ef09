"""The child's side of the autograder: one exercise's check run with the student's function body.

This file is all the code that runs in the same process as a submission. The parent
(course/judge.py) starts it as `python -I` in a folder of its own (course/stage.py), in a session
of its own, with the student's file on stdin and one file descriptor to write to. It imports what
the check needs, then sets its limits and drops to a user of its own (one uid per exercise, no
account, no groups) before the student's code is even compiled. What holds, and why:

- It never holds the answer to the exercise it runs. Its folder has only what the check
  imports, with that exercise stubbed, no docstrings, no comments and no classic mistakes; the
  course's own copy is not readable by its user; and it is a new interpreter (exec'd, not
  forked), so nothing of the parent's is in its memory.
- Nothing it says is shown as it says it. It writes numbers, arrays and names; the parent
  keeps a name only when it is one of its own (a quantity of the check, an argument of the
  function, an exception type of a fixed set, a line of the student's own function), and
  composes every message itself. Its stdout and stderr go nowhere.
- Nothing it writes outlives it. Where the parent can (root with CAP_SYS_ADMIN), the child enters
  new mount and IPC namespaces before it drops its uid (`isolated`): every mount read-only, a
  fresh size-limited tmpfs over each folder where anyone may write (WRITABLE), and SysV objects
  of its own namespace; all of it vanishes with its last process, so nothing it leaves there
  reaches the child of a later exercise. Where it cannot, the parent sweeps after it
  (cleanup.sweep).
- It cannot outlive its exercise, fill the disk or take the machine's memory: RLIMIT_NPROC,
  RLIMIT_FSIZE, RLIMIT_AS and RLIMIT_CORE are set below before the student's code runs, its OOM
  score is the highest, and the parent kills every process of its uid when it ends.
- Whatever it reports is checked, never trusted: the values it sends must be right at the
  check's size and at a realistic size (course/realistic.py), within the time limit.

What does not hold: values alone cannot tell a derived gradient from one computed exactly from
the student's own formula of the function (the complex step; a centred difference of a loss
quadratic in its input, exact at any step; a difference of one number, extrapolated), and a
file elsewhere on the machine that the child's uid may read (another copy of the project) is
read; README.md, "For teachers", says both.

The report, on the descriptor: records, each a JSON line {"case", "backend", "error", "arrays",
"changed", "foreign"} then the float64 bytes of its arrays, in order.
"""

import ast
import copy
import ctypes
import json
import os
import re
import resource
import sys

PROCESSES = 16  # RLIMIT_NPROC of a child's uid (numpy's threads count: the parent asks for one)
MAX_OUTPUT = 64 << 20  # bytes a child may write to one file (RLIMIT_FSIZE)
MEMORY = 4 << 30  # address space of a child (RLIMIT_AS)
STUDENT = "<submitted>"  # the file name the student's function is compiled under: its frames are theirs
WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")  # each a fresh tmpfs of TMPFS_SIZE in the child's namespace
TMPFS_SIZE = "64m"
CLONE_NEWNS, CLONE_NEWIPC = 0x00020000, 0x08000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    1, 2, 4, 8, 32, 4096, 1 << 14, 1 << 18)
KEPT_FLAGS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC}  # a remount must repeat them


def isolated():
    """Enter new mount and IPC namespaces: mounts private, every one read-only, a fresh tmpfs over
    each of WRITABLE. Raises OSError where the kernel refuses (no CAP_SYS_ADMIN)."""
    libc = ctypes.CDLL(None, use_errno=True)

    def mount(source, target, kind, flags, data=None):
        if libc.mount(source, target.encode(), kind, flags, data) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"mount {target}: {os.strerror(err)}")

    if libc.unshare(CLONE_NEWNS | CLONE_NEWIPC) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare: {os.strerror(err)}")
    mount(b"none", "/", None, MS_REC | MS_PRIVATE)
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split() for line in f]
    for fields in mounts:
        target = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
        flags = sum(v for k, v in KEPT_FLAGS.items() if k in fields[5].split(","))
        try:
            mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | flags)
        except OSError:  # one the kernel will not remount stays as it was
            pass
    for target in WRITABLE:
        if os.path.isdir(target):
            mount(b"tmpfs", target, b"tmpfs", MS_NOSUID | MS_NODEV, f"size={TMPFS_SIZE},mode=1777".encode())


def limited(uid, isolate=False):
    """Set the limits, enter namespaces of its own when `isolate`, and become `uid` (when the
    parent gives one: it runs as root), before any of the student's code runs. RLIMIT_NPROC
    counts every process of the uid."""
    limits = [(resource.RLIMIT_FSIZE, MAX_OUTPUT), (resource.RLIMIT_AS, MEMORY), (resource.RLIMIT_CORE, 0)]
    for limit, value in limits + [(resource.RLIMIT_NPROC, PROCESSES)] * (uid is not None):
        _, hard = resource.getrlimit(limit)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(limit, (value, value))
    try:
        ctypes.CDLL(None).prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS: no setuid program gives root back
        with open("/proc/self/oom_score_adj", "w") as f:  # out of memory, the kernel kills this first
            f.write("1000")
    except (OSError, AttributeError):
        pass
    if isolate:
        isolated()  # raises where refused: the parent asks only where its probe succeeded
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)  # for good: real, effective and saved


def their_function(exercise, module, text, staged):
    """The exercise's function with the stage's signature (from `staged`, its module's text) and the
    body of the student's, compiled under STUDENT with their line numbers, in the exercise's module."""
    node = copy.copy(path_node(ast.parse(staged), exercise.qualname))
    theirs = path_node(ast.parse(text), exercise.qualname)
    node.body, node.lineno, node.end_lineno = theirs.body, theirs.lineno, theirs.end_lineno
    owner = owner_of(exercise, module)
    if isinstance(owner, type):  # inside a class statement, so that super() in their body has its __class__ cell
        node = ast.ClassDef(name=owner.__name__, bases=[], keywords=[], body=[node], decorator_list=[])
    tree = ast.fix_missing_locations(ast.Module(body=[ast.copy_location(node, theirs)], type_ignores=[]))
    namespace = {}
    exec(compile(tree, STUDENT, "exec"), vars(module), namespace)
    if not isinstance(owner, type):
        return namespace[node.name]
    function = vars(namespace[owner.__name__])[theirs.name]
    if "__class__" in function.__code__.co_freevars:  # super() finds the real class, not the shell's
        function.__closure__[function.__code__.co_freevars.index("__class__")].cell_contents = owner
    return function


def path_node(tree, qualname):
    for part in qualname.split("."):
        tree = next(n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == part)
    return tree


def owner_of(exercise, module):
    owner = module
    for name in exercise.qualname.split(".")[:-1]:
        owner = getattr(owner, name)
    return owner


def install(exercise, module, function):
    """`function` in the exercise's place, and wherever a module of the stage imported it by name."""
    owner, name = owner_of(exercise, module), exercise.qualname.split(".")[-1]
    old = vars(owner)[name]
    places = [(owner, name)] + [(m, attr) for m in list(sys.modules.values()) if m is not owner and
                                getattr(m, "__file__", None) and m.__file__.startswith(os.getcwd())
                                for attr, value in list(vars(m).items()) if value is old]
    for place, attr in places:
        setattr(place, attr, function)


def record(case, backend, run):
    """(the JSON line, the bytes) of one run: run() -> (got, changed, foreign), or what it raised."""
    import numpy as np

    header = {"case": case, "backend": backend, "error": None, "arrays": [], "changed": [], "foreign": {}}
    try:
        got, changed, foreign = run()
        arrays = {str(name): np.asarray(to_numpy(value), dtype=np.float64) for name, value in got.items()}
    except BaseException as err:  # sys.exit() in their body too: an answer that raised
        lines = [tb.tb_lineno for tb in traceback_of(err) if tb.tb_frame.f_code.co_filename == STUDENT]
        header["error"] = {"type": type(err).__name__, "line": lines[-1] if lines else None}
        return header, b""
    header.update(arrays=[[name, list(a.shape)] for name, a in arrays.items()], changed=list(map(str, changed)),
                  foreign={str(k): str(v) for k, v in foreign.items()})
    return header, b"".join(np.ascontiguousarray(a).tobytes() for a in arrays.values())


def traceback_of(err):
    tb = err.__traceback__
    while tb is not None:
        yield tb
        tb = tb.tb_next


def to_numpy(value):
    from nn.backend import to_numpy as on_host

    return on_host(value) if hasattr(value, "shape") else value


def main():
    spec = json.loads(sys.stdin.read(4 << 20))
    out = os.fdopen(spec["fd"], "wb")
    import numpy as np  # noqa: F401 (what the check imports, imported while the interpreter's files can be read)
    from nn.backend import get_backend, namespace

    from course.exercises import find
    from course.realistic import REALISTIC

    exercise = find(spec["exercise"])
    module = sys.modules[exercise.file.removesuffix(".py").replace("/", ".")]
    for warm in [lambda b=b: exercise.check(get_backend(b)) for b in spec["backends"]] + [
            lambda: REALISTIC[exercise.qualname](get_backend("numpy"))] * (exercise.qualname in REALISTIC):
        try:  # the stage's stub raises: whatever the check imports lazily is imported by then
            warm()
        except NotImplementedError:
            pass
    with open(module.__file__) as f:  # read before /tmp, where the stage may be, is covered
        staged = f.read()
    limited(spec["uid"], spec.get("isolate", False))

    def checked(backend):
        xp = get_backend(backend)
        result = exercise.check(xp)
        foreign = {n: type(v).__module__.split(".")[0] for n, v in result.got.items()
                   if hasattr(v, "shape") and not lives_on(v, xp, namespace)}
        return result.got, result.changed, foreign

    try:
        install(exercise, module, their_function(exercise, module, spec["text"], staged))
        runs = [("check", b, lambda b=b: checked(b)) for b in spec["backends"]]
    except BaseException as err:  # their body does not compile (a `nonlocal` with nothing to bind, say)
        runs = [("check", b, lambda err=err: (_ for _ in ()).throw(err)) for b in spec["backends"]]
    if exercise.qualname in REALISTIC:
        runs.append(("realistic", "numpy", lambda: (REALISTIC[exercise.qualname](get_backend("numpy")), (), {})))
    for case, backend, run in runs:
        header, data = record(case, backend, run)
        out.write(json.dumps(header).encode() + b"\n" + data)
        out.flush()
    os._exit(0)  # no atexit handler of theirs runs, nor any thread of theirs goes on


def lives_on(value, xp, namespace):
    try:
        return namespace(value) is xp
    except Exception:  # of no backend at all
        return False


if __name__ == "__main__":
    main()
