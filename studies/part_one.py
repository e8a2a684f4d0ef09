"""Part One, measured: PCA, a linear autoencoder, a nonlinear one and a VAE, side by side.

The lab's claim: an autoencoder with one linear layer each way and a k-dimensional code,
trained on squared error, "performs as PCA does" -- it spans the subspace of the top k
principal components, though its directions need be neither orthogonal nor those
components themselves. Here the claim becomes numbers (`measure`):

  test_mse              reconstruction error per image (summed over pixels), each method;
  mse_ratio_to_pca      PCA is the best any rank-k linear map can do, so 1.0 is the floor
                        (exactly so on the training set, train_mse; on the test set nearly);
  principal_angles_deg  between each method's k-dimensional subspace of pixel space and
                        PCA's: all 0 when the two subspaces are the same;
  decoder_angles_deg    between the linear AE's k decoder directions: 90 for PCA's
                        orthonormal components, anything for the autoencoder.

and the lab's second claim, that the VAE's latent space is the clearer one:

  knn_accuracy          how often a test image's 5 nearest training codes share its class:
                        how well the code space keeps the classes apart;
  codes_in_plane        (k = 2) the fraction of the test codes inside the square of the
                        latent plane drawn in manifolds.png: how much of the data it shows;
  code_fill             (k = 2) with the codes whitened (mean 0, covariance I, which undoes
                        any linear map of them), the fraction of a 21 x 21 grid over [-2, 2]^2
                        with a code within one grid step: 1 when the codes fill their region
                        without gaps, less when they lie in clusters or rays with empty space
                        between, where the decoder has seen no data.

Each method is one record: a Method says what it is called, a TrainedMethod adds how its
autoencoder is built, trained and read; fitting one gives a Fitted record (its codes, decoder, plane and
subspace), which `measure` turns into its entry of results.json. The subspace of the linear
AE is the row space of its decoder weight W_dec (k, D), since x_hat = z @ W_dec + b. A
nonlinear decoder has no such plane; we take the plane it is tangent to at the mean test
code, spanned by the columns of its Jacobian dx_hat/dz there. See docs/pca.md for why the
linear AE lands on PCA's subspace. studies/measures.py holds the measurements themselves.
"""

import dataclasses
import platform
import time
from collections.abc import Callable

import matplotlib
import numpy as np
import scipy
import sklearn

from models import AutoEncoder
from nn import Adam, Generator
from nn.backend import get_backend, to_backend, to_numpy

from lab.cli import UsageError, prepare_out, print_now
from lab.config import LAB, build_model, config_from, lab_config
from lab.data import load_dataset
from lab.files import write_json, write_text
from lab.plots import latent_grid, write_explorer
from lab.train import apply_in_batches, fit
from .figures import save_embeddings, save_image_rows, save_manifolds
from .measures import (code_fill, decoder_jacobian, fit_pca, fraction_inside, knn_accuracy, line_between,
                       pairwise_angles_deg, principal_angles_deg, reconstruction_mse, test_mse)

GRID = 21  # points a side of the decoded latent plane, as in the lab's figures
INTERPOLATE_CLASSES = (1, 9)  # interpolations.png walks from the first test image of one class to one of the other
INTERPOLATION_STEPS = 10


@dataclasses.dataclass
class CompareConfig:
    """The comparison's settings. The defaults, the lab's run's (lab.config.LAB) where it has them,
    converge on FashionMNIST in about 2 minutes."""

    dataset: str = LAB.dataset
    data_dir: str | None = None
    latent_dim: int = LAB.latent_dim  # the lab's: the plane of its figures
    epochs: int = LAB.epochs  # for each trained model
    batch_size: int = LAB.batch_size
    lr: float = LAB.lr  # for the AE and the VAE
    linear_lr: float = 1e-3  # the linear AE's loss surface is smoother: a larger step is stable
    decay_from: float = 0.6  # after this fraction of the epochs, lr *= decay every epoch, so that
    decay: float = 0.7  # Adam's steps shrink and the weights settle instead of jittering around the optimum
    hidden: tuple = LAB.hidden  # the nonlinear AE's and the VAE's hidden layers
    seed: int = 0
    backend: str = "numpy"


