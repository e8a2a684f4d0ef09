"""explorer.html (lab/explorer.py, lab/explorer.js): the page's JavaScript decoder against NumPy's,
in node; the page in a real browser (headless Chromium), where the pixels it drew are NumPy's;
and what is written when: the flags, a code that is not 2-D, the size of the lab's page."""

import base64
import json
import os
import re
import shutil
import subprocess
import time

import numpy as np
import pytest
from matplotlib import image as mpimage

from apps import train_ae, train_vae
from lab import explorer
from studies.part_one import default_config, compare
from lab.data import Dataset, load_dataset
from models import VAE, AutoEncoder
from nn import Generator
from nn.backend import get_backend, to_backend, to_numpy

CI = os.environ.get("CI") == "true"
BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
DEBIAN_BROWSERS = ("/usr/lib/chromium/chromium-headless-shell", "/usr/lib/chromium/chromium")
CODES = [[0.0, 0.0], [0.5, -1.2], [-2.0, 1.5], [3.9, -3.9], [-7.0, 6.0]]  # inside, at the edge of, and off the square
DIGITS_FLAGS = ["--dataset", "digits", "--hidden", "32", "--epochs", "1", "--no-progress"]
HARNESS = r"""
// Load the page's own JavaScript and data as the browser would, then print decode() at the codes given.
const fs = require("fs"), vm = require("vm");
const [page, codes] = process.argv.slice(2);
const html = fs.readFileSync(page, "utf8");
const grab = (re) => { const m = html.match(re); if (!m) throw new Error(`no ${re} in the page`); return m[1]; };
const data = grab(/<script type="application\/json" id="model">([\s\S]*?)<\/script>/);
const script = grab(/<script id="explorer">([\s\S]*?)<\/script>/);
const page_document = { getElementById: (id) => (id === "model" ? { textContent: data } : null) };
const context = vm.createContext({ atob, console, document: page_document });  // no window: Part 1 only
vm.runInContext(script, context);
process.stdout.write(JSON.stringify(JSON.parse(codes).map((z) => context.decode(z))));
"""


def tool(names, paths=(), install=""):
    """The first of the programs `names` in PATH (or of `paths`); else skip, saying what to install."""
    for name in names:
        if shutil.which(name):
            return shutil.which(name)
    for path in paths:
        if os.access(path, os.X_OK):
            return path
    pytest.skip(f"{names[0]} is not installed here ({install})")


def node():
    """node, which the CI machines have: its absence fails the test under CI=true, else skips it."""
    if CI and not shutil.which("node"):
        pytest.fail("CI=true and node is not installed: the page's decoder cannot be checked")
    return tool(("node",), install="apt-get install nodejs")


def browser():
    """A headless Chromium; the test skips, saying so, where none could be installed (.ci/run installs one)."""
    return tool(BROWSERS, DEBIAN_BROWSERS, install="apt-get install chromium-headless-shell; .ci/run does")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


# Untrained models with random weights: the decoder's first biases are drawn in +-1 (CODE_BIAS), so its
# images vary with the code as a trained one's do. One of each kind of layer explorer.js has.
MODELS = {
    "vae": lambda d: VAE(d.input_dim, (32,), 2, x_mean=d.mean_image, rng=Generator(0)),
    "ae": lambda d: AutoEncoder(d.input_dim, (32, 16), 2, x_mean=d.mean_image, rng=Generator(1)),
    "linear_ae": lambda d: AutoEncoder(d.input_dim, latent_dim=2, linear=True, x_mean=d.mean_image, rng=Generator(2)),
    "tanh_ae": lambda d: AutoEncoder(d.input_dim, (32,), 2, activation="tanh", rng=Generator(3)),
    "leaky_relu_vae": lambda d: VAE(d.input_dim, (32,), 2, activation="leaky_relu", rng=Generator(4)),
    # Dense -> Reshape -> ConvTranspose2d (kernel 4, stride 2, padding 1) twice: 2 -> 4x2x2 -> 3x4x4 -> 1x8x8
    "conv_vae": lambda d: VAE(d.input_dim, latent_dim=2, arch="conv", channels=(3, 4), image_shape=d.image_shape,
                              x_mean=d.mean_image, rng=Generator(5)),
    "conv_ae": lambda d: AutoEncoder(d.input_dim, latent_dim=2, arch="conv", channels=(3, 4),
                                     image_shape=d.image_shape, rng=Generator(6)),
}


