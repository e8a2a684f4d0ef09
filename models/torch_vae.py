"""The lab's VAE once more, in PyTorch with autograd: the reference bench.py and quality.py measure against.

Read it beside models/vae.py. The forward pass is the same, line for line: trunk, the two
heads, z = mu + std * eps with std = exp(0.5 * logvar), decoder, summed squared error
plus the closed-form KL, both per image. What is missing is the whole of VAE.backward():
`loss.backward()` records the forward pass and runs the chain rule through it for us,
reparameterisation gradient included. The initialisation is PyTorch's default for
nn.Linear (weights and biases uniform in +-1/sqrt(fan_in)).

Needs PyTorch, which is optional: nothing else in the project imports this module.
"""

import torch
from torch import nn


def mlp(sizes):
    """Linear layers sizes[0] -> sizes[1] -> ..., a ReLU after each: models/base.py's mlp."""
    return [layer for n_in, n_out in zip(sizes, sizes[1:]) for layer in (nn.Linear(n_in, n_out), nn.ReLU())]


class TorchVAE(nn.Module):
    """input_dim -> hidden... -> (mu, logvar) in R^latent_dim; latent_dim -> reversed(hidden)... -> input_dim,
    sigmoid. The widths are a TrainConfig's (lab/config.py), as models.VAE's are."""

    def __init__(self, input_dim=784, hidden=(512,), latent_dim=2):
        super().__init__()
        self.encoder = nn.Sequential(*mlp((input_dim, *hidden)))
        self.mu = nn.Linear(hidden[-1], latent_dim)
        self.logvar = nn.Linear(hidden[-1], latent_dim)
        self.decoder = nn.Sequential(*mlp((latent_dim, *reversed(hidden), input_dim))[:-1], nn.Sigmoid())

    def forward(self, x, eps=None):
        """The loss terms of a batch x: (N, input_dim), as models.VAE.forward returns them.

        eps: (N, latent_dim) noise; when None it is drawn from torch's global generator.
        """
        h = self.encoder(x)
        mu, logvar = self.mu(h), self.logvar(h)
        std = torch.exp(0.5 * logvar)
        z = mu + std * (torch.randn_like(std) if eps is None else eps)
        x_hat = self.decoder(z)
        n = x.shape[0]
        recon = ((x_hat - x) ** 2).sum() / n
        kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum() / n
        return {"loss": recon + kl, "recon": recon, "kl": kl}


class TorchConvVAE(TorchVAE):
    """models/conv.py's convolutional VAE in PyTorch: rows x: (N, H W) -> (N, 1, H, W) ->
    Conv2d(1, c1) -> ReLU -> Conv2d(c1, c2) -> ReLU -> flatten -> (mu, logvar); z -> Linear ->
    ReLU -> (N, c2, H/4, W/4) -> ConvTranspose2d(c2, c1) -> ReLU -> ConvTranspose2d(c1, 1) ->
    sigmoid -> rows. Kernel 4, stride 2, padding 1 throughout; forward is TorchVAE's."""

    def __init__(self, image_shape=(28, 28), channels=(32, 64), latent_dim=2):
        nn.Module.__init__(self)
        (H, W), grid = image_shape, (channels[-1], image_shape[0] // 2 ** len(channels),
                                     image_shape[1] // 2 ** len(channels))
        width = grid[0] * grid[1] * grid[2]
        convs = [layer for c_in, c_out in zip((1, *channels), channels)
                 for layer in (nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU())]
        self.encoder = nn.Sequential(nn.Unflatten(1, (1, H, W)), *convs, nn.Flatten())
        self.mu = nn.Linear(width, latent_dim)
        self.logvar = nn.Linear(width, latent_dim)
        widths = (*reversed(channels), 1)
        deconvs = [layer for c_in, c_out in zip(widths, widths[1:])
                   for layer in (nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU())][:-1]
        self.decoder = nn.Sequential(nn.Linear(latent_dim, width), nn.ReLU(), nn.Unflatten(1, grid), *deconvs,
                                     nn.Flatten(), nn.Sigmoid())


def twin(config, input_dim, image_shape):
    """The PyTorch twin of the model a TrainConfig (lab/config.py) describes: its arch and widths."""
    if config.arch == "conv":
        return TorchConvVAE(image_shape, config.channels, config.latent_dim)
    return TorchVAE(input_dim, config.hidden, config.latent_dim)


def train_epoch(model, optimizer, x, batch_size):
    """One pass over x: (N, D), a float tensor on the model's device, in a random order:
    the mean loss per image. lab/train.py's train_epoch, with autograd doing backward()."""
    order = torch.randperm(x.shape[0], device=x.device)
    total = torch.zeros((), device=x.device)
    for start in range(0, x.shape[0], batch_size):
        batch = x[order[start:start + batch_size]]
        loss = model(batch)["loss"]
        optimizer.zero_grad()  # autograd accumulates into .grad; our backward overwrites instead
        loss.backward()
        optimizer.step()
        total += loss.detach() * batch.shape[0]
    return total.item() / x.shape[0]


@torch.no_grad()
def evaluate(model, x, batch_size, generator):
    """Mean loss per image over x: (N, D), in order, the noise drawn from `generator`
    (a torch.Generator): lab/train.py's evaluate."""
    total = 0.0
    for start in range(0, x.shape[0], batch_size):
        batch = x[start:start + batch_size]
        eps = torch.randn((batch.shape[0], model.mu.out_features), generator=generator, device=generator.device)
        total += model(batch, eps=eps)["loss"].item() * batch.shape[0]
    return total / x.shape[0]