# digits has 1500 training images, 12 steps an epoch at the lab's batch size: more and shorter
# epochs with a larger step give the linear AE the steps it needs to settle, and its 64 pixels
# need no 512 hidden units. MNIST is FashionMNIST's size and shape: the defaults serve both.
DATASET_DEFAULTS = {"digits": {"epochs": 100, "batch_size": 64, "linear_lr": 1e-2, "hidden": (64,)}}


def default_config(dataset, given=None, **fixed):
    """CompareConfig for `dataset`: its own defaults where it has them, under the values `given`
    (parsed flags, a dict: None is a flag not given), under `fixed`."""
    return config_from(CompareConfig, given or {}, DATASET_DEFAULTS.get(dataset), dataset=dataset, **fixed)


# ------------------------------------------------------------------------------ the records


@dataclasses.dataclass(frozen=True)
class Method:
    """One of Part One's methods, as results.json, results.md and the figures name it."""

    key: str  # in results.json
    label: str  # in results.md and the figures
    interpolated: bool = False  # a row of interpolations.png: the straight line between two codes, decoded


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainedMethod(Method):
    """A method that is an autoencoder trained by Adam: everything by which one differs from another."""

    build: Callable  # (config, data, rng) -> the untrained model
    lr: Callable  # config -> its Adam step size
    plane_in_std: bool  # its plane drawn over +-3 std of its codes: a code with no scale of its own
    subspace: Callable  # (model, decode, z_test) -> (D, k): its k-dimensional subspace of pixel space


@dataclasses.dataclass(frozen=True)
class Plane:
    """The square of the code plane that manifolds.png draws: the plane's coordinates g in
    [lo, hi]^k stand for the codes z = centre + g * scale (centre, scale: (k,) or scalars)."""

    centre: np.ndarray | float = 0.0
    scale: np.ndarray | float = 1.0
    extent: tuple = (-4.0, 4.0)  # the lab's figures
    unit: str = ""  # what g counts, for the figure's title

    @classmethod
    def over_spread(cls, z):
        """The plane over +-3 std of the codes z: (n, k), centred on their mean."""
        return cls(z.mean(axis=0), z.std(axis=0), (-3.0, 3.0), " std of its codes")

    def codes(self, g):
        """The codes z: (m, k) at the plane's coordinates g: (m, k)."""
        return self.centre + g * self.scale

    def coordinates(self, z):
        """The plane's coordinates of the codes z: (m, k); codes(coordinates(z)) is z."""
        return (z - self.centre) / self.scale


@dataclasses.dataclass
class Fitted:
    """A method fitted to the training images: everything `measure` and the figures read of it.
    Arrays are float64 NumPy, on the host: n test images, N training images, D pixels, k = code size."""

    method: Method
    z_test: np.ndarray  # (n, k) the test images' codes (the VAE's: mu)
    z_train: np.ndarray  # (N, k)
    x_hat: np.ndarray  # (n, D) the test images reconstructed
    train_mse: float  # test_mse's convention, over the training images
    decode: Callable  # codes (m, k) -> images (m, D)
    plane: Plane  # the square of its code plane that manifolds.png draws
    subspace: np.ndarray  # (D, k) columns spanning its k-dimensional subspace of pixel space
    seconds: float  # to fit it and read its codes


def decoder_row_space(model, decode, z_test):
    """A linear decoder's subspace: x_hat = z @ W_dec + b lies in the row space of W_dec: (k, D).
    Returns W_dec^T: (D, k)."""
    return to_numpy(model.params["decoder.0.W"]).T.astype(np.float64)


def tangent_space_at_mean_code(model, decode, z_test):
    """A curved decoder's nearest plane: the one it is tangent to at the mean test code,
    spanned by the columns of the Jacobian dx_hat/dz there: (D, k)."""
    return decoder_jacobian(decode, z_test.mean(axis=0))


def lab_model(kind):
    """The `build` of the lab's model `kind` (a ModelKind key: "ae", "vae"), with the comparison's
    code size and hidden layers."""
    return lambda c, data, rng: build_model(lab_config(model=kind, latent_dim=c.latent_dim, hidden=c.hidden), data, rng)


PCA = Method("pca", "PCA")  # the reference every other method is measured against
LINEAR_AE = TrainedMethod(
    "linear_ae", "linear AE",
    build=lambda c, data, rng: AutoEncoder(data.input_dim, latent_dim=c.latent_dim, linear=True, x_mean=data.mean_image,
                                           rng=rng),  # x_mean: its output bias starts at PCA's centre
    lr=lambda c: c.linear_lr,
    # Any invertible map of z can be undone by the decoder: like PCA's, its plane is drawn in std units.
    plane_in_std=True, subspace=decoder_row_space)
