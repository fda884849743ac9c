"""Locate an adapter (folder, single file or Hub repo id) and read everything `check` needs.

Reading never raises for a bad adapter: problems become `ReadProblem`s that the checker turns
into `unreadable` / `unsafe-pickle` / `zero-adapter` findings. Nothing is ever written, and no pickle
is ever executed: besides the weights file PEFT would load, every other pickle-format weights file
in the folder (`*.bin`, `*.pt`, `*.pth`, `*.ckpt`) is vetted too, so a hostile `.bin` lying beside a
good `.safetensors` is reported. Symlink loops, FIFOs and unreadable files are findings, not errors.
"""

from __future__ import annotations

import errno
import stat
from dataclasses import dataclass, field
from pathlib import Path

from loraguard.adapter.config import AdapterConfig, read_adapter_config
from loraguard.adapter.keys import AdapterTensor, parse_key
from loraguard.adapter.safetensors_file import read_safetensors_header
from loraguard.adapter.source import fetch_adapter_snapshot, is_repo_id
from loraguard.adapter.tensors import TensorMeta, TensorStats
from loraguard.adapter.torch_pickle import scan_torch_pickle
from loraguard.adapter.values import tensor_stats_safetensors, tensor_stats_zip
from loraguard.errors import AdapterFormatError, HubUnavailableError

CONFIG_NAME = "adapter_config.json"  # peft.utils.constants.CONFIG_NAME
WEIGHT_NAMES = ("adapter_model.safetensors", "adapter_model.bin", "adapter_model.pt")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
"""Weights files in pickle format (torch.save): each one in the folder is vetted for unsafe globals."""
NOT_WEIGHTS = frozenset({"training_args.bin"})
"""Pickles the Trainer writes beside an adapter that nothing loads as weights (read as evidence only)."""
MAX_EXTRA_PICKLES = 16
"""Other pickle files vetted per folder; more are reported unvetted."""


@dataclass(frozen=True)
class ReadProblem:
    kind: str
    """`unreadable`, `unsafe-pickle` or `no-weights`."""
    message: str
    path: str | None = None
    globals: tuple[str, ...] = ()
    """For `unsafe-pickle`: the globals the pickle references outside the tensor-storage allowlist."""


@dataclass(frozen=True)
class AdapterData:
    """Everything read from one adapter: config, tensor metadata, value statistics, problems."""

    ref: str
    name: str
    folder: Path | None = None
    weights_path: Path | None = None
    config: AdapterConfig | None = None
    tensors: tuple[AdapterTensor, ...] = ()
    metas: dict[str, TensorMeta] = field(default_factory=dict, repr=False)
    stats: dict[str, TensorStats] | None = field(default=None, repr=False)
    unsafe_globals: tuple[str, ...] = ()
    problems: tuple[ReadProblem, ...] = ()
    size_bytes: int = 0
    repo_id: str | None = None

    @property
    def weights_format(self) -> str | None:
        if self.weights_path is None:
            return None
        return "safetensors" if self.weights_path.suffix == ".safetensors" else "pickle"


def read_adapter(ref: str | Path, *, scan_values: bool = True, norms: bool = False) -> AdapterData:
    """Read the adapter at `ref` (a folder, a weights file with its config beside it, or a Hub id).

    `scan_values` streams every float tensor for zeros and NaN/Inf; `norms` also computes
    Frobenius norms (for the weight heatmap), which costs a second pass.
    """
    ref_s = str(ref)
    path = Path(ref_s).expanduser()
    repo_id = None
    if not _lexists(path):
        if is_repo_id(ref):
            try:
                path = fetch_adapter_snapshot(ref_s)
            except HubUnavailableError as exc:
                problem = ReadProblem("unreadable", str(exc), ref_s)
                return AdapterData(ref_s, ref_s.split("/")[-1], problems=(problem,), repo_id=ref_s)
            repo_id = ref_s
        else:
            return _unreadable(
                ref_s,
                path,
                f"{path}: no such file or folder. Pass a PEFT adapter folder, a "
                ".safetensors/.bin file with adapter_config.json beside it, or a Hub repo id.",
            )
    kind = _kind(path)
    if kind is not None:
        return _unreadable(ref_s, path, f"{path}: {kind}. Pass a PEFT adapter folder or its weights file.")
    folder, weights = _locate(path)
    name = repo_id.split("/")[-1] if repo_id else (folder.name if path.is_dir() else path.stem)
    try:
        empty = path.is_dir() and not any(path.iterdir())
    except OSError as exc:
        return _unreadable(ref_s, path, f"{path}: cannot list the folder ({exc.strerror or exc}).")
    if empty:
        return AdapterData(
            ref_s,
            name,
            folder=folder,
            problems=(
                ReadProblem(
                    "unreadable",
                    f"{path}: the folder is empty. Point at the folder holding "
                    "adapter_config.json and adapter_model.safetensors.",
                    str(path),
                ),
            ),
            repo_id=repo_id,
        )
    problems: list[ReadProblem] = []
    config = None
    config_path = folder / CONFIG_NAME
    if config_path.is_file():
        try:
            config = read_adapter_config(config_path)
        except AdapterFormatError as exc:
            problems.append(ReadProblem("unreadable", str(exc), str(config_path)))
    elif _lexists(config_path):
        what = _kind(config_path) or "not a regular file"
        problems.append(
            ReadProblem("unreadable", f"{config_path}: {what}. Replace it with the adapter's config.", str(config_path))
        )
    else:
        problems.append(
            ReadProblem(
                "unreadable",
                f"{config_path}: missing. PEFT cannot load an adapter "
                "without its config; copy it from where the adapter was published.",
                str(config_path),
            )
        )
    problems += _vet_other_pickles(folder, weights) if path.is_dir() else []
    if weights is None:
        problems.append(
            ReadProblem(
                "no-weights",
                f"{folder}: no adapter_model.safetensors or .bin: only "
                "the config can be checked and the adapter would be a no-op.",
                str(folder),
            )
        )
        return AdapterData(ref_s, name, folder, None, config, problems=tuple(problems), repo_id=repo_id)
    return _read_weights(ref_s, name, folder, weights, config, problems, scan_values, norms, repo_id)


