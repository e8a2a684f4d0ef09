"""The xp hint is right for every NumPy function the array API has under its own or another name, or
in another form, and for a method the namespace lacks: each entry of the tables is checked here,
against array_api_strict itself."""

import array_api_strict
import numpy as np
import pytest

from course.xp_hints import XP_CALLS, XP_NAMES, calls_hint, xp_hint
from planted import graded

# NumPy's name -> the array API's, written out here rather than read from the table under test.
RENAMED = {
    "concatenate": "concat", "power": "pow", "float_power": "pow", "absolute": "abs", "fabs": "abs",
    "transpose": "permute_dims", "arccos": "acos", "arcsin": "asin", "arctan": "atan", "arctan2": "atan2",
    "arccosh": "acosh", "arcsinh": "asinh", "arctanh": "atanh", "invert": "bitwise_invert",
    "bitwise_not": "bitwise_invert", "left_shift": "bitwise_left_shift", "right_shift": "bitwise_right_shift",
    "amax": "max", "amin": "min", "around": "round", "true_divide": "divide", "cumsum": "cumulative_sum",
    "cumprod": "cumulative_prod", "unique": "unique_values", "asanyarray": "asarray", "array": "asarray",
    "conjugate": "conj",
}
# A call -> what the hint writes for it.
FORMS = {
    "np.dot(dout, W.T)": "dout @ W.T for np.dot(dout, W.T), with xp = namespace(dout)",
    "np.vstack((a, b))": "xp.concat((a, b), axis=0) for np.vstack((a, b)), with xp = namespace(a)",
    "np.hstack([a, b])": "xp.concat([a, b], axis=1) for np.hstack([a, b]), with xp = namespace(a)",
    "np.ravel(dout)": "xp.reshape(dout, (-1,)) for np.ravel(dout), with xp = namespace(dout)",
    "np.copy(self.x)": "xp.asarray(self.x, copy=True) for np.copy(self.x), with xp = namespace(self.x)",
    "np.swapaxes(dout, 0, 1)": "xp.permute_dims(dout, axes) (axes: 0, 1, ... with 0 and 1 swapped) for "
                               "np.swapaxes(dout, 0, 1), with xp = namespace(dout)",
    "np.transpose(dout, (1, 0, 2, 3))": "xp.permute_dims(dout, (1, 0, 2, 3)) for np.transpose(dout, (1, 0, 2, 3)), "
                                        "with xp = namespace(dout)",
    "np.transpose(dout)": "xp.permute_dims(dout, axes) (axes: dout's axes in the order you mean; dout.T for a "
                          "matrix) for np.transpose(dout), with xp = namespace(dout)",
}


def test_the_tables_cover_each_form_tested_here():
    assert {k: v for k, v in XP_NAMES.items()} == RENAMED
    assert {call.split("(")[0].removeprefix("np.") for call in FORMS} == set(XP_CALLS)


@pytest.mark.parametrize("name", sorted(RENAMED))
def test_a_numpy_function_of_another_name_is_given_the_array_api_s(name):
    assert hasattr(np, name) and not hasattr(array_api_strict, name), name  # a NumPy-only name
    assert hasattr(array_api_strict, RENAMED[name]), RENAMED[name]  # whose array-API name is right
    hint = calls_hint(f"y = np.{name}(dout)")
    expected = f"xp.permute_dims(dout, axes)" if name == "transpose" else f"xp.{RENAMED[name]} for np.{name}"
    assert hint.startswith(f"; write {expected}"), hint


@pytest.mark.parametrize("call", sorted(FORMS))
def test_a_numpy_function_with_another_form_is_given_it(call):
    assert calls_hint(f"y = {call}") == f"; write {FORMS[call]}"


def test_a_function_of_the_same_name_keeps_it_and_one_with_none_is_said_to_have_none():
    assert calls_hint("y = np.exp(x) * np.arccos(c)") == "; write xp.exp for np.exp, xp.acos for np.arccos, " \
                                                       "with xp = namespace(x)"
    assert calls_hint("y = np.einsum('ij->i', x)") == ("; write something else for np.einsum: the array API has "
                                                       "no einsum, with xp = namespace(x)")


def test_a_nested_call_is_rewritten_whole():
    assert calls_hint("d = np.reshape(np.transpose(dout, (1, 0, 2, 3)), (3, -1))") == (
        "; write xp.reshape(xp.permute_dims(dout, (1, 0, 2, 3)), (3, -1)) for "
        "np.reshape(np.transpose(dout, (1, 0, 2, 3)), (3, -1)), with xp = namespace(dout)")


def test_a_function_the_namespace_lacks_called_on_xp_gets_its_array_api_name(tmp_path):
    result, _ = graded(tmp_path, "Dense.backward", 'self.grads["W"] = self.x.T @ dout',
                       'self.grads["W"] = xp.transpose(self.x) @ dout')
    assert result.status == "wrong", result  # right on NumPy, which has np.transpose
    assert result.message.endswith(
        "'array_api_strict' has no attribute 'transpose'; write xp.permute_dims(self.x, axes) (axes: self.x's axes "
        "in the order you mean; self.x.T for a matrix) for xp.transpose(self.x), with xp = namespace(self.x)"), \
        result.message


def test_a_numpy_function_on_the_array_api_backend_is_named_with_its_array_api_name(tmp_path):
    result, _ = graded(tmp_path, "Tanh.backward", "return dout * (1.0 - self.y * self.y)",
                       "import numpy as np\n        return dout * (1.0 - np.power(self.y, 2))")
    assert result.status == "wrong", result
    assert result.message.endswith("write xp.pow for np.power, with xp = namespace(self.y)"), result.message
    assert xp_hint(None, None, None) == ""
