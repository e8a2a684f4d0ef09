"""A student's workspace: the project copied with each exercise blanked, and the answers left out.

`make_workspace` writes the copy. In each exercise file, `stub` replaces the body of each
exercise's function, after its docstring, by one `raise NotImplementedError` naming its
exercise; `without_answers` drops the answers from the docstrings a student reads there;
`without_answer_blocks` does the same for docs/derivations.md. Every other file that holds an
answer line (`leaks`: each statement of each reference body and each value it computes,
compared without whitespace, quotes or `self.`) is left out, and the answer key is numbers
(course/key.py): no file of the workspace holds an answer's code.

The project is the answer key and the one source of both editions. Its answers are marked so:

- In the module docstring of an exercise file, and in the docstrings on the way to an
  exercise (a method's class, the function itself), a paragraph that begins with the word
  "Derived" is an answer, e.g. 'Derived in docs/derivations.md, "Dense": dW = ...'.
  It runs to the next blank line, and takes with it the paragraphs after it that are
  indented deeper (its formula blocks). A docstring's first line is never an answer, and
  an answer never holds the closing quotes, so that what is left is still a docstring.
- In docs/derivations.md, what lies between a line `<!-- answer -->` and a line
  `<!-- /answer -->` (or between the two on one line, as in a table's cell) is an answer.
  The question before it stays in both editions. Rendered, the markers are invisible.
"""

import ast
import json
import os
import re
import shutil

REFERENCE = ".reference"  # where workspaces once kept the answer key as code: none does now
SKIP = {".git", ".venv", ".pytest_cache", "__pycache__", "runs", "data", "exercises", ".key", REFERENCE}
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


TEACHERS = tuple(os.path.join("course", f) for f in ("mistakes.py", "prose_answers.py"))  # answer text by design: never in a workspace
NEEDED = tuple(folder + os.sep for folder in ("nn", "models", "lab", "docs"))  # never left out: reworded instead


def answer_key(root, file):
    """The text of `file` in the project at `root` (the teacher's: its files are the answers)."""
    with open(os.path.join(root, file)) as f:
        return f.read()


def make_workspace(root, out, exercises):
    """Copy the project at `root` to `out` as the student's edition: the body of every one of
    `exercises` stubbed, the answers left out of their docstrings and of docs/derivations.md,
    every other file that holds an answer line left out (a test that checks a formula, the
    catalogue of mistakes, the benchmark's list of products) and the files that import a module
    left out; and the answer key as numbers (course/key.py). Returns the files left out. A file
    that training needs (NEEDED) or one at the top (the README) that holds an answer is an error:
    the teacher's to reword."""
    from .key import write_key
    from .needs import every_training_run

    if os.path.exists(out) and os.listdir(out):
        raise FileExistsError(f"{out} already exists and is not empty: it may hold a student's work; "
                              "give another folder, or remove it first")
    target = os.path.abspath(out)

    def ignore(folder, names):  # what a workspace does not need, and the workspace itself if it lies inside root
        return [n for n in names if n in SKIP or n.endswith(".pyc") or os.path.abspath(os.path.join(folder, n)) == target]

    sources = {}
    for exercise in exercises:
        with open(os.path.join(root, exercise.file)) as f:
            sources[exercise.file] = f.read()
    students = {file: student_file(source, [e for e in exercises if e.file == file]) for file, source in sources.items()}
    with open(os.path.join(root, DERIVATIONS)) as f:
        derivations = without_answer_blocks(f.read())
    fragments = given(answer_fragments(sources, exercises), [*students.values(), derivations])
    shutil.copytree(root, out, ignore=ignore, dirs_exist_ok=True)
    for file, text in {**students, DERIVATIONS: derivations}.items():
        with open(os.path.join(out, file), "w") as f:
            f.write(text)
    left_out = set(TEACHERS) | {path for path in files_of(out) if (text := readable(os.path.join(out, path)))
                                and leaks(text, fragments)}
    refused = sorted(p for p in left_out if p.startswith(NEEDED) or os.sep not in p)
    if refused:
        shutil.rmtree(out)
        raise ValueError(f"{listed(refused)} hold an answer of an exercise ({listed(sorted({q for p in refused for _, q in leaks(readable(os.path.join(root, p)), fragments)}))}): "
                         "reword them, or no workspace can be made")
    left_out = importers(out, left_out)
    for path in left_out:
        if os.path.exists(os.path.join(out, path)):
            os.remove(os.path.join(out, path))
    write_key(out, exercises, every_training_run())
    venv = os.path.join(root, ".venv")
    if os.path.isdir(venv) and not os.path.exists(os.path.join(out, ".venv")):
        os.symlink(os.path.abspath(venv), os.path.join(out, ".venv"))  # the same packages, installed once
    return sorted(left_out)


