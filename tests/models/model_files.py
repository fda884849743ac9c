"""Tiny GGUF files and wheels built in the tests, so they run without the real model's package."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np

from loraguard.models.catalog import KnownModel

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
MERGES = ("Y e", "Ye s", "N o", "Ġ Yes", "Ġ No")


def _byte_alphabet() -> list[str]:
    """GPT-2's printable spelling of the 256 bytes (what a byte-level BPE vocabulary is written in)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def tiny_vocab() -> tuple[list[str], list[int]]:
    """Specials (control tokens), the 256 byte tokens, then the merged tokens (Yes, No, ĠYes, ĠNo)."""
    merged = [m.replace(" ", "") for m in MERGES]
    tokens = [*SPECIALS, *_byte_alphabet(), *merged]
    types = [3] * len(SPECIALS) + [1] * (len(tokens) - len(SPECIALS))
    return tokens, types


def write_tiny_gguf(
    path: Path,
    *,
    arch: str = "llama",
    chat_template: str | None = CHATML,
    seed: int = 0,
    quantize: bool = True,
    hidden: int = 32,
    layers: int = 2,
) -> Path:
    """A tiny random Llama (2 layers, hidden 32, 4 heads, 2 KV heads) with a byte-level BPE tokenizer.

    The 2-D weights are stored as Q8_0 blocks (like a real quantized file) when `quantize`."""
    from gguf import GGMLQuantizationType, GGUFWriter
    from gguf.quants import quantize as gguf_quantize

    rng = np.random.default_rng(seed)
    tokens, types = tiny_vocab()
    vocab, ffn, heads, kv_heads = len(tokens), 2 * hidden, 4, 2
    head_dim = hidden // heads
    writer = GGUFWriter(str(path), arch)
    writer.add_name("tiny test llama")
    writer.add_file_type(7 if quantize else 0)  # MOSTLY_Q8_0 / ALL_F32
    writer.add_context_length(256)
    writer.add_embedding_length(hidden)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(vocab)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(list(MERGES))
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_pad_token_id(2)
    if chat_template is not None:
        writer.add_chat_template(chat_template)

    def matrix(name: str, rows: int, cols: int) -> None:
        data = (rng.standard_normal((rows, cols)) * 0.2).astype(np.float32)
        if quantize:
            packed = gguf_quantize(data, GGMLQuantizationType.Q8_0)
            writer.add_tensor(name, packed, raw_dtype=GGMLQuantizationType.Q8_0)
        else:
            writer.add_tensor(name, data)

    def norm(name: str) -> None:
        writer.add_tensor(name, (1.0 + 0.1 * rng.standard_normal(hidden)).astype(np.float32))

    matrix("token_embd.weight", vocab, hidden)
    for i in range(layers):
        norm(f"blk.{i}.attn_norm.weight")
        matrix(f"blk.{i}.attn_q.weight", hidden, hidden)
        matrix(f"blk.{i}.attn_k.weight", kv_heads * head_dim, hidden)
        matrix(f"blk.{i}.attn_v.weight", kv_heads * head_dim, hidden)
        matrix(f"blk.{i}.attn_output.weight", hidden, hidden)
        norm(f"blk.{i}.ffn_norm.weight")
        matrix(f"blk.{i}.ffn_gate.weight", ffn, hidden)
        matrix(f"blk.{i}.ffn_up.weight", ffn, hidden)
        matrix(f"blk.{i}.ffn_down.weight", hidden, ffn)
    norm("output_norm.weight")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_wheel(
    folder: Path, gguf: Path, *, package: str = "llm-tiny", version: str = "0.1.0", compress: bool = True
) -> Path:
    """A minimal valid wheel (pip accepts it) holding `gguf` as `<module>/tiny.gguf`."""
    module = package.replace("-", "_")
    wheel = folder / f"{module}-{version}-py3-none-any.whl"
    info = f"{module}-{version}.dist-info"
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(wheel, "w", compression=method) as archive:
        archive.write(gguf, f"{module}/tiny.gguf")
        archive.writestr(f"{module}/__init__.py", "")
        archive.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n")
        archive.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        archive.writestr(f"{info}/RECORD", "")
    return wheel


def known_model(
    wheel: Path, gguf: Path, *, package: str = "llm-tiny", version: str = "0.1.0", **over: object
) -> KnownModel:
    """A catalog entry for a test wheel (hashes and sizes measured from the files unless overridden)."""
    module = package.replace("-", "_")
    fields: dict[str, object] = {
        "name": "tiny-test-llama",
        "aliases": ("test/Tiny-Llama",),
        "package": package,
        "version": version,
        "wheel": wheel.name,
        "wheel_sha256": sha256(wheel),
        "wheel_size": wheel.stat().st_size,
        "member": f"{module}/tiny.gguf",
        "member_sha256": sha256(gguf),
        "member_size": gguf.stat().st_size,
        "licence": "Apache-2.0",
        "description": "a tiny random llama built by the tests",
        "hub_id": "test/Tiny-Llama",
    }
    fields.update(over)
    return KnownModel(**fields)  # type: ignore[arg-type]
