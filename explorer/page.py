"""explorer.html: one self-contained page that runs a VAE's or an autoencoder's encoder and decoder.

`page_text` makes the page; lab/plots.write_explorer writes it beside a run's figures.

Pick one of the test images embedded in the page, or draw one, and see its code: a VAE's q(z|x),
mu and std, as ellipses at 1 and 2 std on the plane of a 2-D code or as bars beside the prior's
for a larger one; a draw of eps ~ N(0, I), z = mu + std * eps, decoded beside the reconstruction
from mu; and the image's KL and reconstruction error, in the training loss's units. Decode any
code: under the pointer on the plane (the test set's codes coloured by class), or with a slider
per dimension, ordered by KL (the autoencoder's, having none, by variance).

The model runs in the page, in plain JavaScript, from its own weights embedded as little-endian
base64 (explorer/page.html, filled in here; explorer/model.js, the layers of nn/ read beside
them, which the tests load alone in node; explorer/page.js, the page). The weights are float32
when they take at most F32_ROOM of base64, else rounded to float16: the lab's VAE (0.8 M weights)
is float16, the conv VAE (0.09 M) float32. The test images (uint8) fill what the rest leaves of
PAGE_BUDGET, spread over the codes (`covering_subset`). No network, no framework, no server.
"""

import base64
import html
import json
import os
import re

import matplotlib
import numpy as np

from models import VAE, AutoEncoder
from models.conv import AsImages
from nn import Conv2d, ConvTranspose2d, Dense, LeakyReLU, ReLU, Reshape, Sigmoid, Tanh, kl_per_dimension
from nn.backend import namespace, to_backend, to_numpy

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATE = os.path.join(HERE, "page.html")
SCRIPTS = {"model_script": "model.js", "page_script": "page.js"}  # template field: file
TAB10 = matplotlib.colormaps["tab10"]  # the classes' colours, as in the run's figures (lab/plots.py)
SQUARE = ((-4.0, 4.0), (-4.0, 4.0))  # (z1 range, z2 range): the plane of the lab's figures, manifold.png
PAGE_BUDGET = 2_900_000  # bytes: the test images fill what the weights and the codes leave (under 3 MB)
F32_ROOM = 1_500_000  # bytes of base64 the weights may take as float32 (281 k weights); more: float16
JS_LAYERS = (Dense, Conv2d, ConvTranspose2d, Reshape, ReLU, LeakyReLU, Sigmoid, Tanh)  # model.js's LAYERS


def base64_of(a, dtype):
    """An array's values as little-endian `dtype` ("<f4", "<f2", "u1") bytes in base64, row-major."""
    return base64.b64encode(np.ascontiguousarray(to_numpy(a), dtype=dtype).tobytes()).decode("ascii")


def page_type(layer):
    """The name of `layer`'s class in model.js; None where it has none. AsImages with no
    condition is a Reshape there: rows to (1, H, W) images, the same numbers in the same order."""
    if isinstance(layer, AsImages):
        return "Reshape" if layer.condition_dim == 0 else None
    return type(layer).__name__ if type(layer) in JS_LAYERS else None


def layer_record(layer, x_shape, y_shape, dtype):
    """What model.js builds `layer` from, its weights as base64 of dtype.
    x_shape, y_shape: one example's input and output shapes (a convolution's (C, H, W))."""
    record = {"type": page_type(layer), **{k: base64_of(v, dtype) for k, v in layer.params.items()}}
    if record["type"] == "Reshape":
        record["shape"] = list(y_shape)
    if isinstance(layer, LeakyReLU):
        record["alpha"] = layer.alpha
    if isinstance(layer, Dense):
        record.update(in_features=layer.in_features, out_features=layer.out_features)
    if isinstance(layer, (Conv2d, ConvTranspose2d)):
        record.update(in_channels=layer.in_channels, out_channels=layer.out_channels, kernel_size=layer.kernel_size,
                      stride=layer.stride, padding=layer.padding, height=x_shape[1], width=x_shape[2])
    return record


