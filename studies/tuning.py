"""The report's "adding a bit of hyper-parameter tuning may be useful", measured with Optuna.

An Optuna study (TPE sampler; a median pruner on the loss after each epoch) searches the lab's
VAE for the settings of SPACE. The objective is the lab's own: summed squared error + KL
(beta 1), latent 2, 20 epochs, per image, but measured on a VALIDATION split of the training
set (its last VALIDATION images in a fixed shuffle), never on the test set. The study lives in
an Optuna storage (SQLite in the output folder by default), so an interrupted study resumes
where it stopped, and several processes (--workers), or machines sharing one database
(--storage postgresql://...), fill it together. A study remembers the settings it was made
with (its `fixed` attribute): one made with others is refused, not mixed in.

Then the best trial's settings and the lab's defaults are each trained on the whole training
set from seeds 0-2 and measured on the test set: the loss (mean +- sd) and the bound L_100 on
log p(x) (models/likelihood.py).
"""

import dataclasses
import json
import pathlib
import statistics
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from lab.cli import UsageError, prepare_out
from lab.data import load_dataset
from lab.files import write_json, write_text
from lab.plots import DPI
from lab.train import NonFiniteLoss, evaluate, fit
from models import VAE
from models.likelihood import importance_weighted_bound
from nn import Adam, Generator
from nn.backend import get_backend, to_backend

VALIDATION = 10_000  # training images held out to score a trial (FashionMNIST: 50,000 train on)
QUICK = dict(dataset="digits", trials=4, epochs=3, seeds=(0,), validation=300, bound_k=10)
BOUND_IMAGES = 2000  # test images the bound L_K is estimated on (K decodes per image)


@dataclasses.dataclass(frozen=True)
class Setting:
    """One hyper-parameter of the search: `suggest(trial)` draws it; `lab` is the lab's value."""

    name: str
    lab: object
    choices: tuple = ()  # a categorical setting's values
    low: float = 0.0  # a log-uniform setting's range
    high: float = 0.0

    def suggest(self, trial):
        if self.choices:
            return trial.suggest_categorical(self.name, self.choices)
        return trial.suggest_float(self.name, self.low, self.high, log=True)


SPACE = (
    Setting("lr", 5e-4, low=1e-4, high=1e-2),
    Setting("batch_size", 128, choices=(32, 64, 128, 256)),
    Setting("depth", 1, choices=(1, 2, 3)),  # hidden layers; each after the first half as wide
    Setting("width", 512, choices=(128, 256, 512)),  # the first hidden layer's; 1024 would double a trial
    Setting("activation", "relu", choices=("relu", "leaky_relu", "tanh")),
    Setting("init", "he-xavier", choices=("he-xavier", "uniform")),
)
LAB = {s.name: s.lab for s in SPACE}


@dataclasses.dataclass
class TuneConfig:
    """The study's settings. What a study is made with (`fixed`) must match to resume it."""

    dataset: str = "fashion-mnist"
    trials: int = 30  # in all, counting those a resumed study already has
    epochs: int = 20  # the lab's, for every trial and every retraining
    latent_dim: int = 2  # the lab's
    validation: int = VALIDATION
    seeds: tuple = (0, 1, 2)  # of the retrainings on the whole training set
    bound_k: int = 100  # K of the bound L_K on the test set
    workers: int = 1
    storage: str | None = None  # an Optuna storage URL; default sqlite:///<out>/study.db
    study_name: str = "lab-vae"
    backend: str = "numpy"

    def fixed(self):
        """What the study's trials depend on: a study made with other values is another study."""
        return dict(dataset=self.dataset, epochs=self.epochs, latent_dim=self.latent_dim, loss="mse", beta=1.0,
                    validation=self.validation, space=[dataclasses.asdict(s) for s in SPACE])


def hidden_of(depth, width):
    """(width, width // 2, ...): depth hidden layers, each half as wide as the one before."""
    return tuple(max(width >> i, 1) for i in range(depth))


def split(data, validation, seed=0):
    """(x_fit, x_val): the training images in a fixed shuffle, the last `validation` held out."""
    if not 0 < validation < len(data.x_train):
        raise UsageError(f"--validation must be between 1 and {len(data.x_train) - 1} (the training images), "
                         f"got {validation}")
    order = np.random.default_rng(seed).permutation(len(data.x_train))
    return data.x_train[order[:-validation]], data.x_train[order[-validation:]]


def train(params, data, x_train, config, seed, on_epoch=None):
    """The VAE of `params` trained config.epochs on x_train: (N, D) uint8; on_epoch(epoch, model, rng)
    after each epoch, which may stop training by returning True. Returns (model, rng)."""
    rng = Generator(seed, get_backend(config.backend))
    model = VAE(data.input_dim, hidden=hidden_of(params["depth"], params["width"]), latent_dim=config.latent_dim,
                activation=params["activation"], init=params["init"], x_mean=data.mean_image, rng=rng)
    epochs = fit(model, Adam(model.params, lr=params["lr"]), to_backend(x_train, rng.xp), params["batch_size"],
                 data.scale, rng, epochs=config.epochs)
    for epoch in epochs:
        if on_epoch and on_epoch(epoch.number, model, rng):
            break
    return model, rng


