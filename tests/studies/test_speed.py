"""The benchmark's runs and table: made-up kinds through the same code, a tiny run of each real kind, bench.py's errors."""

import json

import numpy as np
import pytest

from apps.bench import main
from studies import trainers
from studies.flags import BenchConfig
from studies.gemm import step_products
from studies.speed import ratios, run_benchmark, speed_table, summarise
from studies.trainers import Kind, kind_named, select_kinds
from lab.cli import RunFailed, UsageError
from lab.data import DataError
from models import VAE
from nn import Generator
from nn.backend import cupy_available

TINY = BenchConfig(dataset="digits", epochs=1, warmup=0, threads=1)


def test_ratios_pair_the_epochs_of_each_round_not_the_medians():
    # Round 3 was slow for ours, round 2 for PyTorch: each round's own ratio cancels that.
    results = {"ours": {"measured": [1.0, 4.0, 5.0]}, "torch": {"measured": [2.0, 5.0, 4.5]},
               "gemm": {"skipped": "not asked for"}}
    r = ratios(results)
    assert set(r) == {"ours/torch"}
    assert r["ours/torch"]["rounds"] == pytest.approx([0.5, 0.8, 5.0 / 4.5])
    assert r["ours/torch"]["median"] == pytest.approx(0.8)  # the ratio of the medians, 4 / 4.5, is 0.89
    assert (r["ours/torch"]["min"], r["ours/torch"]["max"]) == pytest.approx((0.5, 5.0 / 4.5))


# --- The kinds are records: made-up ones go through the same code -------------------------


class Steady:
    """A made-up training kind: a loss that falls by one an epoch, a test loss one above it."""

    def __init__(self, config, data, xp):
        self.losses, self.info = iter(range(100, 0, -1)), {"version": "steady 1.0"}

    def epoch(self):
        self.loss = next(self.losses)
        return {"loss": self.loss}

    def test_loss(self):
        return self.loss + 1.0


class Clock:
    """A made-up bound that times itself: 7 seconds an epoch, whatever the clock says."""

    def __init__(self, config, data, xp):
        self.info = {"version": "clock", "flops": 14e9}

    def epoch(self):
        return {"seconds": 7.0}


class Exploding:
    def __init__(self, config, data, xp):
        raise RuntimeError("a bug in a trainer")


class NoData:
    def __init__(self, config, data, xp):
        raise DataError("no such dataset here")


def note(kind, result):
    return f"note of {kind.label}"


STEADY = Kind("a", "Alpha", Steady, note)
CLOCK = Kind("b", "Beta", Clock, note, trains=False, times_itself=True, counts_flops=True)
MADE_UP = (STEADY, CLOCK, Kind("c", "Gamma", Steady, note, needs="no_such_module_here"))


@pytest.mark.slow
def test_a_made_up_kind_is_run_summarised_and_tabulated_from_its_record_alone(capsys):
    kinds, skipped = select_kinds(kinds=MADE_UP)
    assert kinds == [STEADY, CLOCK]
    assert skipped == {"c": {"skipped": "Gamma is not installed (it is optional: pip install no_such_module_here)"}}
    config = BenchConfig(dataset="digits", epochs=2, warmup=1, threads=1)
    results = run_benchmark(config, kinds, log=lambda line: None)
    a, b = results["a"], results["b"]
    assert [r["loss"] for r in a["epochs"]] == [100, 99, 98] and a["test_loss"] == 99.0  # the last epoch's
    assert a["peak_rss_mb"] >= a["libraries_rss_mb"] > 0 and a["images"] == 1500
    assert b["measured"] == [7.0, 7.0] and b["seconds"] == 7.0  # its own seconds, not the clock's
    assert b["gflops_per_s"] == pytest.approx(2.0) and "peak_rss_mb" not in b and "test_loss" not in b
    table = speed_table(config, {**results, **skipped}, MADE_UP)
    assert "Alpha (steady 1.0, cpu)" in table and "Gamma" in table and "skipped: Gamma is not installed" in table
    assert "Alpha / Beta: " in table and "note of Alpha\nnote of Beta" in table
    assert set(ratios(results, MADE_UP)) == {"a/b"}


