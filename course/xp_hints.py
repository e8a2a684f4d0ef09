"""The `xp` form of NumPy-only code, for the grader's hint when an answer fails on the array-API backend.

An answer written with `np.` runs on NumPy and nowhere else; one that calls an array method
NumPy has and the array API standard lacks (`dout.sum(axis=0)`) fails on array_api_strict, as it
would on some other backend. The hint rewrites the call the student wrote: a method by XP_FORMS,
a NumPy function by its array-API name (XP_NAMES: np.concatenate is xp.concat, np.arccos is
xp.acos) or form (XP_CALLS: np.dot(a, b) is a @ b), a function of the same name as it is
(np.exp is xp.exp); one the array API has no form of is said so.
"""

import ast
import copy
import inspect
import re
import textwrap
import types

import array_api_strict as array_api

from .diagnosis import listed, student_frame

# NumPy's array methods and attributes that the array API standard (so CuPy's common ground
# with NumPy, and array_api_strict) does not have, and what to write instead: {x} is the array,
# {args} the call's arguments, {, args} them after a comma if there are any.
XP_FORMS = {
    **{name: f"xp.{name}({{x}}{{, args}})" for name in (
        "sum", "mean", "max", "min", "prod", "std", "var", "any", "all", "argmax", "argmin", "clip", "round")},
    "astype": "xp.astype({x}{, args})",
    "reshape": "xp.reshape({x}, {shape}) (with copy=False where it must be a view of {x})",
    "flatten": "xp.reshape({x}, (-1,))",
    "ravel": "xp.reshape({x}, (-1,))",
    "flat": "xp.reshape({x}, (-1,), copy=False)",
    "copy": "xp.asarray({x}, copy=True)",
    "dot": "{x} @ {args}",
    "transpose": "xp.permute_dims({x}{, args}), or {x}.T for a matrix",
    "item": "float({x})",
}
# NumPy's functions that the array API has under another name: the same arguments, that name.
XP_NAMES = {
    "concatenate": "concat", "power": "pow", "float_power": "pow", "absolute": "abs", "fabs": "abs",
    "transpose": "permute_dims", "arccos": "acos", "arcsin": "asin", "arctan": "atan", "arctan2": "atan2",
    "arccosh": "acosh", "arcsinh": "asinh", "arctanh": "atanh", "invert": "bitwise_invert",
    "bitwise_not": "bitwise_invert", "left_shift": "bitwise_left_shift", "right_shift": "bitwise_right_shift",
    "amax": "max", "amin": "min", "around": "round", "true_divide": "divide", "cumsum": "cumulative_sum",
    "cumprod": "cumulative_prod", "unique": "unique_values", "asanyarray": "asarray", "array": "asarray",
    "conjugate": "conj",
}
# And those it has only in another form: {NumPy's name: [the call's arguments, as written] -> the form}.
XP_CALLS = {
    "dot": lambda a: f"{a[0]} @ {a[1]}",
    "vstack": lambda a: f"xp.concat({a[0]}, axis=0)",  # of matrices
    "hstack": lambda a: f"xp.concat({a[0]}, axis=1)",  # of matrices
    "ravel": lambda a: f"xp.reshape({a[0]}, (-1,))",
    "copy": lambda a: f"xp.asarray({a[0]}, copy=True)",
    "swapaxes": lambda a: f"xp.permute_dims({a[0]}, axes) (axes: 0, 1, ... with {a[1]} and {a[2]} swapped)",
    "transpose": lambda a: f"xp.permute_dims({', '.join(a)})" if len(a) > 1 else
    f"xp.permute_dims({a[0]}, axes) (axes: {a[0]}'s axes in the order you mean; {a[0]}.T for a matrix)",
}
NAMESPACES = ("np", "numpy")  # what a student's code calls NumPy by


def xp_form(name, args):
    """The array-API form of np.<name>(*args) (`args` as written), or None where it has none."""
    if name in XP_CALLS:
        return XP_CALLS[name](args)
    if name in XP_NAMES or hasattr(array_api, name):
        return f"xp.{XP_NAMES.get(name, name)}({', '.join(args)})"
    return None


def is_call(node, namespaces):
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name) and node.func.value.id in namespaces)


def calls_in(node, namespaces):
    """The outermost calls of `namespaces` inside `node` (np.reshape(np.transpose(...)): the reshape)."""
    found = []
    for child in ast.iter_child_nodes(node):
        found += [child] if is_call(child, namespaces) else calls_in(child, namespaces)
    return found


