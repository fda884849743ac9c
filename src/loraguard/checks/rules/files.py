"""LG1xx: the adapter's files themselves."""

from __future__ import annotations

from collections.abc import Iterator

from loraguard.checks.context import CheckContext
from loraguard.codes import rule
from loraguard.findings import Finding, Severity


@rule("LG101", "unreadable-input", "unreadable", Severity.ERROR, "An input cannot be read")
def unreadable_input(ctx: CheckContext) -> Iterator[Finding]:
    """What it checks: that the adapter folder, its config, its weights file and the base's
    config.json exist and parse: a missing or empty folder, invalid JSON, a truncated or corrupt
    safetensors file, a header larger than the file.

    Why it matters: PEFT fails on these only after loading the whole base model, or (for a
    truncated tail) loads garbage.

    How to fix: re-download or re-save the file named in the message.
    """
    for problem in ctx.adapter.problems:
        if problem.kind == "unreadable":
            yield unreadable_input.finding(
                problem.message, fix="Re-download or re-save the file named above.", path=problem.path
            )
    if ctx.base_problem:
        yield unreadable_input.finding(
            ctx.base_problem,
            fix="Pass a folder holding config.json, a catalog name (loraguard catalog) or a reachable Hub id.",
        )


@rule("LG102", "unsafe-pickle", "unsafe-pickle", Severity.ERROR, "A pickle references code, not only tensor storage")
def unsafe_pickle(ctx: CheckContext) -> Iterator[Finding]:
    """What it checks: every global a `.bin`/`.pt` pickle references, in the weights file PEFT would load
    and in every other pickle-format weights file of the folder (`*.bin`, `*.pt`, `*.pth`, `*.ckpt`; not
    the Trainer's `training_args.bin`), and pickles too large or malformed to vet. Tensor storages and
    rebuild functions are allowed (what `torch.load(weights_only=True)` allows); anything else
    (`os.system`, `builtins.eval`, `subprocess.Popen`...) is reported. loraguard reads pickles with
    an unpickler that resolves no global, so nothing in the file ever runs.

    Why it matters: loading such a file with `torch.load(weights_only=False)` (old PEFT, old
    scripts) runs the attacker's code.

    How to fix: do not load it. Ask for a `.safetensors` file.
    """
    for problem in ctx.adapter.problems:
        if problem.kind == "unsafe-pickle":
            yield unsafe_pickle.finding(
                problem.message,
                fix="Do not load this file; ask the author for adapter_model.safetensors.",
                globals=list(problem.globals),
                path=problem.path,
            )


@rule("LG103", "weights-absent", "zero-adapter", Severity.ERROR, "The adapter has no weights file")
def weights_absent(ctx: CheckContext) -> Iterator[Finding]:
    """What it checks: a folder with `adapter_config.json` but no `adapter_model.safetensors` or
    `.bin`.

    Why it matters: there is nothing to apply: the config alone is a no-op adapter.

    How to fix: download the weights file too.
    """
    for problem in ctx.adapter.problems:
        if problem.kind == "no-weights":
            yield weights_absent.finding(problem.message, fix="Download adapter_model.safetensors as well.")


@rule("LG104", "non-lora-adapter", "unreadable", Severity.WARNING, "The adapter is not LoRA; only file checks apply")
def non_lora_adapter(ctx: CheckContext) -> Iterator[Finding]:
    """What it checks: `peft_type` is LORA (or ADALORA). Prompt tuning, IA3 and other methods are
    read for file integrity and pickle safety only.

    Why it matters: a clean report on a non-LoRA adapter must not read as "structurally checked".

    How to fix: nothing, if you expected this adapter type.
    """
    if ctx.config is not None and not ctx.config.is_lora:
        yield non_lora_adapter.finding(
            f"peft_type is {ctx.config.peft_type}: loraguard checks LoRA-family adapters; "
            "shapes, targets and ranks were not checked.",
            peft_type=ctx.config.peft_type,
        )
