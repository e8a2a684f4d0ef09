"""A stand-in for CuPy, for the tests: NumPy underneath, CuPy's manners on top.

It behaves like CuPy exactly where CuPy differs from NumPy in ways that break code written
and tested on NumPy alone, so that the cupy code path of the project runs, and fails the
way it would on a GPU, on a machine without one:

- an array refuses to become a NumPy array implicitly: np.asarray(x), matplotlib, scikit-learn
  and anything else that calls __array__ raise CuPy's TypeError; only x.get() and
  cupy.asnumpy(x) copy to the host (real CuPy: "Implicit conversion to a NumPy array is not
  allowed");
- NumPy host arrays do not mix with device arrays in one operation (CuPy: "Unsupported type");
- reductions return 0-d device arrays, never Python or NumPy scalars; float(x) and int(x)
  copy one value to the host, as on CuPy;
- np.from_dlpack of a device array fails (its memory is on the GPU);
- the generator is cupy.random.RandomState (standard_normal(size, dtype), uniform(low, high,
  size, dtype), float32 and float64 only), and cupy.cuda.Device().synchronize() and
  cupy.cuda.runtime.getDeviceCount() exist.

NumPy functions called on a device array (np.exp(x), np.mean(x)) work, as CuPy's
__array_ufunc__ and __array_function__ make them work, and give device arrays.

It is put on the path by tests/standin.py, in the test process or in a subprocess through
PYTHONPATH, never otherwise: it is no part of the project.
"""

import builtins
import sys
import types

import numpy as _np

__version__ = "13.0.0+standin"

IMPLICIT = ("Implicit conversion to a NumPy array is not allowed. "
            "Please use `.get()` to construct a NumPy array explicitly.")
HOST_ARRAYS_ALLOWED = {"asarray", "array", "asanyarray", "ascontiguousarray"}  # host -> device copies


def _refuse_host(value):
    if isinstance(value, _np.ndarray):
        raise TypeError(f"Unsupported type {type(value)}")
    if isinstance(value, (list, tuple)):
        for v in value:
            _refuse_host(v)


def _unwrap(value):
    """Device arrays (and containers of them) as the NumPy arrays beneath."""
    if isinstance(value, ndarray):
        return value._a
    if isinstance(value, tuple):
        return tuple(_unwrap(v) for v in value)
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    return value


def _wrap(value):
    """NumPy results as device arrays: a NumPy scalar becomes a 0-d array, as CuPy returns."""
    if isinstance(value, _np.ndarray):
        return ndarray(value)
    if isinstance(value, _np.generic):
        return ndarray(_np.asarray(value))
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_wrap(v) for v in value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


def _device_function(function, name):
    def on_device(*args, **kwargs):
        if name not in HOST_ARRAYS_ALLOWED:
            _refuse_host(args)
            _refuse_host(list(kwargs.values()))
        return _wrap(function(*_unwrap(args), **_unwrap(kwargs)))

    on_device.__name__ = on_device.__qualname__ = name
    on_device.__doc__ = f"cupy.{name}, run by numpy.{name} on the host."
    return on_device


class ndarray:
    """A device array: a NumPy array that refuses to leave the device implicitly."""

    __slots__ = ("_a",)
    __hash__ = None

    def __init__(self, a):
        object.__setattr__(self, "_a", a)

    # The one way to the host, and the ways that are refused.
    def get(self, stream=None):
        return self._a.copy()

    def __array__(self, *args, **kwargs):
        raise TypeError(IMPLICIT)

    def __dlpack__(self, *args, **kwargs):
        raise BufferError("the array is on a CUDA device: NumPy cannot read its memory")

    def __dlpack_device__(self):
        return (2, 0)  # kDLCUDA, device 0

    def __array_namespace__(self, api_version=None):
        import array_api_compat.cupy

        return array_api_compat.cupy

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        _refuse_host(inputs)
        return _wrap(getattr(ufunc, method)(*_unwrap(inputs), **_unwrap(kwargs)))

    def __array_function__(self, func, types, args, kwargs):
        _refuse_host(args)
        return _wrap(func(*_unwrap(args), **_unwrap(kwargs)))

    # Attributes and methods of the array beneath; no dunder is looked up here, so that NumPy
    # finds no __array_interface__ or buffer to convert through.
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        value = getattr(self._a, name)
        if callable(value):
            return _device_function(value, name)
        return _wrap(value)

    @property
    def shape(self):
        return self._a.shape

    @shape.setter
    def shape(self, shape):
        self._a.shape = shape

    @property
    def T(self):
        return ndarray(self._a.T)

    @property
    def mT(self):
        return ndarray(self._a.mT)

    @property
    def device(self):
        return cuda.Device(0)

    def __setattr__(self, name, value):
        if name == "shape":
            self._a.shape = value
        else:
            raise AttributeError(f"cannot set {name!r} of a cupy.ndarray")

    def __getitem__(self, key):
        _refuse_host(key)
        return _wrap(self._a[_unwrap(key)])

    def __setitem__(self, key, value):
        _refuse_host(key)
        _refuse_host(value)
        self._a[_unwrap(key)] = _unwrap(value)

    # One value to the host, as CuPy allows (a synchronising copy).
    def __float__(self):
        return float(self._a)

    def __int__(self):
        return int(self._a)

    def __index__(self):
        return self._a.__index__()

    def __bool__(self):
        return builtins.bool(self._a)  # the builtin: `bool` here is NumPy's, as in CuPy's namespace

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_wrap(row) for row in self._a)

    def __repr__(self):
        return repr(self._a).replace("array(", "cupy.ndarray(", 1)

    def __format__(self, spec):
        return format(self._a.item() if self._a.ndim == 0 else self._a, spec)


