"""A GGUF file (llama.cpp, Ollama) as a base: module shapes from its header, never its tensor data.

The `gguf` package's `GGUFReader` parses the header (metadata key/values and the tensor-info table)
over a memory map. Used as is, it walks every element of every array in Python (2 s for the 49k
tokens and merges of SmolLM2-135M, more for bigger vocabularies) and trusts every declared count
and length. `_HeaderReader` bounds it: every read is checked against the file's size (a truncated
file or a declared length past the end is an error, not a short read), counts are capped, numeric
arrays are one view, string arrays are skipped over (their length kept, no string decoded), and no
view of tensor data is built (only the table's names, shapes and types). A header reads in
milliseconds and memory stays bounded whatever the file declares.

The metadata (`<arch>.block_count`, `<arch>.embedding_length`, `<arch>.attention.head_count`...)
becomes the `config.json` dict `families.spec_from_config` reads, so a GGUF base yields exactly the
`BaseSpec` its Hugging Face config would; the tensor table then confirms every module's shape and
decides what the metadata does not say (tied embeddings: no `output.weight`; biases).

The `gguf` package is imported only when a GGUF file is actually read.
"""

from __future__ import annotations

import dataclasses
import os
import re
import struct
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from loraguard.basemodel.spec import BaseSpec, ModuleShape, layer_index, layer_relative
from loraguard.errors import BaseModelResolutionError, GGUFHeaderError

__all__ = [
    "GGUF_ARCHITECTURES",
    "GGUFHeader",
    "find_gguf",
    "gguf_config",
    "gguf_identity",
    "is_gguf",
    "read_gguf",
    "spec_from_gguf",
]

