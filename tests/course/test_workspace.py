"""The student's edition (course/workspace.py): what a workspace leaves out, what it keeps, and that
it changes nothing else.

The answers looked for are listed here by hand, as the reference writes them, and each is first
found in the project's own files: a test that looks for a string the project never wrote would
pass for nothing.
"""

import ast
import json
import os
import re
import subprocess
import sys

import pytest

from course.exercises import EXERCISES
from course.key import KEY
from course.workspace import (DERIVATIONS, NEEDED, answer_fragments, body_lines, given, leaks, make_workspace,
                              readable, student_file, without_answer_blocks, without_answers)
import paths

ROOT = str(paths.ROOT)
EXERCISE_FILES = sorted({e.file for e in EXERCISES})
SECTIONS = sorted({e.section for e in EXERCISES})
# In a workspace the files are already the student's edition, whose answers these tests look for in vain.
pytestmark = pytest.mark.skipif(os.path.exists(os.path.join(ROOT, KEY)),
                                reason="the student's edition is made from the project, not from a workspace")

# The backward's formula, as the reference's docstrings (the exercise's own, its class's, its
# module's) write it.
DOCSTRING_ANSWERS = {
    "numerical_grad": ["- f(x - h e_i)) / (2h)"],
    "Dense.backward": ["x.T @ dout", "dout @ W.T"],
    "ReLU.backward": ["dx = dout * slope"],
    "Sigmoid.backward": ["y * (1 - y)"],
    "Tanh.backward": ["(1 - y**2)"],
    "mse": ["2 (x_hat - x) / N"],
    "bce": ["(sigmoid(logits) - x) / N"],
    "gaussian_kl": ["dmu = mu / N", "(exp(logvar) - 1) / (2N)"],
    "Adam.update": ["lr_t = lr sqrt(1 - b2**t) / (1 - b1**t)", "eps_t = eps sqrt(1 - b2**t)"],
    "AutoEncoder.backward": [],  # its docstrings never gave it
    "VAE.backward": ["dz * eps * 0.5 * std", "dmu @ W_mu.T", "dz/dlogvar = eps * 0.5 * std"],
    "Conv2d.backward": ["dout_mat @ patches.T", "sum(dout_mat, axis=1)", "col2im(W_mat.T @ dout_mat)"],
    "ConvTranspose2d.backward": ["dpatches = im2col(inner(dout))", "x_mat @ dpatches.T", "dx = W_mat @ dpatches"],
    "gaussian_nll": ["(x_hat - x) / (sigma**2 N)", "[1/2 - (x - x_hat)**2 / (2 sigma**2)]"],
}
# ... and as the exercise's section of docs/derivations.md does.
SECTION_ANSWERS = {
    "Checking a gradient": ["- f(x - h e_i)) / (2h)", "h**2/6 f'''", "put `x_i` back"],
    "Dense": ["x.T @ dout", "dout @ W.T", "sum(dout, axis=0)"],
    "Activations": ["dout * slope", "y (1 - y)", "y * (1 - y)", "1 - y**2"],
    "Mean squared error": ["2 (x_hat - x) / N"],
    "Binary cross-entropy from logits": ["(sigmoid(l) - x) / N", "= p - x", "p (1 - p)` has cancelled"],
    "KL divergence to the standard normal": ["= mu / N", "(exp(logvar) - 1) / (2 N)"],
    "Adam": ["lr_t = lr sqrt(1 - b2**t) / (1 - b1**t)", "eps_t = eps sqrt(1 - b2**t)"],
    "The autoencoder": ["decoder.backward(dlogits)", "encoder.backward(dz)"],
    "The VAE and the reparameterisation trick": ["eps * 0.5 * std", "beta * mu / N", "dmu @ W_mu.T"],
    "Convolution": ["dout_mat @ patches.T", "sum(dout_mat, axis=1)", "col2im(W_mat.T @ dout_mat)",
                    "reshape(inner(dout), (out, L N))", "dpatches = im2col(inner(dout))", "x_mat @ dpatches.T",
                    "dx = W_mat @ dpatches", "col2im(W_mat.T @ y_mat)"],
    "A decoder that learns its variance": ["(x_hat - x) / (sigma**2 N)", "(N D / 2 - S / (2 sigma**2)) / N",
                                           "At `sigma**2 = S / (N D)`", "beta = 2 sigma**2"],
}
ALL_ANSWERS = sorted({s for strings in (*DOCSTRING_ANSWERS.values(), *SECTION_ANSWERS.values()) for s in strings})

