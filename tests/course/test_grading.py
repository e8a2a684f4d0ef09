"""The grading engine in-process: an exercise is one record, a model's errors per part, what a model
must keep for the grader, arrays read through to_numpy; and what it finds in answers planted here: an
h ignored, an input changed in place, a NumPy-only call, an exception, a factor, a sign, a transpose,
a backward never called, a col2im that drops overlaps. (tests/course/test_exercises.py runs the grader as a
student does, in a workspace.)"""

import contextlib
import dataclasses
import math

import numpy as np
import pytest

from course import exercises, grading
from course import mistakes
from course.exercises import EXERCISES, Exercise, find, layer_check
from course.mistakes import Mistake, with_mistake
from course.workspace import stub
from nn import LeakyReLU, conv
from nn.backend import get_backend, namespace
from nn.gradcheck import TOLERANCE
from planted import graded, planted

LEAKY_RELU = Exercise(
    order=15, file="nn/layers.py", qualname="LeakyReLU.backward", section="Activations",
    teaches="an elementwise derivative with a slope where x <= 0",
    check=layer_check(lambda rng: LeakyReLU(0.1), (5, 4)))
SIDES_SWAPPED = Mistake("sides swapped", "alpha belongs where x <= 0",
                        (("xp.where(self.positive, dout, self.alpha * dout)",
                          "xp.where(self.positive, self.alpha * dout, dout)"),))


def with_mistake_compiled(exercise, mistake, version=0):
    """The exercise's function as a student who made `mistake` (its `version`-th way) would have written it."""
    source, filename = grading.reference_file(exercise)
    return grading.compiled(exercise, with_mistake(source, exercise, mistake, version), filename)


def test_a_new_exercise_is_one_record_graded_and_diagnosed(monkeypatch):
    monkeypatch.setitem(mistakes.CATALOGUE, LEAKY_RELU.qualname, (SIDES_SWAPPED,))  # and its mistakes, one entry
    (result,) = grading.grade([LEAKY_RELU])  # the project's own LeakyReLU.backward
    assert result.status == "correct" and set(result.errors) == {"dx"}, result
    wrong = grading.grade_one(LEAKY_RELU, with_mistake_compiled(LEAKY_RELU, SIDES_SWAPPED))
    assert wrong.status == "wrong" and wrong.mistake is SIDES_SWAPPED, wrong


def test_a_model_reports_the_worst_error_of_each_part_when_its_record_says_so():
    vae = find("VAE.backward")
    (per_part,) = grading.grade([vae])
    assert per_part.status == "correct"
    assert list(per_part.errors) == ["encoder", "mu", "logvar", "decoder", "dmu", "dlogvar"]
    (per_parameter,) = grading.grade([dataclasses.replace(vae, per_part=False)])
    assert {"encoder.0.W", "mu.b", "decoder.2.W", "dmu"} <= set(per_parameter.errors)
    assert max(per_parameter.errors.values()) == max(per_part.errors.values())


def test_a_vae_backward_that_does_not_keep_dmu_and_dlogvar_is_wrong_and_says_what_is_missing():
    vae = find("VAE.backward")
    forgetful = Mistake("dmu and dlogvar not kept", "", (("self.dmu, self.dlogvar = dmu, dlogvar", ""),))
    result = grading.grade_one(vae, with_mistake_compiled(vae, forgetful))  # every parameter's gradient right
    assert result.status == "wrong" and "dmu" in result.message, result


def test_the_checks_differentiate_with_the_numerical_grad_in_place():
    def zeros(f, x):
        return np.zeros_like(x)

    with grading.installed(find("numerical_grad"), zeros):  # what grading exercise 1 does with a student's
        for qualname in ("Dense.backward", "VAE.backward"):  # every expected gradient a centred difference
            checked = find(qualname).check(np)
            assert not any(np.any(g) for g in checked.expected.values()), qualname
            assert all(np.any(g) for g in checked.got.values()), qualname


class DeviceArray:
    """An array as CuPy's behave where it matters here: no implicit conversion to NumPy,
    only the explicit copy `.get()` (what nn.backend.to_numpy calls)."""

    def __init__(self, values):
        self.values = np.asarray(values)
        self.shape = self.values.shape

    def get(self):
        return self.values.copy()

    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")


