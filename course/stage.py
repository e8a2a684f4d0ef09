"""What a child is given: a copy of only what the check of its exercise imports, without the answer.

`imported` follows the import statements of the project's modules from a set of entry modules
(read on the syntax tree, never run): the child's folder holds exactly those files, and so does
the course's zip (course/bundle.py). `staged` writes a file as the child sees it: no docstrings,
no comments, no classic mistakes (`mistakes=` is emptied: each is an edit of the answer's text),
the exercise's function stubbed, every other function that holds a statement of its answer
stubbed too (models/cvae.py's backward repeats steps of VAE.backward), and every other exercise
stubbed unless its check calls it (`calls`, recorded while the parent computes the expected
values). `make_stage` writes them into a folder readable by the child's group alone.

Why the other exercises: a child could copy what it holds to where a later child finds it. A
check calls only exercises of a lower order (each check but Adam.update's calls numerical_grad,
1; AutoEncoder.backward, 10, calls Dense.backward, ReLU.backward, Sigmoid.backward and mse, 2-4
and 6; VAE.backward, 11, those and gaussian_kl, 8), and the exercises are graded in that order:
what a child holds is the answer of exercises already graded, never of one still to come.
"""

import ast
import os
import sys

PACKAGES = ("nn", "models", "lab", "course", "apps")
CHILD_ENTRY = ("course.sandbox", "course.exercises", "course.realistic")  # what the child imports itself
NEVER = ("course/mistakes.py",)  # answer text, whatever imports it
STUB = "raise NotImplementedError('not given to this exercise')"


def module_file(root, name):
    """"nn.layers" -> "nn/layers.py" (or ".../__init__.py"), or None if no module of the project."""
    base = name.replace(".", "/")
    for path in (base + ".py", base + "/__init__.py"):
        if name.split(".")[0] in PACKAGES and os.path.isfile(os.path.join(root, path)):
            return path
    return None


def imports_of(root, path):
    """The project modules the file `path` names in its import statements, anywhere in it."""
    with open(os.path.join(root, path)) as f:
        tree = ast.parse(f.read())
    package = os.path.dirname(path).replace("/", ".")
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]) if node.level else ""
            module = ".".join(filter(None, (base, node.module)))
            names |= {module} | {f"{module}.{alias.name}" for alias in node.names}
    return {name for name in names if module_file(root, name)}


def imported(root, entries, never=()):
    """Every file of the project that importing the modules `entries` may import (their packages'
    __init__.py files included), but the files `never`: sorted paths."""
    todo, files = list(entries), set()
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for path in filter(None, (module_file(root, ".".join(parts[:i + 1])) for i in range(len(parts)))):
            if path not in files and path not in never:
                files.add(path)
                todo += sorted(imports_of(root, path))
    return sorted(files)


def answer_statements(source, qualname):
    """ast.dump of each statement of the function's body at any depth, but the docstring and
    the plumbing every function has (`xp = namespace(x)`, `return x`, `pass`)."""
    node = path_nodes(ast.parse(source), qualname)[-1]
    found = set()
    for stmt in (s for top in node.body for s in ast.walk(top) if isinstance(s, ast.stmt)):
        plumbing = (isinstance(stmt, (ast.Pass, ast.Expr)) and not isinstance(getattr(stmt, "value", None), ast.Call)
                    or isinstance(stmt, ast.Return) and isinstance(stmt.value, (ast.Name, ast.Constant))
                    or isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Call)
                    and all(isinstance(a, ast.Name) for a in stmt.value.args) and not stmt.value.keywords)
        if not plumbing:
            found.add(ast.dump(stmt))
    return found


def path_nodes(tree, qualname):
    nodes, scope = [], tree
    for part in qualname.split("."):
        scope = next(n for n in scope.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == part)
        nodes.append(scope)
    return nodes


def calls(run):
    """(run(), the qualnames of the exercises it called): run with a profile hook."""
    from .exercises import EXERCISES

    wanted, called = {(e.file, e.qualname) for e in EXERCISES}, set()

    def hook(frame, event, arg):
        if event == "call":
            code = frame.f_code
            for file, qualname in wanted:
                if code.co_qualname == qualname and code.co_filename.endswith(os.sep + file):
                    called.add(qualname)

    before = sys.getprofile()
    sys.setprofile(hook)
    try:
        result = run()
    finally:
        sys.setprofile(before)
    return result, frozenset(called)


def staged(source, exercise=None, answer=frozenset(), others=()):
    """The text of a file as a child gets it (see the module docstring): `exercise` the one to stub
    when the file is its own, `answer` its answer_statements, `others` the qualnames of the other
    functions to stub."""
    tree = ast.parse(source)
    targets = [path_nodes(tree, q)[-1] for q in ((exercise.qualname,) if exercise else ()) + tuple(others)]
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            if ast.get_docstring(node, clean=False) is not None:
                node.body = node.body[1:] or [ast.Pass()]
        if isinstance(node, ast.keyword) and node.arg == "mistakes":
            node.value = ast.Tuple(elts=[], ctx=ast.Load())
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and (any(node is t for t in targets) or any(
                ast.dump(s) in answer for s in ast.walk(node) if isinstance(s, ast.stmt))):
            node.body = ast.parse(STUB).body
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


def make_stage(root, exercise, folder, gid=None, called=frozenset()):
    """Write the child's folder for `exercise` from the project at `root`, every other exercise
    stubbed but those its check `called`; readable by the group `gid` alone (the child's) when
    given. Returns the files written."""
    from .exercises import EXERCISES

    with open(os.path.join(root, exercise.file)) as f:
        answer = answer_statements(f.read(), exercise.qualname)
    files = imported(root, CHILD_ENTRY + (exercise.file.removesuffix(".py").replace("/", "."),), NEVER)
    for path in files:
        with open(os.path.join(root, path)) as f:
            others = [e.qualname for e in EXERCISES if e.file == path and e is not exercise and e.qualname not in called]
            text = staged(f.read(), exercise if path == exercise.file else None, answer, others)
        target = os.path.join(folder, path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w") as f:
            f.write(text)
    if gid is not None:
        for here, dirs, names in os.walk(folder):
            os.chown(here, 0, gid)
            os.chmod(here, 0o750)
            for name in names:
                os.chown(os.path.join(here, name), 0, gid)
                os.chmod(os.path.join(here, name), 0o640)
    return files
