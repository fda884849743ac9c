"""The loaded base model and its PEFT adapters: verify, load, unload, switch and score.

Every method that touches the model (`load_base`, `attach`, `detach`, `score`) must run on the ONE
model thread (`batcher.ModelThread`): PEFT switches adapters by mutating the model, and torch is
not safe to mutate from two threads. `prepare` (copy, hash, static check) touches no model and
runs on any thread.

Loading an adapter is defensive, because a registry entry is only a claim about files on disk:

1. the registered files are copied into a private folder of the server (so nothing can change
   between the verification and PEFT reading them);
2. the copies' SHA-256 must equal the registered `files` (a file changed, missing or added after
   registration is refused);
3. the weights must be safetensors: a `.bin`/`.pt` pickle is never unpickled (refused);
4. the static `loraguard.check(copy, base)` must report no error;
5. PEFT must load it (`load_adapter`; a half-loaded adapter is deleted again).

Any failure raises `AdapterRefused` with a short reason code; the pool is left unchanged.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loraguard.errors import LoraguardError

__all__ = ["SENTINEL", "AdapterPool", "AdapterRefused", "LoadedAdapter", "peft_name"]

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")
SENTINEL = "loraguard-sentinel"
"""The no-op adapter the base is wrapped with (see `AdapterPool.load_base`)."""
CheckFn = Callable[[Path, str], Sequence[str]]
"""`check_fn(adapter_folder, base)` → the static check's error messages (empty: pass)."""


class AdapterRefused(LoraguardError):
    """The server would not load an adapter; `reason` is a short code (hash-mismatch, unsafe-format,
    check-failed, load-failed), the message says why and what to do."""

    def __init__(self, ref: str, reason: str, message: str) -> None:
        super().__init__(f"{ref}: {message}")
        self.ref, self.reason = ref, reason


@dataclass(frozen=True)
class LoadedAdapter:
    """An adapter attached to the base: its registry ref and its PEFT adapter name."""

    ref: str
    peft_name: str
    path: str
    loaded_at: float


def peft_name(ref: str) -> str:
    """A PEFT adapter name for `ref` (`toxicity@3` → `toxicity_v3`): PEFT names cannot contain dots."""
    name, _, version = ref.partition("@")
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_") or "adapter"
    return f"{safe}_v{version}" if version else safe


def static_check_errors(folder: Path, base: str) -> list[str]:
    """Error findings of `loraguard.check(folder, base)` as `CODE message` lines."""
    from loraguard.checks.checker import check

    report = check(folder, base)
    return [f"{f.code} {f.message}" for f in report.errors]


