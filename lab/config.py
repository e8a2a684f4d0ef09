"""The lab's models, defined once: a run's settings (TrainConfig), the kinds of model a run can
train (one ModelKind record each), and the one builder every script, the benchmark, the
studies and the notebooks use (`build_model`).

TrainConfig's defaults are the lab's Part Two: the 784-512-2 VAE on summed squared error
plus KL, 20 epochs of Adam at lr 5e-4 in batches of 128. `lab_config()` is that run (LAB,
unchanged); `build_model(lab_config(), data, rng)` is the lab's VAE, wherever it is needed.
"""

import dataclasses
from collections.abc import Callable

from models import VAE, AutoEncoder
from models.base import named
from models.conv import CHANNELS


@dataclasses.dataclass
class TrainConfig:
    """A run's settings. The defaults reproduce the lab (Part Two)."""

    model: str = "vae"  # a key of MODEL_KINDS: "vae" or "ae"
    dataset: str = "fashion-mnist"  # the lab's: harder than MNIST, same format
    data_dir: str | None = None  # where the IDX files are, if not in a usual place
    epochs: int = 20  # the lab's
    batch_size: int = 128  # the lab's
    lr: float = 5e-4  # the lab's Adam step size
    latent_dim: int = 2  # the lab's: a plane that can be drawn (manifold.png); 16 or more reconstructs sharper
    hidden: tuple = (512,)  # the lab's 784-512-latent MLP
    arch: str = "mlp"  # the lab's; "conv": convolutions of `channels` (models/conv.py), `hidden` unused
    channels: tuple = CHANNELS  # arch "conv": the two convolutions' output channels
    loss: str = "mse"  # the lab's summed squared error; "bce" treats pixels as Bernoulli probabilities,
    #                    "gaussian" learns the decoder's variance (VAE; Part Four)
    beta: float = 1.0  # weight of the KL term (VAE); 1 gives the ELBO
    kl_warmup: int = 0  # VAE: epochs over which the KL weight rises from 0 to beta (models/vae.py, warmed_up)
    free_bits: float = 0.0  # VAE: nats of KL each latent dimension keeps for free (nn/losses.py, free_bits_kl)
    init: str = "he-xavier"  # or "uniform", PyTorch's; the decoder's first biases start in +-1 either way (CODE_BIAS)
    log_likelihood: tuple = ()  # VAE: after training, bound log p(x) with these numbers K of samples per image
    seed: int = 0  # initial weights, data order and the VAE's noise
    backend: str = "numpy"  # "cupy" for the GPU

    # Settings that fix the shapes of the parameters: a checkpoint only fits a run that shares them.
    SHAPE_SETTINGS = ("model", "dataset", "latent_dim", "hidden", "arch", "channels", "loss")

    @property
    def kind(self):
        """The ModelKind record of `model`."""
        return model_kind(self.model)


@dataclasses.dataclass(frozen=True)
class ModelKind:
    """One kind of model a training run can make: everything the shared runner needs to know of it.

    key: its name in a config and a checkpoint; name: in titles and messages; script: the
    script that trains it (what a message tells the user to run); build(config, data, rng).
    """

    key: str
    name: str
    script: str
    build: Callable


def shapes(config, data):
    """The settings every model reads of its architecture: arch, hidden widths or channels, and the
    data's image shape (H, W) (None for data that are not images)."""
    return dict(arch=config.arch, channels=config.channels, image_shape=getattr(data, "image_shape", None))


MODEL_KINDS = (
    ModelKind("vae", "VAE", "train_vae.py",
              lambda c, data, rng: VAE(data.input_dim, c.hidden, c.latent_dim, loss=c.loss, beta=c.beta, init=c.init,
                                       free_bits=c.free_bits, x_mean=data.mean_image, rng=rng, **shapes(c, data))),
    ModelKind("ae", "Autoencoder", "train_ae.py",
              lambda c, data, rng: AutoEncoder(data.input_dim, c.hidden, c.latent_dim, loss=c.loss, init=c.init,
                                               x_mean=data.mean_image, rng=rng, **shapes(c, data))),
)


def describe(config, data):
    """The network in one phrase, for titles and logs: widths from the data to the code,
    "VAE 784-512-2" (an MLP) or "VAE conv 28x28-32-64-2" (channels of each convolution)."""
    arch = "" if config.arch == "mlp" else f" {config.arch}"
    size = data.input_dim if config.arch == "mlp" else "x".join(map(str, data.image_shape))
    widths = config.hidden if config.arch == "mlp" else config.channels
    return f"{config.kind.name}{arch} {size}-{'-'.join(map(str, widths))}-{config.latent_dim}"


def model_kind(key):
    """The ModelKind called `key`."""
    return named(MODEL_KINDS, key, "model")


def build_model(config, data, rng):
    """The model `config` describes, for `data` (its input size and mean image), drawn from `rng`."""
    return config.kind.build(config, data, rng)


def lab_config(**changes):
    """The lab's run (Part Two), with `changes`: TrainConfig's defaults are the lab's."""
    return TrainConfig(**changes)


LAB = lab_config()  # the lab's run, whose settings the studies take as their defaults: read it, never change it


def config_from(cls, given, defaults=None, **fixed):
    """A `cls` (a dataclass) from `given` (parsed flags, a dict): the entries that name one of its
    fields and are not None (a flag not given), over `defaults` (a dict: a dataset's or a quick
    mode's own settings, under the flags), then `fixed`. The one way from a command line to a config."""
    fields = {f.name for f in dataclasses.fields(cls)}
    chosen = {k: v for k, v in given.items() if k in fields and v is not None}
    return cls(**{**(defaults or {}), **chosen, **fixed})
