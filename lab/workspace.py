"""A student's workspace: the project copied with each exercise's body blanked on the syntax tree.

`stub` replaces a function's body, after its docstring, by one `raise NotImplementedError`
naming its exercise, leaving every other byte of the file as it is; `make_workspace` writes
the copy, with the original exercise files under .reference/ for the grader. The project's
source carries no solution markers.
"""

import ast
import os
import shutil

REFERENCE = ".reference"  # where a workspace keeps the original exercise files, for the grader
SKIP = {".git", ".venv", ".pytest_cache", "__pycache__", "runs", "data", "exercises", REFERENCE}


def function_node(tree, qualname):
    """The FunctionDef of `qualname` ("f" or "Class.method") in a module's syntax tree."""
    scope = tree
    for part in qualname.split("."):
        scope = next((node for node in scope.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))
                      and node.name == part), None)
        if scope is None:
            raise KeyError(f"{qualname} is not defined in this file")
    return scope


def body_lines(source, qualname):
    """(lines, first, last): the file's lines, and lines[first:last], the function's body after its docstring."""
    node = function_node(ast.parse(source), qualname)
    has_docstring = ast.get_docstring(node) is not None
    first = node.body[0].end_lineno if has_docstring else node.body[0].lineno - 1
    return source.splitlines(keepends=True), first, node.end_lineno


def stub(source, exercise):
    """`source` with the body of the exercise's function, after its docstring, replaced by
    one `raise NotImplementedError(<its stub message>)`; every other line as it was."""
    lines, first, last = body_lines(source, exercise.qualname)
    indent = lines[first][:len(lines[first]) - len(lines[first].lstrip())]
    raise_line = f"{indent}raise NotImplementedError({exercise.stub_message!r})\n"
    return "".join(lines[:first] + [raise_line] + lines[last:])


def make_workspace(root, out, exercises):
    """Copy the project at `root` to `out` with the body of every one of `exercises` stubbed, and
    the original exercise files under out/.reference/ for the grader. Returns the stubbed files."""
    if os.path.exists(out) and os.listdir(out):
        raise FileExistsError(f"{out} already exists and is not empty: it may hold a student's work; "
                              "give another folder, or remove it first")
    target = os.path.abspath(out)

    def ignore(folder, names):  # what a workspace does not need, and the workspace itself if it lies inside root
        return [n for n in names if n in SKIP or n.endswith(".pyc") or os.path.abspath(os.path.join(folder, n)) == target]

    shutil.copytree(root, out, ignore=ignore, dirs_exist_ok=True)
    by_file = {}
    for exercise in exercises:
        by_file.setdefault(exercise.file, []).append(exercise)
    for file, in_file in by_file.items():
        with open(os.path.join(root, file)) as f:
            source = f.read()
        os.makedirs(os.path.dirname(os.path.join(out, REFERENCE, file)), exist_ok=True)
        with open(os.path.join(out, REFERENCE, file), "w") as f:
            f.write(source)
        for exercise in in_file:
            source = stub(source, exercise)
        with open(os.path.join(out, file), "w") as f:
            f.write(source)
    venv = os.path.join(root, ".venv")
    if os.path.isdir(venv) and not os.path.exists(os.path.join(out, ".venv")):
        os.symlink(os.path.abspath(venv), os.path.join(out, ".venv"))  # the same packages, installed once
    return sorted(by_file)
