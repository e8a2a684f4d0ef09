"""The tuning study: its search space, the validation split, and a quick study that resumes from its
storage and refuses one made with other settings."""

import json

import numpy as np
import pytest

from lab.cli import UsageError
from lab.data import load_dataset
from studies.tuning import LAB, SPACE, hidden_of, split, tune, tune_config

TINY = dict(trials=2, epochs=2, validation=200, bound_k=2)


def test_the_lab_settings_are_in_the_search_space():
    assert LAB == {"lr": 5e-4, "batch_size": 128, "depth": 1, "width": 512, "activation": "relu", "init": "he-xavier"}
    for s in SPACE:
        assert s.lab in s.choices if s.choices else s.low <= s.lab <= s.high
    assert hidden_of(1, 512) == (512,) and hidden_of(3, 512) == (512, 256, 128)


def test_the_validation_split_is_held_out_of_the_training_images_and_never_the_test_set():
    data = load_dataset("digits")
    x_fit, x_val = split(data, 300)
    assert len(x_fit) + len(x_val) == len(data.x_train) and len(x_val) == 300
    rows = {r.tobytes() for r in data.x_train}
    assert all(r.tobytes() in rows for r in x_val)
    with pytest.raises(UsageError, match="--validation must be between 1 and 1499"):
        split(data, 1500)


@pytest.mark.slow
def test_a_quick_study_resumes_from_its_storage_and_refuses_another_configuration(tmp_path):
    quiet = dict(log=lambda line: None)
    first = tune(tune_config(True, **TINY), tmp_path, **quiet)
    assert first["trials"] == 2 and (tmp_path / "history.png").exists() and (tmp_path / "importance.png").exists()
    again = tune(tune_config(True, **{**TINY, "trials": 3}), tmp_path, **quiet)  # one more trial, not three
    assert again["trials"] == 3
    saved = json.loads((tmp_path / "results.json").read_text())
    assert len(saved["lab"]["test"]) == 1 and np.isfinite(saved["tuned"]["test"][0]["bound"])
    assert saved["lab"]["params"] == LAB
    with pytest.raises(UsageError, match="made with other settings.*epochs 2 there, 3 here"):
        tune(tune_config(True, **{**TINY, "epochs": 3}), tmp_path, **quiet)


def test_bad_input_is_one_line(tmp_path):
    with pytest.raises(UsageError, match="--trials and --workers must be at least 1"):
        tune_config(True, trials=0)
    with pytest.raises(UsageError, match="cannot open the Optuna storage 'nosuch://x'.*--storage"):
        tune(tune_config(True, **TINY, storage="nosuch://x"), tmp_path, log=lambda line: None)


@pytest.mark.slow
def test_a_trial_whose_loss_diverges_is_pruned_and_the_study_goes_on(tmp_path, monkeypatch):
    import studies.tuning as tuning
    huge = tuning.Setting("lr", 5e-4, low=50.0, high=60.0)  # every trial's Adam steps diverge
    monkeypatch.setattr(tuning, "SPACE", (huge,) + tuning.SPACE[1:])
    with pytest.raises(UsageError, match="no complete trial yet"):
        tune(tune_config(True, **TINY), tmp_path, log=lambda line: None)
    import optuna
    study = optuna.load_study(study_name="lab-vae", storage=f"sqlite:///{tmp_path / 'study.db'}")
    assert [t.state.name for t in study.trials] == ["PRUNED", "PRUNED"]
