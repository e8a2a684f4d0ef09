"""The autograder end to end, as Gradescope runs it: the zip built and unpacked into an autograder
root, run_autograder run on submissions (a correct one, classic mistakes, broken files, and one
that attacks the grader from every exercise), each attack's defence checked on what came out."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

import pytest

from apps import autograder as autograder_app
from course import cleanup, judge, results
from course.exercises import EXERCISES, find
from course.mistakes import with_mistake
from course.points import TABLE, load_table
from course.workspace import answer_key, body_lines
import paths

pytestmark = pytest.mark.slow
ROOT = str(paths.ROOT)
FILES = sorted({e.file for e in EXERCISES})
SECRET = "LEAKED"  # a text a hostile body makes at run time (it is not in its file) to put in front of the student
TOP_KEYS = {"score", "execution_time", "output", "output_format", "visibility", "stdout_visibility", "extra_data",
            "tests"}
UIDS = [judge.FIRST_UID + e.order for e in EXERCISES]


def key():
    return {file: answer_key(ROOT, file) for file in FILES}


def body_of(files, qualname, new_body):
    """files, with the exercise's whole body (after its docstring) replaced by `new_body`."""
    exercise = find(qualname)
    lines, first, last = body_lines(files[exercise.file], qualname)
    indent = " " * (8 if "." in qualname else 4)
    text = "".join(indent + line + "\n" if line else "\n" for line in new_body.strip("\n").splitlines())
    files[exercise.file] = "".join(lines[:first]) + text + "".join(lines[last:])


@pytest.fixture(scope="module")
def grader():
    root = tempfile.mkdtemp(prefix="autograder-root-")
    os.chmod(root, 0o755)
    zip_path = os.path.join(root, "autograder.zip")
    assert autograder_app.main(["--build", zip_path]) == 0
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(os.path.join(root, "source"))
    shutil.copy(os.path.join(root, "source", "run_autograder"), os.path.join(root, "run_autograder"))
    yield root
    cleanup.remove_tree(root)  # a loop: the submission's tree is 1,100 folders deep


def run_autograder(root, files, *, top="ws", prepare=None, time_limits=None):
    """Upload `files` ({path: text}) under the folder `top` (loose when None); prepare(submission) adds
    anything else; run run_autograder; return (results.json, what it printed)."""
    submission = os.path.join(root, "submission")
    for folder in (submission, os.path.join(root, "results")):
        if os.path.exists(folder):
            cleanup.remove_tree(folder)
    os.makedirs(submission)
    for path, text in files.items():
        target = os.path.join(submission, top, path) if top else os.path.join(submission, os.path.basename(path))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w") as f:
            f.write(text)
    if prepare:
        prepare(submission)
    table_path = os.path.join(root, "source", TABLE)
    with open(table_path) as f:
        table = f.read()
    changed = json.loads(table)
    for name, limit in (time_limits or {}).items():
        changed["exercises"][name]["time_limit_s"] = limit
    with open(table_path, "w") as f:
        json.dump(changed, f)
    env = {**os.environ, "AUTOGRADER_ROOT": root, "PATH": os.path.dirname(sys.executable) + os.pathsep +
           os.environ.get("PATH", "")}
    try:
        done = subprocess.run(["bash", os.path.join(root, "run_autograder")], env=env, capture_output=True,
                              text=True, timeout=600)
    finally:
        with open(table_path, "w") as f:
            f.write(table)
    assert done.returncode == 0, done.stdout + done.stderr
    with open(os.path.join(root, "results", "results.json")) as f:
        text = f.read()
    payload = json.loads(text)
    assert set(payload) == TOP_KEYS and [t["name"] for t in payload["tests"]] == [f"{e.order} {e.qualname}"
                                                                                   for e in EXERCISES]
    assert all(t["extra_data"]["status"] in results.STATUSES for t in payload["tests"])
    return payload, text


def statuses(payload):
    return {t["extra_data"]["exercise"]: t["extra_data"]["status"] for t in payload["tests"]}


def scores(payload):
    return {t["extra_data"]["exercise"]: t["score"] for t in payload["tests"]}


