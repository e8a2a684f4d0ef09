"""The Gradescope autograder, run as Gradescope runs it: the zip built, unpacked into an autograder
root, and run_autograder run on submissions: a correct one, every classic mistake of two rounds, a
file that does not parse with an exercise that never returns, and one that tries every way we know
to be graded correct while wrong. Then the class report on what they scored."""

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter

import pytest

from apps import autograder as autograder_app
from apps import class_report
from course import autograder
from course.exercises import EXERCISES, find
from course.mistakes import of as mistakes_of, with_mistake
from course.workspace import REFERENCE, answer_key
import paths

ROOT = str(paths.ROOT)
FILES = sorted({e.file for e in EXERCISES})
TOP_KEYS = {"score", "execution_time", "output", "output_format", "visibility", "stdout_visibility", "extra_data",
            "tests"}
TEST_KEYS = {"name", "number", "score", "max_score", "status", "output", "output_format", "visibility", "extra_data"}
ALL_CORRECT = f"{len(EXERCISES)} of {len(EXERCISES)} correct"  # what a forged scoreboard claims


def key():
    """{exercise file: the answer key's text}."""
    return {file: answer_key(ROOT, file) for file in FILES}


def planted(files, exercise, old, new):
    """files, with `old` replaced by `new` once in the exercise's function (its text, as a student types)."""
    from course.workspace import body_lines

    lines, first, last = body_lines(files[exercise.file], exercise.qualname)
    body = "".join(lines[first:last])
    assert body.count(old) == 1, old
    files[exercise.file] = "".join(lines[:first]) + body.replace(old, new) + "".join(lines[last:])


def body_of(files, qualname, new_body):
    """files, with the exercise's whole body (after its docstring) replaced by `new_body` (indented 8)."""
    from course.workspace import body_lines

    exercise = find(qualname)
    lines, first, last = body_lines(files[exercise.file], qualname)
    indent = " " * (8 if "." in qualname else 4)
    text = "".join(indent + line + "\n" if line else "\n" for line in new_body.strip("\n").splitlines())
    files[exercise.file] = "".join(lines[:first]) + text + "".join(lines[last:])


def mistakes_round(r):
    """The r-th classic mistake of every exercise that has one: [(exercise, mistake)]."""
    return [(e, mistakes_of(e)[r]) for e in EXERCISES if r < len(mistakes_of(e))]


@pytest.fixture(scope="module")
def grader():
    """An autograder root as Gradescope lays it out (world-readable, as /autograder is): the zip
    unpacked into source/, run_autograder beside it. (zip path, root)"""
    root = tempfile.mkdtemp(prefix="autograder-root-")
    os.chmod(root, 0o755)
    zip_path = os.path.join(root, "autograder.zip")
    assert autograder_app.main(["--build", zip_path]) == 0
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(os.path.join(root, "source"))
    shutil.copy(os.path.join(root, "source", "run_autograder"), os.path.join(root, "run_autograder"))
    yield zip_path, root
    shutil.rmtree(root)


def run_autograder(root, files, *, top=None, extra=(), links=(), time_limits=None):
    """Upload `files` ({path: text}) as a zip (under the folder `top`) or, when top is None, as loose
    files, and `links` ({name: target}) as symbolic links; run run_autograder; return results.json,
    checked for Gradescope's layout."""
    submission, results = os.path.join(root, "submission"), os.path.join(root, "results")
    for folder in (submission, results):
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        os.chmod(folder, 0o755)
    if top is None:
        for path, text in files.items():
            with open(os.path.join(submission, os.path.basename(path)), "w") as f:
                f.write(text)
    else:
        with zipfile.ZipFile(os.path.join(submission, "upload.zip"), "w") as z:
            for path, text in {**files, **dict(extra)}.items():
                z.writestr(f"{top}/{path}", text)
    for name, target in dict(links).items():
        os.symlink(target, os.path.join(submission, name))
    table_path = os.path.join(root, "source", autograder.TABLE)
    with open(table_path) as f:
        table = f.read()
    if time_limits:  # the teacher's table, changed for this run only
        changed = json.loads(table)
        for name, limit in time_limits.items():
            changed["exercises"][name]["time_limit_s"] = limit
        with open(table_path, "w") as f:
            json.dump(changed, f)
    env = {**os.environ, "AUTOGRADER_ROOT": root, "PATH": os.path.dirname(sys.executable) + os.pathsep +
           os.environ.get("PATH", "")}
    try:
        done = subprocess.run(["bash", os.path.join(root, "run_autograder")], env=env, capture_output=True,
                              text=True, timeout=300)
    finally:
        with open(table_path, "w") as f:
            f.write(table)
    assert done.returncode == 0, done.stdout + done.stderr
    with open(os.path.join(results, "results.json")) as f:
        payload = json.load(f)
    assert_gradescope_layout(payload)
    return payload, done.stdout