# What the student's docstrings must still say: shapes, the forward, what to return, the contract.
KEPT = {
    "numerical_grad": ["returns an array of x's shape", "restored, so x is\n    unchanged afterwards", "h: the step"],
    "Dense.backward": ["y = x @ W + b", "x: (N, in_features)", "returns dx: (N, in_features)"],
    "ReLU.backward": ["y = max(x, 0)", "slope = 1.0 where x > 0", "returns dx: (N, D)"],
    "Sigmoid.backward": ["1 / (1 + exp(-x))", "forward keeps y", "returns dx: (N, D)"],
    "Tanh.backward": ["y = tanh(x)", "returns dx: (N, D)"],
    "mse": ["L = 1/N sum_{n,d} (x_hat - x)**2", "x_hat, x: (N, D)", "Returns (L, dx_hat)"],
    "bce": ["max(l, 0) - l x + log(1 + exp(-|l|))", "Returns (L, dlogits)"],
    "gaussian_kl": ["(1 + logvar - mu**2 - exp(logvar))", "mu, logvar: (N, J)", "Returns (KL, dmu, dlogvar)"],
    "Adam.update": ["p -= lr * m_hat / (sqrt(v_hat) + eps)", "update them in place"],
    "AutoEncoder.backward": ["Fill self.grads", "x: (N, input_dim) -> z: (N, latent_dim)"],
    "VAE.backward": ["z      = mu + std * eps", "Keeps self.dmu and self.dlogvar", "self.dmu_kl"],
    "Conv2d.backward": ["y[n, o, h, w] = sum_{c, i, j} W[o, c, i, j] x_padded[n, c, s h + i, s w + j] + b[o]",
                        "`self.patches` = im2col(inner(x)): (in k k, L N)", "in the layers' layout: (in, H, W, N)",
                        "returns dx:\n    (N, in, H, W)"],
    "ConvTranspose2d.backward": ["y = col2im(W_mat.T @ x_mat) + b", "`self.x_mat` and `self.x_shape`",
                                 "returns dx: (N, in, H, W)"],
    "gaussian_nll": ["L = 1/N sum_{n,d} [(x - x_hat)**2 / (2 sigma**2) + x_logvar / 2 + log(2 pi) / 2]",
                     "x_hat, x: (N, D); x_logvar: (1,)", "Returns (L, dx_hat, dx_logvar)", "dx_logvar = dL/dx_logvar:\n    (1,)"],
}


@pytest.fixture(scope="module")
def editions(tmp_path_factory):
    """(project, workspace): the project's exercise files and derivations as read before
    make_workspace ran, and the folder it wrote."""
    before = {path: open(os.path.join(ROOT, path), "rb").read() for path in (*EXERCISE_FILES, DERIVATIONS)}
    out = tmp_path_factory.mktemp("lab") / "exercises"
    make_workspace(ROOT, str(out), EXERCISES)
    return before, out


def docstrings(source, qualname):
    """The module's docstring and those of every class and function on the way to `qualname`, joined."""
    tree = ast.parse(source)
    nodes, scope = [tree], tree
    for part in qualname.split("."):
        scope = next(n for n in scope.body if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name == part)
        nodes.append(scope)
    return "\n\n".join(ast.get_docstring(n, clean=False) or "" for n in nodes)


def sections(text):
    """{heading without "## ": its text} of a Markdown file."""
    parts = re.split(r"^## ", text, flags=re.MULTILINE)[1:]
    return {part.split("\n", 1)[0]: part for part in parts}


def section(text, name):
    return next(body for heading, body in sections(text).items() if heading.startswith(name))


def read(path):
    with open(path) as f:
        return f.read()


def test_the_answers_looked_for_are_the_reference_s(editions):
    project, workspace = editions
    for exercise in EXERCISES:
        text = docstrings(project[exercise.file].decode(), exercise.qualname)
        for answer in DOCSTRING_ANSWERS[exercise.qualname]:
            assert answer in text, f"{exercise.qualname}'s docstrings do not say {answer!r}"
            assert answer not in docstrings(read(workspace / exercise.file), exercise.qualname)
    for name, answers in SECTION_ANSWERS.items():
        for answer in answers:
            assert answer in section(project[DERIVATIONS].decode(), name), f'"{name}" does not say {answer!r}'