MAGIC = b"GGUF"
MAX_KV = 16_384
"""Key/value pairs in a header (real files hold about 30 to 60)."""
MAX_TENSORS = 32_768
"""Tensor-info entries in one file (the largest real models hold about 1,100)."""
MAX_NAME_BYTES = 4_096
"""A key or tensor name (llama.cpp caps tensor names at 64 bytes)."""
MAX_ARRAY_STRINGS = 16_000_000
"""String-array elements walked over in one header (Llama 3: 128k tokens + 280k merges)."""
MAX_DECODED = 4_096
"""Longest metadata string decoded (names, labels); longer ones (chat templates) are left unread."""
_TENSOR_INFO_MIN = 24  # name length (8) + n_dims (4) + type (4) + offset (8)
_SHARD = re.compile(r"^(?P<stem>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)


@dataclass(frozen=True)
class _Arch:
    model_type: str
    """The Hugging Face `model_type` the architecture is converted from."""
    architecture: str
    """`architectures[0]` of that model's config.json."""
    layout: str
    """`decoder` (q/k/v/o + gate/up/down), `phi3` (fused qkv and gate_up), `phi`, `gpt2`."""


_ARCHS: dict[str, _Arch] = {
    "llama": _Arch("llama", "LlamaForCausalLM", "decoder"),  # Llama, SmolLM, Mistral 7B (converted as llama)
    "qwen2": _Arch("qwen2", "Qwen2ForCausalLM", "decoder"),
    "qwen3": _Arch("qwen3", "Qwen3ForCausalLM", "decoder"),
    "gemma": _Arch("gemma", "GemmaForCausalLM", "decoder"),
    "gemma2": _Arch("gemma2", "Gemma2ForCausalLM", "decoder"),
    "gemma3": _Arch("gemma3_text", "Gemma3ForCausalLM", "decoder"),  # the text model (vision is in mmproj)
    "phi3": _Arch("phi3", "Phi3ForCausalLM", "phi3"),
    "phi2": _Arch("phi", "PhiForCausalLM", "phi"),
    "gpt2": _Arch("gpt2", "GPT2LMHeadModel", "gpt2"),
}
GGUF_ARCHITECTURES: frozenset[str] = frozenset(_ARCHS)
"""`general.architecture` values whose module shapes loraguard derives."""

# Layer-relative module (as in `families.py`) -> GGUF tensor stem (gguf's TENSOR_NAMES, without `blk.N.`).
_LAYER_TENSORS: dict[str, dict[str, str]] = {
    "decoder": {
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
    },
    "phi3": {
        "self_attn.qkv_proj": "attn_qkv",
        "self_attn.o_proj": "attn_output",
        "mlp.gate_up_proj": "ffn_up",  # llama.cpp keeps Phi-3's fused gate_up as one ffn_up
        "mlp.down_proj": "ffn_down",
    },
    "phi": {
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.dense": "attn_output",
        "mlp.fc1": "ffn_up",
        "mlp.fc2": "ffn_down",
    },
    "gpt2": {
        "attn.c_attn": "attn_qkv",
        "attn.c_proj": "attn_output",
        "mlp.c_fc": "ffn_up",
        "mlp.c_proj": "ffn_down",
    },
}
_TOP_TENSORS = {"embed_tokens": "token_embd", "wte": "token_embd", "wpe": "position_embd", "lm_head": "output"}


@dataclass(frozen=True)
class GGUFHeader:
    """What a GGUF file's header says, as plain Python (the file is closed once this exists)."""

    path: Path
    version: int
    metadata: Mapping[str, Any]
    """Scalars and strings (up to `MAX_DECODED` bytes) by key; numeric arrays as tuples."""
    array_lengths: Mapping[str, int]
    """Length of every array value (`tokenizer.ggml.tokens`: the vocabulary)."""
    tensors: Mapping[str, tuple[int, ...]]
    """Tensor name -> shape in ggml order (`ne0` first: the input dimension of a weight matrix)."""
    tensor_types: Mapping[str, str]
    """Tensor name -> ggml type (`F32`, `Q4_1`, ...)."""

    @property
    def architecture(self) -> str | None:
        value = self.metadata.get("general.architecture")
        return value if isinstance(value, str) and value else None

    def arch_key(self, key: str) -> Any:
        """`metadata["<arch>.<key>"]`: `arch_key("block_count")`."""
        return self.metadata.get(f"{self.architecture}.{key}")

    @property
    def file_type(self) -> str | None:
        """`general.file_type` by name (`Q4_1`, `Q4_K_M`, `BF16`...), if the file says."""
        value = self.metadata.get("general.file_type")
        if not isinstance(value, int):
            return None
        from gguf import LlamaFileType

        try:
            return LlamaFileType(value).name.removeprefix("MOSTLY_")
        except ValueError:
            return str(value)


# ---------------------------------------------------------------------------------------- detection


def is_gguf(path: Path) -> bool:
    """A `.gguf` file, or any file starting with the GGUF magic bytes."""
    if path.suffix.lower() == ".gguf":
        return True
    try:
        with path.open("rb") as handle:
            return handle.read(4) == MAGIC
    except OSError:
        return False


def find_gguf(folder: Path) -> Path | None:
    """The one model `.gguf` in `folder` (its first shard when split), else None.

    Multimodal projectors (`mmproj*.gguf`) are not models and are left out. Several models or
    quantizations in one folder raise `BaseModelResolutionError` naming them: pass one file.
    """
    try:
        found = sorted(
            p
            for p in folder.iterdir()
            if p.suffix.lower() == ".gguf" and "mmproj" not in p.name.lower() and p.is_file()
        )
    except OSError:
        return None
    firsts = [p for p in found if not (m := _SHARD.match(p.name)) or int(m["no"]) == 1]
    if len(firsts) > 1:
        names = ", ".join(p.name for p in firsts[:5]) + (", ..." if len(firsts) > 5 else "")
        raise BaseModelResolutionError(
            f"The folder {folder} holds {len(firsts)} GGUF models ({names}). Pass one .gguf file as the base.",
            path=folder,
        )
    if firsts:
        return firsts[0]
    return found[0] if found else None  # only later shards: read_gguf names the missing first one


# ------------------------------------------------------------------------------------------ reading


@lru_cache(maxsize=1)
def _reader_class() -> type:
    """`GGUFReader` with bounded reads (defined on first use: `gguf` is imported only for GGUF bases)."""
    import numpy as np
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFReader, GGUFValueType

    array = GGUFValueType.ARRAY
    string = GGUFValueType.STRING

    class _HeaderReader(GGUFReader):
        def __init__(self, path: Path) -> None:
            self.strings_walked = 0
            self.tensor_infos: list[tuple[str, tuple[int, ...], int]] = []
            super().__init__(path, "r")

        def _size(self) -> int:
            return int(self.data.shape[0])

        def _get(self, offset: int, dtype: Any, count: int = 1, override_order: Any = None) -> Any:
            end = int(offset) + np.dtype(dtype).itemsize * int(count)
            if end > self._size():
                raise GGUFHeaderError(f"it ends at byte {self._size()} but its header needs byte {end} (truncated?)")
            return super()._get(offset, dtype, count, override_order)

        def _get_str(self, offset: int) -> Any:  # keys and tensor names only: values go through _get_field_parts
            length = int(self._get(offset, np.uint64)[0])
            if length > MAX_NAME_BYTES:
                raise GGUFHeaderError(f"a key or tensor name of {length} bytes at byte {offset}")
            return super()._get_str(offset)

        def _build_fields(self, offs: int, count: int) -> int:
            if int(count) > MAX_KV:
                raise GGUFHeaderError(f"it declares {int(count)} metadata keys (more than {MAX_KV})")
            return int(super()._build_fields(offs, count))

        def _build_tensor_info(self, offs: int, count: int) -> Any:
            count = int(count)
            if count > MAX_TENSORS:
                raise GGUFHeaderError(f"it declares {count} tensors (more than {MAX_TENSORS})")
            if offs + count * _TENSOR_INFO_MIN > self._size():
                raise GGUFHeaderError(f"it declares {count} tensors but ends at byte {self._size()} (truncated?)")
            return super()._build_tensor_info(offs, count)

        def _get_field_parts(self, orig_offs: int, raw_type: int) -> Any:
            kind = int(raw_type)
            if kind == string:
                length = self._get(orig_offs, np.uint64)
                text = self._get(orig_offs + 8, np.uint8, int(length[0]))
                return 8 + int(length[0]), [length, text], [1], [string]
            if kind != array:
                return super()._get_field_parts(orig_offs, raw_type)
            raw_itype = self._get(orig_offs, np.uint32)
            count = self._get(orig_offs + 4, np.uint64)
            itype, n, start = int(raw_itype[0]), int(count[0]), orig_offs + 12
            try:
                item = GGUFValueType(itype)
            except ValueError:
                raise GGUFHeaderError(f"an array of unknown value type {itype} at byte {orig_offs}") from None
            scalar = self.gguf_scalar_to_np.get(item)
            if scalar is not None:  # one view of n values instead of n views
                values = self._get(start, scalar, n)
                return 12 + int(values.nbytes), [raw_itype, count, values], [2], [array, item]
            if itype != string:
                raise GGUFHeaderError(
                    f"an array of value type {itype} at byte {orig_offs} (nested arrays are not GGUF)"
                )
            end = self._skip_strings(start, n)
            return end - orig_offs, [raw_itype, count, self._get(start, np.uint8, end - start)], [], [array, string]

        def _skip_strings(self, offset: int, count: int) -> int:
            """The end of `count` length-prefixed strings from `offset` (each length checked, none decoded)."""
            size = self._size()
            if offset + 8 * count > size:
                raise GGUFHeaderError(
                    f"a string array of {count} elements at byte {offset} runs past the end (truncated?)"
                )
            self.strings_walked += count
            if self.strings_walked > MAX_ARRAY_STRINGS:
                raise GGUFHeaderError(f"its string arrays hold more than {MAX_ARRAY_STRINGS} elements")
            swapped = self.byte_order == "S"
            order = ("<" if sys.byteorder == "big" else ">") if swapped else ("<" if sys.byteorder == "little" else ">")
            unpack = struct.Struct(order + "Q").unpack_from
            buffer = self.data.data  # the memory map's buffer
            for _ in range(count):
                if offset + 8 > size:
                    raise GGUFHeaderError(f"a string array runs past the end of the file at byte {offset} (truncated?)")
                offset += 8 + unpack(buffer, offset)[0]
            if offset > size:
                raise GGUFHeaderError(f"a string array runs past the end of the file (byte {offset}; truncated?)")
            return offset

        def _build_tensors(self, start_offs: int, fields: Any) -> None:
            """Names, shapes and types only; each tensor's data range is checked against the file size."""
            size = self._size()
            seen: set[str] = set()
            for field in fields:
                _len, name_data, _n_dims, dims, raw_dtype, offset = field.parts
                name = bytes(name_data).decode("utf-8", errors="replace")
                if name in seen:
                    raise GGUFHeaderError(f"tensor {name!r} is listed twice")
                seen.add(name)
                shape = tuple(int(d) for d in dims.tolist())
                kind = int(raw_dtype[0])
                if len(shape) > 4:
                    raise GGUFHeaderError(f"tensor {name!r} has {len(shape)} dimensions (GGUF allows 4)")
                if kind in GGMLQuantizationType._value2member_map_:  # a newer type: its data range is unchecked
                    block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(kind)]
                    elements = 1
                    for d in shape:
                        elements *= d
                    end = start_offs + int(offset[0]) + elements * type_size // block
                    if end > size:
                        raise GGUFHeaderError(
                            f"tensor {name!r} ends at byte {end} but the file has {size} bytes (truncated download?)"
                        )
                self.tensor_infos.append((name, shape, kind))

    return _HeaderReader