def _unreadable(ref: str, path: Path, message: str) -> AdapterData:
    return AdapterData(ref, path.name, problems=(ReadProblem("unreadable", message, ref),))


def _lexists(path: Path) -> bool:
    """Whether anything is at `path`, a broken symlink or a symlink loop included."""
    try:
        path.lstat()
    except OSError:
        return False
    return True


def _kind(path: Path) -> str | None:
    """Why `path` (which exists as a name) cannot be read as a file or folder, or None if it can."""
    try:
        info = path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symlink loop (it points, directly or not, at itself)"
        if path.is_symlink():
            return f"a broken symlink ({exc.strerror})"
        return f"cannot be read ({exc.strerror or exc})"
    if stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode):
        return None
    return "not a regular file or folder (a FIFO, device or socket)"


def _vet_other_pickles(folder: Path, weights: Path | None) -> list[ReadProblem]:
    """Unsafe-pickle problems for every pickle-format file in `folder` besides `weights` (never executed)."""
    try:
        others = sorted(
            p
            for p in folder.iterdir()
            if p.suffix in PICKLE_SUFFIXES and p.name not in NOT_WEIGHTS and p != weights and _kind(p) is None
        )
    except OSError:
        return []
    others = [p for p in others if p.is_file()]
    problems = []
    for other in others[:MAX_EXTRA_PICKLES]:
        try:
            unsafe = scan_torch_pickle(other).unsafe_globals
        except AdapterFormatError as exc:
            problems.append(
                ReadProblem(
                    "unsafe-pickle",
                    f"{other}: a pickle loraguard cannot vet ({exc}); it was not executed. Do not load it.",
                    str(other),
                )
            )
            continue
        if unsafe:
            problems.append(
                ReadProblem(
                    "unsafe-pickle",
                    f"{other}: the pickle references {', '.join(sorted(set(unsafe)))}; it was not executed "
                    "(PEFT would load the adapter's other weights file, but anything loading this one runs it).",
                    str(other),
                    tuple(unsafe),
                )
            )
    if len(others) > MAX_EXTRA_PICKLES:
        problems.append(
            ReadProblem(
                "unsafe-pickle",
                f"{folder}: {len(others) - MAX_EXTRA_PICKLES} more pickle files were not vetted (loraguard vets "
                f"{MAX_EXTRA_PICKLES} per folder); do not load them.",
                str(folder),
            )
        )
    return problems


def _read_weights(
    ref: str,
    name: str,
    folder: Path,
    weights: Path,
    config: AdapterConfig | None,
    problems: list[ReadProblem],
    scan_values: bool,
    norms: bool,
    repo_id: str | None,
) -> AdapterData:
    metas: dict[str, TensorMeta] = {}
    stats: dict[str, TensorStats] | None = None
    unsafe: tuple[str, ...] = ()
    size = 0
    try:
        kind = _kind(weights)
        if kind is not None:
            raise AdapterFormatError(f"{weights}: {kind}. Re-download or re-save the adapter.", path=weights)
        size = weights.stat().st_size
        if weights.suffix == ".safetensors":
            metas, _ = read_safetensors_header(weights)
            stats = tensor_stats_safetensors(weights, metas.values(), norms=norms) if scan_values else None
        else:
            scan = scan_torch_pickle(weights)
            unsafe = scan.unsafe_globals
            if unsafe:
                problems.append(
                    ReadProblem(
                        "unsafe-pickle",
                        f"{weights}: the pickle references {', '.join(sorted(set(unsafe)))}; it was not executed.",
                        str(weights),
                        unsafe,
                    )
                )
            else:
                metas = scan.tensors
                if scan_values and scan.zip_prefix is not None:
                    stats = tensor_stats_zip(weights, scan.zip_prefix, metas.values(), norms=norms)
    except AdapterFormatError as exc:
        problems.append(ReadProblem("unreadable", str(exc), str(weights)))
    except OSError as exc:
        problems.append(ReadProblem("unreadable", f"{weights}: cannot read ({exc.strerror or exc}).", str(weights)))
    tensors = tuple(parse_key(m) for m in metas.values())
    return AdapterData(
        ref, name, folder, weights, config, tensors, metas, stats, unsafe, tuple(problems), size, repo_id
    )


def _locate(path: Path) -> tuple[Path, Path | None]:
    if path.is_file():
        return path.parent, path
    for candidate in WEIGHT_NAMES:
        if (path / candidate).is_file():
            return path, path / candidate
    others = sorted(path.glob("*.safetensors"))
    return path, (others[0] if len(others) == 1 else None)