def test_no_student_docstring_gives_a_backward_s_formula(editions):
    _, workspace = editions
    for exercise in EXERCISES:
        text = docstrings(read(workspace / exercise.file), exercise.qualname)
        for answer in ALL_ANSWERS:
            assert answer not in text, f"{exercise.file}: a docstring beside {exercise.qualname} gives {answer!r}"


def test_no_exercise_section_of_the_student_derivations_gives_its_result(editions):
    _, workspace = editions
    student = read(workspace / DERIVATIONS)
    for name in SECTIONS:
        for answer in ALL_ANSWERS:
            assert answer not in section(student, name), f'"{name}" gives {answer!r}'
    assert "<!-- answer -->" not in student and "<!-- /answer -->" not in student


def test_the_student_docstrings_keep_shapes_forward_and_contract(editions):
    _, workspace = editions
    for exercise in EXERCISES:
        text = docstrings(read(workspace / exercise.file), exercise.qualname)
        for kept in KEPT[exercise.qualname]:
            assert kept in text, f"{exercise.qualname}: the student's docstrings lost {kept!r}"


def test_every_exercise_section_keeps_its_questions_and_each_answer_is_asked_for(editions):
    project, workspace = editions
    key, student = project[DERIVATIONS].decode(), read(workspace / DERIVATIONS)
    for name in SECTIONS:
        asked, answered = section(student, name), section(key, name)
        assert asked.count("?") >= 3 and "**1. " in asked, f'"{name}" asks too little'
        # The student's section is the key's with the answers cut out, and nothing else changed.
        cut = re.sub(r"<!-- answer -->.*?<!-- /answer -->", "", answered, flags=re.DOTALL)
        assert asked.split() == cut.split(), name
        # Before each answer (a block of lines), since the one before it, a question.
        for piece in re.split(r"^<!-- /answer -->$", answered, flags=re.MULTILINE)[:-1]:
            before = re.split(r"^<!-- answer -->$", piece, flags=re.MULTILINE)[0]
            assert "?" in before, f'an answer of "{name}" is never asked for: {before[-200:]!r}'
    for name, text in sections(key).items():  # the sections of no exercise are as they were, answers cut
        if not any(name.startswith(s) for s in SECTIONS):
            cut = re.sub(r"<!-- answer -->.*?<!-- /answer -->", "", text, flags=re.DOTALL)
            assert sections(student)[name].split() == cut.split(), name


def outside(source, qualnames):
    """The lines of `source` outside the docstrings a student reads beside `qualnames` and outside
    their bodies, as a list of runs: what the student edition must leave byte for byte."""
    tree, lines = ast.parse(source), source.splitlines(keepends=True)
    skip = set()
    for qualname in qualnames:
        scope, nodes = tree, [tree]
        for part in qualname.split("."):
            scope = next(n for n in scope.body if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name == part)
            nodes.append(scope)
        for node in nodes:
            if ast.get_docstring(node) is not None:
                skip.update(range(node.body[0].lineno - 1, node.body[0].end_lineno))
        _, first, last = body_lines(source, qualname)
        skip.update(range(first, last))
    runs, run = [], []
    for i, line in enumerate(lines):
        if i in skip:
            if run:
                runs.append(run)
            run = []
        else:
            run.append(line)
    return runs + [run]


def test_the_student_edition_changes_nothing_but_those_docstrings_and_bodies(editions):
    project, workspace = editions
    for file in EXERCISE_FILES:
        qualnames = [e.qualname for e in EXERCISES if e.file == file]
        original, student = project[file].decode(), read(workspace / file)
        assert outside(student, qualnames) == outside(original, qualnames), file
        # Inside a docstring, lines are only ever left out, never changed; the first and last stay.
        defs_o, defs_s = ([n for n in ast.walk(ast.parse(source)) if isinstance(n, (ast.Module, ast.ClassDef,
                                                                                        ast.FunctionDef))]
                          for source in (original, student))
        assert [getattr(n, "name", "") for n in defs_o] == [getattr(n, "name", "") for n in defs_s], file
        for node_o, node_s in zip(defs_o, defs_s):
            if ast.get_docstring(node_o) is not None:
                doc_o, doc_s = (source.splitlines(keepends=True)[node.body[0].lineno - 1:node.body[0].end_lineno]
                                for source, node in ((original, node_o), (student, node_s)))
                where = (file, getattr(node_o, "name", "the module"))
                assert doc_s[0] == doc_o[0] and doc_s[-1] == doc_o[-1], where  # the opening and closing lines
                remaining = iter(doc_o)
                assert all(line in remaining for line in doc_s), where