def _unreadable(path: Path, why: str) -> BaseModelResolutionError:
    return BaseModelResolutionError(
        f"{path} is not a readable GGUF file: {why}. Pass a complete .gguf file (download it again if it "
        "was cut short), or the model's Hugging Face folder with config.json.",
        path=path,
    )


def read_gguf(path: str | Path) -> GGUFHeader:
    """The header of the GGUF file at `path`: metadata and tensor table, no tensor data.

    Raises `BaseModelResolutionError` naming the file for anything that is not a complete GGUF
    (missing, empty, another format, truncated, unsupported version, inconsistent header).
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except FileNotFoundError:
        raise BaseModelResolutionError(f"{path} does not exist. Pass an existing .gguf file.", path=path) from None
    except OSError as exc:
        raise BaseModelResolutionError(f"Cannot read {path}: {exc}.", path=path) from None
    if magic != MAGIC:
        shown = magic[:4] if magic else b"(an empty file)"
        raise _unreadable(path, f"it starts with {shown!r}, not the GGUF magic {MAGIC!r}")
    try:
        reader = _reader_class()(path)
    except GGUFHeaderError as exc:
        raise _unreadable(path, str(exc)) from None
    except Exception as exc:  # the gguf reader raises assorted types on malformed input: never a traceback
        raise _unreadable(path, f"{type(exc).__name__}: {exc}") from None
    try:
        return _header(path, reader)
    finally:
        del reader  # drops the memory map


def _header(path: Path, reader: Any) -> GGUFHeader:
    from gguf import GGMLQuantizationType, GGUFValueType

    metadata: dict[str, Any] = {}
    lengths: dict[str, int] = {}
    for key, field in reader.fields.items():
        kind = field.types[0] if field.types else None
        value = field.parts[-1]
        if kind == GGUFValueType.ARRAY:
            lengths[key] = int(field.parts[4][0])
            if field.types[-1] != GGUFValueType.STRING and lengths[key] <= MAX_DECODED:
                metadata[key] = tuple(value.tolist())
        elif kind == GGUFValueType.STRING:
            if value.shape[0] <= MAX_DECODED:
                metadata[key] = bytes(value).decode("utf-8", errors="replace")
        elif kind is not None:
            metadata[key] = value.tolist()[0]
    types: dict[str, str] = {}
    for name, _shape, kind in reader.tensor_infos:
        try:
            types[name] = GGMLQuantizationType(kind).name
        except ValueError:
            types[name] = str(kind)
    return GGUFHeader(
        path=path,
        version=int(metadata.get("GGUF.version", 0)),
        metadata=metadata,
        array_lengths=lengths,
        tensors={name: shape for name, shape, _kind in reader.tensor_infos},
        tensor_types=types,
    )


def _with_shards(header: GGUFHeader) -> GGUFHeader:
    """A split model's first shard with the tensor tables of all its shards (headers only)."""
    count = header.metadata.get("split.count")
    if not isinstance(count, int) or count <= 1:
        return header
    number = header.metadata.get("split.no", 0)
    match = _SHARD.match(header.path.name)
    if number != 0 or match is None:
        first = f"{match['stem']}-00001-of-{match['count']}.gguf" if match else "its first shard (-00001-of-...)"
        raise BaseModelResolutionError(
            f"{header.path} is shard {int(number) + 1} of a model split in {count} files: its metadata is in "
            f"the first shard. Pass {first}.",
            path=header.path,
        )
    tensors = dict(header.tensors)
    types = dict(header.tensor_types)
    for no in range(2, count + 1):
        shard = header.path.with_name(f"{match['stem']}-{no:05d}-of-{match['count']}.gguf")
        if not shard.is_file():
            raise BaseModelResolutionError(
                f"{header.path} is split in {count} files but {shard.name} is not beside it. Put every shard "
                "in one folder.",
                path=shard,
            )
        part = read_gguf(shard)
        tensors.update(part.tensors)
        types.update(part.tensor_types)
    return dataclasses.replace(header, tensors=tensors, tensor_types=types)


