"""Array backends: one body of code runs on NumPy (CPU), CuPy (GPU) and array-api-strict.

The `xp` idiom: a function never imports an array library. It asks its inputs which
namespace they live in, `xp = namespace(x, W)`, and calls `xp.exp`, `xp.sum`, `x @ W`.
NumPy arrays get `numpy`, CuPy arrays get `cupy` (through array_api_compat, which
fills the few gaps in CuPy's coverage of the standard), array-api-strict arrays get
`array_api_strict` (a NumPy-backed implementation of the array API standard that
raises on anything outside the standard; the tests run the whole library under it to
prove the code uses only what NumPy and CuPy share).

This module is the only place that imports CuPy, and the only place for code that
steps outside the standard; each such spot says why.
"""

import os

import array_api_compat
import numpy as np

BACKEND_NAMES = ("numpy", "cupy", "array_api_strict")  # what get_backend takes
ENV_VAR = "VAE_BACKEND"

# Training runs in float32 (half the memory traffic of float64, and what BLAS and GPUs
# are fastest at); gradient checks run in float64, where finite differences are accurate
# enough for nn.gradcheck.TOLERANCE to tell a right backward from a wrong one.
TRAIN_DTYPE = "float32"
CHECK_DTYPE = "float64"


class BackendError(RuntimeError):
    """A backend was asked for that cannot be used here, or arrays of two backends met."""


def get_backend(name=None):
    """The array namespace `xp` called `name`, or named by $VAE_BACKEND, else NumPy."""
    name = name or os.environ.get(ENV_VAR) or "numpy"
    if name == "numpy":
        return np
    if name == "cupy":
        _import_cupy()
        import array_api_compat.cupy

        return array_api_compat.cupy
    if name == "array_api_strict":
        import array_api_strict

        return array_api_strict
    source = f"${ENV_VAR}" if name == os.environ.get(ENV_VAR) else "backend"
    raise BackendError(f"unknown {source} {name!r}: choose one of {', '.join(BACKEND_NAMES)}")


def backend_name(xp):
    """The name under which get_backend() returns `xp` ('numpy', 'cupy', ...)."""
    return xp.__name__.split(".")[-1]


def _import_cupy():
    try:
        import cupy
    except ImportError:
        raise BackendError(
            "the cupy backend needs CuPy, which is not installed: "
            "pip install cupy-cuda12x (CUDA 12) or cupy-cuda13x (CUDA 13), or use --backend numpy"
        ) from None
    try:
        n_gpus = cupy.cuda.runtime.getDeviceCount()
    except Exception:  # CuPy raises its own CUDARuntimeError when no driver is loaded
        n_gpus = 0
    if n_gpus == 0:
        raise BackendError("the cupy backend needs an NVIDIA GPU, and CuPy found none: use --backend numpy")
    return cupy


def synchronize(xp):
    """Wait until the device has finished the work queued on it (for timing); a no-op on the
    CPU, where every operation has finished when it returns."""
    if backend_name(xp) == "cupy":
        _import_cupy().cuda.Device().synchronize()


def library_version(xp):
    """'numpy 2.4.6', 'cupy 13.3.0': the array library behind `xp`, for reports."""
    name = backend_name(xp)
    module = _import_cupy() if name == "cupy" else xp
    return f"{name} {getattr(module, '__version__', '')}".strip()


def cupy_available():
    """True when CuPy is installed and sees a GPU (used by the tests to skip, with a reason)."""
    try:
        _import_cupy()
    except BackendError:
        return False
    return True


# type(array) -> namespace, filled on first sight, so that namespace() costs a dict
# look-up inside the training loop rather than array_api_compat's type checks.
_NAMESPACE_OF_TYPE = {}


def namespace(*arrays):
    """The namespace `xp` shared by `arrays`; refuses arrays from two backends.

    Mixing (say) a NumPy input with CuPy weights would either fail deep inside the
    library or silently copy between host and device on every call, so it is an error.
    """
    kinds = {type(a) for a in arrays}
    if len(kinds) == 1:
        (kind,) = kinds
        xp = _NAMESPACE_OF_TYPE.get(kind)
        if xp is None:
            xp = _NAMESPACE_OF_TYPE[kind] = _native(array_api_compat.array_namespace(arrays[0]))
        return xp
    try:
        return _native(array_api_compat.array_namespace(*arrays))
    except TypeError:
        names = sorted(f"{t.__module__}.{t.__name__}" for t in kinds)
        raise BackendError(
            f"arrays from different backends in one call ({', '.join(names)}): "
            "move them to one backend first with nn.backend.to_backend(x, xp)"
        ) from None


