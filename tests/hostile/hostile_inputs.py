"""Builders of hostile inputs for `tests/hostile/`, and the time and memory bound every case asserts.

Each builder makes the smallest file that would have blown up time or memory before the limits existed
(a zip record inflating to GiBs is a few KB here, a 17 MB config is a sparse file), so the suite itself
stays cheap; `bounded` measures what the code under test really took (`time.perf_counter`, and
`tracemalloc` for the peak of Python and NumPy allocations).
"""

from __future__ import annotations

import json
import shutil
import struct
import time
import tracemalloc
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fault_cases.bases import GEOMETRY, TINY, tiny_config
from fault_cases.peft_files import stamp_json, write_json, write_lora

MB = 1 << 20
TINY_NAME = "loraguard/tiny-qwen2"


@dataclass
class Bound:
    """What a `bounded` block took: seconds and peak traced bytes (filled in when the block ends)."""

    seconds: float = 0.0
    peak_bytes: int = 0


@contextmanager
def bounded(seconds: float = 2.0, megabytes: float = 200.0) -> Iterator[Bound]:
    """Assert the block ends within `seconds` and allocates at most `megabytes` at its peak.

    The bounds are generous on purpose (the machine is shared): they separate "milliseconds and a few MB"
    from the minutes and gigabytes these inputs took before, not fast from slightly slower.
    """
    seen = Bound()
    tracemalloc.start()
    tracemalloc.reset_peak()
    started = time.perf_counter()
    try:
        yield seen
    finally:
        seen.seconds = time.perf_counter() - started
        seen.peak_bytes = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    # Time is only a tripwire for the minutes these inputs took before (tracemalloc itself slows the block
    # several-fold, and CI runs two test workers on two cores): the bound asked for, times 5, at least 10 s.
    # Speed targets live in benchmarks/, not here.
    limit = max(10.0, 5 * seconds)
    assert seen.seconds < limit, f"took {seen.seconds:.2f} s (tripwire {limit:g} s)"
    assert seen.peak_bytes < megabytes * MB, f"peak {seen.peak_bytes / MB:.0f} MB (bound {megabytes} MB)"


# -- adapters and bases --------------------------------------------------------------------------------


def tiny_base(root: Path) -> Path:
    """A config-only tiny Qwen2 base folder (what the static check reads)."""
    folder = root / "base"
    if not (folder / "config.json").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / "config.json", tiny_config())
    return folder


def good_adapter(root: Path, name: str = "good") -> Path:
    """A healthy LoRA for the tiny base, in PEFT's format (numpy-written)."""
    folder = root / name
    if not (folder / "adapter_config.json").is_file():
        write_lora(folder, GEOMETRY[TINY], claim=TINY_NAME)
    return folder


def adapter_with_config(
    root: Path, name: str, changes: Mapping[str, Any] | None = None, raw: str | None = None
) -> Path:
    """A copy of the good adapter whose config has `changes` (or is replaced by the text `raw`)."""
    folder = root / name
    shutil.copytree(good_adapter(root), folder)
    if changes is not None:
        stamp_json(folder / "adapter_config.json", changes)
    if raw is not None:
        (folder / "adapter_config.json").write_text(raw, encoding="utf-8")
    return folder


def nested_json(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


# -- safetensors ---------------------------------------------------------------------------------------


def safetensors_bytes(header: Mapping[str, Any] | bytes, data: bytes = b"", *, header_len: int | None = None) -> bytes:
    """A safetensors file: the length, the header (a mapping dumped as JSON, or raw bytes), the data."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text) if header_len is None else header_len) + text + data


def write_weights(folder: Path, content: bytes, name: str = "adapter_model.safetensors") -> Path:
    path = folder / name
    path.write_bytes(content)
    return path


# -- zip and pickle bombs ------------------------------------------------------------------------------


def deflate_zeros(inflated: int, block: int = MB) -> bytes:
    """A raw deflate stream that inflates to `inflated` zero bytes, built from one compressed block
    repeated (a full flush resets the compressor, so every block compresses to the same bytes): a
    2 GiB stream is about 2 MB and takes milliseconds to build."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = comp.compress(b"\0" * block) + comp.flush(zlib.Z_FULL_FLUSH)
    count, rest = divmod(inflated, block)
    tail = comp.compress(b"\0" * rest) + comp.flush(zlib.Z_FINISH)
    return piece * count + tail


def write_zip(path: Path, records: Mapping[str, tuple[bytes, int, int]]) -> Path:
    """A zip file written by hand: `records` maps a name to (deflated data, declared inflated size, crc),
    so a record may declare any size and hold a stream that inflates to another."""
    local, central, offset = [], [], 0
    for name, (data, size, crc) in records.items():
        encoded = name.encode()
        head = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(data), size, len(encoded), 0)
        local.append(head + encoded + data)
        central.append(
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                20,
                20,
                0,
                8,
                0,
                0x21,
                crc,
                len(data),
                size,
                len(encoded),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + encoded
        )
        offset += len(local[-1])
    directory = b"".join(central)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), len(directory), offset, 0)
    path.write_bytes(b"".join(local) + directory + end)
    return path


def unicode_op(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data  # BINUNICODE


def tensor_pickle(entries: Mapping[str, tuple[str, tuple[int, ...]]]) -> bytes:
    """A protocol-2 pickle shaped like torch.save's data.pkl, assembled opcode by opcode (no torch):
    {name: torch._utils._rebuild_tensor_v2(storage, 0, shape, stride, False, OrderedDict())}, each storage
    the persistent id ('storage', torch.FloatStorage, key, 'cpu', numel)."""
    out = [b"\x80\x02}"]  # PROTO 2, EMPTY_DICT
    for name, (key, shape) in entries.items():
        numel = 1
        for d in shape:
            numel *= d
        pid = b"(" + unicode_op("storage") + b"ctorch\nFloatStorage\n" + unicode_op(key) + unicode_op("cpu")
        pid += b"J" + struct.pack("<i", numel) + b"tQ"  # TUPLE, BINPERSID
        dims = b"(" + b"".join(b"J" + struct.pack("<i", d) for d in shape) + b"t"
        strides = b"(" + b"".join(b"K\x01" for _ in shape) + b"t"
        hooks = b"ccollections\nOrderedDict\n)R"  # OrderedDict()
        args = b"(" + pid + b"K\x00" + dims + strides + b"\x89" + hooks + b"t"  # storage, offset, ..., TUPLE
        out.append(unicode_op(name) + b"ctorch._utils\n_rebuild_tensor_v2\n" + args + b"Rs")  # REDUCE, SETITEM
    out.append(b".")
    return b"".join(out)
