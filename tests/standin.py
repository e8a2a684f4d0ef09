"""The CuPy stand-in (tests/fake_gpu/cupy): in this process while a block runs, or in a subprocess.

`installed()` makes `import cupy` find the stand-in for the length of a `with` block and
forgets it afterwards, so that a test after it sees the machine as it is. `subprocess_env()`
is the environment in which a script started as a process runs on it with --backend cupy.
On a machine with a real CuPy and a GPU the stand-in is never used: the real one is tested.
"""

import contextlib
import importlib
import os
import sys

from nn.backend import cupy_available

REAL_CUPY = cupy_available()  # asked when the tests start, before the stand-in could be in place
FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_gpu")
# The stand-in's modules (cupy, cupy.linalg, cupy.cuda, ...) and array_api_compat's wrapper of them,
# imported once and put back each time, so that a namespace cached by nn.backend stays the one in use.
_modules = {}


def _ours(name):
    return name == "cupy" or name.startswith(("cupy.", "array_api_compat.cupy"))


def _load():
    if not _modules:
        sys.path.insert(0, FOLDER)
        try:
            importlib.import_module("cupy")
            importlib.import_module("array_api_compat.cupy")
        finally:
            sys.path.remove(FOLDER)
        assert sys.modules["cupy"].__file__.startswith(FOLDER), "a real CuPy was imported, not the stand-in"
        _modules.update({name: m for name, m in sys.modules.items() if _ours(name)})
    return _modules


@contextlib.contextmanager
def installed():
    """The stand-in as `cupy` while the block runs; nn.backend.get_backend("cupy") returns its namespace."""
    for name in [n for n in sys.modules if _ours(n)]:
        sys.modules.pop(name)
    sys.modules.update(_load())
    try:
        yield sys.modules["cupy"]
    finally:
        for name in [n for n in sys.modules if _ours(n)]:
            sys.modules.pop(name)


def subprocess_env(**variables):
    """os.environ with the stand-in first on PYTHONPATH (and the project after it), and `variables`."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.pathsep.join([FOLDER, root, *filter(None, [os.environ.get("PYTHONPATH")])])
    return {**os.environ, "PYTHONPATH": path, **variables}
