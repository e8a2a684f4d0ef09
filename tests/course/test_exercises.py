"""The lab as exercises: the workspace, its stubs, the grader's scoreboard, and every classic mistake diagnosed."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from apps import grade, make_exercises
from course import grading
from course import mistakes
from course.exercises import EXERCISES
from course.mistakes import with_mistake
from course.key import KEY
from course.workspace import (DERIVATIONS, NEEDED, answer_fragments, given, leaks, make_workspace, readable,
                              student_file, stub, without_answer_blocks)
import paths

ROOT = str(paths.ROOT)
EXERCISE_FILES = sorted({e.file for e in EXERCISES})


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    out = tmp_path_factory.mktemp("lab") / "exercises"
    make_workspace(ROOT, str(out), EXERCISES)
    return out


def fresh_copy(workspace, tmp_path):
    """A copy of the workspace to change (the module's own stays as generated)."""
    copy = tmp_path / "ws"
    shutil.copytree(workspace, copy, symlinks=True)
    return copy


def run_grader(folder, *args):
    """`python -m apps.grade --json` in `folder`, as `make grade` runs it: (exit status, JSON, printed text)."""
    env = {**os.environ, "PYTHONPATH": str(folder)}
    done = subprocess.run([sys.executable, "-m", "apps.grade", "--json", "grade.json", *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=300)
    report = json.loads((folder / "grade.json").read_text()) if (folder / "grade.json").exists() else None
    return done.returncode, report, done.stdout + done.stderr


def project_files(root):
    skip = {".git", ".venv", "runs", "data", "exercises", "__pycache__", ".pytest_cache", ".key", ".reference"}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in skip]
        for name in files:
            if not name.endswith(".pyc") and name not in skip:
                yield os.path.relpath(os.path.join(folder, name), root)


def test_the_workspace_is_the_project_with_only_the_exercises_blanked(workspace):
    for path in project_files(ROOT):
        with open(os.path.join(ROOT, path), "rb") as f:
            original = f.read()
        if not (workspace / path).exists():  # left out: it holds an answer, or imports one that does
            assert not path.startswith(NEEDED) and os.sep in path, path
            continue
        copied = (workspace / path).read_bytes()
        if path in EXERCISE_FILES:  # the stubs and the docstrings' answers, and not one other byte changed
            assert copied.decode() == student_file(original.decode(), [e for e in EXERCISES if e.file == path]), path
        elif path == DERIVATIONS:  # the questions without their answers
            assert copied.decode() == without_answer_blocks(original.decode())
        else:
            assert copied == original, path
    assert (workspace / KEY).exists() and not (workspace / ".reference").exists()


def fragments():
    sources = {e.file: open(os.path.join(ROOT, e.file)).read() for e in EXERCISES}
    students = [student_file(text, [e for e in EXERCISES if e.file == file]) for file, text in sources.items()]
    derivations = without_answer_blocks(open(os.path.join(ROOT, DERIVATIONS)).read())
    return given(answer_fragments(sources, EXERCISES), [*students, derivations])


def test_no_file_of_a_fresh_workspace_holds_an_answer_line(workspace):
    answers = fragments()
    assert len(answers) > 50 and {q for q in answers.values()} == {e.qualname for e in EXERCISES}
    for path in project_files(workspace):
        text = readable(str(workspace / path))
        assert text is None or not leaks(text, answers), (path, leaks(text, answers))


def test_a_leak_planted_in_an_unrelated_file_is_found(workspace, tmp_path):
    answers = fragments()
    plots = (workspace / "lab" / "plots.py").read_text() + "\n# dW = x.T @ dout, as the layer does\n"
    assert [q for _, q in leaks(plots, answers)] == ["Dense.backward"]
    notebook = (workspace / "notebooks" / "part2_vae.ipynb")
    if notebook.exists():
        cells = json.loads(notebook.read_text())
        cells["cells"].append({"cell_type": "code", "metadata": {}, "source": ["dlogvar = dz * eps * (0.5 * std) "
                                                                              "+ beta * dlogvar_kl\n"]})
        (tmp_path / "n.ipynb").write_text(json.dumps(cells))
        assert "VAE.backward" in [q for _, q in leaks(readable(str(tmp_path / "n.ipynb")), answers)]


def test_each_stub_raises_naming_its_exercise_and_the_section_to_read(workspace):
    for exercise in EXERCISES:
        source = (workspace / exercise.file).read_text()
        function = grading.compiled(exercise, source, exercise.file)
        with pytest.raises(NotImplementedError) as raised:
            function(*[None] * function.__code__.co_argcount)
        message = str(raised.value)
        assert message.startswith(f"exercise {exercise.order}, {exercise.qualname}:"), message
        assert f'docs/derivations.md, "{exercise.section}"' in message
        with open(os.path.join(ROOT, "docs", "derivations.md")) as f:
            assert f"## {exercise.section}" in f.read(), f"no section {exercise.section!r} to read"


@pytest.mark.slow
def test_a_fresh_workspace_scores_every_exercise_not_started(workspace, tmp_path):
    copy = fresh_copy(workspace, tmp_path)
    status, report, printed = run_grader(copy)
    assert status == 1
    assert report["workspace"] is True and report["total"] == len(EXERCISES) and report["correct"] == 0
    assert [e["status"] for e in report["exercises"]] == ["not started"] * len(EXERCISES)
    assert f"0 of {len(EXERCISES)} correct" in printed


@pytest.mark.slow
def test_with_the_reference_bodies_put_back_every_exercise_is_correct(workspace, tmp_path):
    copy = fresh_copy(workspace, tmp_path)
    for path in EXERCISE_FILES:
        shutil.copy(os.path.join(ROOT, path), copy / path)  # the teacher's answers
    status, report, printed = run_grader(copy)
    assert status == 0 and report["correct"] == len(EXERCISES), printed
    for entry in report["exercises"]:
        assert entry["status"] == "correct" and max(entry["errors"].values()) < report["tolerance"], entry


def rounds_of_mistakes():
    """Round r plants the r-th classic mistake of every exercise that has one: each round grades
    one mistake per exercise, the other exercises kept correct. [[(exercise, mistake)]]"""
    # The models call the layers and losses, and in a workspace wait for them: they get rounds of their own.
    models = ("AutoEncoder.backward", "VAE.backward")
    return [ms for r in range(max(len(mistakes.of(e)) for e in EXERCISES))
            for ms in ([(e, mistakes.of(e)[r]) for e in EXERCISES if r < len(mistakes.of(e)) and e.qualname not in models],
                       [(e, mistakes.of(e)[r]) for e in EXERCISES if r < len(mistakes.of(e)) and e.qualname in models])
            if ms]


@pytest.mark.slow
@pytest.mark.parametrize("planted", rounds_of_mistakes(), ids=lambda ms: f"{len(ms)} mistakes")
def test_each_classic_mistake_is_diagnosed_and_changes_no_other_exercise(workspace, tmp_path, planted):
    copy = fresh_copy(workspace, tmp_path)
    for path in EXERCISE_FILES:
        shutil.copy(os.path.join(ROOT, path), copy / path)  # the teacher's answers
    for exercise, mistake in planted:  # written into the student's file as a student would have written it
        path = copy / exercise.file
        path.write_text(with_mistake(path.read_text(), exercise, mistake))
    status, report, printed = run_grader(copy)
    assert status == 1
    wrong = {e.qualname: m for e, m in planted}
    for entry in report["exercises"]:
        if entry["exercise"] in wrong:
            mistake = wrong[entry["exercise"]]
            assert entry["status"] == "wrong", (mistake.name, entry)
            assert entry["mistake"] == {"name": mistake.name, "hint": mistake.hint}, (mistake.name, entry)
            assert mistake.hint in printed
        elif entry["status"] == "waiting":  # it calls a planted one (a model its layers): graded once they are right
            assert any(f"{q} (" in entry["message"] for q in wrong), entry
        else:
            assert entry["status"] == "correct", entry


@pytest.mark.slow
def test_the_json_layout_is_stable(workspace, tmp_path):
    _, report, _ = run_grader(fresh_copy(workspace, tmp_path), "2", "VAE.backward")
    assert set(report) == {"version", "tolerance", "workspace", "correct", "total", "exercises"}
    assert report["version"] == 1 and report["tolerance"] == 1e-6 and report["total"] == 2
    assert [e["exercise"] for e in report["exercises"]] == ["Dense.backward", "VAE.backward"]
    assert set(report["exercises"][0]) == {"order", "exercise", "file", "section", "status", "errors", "message",
                                           "mistake"}


def test_in_the_project_itself_every_exercise_is_correct(capsys):
    assert grade.main([]) == 0
    assert f"{len(EXERCISES)} of {len(EXERCISES)} correct" in capsys.readouterr().out


@pytest.mark.slow
def test_before_training_waits_only_for_the_exercises_the_model_uses(workspace, tmp_path):
    copy = fresh_copy(workspace, tmp_path)
    status, _, printed = run_grader(copy, "--before-training", "vae")
    assert status == 1 and "7 of the 7 exercises the VAE uses are not correct yet" in printed
    for path in EXERCISE_FILES:
        shutil.copy(os.path.join(ROOT, path), copy / path)  # the teacher's answers
    unused_by_the_lab_vae = [e for e in EXERCISES if e.qualname in ("numerical_grad", "bce", "AutoEncoder.backward",
                                                                    "Conv2d.backward", "ConvTranspose2d.backward",
                                                                    "gaussian_nll")]
    for exercise in unused_by_the_lab_vae:  # still stubs: the lab's VAE (an MLP) never calls them
        path = copy / exercise.file
        path.write_text(stub(path.read_text(), exercise))
    status, _, printed = run_grader(copy, "--before-training", "vae", "--", "--epochs", "3")
    assert status == 0 and "all 7 exercises the VAE uses are correct: it trains on your own code" in printed
    status, _, printed = run_grader(copy, "--before-training", "vae", "--", "--arch", "conv")
    assert status == 1 and ("2 of the 9 exercises the VAE uses are not correct yet (Conv2d.backward, "
                            "ConvTranspose2d.backward)") in printed
    status, _, printed = run_grader(copy, "--before-training", "vae", "--", "--loss", "bce")
    assert status == 1 and "1 of the 6 exercises the VAE uses are not correct yet (bce)" in printed
    status, _, printed = run_grader(copy, "--before-training", "vae", "--", "--loss", "gaussian")  # not mse
    assert status == 1 and "1 of the 7 exercises the VAE uses are not correct yet (gaussian_nll)" in printed
    status, _, printed = run_grader(copy, "--before-training", "ae", "--", "--loss", "gaussian")
    assert status == 2 and "error: loss 'gaussian' learns the decoder's variance" in printed, printed
    assert len(printed.strip().splitlines()) == 1
    status, _, printed = run_grader(copy, "--before-training", "ae")
    assert status == 1 and "(AutoEncoder.backward)" in printed


@pytest.mark.slow
def test_make_grade_ends_with_the_scoreboard_not_an_error_of_make(workspace, tmp_path):
    copy = fresh_copy(workspace, tmp_path)
    if not (copy / ".venv").exists():
        pytest.skip("the workspace has no .venv to run make with (the project has none)")
    done = subprocess.run(["make", "--no-print-directory", "grade"], cwd=copy, capture_output=True, text=True,
                          timeout=300)
    scoreboard_end = done.stdout.rstrip().endswith(f"0 of {len(EXERCISES)} correct")
    assert done.returncode == 0 and scoreboard_end, done.stdout + done.stderr
    assert "Error" not in done.stderr
    bad = subprocess.run(["make", "--no-print-directory", "grade", "ARGS=99"], cwd=copy, capture_output=True,
                         text=True, timeout=300)
    assert bad.returncode != 0 and f"give a number from 1 to {len(EXERCISES)}" in bad.stderr  # bad input stays an error


def test_bad_input_is_one_line(workspace, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        grade.main(["Dense.forward"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "unknown exercise 'Dense.forward'" in err and len(err.splitlines()) == 1
    with pytest.raises(SystemExit) as exit_info:
        make_exercises.main(["--out", str(workspace)])  # it exists, with work in it
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "already exists and is not empty" in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_a_file_that_does_not_import_is_one_line_naming_it(workspace, tmp_path):
    copy = fresh_copy(workspace, tmp_path)
    path = copy / "nn" / "layers.py"
    path.write_text(path.read_text() + "\n\ndef half_written(dout:\n")
    status, report, printed = run_grader(copy)
    assert status == 1 and report is None
    assert printed.startswith("python -m apps.grade: error: the code does not import (") and "layers.py, line" in printed
    assert len(printed.strip().splitlines()) == 1


@pytest.mark.slow
def test_the_workspace_suite_passes_once_the_exercises_are_done(workspace, tmp_path):
    # What a student runs after the last exercise: the tests of the lab's own files must judge a
    # correct answer correct, not look for the reference's exact lines.
    if os.path.exists(os.path.join(ROOT, KEY)):
        pytest.skip("in a workspace: this is the test that runs the workspace's suite")
    copy = fresh_copy(workspace, tmp_path)
    for path in EXERCISE_FILES:
        shutil.copy(os.path.join(ROOT, path), copy / path)  # the teacher's answers
    vae = copy / "models" / "vae.py"  # a correct answer in the student's own words, not the reference's
    vae.write_text(vae.read_text().replace("dmu = dz + self.beta * self.dmu_kl", "dmu = self.beta * self.dmu_kl + dz"))
    conv, reference_db = copy / "nn" / "conv.py", 'self.grads["b"] = xp.sum(dout_mat, axis=1)'
    assert reference_db in conv.read_text()  # Conv2d's db, summed in the interface's layout instead:
    conv.write_text(conv.read_text().replace(reference_db, 'self.grads["b"] = xp.sum(dout, axis=(0, 2, 3))'))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow",
                           "tests/nn", "tests/models", "tests/course"], cwd=copy,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(copy)}, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:]
