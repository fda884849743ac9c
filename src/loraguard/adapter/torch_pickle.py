"""Read tensor metadata from a PyTorch `.bin`/`.pt` pickle without running any of it.

The unpickler resolves no real global: every `GLOBAL` becomes an inert stub. Only the names in
`SAFE_GLOBALS` (tensor storage and rebuild functions, as `torch.load(weights_only=True)` allows)
are understood; any other reference (e.g. `os.system`, `builtins.eval`) is reported and never
called. torch is not imported.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loraguard.adapter.tensors import DTYPE_BYTES, TensorMeta
from loraguard.errors import AdapterFormatError

STORAGE_DTYPES = {
    "FloatStorage": "F32",
    "DoubleStorage": "F64",
    "HalfStorage": "F16",
    "BFloat16Storage": "BF16",
    "LongStorage": "I64",
    "IntStorage": "I32",
    "ShortStorage": "I16",
    "CharStorage": "I8",
    "ByteStorage": "U8",
    "BoolStorage": "BOOL",
}
_DTYPE_NAMES = {
    "float32": "F32",
    "float": "F32",
    "float64": "F64",
    "float16": "F16",
    "half": "F16",
    "bfloat16": "BF16",
    "int64": "I64",
    "int32": "I32",
    "int16": "I16",
    "int8": "I8",
    "uint8": "U8",
    "bool": "BOOL",
}
_REBUILDERS = {"_rebuild_tensor_v2", "_rebuild_tensor", "_rebuild_parameter", "_rebuild_parameter_with_state"}
SAFE_GLOBALS = frozenset(
    {
        ("collections", "OrderedDict"),
        ("torch", "Size"),
        ("torch.storage", "UntypedStorage"),
        ("torch", "UntypedStorage"),
        ("torch._utils", "_rebuild_tensor_v2"),
        ("torch._utils", "_rebuild_tensor"),
        ("torch._utils", "_rebuild_parameter"),
        ("torch._utils", "_rebuild_parameter_with_state"),
        ("torch", "device"),
        ("torch", "strided"),
    }
    | {("torch", name) for name in STORAGE_DTYPES}
    | {("torch", name) for name in _DTYPE_NAMES}
)


@dataclass(frozen=True)
class PickleScan:
    """Tensors found in a pickle and every global it references outside `SAFE_GLOBALS`."""

    tensors: dict[str, TensorMeta]
    unsafe_globals: tuple[str, ...]
    zip_prefix: str | None
    """The zip archive's folder (`archive/`), or None for a legacy, non-zip pickle."""


class _Stub:
    """Stands in for any global. Calling it records the call; it never runs anything."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def __call__(self, *args: Any, **kwargs: Any) -> _Call:
        return _Call(self, args)


class _Call:
    def __init__(self, stub: _Stub, args: tuple[Any, ...]) -> None:
        self.stub, self.args = stub, args

    def __setstate__(self, state: Any) -> None:  # BUILD on a stub result: ignore
        self.state = state

    def __setitem__(self, key: Any, value: Any) -> None:  # SETITEM(S) on a stub dict (OrderedDict)
        self.__dict__.setdefault("items", {})[key] = value

    def append(self, value: Any) -> None:
        self.__dict__.setdefault("list", []).append(value)

    def extend(self, values: Any) -> None:
        self.__dict__.setdefault("list", []).extend(values)


@dataclass(frozen=True)
class _Storage:
    dtype: str
    key: str


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data))
        self.unsafe: list[str] = []

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in SAFE_GLOBALS:
            self.unsafe.append(f"{module}.{name}")
        return _Stub(module, name)

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage":
            storage_type, key = pid[1], str(pid[2])
            dtype = "U8"
            if isinstance(storage_type, _Stub):
                dtype = STORAGE_DTYPES.get(storage_type.name, "U8")
            return _Storage(dtype, key)
        raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")


def scan_torch_pickle(path: Path) -> PickleScan:
    """Read a torch zip checkpoint (or a legacy pickle) into tensor metadata, executing nothing."""
    try:
        if zipfile.is_zipfile(path):
            return _scan_zip(path)
        data = path.read_bytes()
    except (OSError, zipfile.BadZipFile) as exc:
        raise AdapterFormatError(f"{path}: cannot read the pickle archive ({exc}). Re-download it.", path=path) from exc
    unpickler = _Unpickler(data)
    try:
        unpickler.load()
    except Exception as exc:  # any malformed pickle: report, never crash
        if unpickler.unsafe:
            return PickleScan({}, tuple(unpickler.unsafe), None)
        raise AdapterFormatError(f"{path}: not a readable PyTorch pickle ({exc}).", path=path) from exc
    # A legacy (pre-1.6) torch file stores its tensors after the first pickles; we only vet globals.
    return PickleScan({}, tuple(unpickler.unsafe), None)


def _scan_zip(path: Path) -> PickleScan:
    with zipfile.ZipFile(path) as zf:
        pkl = [n for n in zf.namelist() if n.endswith("data.pkl")]
        if not pkl:
            raise AdapterFormatError(f"{path}: zip archive without data.pkl: not a PyTorch checkpoint.", path=path)
        prefix = pkl[0][: -len("data.pkl")]
        unpickler = _Unpickler(zf.read(pkl[0]))
        try:
            root = unpickler.load()
        except Exception as exc:
            if unpickler.unsafe:
                return PickleScan({}, tuple(unpickler.unsafe), prefix)
            raise AdapterFormatError(f"{path}: corrupt pickle in {pkl[0]} ({exc}).", path=path) from exc
        items = _as_mapping(root)
        tensors: dict[str, TensorMeta] = {}
        for name, value in items.items():
            meta = _tensor_meta(str(name), value)
            if meta is not None:
                tensors[meta.name] = meta
        return PickleScan(tensors, tuple(unpickler.unsafe), prefix)


def _as_mapping(root: Any) -> dict[Any, Any]:
    if isinstance(root, dict):
        return root
    if isinstance(root, _Call):
        return dict(getattr(root, "items", {}))
    return {}


def _tensor_meta(name: str, value: Any) -> TensorMeta | None:
    while isinstance(value, _Call) and value.stub.name in {"_rebuild_parameter", "_rebuild_parameter_with_state"}:
        value = value.args[0] if value.args else None
    if not (isinstance(value, _Call) and value.stub.name in _REBUILDERS and len(value.args) >= 3):
        return None
    storage, offset, size = value.args[0], value.args[1], value.args[2]
    if not isinstance(storage, _Storage):
        return None
    shape = tuple(int(d) for d in (size.args[0] if isinstance(size, _Call) and size.args else size))
    width = DTYPE_BYTES[storage.dtype]
    numel = 1
    for d in shape:
        numel *= d
    return TensorMeta(name, storage.dtype, shape, int(offset) * width, numel * width, storage=storage.key)
