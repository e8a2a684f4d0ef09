"""Fixtures shared by the tests: every backend runs the same test bodies; a test that starts a
process is marked slow, so that `pytest -m "not slow"` is the inner loop."""

import multiprocessing.process
import os
import subprocess

import pytest

import standin
from nn.backend import get_backend
from standin import REAL_CUPY


def _backend_param(name):
    marks = []
    if name == "cupy" and not REAL_CUPY:
        marks.append(pytest.mark.skip(reason="cupy backend: CuPy is not installed or no GPU was found"))
    if name == "cupy-standin" and REAL_CUPY:
        marks.append(pytest.mark.skip(reason="the CuPy stand-in: a real CuPy and GPU are here, and tested instead"))
    return pytest.param(name, marks=marks, id=name)


@pytest.fixture(params=[_backend_param(n) for n in ("numpy", "array_api_strict", "cupy", "cupy-standin")])
def xp(request):
    """The array namespace of each backend: NumPy always, array-api-strict to prove the
    code uses only the standard (so it also runs on CuPy), CuPy where a GPU is present, and
    where none is, the CuPy stand-in (tests/standin.py), which refuses what CuPy refuses."""
    if request.param == "cupy-standin":
        with standin.installed():
            yield get_backend("cupy")
    else:
        yield get_backend(request.param)


@pytest.fixture
def gpu_standin():
    """The CuPy stand-in in place for the test (skipped where a real CuPy and GPU are here)."""
    if REAL_CUPY:
        pytest.skip("a real CuPy and GPU are here: the cupy tests run on them instead")
    with standin.installed() as cupy:
        yield cupy


@pytest.fixture(autouse=True)
def processes_only_in_slow_tests(request, monkeypatch):
    """A test not marked slow that starts a process (a script, node, a browser, a worker) fails, saying
    so: the `slow` marker is what keeps `pytest -m "not slow"` the quick loop."""
    if request.node.get_closest_marker("slow"):
        return

    def refuse(*args, **kwargs):
        raise AssertionError(f"{request.node.nodeid} starts a process: mark it @pytest.mark.slow")
    monkeypatch.setattr(subprocess.Popen, "_execute_child", refuse)
    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", refuse)
    monkeypatch.setattr(os, "fork", refuse)