def _operator(name):
    def operate(self, *others):
        _refuse_host(others)
        result = getattr(self._a, name)(*_unwrap(others))
        if result is NotImplemented:
            return result
        if name.startswith("__i"):  # in place: the same array
            return self
        return _wrap(result)

    operate.__name__ = name
    return operate


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor", "lshift",
              "rshift"):
    for _form in (f"__{_name}__", f"__r{_name}__", f"__i{_name}__"):
        setattr(ndarray, _form, _operator(_form))
for _form in ("__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__", "__neg__", "__pos__", "__abs__",
              "__invert__"):
    setattr(ndarray, _form, _operator(_form))
ndarray.__module__, ndarray.__qualname__ = "cupy", "ndarray"


def _namespace_of(numpy_module, into):
    """Every public function of numpy_module, as device functions, into the dict `into`; its types,
    dtypes and constants as they are (CuPy uses NumPy's dtypes)."""
    for name in dir(numpy_module):
        if name.startswith("_") or name in into:
            continue
        value = getattr(numpy_module, name)
        if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, _np.ufunc)) or (
                callable(value) and not isinstance(value, type)):
            into[name] = _device_function(value, name)
        elif not isinstance(value, types.ModuleType):
            into[name] = value


def asnumpy(a, stream=None):
    """The host copy of a device array (or a host array, as it is)."""
    return a.get() if isinstance(a, ndarray) else _np.asarray(a)


def get_array_module(*arrays):
    return sys.modules[__name__] if any(isinstance(a, ndarray) for a in arrays) else _np


_namespace_of(_np, globals())


def _submodule(name, **attributes):
    """A module cupy.<name>, importable as such (`from cupy.linalg import *`)."""
    module = types.ModuleType(f"{__name__}.{name}")
    module.__dict__.update(attributes)
    sys.modules[module.__name__] = module
    return module


linalg, fft = _submodule("linalg"), _submodule("fft")
_namespace_of(_np.linalg, vars(linalg))
_namespace_of(_np.fft, vars(fft))


class Device:
    """cupy.cuda.Device: the one GPU of the stand-in."""

    def __init__(self, device=0):
        self.id = device

    def synchronize(self):
        Device.synchronized += 1

    synchronized = 0  # how many times anyone waited for the device, for tests that want to know

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


cuda = _submodule("cuda", Device=Device)
cuda.device = _submodule("cuda.device", Device=Device)
cuda.runtime = _submodule("cuda.runtime", getDeviceCount=lambda: 1)


class RandomState:
    """cupy.random.RandomState: noise drawn on the device, float32 or float64 only."""

    def __init__(self, seed=None):
        self._rng = _np.random.default_rng(seed)

    @staticmethod
    def _checked(dtype):
        dtype = _np.dtype(dtype)
        if dtype not in (_np.float32, _np.float64):
            raise TypeError(f"Unsupported dtype {dtype}")
        return dtype

    def standard_normal(self, size=None, dtype=float):
        return ndarray(_np.asarray(self._rng.standard_normal(size, dtype=self._checked(dtype))))

    def uniform(self, low=0.0, high=1.0, size=None, dtype=float):
        return ndarray(_np.asarray(self._rng.uniform(low, high, size).astype(self._checked(dtype))))


random = _submodule("random", RandomState=RandomState)
