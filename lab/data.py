"""Datasets on the host: FashionMNIST, MNIST and scikit-learn's 8x8 digits, as uint8 NumPy arrays.

FashionMNIST and MNIST come as four IDX files (LeCun's format, usually gzipped):

    bytes 0-1   0x00 0x00                       magic: two zero bytes
    byte  2     data type code                  0x08 = unsigned byte (the only one used here)
    byte  3     number of dimensions d          3 for images (N, rows, cols), 1 for labels (N,)
    then        d big-endian uint32 sizes
    then        prod(sizes) values, row-major   nothing before, nothing after

Where the files are looked for, and what happens when they are missing, is in
load_dataset's docstring. Everything here stays on the host and in uint8; a model
converts with `x_uint8 * dataset.scale` when it moves a batch to its backend.
"""

import gzip
import hashlib
import os
import pathlib
import struct
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass

import numpy as np

DATASETS = ("fashion-mnist", "mnist", "digits")

# The four files of an MNIST-format dataset, in the order of Dataset's fields.
FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

URLS = {
    "fashion-mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
}

# MD5 of each published .gz file. They are checked on download only: the Debian package
# recompresses the files (other .gz bytes, the same data inside), and a user may hand us
# decompressed files. A file found on disk is checked by its structure instead (read_idx).
MD5 = {
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
}

CLASS_NAMES = {
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    "mnist": tuple(str(k) for k in range(10)),
    "digits": tuple(str(k) for k in range(10)),
}

# Where to look when no data_dir is given: the project's data/<name>/ (also where a
# download goes), then the system-wide copies that Linux packages install.
PROJECT_DATA_DIR = pathlib.Path(__file__).resolve().parent.parent / "data"
SYSTEM_DATA_DIRS = {
    "fashion-mnist": [pathlib.Path("/usr/share/datasets/fashion-mnist")],  # apt: dataset-fashion-mnist
    "mnist": [pathlib.Path("/usr/share/datasets/mnist")],
}
APT_PACKAGES = {"fashion-mnist": "dataset-fashion-mnist"}

DOWNLOAD_TIMEOUT_S = 60  # per network operation, so a dead connection fails instead of hanging
DIGITS_N_TEST = 297  # 1797 = 1500 train + 297 test

_IDX_TYPES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "int16",
              0x0C: "int32", 0x0D: "float32", 0x0E: "float64"}
_GZIP_MAGIC = b"\x1f\x8b"


class DataError(Exception):
    """A dataset could not be found, fetched or read. Its message is one line (or a short list) a user can act on."""


@dataclass(frozen=True, eq=False)  # eq=False: == on arrays is elementwise, so compare datasets by identity
class Dataset:
    """A train/test split of labelled images, kept as uint8 on the host.

    x_train: (N_train, D) uint8, each image flattened row-major; y_train: (N_train,) int64.
    x_test:  (N_test, D) uint8;                                  y_test:  (N_test,) int64.
    x_float = x_uint8 * scale lies in [0, 1]; D = rows * cols of image_shape.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    scale: float
    image_shape: tuple[int, int]
    class_names: tuple[str, ...]

    @property
    def input_dim(self) -> int:
        """D, the number of pixels in one image."""
        return self.x_train.shape[1]

    @property
    def mean_image(self) -> np.ndarray:
        """(D,) float64 in [0, 1]: the mean training image, where a model's decoder starts (Model.start_at)."""
        return self.x_train.mean(axis=0) * self.scale