# ---------------------------------------------------------------------------- metadata -> config


def _number(header: GGUFHeader, key: str, *, default: int | None = None) -> int:
    full = f"{header.architecture}.{key}"
    value = header.metadata.get(full)
    if value is None:
        if default is not None:
            return default
        raise BaseModelResolutionError(
            f"{header.path}: the GGUF metadata has no '{full}': cannot derive module shapes. Pass a GGUF "
            "converted by llama.cpp's convert_hf_to_gguf.py, or the model's config.json.",
            path=header.path,
        )
    if isinstance(value, tuple):  # per-layer values (llama.cpp allows arrays): only a uniform stack is modelled
        if not value or len(set(value)) != 1:
            raise BaseModelResolutionError(
                f"{header.path}: '{full}' varies per layer ({list(value)[:6]}...): layers of different sizes "
                "are not modelled. Pass the model's config.json instead.",
                path=header.path,
            )
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value or value <= 0:
        raise BaseModelResolutionError(
            f"{header.path}: GGUF metadata '{full}' is {value!r}, not a positive integer.", path=header.path
        )
    return int(value)


def _out_features(header: GGUFHeader, stem: str) -> int | None:
    """The output size of `blk.0.<stem>.weight` (its ggml `ne1`), if the table has it."""
    shape = header.tensors.get(f"blk.0.{stem}.weight")
    return shape[1] if shape is not None and len(shape) == 2 else None


