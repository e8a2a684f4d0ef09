"""Part Four's study (studies/objective.py): its models, its table, a quick run end to end, resuming,
and its refusals."""

import json

import pytest

from lab.cli import UsageError
from studies.objective import ObjectiveConfig, Setting, objective_table, settings, squared_error, study, study_config
from lab.codes import CodeReport


def test_the_study_has_the_sweep_the_learned_variance_and_both_remedies_at_each_size():
    models = settings(ObjectiveConfig())
    sweep = [s for s in models if s.group == "beta sweep"]
    assert {(s.latent_dim, s.beta) for s in sweep} >= {(k, b) for k in (2, 16) for b in (0.1, 0.25, 0.5, 1, 2, 4, 8)}
    assert (32, 1.0) in {(s.latent_dim, s.beta) for s in sweep}  # the lab's beta at 32, beside the remedies there
    assert len(sweep) == 15 and len(models) == len({s.folder for s in models}) == 21
    assert {(s.group, s.latent_dim) for s in models if s.group != "beta sweep"} == {
        ("learned variance", 2), ("learned variance", 16), ("warm-up", 16), ("warm-up", 32),
        ("free bits", 16), ("free bits", 32)}
    assert all(s.loss == ("gaussian" if s.group == "learned variance" else "mse") for s in models)


def test_the_squared_error_is_read_back_from_a_gaussian_decoders_nats():
    # D_nats = SE / (2 var) + (D/2) log(2 pi var): for the lab's var = 1/2, SE + (D/2) log(pi)
    import math
    for var, se in ((0.5, 25.0), (0.02, 11.0)):
        nats = se / (2 * var) + 392 * math.log(2 * math.pi * var)
        report = CodeReport(rate=1.0, distortion=nats, elbo=0.0, kl_per_dim=[], mean_variance=[], active_units=0,
                            x_variance=var)
        assert squared_error(report, 784) == pytest.approx(se)


@pytest.mark.slow
def test_a_quick_study_writes_its_results_and_figures_and_resumes_without_training(tmp_path):
    config = study_config(True, epochs=2, betas=(0.5, 4.0), latents=(2,), remedy_latents=(3,), bound_images=20,
                          workers=1)
    lines = []
    study(config, tmp_path / "out", log=lines.append)
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    names = [r["name"] for r in results["runs"]]
    assert names == ["beta 0.5, latent 2", "beta 4, latent 2", "beta 1, latent 3", "learned variance, latent 2",
                     "warm-up 1, latent 3", "free bits 0.5, latent 3"]
    for r in results["runs"]:
        assert r["rate"] == pytest.approx(sum(r["kl_per_dim"])) and 0 <= r["active_units"] <= r["latent_dim"]
        assert r["elbo"] == pytest.approx(-(r["rate"] + r["distortion"])) and r["squared_error"] > 0
        assert len(r["history"]) == 2 and r["bound"] < 0 and 0 <= r["knn"] <= 1
    by_name = dict(zip(names, results["runs"]))
    assert by_name["beta 4, latent 2"]["rate"] < by_name["beta 0.5, latent 2"]["rate"]  # a nat costs more: fewer bought
    assert by_name["learned variance, latent 2"]["x_variance"] < 0.5
    assert [e["beta"] for e in by_name["warm-up 1, latent 3"]["history"]] == [0.0, 1.0]
    for name in ("table.md", "rate_distortion.png", "bound_and_units.png", "kl_per_dim.png", "samples_traversals.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    assert (tmp_path / "out" / "table.md").read_text() == objective_table(results["runs"])
    # Run again: every model is read back from its folder, none retrained
    for run in results["runs"]:
        (tmp_path / "out" / Setting(**{k: run[k] for k in ("group", "latent_dim", "beta", "loss", "kl_warmup",
                                                            "free_bits")}).folder / "checkpoint.npz").unlink()
    again = study(config, tmp_path / "out", log=lambda line: None)
    assert [r["seconds"] for r in again["runs"]] == [r["seconds"] for r in results["runs"]]
    assert again["epoch_minutes"] == pytest.approx(results["epoch_minutes"]) and results["epoch_minutes"] > 0
    # ...and a study of other settings in that folder is refused, naming the model, not retrained over it
    with pytest.raises(UsageError, match="beta 0.5, latent 2: .* holds a model trained with other settings"):
        study(study_config(True, epochs=3, betas=(0.5, 4.0), latents=(2,), remedy_latents=(3,), bound_images=20,
                           workers=1), tmp_path / "out", log=lambda line: None)


@pytest.mark.parametrize("given, message", [
    (dict(betas=(1.0, -0.5)), "--betas must be one or more KL weights >= 0"),
    (dict(free_bits=-1.0), "--free-bits must be >= 0 nats, got -1.0"),
    (dict(warmup=20), "--warmup 20 is not shorter than the run (--epochs 20)"),
    (dict(workers=0), "--workers and --bound-images must be >= 1"),
    (dict(betas=(1.0, 0.5, 1.0)), "name a model twice"),
])
def test_bad_settings_are_one_line(given, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        study_config(**given)


@pytest.mark.parametrize("betas, message", [("1,inf", "--betas: KL weights must be finite numbers, got 1,inf"),
                                            ("1,-2", "--betas: KL weights must be >= 0, got 1,-2"),
                                            ("1,x", "expected comma-separated KL weights like 0.1,1,8")])
def test_the_script_refuses_bad_betas_in_one_line(betas, message, capsys):
    from apps import objective

    with pytest.raises(SystemExit) as exit_:
        objective.main(["--betas", betas])
    assert exit_.value.code == 2 and message in capsys.readouterr().err
