"""Local grading under the autograder's time limits (an exercise that runs past its limit is
"timed out", and the next one is still graded), and a correct backward that is much slower than
the reference at a training step's size graded correct with a warning of what training would take."""

import re
import time

from apps.grade import scoreboard
from course import grading, timing
from course.exercises import find
from nn import Dense, ReLU


def busy(self, dout):
    """100 s of a backward that never returns."""
    start = time.perf_counter()
    while time.perf_counter() < start + 100:
        pass


def test_an_exercise_past_its_time_limit_is_timed_out_and_the_others_are_still_graded(monkeypatch):
    monkeypatch.setattr(ReLU, "backward", busy)
    monkeypatch.setattr(grading, "limit_of", lambda exercise, root: 1.0)
    start = time.perf_counter()
    relu, tanh = grading.grade([find("ReLU.backward"), find("Tanh.backward")])
    assert time.perf_counter() - start < 20
    assert relu.status == "timed out" and tanh.status == "correct", (relu, tanh)
    first = busy.__code__.co_firstlineno  # where the loop was stopped: a line of the student's function
    said = re.fullmatch(r"timed out: still running after 1 s, the autograder's limit for it; it was at nn/layers.py, "
                        r"line (\d+) \((while time.perf_counter\(\) < start \+ 100:|pass)\)", relu.message)
    assert said and int(said.group(1)) in (first + 3, first + 4), relu.message
    assert "timed out" in scoreboard([relu, tanh])


def test_the_limits_are_the_autograder_s():
    assert timing.limit_of(find("Dense.backward")) == 30.0  # autograder/points.json's time_limit_s
    assert timing.limit_of(find("Dense.backward"), root="/nonexistent") == timing.TIME_LIMIT_S


def test_a_correct_backward_much_slower_than_the_reference_is_correct_with_a_warning(monkeypatch):
    derived = Dense.backward

    def sleepy(self, dout):
        if dout.shape[0] >= 128:  # slow at a training step's size, as a loop is: 5 s, over 20 times the reference
            time.sleep(5.0)
        return derived(self, dout)

    monkeypatch.setattr(Dense, "backward", sleepy)
    (result,) = grading.grade([find("Dense.backward")])
    assert result.status == "correct", result
    assert re.fullmatch(r"correct, but slow: its backward takes 5(\.\d)? s on Dense 784 -> 512 on a batch of 128, "
                        r"\d+ times the reference's [\d.e-]+ s; an epoch of `make vae` \(469 steps\) would spend at "
                        r"least (39|40) min in it, its 20 epochs 13 h: write it as the matrix products of its section",
                        result.message), result.message
    assert result.message in scoreboard([result])


def test_the_reference_is_not_warned_of():
    (result,) = grading.grade([find("Conv2d.backward")])
    assert result.status == "correct" and result.message == "", result
    assert 0 < timing.seconds(find("Conv2d.backward")) < 5


def test_a_slower_backward_that_costs_an_epoch_seconds_only_is_not_warned_of():
    relu = find("ReLU.backward")
    assert timing.slow(relu, 100 * 1e-5, 1e-5) == ""  # 100 times slower, 0.5 s an epoch
    assert timing.slow(relu, 100 * 1e-3, 1e-3).startswith("correct, but slow")  # 47 s an epoch


def test_a_learned_variance_s_loss_is_timed_at_a_batch_of_the_lab_s_and_warned_of_with_its_command():
    nll = find("gaussian_nll")
    assert 0 < timing.seconds(nll) < 1
    said = timing.slow(nll, 0.1, 1e-4)  # a loop over the pixels, say: 0.1 s a batch
    assert said.startswith("correct, but slow: its backward takes 0.1 s on a batch of 128 images of 784 pixels"), said
    assert 'an epoch of `make vae ARGS="--loss gaussian"` (469 steps)' in said, said