def assert_gradescope_layout(payload):
    """The documented keys and types; each score in [0, max_score]; the total the tests' sum."""
    assert set(payload) == TOP_KEYS, set(payload) ^ TOP_KEYS
    assert isinstance(payload["score"], float) and isinstance(payload["execution_time"], int)
    assert isinstance(payload["output"], str) and payload["output_format"] == "md"
    assert [t["name"] for t in payload["tests"]] == [f"{e.order} {e.qualname}" for e in EXERCISES]
    for test in payload["tests"]:
        assert set(test) == TEST_KEYS, set(test) ^ TEST_KEYS
        assert isinstance(test["score"], (int, float)) and isinstance(test["max_score"], (int, float))
        assert 0 <= test["score"] <= test["max_score"], test
        assert test["status"] in ("passed", "failed") and isinstance(test["output"], str)
        assert test["number"] == test["name"].split()[0] and test["visibility"] == "visible"
        extra = test["extra_data"]
        assert extra["status"] in autograder.STATUSES and (test["status"] == "passed") == (extra["status"] == "correct")
        assert test["score"] == test["max_score"] if extra["status"] == "correct" else True
        assert all(v is None or isinstance(v, float) for v in extra["errors"].values())
        assert extra["mistake"] is None or isinstance(extra["mistake"], str)
    assert abs(payload["score"] - sum(t["score"] for t in payload["tests"])) < 1e-6


def by_name(payload):
    return {t["extra_data"]["exercise"]: t for t in payload["tests"]}


@pytest.fixture(scope="module")
def graded(grader):
    """{name: (results.json, what run_autograder printed, the mistakes planted)}: each submission graded once."""
    _, root = grader
    out = {}
    answers = key()
    extra = {f"{REFERENCE}/nn/gradcheck.py": "TOLERANCE = 1e9\n"}  # a workspace's .reference/, edited: not read
    out["correct"] = run_autograder(root, answers, top="exercises", extra=extra) + ([],)
    for r in (0, 1):
        files, plants = key(), mistakes_round(r)
        for exercise, mistake in plants:
            files[exercise.file] = with_mistake(files[exercise.file], exercise, mistake)
        out[f"mistakes {r}"] = run_autograder(root, files) + (plants,)  # loose files, matched by name
    answer_key_on_disk = {"vae.py": os.path.join(root, "source", "models", "vae.py")}  # a link: never followed
    out["broken"] = run_autograder(root, broken(key()), top="ws", links=answer_key_on_disk,
                                   time_limits={"AutoEncoder.backward": 2}) + ([],)
    files, plants, extra = tampered(key(), root)
    out["tampered"] = run_autograder(root, files, top="exercises", extra=extra) + (plants,)
    if os.environ.get("AUTOGRADER_SHOW"):
        for name, (payload, printed, _) in out.items():
            print(f"== {name}\n{printed}\n{payload['output']}\n" + "\n\n".join(t["output"] for t in payload["tests"]))
    return out


def broken(files):
    files["nn/losses.py"] += "\n\ndef half_written(dout:\n"
    body_of(files, "AutoEncoder.backward", "while True:\n    pass")
    del files["nn/optim.py"], files["models/vae.py"]
    return files