def test_compare_reads_device_arrays_only_through_to_numpy():
    got = {"dx": DeviceArray([[1.0, 2.0]]), "L": 3.0}  # and a plain number, as a student's loss may be
    errors, problem = grading.compare(got, {"dx": np.array([[1.0, 2.0]]), "L": np.float64(3.0)})
    assert problem == "" and errors == {"dx": 0.0, "L": 0.0}
    with pytest.raises(TypeError, match="Implicit conversion"):  # the stand-in has teeth
        np.asarray(got["dx"])


# --- Answers planted here, as a student would write them -----------------------------------


def test_every_reference_is_correct_on_numpy_and_on_the_array_api_backend():
    assert [r.status for r in grading.grade()] == ["correct"] * len(EXERCISES)
    assert list(grading.BACKENDS) == ["numpy", "array_api_strict"]
    xp = get_backend("array_api_strict")
    with contextlib.ExitStack() as stack:
        for e in EXERCISES:
            stack.enter_context(grading.installed(e, grading.compiled(e, *grading.reference_file(e))))
        for e in EXERCISES:  # the same check body, its arrays made on the backend it is given
            checked = e.check(xp)
            assert all(grading.lives_on(v, xp) for v in checked.got.values() if hasattr(v, "shape")), e.qualname
            errors, problem = grading.compare(checked.got, checked.expected)
            assert problem == "" and grading.correct(errors) and checked.changed == (), e.qualname


def test_a_numerical_grad_that_ignores_its_h_is_wrong_and_says_so(tmp_path):
    result, printed = graded(tmp_path, "numerical_grad", "xp = namespace(x)", "h = 1e-6\n    xp = namespace(x)")
    assert result.status == "wrong" and result.errors["grad"] < TOLERANCE <= result.errors["grad(h=0.01)"]
    assert result.mistake.name == "h ignored" and "the h argument was ignored" in printed


def test_an_estimate_off_by_h_squared_names_the_factor(tmp_path):
    result, printed = graded(tmp_path, "numerical_grad", "/ (2 * h)", "/ 2 * h")
    assert result.status == "wrong" and result.mistake is None
    assert result.diagnoses == ('grad, grad(h=0.01), grad(h=0.001) are each h**2 times the right ones '
                                '(1e-08 at h = 0.0001; 0.0001 at h = 0.01; 1e-06 at h = 0.001): '
                                'reread docs/derivations.md, "Checking a gradient"',), result
    assert result.diagnoses[0] in printed


def test_a_backward_that_changes_dout_in_place_is_wrong_and_says_so_not_a_wrong_value(tmp_path):
    result, printed = graded(tmp_path, "Sigmoid.backward", "return dout * self.y * (1.0 - self.y)",
                             "dout *= self.y\n        dout *= 1.0 - self.y\n        return dout")
    assert result.status == "wrong" and grading.correct(result.errors), result  # its dx is right
    assert result.message == "your backward changed dout in place: compute a new array"
    assert result.message in printed and "matches none" not in printed


def test_a_numpy_only_method_is_wrong_on_the_array_api_backend_with_its_xp_form(tmp_path):
    result, printed = graded(tmp_path, "Dense.backward", "xp.sum(dout, axis=0)", "dout.sum(axis=0)")
    assert result.status == "wrong" and grading.correct(result.errors), result  # right on NumPy
    line = next(i for i, text in enumerate((tmp_path / "nn/layers.py").read_text().splitlines(), 1)
                if "dout.sum(axis=0)" in text)
    assert result.message == (
        "on the array-API backend (what CuPy shares with NumPy): raised AttributeError at nn/layers.py, "
        f"line {line} (self.grads[\"b\"] = dout.sum(axis=0)): 'Array' object has no attribute 'sum'; "
        "write xp.sum(dout, axis=0), with xp = namespace(dout)"), result.message
    assert result.message in printed