def gguf_config(header: GGUFHeader) -> dict[str, Any]:
    """The config.json keys `families.spec_from_config` reads, from the GGUF metadata and tensor table.

    Raises `BaseModelResolutionError` for an architecture loraguard does not model or missing keys.
    """
    arch = header.architecture
    family = _ARCHS.get(arch or "")
    if family is None:
        supported = ", ".join(sorted(GGUF_ARCHITECTURES))
        what = f"architecture {arch!r}" if arch else "no general.architecture"
        raise BaseModelResolutionError(
            f"{header.path}: GGUF {what} is not one loraguard derives module shapes for (supported: "
            f"{supported}). Pass the model's Hugging Face folder with config.json instead.",
            path=header.path,
        )
    hidden = _number(header, "embedding_length")
    layers = _number(header, "block_count")
    heads = _number(header, "attention.head_count")
    embedding = header.tensors.get("token_embd.weight")
    if embedding is None or len(embedding) != 2:
        raise BaseModelResolutionError(
            f"{header.path}: the GGUF tensor table has no token_embd.weight matrix: a partial file (a later "
            "shard, a LoRA or projector GGUF?). Pass the model's full .gguf, or its config.json.",
            path=header.path,
        )
    vocab = embedding[1]  # what llama.cpp loads; the token list may be shorter (unused padding rows)
    declared_vocab = header.arch_key("vocab_size")
    config: dict[str, Any] = {"model_type": family.model_type, "architectures": [family.architecture]}
    if declared_vocab is not None and declared_vocab != vocab:
        raise BaseModelResolutionError(
            f"{header.path}: the metadata says {arch}.vocab_size={declared_vocab} but token_embd.weight has "
            f"{vocab} rows: an inconsistent file. Convert the model again, or pass its config.json.",
            path=header.path,
        )
    if family.layout == "gpt2":
        config |= {
            "n_embd": hidden,
            "n_layer": layers,
            "n_head": heads,
            "n_inner": _number(header, "feed_forward_length", default=4 * hidden),
            "n_positions": _number(header, "context_length", default=1024),
            "vocab_size": vocab,
        }
        return config
    kv_heads = _number(header, "attention.head_count_kv", default=heads)
    config |= {
        "hidden_size": hidden,
        "intermediate_size": _number(header, "feed_forward_length"),
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "head_dim": _head_dim(header, family, hidden, heads, kv_heads),
        "vocab_size": vocab,
        "tie_word_embeddings": "output.weight" not in header.tensors,
    }
    if family.layout == "decoder":
        config["attention_bias"] = "blk.0.attn_q.bias" in header.tensors
        config["mlp_bias"] = "blk.0.ffn_up.bias" in header.tensors
    if family.layout == "phi":
        config["num_key_value_heads"] = None if kv_heads == heads else kv_heads
        config["qk_layernorm"] = "blk.0.attn_q_norm.weight" in header.tensors
        del config["head_dim"]  # Phi's head_dim is always hidden / heads
    return config