@pytest.mark.slow
def test_the_workspace_modules_import(editions):
    _, workspace = editions
    modules = [file[:-3].replace("/", ".") for file in EXERCISE_FILES]
    done = subprocess.run([sys.executable, "-c", f"import {', '.join(modules)}"], cwd=workspace,
                          env={**os.environ, "PYTHONPATH": str(workspace)}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr


def test_the_project_keeps_the_full_originals_and_the_workspace_only_numbers(editions):
    project, workspace = editions
    assert (workspace / KEY).exists() and not (workspace / ".reference").exists()
    for path, original in project.items():
        with open(os.path.join(ROOT, path), "rb") as f:
            assert f.read() == original, f"make_workspace changed the project's {path}"


def test_an_unbalanced_answer_marker_is_refused_with_its_line():
    with pytest.raises(ValueError, match="line 2: <!-- answer --> is never closed"):
        without_answer_blocks("What is dW?\n<!-- answer -->\nx.T @ dout\n")
    with pytest.raises(ValueError, match="line 2: <!-- /answer --> with no answer open"):
        without_answer_blocks("What is dW?\n<!-- /answer -->\n")
    with pytest.raises(ValueError, match="line 1: an answer marker without its other half"):
        without_answer_blocks("| ReLU | <!-- answer -->slope |\n")
    assert without_answer_blocks("Q?\n<!-- answer -->\nA.\n<!-- /answer -->\n\nNext.\n") == "Q?\n\nNext.\n"


def test_an_answer_that_holds_the_closing_quotes_is_refused():
    source = 'def f():\n    """y = 2 x.\n\n    Derived: dx = 2 dout."""\n    return 1\n'
    with pytest.raises(ValueError, match="closing quotes"):
        without_answers(source, ["f"])
    fixed = source.replace('dout."""', 'dout.\n    """')
    assert without_answers(fixed, ["f"]) == 'def f():\n    """y = 2 x.\n    """\n    return 1\n'


def reference_answers():
    """The answers make_workspace looks for: those the student's edition does not hold anyway."""
    sources = {e.file: open(os.path.join(ROOT, e.file)).read() for e in EXERCISES}
    students = [student_file(text, [e for e in EXERCISES if e.file == file]) for file, text in sources.items()]
    derivations = without_answer_blocks(open(os.path.join(ROOT, DERIVATIONS)).read())
    return given(answer_fragments(sources, EXERCISES), [*students, derivations])


def test_an_answer_written_as_prose_in_markdown_or_a_notebook_is_found(tmp_path):
    answers = reference_answers()
    markdown = "The sampler's gradient is `dz/dlogvar = eps*0.5 *  std`, as forward kept it.\n"
    assert [q for _, q in leaks(markdown, answers)] == ["VAE.backward"]
    notebook = tmp_path / "n.ipynb"
    notebook.write_text(json.dumps({"cells": [{"cell_type": "markdown", "metadata": {},
                                               "source": ["Its derivative is y (1 - y): keep y.\n"]}]}))
    assert [q for _, q in leaks(readable(str(notebook)), answers)] == ["Sigmoid.backward"]


def test_no_file_a_workspace_must_keep_holds_an_answer_in_prose_or_code():
    """nn/, models/, lab/ and docs/ outside the exercises' own files and answers (models/base.py's
    reconstruction, say, once gave the sigmoid's derivative and BCE's gradient): make_workspace
    would refuse them."""
    answers, exercise_files = reference_answers(), {e.file for e in EXERCISES} | {DERIVATIONS}
    for folder in NEEDED:
        for where, _, files in os.walk(os.path.join(ROOT, folder)):
            for name in files:
                path = os.path.relpath(os.path.join(where, name), ROOT)
                text = None if path in exercise_files or "__pycache__" in path else readable(os.path.join(ROOT, path))
                assert not text or not leaks(text, answers), (path, leaks(text, answers))


def test_the_studies_decoder_jacobian_is_no_centred_difference_to_copy():
    """studies/measures.py stays in a workspace (the studies import it): its Jacobian is a
    five-point stencil, not exercise 1's answer."""
    text = readable(os.path.join(ROOT, "studies", "measures.py"))
    assert not leaks(text, reference_answers()), leaks(text, reference_answers())
