"""Writing files atomically, the one way the project writes a file: checkpoints (.npz), JSON, text,
figures, downloaded datasets.

A file is written under a temporary name in the same folder and renamed over the
target only once complete (os.replace is atomic on POSIX and Windows), so a crash or
Ctrl-C half-way through never replaces a good file with a broken one.
"""

import contextlib
import json
import os
import tempfile
import zipfile

import numpy as np


class CheckpointError(Exception):
    """A checkpoint file is missing, unreadable, or does not fit the model."""


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Open a temporary file beside `path` for writing; rename it to `path` only if the
    block completes. The file gets the usual permissions (mkstemp's are owner-only)."""
    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".tmp-")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_json(path, data):
    """`data` as indented JSON, atomically: a reader never sees half a file."""
    with atomic_write(path, "w") as f:
        json.dump(data, f, indent=2)


def write_text(path, text):
    with atomic_write(path, "w") as f:
        f.write(text)


def save_npz(path, arrays, meta=None):
    """Write `arrays` (name -> NumPy array) and `meta` (a JSON-able dict) to `path`, atomically."""
    with atomic_write(path) as f:
        np.savez(f, __meta__=np.array(json.dumps(meta or {})), **arrays)


def load_npz(path):
    """(arrays, meta) as written by save_npz; CheckpointError if it cannot be read."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):  # a lone .npy array: no metadata, no names
            raise ValueError("a single array")
        with loaded as f:
            arrays = {name: f[name] for name in f.files}
        meta = json.loads(str(arrays.pop("__meta__")))
    except (zipfile.BadZipFile, ValueError, KeyError, OSError, EOFError) as err:
        # NumPy's own words for a file that is no .npz invite allow_pickle=True, which would run
        # whatever code the file holds: say what the file is not, instead.
        raise CheckpointError(f"{path}: not a readable checkpoint (not an .npz archive of arrays with "
                              f"metadata, as train_vae.py and train_ae.py write; {type(err).__name__})") from None
    return arrays, meta
