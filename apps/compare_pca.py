"""compare_pca.py: Part One, measured: PCA, a linear autoencoder, a nonlinear one and a VAE, side by side.

The lab's claim: an autoencoder with one linear layer each way and a k-dimensional code,
trained on squared error, "performs as PCA does" -- it spans the subspace of the top k
principal components, though its directions need be neither orthogonal nor those
components themselves. Here the claim becomes numbers:

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

The subspace of the linear AE is the row space of its decoder weight W_dec (k, D), since
x_hat = z @ W_dec + b. A nonlinear decoder has no such plane; we take the plane it is
tangent to at the mean test code, spanned by the columns of its Jacobian dx_hat/dz there.
See docs/pca.md for why the linear AE lands on PCA's subspace.
"""

import argparse
import dataclasses
import platform
import time

import matplotlib
import numpy as np
import scipy
import sklearn

from lab import plots
from lab.cli import (ProgressBar, UsageError, add_common_flags, backend_name_from, bounded, default_out,
                     prepare_out, progress_wanted, run_main)
from lab.data import load_dataset
from lab.files import write_json, write_text
from lab.measures import (code_fill, decoder_jacobian, fit_pca, fraction_inside, knn_accuracy, line_between,
                          pairwise_angles_deg, principal_angles_deg, reconstruction_mse, test_mse)
from lab.train import apply_in_batches, train_epoch
from models import VAE, AutoEncoder
from nn import Adam, Generator
from nn.backend import get_backend, to_backend, to_numpy

METHODS = ("pca", "linear_ae", "ae", "vae")
LABELS = {"pca": "PCA", "linear_ae": "linear AE", "ae": "AE (ReLU)", "vae": "VAE"}
GRID = 21  # points a side of the decoded latent plane, as in the lab's figures
INTERPOLATE_CLASSES = (1, 9)  # interpolations.png walks from the first test image of one class to one of the other
INTERPOLATION_STEPS = 10


@dataclasses.dataclass
class CompareConfig:
    """The comparison's settings. The defaults converge on FashionMNIST in about 2 minutes."""

    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    latent_dim: int = 2  # the lab's: the plane of its figures
    epochs: int = 20  # for each trained model
    batch_size: int = 128  # the lab's
    lr: float = 5e-4  # the lab's, for the AE and the VAE
    linear_lr: float = 1e-3  # the linear AE's loss surface is smoother: a larger step is stable
    decay_from: float = 0.6  # after this fraction of the epochs, lr *= decay every epoch, so that
    decay: float = 0.7  # Adam's steps shrink and the weights settle instead of jittering around the optimum
    hidden: tuple = (512,)  # the nonlinear AE's and the VAE's hidden layer, as in the lab
    seed: int = 0
    backend: str = "numpy"


# digits has 1500 training images, 12 steps an epoch at the lab's batch size: more and shorter
# epochs with a larger step give the linear AE the steps it needs to settle, and its 64 pixels
# need no 512 hidden units. MNIST is FashionMNIST's size and shape: the defaults serve both.
DATASET_DEFAULTS = {"digits": {"epochs": 100, "batch_size": 64, "linear_lr": 1e-2, "hidden": (64,)}}


def default_config(dataset, **given):
    """CompareConfig for `dataset`: its own defaults where it has them, then the values given."""
    return CompareConfig(dataset=dataset, **{**DATASET_DEFAULTS.get(dataset, {}), **given})


def train(model, lr, x, scale, config, rng, log=None, show_progress=False):
    """Adam on `model` for config.epochs over x: (N, D) uint8, the learning rate decaying at the end."""
    optimizer = Adam(model.params, lr=lr)
    for epoch in range(1, config.epochs + 1):
        if epoch > config.decay_from * config.epochs:
            optimizer.lr *= config.decay
        with ProgressBar(show_progress, x.shape[0], desc=f"epoch {epoch}/{config.epochs}") as bar:
            means = train_epoch(model, optimizer, x, config.batch_size, scale, rng, epoch=epoch,
                                on_progress=lambda p, means: bar(p.done, **means))
        if log:
            log(epoch, means["loss"])


