"""Fixtures shared by the tests: every backend runs the same test bodies."""

import pytest

from nn.backend import cupy_available, get_backend


def _backend_param(name):
    marks = []
    if name == "cupy" and not cupy_available():
        marks.append(pytest.mark.skip(reason="cupy backend: CuPy is not installed or no GPU was found"))
    return pytest.param(name, marks=marks, id=name)


@pytest.fixture(params=[_backend_param(n) for n in ("numpy", "array_api_strict", "cupy")])
def xp(request):
    """The array namespace of each backend: NumPy always, array-api-strict to prove the
    code uses only the standard (so it also runs on CuPy), CuPy where a GPU is present."""
    return get_backend(request.param)
