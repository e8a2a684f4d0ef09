"""explorer.html (explorer/page.py, model.js, page.js): the page's encoder, decoder and loss
terms against NumPy's, in node, which loads model.js alone; the page in a real browser (headless
Chromium, from file://): the ellipses of q(z|x) where NumPy's mu and std say, a slider's decoding and a drawn
image's code NumPy's; and what is written when: the flags, any latent size, the size of the lab's pages."""

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
from explorer import page as explorer_page
from lab.data import Dataset, load_dataset
from lab.plots import write_explorer
from models import VAE, AutoEncoder
from models.cvae import ConditionalVAE
from nn import Generator, gaussian_kl
from nn.backend import get_backend, to_backend, to_numpy
from studies.part_one import compare, default_config

CI = os.environ.get("CI") == "true"
BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
DEBIAN_BROWSERS = ("/usr/lib/chromium/chromium-headless-shell", "/usr/lib/chromium/chromium")
DIGITS_FLAGS = ["--dataset", "digits", "--hidden", "32", "--epochs", "1", "--no-progress"]
HARNESS = r"""
// Load the page's model.js alone (no document, no window) with the page's data, as the tests need it:
// encode at every embedded image, its loss terms at the first 20, decode at the codes given.
const fs = require("fs"), vm = require("vm");
const [page, codes] = process.argv.slice(2);
const html = fs.readFileSync(page, "utf8");
const grab = (id) => { const m = html.match(new RegExp(`<script[^>]* id="${id}">([\\s\\S]*?)</script>`));
                       if (!m) throw new Error(`no script ${id} in the page`); return m[1]; };
const M = JSON.parse(grab("model")), context = vm.createContext({ atob });
vm.runInContext(grab("explorer-model"), context);
const model = context.loadModel(M), D = M.image_shape[0] * M.image_shape[1];
const bytes = Buffer.from(M.images.pixels, "base64");
const images = M.images.index.map((_, s) => Array.from(bytes.subarray(s * D, (s + 1) * D), (v) => v * M.images.scale));
const encoded = images.map((x) => model.encode(x));
process.stdout.write(JSON.stringify({
  encoded, decoded: JSON.parse(codes).map((z) => model.decode(z)),
  recon: encoded.slice(0, 20).map((q, s) => model.recon(q.mu, images[s])),
  kl: M.logvar ? encoded.slice(0, 20).map((q) => model.kl(q.mu, q.logvar)) : null,
}));
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
        pytest.fail("CI=true and node is not installed: the page's model cannot be checked")
    return tool(("node",), install="apt-get install nodejs")


def browser():
    """A headless Chromium; the test skips, saying so, where none could be installed (.ci/run installs one)."""
    return tool(BROWSERS, DEBIAN_BROWSERS, install="apt-get install chromium-headless-shell; .ci/run does")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


# Untrained models with random weights (the decoder's first biases in +-1, CODE_BIAS, so that its images vary
# with the code; the VAEs' heads at full scale, so that mu and std vary with the image): every layer type the
# page's JavaScript has, both losses, both architectures, and codes of 1, 2, 3 and 5 dimensions.
MODELS = {
    "vae": lambda d: VAE(d.input_dim, (32,), 2, head_scale=1.0, x_mean=d.mean_image, rng=Generator(0)),
    "ae": lambda d: AutoEncoder(d.input_dim, (32, 16), 2, x_mean=d.mean_image, rng=Generator(1)),
    "linear_ae": lambda d: AutoEncoder(d.input_dim, latent_dim=2, linear=True, x_mean=d.mean_image, rng=Generator(2)),
    "tanh_ae_1d": lambda d: AutoEncoder(d.input_dim, (32,), 1, activation="tanh", rng=Generator(3)),
    "leaky_relu_bce_vae_5d": lambda d: VAE(d.input_dim, (32,), 5, loss="bce", activation="leaky_relu",
                                           head_scale=1.0, rng=Generator(4)),
    # AsImages, then Conv2d (kernel 4, stride 2, padding 1) twice: 8x8 -> 3x4x4 -> 4x2x2; the decoder back
    "conv_vae": lambda d: VAE(d.input_dim, latent_dim=2, arch="conv", channels=(3, 4), image_shape=d.image_shape,
                              head_scale=1.0, x_mean=d.mean_image, rng=Generator(5)),
    "conv_vae_3d": lambda d: VAE(d.input_dim, latent_dim=3, arch="conv", channels=(3, 4), image_shape=d.image_shape,
                                 head_scale=1.0, x_mean=d.mean_image, rng=Generator(6)),
    "conv_ae": lambda d: AutoEncoder(d.input_dim, latent_dim=2, arch="conv", channels=(3, 4),
                                     image_shape=d.image_shape, rng=Generator(7)),
    "gaussian_vae_3d": lambda d: learned_variance(VAE(d.input_dim, (32,), 3, loss="gaussian", head_scale=1.0,
                                                      x_mean=d.mean_image, rng=Generator(8))),
}


def learned_variance(model):
    """model with its decoder's variance moved from its start (1/2) to exp(-2.3), as training moves it."""
    model.params["likelihood.x_logvar"][...] = -2.3
    return model