def parts(model):
    """(encoder layers, mu head, logvar head, decoder layers); an autoencoder has no heads: its encoder
    ends in its code."""
    heads = (model.mu_head, model.logvar_head) if isinstance(model, VAE) else (None, None)
    return model.encoder.layers, *heads, model.decoder.layers


def networks(model, dtype):
    """The page's records of the model's layers, {"encoder", "mu", "logvar", "decoder"}, traced with
    one zero image through the model itself; and the text of its sizes, "Encoder 784-512-2, decoder 2-512-784"."""
    encoder, mu_head, logvar_head, decoder = parts(model)
    W = decoder[0].params["W"]  # both architectures' decoders start with a Dense that reads the code

    def traced(layers, x):
        records, sizes = [], ["x".join(map(str, x.shape[1:]))]
        for layer in layers:
            y = layer.forward(x)
            records.append(layer_record(layer, x.shape[1:], y.shape[1:], dtype))
            if layer.params:
                sizes.append("x".join(map(str, y.shape[1:])))
            x = y
        return records, x, "-".join(sizes)

    decoded, x_hat, decoder_sizes = traced(decoder, namespace(W).zeros((1, W.shape[0]), dtype=W.dtype))
    encoded, h, encoder_sizes = traced(encoder, namespace(W).zeros_like(x_hat))
    heads = [traced([head], h)[0][0] if head else None for head in (mu_head, logvar_head)]
    if mu_head:
        encoder_sizes += f"-{W.shape[0]}"
    return {"encoder": encoded, "mu": heads[0], "logvar": heads[1], "decoder": decoded}, \
        f"Encoder {encoder_sizes}, decoder {decoder_sizes}"


def why_no_page(model):
    """The reason the page cannot show this model, as one line; None when it can."""
    if type(model) not in (VAE, AutoEncoder):
        return f"no explorer.html: the page shows a VAE or an autoencoder, not a {type(model).__name__}"
    encoder, _, _, decoder = parts(model)
    for layer in (*encoder, *decoder):
        if page_type(layer) is None:
            return f"no explorer.html: the page's JavaScript has no {layer!r} layer"
    return None


def code_statistics(model, data, z):
    """(order, kl, extent) of the test codes z: (n, J). kl: (J,) a VAE's mean KL per dimension over the
    test images (the dimensions it uses carry it), None for an autoencoder; order: the dimensions by kl,
    largest first (an autoencoder's by variance); extent: (J, 2), a slider's range: the codes' mean
    +- 4 std, and for a VAE at least [-4, 4], its prior's."""
    lo, hi = z.mean(axis=0) - 4 * z.std(axis=0), z.mean(axis=0) + 4 * z.std(axis=0)
    if not isinstance(model, VAE):
        return np.argsort(-z.var(axis=0), kind="stable"), None, np.stack([lo, hi], axis=1)
    xp = namespace(model.mu_head.params["W"])
    x = data.x_test * np.float32(data.scale)
    logvar = np.concatenate([to_numpy(model.encode(to_backend(x[i:i + 1000], xp))[1]) for i in range(0, len(x), 1000)])
    kl = kl_per_dimension(z.astype(np.float64), logvar.astype(np.float64))[0]
    return np.argsort(-kl, kind="stable"), kl, np.stack([np.minimum(lo, -4.0), np.maximum(hi, 4.0)], axis=1)


def covering_subset(z, m):
    """Indices (ascending) of at most m of the codes z: (n, d), spread over all of them: the first code
    in each occupied cell of the finest grid of G cells a side over their bounding box that has at most
    m occupied cells. Wherever there are codes, one of the chosen lies within a cell or two."""
    n = len(z)
    if n <= m:
        return np.arange(n)
    lo, span = z.min(axis=0), np.ptp(z, axis=0) + 1e-12

    def first_in_cells(G):
        cell = np.minimum(((z - lo) / span * G).astype(np.int64), G - 1)  # (n, d)
        _, first = np.unique(cell @ G ** np.arange(z.shape[1]), return_index=True)
        return np.sort(first)

    chosen = np.arange(0)
    for G in range(1, m + 1):
        finer = first_in_cells(G)
        if len(finer) > m:
            break
        chosen = finer
    return chosen


