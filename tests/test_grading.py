"""The grading engine in-process: an exercise is one record, a model's errors per part, what a model
must keep for the grader, and arrays read through to_numpy. (tests/test_exercises.py runs the grader
as a student does, in a workspace.)"""

import dataclasses

import numpy as np
import pytest

from lab import grading
from lab.exercises import Exercise, Mistake, find, layer_check, with_mistake
from nn import LeakyReLU

LEAKY_RELU = Exercise(
    order=12, file="nn/layers.py", qualname="LeakyReLU.backward", section="Activations",
    teaches="an elementwise derivative with a slope where x <= 0",
    check=layer_check(lambda rng: LeakyReLU(0.1), 4, 4),
    mistakes=(
        Mistake("sides swapped", "alpha belongs where x <= 0",
                (("xp.where(self.positive, dout, self.alpha * dout)",
                  "xp.where(self.positive, self.alpha * dout, dout)"),)),
    ))


def with_mistake_compiled(exercise, mistake):
    """The exercise's function as a student who made `mistake` would have written it."""
    source, filename = grading.reference_file(exercise)
    return grading.compiled(exercise, with_mistake(source, exercise, mistake), filename)


def test_a_new_exercise_is_one_record_graded_and_diagnosed():
    (result,) = grading.grade([LEAKY_RELU])  # the project's own LeakyReLU.backward
    assert result.status == "correct" and set(result.errors) == {"dx"}, result
    wrong = grading.grade_one(LEAKY_RELU, with_mistake_compiled(LEAKY_RELU, LEAKY_RELU.mistakes[0]))
    assert wrong.status == "wrong" and wrong.mistake is LEAKY_RELU.mistakes[0], wrong


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
    forgetful = Mistake("dmu and dlogvar not kept", "", (("        self.dmu, self.dlogvar = dmu, dlogvar\n", ""),))
    result = grading.grade_one(vae, with_mistake_compiled(vae, forgetful))  # every parameter's gradient right
    assert result.status == "wrong" and "dmu" in result.message, result


def test_the_checks_differentiate_with_the_numerical_grad_in_place():
    def zeros(f, x):
        return np.zeros_like(x)

    with grading.installed(find("numerical_grad"), zeros):  # what grading exercise 1 does with a student's
        for qualname in ("Dense.backward", "VAE.backward"):  # every expected gradient a centred difference
            got, expected = find(qualname).check()
            assert not any(np.any(g) for g in expected.values()), qualname
            assert all(np.any(g) for g in got.values()), qualname


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
