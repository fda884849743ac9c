"""Read tensor metadata from a PyTorch `.bin`/`.pt` pickle without running any of it.

The unpickler resolves no real global: every `GLOBAL` becomes an inert stub. Only the names in
`SAFE_GLOBALS` (tensor storage and rebuild functions, as `torch.load(weights_only=True)` allows)
are understood; any other reference (e.g. `os.system`, `builtins.eval`) is reported and never
called. torch is not imported.

The file is untrusted, so before a byte is unpickled, in bounded time and memory:

- a zip checkpoint's central directory must stay under `MAX_DIRECTORY_BYTES`, and `data.pkl` is read
  through the decompressor with a cap (`MAX_PICKLE_BYTES`): a record that inflates from 2 MB to 2 GiB
  is refused after 16 MiB, whatever size its header claims;
- every pickle is walked opcode by opcode first (`walk_pickle`): unknown opcodes, arguments running
  past the data, memo indices far beyond the objects made so far (`LONG_BINPUT 0xFFFFFFFF` would make
  CPython allocate tens of GB) and an estimated object memory above `MAX_PICKLE_MEMORY` are refused.

A legacy (pre-1.6, non-zip) file is a sequence of pickles followed by raw storage bytes: each of its
pickles is vetted the same way.
"""

from __future__ import annotations

import io
import pickle
import pickletools
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from loraguard.adapter.tensors import DTYPE_BYTES, MAX_NAME_CHARS, TensorMeta
from loraguard.errors import AdapterFormatError, InputLimitError, LoraguardError

MAX_PICKLE_BYTES = 16 << 20
"""Largest pickle read (16 MiB inflated). A PEFT adapter's data.pkl takes about 150 bytes per tensor."""
MAX_PICKLE_MEMORY = 128 << 20
"""Largest estimated memory the objects of one pickle may take (about 2.7 KB per tensor: ~45,000 tensors)."""
MAX_DIRECTORY_BYTES = 16 << 20
"""Largest zip central directory read (a torch checkpoint lists one record per storage)."""
LEGACY_PICKLES = 5
"""A legacy torch file holds five pickles (magic number, protocol, system info, the object, storage keys)."""

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


# -- the opcode walk ------------------------------------------------------------------------------

_OPS = {op.code.encode("latin-1")[0]: op for op in pickletools.opcodes}
_HEAVY = {"EMPTY_SET": 240, "FROZENSET": 240, "REDUCE": 400, "BUILD": 400, "OBJ": 400, "INST": 400, "NEWOBJ": 400}
_HEAVY["NEWOBJ_EX"] = 400
_OBJECT_COST = 96
"""Estimated bytes an opcode's result takes (the object, its stack or memo slot); strings add their length."""
# Per opcode byte: (how its argument is read, fixed size or length-prefix width, struct format, cost).
# Kinds: 0 none, 1 fixed size, 2 one line, 3 two lines (GLOBAL, INST), 4 length-prefixed, 5 a memo PUT.
_NONE, _FIXED, _LINE, _LINES, _PREFIXED, _PUT = range(6)
_PREFIX = {-2: (1, "<B"), -3: (4, "<i"), -4: (4, "<I"), -5: (8, "<Q")}


def _table() -> dict[int, tuple[int, int, str, int, str]]:
    table = {}
    for code, op in _OPS.items():
        cost = _HEAVY.get(op.name, _OBJECT_COST)
        n = op.arg.n if op.arg is not None else None
        if op.name in ("BINPUT", "LONG_BINPUT", "PUT"):
            kind, size, fmt = _PUT, (n if n is not None and n > 0 else 0), ""
        elif n is None:
            kind, size, fmt = _NONE, 0, ""
        elif n >= 0:
            kind, size, fmt = _FIXED, n, ""
        elif n == -1:
            kind, size, fmt = (_LINES if op.name in ("GLOBAL", "INST") else _LINE), 0, ""
        else:
            kind, (size, fmt) = _PREFIXED, _PREFIX[n]
        table[code] = (kind, size, fmt, cost, op.name)
    return table


_TABLE = _table()
_STOP = ord(".")