def compare(config, out, log=print, show_progress=False):
    """Fit the four methods, measure them, write results.json, results.md and the figures to `out`."""
    start = time.perf_counter()
    xp = get_backend(config.backend)
    data = load_dataset(config.dataset, config.data_dir)
    k = config.latent_dim
    if k > data.input_dim:
        raise UsageError(f"--latent-dim {k} is larger than the {data.input_dim} pixels of {data.name}")
    prepare_out(out)  # only once the run can start, so that bad input leaves no empty folder
    x_train_u8, x_test_u8 = to_backend(data.x_train, xp), to_backend(data.x_test, xp)
    x_test = data.x_test.astype(np.float64) * data.scale

    def on_host(fn, x_u8=x_test_u8):
        """fn applied to the whole test set (or x_u8) in batches, brought back as float64 NumPy."""
        return to_numpy(apply_in_batches(fn, x_u8, 1000, data.scale)).astype(np.float64)

    def decode_on_host(model):
        return lambda z: to_numpy(model.decode(to_backend(z.astype(np.float32), xp))).astype(np.float64)

    def reconstruct_on_host(model):
        return lambda x: to_numpy(model.reconstruct(to_backend(x.astype(np.float32), xp))).astype(np.float64)

    codes, train_codes, reconstructions, subspaces, decoders, extents = {}, {}, {}, {}, {}, {}
    train_mse = {}

    x_train = data.x_train.astype(np.float32) * np.float32(data.scale)
    pca = fit_pca(x_train, k)
    codes["pca"], train_codes["pca"] = pca.transform(x_test), pca.transform(x_train)
    reconstructions["pca"] = pca.inverse_transform(codes["pca"])
    train_mse["pca"] = reconstruction_mse(lambda x: pca.inverse_transform(pca.transform(x)), data.x_train, data.scale)
    subspaces["pca"] = pca.components_.T  # (D, k), orthonormal columns
    std = np.sqrt(pca.explained_variance_)
    decoders["pca"] = lambda g: pca.inverse_transform(g * std)  # the plane in units of each component's std
    extents["pca"] = (-3.0, 3.0)
    on_plane = {"pca": codes["pca"] / std}  # test codes in the coordinates of the drawn plane
    log(f"pca: done ({time.perf_counter() - start:.0f} s)")

    rng, mean = Generator(config.seed, xp), data.mean_image
    models = {
        "linear_ae": (AutoEncoder(data.input_dim, latent_dim=k, linear=True, x_mean=mean, rng=rng), config.linear_lr),
        "ae": (AutoEncoder(data.input_dim, config.hidden, k, x_mean=mean, rng=rng), config.lr),
        "vae": (VAE(data.input_dim, config.hidden, k, x_mean=mean, rng=rng), config.lr),
    }
    seconds = {"pca": time.perf_counter() - start}
    for method, (model, lr) in models.items():
        began = time.perf_counter()
        train(model, lr, x_train_u8, data.scale, config, rng, show_progress=show_progress,
              log=lambda epoch, loss, m=method: log(f"{m}: epoch {epoch}/{config.epochs}  train loss {loss:.3f}"))
        codes[method], train_codes[method] = on_host(model.code), on_host(model.code, x_train_u8)  # the VAE's: mu
        on_plane[method] = codes[method]
        reconstructions[method] = on_host(model.reconstruct)
        train_mse[method] = reconstruction_mse(reconstruct_on_host(model), data.x_train, data.scale)
        decoders[method] = decode_on_host(model)
        extents[method] = (-4.0, 4.0)  # the lab's figures
        seconds[method] = time.perf_counter() - began
    # The linear AE's code has no scale of its own (any invertible map of z can be undone by
    # the decoder), so like PCA's its plane is drawn over +-3 std of its codes.
    mean, spread = codes["linear_ae"].mean(axis=0), codes["linear_ae"].std(axis=0)
    decode_linear = decoders["linear_ae"]
    decoders["linear_ae"], extents["linear_ae"] = (lambda g: decode_linear(mean + g * spread)), (-3.0, 3.0)
    on_plane["linear_ae"] = (codes["linear_ae"] - mean) / spread
    # The linear AE's plane is the row space of its decoder weights; a nonlinear decoder's,
    # the span of its Jacobian at the mean code.
    subspaces["linear_ae"] = to_numpy(models["linear_ae"][0].params["decoder.0.W"]).T.astype(np.float64)
    for method in ("ae", "vae"):
        subspaces[method] = decoder_jacobian(decoders[method], codes[method].mean(axis=0))

    results = {"config": dataclasses.asdict(config), "versions": versions(), "methods": {}}
    pca_mse = test_mse(reconstructions["pca"], x_test)
    for method in METHODS:
        mse = test_mse(reconstructions[method], x_test)
        entry = {"test_mse": mse, "mse_ratio_to_pca": mse / pca_mse, "train_mse": train_mse[method],
                 "train_mse_ratio_to_pca": train_mse[method] / train_mse["pca"], "seconds": seconds[method]}
        if method != "pca":
            entry["principal_angles_deg"] = principal_angles_deg(subspaces[method], subspaces["pca"]).tolist()
        entry["decoder_angles_deg"] = pairwise_angles_deg(subspaces[method])
        if k == 2:
            entry["decoder_angle_deg"] = entry["decoder_angles_deg"][0]
        entry["decoder_norms"] = np.linalg.norm(subspaces[method], axis=0).tolist()
        entry["code_std"] = codes[method].std(axis=0).tolist()  # the VAE's prior asks for 1
        entry["knn_accuracy"] = knn_accuracy(train_codes[method], data.y_train, codes[method], data.y_test)
        if k == 2:
            entry["codes_in_plane"] = fraction_inside(on_plane[method], extents[method])
            entry["code_fill"] = code_fill(codes[method])
        results["methods"][method] = entry
    results["seconds"] = time.perf_counter() - start

    write_results(results, out)
    write_figures(data, codes, reconstructions, decoders, extents, k, out)
    return results


