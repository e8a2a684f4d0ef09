"""What the grader says of a wrong answer that no classic mistake matches: which parts are right,
which wrong, and the step of the guided derivation the wrong ones come from; and where an
exception raised two calls down in the library was led to by the student's own line."""

import pathlib

import pytest

from course.diagnosis import step_titles, wrong_steps
from course.exercises import EXERCISES, find
from course.points import TABLE, load_table
from nn import conv
from planted import graded, line_of

VAE = "The VAE and the reparameterisation trick"


def test_a_vae_with_dlogvar_wrong_names_the_parts_right_and_the_logvar_path_step(tmp_path):
    result, printed = graded(tmp_path, "VAE.backward", "dz * self.eps * (0.5 * self.std)",
                             "dz * self.eps * (0.5 * self.std * self.std)")  # no classic mistake: its own
    assert result.status == "wrong" and result.mistake is None, result
    said = (f'decoder, dmu, mu right; dlogvar, logvar, encoder wrong, from dlogvar on: step 2 (Through the sampler, '
            f'to `logvar`) of docs/derivations.md, "{VAE}"')
    assert result.diagnoses[-1] == said, result.diagnoses
    assert said in printed


def test_a_layer_names_the_step_of_each_wrong_part(tmp_path):
    result, _ = graded(tmp_path, "Dense.backward", 'self.grads["b"] = xp.sum(dout, axis=0)',
                       'self.grads["b"] = xp.sum(dout, axis=0) + 1.0')
    assert result.diagnoses == ('dx, dW right; db wrong: step 4 (The bias) of docs/derivations.md, "Dense"',), result


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.qualname)
def test_each_exercise_names_a_step_of_its_section_for_each_part(exercise):
    steps, titles = dict(exercise.steps), step_titles(exercise.section)
    assert set(steps) == set(load_table(TABLE)[exercise].parts) and set(steps.values()) <= set(titles), steps
    said = wrong_steps(exercise, dict.fromkeys(steps, float("inf")))
    named = {steps[next(iter(steps))]} if exercise.per_part else set(steps.values())  # a model: the first
    assert all(f"step {n} ({titles[n]})" in said for n in named), said


def test_an_exception_in_a_helper_is_placed_at_the_students_line_then_the_helpers(tmp_path):
    result, printed = graded(tmp_path, "Conv2d.backward", "return outer(col2im(dpatches, self.x_shape,",
                             "return outer(col2im(dpatches[:-1], self.x_shape,")
    theirs = line_of(tmp_path / "nn/conv.py", "col2im(dpatches[:-1]")
    helper = line_of(pathlib.Path(conv.__file__), "patches = xp.reshape(patches, (C, kernel, kernel, H_out, W_out, N))")
    assert result.status == "wrong"
    assert result.message.startswith(
        f"raised ValueError at nn/conv.py, line {theirs} (return outer(col2im(dpatches[:-1], self.x_shape, "
        "self.kernel_size, self.stride, self.padding))), in col2im at nn/conv.py, "
        f"line {helper} (patches = xp.reshape(patches, (C, kernel, kernel, H_out, W_out, N))): cannot reshape"), \
        result.message
    assert result.message in printed


def test_an_exception_in_the_students_own_line_names_no_helper(tmp_path):
    result, _ = graded(tmp_path, "Dense.backward", 'dout @ self.params["W"].T', 'dout @ self.params["W"]')
    assert ", in " not in result.message.split(":")[0] and "matmul" in result.message, result.message


def test_the_steps_are_read_from_the_section_of_the_derivations():
    assert step_titles(VAE)[2] == "Through the sampler, to `logvar`"
    assert step_titles("Dense")[5] == "The input"
    assert step_titles("no such section") == {}
    assert wrong_steps(find("Dense.backward"), {"dx": 0.0, "dW": 0.0, "db": 0.0}) is None
