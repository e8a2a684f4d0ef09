"""train_vae.py: the lab's variational autoencoder (Part Two), trained, drawn and measured.

The run itself (epochs, checkpoints, resuming, Ctrl-C) is lab/run.py; the model is
models/vae.py, built by lab/config.py. What is the VAE's own: its --beta flag, the figure only a
generative model can draw (new images decoded from the prior), and, with
--log-likelihood, the number a VAE paper reports: log p(x) on the test set
(models/likelihood.py).
"""

import os

from lab import codes, plots, run
from lab.train import minibatches
from lab.cli import bounded, number_list
from models.likelihood import DECODERS, bits_per_dim, importance_weighted_bound
from nn import Generator
from nn.backend import get_backend, to_backend, to_numpy


def add_flags(parser, defaults):
    """The VAE's own flags."""
    parser.add_argument("--beta", type=bounded(float, 0), help=f"KL weight, >= 0 (default: {defaults.beta})")
    parser.add_argument("--kl-warmup", metavar="EPOCHS", type=bounded(int, 0),
                        help="raise the KL weight linearly from 0 in the first epoch to --beta after EPOCHS epochs, "
                             "fewer than --epochs (default: 0, none)")
    parser.add_argument("--free-bits", metavar="NATS", type=bounded(float, 0),
                        help="a floor on each latent dimension's KL in the loss: below it a dimension is not pulled "
                             "to the prior (default: 0, none)")
    parser.add_argument("--log-likelihood", metavar="K[,K...]", type=number_list("sample counts", "1,10,100,1000"),
                        help="after training, estimate log p(x) on the test set with the importance-weighted bound "
                             "for each K (1 is the ELBO); into metrics.json")


def test_log_likelihood(model, data, Ks, rng, batch_size=100):
    """{K: {"nats", "bits_per_dim"}}: the importance-weighted bound L_K on log p(x), averaged
    over the test images, for each K."""
    x_test = to_backend(data.x_test, rng.xp)
    estimates = {}
    for K in Ks:
        total = sum(rng.xp.sum(importance_weighted_bound(model, batch, K, rng))
                    for batch in minibatches(x_test, batch_size, data.scale, model.dtype))
        nats = float(total) / data.x_test.shape[0]
        estimates[K] = {"nats": nats, "bits_per_dim": bits_per_dim(nats, data.input_dim)}
    return estimates


test_log_likelihood.__test__ = False  # a metric, not a test, whatever pytest guesses from its name


def finish(model, data, config, out):
    """samples.png: 128 images decoded from z ~ N(0, I), the lab's "data augmentation"; what the code
    carries (lab/codes.py: rate, distortion, active units, the KL of each dimension; traversals.png
    for a code of more than two dimensions); and, if asked for, the log-likelihood bounds, printed
    and added to metrics.json."""
    xp = get_backend(config.backend)
    samples = to_numpy(model.sample(128, Generator(config.seed + 2, xp)))
    plots.save_samples(samples, data.image_shape, os.path.join(out, "samples.png"),
                       title="VAE: new images from z ~ N(0, I)")
    codes.report_code(model, data, config, out)
    if config.log_likelihood:
        estimates = test_log_likelihood(model, data, config.log_likelihood, Generator(config.seed + 3, xp))
        print(f"log p(x) on the {data.x_test.shape[0]} test images, decoder {DECODERS[config.loss]}:")
        for K, e in estimates.items():
            print(f"  K = {K:5d}  {e['nats']:10.2f} nats per image  {e['bits_per_dim']:7.4f} bits per pixel"
                  + ("  (the ELBO)" if K == 1 else ""))
        run.add_metrics(out, log_likelihood={"decoder": DECODERS[config.loss], "test_images": data.x_test.shape[0],
                                             "bounds": {str(K): e for K, e in estimates.items()}})


def main(argv=None):
    parser = run.build_parser("train_vae.py", "Train the lab's VAE and write its figures.", add_flags)
    return run.main(parser, "vae", finish, argv)
