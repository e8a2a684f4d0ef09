"""A student's workspace: the project copied with each exercise blanked, and the answers left out.

`make_workspace` writes the copy. In each exercise file, `stub` replaces the body of each
exercise's function, after its docstring, by one `raise NotImplementedError` naming its
exercise; `without_answers` drops the answers from the docstrings a student reads there;
`without_answer_blocks` does the same for docs/derivations.md. Every other byte of a file is
left as it is, and out/.reference/ keeps the full originals (the exercise files and
docs/derivations.md), for the grader and as the answer key.

The project is the answer key and the one source of both editions. Its answers are marked so:

- In the module docstring of an exercise file, and in the docstrings on the way to an
  exercise (a method's class, the function itself), a paragraph that begins with the word
  "Derived" is an answer, e.g. 'Derived in docs/derivations.md, "Dense": dW = x.T @ dout, ...'.
  It runs to the next blank line, and takes with it the paragraphs after it that are
  indented deeper (its formula blocks). A docstring's first line is never an answer, and
  an answer never holds the closing quotes, so that what is left is still a docstring.
- In docs/derivations.md, what lies between a line `<!-- answer -->` and a line
  `<!-- /answer -->` (or between the two on one line, as in a table's cell) is an answer.
  The question before it stays in both editions. Rendered, the markers are invisible.
"""

import ast
import os
import re
import shutil

REFERENCE = ".reference"  # where a workspace keeps the original exercise files, for the grader
SKIP = {".git", ".venv", ".pytest_cache", "__pycache__", "runs", "data", "exercises", REFERENCE}
DERIVATIONS = os.path.join("docs", "derivations.md")

ANSWER_PARAGRAPH = re.compile(r"\s*Derived\b")  # a docstring paragraph that begins so is an answer
ANSWER, END_ANSWER = "<!-- answer -->", "<!-- /answer -->"  # around an answer in docs/derivations.md
INLINE_ANSWER = re.compile(re.escape(ANSWER) + ".*?" + re.escape(END_ANSWER))


def function_node(tree, qualname):
    """The FunctionDef of `qualname` ("f" or "Class.method") in a module's syntax tree."""
    return path_nodes(tree, qualname)[-1]


def path_nodes(tree, qualname):
    """[the ClassDef or FunctionDef of each part of `qualname`]: ["Dense", "Dense.backward"]'s nodes."""
    scope, nodes = tree, []
    for part in qualname.split("."):
        scope = next((node for node in scope.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))
                      and node.name == part), None)
        if scope is None:
            raise KeyError(f"{qualname} is not defined in this file")
        nodes.append(scope)
    return nodes


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


def docstring_lines(tree, qualnames):
    """[(first, last)]: lines[first:last] of the file is a docstring a student reads beside the
    exercises `qualnames`: the module's, and those of their classes and functions; in file order."""
    nodes = [tree] + [node for qualname in qualnames for node in path_nodes(tree, qualname)]
    spans = {(n.body[0].lineno - 1, n.body[0].end_lineno) for n in nodes if ast.get_docstring(n) is not None}
    return sorted(spans)


def indentation(line):
    return len(line) - len(line.lstrip())


def answer_lines(doc):
    """[(first, last)]: doc[first:last] is an answer of the docstring whose lines are `doc`
    (see the module docstring), with the blank lines before it."""
    closing = len(doc) - 1 if doc[-1].strip() in ('"""', "'''") else len(doc)  # the text ends before
    answers, i = [], 1
    while i < closing:
        if doc[i - 1].strip() or not ANSWER_PARAGRAPH.match(doc[i]):
            i += 1
            continue
        indent, end = indentation(doc[i]), i + 1
        while end < closing and (doc[end].strip() == "" or doc[end - 1].strip() != ""
                                 or indentation(doc[end]) > indent):
            end += 1  # the paragraph, and the blank-separated blocks indented deeper
        while doc[end - 1].strip() == "":
            end -= 1
        if end == len(doc):  # the closing quotes are on the answer's last line
            raise ValueError(f"the answer {doc[i].strip()!r} ends on the docstring's closing quotes: "
                             "put them on a line of their own")
        start = i
        while doc[start - 1].strip() == "":
            start -= 1
        answers.append((start, end))
        i = end
    return answers


def without_answers(source, qualnames):
    """`source` with the answers (see the module docstring) left out of its module docstring
    and the docstrings on the way to each of `qualnames`; every other line as it was."""
    lines = source.splitlines(keepends=True)
    for first, last in reversed(docstring_lines(ast.parse(source), qualnames)):
        doc = lines[first:last]
        for start, end in reversed(answer_lines(doc)):
            del doc[start:end]
        lines[first:last] = doc
    return "".join(lines)


def student_file(source, exercises):
    """The student's edition of an exercise file: `exercises` (those of this file) stubbed, and
    the answers left out of the docstrings a student reads."""
    source = without_answers(source, [e.qualname for e in exercises])
    for exercise in exercises:
        source = stub(source, exercise)
    return source


def without_answer_blocks(text, name=DERIVATIONS):
    """`text` (Markdown) without what lies between the answer markers; a blank line that the
    removal leaves doubled is written once. An unclosed or unopened marker is an error."""
    out, opened, after_answer = [], None, False
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        marker = line.strip()
        if marker in (ANSWER, END_ANSWER):
            if (marker == ANSWER) == (opened is not None):
                raise ValueError(f"{name}, line {number}: {marker} "
                                 + (f"inside the answer opened on line {opened}" if opened else "with no answer open"))
            opened = number if marker == ANSWER else None
            after_answer = marker == END_ANSWER
            continue
        if opened is not None:
            continue
        line = INLINE_ANSWER.sub("", line)
        if ANSWER in line or END_ANSWER in line:
            raise ValueError(f"{name}, line {number}: an answer marker without its other half on the line")
        if after_answer and not line.strip() and out and not out[-1].strip():
            continue
        after_answer = False
        out.append(line)
    if opened is not None:
        raise ValueError(f"{name}, line {opened}: {ANSWER} is never closed")
    return "".join(out)


def answer_key(root, file):
    """The text of `file` as the answer key has it: root/.reference/file when root is itself a
    workspace (whose own files are the student's), else root/file."""
    path = os.path.join(root, REFERENCE, file)
    with open(path if os.path.exists(path) else os.path.join(root, file)) as f:
        return f.read()


def write_editions(root, out, file, student_edition):
    """Write root/file to out/file as student_edition(its text) makes it, and the answer key's
    text of it to out/.reference/file."""
    with open(os.path.join(root, file)) as f:
        source = f.read()
    os.makedirs(os.path.dirname(os.path.join(out, REFERENCE, file)), exist_ok=True)
    with open(os.path.join(out, REFERENCE, file), "w") as f:
        f.write(answer_key(root, file))
    with open(os.path.join(out, file), "w") as f:
        f.write(student_edition(source))


def make_workspace(root, out, exercises):
    """Copy the project at `root` to `out` as the student's edition: the body of every one of
    `exercises` stubbed, the answers left out of their docstrings and of docs/derivations.md,
    and the originals of those files under out/.reference/. Returns the stubbed files."""
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
        write_editions(root, out, file, lambda source: student_file(source, in_file))
    if os.path.exists(os.path.join(root, DERIVATIONS)):
        write_editions(root, out, DERIVATIONS, without_answer_blocks)
    venv = os.path.join(root, ".venv")
    if os.path.isdir(venv) and not os.path.exists(os.path.join(out, ".venv")):
        os.symlink(os.path.abspath(venv), os.path.join(out, ".venv"))  # the same packages, installed once
    return sorted(by_file)