def tampered(files, root):
    """Each exercise wrong, and its file or its body trying to be graded correct anyway:
    (files, the classic mistakes planted, the extra files of the zip)."""
    plants = [(find(q), mistakes_of(find(q))[i]) for q, i in
              (("numerical_grad", 0), ("ReLU.backward", 1), ("Sigmoid.backward", 0), ("Tanh.backward", 0),
               ("Conv2d.backward", 0))]
    for exercise, mistake in plants:
        files[exercise.file] = with_mistake(files[exercise.file], exercise, mistake)
    conv_t = find("ConvTranspose2d.backward")  # three of its classic mistakes at once: no part of it right
    for mistake in [m for m in mistakes_of(conv_t) if m.name in ("dW transposed", "db summed over the batch alone",
                                                              "dx reshaped, not permuted")]:
        files[conv_t.file] = with_mistake(files[conv_t.file], conv_t, mistake)
    # At module level, where nothing runs: the tolerance, the checker, numpy itself.
    files["nn/gradcheck.py"] = files["nn/gradcheck.py"].replace("TOLERANCE = 1e-6", "TOLERANCE = 1e9") + (
        "\n\ndef rel_error(a, b):\n    return 0.0\n\n\nnumerical_grad = lambda f, x, h=1e-4: x * 0\n")
    files["nn/layers.py"] = ("import numpy as np\nnp.max = lambda *a, **k: 0\nnp.abs = lambda *a, **k: 0\n"
                             f"print('{ALL_CORRECT}')\n" + files["nn/layers.py"])
    # Inside the bodies, where they run: in a process that judges nothing.
    planted(files, find("Dense.backward"), 'self.grads["W"] = self.x.T @ dout',
            'import course.grading, course.diagnosis, nn.gradcheck\n'
            '        for m in (course.grading, course.diagnosis, nn.gradcheck):\n'
            '            m.TOLERANCE = 1e9\n'
            '            m.rel_error = lambda a, b: 0.0\n'
            '        course.grading.correct = lambda errors: True\n'
            '        self.grads["W"] = 2 * (self.x.T @ dout)')
    planted(files, find("ReLU.backward"), "return dout", "import numpy\n        numpy.max = lambda *a, **k: 0\n"
            "        numpy.abs = lambda *a, **k: 0\n        return dout")
    results = os.path.join(root, "results", "results.json")
    planted(files, find("Sigmoid.backward"), "return dout * self.y",
            "import json\n"
            "        for path in (%r, '/autograder/results/results.json'):\n"
            "            try:\n"
            "                with open(path, 'w') as f:\n"
            "                    json.dump({'score': 1000.0, 'tests': []}, f)\n"
            "            except OSError:\n"
            "                pass\n"
            "        return dout * self.y" % results)
    planted(files, find("Tanh.backward"), "return dout", "print('Dense.backward correct\\n" + ALL_CORRECT + "')\n"
            "        print('{\"score\": 100.0, \"tests\": []}')\n        return dout")
    body_of(files, "mse", "import sys\nsys.exit(0)")
    body_of(files, "bce", "import os\nos._exit(0)")
    body_of(files, "gaussian_kl", "from nn import gradcheck\nimport course.exercises\n"
            "gradcheck.numerical_grad = lambda f, x, h=1e-4: xp.zeros_like(x)\n"
            "course.exercises.gradcheck = gradcheck\nxp = namespace(mu, logvar)\n"
            "kl = xp.sum(xp.exp(logvar) + mu * mu - 1.0 - logvar) / 2 / mu.shape[0]\n"
            "return kl, xp.zeros_like(mu), xp.zeros_like(logvar)")
    body_of(files, "Adam.update", "import os, json\nfake = json.dumps({'complete': True, 'runs': {'numpy': {'got': "
            "{'p': {'shape': [3], 'values': ['1.0', None, []]}}}}})\n"
            "for fd in map(int, os.listdir('/proc/self/fd')):\n"
            "    if fd > 2:\n"
            "        try:\n            os.write(fd, fake.encode())\n        except OSError:\n            pass\n"
            "os._exit(0)")
    source = os.path.join(root, "source")
    body_of(files, "AutoEncoder.backward",  # the answer key, if it could be read; else a wrong answer
            "import ast, course.grading\ntry:\n"
            "    text = open(%r).read()\n"
            "except OSError:\n"
            "    return self.decoder.backward(self.recon_loss.backward())\n"
            "exec(compile(ast.Module([course.grading.function_node(ast.parse(text), 'AutoEncoder.backward')], []), 'k',"
            " 'exec'), vars(course.grading.module_of(course.grading.find('AutoEncoder.backward'))), ns := {})\n"
            "return ns['backward'](self)" % os.path.join(source, "models", "autoencoder.py"))
    body_of(files, "VAE.backward",  # the reference's function object, if any were left alive in the process
            "import gc\nfor f in gc.get_objects():\n"
            "    if getattr(f, '__qualname__', '') == 'VAE.backward' and f.__code__ is not VAE.backward.__code__:\n"
            "        return f(self)\n"
            "self.encoder.backward(self.mu_head.backward(self.dmu_kl))")
    if os.geteuid() == 0:  # as nobody, the key cannot be read: the wrong answer it falls back to
        plants.append((find("AutoEncoder.backward"), mistakes_of(find("AutoEncoder.backward"))[0]))
    extra = {f"{REFERENCE}/nn/layers.py": files["nn/layers.py"],  # its own answer key, as wrong as its answers
             f"{REFERENCE}/nn/gradcheck.py": files["nn/gradcheck.py"]}
    return files, plants, extra


