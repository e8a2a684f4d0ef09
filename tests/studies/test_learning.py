"""The quality study (quality.py): the test loss after each epoch, per kind and seed, and its table."""

import json

import pytest

from apps.quality import main
from studies import trainers
from studies.flags import BenchConfig
from studies.speed import run_benchmark
from studies.trainers import kind_named
from studies.learning import quality_table

TINY = BenchConfig(dataset="digits", epochs=2, warmup=0, threads=1)


@pytest.mark.slow
def test_quality_writes_the_test_loss_of_each_epoch_and_seed(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(trainers, "importable", lambda module: False)
    argv = ["--dataset", "digits", "--epochs", "2", "--seeds", "0,1", "--threads", "1", "--out", str(tmp_path)]
    assert main(argv) == 0
    saved = json.loads((tmp_path / "quality.json").read_text())
    curves = saved["test_loss"]["ours"]
    assert set(saved["test_loss"]) == {"ours"}  # the GEMM limit does not train; PyTorch is "not installed"
    assert saved["seeds"] == [0, 1] and len(curves) == 2 and all(len(c) == 2 for c in curves)
    assert curves[0] != curves[1]  # two seeds, two runs
    assert curves[0][1] < curves[0][0]  # it learns
    table = (tmp_path / "quality.md").read_text()
    mean = (curves[0][1] + curves[1][1]) / 2
    sd = abs(curves[0][1] - curves[1][1]) / 2 ** 0.5  # of two: |a - b| / sqrt(2)
    assert (f"| 2 | {mean:.2f} ± {sd:.2f} ({min(curves[0][1], curves[1][1]):.2f} - "
            f"{max(curves[0][1], curves[1][1]):.2f}) |") in table
    assert (tmp_path / "quality.png").stat().st_size > 1000
    assert "skipped: PyTorch is not installed" in capsys.readouterr().out


def test_quality_table_gives_the_difference_of_the_means():
    table = quality_table({"ours": [[3.0, 2.0], [5.0, 4.0]], "torch": [[4.0, 2.5], [4.0, 2.5]]})
    assert table.splitlines()[0].endswith(" | ours - PyTorch |")
    assert "| 1 | 4.00 ± 1.41 (3.00 - 5.00) | 4.00 ± 0.00 (4.00 - 4.00) | +0.00 |" in table
    assert "| 2 | 3.00 ± 1.41 (2.00 - 4.00) | 2.50 ± 0.00 (2.50 - 2.50) | +0.50 |" in table
    assert "| 1 | 3.00 |" in quality_table({"ours": [[3.0]]})  # one seed: no spread to give


def test_a_seed_flag_is_refused_with_the_flag_that_works(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--seed", "3"])
    assert exit_info.value.code == 2 and "--seeds" in capsys.readouterr().err.splitlines()[-1]


def test_epochs_run_concurrently_learn_exactly_what_they_learn_in_turn():
    pytest.importorskip("torch", reason="PyTorch is an optional reference for the benchmark")
    lines, kinds = [], [kind_named("ours"), kind_named("torch")]
    in_turn = run_benchmark(TINY, kinds, log=lambda line: None)
    at_once = run_benchmark(TINY, kinds, log=lines.append, concurrently=True)
    for kind in ("ours", "torch"):
        assert [r["test_loss"] for r in at_once[kind]["epochs"]] == [r["test_loss"] for r in in_turn[kind]["epochs"]]
    assert lines[0].startswith("epoch 1: test loss ours ") and "PyTorch" in lines[0]