def versions():
    return {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
            "scikit-learn": sklearn.__version__, "matplotlib": matplotlib.__version__}


def results_table(results):
    """The results as a Markdown table."""
    rows = ["| method | test MSE per image | ratio to PCA | principal angles to PCA (deg) "
            "| angles between decoder directions (deg) | 5-NN accuracy | codes in drawn plane | code fill |",
            "|---|---|---|---|---|---|---|---|"]
    for method, r in results["methods"].items():
        angles = ", ".join(f"{a:.2f}" for a in r.get("principal_angles_deg", [])) or "0 (itself)"
        between = ", ".join(f"{a:.1f}" for a in r["decoder_angles_deg"]) or "-"
        inside, fill = (f"{r[key]:.2f}" if key in r else "-" for key in ("codes_in_plane", "code_fill"))
        rows.append(f"| {LABELS[method]} | {r['test_mse']:.3f} | {r['mse_ratio_to_pca']:.4f} | {angles} | {between} "
                    f"| {r['knn_accuracy']:.3f} | {inside} | {fill} |")
    return "\n".join(rows)


def write_results(results, out):
    write_json(f"{out}/results.json", results)
    c = results["config"]
    text = (f"# PCA, linear AE, AE and VAE on {c['dataset']}, k = {c['latent_dim']}\n\n"
            f"{results_table(results)}\n\n"
            "Test MSE: squared error summed over pixels, averaged over test images. Principal angles:\n"
            "between each method's k-dimensional subspace of pixel space and PCA's top-k subspace\n"
            "(the linear AE: the row space of its decoder weights; the AE and the VAE: the span of\n"
            "the decoder's Jacobian at the mean test code, the plane the decoder is tangent to there).\n"
            "Decoder directions: the angles between those k spanning vectors (PCA's are orthogonal).\n"
            "5-NN accuracy: how often the 5 training codes nearest a test image's code vote for its class.\n"
            "Codes in drawn plane (k = 2): the fraction of test codes inside the square drawn in manifolds.png.\n"
            "Code fill (k = 2): with the test codes whitened (mean 0, covariance I), the fraction of a 21 x 21\n"
            "grid over [-2, 2]^2 with a code within one step (0.2): 1 without gaps between the codes.\n\n"
            f"On the training set, where PCA is exactly the best rank-k linear map, the linear AE's MSE is\n"
            f"{results['methods']['linear_ae']['train_mse_ratio_to_pca']:.6f} times PCA's.\n\n"
            f"{c['epochs']} epochs per trained model; the whole comparison took {results['seconds']:.0f} s.\n")
    write_text(f"{out}/results.md", text)


