"""The zip to upload to Gradescope: setup.sh and run_autograder at its root, and what grading imports.

`build` writes it from the project: the files that apps/autograder.py and the child
(course/sandbox.py) import, found on the syntax tree by course/stage.py's `imported` (nothing
else: no plots, no studies, nothing that needs a package setup.sh does not install), with the
exercise files as the answer key has them, the points table, and the lines of requirements.txt
that name what the grader needs.
"""

import os
import zipfile

from nn.backend import get_backend

from . import grading
from .diagnosis import listed
from .exercises import EXERCISES
from .points import TABLE, TableError, check_parts, load_table
from .stage import CHILD_ENTRY, imported
from .workspace import answer_key
from lab.files import atomic_write

# The packages a grader needs (requirements.txt gives their versions): what setup.sh installs.
GRADER_NEEDS = ("numpy", "array-api-compat", "array-api-strict")
ENTRY = ("apps.autograder",) + CHILD_ENTRY  # what runs on Gradescope: the parent, and each child
TEMPLATES = ("setup.sh", "run_autograder")  # autograder/<name> of the project, at the zip's root


def grader_requirements(root):
    """The lines of requirements.txt that name GRADER_NEEDS (their versions kept in one place)."""
    with open(os.path.join(root, "requirements.txt")) as f:
        lines = [line.split("#")[0].strip() for line in f]
    chosen = [line for line in lines if line and line.split(">")[0].split("=")[0].split("<")[0].strip() in GRADER_NEEDS]
    if len(chosen) != len(GRADER_NEEDS):
        raise TableError(f"requirements.txt must name each of {listed(GRADER_NEEDS)}")
    return "".join(line + "\n" for line in chosen)


def shipped(root):
    """The project's Python files the zip holds: what the parent and the children import."""
    return imported(root, ENTRY + tuple(e.file.removesuffix(".py").replace("/", ".") for e in EXERCISES))


def build(root, zip_path):
    """Write the Gradescope autograder zip of the project at `root` to `zip_path`. Returns the files written."""
    table = load_table(os.path.join(root, TABLE))
    with grading.references():
        for exercise in EXERCISES:  # the table's parts are the checks' parts
            check_parts(table, exercise, exercise.check(get_backend("numpy")).expected)
    exercise_files = {e.file for e in EXERCISES}
    files = {name: open(os.path.join(root, "autograder", name), "rb").read() for name in TEMPLATES}
    files["autograder/requirements.txt"] = grader_requirements(root).encode()
    files[TABLE.replace(os.sep, "/")] = open(os.path.join(root, TABLE), "rb").read()
    for path in shipped(root):
        files[path] = (answer_key(root, path) if path in exercise_files else open(os.path.join(root, path)).read()).encode()
    with atomic_write(zip_path) as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (0o100755 if name in TEMPLATES else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return sorted(files)
