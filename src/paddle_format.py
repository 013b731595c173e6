"""Paddle's two weight file formats, read with numpy alone (PaddlePaddle is never imported).

* ERNIE 1.0's release (``save_params``): one LoDTensor file per variable: uint32 version, uint64 LoD level count
  (and levels), uint32 tensor version, int32 size of a ``TensorDesc`` protobuf, the protobuf, then the raw data.
* PaddleNLP's ``.pdparams``: a pickle (any protocol, 0 to 5) of name -> numpy array, unpickled with only numpy's
  array reconstructors allowed, so a hostile file cannot run code.
"""
import os
import pickle
import re
import struct

import numpy as np


# Paddle VarType codes of the tensor element types.
PADDLE_DTYPES = {0: np.bool_, 1: np.int16, 2: np.int32, 3: np.int64, 4: np.float16, 5: np.float32, 6: np.float64,
                 20: np.uint8, 21: np.int8, 22: "bfloat16"}


def _varint(buffer, pos, path):
    value = shift = 0
    while True:
        if pos >= len(buffer):
            raise ValueError(f"{path}: truncated tensor description")
        byte = buffer[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _tensor_desc(buffer, path):
    """(data type code, dims) from a serialized ``VarType.TensorDesc`` protobuf message."""
    pos, dtype, dims = 0, None, []
    while pos < len(buffer):
        key, pos = _varint(buffer, pos, path)
        if key == 0x08:  # field 1 data_type, varint
            dtype, pos = _varint(buffer, pos, path)
        elif key == 0x10:  # field 2 dims, one varint
            dim, pos = _varint(buffer, pos, path)
            dims.append(dim)
        elif key == 0x12:  # field 2 dims, packed
            size, pos = _varint(buffer, pos, path)
            end = pos + size
            while pos < end:
                dim, pos = _varint(buffer, pos, path)
                dims.append(dim)
        else:
            raise ValueError(f"{path}: unexpected field {key >> 3} in the tensor description")
    if dtype not in PADDLE_DTYPES:
        raise ValueError(f"{path}: unsupported tensor data type code {dtype}")
    if any(dim >= 2 ** 63 for dim in dims):  # a negative int64 (unknown size) cannot be stored data
        raise ValueError(f"{path}: negative dimension in tensor shape")
    return dtype, dims


def read_lod_tensor(path):
    """One variable file of Paddle's ``save_vars``/``save_params`` (LoDTensor binary) format, as a numpy array.

    Layout: uint32 version 0 | uint64 LoD levels, each uint64 byte count + offsets | uint32 tensor version 0 |
    int32 description size | TensorDesc protobuf | raw little-endian data.
    """
    with open(path, "rb") as f:
        data = f.read()
    pos = 0

    def take(size, what):
        nonlocal pos
        if pos + size > len(data):
            raise ValueError(f"{path}: truncated Paddle tensor file: {what} needs bytes {pos}..{pos + size} "
                             f"but the file has {len(data)}")
        chunk = data[pos:pos + size]
        pos += size
        return chunk

    (version,) = struct.unpack("<I", take(4, "version"))
    if version != 0:
        raise ValueError(f"{path}: not a Paddle LoDTensor file (version field {version}, expected 0)")
    (lod_levels,) = struct.unpack("<Q", take(8, "LoD level count"))
    for _ in range(lod_levels):
        (size,) = struct.unpack("<Q", take(8, "LoD level size"))
        take(size, "LoD offsets")
    (tensor_version,) = struct.unpack("<I", take(4, "tensor version"))
    if tensor_version != 0:
        raise ValueError(f"{path}: not a Paddle LoDTensor file (tensor version field {tensor_version}, expected 0)")
    (desc_size,) = struct.unpack("<i", take(4, "description size"))
    if desc_size < 0:
        raise ValueError(f"{path}: not a Paddle LoDTensor file (negative description size)")
    dtype_code, dims = _tensor_desc(take(desc_size, "tensor description"), path)
    dtype = np.dtype(np.uint16 if PADDLE_DTYPES[dtype_code] == "bfloat16" else PADDLE_DTYPES[dtype_code])
    raw = take(int(np.prod(dims, dtype=np.int64)) * dtype.itemsize, f"tensor data {dims}")
    if pos != len(data):
        raise ValueError(f"{path}: {len(data) - pos} unexpected bytes after the tensor data (shape {dims})")
    array = np.frombuffer(raw, dtype.newbyteorder("<")).reshape(dims)
    if PADDLE_DTYPES[dtype_code] == "bfloat16":
        return (array.astype(np.uint32) << 16).view(np.float32)
    return array.astype(array.dtype.newbyteorder("="))


def paddle_static_dirs(path):
    """(directory of variable files, directory that may hold ernie_config.json and vocab.txt)."""
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path}: input directory not found")
    if os.path.isdir(os.path.join(path, "params")):
        return os.path.join(path, "params"), path
    return path, os.path.dirname(os.path.abspath(path))