def hostile():
    """Every exercise attacked: each body tries to score without deriving, to speak to the student,
    or to outlive its exercise."""
    files = key()
    body_of(files, "numerical_grad", "raise ValueError('DEKAEL'[::-1] + open(__file__).read())")  # exfiltrate
    body_of(files, "Dense.backward",  # the course's own finite differences: right values, no derivation
            "from nn.gradcheck import numerical_grad\nimport numpy as np\nx = self.x\n"
            "def f():\n    return np.sum((x @ self.params['W'] + self.params['b']) * dout)\n"
            "self.grads = {'W': numerical_grad(f, self.params['W']), 'b': numerical_grad(f, self.params['b'])}\n"
            "return numerical_grad(f, x)")
    body_of(files, "ReLU.backward",  # a double fork into a new session: a daemon that would outlive grading
            "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
            "        while True:\n            time.sleep(0.1)\n    os._exit(0)\nreturn dout * self.slope")
    body_of(files, "Sigmoid.backward",  # a fork bomb
            "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass")
    body_of(files, "Tanh.backward",  # the key from the stack, the heap and the disk
            "import gc, sys, inspect\nfor f in gc.get_objects():\n"
            "    if getattr(f, '__qualname__', '') == 'Tanh.backward' and f.__code__.co_filename != '<submitted>':\n"
            "        return f(self, dout)\nframe = sys._getframe()\nwhile frame:\n"
            "    if 'y * self.y' in repr(frame.f_locals):\n        raise RuntimeError('DEKAEL'[::-1])\n"
            "    frame = frame.f_back\nfor path in ('/autograder/source/nn/layers.py', inspect.getfile(type(self))):\n"
            "    try:\n        if '(1.0 - self.y * self.y)' in open(path).read():\n"
            "            raise RuntimeError('DEKAEL'[::-1])\n    except OSError:\n        pass\nreturn dout")
    body_of(files, "mse",  # fills the temporary folder, then answers right
            "import os, tempfile\nfor i in range(4):\n    try:\n"
            "        with open(os.path.join(tempfile.gettempdir(), f'fill-{os.getpid()}-{i}'), 'wb') as f:\n"
            "            f.write(b'0' * (8 << 20))\n    except OSError:\n        break\n"
            "xp = namespace(x_hat, x)\ndiff = x_hat - x\nreturn xp.sum(diff * diff) / x.shape[0], "
            "2.0 * diff / x.shape[0]")
    body_of(files, "Adam.update",  # forged records: a reward claimed, a huge number, 80 MB of junk
            "import os, json\nforged = json.dumps({'case': 'check', 'backend': 'numpy', 'error': None, "
            "'arrays': [['p', [10 ** 400]]], 'changed': [], 'foreign': {}}).encode() + b'\\n'\n"
            "for fd in range(3, 64):\n    try:\n        os.write(fd, forged + b'[]' * (40 << 20))\n"
            "    except OSError:\n        pass\nos._exit(0)")
    body_of(files, "gaussian_kl",  # the answer right, and inputs changed in place with the check's record patched
            "import course.exercises\ncourse.exercises.Inputs.changed = lambda self: ()\nxp = namespace(mu, logvar)\n"
            "var = xp.exp(logvar)\nkl = xp.sum(var + mu * mu - 1.0 - logvar) / 2 / mu.shape[0]\n"
            "dmu, dlogvar = mu / mu.shape[0], (var - 1.0) * (0.5 / mu.shape[0])\nmu *= 0.0\n"
            "return kl, dmu, dlogvar")
    return files