def write_figures(data, codes, reconstructions, decoders, extents, k, out):
    names = {LABELS[m]: codes[m] for m in METHODS}
    plots.save_embeddings(names, data.y_test, data.class_names, f"{out}/embeddings.png",
                          title=f"{data.name} test set, {k}-D codes of each method")
    n_show = 12
    rows = {"test image": data.x_test[:n_show] * data.scale,
            **{LABELS[m]: np.clip(reconstructions[m][:n_show], 0.0, 1.0) for m in METHODS}}
    plots.save_image_rows(rows, data.image_shape, f"{out}/reconstructions.png")
    if k == 2:
        planes = {}
        for m in METHODS:
            extent = extents[m]
            unit = " std of its codes" if m in ("pca", "linear_ae") else ""
            label = f"{LABELS[m]}, z in [{extent[0]:g}, {extent[1]:g}]^2{unit}"
            planes[label] = (np.clip(decoders[m](plots.latent_grid(GRID, extent)), 0.0, 1.0), extent)
        plots.save_manifolds(planes, data.image_shape, f"{out}/manifolds.png")
    # The straight line between two test images' codes, decoded: what "a regular latent space" means.
    i, j = (int(np.flatnonzero(data.y_test == c)[0]) for c in INTERPOLATE_CLASSES)
    x_i, x_j = (data.x_test[n] * data.scale for n in (i, j))
    rows = {"pixels": line_between(x_i, x_j, INTERPOLATION_STEPS),  # the straight line in pixel space: a cross-fade
            **{LABELS[m]: np.clip(decoders[m](line_between(codes[m][i], codes[m][j], INTERPOLATION_STEPS)), 0.0, 1.0)
               for m in ("ae", "vae")}}
    plots.save_image_rows(rows, data.image_shape, f"{out}/interpolations.png",
                          title=f"From a {data.class_names[INTERPOLATE_CLASSES[0]]} to a "
                                f"{data.class_names[INTERPOLATE_CLASSES[1]]}: the straight line between their codes")


def main(argv=None):
    """compare_pca.py's entry point; exit statuses as in lab.cli.run_main."""
    d = CompareConfig()
    p = argparse.ArgumentParser(prog="compare_pca.py",
                                description="PCA, a linear AE, an AE and a VAE side by side: Part One, measured.")
    add_common_flags(p, d)
    p.add_argument("--latent-dim", type=bounded(int, 1), default=d.latent_dim,
                   help=f"k, from 1 to the number of pixels (default: {d.latent_dim})")
    p.add_argument("--epochs", type=bounded(int, 1),
                   help=f"per trained model (default: {d.epochs}; {DATASET_DEFAULTS['digits']['epochs']} on digits)")
    args = p.parse_args(argv)
    given = {k: v for k, v in vars(args).items() if k in ("epochs", "seed", "data_dir") and v is not None}
    config = default_config(args.dataset or d.dataset, latent_dim=args.latent_dim,
                            backend=backend_name_from(args.backend), **given)
    out = args.out or default_out(p.prog)

    def body():
        results = compare(config, out, show_progress=progress_wanted(args.no_progress))
        print()
        print(results_table(results))
        print(f"\n{results['seconds']:.0f} s; results and figures in {out}")

    return run_main(p, body)
