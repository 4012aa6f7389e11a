"""Read ``torch.save`` files of the legacy (non-zip) format with :mod:`pickle` and numpy alone.

Before torch 1.6 (and since, with ``_use_new_zipfile_serialization=False``), ``torch.save``
wrote four pickles (magic number, protocol version, system info, the object with its storages
as persistent ids), then the sorted storage keys and each storage's raw bytes (an int64
element count, then the elements, little-endian). Some packaged models (Resemblyzer's
``pretrained.pt``) still come this way; this reader gets their state dict without torch, and
without running any code from the file.
"""

from __future__ import annotations

import os
import pickle
import struct
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_MAGIC = 0x1950A86A20F9469CFC6C
_PROTOCOL = 1001
_DTYPES = {  # torch storage class -> numpy dtype (BFloat16 is read as its 16 raw bits)
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "BFloat16Storage": "<u2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


@dataclass(frozen=True)
class _StorageType:
    name: str


@dataclass(frozen=True)
class _Storage:
    key: str
    dtype: str
    offset: int  # elements into the root storage (old torch's storage views)


@dataclass(frozen=True)
class _Tensor:
    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage: _Storage, offset: int, shape, stride, *_) -> _Tensor:
    return _Tensor(storage, storage.offset + offset, tuple(shape), tuple(stride))


def _rebuild_parameter(data: _Tensor, *_) -> _Tensor:
    return data


def _text(value: str | bytes) -> str:
    return value.decode("ascii") if isinstance(value, bytes) else str(value)


class _Unpickler(pickle.Unpickler):
    """Resolves only what a state dict needs: tensors, storages and OrderedDict."""

    _GLOBALS = {
        ("collections", "OrderedDict"): OrderedDict,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    }

    def __init__(self, file) -> None:
        super().__init__(file)
        self.dtypes: dict[str, str] = {}  # root storage key -> dtype

    def find_class(self, module: str, name: str):
        if (module, name) in self._GLOBALS:
            return self._GLOBALS[module, name]
        if module == "torch" and name in _DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a torch checkpoint")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or len(pid) != 6 or _text(pid[0]) != "storage":
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        storage_type, key, _location, _numel, view = pid[1:]
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unsupported storage type {storage_type!r}")
        key = _text(key)
        self.dtypes[key] = _DTYPES[storage_type.name]
        return _Storage(key, self.dtypes[key], 0 if view is None else int(view[1]))


def load_legacy_torch(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a state dict saved by ``torch.save`` in the legacy (non-zip) format.

    Only :mod:`pickle` is used, with a restricted unpickler (no code from the file runs). The
    state dict is ``checkpoint["model_state"]`` (GE2E training checkpoints) or
    ``checkpoint["state_dict"]`` when present, else the pickled mapping itself; entries that
    are not tensors are dropped, and storages no tensor of it uses are skipped unread.

    Args:
        path: the ``.pt`` file.

    Returns:
        Parameter name -> a contiguous array in native byte order (bfloat16 as float32).

    Raises:
        ValueError: not a legacy torch file, or one this reader does not support.
    """
    with Path(path).open("rb") as file:
        if file.read(2) == b"PK":
            raise ValueError(f"{path} is a zip-format torch file, not the legacy format")
        file.seek(0)
        try:
            header = [_Unpickler(file).load() for _ in range(3)]
            if header[:2] != [_MAGIC, _PROTOCOL]:
                raise ValueError(f"{path} is not a legacy torch file (bad magic number)")
            if not header[2].get("little_endian", True):
                raise ValueError(f"{path} was saved big-endian")
            unpickler = _Unpickler(file)
            state = _state_dict(unpickler.load())
            keys = [_text(key) for key in _Unpickler(file).load()]
        except (pickle.UnpicklingError, EOFError, AttributeError, KeyError, TypeError) as err:
            raise ValueError(f"{path} is not a readable legacy torch checkpoint: {err}") from err
        wanted = {tensor.storage.key for tensor in state.values()}
        flat: dict[str, np.ndarray] = {}
        for key in keys:
            dtype = np.dtype(unpickler.dtypes[key])
            (numel,) = struct.unpack("<q", file.read(8))
            if key not in wanted:
                file.seek(numel * dtype.itemsize, os.SEEK_CUR)
                continue
            data = file.read(numel * dtype.itemsize)
            if len(data) != numel * dtype.itemsize:
                raise ValueError(f"{path} is truncated (storage {key})")
            flat[key] = np.frombuffer(data, dtype)
    return {name: _materialize(tensor, flat[tensor.storage.key]) for name, tensor in state.items()}


def _state_dict(obj) -> dict[str, _Tensor]:
    if isinstance(obj, Mapping):
        for key in ("model_state", "state_dict"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping):
        raise ValueError(f"the checkpoint holds a {type(obj).__name__}, not a state dict")
    return {str(name): value for name, value in obj.items() if isinstance(value, _Tensor)}


def _materialize(tensor: _Tensor, flat: np.ndarray) -> np.ndarray:
    if flat.dtype == np.dtype("<u2") and tensor.storage.dtype == _DTYPES["BFloat16Storage"]:
        flat = (flat.astype(np.uint32) << 16).view(np.float32)
    if any(size == 0 for size in tensor.shape):
        return np.zeros(tensor.shape, flat.dtype.newbyteorder("="))
    last = tensor.offset + sum(
        (n - 1) * s for n, s in zip(tensor.shape, tensor.stride, strict=True)
    )
    if tensor.offset < 0 or last >= flat.size or min(tensor.stride, default=0) < 0:
        raise ValueError(f"a tensor of shape {tensor.shape} lies outside its storage")
    strides = [s * flat.itemsize for s in tensor.stride]
    view = np.lib.stride_tricks.as_strided(flat[tensor.offset :], tensor.shape, strides)
    return np.array(view, dtype=flat.dtype.newbyteorder("="))