def page_of(kind, data, path):
    """(model, the test codes, the page's path) for an untrained model of `kind`."""
    model = MODELS[kind](data)
    z = to_numpy(model.code(data.x_test * np.float32(data.scale)))  # (n, 2) float32
    assert explorer.write_explorer(path, model, data, z, name=kind, epochs=0, test_loss=None, log=print) == path
    return model, z, path


def numpy_decode(model, codes):
    return to_numpy(model.decode(np.asarray(codes, dtype=np.float32))).astype(np.float64)


def embedded(path):
    """The JSON the page reads."""
    text = open(path, encoding="utf-8").read()
    return json.loads(re.search(r'<script type="application/json" id="model">(.*?)</script>', text, re.S)[1])


# ------------------------------------------------------------------ the decoder, in node


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_the_pages_decoder_run_by_node_equals_numpys_decode(kind, digits, tmp_path):
    model, _, page = page_of(kind, digits, str(tmp_path / "explorer.html"))
    harness = tmp_path / "harness.js"
    harness.write_text(HARNESS)
    done = subprocess.run([node(), str(harness), page, json.dumps(CODES)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    images = np.array(json.loads(done.stdout))
    expected = numpy_decode(model, CODES)
    assert images.shape == expected.shape == (len(CODES), digits.input_dim)
    assert np.ptp(expected, axis=0).max() > 0.05, "the decoder should vary with the code for this test to mean much"
    np.testing.assert_allclose(images, expected, rtol=0, atol=1e-5)


# ------------------------------------------------------------------ the page, in a browser


def chromium(page, fragment, *flags):
    """Run headless Chromium on the page from file:// at `fragment`; its stdout."""
    done = subprocess.run([browser(), "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1200,760",
                           "--force-device-scale-factor=1", "--virtual-time-budget=5000", *flags,
                           f"file://{os.path.abspath(page)}#{fragment}"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def drawn(dom):
    """What the page says it drew: the <pre id="drawn"> JSON (the code, the gray levels, where)."""
    found = re.search(r'<pre id="drawn"[^>]*>(.*?)</pre>', dom, re.S)
    assert found and found[1], "the page drew nothing (a JavaScript error?)"
    return json.loads(found[1])


def expected_gray(model, z):
    return np.round(255 * np.clip(numpy_decode(model, [z])[0], 0.0, 1.0))


@pytest.mark.parametrize("kind", ["vae", "conv_vae"])
def test_the_page_in_chromium_draws_numpys_decoded_image_at_the_fragments_code(kind, digits, tmp_path):
    model, _, page = page_of(kind, digits, str(tmp_path / "explorer.html"))
    z = [0.5, -1.2]
    shown = drawn(chromium(page, "z=0.5,-1.2", "--dump-dom"))
    assert shown["z"] == z
    # The canvas's own pixels, read back by the page: NumPy's image to a gray level.
    np.testing.assert_allclose(shown["gray"], expected_gray(model, z), rtol=0, atol=1)
    # And on the screen: the centre of each image pixel in a screenshot, where the page says the canvas is.
    screenshot = tmp_path / "explorer.png"
    chromium(page, "z=0.5,-1.2&pins=-2,1.5;1.5,-1", f"--screenshot={screenshot}")
    picture = mpimage.imread(screenshot)[..., :3]  # (rows, columns, RGB) in [0, 1]
    H, W = digits.image_shape
    r = shown["rect"]
    rows = (r["top"] + (np.arange(H) + 0.5) * r["height"] / H).astype(int)
    cols = (r["left"] + (np.arange(W) + 0.5) * r["width"] / W).astype(int)
    on_screen = picture[rows[:, None], cols[None, :]]  # (H, W, RGB)
    np.testing.assert_allclose(on_screen * 255, np.repeat(expected_gray(model, z).reshape(H, W, 1), 3, axis=2),
                               rtol=0, atol=1.01)
    print(f"screenshot: {screenshot}")


def test_the_page_opens_at_the_code_and_the_pins_of_its_fragment(digits, tmp_path):
    _, _, page = page_of("ae", digits, str(tmp_path / "explorer.html"))
    dom = chromium(page, "z=-1.25,2&pins=0,0;1,-1;2,2", "--dump-dom")
    assert drawn(dom)["z"] == [-1.25, 2]
    strip = re.search(r'<div id="strip">(.*?)</div>', dom, re.S)[1]
    assert strip.count("<canvas") == explorer.STRIP_STEPS  # the line between the last two pins
    assert "From pin 2 (1.00, -1.00) to pin 3 (2.00, 2.00)" in dom
    # No fragment: the origin, the prior's mean.
    assert drawn(chromium(page, "", "--dump-dom"))["z"] == [0, 0]


# ------------------------------------------------------------------ what is written, and when


def test_a_conv_decoders_page_says_its_shapes(digits, tmp_path):
    _, _, page = page_of("conv_vae", digits, str(tmp_path / "explorer.html"))
    assert "Decoder 2-16-3x4x4-1x8x8, sigmoid output" in open(page, encoding="utf-8").read()
    assert [r["type"] for r in embedded(page)["decoder"]] == ["Dense", "ReLU", "Reshape", "ConvTranspose2d", "ReLU",
                                                              "ConvTranspose2d", "Reshape"]


def test_the_page_needs_no_network(digits, tmp_path):
    _, _, page = page_of("vae", digits, str(tmp_path / "explorer.html"))
    text = open(page, encoding="utf-8").read()
    assert not re.search(r"https?://|//cdn|\bsrc\s*=|<link|\bimport\s*\(|fetch\(", text)
    assert len(re.findall(r"<script", text)) == 2  # the data and the JavaScript, both inline


def lab_sized(n=10000, D=784, seed=0):
    """The lab's VAE (784-512-2, untrained) and a FashionMNIST-shaped test set of random pixels and codes."""
    rng = np.random.default_rng(seed)
    data = Dataset("fashion-mnist", x_train=np.zeros((1, D), np.uint8), y_train=np.zeros(1, np.int64),
                   x_test=rng.integers(0, 256, (n, D), dtype=np.uint8), y_test=rng.integers(0, 10, n),
                   scale=1 / 255, image_shape=(28, 28), class_names=tuple(f"class {y}" for y in range(10)))
    return VAE(D, (512,), 2, rng=Generator(seed)), data, rng.normal(size=(n, 2))


def test_the_lab_sized_page_is_under_2_5_mb_written_in_under_a_second(tmp_path):
    model, data, z = lab_sized()
    path = str(tmp_path / "explorer.html")
    start = time.perf_counter()
    explorer.write_explorer(path, model, data, z, name="VAE", epochs=20, test_loss=28.0)
    seconds = time.perf_counter() - start
    size = os.path.getsize(path)
    shown = len(embedded(path)["images"]["index"])
    print(f"lab-sized page: {size / 1e6:.2f} MB, {shown} test images embedded, written in {seconds:.2f} s")
    assert size < 2.5e6 and seconds < 1.0
    assert shown >= 100  # the budget leaves room for the nearest test images


def test_the_covering_subset_keeps_at_most_m_codes_spread_over_all_of_them():
    z = np.random.default_rng(0).uniform(-3, 3, (10000, 2))
    z = z[np.argsort(z[:, 0])]  # in order, as a test set sorted by class might be: its first m lie at one side
    chosen = explorer.covering_subset(z, 150)
    assert 100 <= len(chosen) <= 150 and np.all(np.diff(chosen) > 0)
    gaps = np.linalg.norm(z[:, None, :] - z[chosen][None, :, :], axis=2).min(axis=1)
    assert gaps.max() < 1.0  # within two cells of a 12 x 12 grid over a side of 6
    np.testing.assert_array_equal(explorer.covering_subset(z[:20], 150), np.arange(20))  # all, when they fit


def exit_status(main, argv):
    try:
        return main(argv)
    except SystemExit as exit_:
        return exit_.code


@pytest.mark.parametrize("script", [train_vae, train_ae], ids=["train_vae", "train_ae"])
def test_a_training_run_writes_explorer_html_and_no_explorer_writes_none(script, tmp_path):
    assert exit_status(script.main, [*DIGITS_FLAGS, "--out", str(tmp_path / "with")]) == 0
    page = embedded(tmp_path / "with" / "explorer.html")
    assert page["dataset"] == "digits" and page["epochs"] == 1 and page["prior"] == (script is train_vae)
    assert exit_status(script.main, [*DIGITS_FLAGS, "--out", str(tmp_path / "without"), "--no-explorer"]) == 0
    assert not (tmp_path / "without" / "explorer.html").exists()
    assert (tmp_path / "without" / "latent_scatter.png").exists()


def test_a_code_that_is_not_2d_writes_no_page_and_says_why_in_one_line(tmp_path, capsys):
    assert exit_status(train_vae.main, [*DIGITS_FLAGS, "--latent-dim", "3", "--out", str(tmp_path)]) == 0
    assert not (tmp_path / "explorer.html").exists()
    said = [line for line in capsys.readouterr().out.splitlines() if "explorer.html" in line]
    assert said == ["no explorer.html: the code is 3-D, and the page draws the plane of a 2-D code (--latent-dim 2)"]


def test_compare_writes_a_page_per_model_with_a_2d_code_and_its_square_of_manifolds_png(tmp_path):
    lines = []
    compare(default_config("digits", epochs=1), str(tmp_path / "k2"), log=lines.append)
    pages = {key: embedded(tmp_path / "k2" / f"explorer_{key}.html") for key in ("linear_ae", "ae", "vae")}
    assert pages["vae"]["prior"] and not pages["ae"]["prior"] and pages["linear_ae"]["output"] == "identity"
    assert pages["ae"]["square"] == [[-4, 4], [-4, 4]]
    z = np.frombuffer(base64.b64decode(pages["linear_ae"]["codes"]), "<f4").reshape(-1, 2)
    np.testing.assert_allclose(pages["linear_ae"]["square"], np.stack([z.mean(0) - 3 * z.std(0),
                                                                       z.mean(0) + 3 * z.std(0)], axis=1), rtol=1e-4)
    compare(default_config("digits", epochs=1), str(tmp_path / "none"), log=lines.append, explorer=False)
    assert not [f for f in os.listdir(tmp_path / "none") if f.startswith("explorer")]
    lines.clear()
    compare(default_config("digits", epochs=1, latent_dim=3), str(tmp_path / "k3"), log=lines.append)
    assert not [f for f in os.listdir(tmp_path / "k3") if f.startswith("explorer")]
    assert [line for line in lines if "explorer" in line] == [
        "no explorer.html: the code is 3-D, and the page draws the plane of a 2-D code (--latent-dim 2)"]


def test_the_weights_come_to_the_host_by_to_numpy_on_the_gpu_standin(gpu_standin, digits, tmp_path):
    xp = get_backend("cupy")
    model = VAE(digits.input_dim, (32,), 2, x_mean=digits.mean_image, rng=Generator(0, xp))
    z = to_numpy(model.code(to_backend(digits.x_test * np.float32(digits.scale), xp)))
    explorer.write_explorer(str(tmp_path / "explorer.html"), model, digits, z, name="VAE", epochs=0, test_loss=None)
    first = embedded(tmp_path / "explorer.html")["decoder"][0]
    W = np.frombuffer(base64.b64decode(first["W"]), "<f4").reshape(2, 32)
    np.testing.assert_array_equal(W, to_numpy(model.decoder.layers[0].params["W"]))
