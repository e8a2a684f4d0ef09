"""Part Four: what the VAE's objective trades. Rate and distortion, the decoder's variance,
collapsed dimensions, measured.

The lab's loss is distortion plus rate (lab/codes.py): summed squared error, the -log p(x|z)
of a Gaussian decoder whose variance is fixed at 1/2, plus the KL, the nats the code carries.
The study trains the lab's VAE (784-512-k, Adam at lr 5e-4, batches of 128, 20 epochs) in
one Setting record per model:

    beta sweep        the KL's weight beta from 0.1 to 8 (Higgins et al. 2017), at latent 2 and 16:
                      each beta is one point of the rate-distortion curve (Alemi et al. 2018)
    learned variance  loss "gaussian": the decoder learns its variance (Rybkin et al. 2021), which
                      amounts to the lab's loss at beta = 2 sigma**2 (docs/derivations.md)
    warm-up, free bits  the remedies for collapsed dimensions, at latent 16 and 32, beside the
                      lab's beta = 1 at those sizes

and measures each on the test set: rate, distortion (in the lab's units, summed squared error,
and in nats under the model's own decoder), the ELBO, L_100 (models/likelihood.py) on the first
`bound_images` test images, the KL of each dimension and the active units, and how far apart the
code keeps the classes (5-NN accuracy of the test codes mu among the training codes, the one
thing "a clearer subspace" can be measured by with class labels alone); it keeps samples and
traversals for the figures. Each model trains in a folder of its own (a run of lab/run.py, so
an interrupted study resumes where it stopped), `workers` at a time.

`make objective` runs it (objective.py); `--quick` in seconds, on the digits.
"""

import concurrent.futures
import contextlib
import dataclasses
import json
import math
import multiprocessing
import os
import pathlib
import time

import numpy as np

from lab.cli import RunFailed, UsageError, prepare_out
from lab.codes import code_report, strongest, traversal
from lab.config import LAB, lab_config
from lab.data import DataError
from lab.files import write_json, write_text
from lab.run import load_checkpoint, run_training
from lab.train import apply_in_batches, evaluate, minibatches
from models.likelihood import importance_weighted_bound
from nn import Generator
from nn.backend import get_backend, to_backend, to_numpy

from .figures import save_objective_figures
from .measures import knn_accuracy
from .workers import thread_env, usable_cores

QUICK = dict(dataset="digits", epochs=5, lr=3e-3, batch_size=64, betas=(0.1, 1.0, 8.0), latents=(2, 4), remedy_latents=(4,), warmup=1,
             free_bits=0.5, bound_images=100)
SAMPLES = 32  # images decoded from the prior, for the figures
TRAVERSED = 5  # dimensions of highest KL each model's traversal shows in the figures


@dataclasses.dataclass
class ObjectiveConfig:
    """The study's settings; the defaults are the lab's run, and the models the README measures."""

    dataset: str = "fashion-mnist"
    epochs: int = 20  # the lab's
    lr: float = LAB.lr
    batch_size: int = LAB.batch_size
    betas: tuple = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)  # from a tenth of the lab's KL weight to eight times it
    latents: tuple = (2, 16)  # the lab's plane, and a code large enough to leave dimensions unused
    remedy_latents: tuple = (16, 32)  # where the remedies for collapsed dimensions are measured
    warmup: int = 10  # --kl-warmup of the warm-up models: half the run
    free_bits: float = 0.5  # --free-bits of the free-bits models, nats per dimension
    bound_images: int = 1000  # test images L_100 is estimated on (100 decodes each)
    bound_K: int = 100
    seed: int = 0
    workers: int = 2  # models trained at once, each in a process of its own
    backend: str = "numpy"


@dataclasses.dataclass(frozen=True)
class Setting:
    """One model of the study: its group (what it shows) and what it changes of the lab's run."""

    group: str  # "beta sweep", "learned variance", "warm-up", "free bits"
    latent_dim: int
    beta: float = 1.0
    loss: str = "mse"
    kl_warmup: int = 0
    free_bits: float = 0.0

    @property
    def name(self):
        what = {"beta sweep": f"beta {self.beta:g}", "learned variance": "learned variance",
                "warm-up": f"warm-up {self.kl_warmup}", "free bits": f"free bits {self.free_bits:g}"}[self.group]
        return f"{what}, latent {self.latent_dim}"

    @property
    def folder(self):
        return self.name.replace(", ", "-").replace(" ", "_")


