"""results.json: written in the room reserved before the children ran, its texts the parent's."""

import json
import os

from course import grading, results
from course.exercises import find


def test_the_reserve_is_made_before_and_freed_for_the_results(tmp_path):
    results.reserve(str(tmp_path))
    reserve = tmp_path / "results" / ".reserve"
    assert reserve.stat().st_size == results.RESERVE and reserve.stat().st_blocks * 512 >= results.RESERVE
    results.write_results(str(tmp_path), {"score": 1.0, "tests": []})
    assert not reserve.exists() and json.loads((tmp_path / "results" / "results.json").read_text())["score"] == 1.0


def test_a_message_is_shown_as_written_and_bounded():
    result = grading.Result(find("mse"), "wrong", {}, "<script>" + "x" * 10_000, parts={"L": 0.0})
    text = results.markdown(result, type("P", (), {"points": 5.0, "parts": {"L": 1.0, "dx_hat": 1.0}})(), 2.5)
    assert "\\<script\\>" in text and len(text) < 5000
    assert results.finite(float("inf")) is None and results.finite(1e-9) == 1e-9
    assert os.sep not in results.md("a_b").replace("\\", "")