AE = TrainedMethod("ae", "AE (ReLU)", interpolated=True, build=lab_model("ae"), lr=lambda c: c.lr, plane_in_std=False,
                 subspace=tangent_space_at_mean_code)
VAE = TrainedMethod("vae", "VAE", interpolated=True, build=lab_model("vae"), lr=lambda c: c.lr, plane_in_std=False,
                  subspace=tangent_space_at_mean_code)
AUTOENCODERS = (LINEAR_AE, AE, VAE)
METHODS = (PCA, *AUTOENCODERS)


# ------------------------------------------------------------------------------ fitting


def on_host(fn, x_u8, scale):
    """fn (a model's code or reconstruct) over all of x_u8: (N, D) uint8, 1000 images at a time, as float64 NumPy."""
    return to_numpy(apply_in_batches(fn, x_u8, 1000, scale)).astype(np.float64)


def host_function(fn, xp):
    """fn (a model's decode or reconstruct) as a function from float64 NumPy arrays to float64 NumPy arrays."""
    return lambda a: to_numpy(fn(to_backend(a.astype(np.float32), xp))).astype(np.float64)


def fit_pca_method(data, k):
    """PCA of data's training images with k components, as a Fitted record."""
    began = time.perf_counter()
    x_train = data.x_train.astype(np.float32) * np.float32(data.scale)  # (N, D)
    x_test = data.x_test.astype(np.float64) * data.scale
    pca = fit_pca(x_train, k)
    z_test = pca.transform(x_test)
    std = np.sqrt(pca.explained_variance_)  # of each component's training codes: the plane in those units
    return Fitted(PCA, z_test=z_test, z_train=pca.transform(x_train), x_hat=pca.inverse_transform(z_test),
                  train_mse=reconstruction_mse(lambda x: pca.inverse_transform(pca.transform(x)), data.x_train,
                                               data.scale),
                  decode=pca.inverse_transform, plane=Plane(0.0, std, (-3.0, 3.0), " std of its codes"),
                  subspace=pca.components_.T,  # (D, k), orthonormal columns
                  seconds=time.perf_counter() - began)


def train_autoencoder(method, model, data, config, rng, log=print_now, log_every=1, show_progress=False):
    """`model` (method.build's) trained by Adam on data's training images at method.lr(config), the
    step shrinking by config.decay every epoch after the first decay_from of them, read as a Fitted
    record; its loss logged after epoch 1 and every `log_every` epochs."""
    began, xp = time.perf_counter(), rng.xp
    x_train_u8, x_test_u8 = to_backend(data.x_train, xp), to_backend(data.x_test, xp)

    optimizer = Adam(model.params, lr=method.lr(config))

    def decay(epoch):  # Adam's step, before each epoch
        if epoch > config.decay_from * config.epochs:
            optimizer.lr *= config.decay

    for epoch in fit(model, optimizer, x_train_u8, config.batch_size, data.scale, rng, epochs=config.epochs,
                     before_epoch=decay, show_progress=show_progress):
        if epoch.number == 1 or epoch.number % log_every == 0:
            log(f"{method.key}: epoch {epoch.number}/{config.epochs}  train loss {epoch.means['loss']:.3f}")
    z_test = on_host(model.code, x_test_u8, data.scale)  # the VAE's code: mu, without noise
    decode = host_function(model.decode, xp)
    return Fitted(method, z_test=z_test, z_train=on_host(model.code, x_train_u8, data.scale),
                  x_hat=on_host(model.reconstruct, x_test_u8, data.scale),
                  train_mse=reconstruction_mse(host_function(model.reconstruct, xp), data.x_train, data.scale),
                  decode=decode, plane=Plane.over_spread(z_test) if method.plane_in_std else Plane(),
                  subspace=method.subspace(model, decode, z_test), seconds=time.perf_counter() - began)


# ------------------------------------------------------------------------------ measuring