def settings(config):
    """Every Setting of the study, the beta sweep first."""
    sweep = [Setting("beta sweep", k, beta=b) for k in config.latents for b in config.betas]
    learned = [Setting("learned variance", k, loss="gaussian") for k in config.latents]
    labs = {(s.latent_dim, s.beta) for s in sweep}
    baselines = [Setting("beta sweep", k) for k in config.remedy_latents if (k, 1.0) not in labs]
    remedies = [Setting(group, k, **change) for k in config.remedy_latents
                for group, change in (("warm-up", dict(kl_warmup=config.warmup)),
                                      ("free bits", dict(free_bits=config.free_bits)))]
    return sweep + baselines + learned + remedies


SHARED = ("dataset", "epochs", "lr", "batch_size", "bound_images", "bound_K", "seed")  # what every model shares


def shared_settings(config):
    """The settings every model of a study is trained and measured with: {name: value}."""
    return {name: getattr(config, name) for name in SHARED}


def squared_error(report, D):
    """The summed squared error per image at the distortion's z, from a Gaussian decoder's distortion in
    nats: D_nats = SE / (2 sigma**2) + (D/2) log(2 pi sigma**2) (docs/derivations.md)."""
    var = report.x_variance
    return 2 * var * (report.distortion - D / 2 * math.log(2 * math.pi * var))


def measure(model, data, config):
    """One trained model's numbers on the test set, and the arrays its figures are drawn from."""
    xp = get_backend(config.backend)
    x_test = to_backend(data.x_test, xp)
    report = code_report(model, x_test, data.scale, Generator(config.seed + 4, xp))
    terms = evaluate(model, x_test, 1000, data.scale, Generator(config.seed + 1, xp))
    rng = Generator(config.seed + 3, xp)
    bound = float(sum(xp.sum(importance_weighted_bound(model, batch, config.bound_K, rng))
                      for batch in minibatches(x_test[:config.bound_images, ...], 100, data.scale, model.dtype)))
    mu_train, mu_test = (to_numpy(apply_in_batches(model.code, to_backend(x, xp), 1000, data.scale))
                         for x in (data.x_train, data.x_test))
    knn = knn_accuracy(mu_train, data.y_train, mu_test, data.y_test)
    dims = strongest(report, TRAVERSED)
    mu0 = to_numpy(apply_in_batches(model.code, x_test[:1, ...], 1, data.scale))[0]
    arrays = dict(samples=to_numpy(model.sample(SAMPLES, Generator(config.seed + 2, xp))),
                  traversal=traversal(model, xp, mu0, dims), dims=np.array(dims))
    numbers = dict(dataclasses.asdict(report), squared_error=squared_error(report, data.input_dim),
                   beta_equivalent=2 * report.x_variance, test_loss=terms["loss"], knn=knn,
                   bound=bound / min(config.bound_images, data.x_test.shape[0]))
    return numbers, arrays


def train_and_measure(setting, config, folder):
    """Train `setting` in `folder` (resuming a run stopped there) and measure it: its record. Runs in a
    worker process; the run's own lines go to folder/log.txt. A finished model is read back, not retrained."""
    folder = pathlib.Path(folder)
    done = folder / "result.json"
    if done.exists():
        record = json.loads(done.read_text())
        if record.get("study") != shared_settings(config):
            raise UsageError(f"{folder} holds a model trained with other settings ({record.get('study')}): "
                             "give the study another --out, or the settings it was run with")
        return record
    began = time.perf_counter()
    run = lab_config(dataset=config.dataset, epochs=config.epochs, lr=config.lr, batch_size=config.batch_size,
                     latent_dim=setting.latent_dim, beta=setting.beta,
                     loss=setting.loss, kl_warmup=setting.kl_warmup, free_bits=setting.free_bits, seed=config.seed,
                     backend=config.backend)
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint = folder / "checkpoint.npz"
    with open(folder / "log.txt", "a") as log, contextlib.redirect_stdout(log):
        resumed = load_checkpoint(str(checkpoint)) if checkpoint.exists() else None
        model, data, history = run_training(run, str(folder), resumed, show_progress=False)
    numbers, arrays = measure(model, data, config)
    np.savez_compressed(folder / "figures.npz", **arrays)
    record = dict(dataclasses.asdict(setting), name=setting.name, **numbers, history=history,
                  seconds=time.perf_counter() - began, study=shared_settings(config))
    write_json(done, record)
    return record