def _head_dim(header: GGUFHeader, family: _Arch, hidden: int, heads: int, kv_heads: int) -> int:
    """`attention.key_length` when written (Qwen3, Gemma...), else what the q (or fused qkv) tensor says."""
    if f"{header.architecture}.attention.key_length" in header.metadata:
        return _number(header, "attention.key_length")
    q_out = _out_features(header, "attn_q")
    qkv_out = _out_features(header, "attn_qkv")
    if q_out is not None and q_out % heads == 0:
        return q_out // heads
    if family.layout == "phi3" and qkv_out is not None and qkv_out % (heads + 2 * kv_heads) == 0:
        return qkv_out // (heads + 2 * kv_heads)
    return hidden // heads


# ------------------------------------------------------------------------------------------ identity

_ENCODING = re.compile(
    r"(?:[-_.](?:\d{5}-of-\d{5}|i?q\d(?:_[a-z0-9]+)*|tq\d_\d|mxfp4(?:_moe)?|bf16|fp16|f16|f32|ud|gguf))+$",
    re.IGNORECASE,
)
_GENERIC_STEMS = frozenset({"model", "ggml-model", "ggml_model", "weights", "consolidated", "base", "gguf"})
_ORG = re.compile(r"^[A-Za-z0-9][\w.-]*$")
_HF_URL = re.compile(r"^https?://(?:www\.)?(?:huggingface\.co|hf\.co)/(?P<id>[\w.-]+/[\w.-]+?)/?$")


def gguf_identity(header: GGUFHeader) -> tuple[str, str]:
    """The base's name and what it rests on.

    1. `general.source.repo_url` / `general.source.url` naming a Hugging Face repo (the model
       converted): `org/name`;
    2. the file name without its GGUF encoding and shard suffixes (`SmolLM2-135M-Instruct.Q4_1.gguf`
       -> `SmolLM2-135M-Instruct`), or the folder's name when the file is generic (`model.gguf`),
       prefixed with `general.organization` when that is a Hub-style name (`HuggingFaceTB/...`);
    3. `general.name`, else `general.basename` + `general.size_label` + `general.finetune`.

    The file name comes before `general.name` because converters fill `general.name` from the
    training run's path (SmolLM2-135M-Instruct's says "Smollm2 135M 8k Lc100K Mix1 Ep2"), while
    the file name is what the user chose and matches the name adapters claim.
    """
    meta = header.metadata
    for key in ("general.source.repo_url", "general.source.url"):
        url = meta.get(key)
        match = _HF_URL.match(url.strip()) if isinstance(url, str) else None
        if match:
            return match["id"], key
    file_name = header.path.name
    stem = _ENCODING.sub("", file_name[:-5] if file_name.lower().endswith(".gguf") else file_name)
    evidence = "file name"
    if not stem or stem.lower() in _GENERIC_STEMS:
        stem, evidence = _folder_name(header.path), "folder name"
        if "/" in stem:
            return stem, evidence
    if stem:
        org = meta.get("general.organization")
        if isinstance(org, str) and _ORG.match(org.strip()):
            return f"{org.strip()}/{stem}", f"{evidence} + general.organization"
        return stem, evidence
    name = meta.get("general.name")
    if isinstance(name, str) and name.strip():
        return name.strip(), "general.name"
    parts = [meta.get(k) for k in ("general.basename", "general.size_label", "general.finetune")]
    joined = "-".join(p.strip() for p in parts if isinstance(p, str) and p.strip())
    return (joined, "general.basename/size_label/finetune") if joined else (header.path.name, "file name")


def _folder_name(path: Path) -> str:
    """The folder's name, as `resolve._identity` reads it for config.json: `org__name` and Hub-cache
    `models--org--name/snapshots/<sha>` give `org/name`. Symlinks are not followed (a Hub-cache file
    links to a blob named by its hash)."""
    folder = Path(os.path.abspath(path)).parent
    for parent in (folder, *folder.parents):
        if parent.name.startswith("models--") and parent.name.count("--") >= 2:
            return parent.name[len("models--") :].replace("--", "/", 1)
    org, sep, name = folder.name.partition("__")
    return f"{org}/{name}" if sep and org and name and "__" not in name else folder.name


