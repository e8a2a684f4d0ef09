"""The catalogue of classic mistakes (course/mistakes.py): every mistake still applies to the reference as
it reads today, and changes what it says it changes; edits are found on the syntax tree, not the bytes.

Fast on purpose: a refactor of nn/ or models/ that leaves a mistake nothing to edit fails here, in the
inner loop, not only in the slow workspace tests."""

import contextlib

import numpy as np
import pytest

from course import grading, mistakes
from course.edits import edited
from course.exercises import EXERCISES, find
from course.mistakes import Mistake, with_mistake
from nn.gradcheck import TOLERANCE

WITH_MISTAKES = [e for e in EXERCISES if mistakes.of(e)]


def skipped_differences(f, x, h=1e-4):
    """numerical_grad's stand-in while only what a function gives is wanted, not the expected values."""
    return np.zeros_like(x)


@contextlib.contextmanager
def references_only_got():
    with grading.references():
        with grading.installed(find("numerical_grad"), skipped_differences):
            yield


def got_of(exercise, source, filename):
    """What the exercise's function compiled from `source` gives on the check's inputs, on NumPy,
    and the inputs it changes in place (a gradient of its own)."""
    function = grading.compiled(exercise, source, filename)
    with grading.installed(exercise, function):
        checked = exercise.check(np)
    return {**checked.got, **{f"{name} changed": np.ones(1) for name in checked.changed},
            **{f"{name} missing": np.ones(1) for name in checked.expected if name not in checked.got}}


@pytest.mark.parametrize("exercise", WITH_MISTAKES, ids=lambda e: e.qualname)
def test_every_mistake_applies_to_the_reference_and_changes_a_gradient_or_an_input(exercise):
    source, filename = grading.reference_file(exercise)
    with references_only_got() if exercise.qualname != "numerical_grad" else grading.references():
        right = got_of(exercise, source, filename)
        seen = []
        for mistake in mistakes.of(exercise):
            for version in range(len(mistake.versions)):
                try:
                    wrong = got_of(exercise, with_mistake(source, exercise, mistake, version), filename)
                except Exception:  # dout's axes in an order whose shape im2col cannot take: raises for all
                    continue
                errors, problem = grading.compare(wrong, right)
                assert problem or not grading.correct(errors), (mistake.name, version, "changes nothing")
                for other_name, other in seen:  # else the later one could never be named
                    errors, problem = grading.compare(wrong, other)
                    if mistake.name != other_name:
                        assert problem or not grading.correct(errors), (mistake.name, "gives", other_name)
                seen.append((mistake.name, wrong))


def test_every_wrong_order_of_dout_s_axes_is_one_version_of_one_mistake():
    conv2d = find("Conv2d.backward")
    (order,) = [m for m in mistakes.of(conv2d) if m.name == "dout's axes in the wrong order"]
    assert len(order.versions) == 23  # the 4! orders but inner's (the plain reshape is one of them)


def test_an_edit_is_found_on_the_syntax_tree_whatever_the_spacing_quotes_and_comments():
    dense = find("Dense.backward")
    source, _ = grading.reference_file(dense)
    (transposed,) = [m for m in mistakes.of(dense) if m.name == "dW transposed"]
    restyled = source.replace("self.x.T @ dout", "(self.x.T   @\n                              dout)  # dL/dW")
    restyled = restyled.replace('self.grads["W"]', "self.grads['W']")
    assert restyled != source
    wrong = with_mistake(restyled, dense, transposed)
    assert "dout.T @ self.x" in wrong and "self.x.T" not in wrong.split("def backward")[1].split("def ")[0]


def test_an_edit_that_matches_nothing_or_twice_names_the_mistake():
    dense = find("Dense.backward")
    source, _ = grading.reference_file(dense)
    with pytest.raises(ValueError, match="mistake 'gone' of Dense.backward: 'x @ x' is in Dense.backward 0 times"):
        with_mistake(source, dense, Mistake("gone", "", (("x @ x", "x"),)))
    with pytest.raises(ValueError, match="'dout' is in Dense.backward [2-9] times, not once"):
        with_mistake(source, dense, Mistake("twice", "", (("dout", "x"),)))


def test_an_edit_rewrites_only_the_statements_it_changes():
    source = "def f(x):\n    '''Doc.'''\n    y = x * 2  # keep\n    return y + 1  # the sum\n"
    exercise = type("E", (), {"qualname": "f"})
    assert edited(source, "f", "y + 1", "y - 1") == "def f(x):\n    '''Doc.'''\n    y = x * 2  # keep\n    return y - 1\n"
    assert edited(source, "f", "", "x = -x") == "def f(x):\n    '''Doc.'''\n    x = -x\n    y = x * 2  # keep\n" \
                                                 "    return y + 1  # the sum\n"
    assert edited(source, "f", "y = x * 2", "") == "def f(x):\n    '''Doc.'''\n    return y + 1  # the sum\n"
    assert with_mistake(source, exercise, Mistake("m", "", (("x * 2", "x * 3"),))).count("x * 3") == 1