def read_paddle_static(params_dir):
    names = sorted(name for name in os.listdir(params_dir) if os.path.isfile(os.path.join(params_dir, name)))
    if not names:
        raise ValueError(f"{params_dir}: no parameter files in this directory")
    return {name: read_lod_tensor(os.path.join(params_dir, name)) for name in names}


class RefusedPickleGlobal(pickle.UnpicklingError):
    pass


def _latin1_bytes(text, encoding):
    """Pickle protocols 0-2 store ``bytes`` as ``_codecs.encode(text, "latin1")``; no other codec is allowed."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise RefusedPickleGlobal(f"refusing _codecs.encode with {type(text).__name__} and codec {encoding!r} "
                                  "(only latin1 text, as pickle writes bytes, is allowed)")
    return text.encode("latin1")


def _empty_bytes(*args):
    """Pickle protocols 0-2 store ``b""`` as a call of ``bytes()`` without arguments; no other call is allowed."""
    if args:
        raise RefusedPickleGlobal(f"refusing bytes() with {len(args)} arguments (only bytes() is allowed)")
    return b""


class _NumpyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays only: a .pdparams file must not run arbitrary code.

    Allowed are exactly the globals that pickling dicts of numpy arrays and scalars emits (found by pickling them
    under every protocol): ``_reconstruct``, ``ndarray``, ``dtype`` and ``scalar`` (all protocols), ``_frombuffer``
    (protocol 5), and for protocols 0-2 the ``bytes`` encodings, through wrappers that accept only those uses.
    Out-of-band buffers are not offered, so a pickle that needs them fails as unreadable.
    """
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"): None, ("numpy.core.multiarray", "scalar"): None,
               ("numpy.core.numeric", "_frombuffer"): None, ("numpy", "ndarray"): None, ("numpy", "dtype"): None,
               ("collections", "OrderedDict"): None, ("_codecs", "encode"): _latin1_bytes,
               ("__builtin__", "bytes"): _empty_bytes, ("builtins", "bytes"): _empty_bytes}
    # Files written under numpy 2 name numpy._core, under numpy 1 numpy.core; load with the installed one.
    CORE = "numpy._core" if int(np.__version__.split(".")[0]) >= 2 else "numpy.core"

    def find_class(self, module, name):
        canonical = re.sub(r"^numpy\._core\b", "numpy.core", module)
        if (canonical, name) not in self.ALLOWED:
            raise RefusedPickleGlobal(f"refusing to load {module}.{name} (only numpy arrays are allowed)")
        return self.ALLOWED[canonical, name] or super().find_class(canonical.replace("numpy.core", self.CORE, 1),
                                                                     name)


def read_pdparams(path):
    try:
        with open(path, "rb") as f:
            state = _NumpyUnpickler(f, encoding="latin1").load()
    except RefusedPickleGlobal as err:
        raise ValueError(f"{path}: {err}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise ValueError(f"{path}: not a .pdparams pickle of numpy arrays, or truncated ({err})") from None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a dict of parameters, got {type(state).__name__}")
    state.pop("StructuredToParameterName@@", None)  # Paddle's name bookkeeping, not a tensor
    for name, value in state.items():
        if not isinstance(value, np.ndarray):
            raise ValueError(f"{path}: entry {name!r} is a {type(value).__name__}, not a numpy array")
        if value.dtype.hasobject:
            raise ValueError(f"{path}: entry {name!r} is an array of Python objects, not of numbers")
    return state