def page_of(kind, data, path):
    """(model, the page's path) for an untrained model of `kind`."""
    model = MODELS[kind](data)
    z = to_numpy(model.code(data.x_test * np.float32(data.scale)))
    assert write_explorer(path, model, data, z, name=kind, epochs=0, test_loss=None, log=print) == path
    return model, path


def embedded(path):
    """The JSON the page reads."""
    text = open(path, encoding="utf-8").read()
    return json.loads(re.search(r'<script type="application/json" id="model">(.*?)</script>', text, re.S)[1])


def pixels_of(page, data):
    """(n, D) float32: the test images embedded in the page, in [0, 1], as the model reads them."""
    return data.x_test[page["images"]["index"]] * np.float32(data.scale)


def numpy_encode(model, x):
    """{"mu", "logvar"} (the autoencoder's {"mu"}), float64 NumPy, of images x: (n, D)."""
    x = np.asarray(x, dtype=np.float32)
    if isinstance(model, VAE):
        return dict(zip(("mu", "logvar"), (to_numpy(a).astype(np.float64) for a in model.encode(x))))
    return {"mu": to_numpy(model.code(x)).astype(np.float64)}


def numpy_decode(model, codes):
    return to_numpy(model.decode(np.asarray(codes, dtype=np.float32))).astype(np.float64)