def objective(trial, config):
    """The trial's validation loss per image after config.epochs, reported each epoch to the pruner."""
    import optuna

    data = load_dataset(config.dataset)
    x_fit, x_val = split(data, config.validation)
    params = {s.name: s.suggest(trial) for s in SPACE}
    x_val = to_backend(x_val, get_backend(config.backend))
    losses = []

    def on_epoch(epoch, model, rng):
        loss = evaluate(model, x_val, 1000, data.scale, Generator(0, rng.xp))["loss"]
        losses.append(loss)
        trial.report(loss, epoch)
        return not np.isfinite(loss) or trial.should_prune()

    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # a diverging trial says so below
            train(params, data, x_fit, config, seed=trial.number, on_epoch=on_epoch)
    except NonFiniteLoss as err:  # a step size too large for these settings: a result, not a failure
        raise optuna.TrialPruned(str(err)) from None
    if not np.isfinite(losses[-1]):
        raise optuna.TrialPruned(f"the loss became {losses[-1]}")
    if len(losses) < config.epochs:
        raise optuna.TrialPruned()
    return losses[-1]


def open_study(config, out):
    """The Optuna study of config in its storage, made or resumed; a UsageError for a storage that
    cannot be opened, or a study made with other fixed settings."""
    import optuna
    import sqlalchemy.exc

    url = config.storage or f"sqlite:///{pathlib.Path(out, 'study.db').resolve()}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeat_interval's
    try:
        storage = optuna.storages.RDBStorage(url, heartbeat_interval=60, grace_period=180)
        study = optuna.create_study(storage=storage, study_name=config.study_name, direction="minimize",
                                    load_if_exists=True,
                                    pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=3))
    except (sqlalchemy.exc.SQLAlchemyError, ValueError, ImportError) as err:
        raise UsageError(f"cannot open the Optuna storage {url!r} ({type(err).__name__}: {str(err).splitlines()[0]}): "
                         "give --storage an SQLAlchemy URL such as sqlite:///study.db or "
                         "postgresql://user@host/db") from None
    fixed = json.loads(json.dumps(config.fixed()))  # as stored: tuples become lists
    made_with = study.user_attrs.get("fixed")
    if made_with is None:
        study.set_user_attr("fixed", fixed)
    elif made_with != fixed:
        said = "; ".join(f"{k} {made_with.get(k)!r} there, {fixed[k]!r} here" if k != "space" else "another search space"
                         for k in sorted(k for k in fixed if made_with.get(k) != fixed[k]))
        raise UsageError(f"the study {config.study_name!r} in {url} was made with other settings ({said}): give "
                         "another --study-name or --out, or the settings it was made with")
    study.sampler = optuna.samplers.TPESampler(seed=len(study.trials))  # a resumed study draws anew
    return study, url


def finished(study):
    """The trials that count towards --trials: complete and pruned ones (a failed one is retried)."""
    import optuna

    return [t for t in study.trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]


