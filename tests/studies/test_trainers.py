"""The benchmark's kinds as records: found by name, skipped when what they need is missing, the PyTorch twin."""

import pytest

from models import VAE
from nn import Generator
from studies import trainers
from studies.flags import BenchConfig
from studies.trainers import KINDS, Kind, kind_named, select_kinds


def test_kind_named_finds_the_record_or_names_the_kinds_there_are():
    assert kind_named("gemm") is KINDS[2]
    with pytest.raises(ValueError, match="unknown kind 'tf': choose one of ours, torch, gemm"):
        kind_named("tf")


def test_a_kind_whose_module_is_missing_is_skipped_saying_so_and_skip_leaves_one_out(monkeypatch):
    assert select_kinds(skip=("torch",)) == ([KINDS[0], KINDS[2]], {})
    monkeypatch.setattr(trainers, "importable", lambda module: module != "torch")
    kinds, skipped = select_kinds()
    assert kinds == [KINDS[0], KINDS[2]]
    assert skipped == {"torch": {"skipped": "PyTorch is not installed (it is optional: pip install torch)"}}
    made_up = Kind("c", "Gamma", object, None, needs="no_such_module_here")
    monkeypatch.undo()
    assert select_kinds(kinds=(made_up,)) == ([], {"c": {"skipped": "Gamma is not installed (it is optional: "
                                                                  "pip install no_such_module_here)"}})


def test_the_torch_twin_has_the_widths_of_the_lab_config():
    pytest.importorskip("torch", reason="PyTorch is an optional reference for the benchmark")
    from models.torch_vae import TorchVAE

    lab = BenchConfig().train_config()
    twin, ours = TorchVAE(10, (8, 6), 3), VAE(10, (8, 6), 3, rng=Generator(0))
    assert sorted(tuple(p.shape) for p in twin.parameters()) == sorted(
        tuple(p.shape)[::-1] if p.ndim == 2 else tuple(p.shape) for p in ours.params.values())  # torch: (out, in)
    assert [m.out_features for m in TorchVAE(64, lab.hidden, lab.latent_dim).modules()
            if hasattr(m, "out_features")] == [512, 2, 2, 512, 64]
