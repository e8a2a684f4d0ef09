"""A function's source edited on its syntax tree: how a classic mistake (course/mistakes.py) is
written into the reference, as a student would have written it.

An edit is (old code, new code): an expression, or one or more statements, found in the function
by ast.dump (so spacing, quotes, comments and line breaks never matter), never by the file's
bytes, and exactly once. Only the lines of the statements that change are rewritten. An edit
whose old code is "" puts its new code first in the body, after the docstring.
"""

import ast
import copy
import textwrap

from .workspace import body_lines, function_node


def parsed(code):
    """(an expression node, None) if `code` is one expression, else (None, [statements]). Lines
    after the first may carry the indentation of the file they were copied from."""
    try:
        return ast.parse(code, mode="eval").body, None
    except SyntaxError:
        pass
    try:
        return None, ast.parse(code).body
    except IndentationError:
        first, _, rest = code.partition("\n")
        return None, ast.parse(first + "\n" + textwrap.dedent(rest)).body


def statement_lists(node):
    """Every list of statements inside `node` (a body, an else, a loop's), the node's own first."""
    for child in ast.walk(node):
        for name in ("body", "orelse", "finalbody"):
            block = getattr(child, name, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                yield block


def indented(code, indent):
    return "".join(indent + line + "\n" for line in code.splitlines())


def edited(source, qualname, old, new):
    """`source` (a whole file) with the code `old` in the function `qualname` replaced by `new`,
    found on the syntax tree; only the lines of the statements that change are rewritten."""
    tree = ast.parse(source)
    function = function_node(tree, qualname)
    lines, first, _ = body_lines(source, qualname)
    if not old.strip():  # the wrong code goes first in the body, after the docstring
        indent = " " * function.body[0].col_offset
        return "".join(lines[:first] + [indented(new, indent)] + lines[first:])
    old_expression, old_statements = parsed(old)
    new_expression, new_statements = parsed(new) if new.strip() else (None, [])
    if old_expression is not None and new_expression is not None:
        want = ast.dump(old_expression)
        found = [(statement, node) for block in statement_lists(function) for statement in block
                 for node in ast.walk(statement) if isinstance(node, ast.expr) and ast.dump(node) == want
                 and innermost(statement, node)]
        if len(found) != 1:
            raise LookupError(f"{old!r} is in {qualname} {len(found)} times, not once")
        statement, node = found[0]
        replaced = Replace(new_expression).visit(marked_copy(statement, node))
        span, code = (statement.lineno, statement.end_lineno), ast.unparse(replaced)
        indent = " " * statement.col_offset
    else:
        want = [ast.dump(s) for s in old_statements]
        found = [(block, i) for block in statement_lists(function) for i in range(len(block) - len(want) + 1)
                 if [ast.dump(s) for s in block[i:i + len(want)]] == want]
        if len(found) != 1:
            raise LookupError(f"{old!r} is in {qualname} {len(found)} times, not once")
        block, i = found[0]
        run = block[i:i + len(want)]
        indent = " " * run[0].col_offset
        code = "\n".join(ast.unparse(s) for s in new_statements)
        if not code and len(block) == len(want):
            code = "pass"
        span = (run[0].lineno, run[-1].end_lineno)
    start, end = span
    return "".join(lines[:start - 1] + ([indented(code, indent)] if code else []) + lines[end:])


def innermost(statement, node):
    """True unless `node` lies in a statement nested inside `statement` (that one is matched itself)."""
    for child in ast.walk(statement):
        if child is not statement and isinstance(child, ast.stmt) and any(n is node for n in ast.walk(child)):
            return False
    return True


def marked_copy(statement, node):
    """A copy of `statement` in which the copy of `node` is marked, for Replace to find."""
    node.marked = True
    try:
        return copy.deepcopy(statement)
    finally:
        del node.marked


class Replace(ast.NodeTransformer):
    """Swaps the node marked by marked_copy for `new`."""

    def __init__(self, new):
        self.new = new

    def generic_visit(self, node):
        if getattr(node, "marked", False):
            return self.new
        return super().generic_visit(node)
