"""Hostile `adapter_model.bin` files for the `unsafe-pickle` cases. Nothing here ever unpickles.

The pickles are assembled opcode by opcode, so they name `os.system` on every platform (pickling
the real function would write `posix.system`), and no object with a live `__reduce__` is needed.
Unpickling one would run `echo pwned > MARKER`; a check that stays safe leaves MARKER absent.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

MARKER_NAME = "PWNED"
"""File the hostile pickle's command would create inside the adapter folder."""


def _unicode(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data  # BINUNICODE


DEFAULT_KEY = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"


def hostile_pickle(command: str, key: str = DEFAULT_KEY) -> bytes:
    """Protocol-2 pickle of `{key: os.system(command)}`: GLOBAL 'os system' then REDUCE."""
    return b"".join(
        [
            b"\x80\x02",  # PROTO 2
            b"}",  # EMPTY_DICT
            _unicode(key),
            b"cos\nsystem\n",  # GLOBAL os.system
            _unicode(command),
            b"\x85",  # TUPLE1
            b"R",  # REDUCE: os.system(command)
            b"s",  # SETITEM
            b".",  # STOP
        ]
    )


def marker_path(adapter_dir: Path) -> Path:
    return Path(adapter_dir).resolve() / MARKER_NAME


def write_raw_pickle_bin(adapter_dir: Path) -> Path:
    """`adapter_model.bin` as a bare pickle (torch's legacy format starts with one too)."""
    out = Path(adapter_dir) / "adapter_model.bin"
    out.write_bytes(hostile_pickle(f"echo pwned > {marker_path(adapter_dir)}"))
    return out


def write_zip_pickle_bin(adapter_dir: Path) -> Path:
    """`adapter_model.bin` laid out like `torch.save`'s zip (archive/data.pkl...), data.pkl hostile."""
    out = Path(adapter_dir) / "adapter_model.bin"
    payload = hostile_pickle(f"echo pwned > {marker_path(adapter_dir)}")
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", payload)
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/version", "3\n")
        archive.writestr("archive/.data/serialization_id", "0000000000000000000000000000000000000000")
    return out