def listed(names):
    return ", ".join(names)


def files_of(folder):
    """Every file under `folder`, as a path relative to it (the .venv link and the key aside)."""
    for where, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d not in (".venv", ".key")]
        for name in files:
            yield os.path.relpath(os.path.join(where, name), folder)


def importers(folder, left_out):
    """`left_out` and every Python file of `folder` that imports one of its modules, until none more."""
    left_out = set(left_out)
    while True:
        modules = [p.removesuffix(".py").replace(os.sep, ".") for p in left_out if p.endswith(".py")]
        patterns = [re.compile(rf"^\s*(from\s+{re.escape(m)}\s+import|import\s+{re.escape(m)}\b|from\s+"
                               rf"{re.escape(m.rpartition('.')[0])}\s+import\s+[^\n]*\b{re.escape(m.rpartition('.')[2])}\b)",
                               re.MULTILINE) for m in modules if "." in m]
        more = {p for p in files_of(folder) if p.endswith(".py") and p not in left_out
                and any(pattern.search(readable(os.path.join(folder, p)) or "") for pattern in patterns)}
        if not more:
            return left_out
        left_out |= more


# --- Answers anywhere: what a workspace must not hold -------------------------------------


def normalised(text):
    """`text` as answers are compared: no whitespace, one kind of quote, no `self.`, `xp.`, `np.`
    before a name, and a parameter by its own name (params["W"] is W)."""
    text = re.sub(r"\s+", "", text).replace("'", '"')
    text = re.sub(r"(?<![\w.])(?:self|xp|np|numpy)\.", "", text)
    return re.sub(r'params\["(\w+)"\]', r"\1", text)


def answer_fragments(sources, exercises):
    """{normalised fragment: the exercise it answers}: each statement of each exercise's body in
    `sources` ({file: the reference's text}) and each value it computes, those that say
    nothing (answer_like) aside; and its answers as prose writes them (course/prose_answers.py)."""
    from .prose_answers import PROSE  # the teacher's side: answer text

    fragments = {normalised(text): e.qualname for e in exercises for text in PROSE.get(e.qualname, ())}
    for exercise in exercises:
        node = function_node(ast.parse(sources[exercise.file]), exercise.qualname)
        body = node.body[1:] if ast.get_docstring(node) is not None else node.body
        for statement in (s for top in body for s in ast.walk(top) if isinstance(s, ast.stmt)):
            values = [statement] + [getattr(statement, "value", None)]
            for piece in filter(None, values):
                code = normalised(ast.unparse(piece))
                if answer_like(code):
                    fragments.setdefault(code, exercise.qualname)
    return fragments


def answer_like(code):
    """Whether a fragment of normalised code says something: a binary operation, or calls
    nested 12 characters or more, and not a block's header."""
    if code.startswith(("if", "for", "def", "while")):
        return False
    return bool(re.search(r"[\w)\]][-+*/@]", code)) or (len(code) >= 12 and bool(re.search(r"\w\([^()]*\w\(", code)))


def given(fragments, student_sources):
    """`fragments` less those the student's edition of the exercise files holds anyway (a
    forward's `xp = namespace(x)`): those are no answer."""
    text = normalised("".join(student_sources))
    return {code: q for code, q in fragments.items() if code not in text}


def readable(path):
    """The text a student reads in the file at `path`: a notebook's cells, any other file's text
    (None for a binary file)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (UnicodeDecodeError, OSError):
        return None
    if path.endswith(".ipynb"):
        try:
            return "\n".join("".join(cell.get("source", "")) for cell in json.loads(text).get("cells", []))
        except ValueError:
            return text
    return text


def leaks(text, fragments):
    """[(fragment, the exercise it answers)] of `fragments` found in `text`."""
    flat = normalised(text)
    return [(code, q) for code, q in fragments.items() if code in flat]
