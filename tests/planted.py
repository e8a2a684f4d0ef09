"""Answers planted in the reference as a student would type them, and graded: the grader's tests' one helper."""

import contextlib

from apps.grade import scoreboard
from course import grading
from course.exercises import EXERCISES, find


def planted(tmp_path, qualname, old, new, exercise=None):
    """(exercise, its function with `old` replaced by `new`), compiled from a file of its own,
    so that a traceback shows the planted lines."""
    exercise = exercise or find(qualname)
    source, _ = grading.reference_file(exercise)
    path = tmp_path / exercise.file
    path.parent.mkdir(parents=True, exist_ok=True)
    assert source.count(old) == 1, old  # a student's edit of the text, as typed
    path.write_text(source.replace(old, new))
    return exercise, grading.compiled(exercise, path.read_text(), str(path))


def graded(tmp_path, qualname, old, new, exercise=None):
    """The Result of the planted answer, graded with the reference everywhere else, and its scoreboard."""
    exercise, student = planted(tmp_path, qualname, old, new, exercise)
    with contextlib.ExitStack() as stack:
        for e in EXERCISES:
            stack.enter_context(grading.installed(e, grading.compiled(e, *grading.reference_file(e))))
        result = grading.grade_one(exercise, student)
    return result, scoreboard([result])


def line_of(path, text):
    """The number of the first line of the file at `path` that holds `text`."""
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)
