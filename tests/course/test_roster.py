"""The class report counts each exercise's statuses and classic mistakes over a class's results.json."""

import json

from apps import class_report


def payload(status, mistake=None, score=0.0):
    return {"tests": [{"name": "2 Dense.backward", "score": score, "max_score": 10.0,
                       "extra_data": {"status": status, "mistake": mistake}}]}


def test_the_class_report_counts_statuses_and_mistakes(tmp_path, capsys):
    for i, p in enumerate([payload("correct", score=10.0), payload("wrong", "dW transposed", 6.6667),
                           payload("wrong", "dW transposed", 6.6667), payload("timed out")]):
        (tmp_path / "export" / str(i)).mkdir(parents=True)
        (tmp_path / "export" / str(i) / "results.json").write_text(json.dumps(p))
    assert class_report.main([str(tmp_path / "export"), "--out", str(tmp_path / "report")]) == 0
    report = (tmp_path / "report" / "class_report.md").read_text()
    assert report in capsys.readouterr().out and "# Class report: 4 submissions" in report
    row = next(line for line in report.splitlines() if "Dense" in line).replace("\\", "")
    assert "| 1 | 2 | 0 | 1 |" in row and "dW transposed (2)" in row
    assert (tmp_path / "report" / "class_report.png").read_bytes().startswith(b"\x89PNG")
