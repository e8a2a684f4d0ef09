"""The child's folder holds what its check imports, and no statement, docstring or mistake of its answer."""

import ast
import os

import pytest

from course import stage
from course.exercises import EXERCISES
from course.workspace import answer_key
import paths

ROOT = str(paths.ROOT)


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.qualname)
def test_the_stage_holds_no_statement_of_the_answer(exercise, tmp_path):
    files = stage.make_stage(ROOT, exercise, str(tmp_path))
    answer = stage.answer_statements(answer_key(ROOT, exercise.file), exercise.qualname)
    assert answer and "course/mistakes.py" not in files and "course/grading.py" not in files
    for path in files:
        tree = ast.parse((tmp_path / path).read_text())
        held = {ast.dump(s) for s in ast.walk(tree) if isinstance(s, ast.stmt)} & answer
        assert not held, f"{path} holds {len(held)} statements of {exercise.qualname}'s answer"
        assert "Derived" not in (tmp_path / path).read_text() and not [
            k for k in ast.walk(tree) if isinstance(k, ast.keyword) and k.arg == "mistakes" and k.value.elts]


def test_a_copy_of_the_answer_elsewhere_is_stubbed_too():
    # models/cvae.py's backward repeats VAE.backward's steps: in VAE.backward's stage it is a stub.
    source = "class C:\n    def backward(self):\n        dmu = dz + self.beta * self.dmu_kl\n        return dmu\n"
    answer = {ast.dump(ast.parse("dmu = dz + self.beta * self.dmu_kl").body[0])}
    assert "not given to this exercise" in stage.staged(source, None, answer)
    assert "not given" not in stage.staged(source, None, set())


def test_the_import_closure_follows_relative_and_package_imports():
    files = stage.imported(ROOT, ("course.sandbox", "course.realistic"))
    assert {"course/realistic.py", "models/vae.py", "nn/__init__.py", "nn/layers.py"} <= set(files)
    assert not [f for f in files if f.startswith(("studies/", "apps/"))]
    assert "course/mistakes.py" not in stage.imported(ROOT, ("course.grading",), stage.NEVER)
    assert os.path.isfile(os.path.join(ROOT, "course/mistakes.py")) == (
        "course/mistakes.py" in stage.imported(ROOT, ("course.grading",)))


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.qualname)
def test_a_child_holds_no_answer_of_an_exercise_graded_after_its_own(exercise, tmp_path):
    # what a child holds it could leave for a later child: every exercise its check does not call is stubbed
    from course.realistic import REALISTIC
    from nn.backend import get_backend

    _, called = stage.calls(lambda: (exercise.check(get_backend("numpy")),
                                     REALISTIC[exercise.qualname](get_backend("numpy")) if exercise.qualname in
                                     REALISTIC else None))
    assert all(e.order <= exercise.order for e in EXERCISES if e.qualname in called)
    files = stage.make_stage(ROOT, exercise, str(tmp_path), called=called)
    for later in (e for e in EXERCISES if e.order > exercise.order):
        if later.file in files:
            node = stage.path_nodes(ast.parse((tmp_path / later.file).read_text()), later.qualname)[-1]
            assert ast.unparse(node.body) == stage.STUB, later.qualname