def hostile_archive(submission):
    """A corrupt deflate stream, a tree 1,100 folders deep, a link to the answer key, a huge file."""
    with zipfile.ZipFile(os.path.join(submission, "broken.zip"), "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("nn/optim.py", open(__file__).read())  # long enough that the damage stays in its data
    data = bytearray(open(os.path.join(submission, "broken.zip"), "rb").read())
    at = 30 + len("nn/optim.py") + 4  # inside the member's deflate stream, past its local header
    data[at:at + 30] = b"\xff" * 30
    with open(os.path.join(submission, "broken.zip"), "wb") as f:
        f.write(data)
    deep = submission
    for _ in range(1100):
        deep = os.path.join(deep, "d")
        os.mkdir(deep)
    os.symlink("/autograder/source/models/vae.py", os.path.join(submission, "vae.py"))
    with open(os.path.join(submission, "autoencoder.py"), "wb") as f:
        f.truncate(3 << 30)  # sparse: 3 GiB read as at most 1 MiB


@pytest.fixture(scope="module")
def graded(grader):
    out = {"correct": run_autograder(grader, key())}
    files = key()
    out["hostile"] = run_autograder(grader, hostile(), time_limits={"Dense.backward": 8, "Sigmoid.backward": 5})
    del files["nn/optim.py"], files["models/vae.py"], files["models/autoencoder.py"]
    out["archive"] = run_autograder(grader, files, prepare=hostile_archive)
    return out


def test_a_correct_submission_scores_full_marks(graded):
    payload, _ = graded["correct"]
    assert payload["score"] == load_table(os.path.join(ROOT, TABLE)).total == 140.0
    assert set(statuses(payload).values()) == {"correct"} and "a user of its own" in payload["output"]


def test_nothing_a_child_says_reaches_the_student(graded):
    payload, text = graded["hostile"]
    assert SECRET not in text and "def numerical_grad" not in text
    grad = next(t for t in payload["tests"] if t["extra_data"]["exercise"] == "numerical_grad")
    said = grad["output"].replace("\\", "")  # its own file, by the stage's path, is out of reach in its namespace
    assert "raised ValueError at nn/gradcheck.py, line" in said or "raised FileNotFoundError at nn/gradcheck.py" in said


def test_the_child_never_holds_the_answer_it_is_graded_on(graded):
    payload, _ = graded["hostile"]
    assert statuses(payload)["Tanh.backward"] == "wrong" and scores(payload)["Tanh.backward"] == 0


def test_a_backward_by_finite_differences_scores_nothing(graded):
    payload, _ = graded["hostile"]
    assert statuses(payload)["Dense.backward"] in ("timed out", "crashed") and scores(payload)["Dense.backward"] == 0
    dense = next(t for t in payload["tests"] if t["extra_data"]["exercise"] == "Dense.backward")
    assert "realistic size" in dense["output"]


def test_what_only_the_child_could_report_earns_nothing(graded):
    payload, _ = graded["hostile"]
    assert scores(payload)["Adam.update"] == 0 and statuses(payload)["Adam.update"] in ("crashed", "wrong")
    assert scores(payload)["gaussian_kl"] == 10  # values right: the patched record neither earned nor cost


def test_no_process_or_file_of_a_submission_outlives_its_exercise(graded):
    payload, _ = graded["hostile"]
    assert statuses(payload)["ReLU.backward"] == "correct"  # its daemon is gone, and it graded
    assert statuses(payload)["Sigmoid.backward"] == "timed out"
    assert not [uid for uid in UIDS if cleanup.processes_of(uid)]
    left = [name for top in ("/tmp", "/var/tmp", "/dev/shm", "/run/lock") for name in os.listdir(top) if os.lstat(os.path.join(top, name)).st_uid
            in UIDS]
    assert not left and statuses(payload)["mse"] == "correct"


def test_hostile_archives_and_trees_leave_every_exercise_graded(graded):
    payload, _ = graded["archive"]
    got = statuses(payload)
    assert got["Adam.update"] == "not submitted" and got["VAE.backward"] == "not submitted"  # corrupt; a link
    assert got["AutoEncoder.backward"] == "not submitted"  # 3 GiB: larger than 1024 KiB
    assert all(s == "correct" for q, s in got.items() if q not in ("Adam.update", "VAE.backward",
                                                                   "AutoEncoder.backward"))


LEFT_BEHIND = (  # what a child leaves for a later one: where the sweep must find it, however it hides
    "import os, ctypes\n"
    "def _leave():\n"
    "    for top in ('/run/lock', '/var/tmp', '/dev/shm', '/tmp'):\n"
    "        try:\n            open(os.path.join(top, '.relay'), 'w').write('x')\n        except OSError:\n"
    "            pass\n"
    "    for i in range(2000):\n        try:\n            open(f'/dev/shm/.n{i}', 'w').close()\n"
    "        except OSError:\n            break\n"
    "    fd = os.open('/tmp', os.O_RDONLY)\n"
    "    try:\n        for _ in range(2100):  # deeper than PATH_MAX\n            os.mkdir('a', dir_fd=fd)\n"
    "            below = os.open('a', os.O_RDONLY, dir_fd=fd)\n            os.close(fd)\n            fd = below\n"
    "    except OSError:\n        pass\n    os.close(fd)\n"
    "    libc = ctypes.CDLL(None, use_errno=True)\n    libc.shmat.restype = ctypes.c_void_p\n"
    "    libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]\n"
    "    at = libc.shmat(libc.shmget(0x5eee, 64 << 20, 0o1000 | 0o666), None, 0)\n"
    "    if at not in (None, ctypes.c_void_p(-1).value):\n        ctypes.memset(at, 1, 64 << 20)\n"
    "        libc.shmdt(ctypes.c_void_p(at))\n")
FOUND_LEFT = (  # whether anything of LEFT_BEHIND reached this process
    "import os, ctypes\n"
    "def _found():\n"
    "    files = [p for p in ('/run/lock', '/var/tmp', '/dev/shm', '/tmp') if os.path.exists(p + '/.relay')]\n"
    "    return files or os.path.exists('/tmp/a') or ctypes.CDLL(None).shmget(0x5eee, 0, 0) >= 0\n")


def relay():
    """Exercise 1 leaves files, a tree deeper than PATH_MAX, 2,000 files and 64 MiB of SysV memory;
    exercise 2 answers right only if any of it reached it."""
    files = key()
    for qualname, code, call in (("numerical_grad", LEFT_BEHIND, "_leave()\n"),
                                 ("Dense.backward", FOUND_LEFT, "if not _found():\n    raise RuntimeError('none')\n")):
        file = find(qualname).file
        lines, first, last = body_lines(files[file], qualname)
        indent = " " * (8 if "." in qualname else 4)
        added = "".join(indent + line + "\n" for line in (code + call).splitlines())
        files[file] = "".join(lines[:first]) + added + "".join(lines[first:])
    return files


def test_nothing_a_child_leaves_reaches_a_later_child_or_outlives_grading(grader):
    payload, _ = run_autograder(grader, relay())
    assert statuses(payload)["numerical_grad"] == "correct" and statuses(payload)["Dense.backward"] == "wrong"
    assert not [n for top in ("/tmp", "/var/tmp", "/dev/shm", "/run/lock") for n in os.listdir(top)
                if os.lstat(os.path.join(top, n)).st_uid in UIDS]
    with open("/proc/sysvipc/shm") as f:
        header, *rows = [line.split() for line in f]
    assert not [r for r in rows if int(r[header.index("uid")]) in UIDS]


def test_the_sweep_removes_any_depth_any_number_and_sysv_objects(tmp_path):
    # where namespaces are refused, the parent sweeps: no depth, path-length or count limit a child can exploit
    uid = judge.FIRST_UID + 99
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(uid)
            os.setuid(uid)
            namespace = {}
            exec(LEFT_BEHIND, namespace)
            namespace["_leave"]()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    with open("/proc/sysvipc/shm") as f:
        assert str(uid) in f.read()
    cleanup.sweep(uid, ("/tmp", "/var/tmp", "/dev/shm", "/run/lock"))
    assert not [n for top in ("/tmp", "/var/tmp", "/dev/shm", "/run/lock") for n in os.listdir(top)
                if os.lstat(os.path.join(top, n)).st_uid == uid]
    with open("/proc/sysvipc/shm") as f:
        assert str(uid) not in f.read()
    assert {"/tmp", "/dev/shm"} <= set(cleanup.world_writable(skip=cleanup.NOT_SWEPT + ("/usr", "/work", "/root")))
