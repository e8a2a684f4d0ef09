"""explorer.html: one self-contained page to move through a 2-D latent space and watch the decoder draw it.

The page (lab/explorer.html, filled in here) shows the test set's codes coloured by class, the
square of the lab's figures and, for a VAE, the prior's 1-, 2- and 3-sigma circles; the image
the decoder draws at the pointer, with the nearest test image beside it; and, between the last
two points clicked, the straight line decoded as a strip of images. The decoder runs in the page
(lab/explorer.js, Part 1: nn/layers.py's and nn/conv.py's forward in plain JavaScript, read
beside them), from the
model's own weights embedded as little-endian float32 in base64: decode(z) in the browser's
console equals NumPy's model.decode(z) to about 1e-6. No network, no framework, no server.

What is embedded, for the lab's VAE (2 -> 512 -> 784, 10000 test codes): the decoder's 0.4 M
weights (2.15 MB of base64; the conv VAE's decoder, 2 -> 64x7x7 -> 32x14x14 -> 1x28x28, has 43 k), every test code and label (0.12 MB), and as many test images
(uint8) as fit under PAGE_BUDGET: all of them for digits, for a 784-pixel dataset a subset spread
over the codes (`covering_subset`), among which the page finds "the nearest test image".

A code that is not 2-D gets no page, and one printed line saying why: a plane is what the page
draws, and a slider per further dimension would explore a space the lab's figures do not show.
"""

import base64
import html
import json
import os
import re

import numpy as np

from models import VAE
from nn import ConvTranspose2d, Dense, LeakyReLU, ReLU, Reshape, Sigmoid, Tanh
from nn.backend import namespace, to_numpy

from . import plots
from .files import atomic_write

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATE, SCRIPT = os.path.join(HERE, "explorer.html"), os.path.join(HERE, "explorer.js")
SQUARE = ((-4.0, 4.0), (-4.0, 4.0))  # (z1 range, z2 range): the plane of the lab's figures, manifold.png
PAGE_BUDGET = 2_450_000  # bytes: the test images fill what the decoder and the codes leave of it (target 2.5 MB)
STRIP_STEPS = 10  # images on the line between two pins, as in interpolations.png
PARAMETER_FREE = {ReLU: "ReLU", Sigmoid: "Sigmoid", Tanh: "Tanh"}  # the layers explorer.js has, beside Dense


def float32_base64(a):
    """An array's values as little-endian float32 bytes, in base64 (row-major): what explorer.js's float32sOf reads."""
    return base64.b64encode(np.ascontiguousarray(to_numpy(a), dtype="<f4").tobytes()).decode("ascii")


def layer_record(layer, x_shape):
    """The page's record of one decoder layer: its type and what explorer.js needs to build it;
    None for a layer the page's JavaScript does not have. x_shape: the layer's input, one example's
    shape (a ConvTranspose2d's is (in, H, W): the page's layer needs H and W)."""
    if isinstance(layer, Dense):
        return {"type": "Dense", "in_features": layer.in_features, "out_features": layer.out_features,
                "W": float32_base64(layer.params["W"]), "b": float32_base64(layer.params["b"])}
    if isinstance(layer, ConvTranspose2d):
        return {"type": "ConvTranspose2d", "in_channels": layer.in_channels, "out_channels": layer.out_channels,
                "kernel_size": layer.kernel_size, "stride": layer.stride, "padding": layer.padding,
                "height": x_shape[1], "width": x_shape[2],
                "W": float32_base64(layer.params["W"]), "b": float32_base64(layer.params["b"])}
    if isinstance(layer, Reshape):
        return {"type": "Reshape", "shape": list(layer.shape)}
    if type(layer) is LeakyReLU:
        return {"type": "LeakyReLU", "alpha": layer.alpha}
    if type(layer) in PARAMETER_FREE:
        return {"type": PARAMETER_FREE[type(layer)]}
    return None


def decoder_records(model):
    """[(layer_record, the layer's output shape for one example)] of model.decoder's layers, in
    order: the shapes are those of one code, the origin, decoded by the model itself."""
    first = next(layer for layer in model.decoder.layers if isinstance(layer, Dense))  # reads the code
    W = first.params["W"]
    x = namespace(W).zeros((1, first.in_features), dtype=W.dtype)
    records = []
    for layer in model.decoder.layers:
        record = layer_record(layer, tuple(x.shape[1:]))
        x = layer.forward(x)
        records.append((record, tuple(x.shape[1:])))
    return records


def why_no_page(model, z):
    """The reason the page cannot show this model, as one line; None when it can.
    z: (n, k) the test codes."""
    if z.shape[1] != 2:
        return (f"no explorer.html: the code is {z.shape[1]}-D, and the page draws the plane of a 2-D code "
                "(--latent-dim 2)")
    first = next((layer for layer in model.decoder.layers if isinstance(layer, Dense)), None)
    if first is None or first.in_features != 2:
        return "no explorer.html: the decoder reads more than the 2-D code"
    for layer, (record, _) in zip(model.decoder.layers, decoder_records(model)):
        if record is None:
            return f"no explorer.html: the page's JavaScript has no {type(layer).__name__} layer"
    return None