def read_idx(path) -> np.ndarray:
    """The uint8 array stored in the IDX file at `path` (gzipped or plain), in its stored shape.

    Gzip is recognised by its magic bytes, not by the file name. Raises DataError, naming
    the file, for a bad header, an unsupported data type, or a payload that is not exactly
    prod(sizes) bytes long.
    """
    path = pathlib.Path(path)
    refetch = "Delete it and fetch it again."
    try:
        with open(path, "rb") as f:
            compressed = f.read(2) == _GZIP_MAGIC
        opener = gzip.open if compressed else open
        with opener(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError; a cut stream is an EOFError
        what = "corrupt gzip data" if compressed else "cannot be read"
        raise DataError(f"{path}: {what} ({e}). {refetch}") from None

    if len(raw) < 4 or raw[0:2] != b"\x00\x00":
        raise DataError(f"{path}: not an IDX file (it does not start with two zero bytes). {refetch}")
    type_code, ndim = raw[2], raw[3]
    if type_code != 0x08:
        kind = _IDX_TYPES.get(type_code, "unknown")
        raise DataError(f"{path}: data type code 0x{type_code:02X} ({kind}) is not supported; "
                        "only 0x08 (unsigned byte), as in MNIST.")
    header_len = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header_len:
        raise DataError(f"{path}: header cut short or with no dimensions. {refetch}")
    shape = struct.unpack(f">{ndim}I", raw[4:header_len])

    expected = int(np.prod(shape, dtype=np.int64))
    found = len(raw) - header_len
    if found != expected:
        what = "truncated" if found < expected else "too long"
        raise DataError(f"{path}: {what}: expected {expected} bytes of data after the header "
                        f"{shape}, found {found}. {refetch}")
    # frombuffer on bytes is read-only; copy once so that callers may shuffle in place.
    return np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(shape).copy()


def load_dataset(name="fashion-mnist", data_dir=None, download=True) -> Dataset:
    """Load `name` (one of DATASETS) as a Dataset.

    FashionMNIST and MNIST: the four IDX files, each with or without .gz, are taken from
    the first of these folders that holds all four:
      - if data_dir is given: data_dir, then data_dir/<name>/, and nowhere else
        (a folder the user names is where the user wants the data; a download goes there);
      - otherwise: the project's data/<name>/, then the system copies in SYSTEM_DATA_DIRS
        (/usr/share/datasets/<name>/, e.g. from `apt-get install dataset-fashion-mnist`).
    If none has them and download is true, they are downloaded into data_dir, or else into
    data/<name>/. Failing that, one DataError lists every way to get the data.

    digits: scikit-learn's bundled 8x8 digits (1797 images, values 0..16, scale 1/16),
    nothing to fetch. The split is fixed: a permutation by np.random.default_rng(0),
    the first 1500 images for training and the last 297 for testing.
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")
    if name == "digits":
        return _load_digits()

    if data_dir is not None:
        data_dir = pathlib.Path(data_dir).expanduser()
        search_dirs, download_dir = [data_dir, data_dir / name], data_dir
    else:
        download_dir = PROJECT_DATA_DIR / name
        search_dirs = [download_dir, *SYSTEM_DATA_DIRS.get(name, [])]

    for folder in search_dirs:
        paths = _find_files(folder)
        if paths is not None:
            return _load_mnist_format(name, paths)

    if not download:
        reason = "the automatic download is turned off"
    else:
        try:
            download_dataset(name, download_dir)
        except DataError as e:
            reason = str(e)
        else:
            return _load_mnist_format(name, _find_files(download_dir))
    raise DataError(_not_found_message(name, search_dirs, download_dir, reason))


def download_dataset(name, dest_dir) -> pathlib.Path:
    """Fetch the four .gz files of `name` from URLS into dest_dir, checking each MD5; returns dest_dir.

    Each file is written to a temporary file in dest_dir and renamed to its final name only
    once its checksum is right, so an interrupted or corrupted download never leaves a
    file under the final name. Files already there with the right checksum are kept.
    """
    if name not in URLS:
        raise DataError(f"there is nothing to download for {name!r}: only for {', '.join(URLS)}")
    dest_dir = pathlib.Path(dest_dir).expanduser().absolute()
    created = [d for d in (dest_dir, *dest_dir.parents) if not d.exists()]  # deepest first
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create {dest_dir}: {e.strerror or e}") from None
    try:
        _fetch_missing(name, dest_dir)
    except BaseException:
        for d in created:  # a failed download leaves no empty folders behind
            try:
                d.rmdir()
            except OSError:
                break
        raise
    return dest_dir


def _fetch_missing(name, dest_dir):
    """Download into dest_dir each file of MD5[name] that is not already there with its checksum."""
    for filename, md5 in MD5[name].items():
        final = dest_dir / filename
        if final.is_file() and _md5(final) == md5:
            continue
        url = URLS[name] + filename
        try:
            fd, tmp = tempfile.mkstemp(dir=dest_dir, prefix=f".{filename}.", suffix=".part")
        except OSError as e:
            raise DataError(f"cannot write into {dest_dir}: {e.strerror or e}") from None
        try:
            with os.fdopen(fd, "wb") as out:
                got = _fetch(url, out)
            if got != md5:
                raise DataError(f"{url}: checksum mismatch (MD5 {got}, expected {md5}); "
                                "the file was discarded")
            os.chmod(tmp, 0o644)  # mkstemp makes it private; the data is not
            os.replace(tmp, final)  # atomic on one file system: the final name is whole or absent
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)


def _fetch(url, out):
    """Stream `url` into the binary file `out`; returns the MD5 hex digest of what was written."""
    md5 = hashlib.md5()
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            while chunk := response.read(1 << 20):
                md5.update(chunk)
                out.write(chunk)
    except (OSError, ValueError) as e:  # URLError, HTTPError and timeouts are OSErrors
        reason = getattr(e, "reason", None) or e
        raise DataError(f"could not fetch {url}: {reason}") from None
    return md5.hexdigest()


def _md5(path):
    md5 = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            md5.update(chunk)
    return md5.hexdigest()


def _find_files(folder):
    """Paths of the four FILES in `folder` (plain preferred over .gz), or None unless all four are there."""
    paths = []
    for stem in FILES:
        candidates = [folder / stem, folder / f"{stem}.gz"]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            return None
        paths.append(found)
    return paths


def _load_mnist_format(name, paths):
    """A Dataset from the four IDX files at `paths`, in the order of FILES."""
    images_train, labels_train, images_test, labels_test = (read_idx(p) for p in paths)
    for images, labels, img_path, lbl_path in ((images_train, labels_train, paths[0], paths[1]),
                                               (images_test, labels_test, paths[2], paths[3])):
        if images.ndim != 3:
            raise DataError(f"{img_path}: expected images of shape (N, rows, cols), found {images.shape}")
        if labels.ndim != 1:
            raise DataError(f"{lbl_path}: expected labels of shape (N,), found {labels.shape}")
        if len(images) != len(labels):
            raise DataError(f"{img_path} holds {len(images)} images but {lbl_path} holds "
                            f"{len(labels)} labels; they must be a matching pair")
        if labels.size and labels.max() >= len(CLASS_NAMES[name]):
            raise DataError(f"{lbl_path}: label {labels.max()} is out of range 0..{len(CLASS_NAMES[name]) - 1}")
    if images_train.shape[1:] != images_test.shape[1:]:
        raise DataError(f"{paths[0]} has images of {images_train.shape[1:]} pixels "
                        f"but {paths[2]} has {images_test.shape[1:]}")

    n_train, rows, cols = images_train.shape
    return Dataset(
        name=name,
        x_train=images_train.reshape(n_train, rows * cols),  # (N, 28, 28) -> (N, 784), row-major
        y_train=labels_train.astype(np.int64),
        x_test=images_test.reshape(len(images_test), rows * cols),
        y_test=labels_test.astype(np.int64),
        scale=1.0 / 255.0,
        image_shape=(rows, cols),
        class_names=CLASS_NAMES[name],
    )


def _load_digits():
    """scikit-learn's 8x8 digits, split 1500/297 by a fixed permutation (see load_dataset)."""
    from sklearn.datasets import load_digits  # imported here: only this dataset needs scikit-learn

    digits = load_digits()
    x = digits.data.astype(np.uint8)  # (1797, 64), integer counts 0..16 stored as float64
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    train, test = order[:-DIGITS_N_TEST], order[-DIGITS_N_TEST:]
    return Dataset(
        name="digits",
        x_train=x[train], y_train=y[train],
        x_test=x[test], y_test=y[test],
        scale=1.0 / 16.0,
        image_shape=(8, 8),
        class_names=CLASS_NAMES["digits"],
    )


def _not_found_message(name, search_dirs, download_dir, reason):
    files = ", ".join(FILES)
    looked = ", ".join(str(d) for d in search_dirs)
    ways = [f"--data-dir DIR, with DIR holding the four files {files} (each may end in .gz)",
            f"put those files in {PROJECT_DATA_DIR / name}/"]
    if name in APT_PACKAGES:
        ways.append(f"on Debian/Ubuntu: sudo apt-get install {APT_PACKAGES[name]}")
    ways.append(f"a network connection, for the automatic download into {download_dir}/ ({reason})")
    ways.append("--dataset digits, to start right away: it comes with scikit-learn, nothing to fetch")
    bullets = "\n".join(f"  - {way}" for way in ways)
    return f"the {name} dataset was not found (looked in: {looked}). Any one of these will do:\n{bullets}"


def shift_images(x, image_shape, shifts):
    """Each image of x: (N, H*W) moved by its row of shifts: (N, 2) ints (dy down, dx right).

    Pixels moved out of the frame are dropped and the ones moved in are 0, the background
    of these datasets: the same image, moved. Returns (N, H*W) of x's dtype. The classic
    augmentation of Part Three (apps/augment.py).
    """
    H, W = image_shape
    images = x.reshape(-1, H, W)
    moved = np.zeros_like(images)
    for dy, dx in {tuple(s) for s in np.asarray(shifts).tolist()}:  # each distinct shift once, for all its images
        rows = np.all(shifts == (dy, dx), axis=1)
        moved[rows, max(dy, 0):H + min(dy, 0), max(dx, 0):W + min(dx, 0)] = \
            images[rows, max(-dy, 0):H + min(-dy, 0), max(-dx, 0):W + min(-dx, 0)]
    return moved.reshape(x.shape)


def per_class_subset(y, n, rng):
    """Indices of n images of each class of the labels y: (N,), drawn without replacement by
    `rng` (a numpy.random.Generator), in a shuffled order: (n * classes,)."""
    picked = [rng.choice(np.flatnonzero(y == c), size=n, replace=False) for c in np.unique(y)]
    return rng.permutation(np.concatenate(picked))