def _native(xp):
    """NumPy 2 implements the standard in its own namespace, which is faster to call than
    array_api_compat's wrapper of it; CuPy keeps the wrapper, which fills its gaps."""
    return np if xp.__name__ == "array_api_compat.numpy" else xp


def to_backend(x, xp):
    """`x` (any array) as an array of namespace `xp`; copied only if it has to move."""
    if namespace(x) is xp:
        return x
    return xp.asarray(to_numpy(x))


def to_numpy(x):
    """`x` as a NumPy array: for plots, logs and files, at the edges of the program."""
    if isinstance(x, np.ndarray | np.generic):
        return np.asarray(x)
    if hasattr(x, "get"):  # a CuPy array: copy it from the device
        return x.get()
    return np.from_dlpack(x)  # array-api-strict (and any other DLPack host array)


def load_arrays(targets, state, what="parameter"):
    """Copy `state` (name -> array, e.g. from a file) into `targets` (name -> array), in place.

    In place, so that whatever holds the target arrays (a layer, an optimiser) keeps
    working. Names and shapes must match exactly; a mismatch names the array and both shapes.
    """
    missing, unexpected = targets.keys() - state.keys(), state.keys() - targets.keys()
    if missing or unexpected:
        raise ValueError(f"{what}s do not match: missing {sorted(missing)}, unexpected {sorted(unexpected)}")
    for name, target in targets.items():
        if tuple(state[name].shape) != tuple(target.shape):
            raise ValueError(f"{what} {name!r} has shape {tuple(target.shape)} here "
                             f"but {tuple(state[name].shape)} in the state")
    for name, target in targets.items():
        xp = namespace(target)
        target[...] = xp.astype(to_backend(state[name], xp), target.dtype)


def resolve_dtype(xp, dtype):
    """`dtype` given by name ('float32') or object, as `xp`'s dtype object."""
    return getattr(xp, dtype) if isinstance(dtype, str) else dtype


def dtype_name(xp, dtype):
    """'float32' or 'float64' for either float dtype of `xp`."""
    for name in ("float32", "float64"):
        if dtype == getattr(xp, name):
            return name
    raise BackendError(f"unsupported dtype {dtype}: use float32 or float64")


class Generator:
    """A seeded random generator that makes its arrays on one backend.

    `normal(shape, dtype)` draws N(0, 1) noise (the VAE's eps, the weights' init),
    `uniform(shape, low, high, dtype)` the weights of init="uniform", and
    `permutation(n)` shuffles indices (the order of minibatches). On NumPy and
    array-api-strict both come from one numpy.random.Generator, so a checkpoint can save
    and restore the exact stream; on CuPy the noise is drawn on the device, where it is
    used, and shuffling stays on the host.
    """

    def __init__(self, seed, xp=np):
        self.xp = xp
        self.host = np.random.default_rng(seed)
        self.device = None
        if backend_name(xp) == "cupy":
            import cupy

            self.device = cupy.random.RandomState(seed)  # standard_normal takes float32 or float64

    def normal(self, shape, dtype=TRAIN_DTYPE):
        name = dtype if isinstance(dtype, str) else dtype_name(self.xp, dtype)
        if self.device is not None:
            return self.device.standard_normal(shape, dtype=name)
        eps = self.host.standard_normal(shape, dtype=name)
        return eps if self.xp is np else self.xp.asarray(eps)

    def uniform(self, shape, low, high, dtype=TRAIN_DTYPE):
        """Uniform in [low, high): the initial weights of init="uniform"."""
        name = dtype if isinstance(dtype, str) else dtype_name(self.xp, dtype)
        if self.device is not None:
            return self.device.uniform(low, high, shape, dtype=name)
        u = self.host.uniform(low, high, shape).astype(name)
        return u if self.xp is np else self.xp.asarray(u)

    def permutation(self, n):
        order = self.host.permutation(n)
        return order if self.xp is np else self.xp.asarray(order)

    def get_state(self):
        """The host generator's state, a JSON-able dict (exact resume on NumPy)."""
        return self.host.bit_generator.state

    def set_state(self, state):
        self.host.bit_generator.state = state