def measure(fitted, reference, data):
    """fitted's entry of results.json, against the reference (PCA): the numbers of the module docstring."""
    x_test = data.x_test.astype(np.float64) * data.scale
    mse, reference_mse = test_mse(fitted.x_hat, x_test), test_mse(reference.x_hat, x_test)
    entry = {"test_mse": mse, "mse_ratio_to_pca": mse / reference_mse, "train_mse": fitted.train_mse,
             "train_mse_ratio_to_pca": fitted.train_mse / reference.train_mse, "seconds": fitted.seconds}
    V, k = fitted.subspace, fitted.subspace.shape[1]
    if fitted is not reference:  # its angles to itself are 0 by definition
        entry["principal_angles_deg"] = principal_angles_deg(V, reference.subspace).tolist()
    entry["decoder_angles_deg"] = pairwise_angles_deg(V)
    if k == 2:
        entry["decoder_angle_deg"] = entry["decoder_angles_deg"][0]
    entry["decoder_norms"] = np.linalg.norm(V, axis=0).tolist()
    entry["code_std"] = fitted.z_test.std(axis=0).tolist()  # the VAE's prior asks for 1
    entry["knn_accuracy"] = knn_accuracy(fitted.z_train, data.y_train, fitted.z_test, data.y_test)
    if k == 2:  # a plane that can be drawn
        entry["codes_in_plane"] = fraction_inside(fitted.plane.coordinates(fitted.z_test), fitted.plane.extent)
        entry["code_fill"] = code_fill(fitted.z_test)
    return entry


def compare(config, out, log=print_now, show_progress=False, explorer=True):
    """Fit the four methods, measure them, write results.json, results.md and the figures to `out`;
    if `explorer`, also explorer_<key>.html for each autoencoder (explorer/page.py)."""
    start = time.perf_counter()
    xp = get_backend(config.backend)
    data = load_dataset(config.dataset, config.data_dir)
    k = config.latent_dim
    if k > data.input_dim:
        raise UsageError(f"--latent-dim {k} is larger than the {data.input_dim} pixels of {data.name}")
    prepare_out(out)  # only once the run can start, so that bad input leaves no empty folder

    pca = fit_pca_method(data, k)
    log(f"pca: done ({time.perf_counter() - start:.0f} s)")
    rng = Generator(config.seed, xp)
    # Every model is drawn before any is trained: its initial weights depend on the seed alone,
    # not on how many steps the models before it took.
    models = [method.build(config, data, rng) for method in AUTOENCODERS]
    fitted = [pca, *(train_autoencoder(method, model, data, config, rng, log=log, show_progress=show_progress)
                     for method, model in zip(AUTOENCODERS, models))]

    results = {"config": dataclasses.asdict(config), "versions": versions(),
               "methods": {f.method.key: measure(f, reference=pca, data=data) for f in fitted}}
    results["seconds"] = time.perf_counter() - start
    write_results(results, out)
    write_figures(data, fitted, out)
    if explorer:
        write_explorers(data, fitted[1:], models, results, config, out, log)
    return results


# ------------------------------------------------------------------------------ writing


def versions():
    return {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
            "scikit-learn": sklearn.__version__, "matplotlib": matplotlib.__version__}


def comparison_table(results):
    """The results as a Markdown table, one row per method."""
    labels = {method.key: method.label for method in METHODS}
    rows = ["| method | test MSE per image | ratio to PCA | principal angles to PCA (deg) "
            "| angles between decoder directions (deg) | 5-NN accuracy | codes in drawn plane | code fill |",
            "|---|---|---|---|---|---|---|---|"]
    for key, r in results["methods"].items():
        angles = ", ".join(f"{a:.2f}" for a in r.get("principal_angles_deg", [])) or "0 (itself)"
        between = ", ".join(f"{a:.1f}" for a in r["decoder_angles_deg"]) or "-"
        inside, fill = (f"{r[name]:.2f}" if name in r else "-" for name in ("codes_in_plane", "code_fill"))
        rows.append(f"| {labels[key]} | {r['test_mse']:.3f} | {r['mse_ratio_to_pca']:.4f} | {angles} | {between} "
                    f"| {r['knn_accuracy']:.3f} | {inside} | {fill} |")
    return "\n".join(rows)