# --- The zip ------------------------------------------------------------------------------


def test_the_zip_has_gradescopes_layout_and_the_answer_key_as_its_source(grader):
    zip_path, _ = grader
    with zipfile.ZipFile(zip_path) as z:
        names = z.namelist()
        assert {"setup.sh", "run_autograder", autograder.TABLE, "autograder/requirements.txt"} <= set(names)
        for name in ("setup.sh", "run_autograder"):
            assert stat.S_IMODE(z.getinfo(name).external_attr >> 16) == 0o755
        for file in FILES + ["docs/derivations.md"]:
            assert z.read(file).decode() == answer_key(ROOT, file), file
        assert not [n for n in names if "__pycache__" in n or n.startswith(("tests/", REFERENCE, "runs/"))]
        assert {n.split("/")[0] for n in names} <= {"setup.sh", "run_autograder", "nn", "models", "lab", "course", "apps",
                                                    "docs", "requirements.txt", "autograder"}


def test_setup_installs_only_what_the_grader_imports(grader):
    _, root = grader
    source = os.path.join(root, "source")
    with open(os.path.join(source, "autograder", "requirements.txt")) as f:
        needs = [line.split(">")[0] for line in f.read().split()]
    assert needs == list(autograder.GRADER_NEEDS)
    with open(os.path.join(source, "setup.sh")) as f:
        installs = [line for line in f if "pip3 install" in line and "command -v" not in line]
    assert installs and all("-r autograder/requirements.txt" in line for line in installs)
    probe = ("import sys, apps.autograder, course.autograder\nfrom lab import grading\n"
             "from nn.backend import get_backend\n"
             "for e in course.autograder.EXERCISES:\n    [e.check(get_backend(b)) for b in grading.BACKENDS]\n"
             "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    done = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {source!r})\n" + probe],
                          capture_output=True, text=True, timeout=120, cwd=source)
    imported = set(done.stdout.split())
    assert done.returncode == 0 and {"numpy", "array_api_strict", "array_api_compat"} <= imported, done.stderr
    assert not imported & {"matplotlib", "scipy", "sklearn", "tqdm", "torch", "pytest"}, imported