def rewritten(node, namespaces):
    """The source of the expression `node` with each call of `namespaces` in its array-API form,
    or None where one has none."""
    if is_call(node, namespaces):
        values = [rewritten(a, namespaces) for a in (*node.args, *(k.value for k in node.keywords))]
        if None in values or any(k.arg is None for k in node.keywords):  # **kwargs: no form to write
            return None
        names = [""] * len(node.args) + [f"{k.arg}=" for k in node.keywords]
        return xp_form(node.func.attr, [name + value for name, value in zip(names, values)])
    node = copy.deepcopy(node)  # marked below
    inner = calls_in(node, namespaces)
    forms = [rewritten(c, namespaces) for c in inner]
    if None in forms:
        return None
    marks = {id(c): f"_xp_{i}_" for i, c in enumerate(inner)}

    class Mark(ast.NodeTransformer):
        def visit_Call(self, call):
            return ast.Name(marks[id(call)]) if id(call) in marks else self.generic_visit(call)

    text = ast.unparse(Mark().visit(node))
    for i, form in enumerate(forms):
        text = text.replace(f"_xp_{i}_", f"({form})" if " @ " in form else form)
    return text


def first_array(call, namespaces):
    """The first name (or attribute, self.x) a call reads: what to ask namespace() of."""
    for arg in (*call.args, *(k.value for k in call.keywords)):
        for node in ast.walk(arg):
            if isinstance(node, ast.Name) and node.id not in namespaces or isinstance(node, ast.Attribute) \
                    and not (isinstance(node.value, ast.Name) and node.value.id in namespaces):
                return ast.unparse(node)
    return "x"


def calls_hint(source, namespaces=NAMESPACES):
    """'; write xp.permute_dims(dout, (1, 0)) for np.transpose(dout, (1, 0)), with xp = namespace(dout)'
    for the calls of `namespaces` in `source` (a line, or a function's text), or ''."""
    try:
        tree = ast.parse(textwrap.dedent(source))
    except SyntaxError:
        return ""
    outer = calls_in(tree, namespaces)
    if not outer:
        return ""
    said = listed(dict.fromkeys(form for call in outer for form in forms(call, namespaces)))
    return f"; write {said}, with xp = namespace({first_array(outer[0], namespaces)})"


def forms(call, namespaces):
    """What to write for `call`: 'xp.concat for np.concatenate' for each function where only the
    name changes, else the whole call rewritten ('xp.reshape(dout @ W, ...) for np.reshape(np.dot(...))')."""
    names = [c.func.attr for c in ast.walk(call) if is_call(c, namespaces)]
    old, new = ast.unparse(call), rewritten(call, namespaces)
    if new is None:
        absent = [n for n in names if xp_form(n, ["x"] * 3) is None]
        return [f"something else for {call.func.value.id}.{n}: the array API has no {n}" for n in absent]
    if any(n in XP_CALLS for n in names):
        return [f"{new} for {old}"]
    return [f"xp.{XP_NAMES.get(n, n)} for {call.func.value.id}.{n}" for n in names]


def xp_hint(err, exercise, student):
    """'; write xp.sum(dout, axis=0), with xp = namespace(dout)' for a NumPy-only call that failed,
    or '' when there is none to name."""
    frame = student_frame(err, exercise, student) if err is not None else None
    line = (frame.line or "").strip() if frame else ""
    name = getattr(err, "name", None) if isinstance(err, AttributeError) else None
    if name and isinstance(getattr(err, "obj", None), types.ModuleType):  # xp.transpose(...): the namespace lacks it
        called = re.search(rf"(\w+)\.{name}\(", line)
        if called and (hint := calls_hint(line, (called.group(1),))):
            return hint
    if name in XP_FORMS and (match := re.search(rf"\.{name}\b", line)):
        x = receiver(line[:match.start()])
        rest = line[match.end():]
        args = inside(rest) if rest.startswith("(") else ""
        shape = args if args.startswith("(") or not args else f"({args},)" if "," not in args else f"({args})"
        form = (XP_FORMS[name].replace("{, args}", f", {args}" if args else "").replace("{args}", args)
                .replace("{shape}", shape).replace("{x}", x))
        # namespace() of the array itself, or of the first array an expression reads
        arrays = re.findall(r"(?<![\"'\w.])([A-Za-z_][\w.]*)(?![\w.\[(\"'])", x)
        return f"; write {form}, with xp = namespace({arrays[0] if arrays else x})"
    return calls_hint(line) or calls_hint(source_of(student))


def source_of(function):
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        return ""


def receiver(text):
    """The expression a method is called on, at the end of `text`: 'self.grads["b"]', '(a * b)'."""
    i, depth = len(text), 0
    while i > 0:
        ch = text[i - 1]
        if depth or ch in ")]":
            depth += (ch in ")]") - (ch in "([")
        elif not (ch.isalnum() or ch in "_."):
            break
        i -= 1
    return text[i:]


def inside(text):
    """What lies inside the brackets `text` starts with."""
    depth = 0
    for i, ch in enumerate(text):
        depth += (ch in "([") - (ch in ")]")
        if depth == 0:
            return text[1:i]
    return text[1:]