@pytest.mark.slow
def test_a_trainer_that_raises_stops_its_worker_as_a_run_failure_and_bad_input_as_a_usage_error():
    with pytest.raises(RunFailed, match="the Boom worker stopped with exit status 1"):
        run_benchmark(TINY, [Kind("boom", "Boom", Exploding, note)], log=lambda line: None)
    with pytest.raises(UsageError, match="^no such dataset here$"):
        run_benchmark(TINY, [Kind("nodata", "NoData", NoData, note)], log=lambda line: None)


def test_summarise_adds_what_the_record_says_the_kind_reports():
    setup, finish = {"images": 10, "flops": 4e9}, {"peak_rss_mb": 50.0}
    records = [{"seconds": 4.0, "test_loss": 3.0}, {"seconds": 1.0, "test_loss": 2.0}, {"seconds": 2.0, "test_loss": 1.0}]
    trains = summarise(STEADY, setup, records, finish, warmup=1)
    assert trains["measured"] == [1.0, 2.0] and trains["seconds"] == 1.5 and trains["samples_per_s"] == 10 / 1.5
    assert (trains["test_loss"], trains["peak_rss_mb"]) == (1.0, 50.0) and "gflops_per_s" not in trains
    bound = summarise(CLOCK, setup, records, finish, warmup=1)
    assert bound["gflops_per_s"] == pytest.approx(4 / 1.5) and "test_loss" not in bound and "peak_rss_mb" not in bound


# --- The real kinds, and the script ------------------------------------------------------


def _check_trainer(result):
    assert result["seconds"] > 0 and result["samples_per_s"] > 0
    assert result["samples_per_s"] == pytest.approx(result["images"] / result["seconds"])
    assert result["peak_rss_mb"] >= result["libraries_rss_mb"] > 0
    assert 0 < result["test_loss"] < 100 and all(np.isfinite(r["loss"]) for r in result["epochs"])


@pytest.mark.slow
def test_bench_on_digits_without_torch_reports_ours_the_limit_and_the_skip(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(trainers, "importable", lambda module: False)
    argv = ["--dataset", "digits", "--epochs", "1", "--warmup", "0", "--threads", "1", "--out", str(tmp_path)]
    assert main(argv) == 0
    saved = json.loads((tmp_path / "results.json").read_text())
    results = saved["results"]
    _check_trainer(results["ours"])
    assert len(results["ours"]["epochs"]) == 1 and results["ours"]["images"] == 1500
    gemm = results["gemm"]
    assert gemm["seconds"] > 0 and gemm["steps_by_batch_rows"] == {"128": 11, "92": 1}  # 1500 images
    vae = VAE(64, (512,), 2, rng=Generator(0))
    assert gemm["flops"] == 11 * sum(p.flops() for p in step_products(vae, 128)) + sum(
        p.flops() for p in step_products(vae, 1500 - 11 * 128))
    assert saved["ratios"]["ours/gemm"]["median"] == pytest.approx(results["ours"]["seconds"] / gemm["seconds"])
    assert "not installed" in results["torch"]["skipped"]
    out = capsys.readouterr().out
    assert "ours / GEMM limit" in out and "skipped: PyTorch is not installed" in out
    assert (tmp_path / "seconds_per_epoch.png").stat().st_size > 1000


@pytest.mark.slow
def test_skip_leaves_a_kind_out_of_the_run_and_the_results(tmp_path, capsys):
    argv = ["--dataset", "digits", "--epochs", "1", "--warmup", "0", "--threads", "1", "--skip", "torch,gemm",
            "--out", str(tmp_path)]
    assert main(argv) == 0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert set(saved["results"]) == {"ours"} and saved["ratios"] == {} and saved["config"]["skip"] == ["torch", "gemm"]


def test_the_torch_worker_trains_the_same_network():
    pytest.importorskip("torch", reason="PyTorch is an optional reference for the benchmark")
    result = run_benchmark(TINY, kinds=[kind_named("torch")], log=lambda line: None)["torch"]
    _check_trainer(result)
    assert result["threads"] == 1


@pytest.mark.skipif(cupy_available(), reason="CuPy and a GPU are present: the cupy backend works here")
def test_cupy_backend_without_a_gpu_is_a_one_line_error_and_exit_status_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--backend", "cupy", "--dataset", "digits"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("bench.py: error: the cupy backend needs") and err.count("\n") == 1


def test_quality_flag_is_a_one_line_pointer_to_quality_py(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--quality"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "python quality.py" in err