def test_a_table_whose_parts_are_not_the_checks_parts_is_refused_at_build(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(os.path.join(ROOT, "autograder"), project / "autograder")
    shutil.copy(os.path.join(ROOT, "requirements.txt"), project / "requirements.txt")
    table = json.loads((project / autograder.TABLE).read_text())
    table["exercises"]["Dense.backward"]["parts"] = {"dx": 1, "dw": 1, "db": 1}
    (project / autograder.TABLE).write_text(json.dumps(table))
    with pytest.raises(autograder.TableError, match="the parts of Dense.backward are dx, dW, db, not dx, dw, db"):
        autograder.build(str(project), str(tmp_path / "a.zip"))


def test_a_run_sent_as_plain_data_is_judged_as_make_grade_judges_it():
    # One engine: what a child sends (JSON), read back and judged against the parent's own expected
    # values, is the Result that grading in one process gives.
    from course import grading

    for exercise in EXERCISES:
        if not mistakes_of(exercise):
            continue
        source, filename = grading.reference_file(exercise)
        wrong = grading.compiled(exercise, with_mistake(source, exercise, mistakes_of(exercise)[0]), filename)
        with grading.references():
            in_one = grading.grade_one(exercise, wrong)
            references = {b: exercise.check(grading.get_backend(b)) for b in grading.BACKENDS}
            with grading.installed(exercise, wrong):
                sent = {b: json.loads(json.dumps(autograder.sent(exercise, b, wrong))) for b in grading.BACKENDS}
            runs = {b: autograder.received(data) for b, data in sent.items()}
            first, *others = grading.BACKENDS
            judged = grading.judge(exercise, runs[first], references[first],
                                   ((references[b], runs[b], b) for b in others))
        assert (judged.status, judged.mistake, judged.message, judged.diagnoses) == (
            in_one.status, in_one.mistake, in_one.message, in_one.diagnoses), exercise.qualname
        # The same quantities; their errors may differ only where a check differentiates the function
        # under test (a loss): here the student's own, there the reference's.
        assert list(judged.errors) == list(in_one.errors), exercise.qualname


# --- Submissions --------------------------------------------------------------------------


def test_a_correct_workspace_uploaded_as_a_zip_scores_full_marks(graded):
    payload, printed, _ = graded["correct"]
    full = sum(p.points for p in autograder.load_table(os.path.join(ROOT, autograder.TABLE)).exercises.values())
    assert payload["score"] == full == 130.0 and all(t["status"] == "passed" for t in payload["tests"]), printed
    assert "exercises/nn/layers.py" in payload["output"] and f"total {full:g} / {full:g}" in printed


@pytest.mark.parametrize("r", [0, 1])
def test_each_classic_mistake_scores_its_right_parts_and_is_named(graded, r):
    payload, _, plants = graded[f"mistakes {r}"]
    tests, table = by_name(payload), autograder.load_table(os.path.join(ROOT, autograder.TABLE))
    for exercise, mistake in plants:
        test, points = tests[exercise.qualname], table[exercise]
        assert test["extra_data"]["status"] == "wrong" and test["extra_data"]["mistake"] == mistake.name, test
        assert f"Looks like **{autograder.md(mistake.name)}**" in test["output"]
        assert autograder.md(mistake.hint) in test["output"]
        errors = test["extra_data"]["errors"]
        right = sum(w for part, w in points.parts.items() if errors[part] is not None and errors[part] < 1e-6)
        share = right / sum(points.parts.values())
        expected = points.points * (table.right_values_wrong_otherwise if share == 1 else share)
        assert abs(test["score"] - expected) < 1e-3 and test["score"] < test["max_score"], test
    assert tests["Dense.backward"]["score"] == pytest.approx(10 * 2 / 3, abs=1e-3) if r == 0 else True
    planted_names = {e.qualname for e, _ in plants}
    assert all(t["extra_data"]["status"] == "correct" for q, t in tests.items() if q not in planted_names)


def test_a_file_that_does_not_parse_a_loop_that_never_ends_and_missing_files_leave_the_rest_graded(graded):
    payload, _, _ = graded["broken"]
    tests = by_name(payload)
    for name in ("mse", "bce", "gaussian_kl"):
        assert tests[name]["extra_data"]["status"] == "does not parse" and tests[name]["score"] == 0
        assert "ws/nn/losses.py does not parse (line" in tests[name]["output"].replace("\\", "")
    ae = tests["AutoEncoder.backward"]
    assert ae["extra_data"]["status"] == "timed out" and ae["score"] == 0 and "after 2 s" in ae["output"]
    assert tests["Adam.update"]["extra_data"]["status"] == "not submitted"
    assert tests["VAE.backward"]["extra_data"]["status"] == "not submitted"  # its file a link to the answer key
    others = [t for q, t in tests.items() if q not in ("mse", "bce", "gaussian_kl", "AutoEncoder.backward",
                                                        "Adam.update", "VAE.backward")]
    assert all(t["extra_data"]["status"] == "correct" for t in others) and payload["score"] == 65.0


def test_no_tampering_scores_a_wrong_exercise_as_correct(graded):
    payload, printed, _ = graded["tampered"]
    tests = by_name(payload)
    assert payload["score"] < 20 and not any(t["status"] == "passed" for t in tests.values()), printed
    assert all(t["score"] < t["max_score"] for t in tests.values())
    assert ALL_CORRECT not in printed  # its prints reach no one
    # The tolerance, rel_error and numpy changed at module level (never run) and in the body (in the child):
    dense = tests["Dense.backward"]["extra_data"]
    assert dense["status"] == "wrong" and dense["errors"]["dW"] > 0.1 and dense["errors"]["dx"] < 1e-6
    assert tests["numerical_grad"]["extra_data"]["mistake"] == "one-sided difference"
    assert tests["ReLU.backward"]["extra_data"]["mistake"] == "derivative left out"
    # numerical_grad replaced from inside the body: the expected values are the parent's.
    kl = tests["gaussian_kl"]["extra_data"]
    assert kl["status"] == "wrong" and kl["errors"]["KL"] < 1e-6 and kl["errors"]["dmu"] > 0.1
    assert tests["gaussian_kl"]["score"] == pytest.approx(10 / 3, abs=1e-3)
    # Its own results.json (written from a body) is replaced by the parent's; its scoreboard printed is not read.
    assert tests["Sigmoid.backward"]["extra_data"]["mistake"] == "derivative y" and payload["tests"]
    assert tests["Tanh.backward"]["extra_data"]["mistake"] == "1 - y"
    # sys.exit(0) is an exception like any other; os._exit(0) a process that ended before its check.
    assert tests["mse"]["extra_data"]["status"] == "wrong" and "raised SystemExit" in tests["mse"]["output"]
    assert tests["bce"]["extra_data"]["status"] == "crashed" and "exit status 0" in tests["bce"]["output"]
    # A result forged into the child's own output file: malformed, so wrong (or a crash), never correct.
    assert tests["Adam.update"]["extra_data"]["status"] in ("wrong", "crashed")
    assert tests["Adam.update"]["score"] == 0
    # Neither the answer key on disk nor the reference's function left in memory is within reach.
    assert tests["VAE.backward"]["extra_data"]["status"] == "wrong"
    if os.geteuid() == 0:  # only an unprivileged user keeps the answer key out of reach (README: the limits)
        assert tests["AutoEncoder.backward"]["extra_data"]["mistake"] == "encoder left out"
        assert tests["AutoEncoder.backward"]["score"] == 5.0  # its decoder's half
        assert "as the user nobody" in payload["output"]


def test_the_class_report_counts_statuses_and_the_planted_mistakes(graded, tmp_path, capsys):
    for name, (payload, _, _) in graded.items():
        folder = tmp_path / "export" / name.replace(" ", "_")
        folder.mkdir(parents=True)
        (folder / "results.json").write_text(json.dumps(payload))
    assert class_report.main([str(tmp_path / "export"), "--out", str(tmp_path / "report")]) == 0
    printed = capsys.readouterr().out
    report = (tmp_path / "report" / "class_report.md").read_text()
    assert report in printed and "# Class report: 5 submissions" in report
    planted = Counter((e.qualname, m.name) for _, _, plants in graded.values() for e, m in plants)
    rows = {line.split(" | ")[0].lstrip("| ").split(" ", 1)[1].replace("\\", ""): line.replace("\\", "")
            for line in report.splitlines() if line.startswith("| ") and line[2].isdigit()}
    for (qualname, mistake), count in planted.items():
        assert f"{mistake} ({count})" in rows[qualname], (qualname, mistake, rows[qualname])
    header = [c.strip() for c in report.splitlines()[2].strip("|").split("|")]
    for qualname, row in rows.items():  # each status counted as the submissions' results.json say
        cells = [c.strip() for c in row.strip("|").split("|")]
        statuses = Counter(by_name(payload)[qualname]["extra_data"]["status"] for payload, _, _ in graded.values())
        assert {s: int(cells[header.index(s)]) for s in header[1:-2]} == {s: statuses[s] for s in header[1:-2]}, row
    assert {"timed out", "does not parse", "crashed", "not submitted"} <= set(header)
    png = (tmp_path / "report" / "class_report.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
