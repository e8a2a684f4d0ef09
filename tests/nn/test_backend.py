"""Choosing backends, moving arrays, and the errors for what cannot be used."""

import numpy as np
import pytest

from nn.backend import BackendError, Generator, get_backend, namespace, to_backend, to_numpy


def test_default_backend_is_numpy(monkeypatch):
    monkeypatch.delenv("VAE_BACKEND", raising=False)
    assert get_backend() is np


def test_environment_variable_chooses_the_backend(monkeypatch):
    import array_api_strict

    monkeypatch.setenv("VAE_BACKEND", "array_api_strict")
    assert get_backend() is array_api_strict
    assert get_backend("numpy") is np  # an explicit name wins


def test_unknown_backend_lists_the_valid_ones(monkeypatch):
    with pytest.raises(BackendError, match="unknown backend 'jax': choose one of numpy, cupy, array_api_strict"):
        get_backend("jax")
    monkeypatch.setenv("VAE_BACKEND", "tpu")
    with pytest.raises(BackendError, match=r"unknown \$VAE_BACKEND 'tpu'"):
        get_backend()


def test_cupy_missing_or_without_gpu_says_how_to_fix(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_cupy(name, *args, **kwargs):
        if name == "cupy":
            raise ImportError("No module named 'cupy'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_cupy)
    with pytest.raises(BackendError, match="pip install cupy-cuda12x .* or cupy-cuda13x"):
        get_backend("cupy")


def test_namespace_of_each_backend(xp):
    assert namespace(xp.zeros(3), xp.ones((2, 2))) is xp


def test_arrays_move_between_backends_and_back(xp):
    x = np.arange(6.0).reshape(2, 3)
    moved = to_backend(x, xp)
    assert namespace(moved) is xp
    np.testing.assert_array_equal(to_numpy(moved), x)
    assert to_backend(moved, xp) is moved  # already there: no copy


def test_generator_is_seeded_and_makes_arrays_on_its_backend(xp):
    a, b = Generator(42, xp), Generator(42, xp)
    eps = a.normal((3, 2), "float32")
    assert namespace(eps) is xp and eps.dtype == xp.float32 and tuple(eps.shape) == (3, 2)
    np.testing.assert_array_equal(to_numpy(eps), to_numpy(b.normal((3, 2), "float32")))
    assert sorted(to_numpy(a.permutation(10)).tolist()) == list(range(10))


def test_generator_state_restores_the_stream():
    rng = Generator(0, np)
    state = rng.get_state()
    first = rng.normal((4,))
    rng.set_state(state)
    np.testing.assert_array_equal(rng.normal((4,)), first)