def study(config, out, log=print):
    """Train and measure every Setting, `config.workers` at a time; write results.json and table.md to
    `out`, and the figures (studies/figures.py); return the results."""
    out = pathlib.Path(prepare_out(out))
    todo = settings(config)
    records = {}
    threads = max(1, usable_cores() // config.workers)
    log(f"{len(todo)} models on {config.dataset}, {config.epochs} epochs each, {config.workers} at a time "
        f"({threads} thread{'s' * (threads > 1)} each), in {out}")
    began = time.perf_counter()
    with thread_env(threads), concurrent.futures.ProcessPoolExecutor(
            config.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        jobs = {pool.submit(train_and_measure, s, config, str(out / s.folder)): s for s in todo}
        for job in concurrent.futures.as_completed(jobs):
            setting = jobs[job]
            try:
                record = records[setting] = job.result()
            except Exception as err:  # the others are not waited for: the study stops at its first failure
                pool.shutdown(wait=False, cancel_futures=True)
                kind = UsageError if isinstance(err, (UsageError, DataError)) else RunFailed
                raise kind(f"{setting.name}: {err} (the models finished so far are kept in {out})") from None
            log(f"[{len(records)}/{len(todo)}] {setting.name}: rate {record['rate']:.2f}, squared error "
                f"{record['squared_error']:.2f}, L_{config.bound_K} {record['bound']:.2f}, active "
                f"{record['active_units']}/{setting.latent_dim} ({record['seconds']:.0f} s)")
    runs = [records[s] for s in todo]
    # minutes: this call's (a resumed study's is less); epoch_minutes: every model's epochs, added up
    results = dict(config=dataclasses.asdict(config), minutes=(time.perf_counter() - began) / 60,
                   epoch_minutes=sum(e["seconds"] for r in runs for e in r["history"]) / 60, runs=runs)
    write_json(out / "results.json", results)
    write_text(out / "table.md", objective_table(runs, config.bound_K))
    save_objective_figures(runs, {s.name: np.load(out / s.folder / "figures.npz") for s in todo}, config, out)
    return results


def objective_table(runs, K=100):
    """The README's table: one row per model."""
    rows = [f"| model | rate (nats) | squared error | distortion (nats) | -ELBO | L_{K} | active units | 5-NN | "
            "decoder variance (beta equivalent) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        variance = f"{r['x_variance']:.4f} ({r['beta_equivalent']:.3f})" if r["loss"] == "gaussian" else "1/2 (1)"
        rows.append(f"| {r['name']} | {r['rate']:.2f} | {r['squared_error']:.2f} | {r['distortion']:.2f} | "
                    f"{-r['elbo']:.2f} | {r['bound']:.2f} | {r['active_units']}/{r['latent_dim']} | {r['knn']:.3f} | "
                    f"{variance} |")
    return "\n".join(rows) + "\n"


def study_config(quick=False, **given):
    """ObjectiveConfig from the flags; --quick's small run under them; bad values as UsageError."""
    config = ObjectiveConfig(**({**QUICK, **given} if quick else given))
    if not config.betas or min(config.betas) < 0:
        raise UsageError(f"--betas must be one or more KL weights >= 0, got {','.join(map(str, config.betas))}")
    if config.free_bits < 0:
        raise UsageError(f"--free-bits must be >= 0 nats, got {config.free_bits}")
    if config.warmup >= config.epochs:
        raise UsageError(f"--warmup {config.warmup} is not shorter than the run (--epochs {config.epochs}): "
                         f"give at most {config.epochs - 1}")
    if len({s.folder for s in settings(config)}) < len(settings(config)):
        raise UsageError(f"--betas {','.join(f'{b:g}' for b in config.betas)} and --latents "
                         f"{','.join(map(str, config.latents))} name a model twice: give each value once")
    if config.workers < 1 or config.bound_images < 1:
        raise UsageError("--workers and --bound-images must be >= 1")
    return config
