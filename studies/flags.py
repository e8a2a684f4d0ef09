"""The settings of the benchmark and the quality study (BenchConfig), and the flags they share.

The model and optimiser are not among the settings: they are the lab's (lab.config.LAB).
bench.py and quality.py add these flags to lab.cli's common ones.
"""

import argparse
import dataclasses

from models.conv import ARCHS

from lab.cli import bounded, number_list
from lab.config import LAB, lab_config
from .trainers import KINDS, kind_named
from .workers import usable_cores


@dataclasses.dataclass
class BenchConfig:
    """A benchmark's settings. The model and optimiser are not among them: they are the lab's."""

    dataset: str = LAB.dataset  # "digits" for a quick run
    data_dir: str | None = None
    epochs: int = 5  # measured epochs: the reported numbers are their medians
    warmup: int = 1  # epochs run first and not measured
    batch_size: int = LAB.batch_size
    threads: int = dataclasses.field(default_factory=usable_cores)  # BLAS and PyTorch threads, each kind
    backend: str = "numpy"  # "cupy": ours on the GPU, PyTorch on CUDA, cuBLAS for the limit
    arch: str = LAB.arch  # the lab's MLP, or "conv" (models/conv.py)
    channels: tuple = LAB.channels  # arch "conv": the convolutions' output channels
    latent_dim: int = LAB.latent_dim
    skip: tuple = ()  # keys of kinds not to run
    seed: int = 0

    @property
    def network(self):
        """What is measured, in a title: "the lab's VAE", or "the conv VAE (channels 32,64, latent 2)"."""
        if (self.arch, self.latent_dim) == (LAB.arch, LAB.latent_dim):
            return "the lab's VAE"
        widths = "" if self.arch == "mlp" else f"channels {','.join(map(str, self.channels))}, "
        return f"the {self.arch} VAE ({widths}latent {self.latent_dim})"

    def train_config(self):
        """The lab's TrainConfig, on this benchmark's data, batch size, seed and backend."""
        return lab_config(dataset=self.dataset, data_dir=self.data_dir, batch_size=self.batch_size, seed=self.seed,
                          backend=self.backend, arch=self.arch, channels=self.channels, latent_dim=self.latent_dim)


def add_flags(parser, defaults):
    """The flags the benchmark and the quality study share, beside lab.cli's common ones."""
    def kind_keys(text):
        keys = tuple(text.split(","))
        for key in keys:
            try:
                kind_named(key)
            except ValueError as err:
                raise argparse.ArgumentTypeError(str(err)) from None
        return keys

    parser.add_argument("--batch-size", type=bounded(int, 1), help=f"default: the lab's, {defaults.batch_size}")
    parser.add_argument("--threads", type=bounded(int, 1),
                        help=f"threads for BLAS and PyTorch (default: the {defaults.threads} cores this may use)")
    parser.add_argument("--arch", choices=ARCHS, help=f"the network (default: {defaults.arch}, the lab's)")
    parser.add_argument("--channels", type=number_list("channel counts", "32,64"),
                        help=f"--arch conv: the convolutions' channels (default: {','.join(map(str, defaults.channels))})")
    parser.add_argument("--latent-dim", type=bounded(int, 1), help=f"default: the lab's, {defaults.latent_dim}")
    parser.add_argument("--skip", metavar="KIND[,KIND]", type=kind_keys,
                        help=f"kinds not to run, of {', '.join(k.key for k in KINDS)} (say, --skip torch)")