def test_a_numpy_function_is_wrong_on_the_array_api_backend_with_its_xp_form(tmp_path):
    result, _ = graded(tmp_path, "Sigmoid.backward", "return dout * self.y * (1.0 - self.y)",
                       "import numpy as np\n        return np.multiply(dout, self.y * (1.0 - self.y))")
    assert result.status == "wrong" and grading.correct(result.errors), result
    assert result.message == ("on the array-API backend (what CuPy shares with NumPy): it returned numpy arrays "
                              "(dx), not the backend's own; write xp.multiply for np.multiply, with "
                              "xp = namespace(dout)"), result.message


def test_an_exception_names_the_file_and_line_of_the_students_code(tmp_path):
    result, printed = graded(tmp_path, "Dense.backward", 'dout @ self.params["W"].T', 'dout @ self.params["W"]')
    line = next(i for i, text in enumerate((tmp_path / "nn/layers.py").read_text().splitlines(), 1)
                if 'return dout @ self.params["W"] if' in text)
    assert result.status == "wrong"
    assert result.message.startswith(f'raised ValueError at nn/layers.py, line {line} (return dout @ self.params["W"] '
                                     'if self.input_grad else None): matmul'), result.message
    assert result.message in printed


def test_a_gradient_off_by_a_constant_factor_names_the_factor(tmp_path):
    result, printed = graded(tmp_path, "Dense.backward", 'self.grads["W"] = self.x.T @ dout',
                             'self.grads["W"] = 0.5 * (self.x.T @ dout)')
    assert result.status == "wrong" and result.mistake is None
    assert result.diagnoses == ('dW is 0.5 times the right one: reread docs/derivations.md, "Dense"',
                                'dx, db right; dW wrong: step 3 (As a matrix product) of docs/derivations.md, "Dense"'), result
    assert "matches none" not in printed and result.diagnoses[0] in printed


def test_a_negated_output_says_which_has_the_wrong_sign(tmp_path):
    result, _ = graded(tmp_path, "gaussian_kl", "dlogvar = (var - 1.0) * (0.5 / divisor)",
                       "dlogvar = (1.0 - var) * (0.5 / divisor)")
    assert result.status == "wrong" and result.mistake is None and result.errors["dmu"] < TOLERANCE
    assert result.diagnoses == ('dlogvar has the wrong sign: reread docs/derivations.md, '
                                '"KL divergence to the standard normal"',
                                'KL, dmu right; dlogvar wrong: step 3 (`dlogvar`) of docs/derivations.md, '
                                '"KL divergence to the standard normal"'), result


def test_a_transposed_gradient_is_said_to_be_the_transpose(tmp_path, monkeypatch):
    monkeypatch.setitem(mistakes.CATALOGUE, "Dense.backward", ())  # the classic "dW transposed" would come first
    result, _ = graded(tmp_path, "Dense.backward", 'self.grads["W"] = self.x.T @ dout',
                       'self.grads["W"] = dout.T @ self.x')
    assert result.status == "wrong" and result.message == "dW has shape (3, 4), and should have (4, 3)"
    assert result.diagnoses == ('dW is the transpose of the right one: reread docs/derivations.md, "Dense"',
                                'dx, db right; dW wrong: step 3 (As a matrix product) of docs/derivations.md, "Dense"')


def test_a_vae_backward_that_never_calls_the_heads_backward_says_so(tmp_path):
    result, printed = graded(tmp_path, "VAE.backward",
                             "dh = self.mu_head.backward(dmu) + self.logvar_head.backward(dlogvar)",
                             'dh = dmu @ self.mu_head.params["W"].T + dlogvar @ self.logvar_head.params["W"].T')
    assert result.status == "wrong" and result.message == "gradients missing: mu.W, mu.b, logvar.W, logvar.b"
    assert result.diagnoses == (
        "the heads' backward (self.mu_head.backward, self.logvar_head.backward) was never called: it is what fills "
        'mu.W, mu.b, logvar.W, logvar.b: reread docs/derivations.md, "The VAE and the reparameterisation trick"',
        'decoder, dmu, dlogvar, encoder right; mu, logvar wrong: step 5 (The trunk) of docs/derivations.md, '
        '"The VAE and the reparameterisation trick"')
    assert result.as_json()["message"] == "\n".join([result.message, *result.diagnoses])
    assert all(line in printed for line in result.diagnoses)


# --- Exercise 14, gaussian_nll: a likelihood whose variance is learned ----------------------