# ------------------------------------------------------------------------------------------- spec


def spec_from_gguf(path: str | Path, *, task: str | None = "CAUSAL_LM") -> BaseSpec:
    """The `BaseSpec` of the model in a GGUF file, equal to the one its config.json gives.

    Only the header is read. Raises `BaseModelResolutionError` naming the file for an unreadable or
    inconsistent file or an unsupported architecture.
    """
    header = _with_shards(read_gguf(path))
    config = gguf_config(header)
    name, evidence = gguf_identity(header)
    config["_name_or_path"] = name
    config["gguf"] = {
        "file": str(header.path),
        "architecture": header.architecture,
        "file_type": header.file_type,
        "identity_from": evidence,
        **{k: v for k, v in header.metadata.items() if k.startswith("general.") and isinstance(v, str | int | float)},
    }
    from loraguard.basemodel.families import spec_from_config

    spec = spec_from_config(config, name=name, task=task, path=str(header.path))
    if spec is None:  # a task families.py does not model (TOKEN_CLS...): the skeleton, as for config.json
        from loraguard.basemodel.skeleton import spec_from_skeleton

        spec = spec_from_skeleton(config, name=name, task=task, path=str(header.path))
    _confirm(spec, header)
    return dataclasses.replace(spec, source="gguf")


def _expected(shape: ModuleShape) -> tuple[int, int]:
    """The ggml shape (`ne0`, `ne1`) of a module's weight: (in, out); embeddings (dim, rows)."""
    if shape.kind == "embedding":
        return shape.out_features, shape.in_features
    return shape.in_features, shape.out_features


def _confirm(spec: BaseSpec, header: GGUFHeader) -> None:
    """Every module the tensor table holds has the shape the metadata implies, in every layer."""
    family = _ARCHS[header.architecture or ""]
    stems = _LAYER_TENSORS[family.layout]
    wrong: list[str] = []
    missing: list[str] = []
    fused: dict[int, int] = {}  # Phi-2 files may fuse q/k/v into attn_qkv: compare the sum
    for module, shape in spec.modules.items():
        index = layer_index(module, spec.layer_prefixes)
        relative = layer_relative(module, spec.layer_prefixes)
        if index is not None:
            stem = stems.get(relative)
            tensor = f"blk.{index}.{stem}.weight" if stem else None
        else:
            stem = _TOP_TENSORS.get(module.rsplit(".", 1)[-1])
            tensor = f"{stem}.weight" if stem else None
        actual = header.tensors.get(tensor) if tensor is not None else None
        if tensor is None or (actual is None and stem == "output"):  # no output.weight: llama.cpp ties it
            continue
        if actual is None:
            if family.layout == "phi" and stem in {"attn_q", "attn_k", "attn_v"} and index is not None:
                fused[index] = fused.get(index, 0) + shape.out_features
                continue
            missing.append(tensor)
        elif actual[:2] != _expected(shape) or any(d != 1 for d in actual[2:]):
            wrong.append(f"{tensor} is {list(actual)}, the metadata implies {list(_expected(shape))}")
    for index, total in fused.items():
        actual = header.tensors.get(f"blk.{index}.attn_qkv.weight")
        if actual is None:
            missing.append(f"blk.{index}.attn_q.weight")
        elif actual[:2] != (spec.hidden_size, total):
            wrong.append(
                f"blk.{index}.attn_qkv.weight is {list(actual)}, the metadata implies {[spec.hidden_size, total]}"
            )
    blocks = {int(m[1]) for name in header.tensors if (m := re.match(r"^blk\.(\d+)\.", name))}
    if blocks and (max(blocks) + 1 != spec.num_layers or len(blocks) != spec.num_layers):
        wrong.append(f"the tensor table has {len(blocks)} blocks, the metadata says block_count={spec.num_layers}")
    if wrong or missing:
        detail = "; ".join(wrong[:3]) or f"no {missing[0]} (and {len(missing) - 1} more missing)"
        raise BaseModelResolutionError(
            f"{header.path}: the GGUF tensor table contradicts its metadata ({detail}): an inconsistent or "
            "partial file. Convert the model again, or pass its config.json.",
            path=header.path,
        )