def work(config, url, n_trials, seed):
    """One worker process: n_trials more trials of the study in `url`, its sampler seeded with `seed`."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    study = optuna.load_study(study_name=config.study_name, storage=optuna.storages.RDBStorage(
        url, heartbeat_interval=60, grace_period=180), sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=3))
    study.optimize(lambda trial: objective(trial, config), n_trials=n_trials)


def search(config, study, url, log=print):
    """Run the trials the study still lacks, in config.workers processes (or this one)."""
    left = config.trials - len(finished(study))
    log(f"study {config.study_name!r} in {url}: {len(finished(study))} trials done, {max(left, 0)} to run")
    if left <= 0:
        return
    if config.workers == 1:
        study.optimize(lambda trial: objective(trial, config), n_trials=left,
                       callbacks=[lambda s, t: log(f"trial {t.number}: {t.state.name.lower()}, "
                                                   f"validation loss {t.value if t.value is not None else '-'}")])
        return
    shares = [left // config.workers + (i < left % config.workers) for i in range(config.workers)]
    with ProcessPoolExecutor(config.workers) as pool:
        for done in [pool.submit(work, config, url, n, len(study.trials) + i) for i, n in enumerate(shares) if n]:
            done.result()


def test_scores(params, data, config, log=print):
    """[{seed, loss, recon, kl, bound}] of `params` trained on the whole training set, per seed; a
    training whose loss diverges is kept as {seed, diverged: where}, not dropped."""
    scores = []
    for seed in config.seeds:
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                model, rng = train(params, data, data.x_train, config, seed)
        except NonFiniteLoss as err:
            scores.append(dict(seed=seed, diverged=str(err)))
            log(f"  seed {seed}: diverged: {err}")
            continue
        x_test = to_backend(data.x_test, rng.xp)
        terms = evaluate(model, x_test, 1000, data.scale, Generator(0, rng.xp))
        x = rng.xp.asarray(data.x_test[:BOUND_IMAGES], dtype=model.dtype) * data.scale
        bound = float(np.mean(np.asarray(importance_weighted_bound(model, x, config.bound_k, Generator(1, rng.xp)))))
        scores.append(dict(seed=seed, **terms, bound=bound))
        log(f"  seed {seed}: test loss {terms['loss']:.3f} (recon {terms['recon']:.2f} + KL {terms['kl']:.2f}), "
            f"L_{config.bound_k} {bound:.2f}")
    return scores


def spread(scores, key):
    """(mean, sd) of `key` over the seeds whose training did not diverge; (nan, nan) if none."""
    values = [s[key] for s in scores if "diverged" not in s]
    if not values:
        return float("nan"), float("nan")
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def tuning_table(results):
    """The README's table: the lab's defaults beside the best trial's settings, on the test set."""
    k = results["config"]["bound_k"]
    rows = [f"| settings | test loss | recon | KL | L_{k} (nats) |", "|---|---|---|---|---|"]
    for name in ("lab", "tuned"):
        scores = results[name]["test"]
        cells = [f"{m:.3f} ± {s:.3f}" for m, s in (spread(scores, key) for key in ("loss", "recon", "kl", "bound"))]
        diverged = sum("diverged" in s for s in scores)
        cells[0] += f" ({diverged} of {len(scores)} seeds diverged)" if diverged else ""
        params = ", ".join(f"{k_}={v:.2g}" if isinstance(v, float) else f"{k_}={v}" for k_, v in results[name]["params"].items())
        rows.append(f"| {name}: {params} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def save_figures(study, out):
    """history.png: each trial's validation loss and the best so far (a trial far above the rest drawn
    at the top edge); importance.png: how much each setting decides whether a complete trial is among
    the best (Optuna's default evaluator, PED-ANOVA, on quantiles: one trial whose loss blew up
    weighs no more than any other bad one). Returns the importances."""
    import optuna
    from matplotlib.figure import Figure

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED and t.intermediate_values]
    last = [t.intermediate_values[max(t.intermediate_values)] for t in pruned]
    values = [t.value for t in complete]
    top = 1.25 * float(np.median([v for v in values + last if np.isfinite(v)] or [1.0]))
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    for trials, losses, style, label in ((complete, values, "o", "complete trial"),
                                         (pruned, last, "x", "pruned (its last loss)")):
        ax.plot([t.number for t in trials], np.minimum(losses, top), style, label=label,
                **({"color": "grey"} if style == "x" else {}))
    ax.plot([t.number for t in complete], np.minimum.accumulate(values), "-", label="best so far")
    ax.set(xlabel="trial", ylabel="validation loss per image", title="The search", ylim=(None, top * 1.02))
    ax.text(0.01, 0.98, f"above {top:.0f}: drawn at the top edge", transform=ax.transAxes, va="top", fontsize=8)
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(out / "history.png", dpi=DPI)
    if len(complete) < 2:
        return {}
    importance = optuna.importance.get_param_importances(study)
    fig = Figure(figsize=(6, 3))
    ax = fig.add_subplot()
    ax.barh(list(importance)[::-1], list(importance.values())[::-1])
    ax.set(xlabel="importance (PED-ANOVA)", title="Which settings decide the best trials")
    fig.tight_layout()
    fig.savefig(out / "importance.png", dpi=DPI)
    return importance


def tune(config, out, log=print):
    """The search, then the best and the lab's settings retrained and tested; results.json, table.md,
    history.png and importance.png in `out`."""
    out = pathlib.Path(prepare_out(out))
    data = load_dataset(config.dataset)
    split(data, config.validation)  # a bad --validation says so before any trial
    study, url = open_study(config, out)
    search(config, study, url, log)
    try:
        best = study.best_trial
    except ValueError:
        raise UsageError(f"the study {config.study_name!r} has no complete trial yet: run more --trials") from None
    log(f"best trial {best.number}: validation loss {best.value:.3f} with {best.params}")
    importance = save_figures(study, out)
    results = dict(config=dataclasses.asdict(config), storage=url, trials=len(study.trials),
                   pruned=sum(t.state.name == "PRUNED" for t in study.trials),
                   best=dict(number=best.number, validation=best.value), importance=importance)
    for name, params in (("lab", LAB), ("tuned", best.params)):
        log(f"{name} settings on the whole training set, tested:")
        results[name] = dict(params=params, test=test_scores(params, data, config, log))
    write_json(out / "results.json", results)
    write_text(out / "table.md", tuning_table(results))
    return results


def tune_config(quick=False, **given):
    """TuneConfig from the flags, --quick's small study under them; bad values as UsageError."""
    config = TuneConfig(**({**QUICK, **given} if quick else given))
    if config.trials < 1 or config.workers < 1:
        raise UsageError(f"--trials and --workers must be at least 1, got {config.trials} and {config.workers}")
    return config