def test_gaussian_nll_is_exercise_14_and_the_reference_passes_it():
    nll = find("gaussian_nll")
    assert nll.order == 14 and EXERCISES[13] is nll and nll.section == "A decoder that learns its variance"
    (result,) = grading.grade([nll])
    assert result.status == "correct" and list(result.errors) == ["L", "dx_hat", "dx_logvar"], result


def test_a_stub_of_gaussian_nll_is_not_written_yet():
    nll = find("gaussian_nll")
    source, filename = grading.reference_file(nll)
    result = grading.grade_one(nll, grading.compiled(nll, stub(source, nll), filename))
    assert result.status == "not started", result
    assert nll.stub_message.startswith("exercise 14, gaussian_nll: not written yet. Derive it in docs/derivations.md, "
                                       '"A decoder that learns its variance"')


def test_each_classic_mistake_of_gaussian_nll_is_named_with_its_hint():
    nll = find("gaussian_nll")
    assert len(mistakes.of(nll)) >= 8
    for mistake in mistakes.of(nll):
        for version in range(len(mistake.versions)):
            result = grading.grade_one(nll, with_mistake_compiled(nll, mistake, version))
            assert result.status == "wrong" and result.mistake is mistake, (mistake.name, version, result)
            assert "A decoder that learns its variance" in mistake.hint, mistake.name


FIXED_VARIANCE = "x_logvar = xp.full((1,), math.log(0.5), dtype=x.dtype)\n    var = xp.exp(x_logvar)"


def against_the_reference(exercise, student):
    """The Result of `student` judged as a workspace and the autograder judge it: against the values
    the reference gives (a key's), not the centred differences of the student's own function."""
    expected = exercise.check(np)  # the project's own function: the reference
    with grading.installed(exercise, student):
        _, run = grading.run_check(exercise, "numpy", student)
    return grading.judge(exercise, run, expected)


def test_a_gaussian_nll_that_fixes_the_lab_s_variance_is_wrong(tmp_path):
    # x_logvar overwritten with the lab's log(1/2): mse plus a constant, whatever the variance learned
    nll, student = planted(tmp_path, "gaussian_nll", "var = xp.exp(x_logvar)", FIXED_VARIANCE)
    result = against_the_reference(nll, student)
    assert result.status == "wrong" and result.mistake is None, result
    assert min(result.errors.values()) > 1e-2, result  # L, dx_hat and dx_logvar all wrong


def test_the_check_s_variance_is_what_catches_a_fixed_one(tmp_path, monkeypatch):
    # the teeth of the test above: checked at the lab's own variance, the same answer gives every right value
    monkeypatch.setattr(exercises, "X_LOGVAR", math.log(0.5))
    nll, student = planted(tmp_path, "gaussian_nll", "var = xp.exp(x_logvar)", FIXED_VARIANCE)
    assert against_the_reference(nll, student).status == "correct"


def col2im_assigning(patches, x_shape, kernel, stride, padding):
    """nn.conv.col2im with `=` for `+=`: where windows overlap, the last one wins."""
    xp = namespace(patches)
    C, H, W, N = x_shape
    H_out, W_out = (conv.conv_output_size(size, kernel, stride, padding) for size in (H, W))
    patches = xp.reshape(patches, (C, kernel, kernel, H_out, W_out, N))
    dx_padded = xp.zeros((C, H + 2 * padding, W + 2 * padding, N), dtype=patches.dtype)
    for i in range(kernel):
        for j in range(kernel):
            dx_padded[conv.window(i, j, stride, H_out, W_out)] = patches[:, i, j, ...]
    return conv.crop(dx_padded, padding)


@pytest.mark.parametrize("qualname", ["Conv2d.backward", "ConvTranspose2d.backward"])
def test_the_convolution_checks_see_overlapping_windows(monkeypatch, qualname):
    # Their windows overlap (kernel 3, stride 2): a col2im that assigns gives Conv2d.backward a dx
    # that drops terms, and ConvTranspose2d a forward that its backward (im2col) no longer matches.
    monkeypatch.setattr(conv, "col2im", col2im_assigning)
    (result,) = grading.grade([find(qualname)])
    assert result.status == "wrong" and result.errors["dx"] > 1e-3, result