def walk_pickle(data: bytes, start: int = 0, *, memory_limit: int = MAX_PICKLE_MEMORY) -> int:
    """Walk one pickle of `data` from `start` without building anything; the offset after its STOP.

    Raises `InputLimitError` for an unknown opcode, an argument that runs past the data, a memo index
    beyond the objects made so far, or an estimated object memory above `memory_limit`. Time: one pass.
    """
    pos, end, ops, cost = start, len(data), 0, 0
    table, unpack = _TABLE, struct.unpack_from
    while pos < end:
        code = data[pos]
        entry = table.get(code)
        if entry is None:
            raise InputLimitError(f"unknown opcode 0x{code:02x} at byte {pos}")
        kind, size, fmt, weight, _ = entry
        at = pos
        pos += 1
        ops += 1
        cost += weight
        if kind == _FIXED:
            pos += size
        elif kind == _PREFIXED:
            if pos + size > end:
                raise InputLimitError(f"{entry[4]} at byte {at} is cut short")
            (length,) = unpack(fmt, data, pos)
            if length < 0:
                raise InputLimitError(f"{entry[4]} at byte {at} has a negative length")
            pos += size + length
            cost += 4 * length  # a str of non-Latin text takes up to 4 bytes a character
        elif kind == _LINE or kind == _LINES:
            for _ in range(1 if kind == _LINE else 2):
                stop = data.find(b"\n", pos, min(end, pos + 65_536))
                if stop == -1:
                    raise InputLimitError(f"{entry[4]} at byte {at} has no end of line within 64 KiB")
                pos = stop + 1
        elif kind == _PUT:
            arg = data[pos : pos + size] if size else data[pos : data.find(b"\n", pos, min(end, pos + 32)) + 1]
            pos += len(arg)
            index = _memo_index(entry[4], arg)
            if index > ops:  # CPython sizes its memo array by the index: 0xFFFFFFFF would take ~64 GB
                raise InputLimitError(f"{entry[4]} at byte {at}: memo slot {index:,} after {ops:,} opcodes")
        if pos > end:
            raise InputLimitError(f"{entry[4]} at byte {at} claims {pos - at:,} bytes past the end of the pickle")
        if cost > memory_limit:
            raise InputLimitError(
                f"the pickle would build more than {memory_limit >> 20} MiB of objects ({ops:,} opcodes read)"
            )
        if code == _STOP:
            return pos
    raise InputLimitError("the pickle ends without a STOP opcode (truncated)")


def _memo_index(name: str, arg: bytes) -> int:
    if name != "PUT":
        return int.from_bytes(arg, "little")
    if not arg.endswith(b"\n"):
        raise InputLimitError("PUT without an end of line")
    text = arg.strip()
    if not text.isdigit() or len(text) > 12:
        raise InputLimitError(f"PUT with memo index {text[:20]!r}")
    return int(text)


# -- unpickling into stubs ------------------------------------------------------------------------


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
        raise pickle.UnpicklingError(f"unsupported persistent id {type(pid).__name__}")


def _unpickle(data: bytes) -> tuple[Any, list[str], Exception | None]:
    """(root object or None, unsafe globals, the error if unpickling failed). `data` must have been walked."""
    unpickler = _Unpickler(data)
    try:
        return unpickler.load(), unpickler.unsafe, None
    except Exception as exc:  # any malformed pickle: report, never crash
        return None, unpickler.unsafe, exc


def scan_torch_pickle(path: Path) -> PickleScan:
    """Read a torch zip checkpoint (or a legacy pickle) into tensor metadata, executing nothing.

    Raises `AdapterFormatError` naming the file for anything unreadable or beyond the limits above."""
    try:
        with open(path, "rb") as handle:
            if zipfile.is_zipfile(handle):
                handle.seek(0)
                return _scan_zip(path, handle)
            handle.seek(0)
            data = handle.read(MAX_PICKLE_BYTES)
    except LoraguardError:
        raise
    except Exception as exc:  # OSError, a damaged zip (BadZipFile, zlib.error, encrypted records...)
        raise AdapterFormatError(f"{path}: cannot read the pickle file ({exc}). Re-download it.", path=path) from None
    return _scan_legacy(path, data)


def _scan_legacy(path: Path, data: bytes) -> PickleScan:
    unsafe: list[str] = []
    pos = 0
    for index in range(LEGACY_PICKLES):
        try:
            stop = walk_pickle(data, pos)
        except InputLimitError as exc:
            if index == 0:
                raise AdapterFormatError(f"{path}: not a readable PyTorch pickle ({exc}).", path=path) from None
            break  # the raw storage bytes that follow a legacy file's pickles
        _, found, error = _unpickle(data[pos:stop])
        unsafe += found
        if error is not None and index == 0 and not unsafe:
            raise AdapterFormatError(f"{path}: not a readable PyTorch pickle ({error}).", path=path)
        pos = stop
        if pos >= len(data):
            break
    # A legacy torch file stores its tensors after the pickles; only its globals are vetted.
    return PickleScan({}, tuple(unsafe), None)