class AdapterPool:
    """The base model plus the adapters attached to it (see the module docstring)."""

    def __init__(
        self,
        base: str | Path,
        *,
        template: str = "chat",
        batch_size: int = 8,
        prefix_cache: bool = True,
        dtype: str = "auto",
        device: str = "cpu",
        check_fn: CheckFn | None = None,
    ) -> None:
        self.base = str(base)
        self.template, self.batch_size, self.prefix_cache = template, batch_size, prefix_cache
        self.dtype, self.device = dtype, device
        self.check_fn: CheckFn = check_fn or static_check_errors
        self.model: Any = None
        self.tokenizer: Any = None
        self.adapters: dict[str, LoadedAdapter] = {}
        self._staging = Path(tempfile.mkdtemp(prefix="loraguard-serve-"))

    @property
    def ready(self) -> bool:
        return self.model is not None

    # --- any thread -------------------------------------------------------------------------------

    def prepare(self, ref: str, path: str | Path, files: Mapping[str, str]) -> Path:
        """Copy the registered `files` of `path` to a private folder and verify them; returns the copy."""
        from loraguard.registry.hashing import diff_hashes, hash_files

        source = Path(path)
        if not source.is_dir():
            raise AdapterRefused(ref, "hash-mismatch", f"folder {source} is gone; re-register the adapter")
        weights = [f for f in files if f.endswith(".safetensors")]
        pickles = [f for f in files if f.endswith(PICKLE_SUFFIXES)]
        if not weights:
            shown = ", ".join(pickles) or "no weights file"
            raise AdapterRefused(
                ref,
                "unsafe-format",
                f"weights are not safetensors ({shown}); the server never unpickles. "
                "Convert the adapter to adapter_model.safetensors and register it again",
            )
        target = Path(tempfile.mkdtemp(prefix=peft_name(ref) + "-", dir=self._staging)) / source.name
        try:
            for rel in files:
                if Path(rel).suffix in PICKLE_SUFFIXES:
                    continue  # never copied, so PEFT cannot fall back to it
                dest = target / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                try:
                    shutil.copyfile(source / rel, dest)
                except FileNotFoundError:
                    continue  # reported below as missing
            changed, missing, added = diff_hashes(files, hash_files(source))
            if changed or missing or added:
                parts = [
                    f"{label} {', '.join(names)}"
                    for label, names in (("changed:", changed), ("missing:", missing), ("added:", added))
                    if names
                ]
                raise AdapterRefused(
                    ref,
                    "hash-mismatch",
                    f"files differ from the registered SHA-256 ({'; '.join(parts)}); "
                    "run `loraguard registry verify` and re-register the adapter",
                )
            # the copies themselves must match too (the source could change while it was copied)
            copied = hash_files(target)
            bad = sorted(k for k, v in copied.items() if files.get(k) != v)
            if bad:
                raise AdapterRefused(ref, "hash-mismatch", f"files changed while they were copied: {', '.join(bad)}")
            errors = self.check_fn(target, self.base)
            if errors:
                raise AdapterRefused(ref, "check-failed", "static check errors: " + "; ".join(errors[:3]))
        except AdapterRefused:
            shutil.rmtree(target.parent, ignore_errors=True)
            raise
        except OSError as exc:
            shutil.rmtree(target.parent, ignore_errors=True)
            raise AdapterRefused(ref, "hash-mismatch", f"cannot read its files: {exc}") from exc
        return target

    # --- model thread only ------------------------------------------------------------------------

    def load_base(self) -> None:
        """Load the base model and tokenizer, wrapped in a `PeftModel` holding only a no-op sentinel.

        `PeftModel.from_pretrained` injects its layers into the base *in place*, so a first adapter that
        fails half-way would leave the base corrupted; with the sentinel every real adapter goes through
        `load_adapter`, whose failures `delete_adapter` cleans up. The sentinel (rank 1, B = 0, on one
        module) is never active while scoring, so it changes no output.
        """
        from peft import LoraConfig, get_peft_model

        from loraguard.modelload import load_model

        loaded = load_model(self.base, (), dtype=self.dtype, device=self.device)
        target = next(
            name.rsplit(".", 1)[-1]
            for name, module in loaded.model.named_modules()
            if type(module).__name__ == "Linear" and name != "lm_head"
        )
        config = LoraConfig(r=1, lora_alpha=1, target_modules=[target], init_lora_weights=True)
        self.model = get_peft_model(loaded.model, config, adapter_name=SENTINEL)
        self.model.eval()
        self.tokenizer = loaded.tokenizer

    def attach(self, ref: str, folder: Path) -> LoadedAdapter:
        """Load a prepared adapter folder under a PEFT name derived from `ref`; the folder is removed."""
        name = peft_name(ref)
        try:
            if ref in self.adapters:
                return self.adapters[ref]
            try:
                self._peft_load(folder, name)
            except Exception as exc:  # PEFT raises many types; the pool must survive all of them
                self._forget(name)
                raise AdapterRefused(
                    ref, "load-failed", f"PEFT could not load it onto the base: {type(exc).__name__}: {str(exc)[:300]}"
                ) from exc
            loaded = LoadedAdapter(ref, name, str(folder), time.time())
            self.adapters[ref] = loaded
            return loaded
        finally:
            shutil.rmtree(folder.parent, ignore_errors=True)

    def _peft_load(self, folder: Path, name: str) -> None:
        self.model.load_adapter(str(folder), adapter_name=name, is_trainable=False)
        config = self.model.peft_config[name]
        if config.is_prompt_learning or config.task_type not in (None, "CAUSAL_LM"):
            raise ValueError(
                f"{config.peft_type} / {config.task_type} adapters cannot be scored; a CAUSAL_LM LoRA is needed"
            )
        self.model.eval()

    def _forget(self, name: str) -> None:
        config = getattr(self.model, "peft_config", {})
        if name in config:
            try:
                self.model.delete_adapter(name)
            except Exception:
                pass

    def detach(self, ref: str) -> None:
        """Unload `ref` (no-op if it is not loaded)."""
        loaded = self.adapters.pop(ref, None)
        if loaded is not None:
            self._forget(loaded.peft_name)

    def score(self, ref: str, rows: Sequence[Mapping[str, str]]) -> Any:
        """`score_rows` for `rows` with adapter `ref` active (a `ScoreResult`)."""
        from loraguard.scoring.api import score_rows

        loaded = self.adapters[ref]
        self.model.set_adapter(loaded.peft_name)
        return score_rows(
            self.model,
            self.tokenizer,
            rows,
            template=self.template,
            method="logits",
            batch_size=self.batch_size,
            prefix_cache=self.prefix_cache,
        )

    def close(self) -> None:
        """Remove the private staging folder."""
        shutil.rmtree(self._staging, ignore_errors=True)
