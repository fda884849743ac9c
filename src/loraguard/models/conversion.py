"""A GGUF file into a plain Hugging Face folder that `scoring.model.load_base` (and PEFT) can use as a base.

transformers reads the GGUF (`from_pretrained(folder, gguf_file=...)`, dequantized to float32:
Q4/Q8 blocks dequantize exactly in float32, not in 16-bit types) and its tokenizer, with the chat
template from the GGUF metadata. The loaded model carries a `quantization_config` that
`save_pretrained` refuses, so a fresh model is built from the config without it, given the same
weights (`load_state_dict(strict=True)`), and saved as safetensors. The folder written is then
loaded back and its logits compared with the GGUF model's on a short prompt: a conversion that
changes the numbers is refused rather than cached.

Chat templates from a GGUF are data from whoever made the file: transformers renders them in
Jinja's `ImmutableSandboxedEnvironment` (no attribute starting with `_`, no mutation of objects),
and nothing here renders them any other way. `trust_remote_code` is never set.

torch and transformers are imported inside `convert_gguf`.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from loraguard.errors import BaseModelResolutionError, MissingExtraError
from loraguard.models.gguf_file import GgufInfo

__all__ = ["LOGIT_TOLERANCE", "convert_gguf", "library_versions"]

LOGIT_TOLERANCE = 1e-4
"""Largest |logit difference| allowed between the GGUF model and the folder written from it."""

_CHECK_TEXT = "Decide whether the comment violates the rule. Answer Yes or No."
_DROPPED_CONFIG_KEYS = ("quantization_config", "_name_or_path", "_model_name_or_path", "_commit_hash")


def library_versions() -> dict[str, str | None]:
    """Versions of the libraries a conversion depends on (recorded beside the converted folder)."""
    out: dict[str, str | None] = {}
    for dist in ("loraguard", "transformers", "torch", "gguf", "safetensors", "tokenizers"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No progress bars or warnings from transformers while converting (the caller reports)."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    level = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    # The GGUF loader draws its own tqdm bar whatever the setting above: give it a silent one.
    gguf_utils: Any = None
    with contextlib.suppress(ImportError):
        import transformers.modeling_gguf_pytorch_utils as gguf_utils
    own_bar = getattr(gguf_utils, "tqdm", None)
    if own_bar is not None:
        gguf_utils.tqdm = functools.partial(own_bar, disable=True)
    try:
        yield
    finally:
        if own_bar is not None:
            gguf_utils.tqdm = own_bar
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def _gguf_load_kwargs() -> dict[str, Any]:
    """Ask for dense weights where transformers can also keep GGUF blocks packed (newer versions)."""
    try:
        from transformers import GgufConfig
    except ImportError:  # older transformers always dequantize
        return {}
    return {"quantization_config": GgufConfig(dequantize=True)}


def convert_gguf(gguf: Path, out: Path, info: GgufInfo, *, name_or_path: str | None = None) -> dict[str, Any]:
    """Write the model and tokenizer of `gguf` (already checked by `inspect_gguf`) into folder `out`.

    `name_or_path` (a known model's Hub id) is written into config.json as `_name_or_path`, where a
    Hub download has it, so the static check names the base.

    Returns what the record keeps about the conversion (library versions, dtype, parameter count,
    the logit check). Raises `BaseModelResolutionError` naming the file when transformers cannot
    load it (e.g. an architecture it does not support)."""
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError("Converting a GGUF model", "ml") from exc
    versions = library_versions()
    cannot = (
        f"GGUF file {gguf} (architecture {info.architecture!r}): transformers {versions['transformers']} "
        "cannot load it as a causal LM"
    )
    with _quiet_transformers():
        try:
            loaded: Any = AutoModelForCausalLM.from_pretrained(
                str(gguf.parent),
                gguf_file=gguf.name,
                dtype=torch.float32,
                local_files_only=True,
                trust_remote_code=False,
                **_gguf_load_kwargs(),
            )
            tokenizer: Any = AutoTokenizer.from_pretrained(
                str(gguf.parent), gguf_file=gguf.name, local_files_only=True, trust_remote_code=False
            )
        except Exception as exc:  # transformers raises ValueError, KeyError, NotImplementedError...
            raise BaseModelResolutionError(f"{cannot}: {_one_line(exc)}", path=gguf) from exc
        loaded.eval()
        state = loaded.state_dict()
        packed = sorted(k for k, v in state.items() if not v.is_floating_point())
        if packed:
            raise BaseModelResolutionError(
                f"{cannot} with dense weights: {len(packed)} tensors stayed packed (e.g. {packed[0]})", path=gguf
            )
        if info.chat_template and not getattr(tokenizer, "chat_template", None):
            tokenizer.chat_template = info.chat_template
        ids = tokenizer(_CHECK_TEXT, return_tensors="pt").input_ids
        with torch.inference_mode():
            reference = loaded(input_ids=ids).logits.float()

        config_dict = loaded.config.to_dict()
        for key in _DROPPED_CONFIG_KEYS:
            config_dict.pop(key, None)
        config_dict["dtype"] = "float32"
        config = type(loaded.config).from_dict(config_dict)
        clean: Any = AutoModelForCausalLM.from_config(config, dtype=torch.float32, trust_remote_code=False)
        clean.load_state_dict(state, strict=True)
        del loaded, state
        gc.collect()
        parameters = sum(p.numel() for p in clean.parameters())
        clean.save_pretrained(str(out))
        del clean
        gc.collect()
        tokenizer.save_pretrained(str(out))
        saved = json.loads((out / "config.json").read_text(encoding="utf-8"))
        saved_architectures = saved.get("architectures")
        if name_or_path:
            (out / "config.json").write_text(
                json.dumps({"_name_or_path": name_or_path, **saved}, indent=2, sort_keys=True) + "\n", encoding="utf-8"
            )

        written: Any = AutoModelForCausalLM.from_pretrained(
            str(out), dtype=torch.float32, local_files_only=True, trust_remote_code=False
        )
        written.eval()
        with torch.inference_mode():
            got = written(input_ids=ids).logits.float()
        del written
        gc.collect()
    diff = float((got - reference).abs().max())
    if not diff <= LOGIT_TOLERANCE:  # also NaN
        raise BaseModelResolutionError(
            f"GGUF file {gguf}: the converted model's logits differ from the GGUF model's by {diff:.3g} "
            f"(tolerance {LOGIT_TOLERANCE:g}); not cached",
            path=gguf,
        )
    return {
        "versions": versions,
        "dtype": "float32",
        "parameters": parameters,
        "model_type": config_dict.get("model_type"),
        "architectures": saved_architectures,
        "logit_check": {"text": _CHECK_TEXT, "tokens": int(ids.shape[1]), "max_abs_diff": diff},
    }