def _scan_zip(path: Path, handle: IO[bytes]) -> PickleScan:
    _check_directory(path, handle)
    handle.seek(0)
    try:
        with zipfile.ZipFile(handle) as zf:
            pkl = [info for info in zf.infolist() if info.filename.endswith("data.pkl")]
            if not pkl:
                raise AdapterFormatError(f"{path}: zip archive without data.pkl: not a PyTorch checkpoint.", path=path)
            info = pkl[0]
            data = read_record(zf, info, MAX_PICKLE_BYTES, path)
    except LoraguardError:
        raise
    except Exception as exc:  # BadZipFile, zlib.error, an encrypted record (RuntimeError)...
        raise AdapterFormatError(f"{path}: cannot read the zip archive ({exc}). Re-download it.", path=path) from None
    prefix = info.filename[: -len("data.pkl")]
    try:
        walk_pickle(data)
    except InputLimitError as exc:
        raise AdapterFormatError(f"{path}: {info.filename} is not a readable pickle ({exc}).", path=path) from None
    root, unsafe, error = _unpickle(data)
    if error is not None:
        if unsafe:
            return PickleScan({}, tuple(unsafe), prefix)
        raise AdapterFormatError(f"{path}: corrupt pickle in {info.filename} ({error}).", path=path)
    tensors: dict[str, TensorMeta] = {}
    for name, value in _as_mapping(root).items():
        if not isinstance(name, str):
            continue
        if len(name) > MAX_NAME_CHARS:
            raise AdapterFormatError(
                f"{path}: a {len(name):,}-character tensor name, more than the {MAX_NAME_CHARS:,} loraguard accepts "
                "(PEFT's keys are under 200): not an adapter file.",
                path=path,
            )
        meta = _tensor_meta(name, value)
        if meta is not None:
            tensors[meta.name] = meta
    return PickleScan(tensors, tuple(unsafe), prefix)


def read_record(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, path: Path) -> bytes:
    """The inflated bytes of zip record `info`, refusing more than `limit` (declared or actual)."""
    if info.file_size > limit:
        raise AdapterFormatError(
            f"{path}: {info.filename} declares {info.file_size:,} bytes inflated, more than the {limit:,} loraguard "
            "reads: not a PEFT adapter checkpoint (or a compression bomb).",
            path=path,
        )
    with zf.open(info) as record:
        data = record.read(limit + 1)
    if len(data) > limit:
        raise AdapterFormatError(
            f"{path}: {info.filename} inflates to more than {limit:,} bytes although it declares "
            f"{info.file_size:,}: a compression bomb.",
            path=path,
        )
    return data


def _check_directory(path: Path, handle: IO[bytes]) -> None:
    """Refuse a central directory above `MAX_DIRECTORY_BYTES` before `ZipFile` reads it into objects."""
    end = getattr(zipfile, "_EndRecData", None)
    if end is None:  # pragma: no cover - a zipfile without the helper: ZipFile reads the directory as is
        return
    record = end(handle)
    if record and record[zipfile._ECD_SIZE] > MAX_DIRECTORY_BYTES:  # type: ignore[attr-defined]
        raise AdapterFormatError(
            f"{path}: a zip directory of {record[zipfile._ECD_SIZE]:,} bytes ({record[zipfile._ECD_ENTRIES_TOTAL]:,} "  # type: ignore[attr-defined]
            f"entries), more than the {MAX_DIRECTORY_BYTES:,} loraguard reads: not a PEFT adapter checkpoint.",
            path=path,
        )


def _as_mapping(root: Any) -> dict[Any, Any]:
    if isinstance(root, dict):
        return root
    if isinstance(root, _Call):
        return dict(getattr(root, "items", {}))
    return {}


def _tensor_meta(name: str, value: Any) -> TensorMeta | None:
    for _ in range(8):  # _rebuild_parameter(_rebuild_tensor_v2(...)) nests once; never loop on a cycle
        if isinstance(value, _Call) and value.stub.name in {"_rebuild_parameter", "_rebuild_parameter_with_state"}:
            value = value.args[0] if value.args else None
    if not (isinstance(value, _Call) and value.stub.name in _REBUILDERS and len(value.args) >= 3):
        return None
    storage, offset, size = value.args[0], value.args[1], value.args[2]
    if not isinstance(storage, _Storage):
        return None
    dims = size.args[0] if isinstance(size, _Call) and size.args else size
    if not isinstance(dims, tuple | list) or not all(_is_index(d) for d in dims) or not _is_index(offset):
        return None
    shape = tuple(dims)
    width = DTYPE_BYTES[storage.dtype]
    numel = 1
    for d in shape:
        numel *= d
        if numel > 1 << 62:
            return None
    return TensorMeta(name, storage.dtype, shape, offset * width, numel * width, storage=storage.key)


def _is_index(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 62