def run_node(path, codes):
    harness = os.path.join(os.path.dirname(path), "harness.js")
    with open(harness, "w") as f:
        f.write(HARNESS)
    done = subprocess.run([node(), harness, path, json.dumps(codes)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# ------------------------------------------------------------------ the model, in node


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_the_pages_encoder_decoder_and_loss_terms_run_by_node_equal_numpys(kind, digits, tmp_path):
    model, path = page_of(kind, digits, str(tmp_path / "explorer.html"))
    page = embedded(path)
    J, x = page["latent_dim"], pixels_of(page, digits)
    codes = np.random.default_rng(0).normal(0, 2, (5, J)).tolist()
    out = run_node(path, codes)
    expected = numpy_encode(model, x)
    assert len(out["encoded"]) == len(x) == len(digits.x_test)  # every test image fits in a digits page
    for key, values in expected.items():
        assert np.ptp(values, axis=0).min() > 0.05, "the codes should vary with the image for this test to mean much"
        np.testing.assert_allclose([q[key] for q in out["encoded"]], values, rtol=0, atol=1e-5)
    assert ("logvar" in out["encoded"][0]) == isinstance(model, VAE)
    images = numpy_decode(model, codes)
    assert np.ptp(images, axis=0).max() > 0.05, "the decoder should vary with the code for this test to mean much"
    np.testing.assert_allclose(out["decoded"], images, rtol=0, atol=1e-5)
    mu = np.asarray(expected["mu"][:20], dtype=np.float32)
    recon = [float(model.recon_loss.forward(model.decoder.forward(mu[i:i + 1]), x[i:i + 1])) for i in range(20)]
    np.testing.assert_allclose(out["recon"], recon, rtol=1e-5)  # the training's units: per image, summed over pixels
    if isinstance(model, VAE):
        logvar = expected["logvar"][:20]
        np.testing.assert_allclose(out["kl"], [float(gaussian_kl(mu[i:i + 1], logvar[i:i + 1])[0]) for i in range(20)],
                                   rtol=1e-5)


def lab_sized(arch, n=10000, D=784, seed=0):
    """The lab's VAE (784-512-2) or conv VAE (channels 32, 64), untrained, and a FashionMNIST-shaped test set
    of random pixels."""
    rng = np.random.default_rng(seed)
    data = Dataset("fashion-mnist", x_train=np.zeros((1, D), np.uint8), y_train=np.zeros(1, np.int64),
                   x_test=rng.integers(0, 256, (n, D), dtype=np.uint8), y_test=rng.integers(0, 10, n),
                   scale=1 / 255, image_shape=(28, 28), class_names=tuple(f"class {y}" for y in range(10)))
    return VAE(D, (512,), 2, head_scale=1.0, arch=arch, image_shape=(28, 28), rng=Generator(seed)), data


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_the_lab_sized_pages_are_under_3_mb_and_their_encoders_numpys(arch, tmp_path):
    model, data = lab_sized(arch)
    z = numpy_encode(model, data.x_test * np.float32(data.scale))["mu"]
    path = str(tmp_path / "explorer.html")
    start = time.perf_counter()
    write_explorer(path, model, data, z, name="VAE", epochs=20, test_loss=28.0)
    seconds = time.perf_counter() - start
    size, page = os.path.getsize(path), embedded(path)
    shown = len(page["images"]["index"])
    print(f"lab-sized {arch} page: {size / 1e6:.2f} MB, weights {page['weights']}, {shown} test images embedded, "
          f"written in {seconds:.2f} s")
    assert size < 3e6 and shown >= 300
    assert page["weights"] == {"mlp": "<f2", "conv": "<f4"}[arch]  # 0.8 M weights do not fit as float32
    # The page's encoder is NumPy's on the weights it embeds (float16: rounded), at the first 100 images.
    out = run_node(path, [])["encoded"][:100]
    x = pixels_of(page, data)[:100]
    exact = numpy_encode(model, x)
    for p in model.params.values():
        p[...] = p.astype(page["weights"]).astype(p.dtype)
    rounded = numpy_encode(model, x)
    for key in ("mu", "logvar"):
        np.testing.assert_allclose([q[key] for q in out], rounded[key], rtol=0, atol=1e-5)
        print(f"{key}: largest difference from NumPy's own weights {np.abs(exact[key] - rounded[key]).max():.1e}")


# ------------------------------------------------------------------ the page, in a browser


def chromium(path, fragment, *flags):
    """Run headless Chromium on the page from file:// at `fragment`; its stdout."""
    done = subprocess.run([browser(), "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1200,800",
                           "--force-device-scale-factor=1", "--virtual-time-budget=5000", *flags,
                           f"file://{os.path.abspath(path)}#{fragment}"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def drawn(dom):
    """What the page says it drew: the <pre id="drawn"> JSON (the image, its code, the grey levels, where)."""
    found = re.search(r'<pre id="drawn"[^>]*>(.*?)</pre>', dom, re.S)
    assert found and found[1], "the page drew nothing (a JavaScript error?)"
    return json.loads(found[1])


def expected_grey(model, z):
    return np.round(255 * np.clip(numpy_decode(model, [z])[0], 0.0, 1.0))


def screenshot(path, fragment, tmp_path):
    """The page at `fragment` as the screen shows it: (rows, columns, RGB) in 0..255."""
    png = tmp_path / "explorer.png"
    chromium(path, fragment, f"--screenshot={png}")
    return mpimage.imread(png)[..., :3] * 255


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["vae", "conv_vae"])
def test_the_page_in_chromium_draws_the_ellipses_of_numpys_mu_and_std_and_decodes_the_pointers_code(kind, digits,
                                                                                                   tmp_path):
    model, path = page_of(kind, digits, str(tmp_path / "explorer.html"))
    index = embedded(path)["images"]["index"][7]
    q = numpy_encode(model, digits.x_test[[index]] * np.float32(digits.scale))
    mu, std = q["mu"][0], np.exp(0.5 * q["logvar"][0])
    z = [0.5, -1.2]
    fragment = f"image={index}&z=0.5,-1.2"
    shown = drawn(chromium(path, fragment, "--dump-dom"))
    assert shown["index"] == index and shown["z"] == z
    np.testing.assert_allclose(shown["gray"], expected_grey(model, z), rtol=0, atol=1)  # the canvas, read back
    picture = screenshot(path, fragment, tmp_path)
    (z1_lo, z1_hi), (z2_lo, z2_hi) = shown["view"]
    rect = shown["plane"]

    def colour_at(code):  # the screenshot's pixel at a code, placed by the page's view and its canvas on the screen
        column = rect["left"] + (code[0] - z1_lo) / (z1_hi - z1_lo) * rect["width"]
        row = rect["top"] + (z2_hi - code[1]) / (z2_hi - z2_lo) * rect["height"]
        return picture[int(row), int(column)]

    angles = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    for r in (1, 2):  # q(z|x)'s ellipses: mu + r std (cos t, sin t), in ELLIPSE's colour
        for t in angles:
            np.testing.assert_allclose(colour_at(mu + r * std * [np.cos(t), np.sin(t)]), [0x78, 0x00, 0xdc], atol=40)
    off = [colour_at(mu + 1.5 * std * [np.cos(t), np.sin(t)]) for t in angles]  # between them: not the ellipse
    assert not any(np.allclose(c, [0x78, 0x00, 0xdc], atol=40) for c in off)
    # The decoded image on the screen, where the page says its canvas is: NumPy's image to a grey level.
    H, W = digits.image_shape
    r = shown["rect"]
    rows = (r["top"] + (np.arange(H) + 0.5) * r["height"] / H).astype(int)
    cols = (r["left"] + (np.arange(W) + 0.5) * r["width"] / W).astype(int)
    np.testing.assert_allclose(picture[rows[:, None], cols[None, :]],
                               np.repeat(expected_grey(model, z).reshape(H, W, 1), 3, axis=2), rtol=0, atol=1.01)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["conv_vae_3d", "leaky_relu_bce_vae_5d", "tanh_ae_1d"])
def test_a_sliders_decoding_in_chromium_is_numpys_at_the_images_code_with_that_dimension_moved(kind, digits,
                                                                                                tmp_path):
    model, path = page_of(kind, digits, str(tmp_path / "explorer.html"))
    page = embedded(path)
    index, j = page["images"]["index"][3], page["order"][-1]
    shown = drawn(chromium(path, f"image={index}&slide={j},1.3", "--dump-dom"))
    expected = numpy_encode(model, digits.x_test[[index]] * np.float32(digits.scale))["mu"][0]
    expected[j] = 1.3
    lo, hi = page["extent"][j]
    np.testing.assert_allclose(shown["z"], expected, rtol=0, atol=max(1e-5, (hi - lo) / 1000))  # the slider's step
    np.testing.assert_allclose(shown["gray"], expected_grey(model, shown["z"]), rtol=0, atol=1)
    assert shown["z"] != shown["q"]["mu"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["vae", "conv_ae"])
def test_a_drawn_images_code_in_chromium_is_numpys(kind, digits, tmp_path):
    model, path = page_of(kind, digits, str(tmp_path / "explorer.html"))
    shown = drawn(chromium(path, "stroke=1,1;6.5,6.5;1,6.5", "--dump-dom"))
    x = np.array(shown["x"]).reshape(digits.image_shape)
    assert shown["index"] is None and x[1, 1] > 0.9 and x[6, 6] > 0.9 and x[1, 6] > 0.9 and x[6, 1] == 0
    expected = numpy_encode(model, x.reshape(1, -1))
    for key in expected:
        np.testing.assert_allclose(shown["q"][key], expected[key][0], rtol=0, atol=1e-5)
    np.testing.assert_allclose(shown["z"], expected["mu"][0], rtol=0, atol=1e-5)  # decoded at the drawing's code


# ------------------------------------------------------------------ what is written, and when


def test_a_conv_pages_records_and_heading_say_its_shapes(digits, tmp_path):
    _, path = page_of("conv_vae", digits, str(tmp_path / "explorer.html"))
    assert ("Encoder 64-3x4x4-4x2x2-2, decoder 2-16-3x4x4-1x8x8, sigmoid output, mse loss; weights float32"
            in open(path, encoding="utf-8").read())
    page = embedded(path)
    assert [r["type"] for r in page["encoder"]] == ["Reshape", "Conv2d", "ReLU", "Conv2d", "ReLU", "Reshape"]
    assert page["encoder"][0]["shape"] == [1, 8, 8] and page["mu"]["type"] == page["logvar"]["type"] == "Dense"
    assert [r["type"] for r in page["decoder"]] == ["Dense", "ReLU", "Reshape", "ConvTranspose2d", "ReLU",
                                                    "ConvTranspose2d", "Reshape"]


def test_the_page_needs_no_network(digits, tmp_path):
    _, path = page_of("vae", digits, str(tmp_path / "explorer.html"))
    text = open(path, encoding="utf-8").read()
    assert not re.search(r"https?://|//cdn|\bsrc\s*=|<link|\bimport\s*\(|fetch\(", text)
    assert len(re.findall(r"<script", text)) == 3  # the data, model.js and page.js, all inline


def test_the_sliders_go_by_kl_largest_first_and_an_autoencoders_by_variance(digits, tmp_path):
    model = MODELS["leaky_relu_bce_vae_5d"](digits)
    model.mu_head.params["W"][:, 3] *= 10  # dimension 3's mu spreads ten times as far: the most KL
    model.logvar_head.params["W"][:, 1] *= 0  # dimension 1: std 1 and mu the smallest: the least
    model.mu_head.params["W"][:, 1] *= 0.01
    z = numpy_encode(model, digits.x_test * np.float32(digits.scale))["mu"]
    order, kl, extent = explorer_page.code_statistics(model, digits, z)
    assert order[0] == 3 and order[-1] == 1 and np.all(np.diff(kl[order]) <= 0)
    assert np.all(extent[:, 0] <= -4) and np.all(extent[:, 1] >= 4)  # at least the prior's [-4, 4]
    ae_z = np.random.default_rng(0).normal(size=z.shape) * [1, 2, 3, 0.5, 4]
    order, kl, _ = explorer_page.code_statistics(MODELS["ae"](digits), digits, ae_z)
    assert kl is None and order.tolist() == [4, 2, 1, 0, 3]


def test_the_covering_subset_keeps_at_most_m_codes_spread_over_all_of_them():
    z = np.random.default_rng(0).uniform(-3, 3, (10000, 2))
    z = z[np.argsort(z[:, 0])]  # in order, as a test set sorted by class might be: its first m lie at one side
    chosen = explorer_page.covering_subset(z, 150)
    assert 100 <= len(chosen) <= 150 and np.all(np.diff(chosen) > 0)
    gaps = np.linalg.norm(z[:, None, :] - z[chosen][None, :, :], axis=2).min(axis=1)
    assert gaps.max() < 1.0  # within two cells of a 12 x 12 grid over a side of 6
    np.testing.assert_array_equal(explorer_page.covering_subset(z[:20], 150), np.arange(20))  # all, when they fit
    assert len(np.unique(explorer_page.covering_subset(z[:, :1], 150) // 1000)) == 10  # one column: spread along it


def exit_status(main, argv):
    try:
        return main(argv)
    except SystemExit as exit_:
        return exit_.code


@pytest.mark.slow
@pytest.mark.parametrize("script", [train_vae, train_ae], ids=["train_vae", "train_ae"])
def test_a_training_run_writes_explorer_html_for_any_code_and_no_explorer_writes_none(script, tmp_path):
    assert exit_status(script.main, [*DIGITS_FLAGS, "--out", str(tmp_path / "with")]) == 0
    page = embedded(tmp_path / "with" / "explorer.html")
    assert page["dataset"] == "digits" and page["epochs"] == 1 and (page["logvar"] is not None) == (script is train_vae)
    assert exit_status(script.main, [*DIGITS_FLAGS, "--latent-dim", "3", "--out", str(tmp_path / "k3")]) == 0
    page = embedded(tmp_path / "k3" / "explorer.html")
    assert page["latent_dim"] == 3 and sorted(page["order"]) == [0, 1, 2] and page["codes"] is None
    assert exit_status(script.main, [*DIGITS_FLAGS, "--out", str(tmp_path / "without"), "--no-explorer"]) == 0
    assert not (tmp_path / "without" / "explorer.html").exists()
    assert (tmp_path / "without" / "latent_scatter.png").exists()


def test_a_model_the_page_cannot_show_writes_no_page_and_says_why_in_one_line(digits, tmp_path):
    model = ConditionalVAE(digits.input_dim, 10, (32,), 2, rng=Generator(0))
    lines = []
    assert write_explorer(str(tmp_path / "explorer.html"), model, digits, np.zeros((len(digits.x_test), 2)),
                                   name="CVAE", epochs=0, test_loss=None, log=lines.append) is None
    assert lines == ["no explorer.html: the page shows a VAE or an autoencoder, not a ConditionalVAE"]
    assert not (tmp_path / "explorer.html").exists()


@pytest.mark.slow
def test_compare_writes_a_page_per_autoencoder_for_any_code_with_its_square_of_manifolds_png(tmp_path):
    compare(default_config("digits", epochs=1), str(tmp_path / "k2"), log=print)
    pages = {key: embedded(tmp_path / "k2" / f"explorer_{key}.html") for key in ("linear_ae", "ae", "vae")}
    assert pages["vae"]["logvar"] and not pages["ae"]["logvar"] and pages["linear_ae"]["output"] == "identity"
    assert pages["ae"]["square"] == [[-4, 4], [-4, 4]]
    z = np.frombuffer(base64.b64decode(pages["linear_ae"]["codes"]), "<f4").reshape(-1, 2)
    np.testing.assert_allclose(pages["linear_ae"]["square"], np.stack([z.mean(0) - 3 * z.std(0),
                                                                       z.mean(0) + 3 * z.std(0)], axis=1), rtol=1e-4)
    compare(default_config("digits", epochs=1), str(tmp_path / "none"), log=print, explorer=False)
    assert not [f for f in os.listdir(tmp_path / "none") if f.startswith("explorer")]
    compare(default_config("digits", epochs=1, latent_dim=3), str(tmp_path / "k3"), log=print)
    for key in ("linear_ae", "ae", "vae"):
        assert embedded(tmp_path / "k3" / f"explorer_{key}.html")["latent_dim"] == 3


def test_the_weights_come_to_the_host_by_to_numpy_on_the_gpu_standin(gpu_standin, digits, tmp_path):
    xp = get_backend("cupy")
    model = VAE(digits.input_dim, (32,), 2, x_mean=digits.mean_image, rng=Generator(0, xp))
    z = to_numpy(model.code(to_backend(digits.x_test * np.float32(digits.scale), xp)))
    write_explorer(str(tmp_path / "explorer.html"), model, digits, z, name="VAE", epochs=0, test_loss=None)
    page = embedded(tmp_path / "explorer.html")
    W = np.frombuffer(base64.b64decode(page["encoder"][0]["W"]), "<f4").reshape(digits.input_dim, 32)
    np.testing.assert_array_equal(W, to_numpy(model.encoder.layers[0].params["W"]))
