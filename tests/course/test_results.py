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


def test_an_error_is_shown_to_one_digit_whatever_the_child_chose():
    # a child chooses its errors' low digits (a text in each float): what is written keeps one digit of each
    chosen = {"L": 1.234567891234e-13, "dx_hat": 9.87654321e-13 * (1 + 2 ** -40)}
    result = grading.Result(find("mse"), "correct", {}, "", parts=chosen)
    points = type("P", (), {"points": 5.0, "parts": {"L": 1.0, "dx_hat": 1.0}})()
    entry = results.test_entry(result, type("T", (), {"__getitem__": lambda self, e: points, "visibility": "visible"})())
    assert entry["extra_data"]["errors"] == {"L": 1e-13, "dx_hat": 1e-12}
    assert entry["extra_data"]["parts"] == {"L": "right", "dx_hat": "right"}
    assert "1e-13" in entry["output"] and "1.2" not in entry["output"] and "9.9" not in entry["output"]
    assert results.rounded(3e-300) == 0.0 and results.rounded(7e40) == 1e3 and results.rounded(float("nan")) is None


def test_results_json_is_strict_utf8_whatever_the_names(tmp_path):
    # a folder named with the byte 0xff is listed as "\udcff": written, it would be a lone surrogate
    results.write_results(str(tmp_path), {"output": "ws\udcff/nn/layers.py", "tests": [{"n\ud800": "x"}]})
    data = (tmp_path / "results" / "results.json").read_bytes()
    assert b"\\ud" not in data.lower()
    payload = json.loads(data.decode("utf-8", "strict"))
    assert payload["output"] == "ws\ufffd/nn/layers.py"