def covering_subset(z, m):
    """Indices (ascending) of at most m of the codes z: (n, 2), spread over all of them: the first
    code in each occupied cell of the finest G x G grid over their bounding box that has at most
    m occupied cells. Wherever there are codes, one of the chosen lies within a cell or two."""
    n = len(z)
    if n <= m:
        return np.arange(n)
    lo, span = z.min(axis=0), np.ptp(z, axis=0) + 1e-12

    def first_in_cells(G):
        cell = np.minimum(((z - lo) / span * G).astype(np.int64), G - 1)  # (n, 2) column, row
        _, first = np.unique(cell[:, 0] * G + cell[:, 1], return_index=True)
        return np.sort(first)

    chosen = np.arange(0)
    for G in range(1, m + 1):
        finer = first_in_cells(G)
        if len(finer) > m:
            break
        chosen = finer
    return chosen


def page_data(model, data, z, *, name, epochs, test_loss, loss_label, square, square_label, images):
    """The JSON the page reads (explorer.js, MODEL): everything about the model and its codes.
    images: the indices of the test images whose pixels are embedded."""
    n_classes = len(data.class_names)
    return {
        "name": name, "dataset": data.name, "epochs": epochs, "test_loss": test_loss, "loss_label": loss_label,
        "image_shape": list(data.image_shape), "class_names": list(data.class_names),
        "colours": [matplotlib_hex(plots.TAB10(y % 10)) for y in range(n_classes)],  # latent_scatter.png's
        "prior": isinstance(model, VAE), "square": [list(map(float, r)) for r in square], "square_label": square_label,
        "strip_steps": STRIP_STEPS,
        "decoder": [record for record, _ in decoder_records(model)],
        "output": "identity" if model.recon_loss.linear else "sigmoid",
        "codes": float32_base64(z), "labels": base64.b64encode(data.y_test.astype(np.uint8).tobytes()).decode("ascii"),
        "images": {"index": [int(i) for i in images], "scale": data.scale,
                   "pixels": base64.b64encode(np.ascontiguousarray(data.x_test[images], dtype=np.uint8)
                                              .tobytes()).decode("ascii")},
    }


def matplotlib_hex(rgba):
    return "#" + "".join(f"{round(255 * c):02x}" for c in rgba[:3])


def render(data_json, fields):
    """The page: lab/explorer.html with its {{field}}s filled, in one pass (a field's text is never read again)."""
    with open(TEMPLATE, encoding="utf-8") as f:
        template = f.read()
    with open(SCRIPT, encoding="utf-8") as f:
        script = f.read()
    # Inside <script>, "</" could end the element early; "<\/" is the same JSON string.
    values = {**{k: html.escape(v) for k, v in fields.items()}, "model_json": data_json.replace("</", "<\\/"),
              "script": script}
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], template)


def write_explorer(path, model, data, z, *, name, epochs, test_loss, loss_label="test loss", square=SQUARE,
                   square_label="[-4, 4]² of manifold.png", log=print):
    """Write the explorer page of `model` to `path`; returns path, or None (and logs one line why)
    when the page cannot show it (`why_no_page`).

    z: (n, 2) NumPy, the codes of data's test images (the VAE's: mu), already computed by the caller.
    name, epochs, test_loss (per image; None if not measured), loss_label: what the page's heading says.
    square: ((z1 lo, hi), (z2 lo, hi)), the square of the run's figures, in the model's own codes.
    """
    z = np.asarray(z, dtype=np.float64)
    reason = why_no_page(model, z)
    if reason:
        log(reason)
        return None
    loss = f"{loss_label} {test_loss:.2f} per image" if test_loss is not None else "not evaluated"
    sizes = "-".join("x".join(map(str, shape)) for (record, shape) in decoder_records(model)
                     if record["type"] in ("Dense", "ConvTranspose2d"))
    fields = {
        "title": f"{name} on {data.name}: latent-space explorer",
        "heading": f"{name} on {data.name}: its 2-D latent space",
        "about": f"{epochs} epochs, {loss}. Decoder 2-{sizes}, {'identity' if model.recon_loss.linear else 'sigmoid'} "
                 f"output, run in this page. {len(z)} test codes, coloured by class"
                 + ("; dashed: the prior N(0, I) at 1σ, 2σ, 3σ." if isinstance(model, VAE) else "."),
    }
    D = data.x_test.shape[1]

    def page(images):
        note = (f"The nearest test image is searched among the {len(images)} test images embedded"
                + (" (all of them)." if len(images) == len(z) else
                   f" (of {len(z)}: one per cell of a grid over the codes, to keep the page small)."))
        return render(json.dumps(page_data(model, data, z, name=name, epochs=epochs, test_loss=test_loss,
                                           loss_label=loss_label, square=square, square_label=square_label,
                                           images=images)),
                      {**fields, "images_note": note})

    # base64 takes 4 bytes for 3: the images get what the rest leaves of the budget.
    room = (PAGE_BUDGET - len(page(np.arange(0)).encode())) * 3 // 4
    text = page(covering_subset(z, max(0, room // D)))
    with atomic_write(path) as f:  # bytes: the page is UTF-8 whatever the locale
        f.write(text.encode("utf-8"))
    return path
