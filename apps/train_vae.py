"""train_vae.py: the lab's variational autoencoder (Part Two), trained, drawn and measured.

The run itself (epochs, checkpoints, resuming, Ctrl-C) is lab/run.py; the model is
models/vae.py. What is the VAE's own: its builder, its --beta flag, the figure only a
generative model can draw (new images decoded from the prior), and, with
--log-likelihood, the number a VAE paper reports: log p(x) on the test set
(models/likelihood.py).
"""

import os

from lab import plots, run
from lab.train import minibatches
from models import VAE
from models.likelihood import DECODERS, bits_per_dim, importance_weighted_bound
from nn import Generator
from nn.backend import get_backend, to_backend, to_numpy


def build_model(config, data, rng):
    return VAE(data.input_dim, config.hidden, config.latent_dim, loss=config.loss, beta=config.beta,
               init=config.init, x_mean=data.mean_image, rng=rng)


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
    """samples.png: 128 images decoded from z ~ N(0, I), the lab's "data augmentation";
    and, if asked for, the log-likelihood bounds, printed and added to metrics.json."""
    xp = get_backend(config.backend)
    samples = to_numpy(model.sample(128, Generator(config.seed + 2, xp)))
    plots.save_samples(samples, data.image_shape, os.path.join(out, "samples.png"),
                       title="VAE: new images from z ~ N(0, I)")
    if config.log_likelihood:
        estimates = test_log_likelihood(model, data, config.log_likelihood, Generator(config.seed + 3, xp))
        print(f"log p(x) on the {data.x_test.shape[0]} test images, decoder {DECODERS[config.loss]}:")
        for K, e in estimates.items():
            print(f"  K = {K:5d}  {e['nats']:10.2f} nats per image  {e['bits_per_dim']:7.4f} bits per pixel"
                  + ("  (the ELBO)" if K == 1 else ""))
        run.add_metrics(out, log_likelihood={"decoder": DECODERS[config.loss], "test_images": data.x_test.shape[0],
                                             "bounds": {str(K): e for K, e in estimates.items()}})


def main(argv=None):
    parser = run.build_parser("train_vae.py", "Train the lab's VAE and write its figures.", "vae")
    return run.main(parser, "vae", build_model, finish, argv)