def write_results(results, out):
    write_json(f"{out}/results.json", results)
    c = results["config"]
    text = (f"# PCA, linear AE, AE and VAE on {c['dataset']}, k = {c['latent_dim']}\n\n"
            f"{comparison_table(results)}\n\n"
            "Test MSE: squared error summed over pixels, averaged over test images. Principal angles:\n"
            "between each method's k-dimensional subspace of pixel space and PCA's top-k subspace\n"
            "(the linear AE: the row space of its decoder weights; the AE and the VAE: the span of\n"
            "the decoder's Jacobian at the mean test code, the plane the decoder is tangent to there).\n"
            "Decoder directions: the angles between those k spanning vectors (PCA's are orthogonal).\n"
            "5-NN accuracy: how often the 5 training codes nearest a test image's code vote for its class.\n"
            "Codes in drawn plane (k = 2): the fraction of test codes inside the square drawn in manifolds.png.\n"
            "Code fill (k = 2): with the test codes whitened (mean 0, covariance I), the fraction of a 21 x 21\n"
            "grid over [-2, 2]^2 with a code within one step (0.2): 1 without gaps between the codes.\n\n"
            # The lab's claim in one number: on its own training set PCA cannot be beaten by a linear map.
            f"On the training set, where PCA is exactly the best rank-k linear map, the linear AE's MSE is\n"
            f"{results['methods'][LINEAR_AE.key]['train_mse_ratio_to_pca']:.6f} times PCA's.\n\n"
            f"{c['epochs']} epochs per trained model; the whole comparison took {results['seconds']:.0f} s.\n")
    write_text(f"{out}/results.md", text)


def write_explorers(data, fitted, models, results, config, out, log=print_now):
    """explorer_<key>.html of each trained model (Fitted records and their models, in order), from the
    codes it was measured on; a 2-D code's square is the one manifolds.png draws, in the model's own codes."""
    for f, model in zip(fitted, models):
        lo, hi = f.plane.extent
        centre, scale = (np.broadcast_to(a, (f.z_test.shape[1],)) for a in (f.plane.centre, f.plane.scale))
        square = [(float(c + lo * s), float(c + hi * s)) for c, s in zip(centre, scale)]  # drawn for a 2-D code only
        write_explorer(f"{out}/explorer_{f.method.key}.html", model, data, f.z_test, name=f.method.label,
                       epochs=config.epochs, test_loss=results["methods"][f.method.key]["test_mse"],
                       loss_label="test MSE", square=square,
                       square_label=f"manifolds.png's [{lo:g}, {hi:g}]²{f.plane.unit}", log=log)


def write_figures(data, fitted, out):
    """embeddings.png, reconstructions.png, manifolds.png (k = 2) and interpolations.png of the Fitted records."""
    k = fitted[0].z_test.shape[1]
    save_embeddings({f.method.label: f.z_test for f in fitted}, data.y_test, data.class_names,
                          f"{out}/embeddings.png", title=f"{data.name} test set, {k}-D codes of each method")
    n_show = 12
    rows = {"test image": data.x_test[:n_show] * data.scale,
            **{f.method.label: np.clip(f.x_hat[:n_show], 0.0, 1.0) for f in fitted}}
    save_image_rows(rows, data.image_shape, f"{out}/reconstructions.png")
    if k == 2:
        planes = {}
        for f in fitted:
            lo, hi = f.plane.extent
            images = f.decode(f.plane.codes(latent_grid(GRID, f.plane.extent)))
            planes[f"{f.method.label}, z in [{lo:g}, {hi:g}]^2{f.plane.unit}"] = (np.clip(images, 0.0, 1.0),
                                                                                  f.plane.extent)
        save_manifolds(planes, data.image_shape, f"{out}/manifolds.png")
    # The straight line between two test images' codes, decoded: what "a regular latent space" means.
    i, j = (int(np.flatnonzero(data.y_test == c)[0]) for c in INTERPOLATE_CLASSES)
    x_i, x_j = (data.x_test[n] * data.scale for n in (i, j))
    rows = {"pixels": line_between(x_i, x_j, INTERPOLATION_STEPS),  # the straight line in pixel space: a cross-fade
            **{f.method.label: np.clip(f.decode(line_between(f.z_test[i], f.z_test[j], INTERPOLATION_STEPS)), 0.0, 1.0)
               for f in fitted if f.method.interpolated}}
    save_image_rows(rows, data.image_shape, f"{out}/interpolations.png",
                          title=f"From a {data.class_names[INTERPOLATE_CLASSES[0]]} to a "
                                f"{data.class_names[INTERPOLATE_CLASSES[1]]}: the straight line between their codes")
