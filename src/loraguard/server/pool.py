"""The server's adapters on the base: verify registry entries, then attach, detach and score them.

The model itself is the adapter host (`loraguard.scoring.host.AdapterHost`, the same one score and
probe use); the pool adds what only a server needs: private verified copies, registry refs and
their PEFT names (`peft_name`), and refusals with reason codes for the reload policy (`reload.py`).

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
5. the adapter host must attach it (a CAUSAL_LM adapter PEFT can load; a half-loaded adapter is
   deleted again, the base is never touched).

Any failure raises `AdapterRefused` with a short reason code; the pool is left unchanged.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loraguard.errors import AdapterGone, AdapterRefused, LoraguardError
from loraguard.scoring.host import AdapterHost, peft_safe_name

__all__ = ["AdapterPool", "LoadedAdapter", "peft_name"]

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")
CheckFn = Callable[[Path, str], Sequence[str]]
"""`check_fn(adapter_folder, base)` → the static check's error messages (empty: pass)."""


@dataclass(frozen=True)
class LoadedAdapter:
    """An adapter attached to the base: its registry ref and its PEFT adapter name."""

    ref: str
    peft_name: str
    path: str
    loaded_at: float


def peft_name(ref: str) -> str:
    """The adapter host's name for `ref` (`toxicity@3` → `toxicity_v3`; see `scoring.host.peft_safe_name`)."""
    name, _, version = ref.partition("@")
    safe = peft_safe_name(name)
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
        self.host: AdapterHost | None = None
        self.adapters: dict[str, LoadedAdapter] = {}
        self._staging = Path(tempfile.mkdtemp(prefix="loraguard-serve-"))

    @property
    def ready(self) -> bool:
        return self.host is not None

    @property
    def _host(self) -> AdapterHost:
        if self.host is None:
            raise RuntimeError("AdapterPool.load_base() has not run")
        return self.host

    @property
    def model(self) -> Any:
        """The model (a `PeftModel` once an adapter was attached); `None` before `load_base`."""
        return None if self.host is None else self.host.model

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
        """Load the base model and tokenizer into the adapter host (`loraguard.scoring.host`), which
        attaches every adapter behind a no-op sentinel so a failed load never corrupts the base."""
        from loraguard.scoring.model import load_base

        self.host = AdapterHost(load_base(self.base, dtype=self.dtype, device=self.device))

    def attach(self, ref: str, folder: Path) -> LoadedAdapter:
        """Load a prepared adapter folder under a PEFT name derived from `ref`; the folder is removed."""
        name = peft_name(ref)
        try:
            if ref in self.adapters:
                return self.adapters[ref]
            try:
                self._host.attach(name, folder)
            except LoraguardError as exc:  # the host has undone the half-load: the pool is unchanged
                # the message names the private copy's folder; the refusal names the ref instead
                why = str(exc).removeprefix(f"adapter {exc.path}: ")
                raise AdapterRefused(ref, "load-failed", why[:400]) from exc
            loaded = LoadedAdapter(ref, name, str(folder), time.time())
            self.adapters[ref] = loaded
            return loaded
        finally:
            shutil.rmtree(folder.parent, ignore_errors=True)

    def detach(self, ref: str) -> None:
        """Unload `ref` (no-op if it is not loaded)."""
        loaded = self.adapters.pop(ref, None)
        if loaded is not None:
            self._host.detach(loaded.peft_name)

    def score(self, ref: str, rows: Sequence[Mapping[str, str]]) -> Any:
        """`score_rows` for `rows` with adapter `ref` active (a `ScoreResult`); `AdapterGone` if it is
        not loaded."""
        from loraguard.scoring.api import score_rows

        loaded = self.adapters.get(ref)
        if loaded is None:
            raise AdapterGone(f"{ref} is not loaded")
        with self._host.activate(loaded.peft_name) as model:
            return score_rows(
                model,
                self._host.tokenizer,
                rows,
                template=self.template,
                method="logits",
                batch_size=self.batch_size,
                prefix_cache=self.prefix_cache,
            )

    def close(self) -> None:
        """Remove the private staging folder."""
        shutil.rmtree(self._staging, ignore_errors=True)
