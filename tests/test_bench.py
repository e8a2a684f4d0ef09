"""The benchmark: the GEMM-limit arithmetic, a tiny run of each worker, and its errors."""

import dataclasses
import json

import numpy as np
import pytest

from apps import bench
from apps.bench import BenchConfig, Product, gemm_seconds, main, run_benchmark, step_products, steps_per_epoch
from models import VAE, AutoEncoder
from nn import Generator
from nn.backend import cupy_available

TINY = BenchConfig(dataset="digits", epochs=1, warmup=0, threads=1)


def test_flops_of_a_product_are_2mkn_whichever_operand_is_read_transposed():
    assert Product("a @ b", (2, 3), (3, 4)).flops() == 2 * 2 * 3 * 4
    assert Product("a.T @ b", (3, 2), (3, 4), "a").mkn() == (2, 3, 4)
    assert Product("a @ b.T", (2, 3), (4, 3), "b").mkn() == (2, 3, 4)


def test_the_lab_vae_step_has_14_products_and_the_flops_counted_by_hand():
    # Per image, in multiply-adds: forward 784*512 + 2*(512*2) + 2*512 + 512*784 = 805888;
    # the weight gradients the same again; the input gradients all but the first layer's,
    # 2*(2*512) + 512*2 + 784*512 = 404480. FLOPs = 2 * 128 images * (2*805888 + 404480).
    products = step_products(VAE(784, (512,), 2, rng=Generator(0)), 128)
    assert len(products) == 5 + 5 + 4
    assert sum(p.flops() for p in products) == 516_161_536


def test_the_products_are_read_off_whatever_model_is_given():
    # A deeper VAE and an AE: every Dense layer counts, in the shapes the model has.
    deeper = VAE(10, (8, 6), 3, rng=Generator(0))  # encoder 10-8-6, heads 6-3 twice, decoder 3-6-8-10
    dense = [(10, 8), (8, 6), (6, 3), (6, 3), (3, 6), (6, 8), (8, 10)]
    products = step_products(deeper, 4)
    assert len(products) == 3 * len(dense) - 1  # the first layer has no input gradient
    assert sum(p.flops() for p in products) == 2 * 4 * (3 * sum(i * o for i, o in dense) - 10 * 8)
    assert len(step_products(AutoEncoder(10, (8,), 2, rng=Generator(0)), 4)) == 4 * 3 - 1


def test_an_epoch_has_full_batches_and_one_smaller_last_batch():
    assert steps_per_epoch(60000, 128) == {128: 468, 96: 1}  # ceil(60000 / 128) = 469 steps
    assert steps_per_epoch(1280, 128) == {128: 10}


def test_ratios_pair_the_epochs_of_each_round_not_the_medians():
    # Round 3 was slow for ours, round 2 for PyTorch: each round's own ratio cancels that.
    results = {"ours": {"measured": [1.0, 4.0, 5.0]}, "torch": {"measured": [2.0, 5.0, 4.5]},
               "gemm": {"skipped": "not asked for"}}
    r = bench.ratios(results)
    assert set(r) == {"ours/torch"}
    assert r["ours/torch"]["rounds"] == pytest.approx([0.5, 0.8, 5.0 / 4.5])
    assert r["ours/torch"]["median"] == pytest.approx(0.8)  # the ratio of the medians, 4 / 4.5, is 0.89
    assert (r["ours/torch"]["min"], r["ours/torch"]["max"]) == pytest.approx((0.5, 5.0 / 4.5))


def test_gemm_seconds_times_the_products_and_counts_their_flops():
    products = [Product("a @ b", (2, 3), (3, 4)), Product("a.T @ b", (5, 2), (5, 6), "a")]
    seconds, flops = gemm_seconds(np, products, repeats=3)
    assert seconds > 0
    assert flops == 2 * 2 * 3 * 4 + 2 * 2 * 5 * 6


def _check_trainer(result):
    assert result["seconds"] > 0 and result["samples_per_s"] > 0
    assert result["samples_per_s"] == pytest.approx(result["images"] / result["seconds"])
    assert result["peak_rss_mb"] >= result["libraries_rss_mb"] > 0
    assert 0 < result["test_loss"] < 100 and all(np.isfinite(r["loss"]) for r in result["epochs"])


def test_bench_on_digits_without_torch_reports_ours_the_limit_and_the_skip(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench, "torch_installed", lambda: False)
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


def test_the_torch_worker_trains_the_same_network():
    pytest.importorskip("torch", reason="PyTorch is an optional reference for the benchmark")
    result = run_benchmark(TINY, kinds=["torch"], log=lambda line: None)["torch"]
    _check_trainer(result)
    assert result["threads"] == 1


def test_epochs_run_concurrently_learn_exactly_what_they_learn_in_turn():
    pytest.importorskip("torch", reason="PyTorch is an optional reference for the benchmark")
    lines, config = [], dataclasses.replace(TINY, epochs=2)
    in_turn = run_benchmark(config, kinds=["ours", "torch"], log=lambda line: None)
    at_once = run_benchmark(config, kinds=["ours", "torch"], log=lines.append, concurrently=True)
    for kind in ("ours", "torch"):
        assert [r["test_loss"] for r in at_once[kind]["epochs"]] == [r["test_loss"] for r in in_turn[kind]["epochs"]]
    assert lines[0].startswith("epoch 1: test loss ours ") and "PyTorch" in lines[0]


@pytest.mark.skipif(cupy_available(), reason="CuPy and a GPU are present: the cupy backend works here")
def test_cupy_backend_without_a_gpu_is_a_one_line_error_and_exit_status_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--backend", "cupy", "--dataset", "digits"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("bench.py: error: the cupy backend needs") and err.count("\n") == 1


def test_quality_mode_writes_the_test_loss_of_each_epoch_and_seed(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench, "torch_installed", lambda: False)
    argv = ["--quality", "--dataset", "digits", "--epochs", "2", "--seeds", "0,1", "--threads", "1", "--out",
            str(tmp_path)]
    assert main(argv) == 0
    saved = json.loads((tmp_path / "quality.json").read_text())
    curves = saved["test_loss"]["ours"]
    assert saved["seeds"] == [0, 1] and len(curves) == 2 and all(len(c) == 2 for c in curves)
    assert curves[0] != curves[1]  # two seeds, two runs
    assert curves[0][1] < curves[0][0]  # it learns
    table = (tmp_path / "quality.md").read_text()
    mean = (curves[0][1] + curves[1][1]) / 2
    sd = abs(curves[0][1] - curves[1][1]) / 2 ** 0.5  # of two: |a - b| / sqrt(2)
    assert (f"| 2 | {mean:.2f} ± {sd:.2f} ({min(curves[0][1], curves[1][1]):.2f} - "
            f"{max(curves[0][1], curves[1][1]):.2f}) |") in table
    assert (tmp_path / "quality.png").stat().st_size > 1000


def test_quality_table_gives_the_difference_of_the_means():
    table = bench.quality_table({"ours": [[3.0, 2.0], [5.0, 4.0]], "torch": [[4.0, 2.5], [4.0, 2.5]]})
    assert "| 1 | 4.00 ± 1.41 (3.00 - 5.00) | 4.00 ± 0.00 (4.00 - 4.00) | +0.00 |" in table
    assert "| 2 | 3.00 ± 1.41 (2.00 - 4.00) | 2.50 ± 0.00 (2.50 - 2.50) | +0.50 |" in table
    assert "| 1 | 3.00 |" in bench.quality_table({"ours": [[3.0]]})  # one seed: no spread to give