def matplotlib_hex(rgba):
    return "#" + "".join(f"{round(255 * c):02x}" for c in rgba[:3])


def render(data_json, fields):
    """The page: explorer/page.html with its {{field}}s filled, in one pass (a field's text is never read again)."""
    def read(name):
        with open(os.path.join(HERE, name), encoding="utf-8") as f:
            return f.read()
    # Inside <script>, "</" could end the element early; "<\/" is the same JSON string.
    values = {**{k: html.escape(v) for k, v in fields.items()}, "model_json": data_json.replace("</", "<\\/"),
              **{field: read(name) for field, name in SCRIPTS.items()}}
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], read(TEMPLATE))


def page_text(model, data, z, *, name, epochs, test_loss, loss_label="test loss", square=SQUARE,
              square_label="[-4, 4]² of manifold.png"):
    """The explorer page of `model` (a VAE or an AutoEncoder for which `why_no_page` has no reason), as text.

    z: (n, J) NumPy, the codes of data's test images (the VAE's: mu), already computed by the caller.
    name, epochs, test_loss (per image; None if not measured), loss_label: what the page's heading says.
    square: ((z1 lo, hi), (z2 lo, hi)), for a 2-D code the square of the run's figures, in its own codes.
    """
    z = np.asarray(z, dtype=np.float64)
    n, J = z.shape
    dtype = "<f4" if sum(int(np.prod(p.shape)) for p in model.params.values()) * 16 / 3 <= F32_ROOM else "<f2"
    layers, sizes = networks(model, dtype)
    order, kl, extent = code_statistics(model, data, z)
    loss = f"{loss_label} {test_loss:.2f} per image" if test_loss is not None else "not evaluated"
    output = "identity" if model.recon_loss.linear else "sigmoid"
    plane = f" {n} test codes, coloured by class" + ("; dashed: the prior N(0, I) at 1σ, 2σ, 3σ." if kl is not None
                                                      else ".")
    fields = {
        "title": f"{name} on {data.name}: latent-space explorer",
        "heading": f"{name} on {data.name}: its {J}-D code, encoded and decoded in this page",
        "about": f"{epochs} epochs, {loss}. {sizes}, {output} output, {model.recon_loss.loss} loss; weights "
                 f"{'float32' if dtype == '<f4' else 'rounded to float16, to keep the page small'}."
                 + (plane if J == 2 else ""),
    }
    data_json = {
        "name": name, "dataset": data.name, "epochs": epochs, "image_shape": list(data.image_shape),
        "class_names": list(data.class_names), "colours": [matplotlib_hex(TAB10(y % 10))
                                                           for y in range(len(data.class_names))],
        "latent_dim": J, "loss": model.recon_loss.loss, "beta": getattr(model, "beta", None),
        "free_bits": getattr(model, "free_bits", 0.0),
        "x_logvar": float(to_numpy(model.recon_loss.params["x_logvar"])[0]) if model.recon_loss.params else None,
        "output": output, "weights": dtype, **layers,
        "order": order.tolist(), "kl": None if kl is None else kl.tolist(), "extent": extent.tolist(),
        "square": [list(map(float, r)) for r in square], "square_label": square_label,
        "codes": base64_of(z, "<f4") if J == 2 else None, "labels": base64_of(data.y_test, "u1"),
    }
    D = data.x_test.shape[1]

    def page(images):
        data_json["images"] = {"index": images.tolist(), "scale": data.scale,
                               "pixels": base64_of(data.x_test[images], "u1")}
        note = f"Pick one of the {len(images)} test images embedded" + (
            " (all of them)" if len(images) == n else f" (of {n}, spread over the codes, to keep the page small)")
        return render(json.dumps(data_json), {**fields, "images_note": note})

    # The images get what the rest leaves of the budget: each its base64 (4 bytes for 3) and its index.
    room = PAGE_BUDGET - len(page(np.arange(0)).encode())
    return page(covering_subset(z[:, order[:2]], max(0, int(room / (4 * D / 3 + 7)))))
