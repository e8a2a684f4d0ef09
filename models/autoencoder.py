"""A deterministic autoencoder: x -> z = encoder(x) -> x_hat = decoder(z)."""

from nn import Dense, Generator, Sequential
from nn.backend import TRAIN_DTYPE

from .base import CODE_BIAS, Model, Reconstruction, layer_init
from .conv import CHANNELS, architecture


class AutoEncoder(Model):
    """Encoder and decoder MLPs around a `latent_dim` code, trained on reconstruction alone.

    x: (N, input_dim) -> z: (N, latent_dim) -> x_hat: (N, input_dim).
    Encoder: input_dim -> hidden... -> latent_dim (a linear code, no activation on z);
    decoder: latent_dim -> reversed(hidden)... -> input_dim -> sigmoid.
    `linear=True`: one Dense each way and no nonlinearity at all, x_hat = (x We + be) Wd + bd,
    the autoencoder that spans the same subspace as PCA's top `latent_dim` components.
    init: "he-xavier" or "uniform" (models/base.py, `mlp`; the decoder's first biases are
    CODE_BIAS's either way); x_mean: the mean training image, for `start_at`.
    arch: "mlp", or "conv" (models/conv.py: convolutions with `channels` over images of
    `image_shape`, then one Dense to the code; `hidden` is then unused).
    """

    def __init__(self, input_dim, hidden=(512,), latent_dim=2, activation="relu", linear=False,
                 loss="mse", init="he-xavier", x_mean=None, rng=None, dtype=TRAIN_DTYPE,
                 arch="mlp", channels=CHANNELS, image_shape=None):
        rng = rng or Generator(0)
        if loss == "gaussian":
            raise ValueError("loss 'gaussian' learns the decoder's variance, which balances reconstruction against "
                             "a VAE's KL term; an autoencoder has none (a variance would only rescale its loss): "
                             "use loss 'mse' or 'bce'")
        if linear and arch != "mlp":
            raise ValueError(f"a linear autoencoder is one Dense each way: it has no arch {arch!r}; use arch 'mlp'")
        hidden = () if linear else tuple(hidden)
        build = architecture(arch)
        shapes = dict(input_dim=input_dim, hidden=hidden, channels=tuple(channels), image_shape=image_shape,
                      activation=activation, init=init, rng=rng, dtype=dtype)
        trunk, width = build.encoder(**shapes)
        code = Dense(width, latent_dim, rng, init=layer_init(init, False), dtype=dtype)  # a linear code
        self.encoder = Sequential(*trunk.layers, code)
        self.encoder.layers[0].input_grad = False  # nothing upstream of x needs dL/dx
        self.decoder = build.decoder(**shapes, code_dim=latent_dim,
                                     first_bias=None if linear else CODE_BIAS)  # no ReLU to place in the linear one
        self.recon_loss = Reconstruction(loss, linear)
        self.loss, self.linear, self.init, self.arch = loss, linear, init, arch
        self.settings = ("arch", "loss", "linear", "init")
        self.parts = {"encoder": self.encoder, "decoder": self.decoder}
        self.collect_params()
        if x_mean is not None:
            self.start_at(x_mean)

    def code(self, x):
        """z: (N, latent_dim)."""
        return self.encoder.forward(x)

    def decode(self, z):
        """x_hat: (N, input_dim)."""
        return self.recon_loss.output(self.decoder.forward(z))

    def forward(self, x, rng=None):
        """The loss terms of a batch x: (N, input_dim), as 0-d arrays: {"loss", "recon"}.

        rng: unused, an autoencoder draws no noise; accepted so that one loop trains both models.
        """
        recon = self.recon_loss.forward(self.decoder.forward(self.encoder.forward(x)), x)
        return {"loss": recon, "recon": recon}

    def backward(self):
        """Fill self.grads with dloss/dparam for the batch of the last forward.

        Each part's backward takes the gradient of its output and returns that of its input,
        filling its layers' grads: recon_loss.backward() takes none and returns dL/dlogits.
        """
        self.encoder.backward(self.decoder.backward(self.recon_loss.backward()))
