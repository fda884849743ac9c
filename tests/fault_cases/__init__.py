"""The test corpus: fault-case and healthy-variant adapters for the static check, one `Case` per defect.

Each `Case` builds one adapter folder on a tiny base, then damages the files the way real adapters
go wrong (field-anchors.md, section C), and says which finding categories `check` must report for
it against its base (the check's fixtures per rule, as ruff keeps `resources/test/fixtures`):

    from fault_cases import build_all      # tests/ is on sys.path (benchmarks add it)
    for name, built in build_all(workdir).items():
        report = loraguard.check(built.adapter, built.base)
        assert {f.category for f in report.findings} >= built.case.expected

With torch, transformers and PEFT installed, the adapters are saved by real PEFT
(`get_peft_model(...).save_pretrained`) on real tiny models. Without them, the cases that do not
need torch (`Case.torch` false: `TORCH_FREE`) are written in PEFT's format with numpy against
config-only bases, so the torch-free checker is tested without torch; `test_fault_factory.py`
proves both ways give the same files and the same findings.

`expected` lists every category that must fire (empty for a healthy variant). `tolerated` lists
categories a check may also report without being wrong: secondary findings that are debatable
(e.g. "declared-target-missing" for keys that a prefix mismatch already explains). An exact test
is then `expected <= found <= expected | tolerated`.

Building every case takes a few seconds on 2 CPU cores: the tiny base is built once; other-shaped
bases used only for training live in memory; catalog-sized bases are config-only folders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from fault_cases import builders as b
from fault_cases.bases import TINY, TINY_GPT2, TINY_PHI3, TINY_SEQ_CLS, BaseFixture, build_fixture
from fault_cases.scaled import QWEN2_05B, QWEN25_05B, QWEN25_05B_INSTRUCT, QWEN25_15B_INSTRUCT
from loraguard.errors import OutputExistsError, UnknownNameError

__all__ = [
    "ALL",
    "CATEGORIES",
    "CONFIG_ONLY_BASES",
    "FAULTS",
    "HEALTHY",
    "TORCH_FREE",
    "BaseFixture",
    "BuiltCase",
    "Case",
    "build_all",
    "build_base",
    "build_cases",
    "case_named",
    "expected_categories",
]

CATEGORIES = frozenset(
    {
        "shape-mismatch",
        "claimed-base-mismatch",
        "layer-mismatch",
        "prefix-mismatch",
        "unknown-target-module",
        "declared-target-missing",
        "rank-mismatch",
        "zero-adapter",
        "non-finite-weights",
        "vocab-mismatch",
        "task-head",
        "unknown-config-field",
        "base-version-mismatch",
        "quantization-variant",
        "name-hint-conflict",
        "provenance",
        "unsafe-pickle",
        "unreadable",
    }
)
"""Every category the table uses (the fixed names `check` reports)."""

CONFIG_ONLY_BASES = frozenset({QWEN25_05B_INSTRUCT, QWEN25_05B, QWEN2_05B, QWEN25_15B_INSTRUCT})
"""Base keys whose folder holds only config.json: nothing can be loaded onto them for real."""


@dataclass(frozen=True)
class Case:
    name: str
    """Stable id, also the case's folder name, e.g. "wider-base-claims-this-base"."""
    description: str
    """One line for the demo output."""
    expected: frozenset[str]
    """Categories `check` must report (empty for a healthy variant)."""
    build: Callable[[Path, BaseFixture], Path]
    """Writes the adapter under the given (fresh) folder and returns the adapter's folder."""
    base: str = TINY
    """Key of the base folder to check the adapter against (`BaseFixture.path(base)`)."""
    tolerated: frozenset[str] = frozenset()
    """Categories that may also be reported without being wrong (debatable secondary findings)."""
    verdict: str | None = None
    """"pass", "warn" or "fail" where the severity is pinned; None where the table leaves it to `check`."""
    torch: bool = False
    """Needs torch whatever the fixture: the point is a layout only real PEFT or `torch.save` writes."""

    @property
    def healthy(self) -> bool:
        return not (self.expected - {"provenance"})


@dataclass(frozen=True)
class BuiltCase:
    case: Case
    adapter: Path
    base: Path


def _c(
    name: str,
    description: str,
    expected: Iterable[str],
    build: Callable[[Path, BaseFixture], Path],
    *,
    base: str = TINY,
    tolerated: Iterable[str] = (),
    verdict: str | None = None,
    torch: bool = False,
) -> Case:
    return Case(name, description, frozenset(expected), build, base, frozenset(tolerated), verdict, torch)


def _ok(
    name: str, description: str, build: Callable[[Path, BaseFixture], Path], base: str = TINY, *, torch: bool = False
) -> Case:
    return _c(name, description, (), build, base=base, verdict="pass", torch=torch)


HEALTHY: tuple[Case, ...] = (
    _ok("plain-qv", "LoRA r=8 on q_proj/v_proj, the PEFT defaults", b.plain),
    _ok("all-linear", 'target_modules="all-linear": attention and MLP projections', b.all_linear),
    _ok("dora", "DoRA (use_dora): lora_magnitude_vector beside A and B", b.dora, torch=True),
    _ok("rslora", "rank-stabilised LoRA (use_rslora)", b.rslora),
    _ok("rank-alpha-pattern", "rank_pattern/alpha_pattern: q_proj at rank 4, v_proj at the default 8", b.patterns),
    _ok(
        "modules-to-save-lm-head",
        "lm_head saved in full (modules_to_save) on a base with tied embeddings",
        b.lm_head_saved,
        torch=True,
    ),
    _ok("layers-to-transform", "only layer 1 adapted, declared with layers_to_transform=[1]", b.layer_subset),
    _ok("embedding-lora", "LoRA on embed_tokens (lora_embedding_A/B) and q_proj", b.embedding_lora, torch=True),
    _ok("bin-tensors-only", "adapter_model.bin written by torch.save, holding only tensors", b.bin_tensors, torch=True),
    _ok(
        "seq-cls-with-head",
        "SEQ_CLS adapter with its score head saved (modules_to_save)",
        b.seq_cls,
        TINY_SEQ_CLS,
        torch=True,
    ),
    _ok("phi3-fused", "Phi-3 fused modules: qkv_proj and gate_up_proj", b.phi3_fused, TINY_PHI3, torch=True),
    _ok("gpt2-conv1d", "GPT-2 Conv1D c_attn with fan_in_fan_out=True", b.gpt2_conv1d, TINY_GPT2, torch=True),
    _ok(
        "catalog-instruct",
        "Qwen2.5-0.5B-Instruct-shaped q/v adapter on that base (config only)",
        b.catalog_healthy,
        QWEN25_05B_INSTRUCT,
    ),
    _c(
        "healthy-with-provenance",
        "healthy adapter with a model card (base_model:) and trainer_state.json",
        {"provenance"},
        b.with_provenance,
        verdict="pass",
    ),
)

FAULTS: tuple[Case, ...] = (
    # --- wrong base ---
    _c(
        "wider-base-claims-this-base",
        "trained on a Qwen2 with hidden 96, config claims this hidden-64 base",
        {"shape-mismatch", "claimed-base-mismatch"},
        b.wider_base,
        verdict="fail",
    ),
    # Debatable: the config claims the 2-layer base that the 4-layer tensors contradict.
    _c(
        "extra-layers",
        "trained on a 4-layer twin, checked on the 2-layer base",
        {"layer-mismatch"},
        b.extra_layers,
        tolerated={"claimed-base-mismatch"},
        verdict="fail",
    ),
    # Debatable: layer 1's q/v keys are missing, which a per-module check could also call missing targets.
    _c(
        "fewer-layers-undeclared",
        "layer-1 tensors removed without declaring layers_to_transform",
        {"layer-mismatch"},
        b.fewer_layers,
        tolerated={"declared-target-missing"},
        verdict="warn",
    ),
    # --- names ---
    _c(
        "nested-prefix",
        "keys under base_model.model.language_model.model.layers (a VL wrapper's names)",
        {"prefix-mismatch"},
        b.nested_prefix,
        tolerated={"declared-target-missing"},
    ),
    _c(
        "other-class-prefix",
        "keys named like GPT-2 (transformer.h.N.attn.q_proj) on a Qwen2 base",
        {"prefix-mismatch"},
        b.other_class_prefix,
        tolerated={"declared-target-missing", "layer-mismatch"},
    ),
    # Debatable: the `query_key_value` keys match no module, which a key-level check may call a prefix issue.
    _c(
        "unknown-target-module",
        'config and tensors name "query_key_value", a module this base lacks',
        {"unknown-target-module"},
        b.unknown_target,
        tolerated={"prefix-mismatch"},
    ),
    # A warning, not an error (issue 13): PEFT ignored the stale names when training and does again when loading.
    _c(
        "stale-target-names",
        'config targets q_proj/v_proj and "query"/"value", names this base lacks and no tensor carries',
        {"unknown-target-module"},
        b.stale_targets,
        verdict="warn",
    ),
    _c(
        "declared-target-missing",
        "config targets q/k/v, only q/v tensors saved",
        {"declared-target-missing"},
        b.declared_missing,
    ),
    # --- rank ---
    # A rank that disagrees with the tensors is also a shape disagreement: a check may report both.
    _c(
        "rank-edited",
        "config r changed from 8 to 16 after training",
        {"rank-mismatch"},
        b.rank_edited,
        tolerated={"shape-mismatch"},
        verdict="fail",
    ),
    _c(
        "rank-pattern-disagrees",
        'rank_pattern {"v_proj": 4} while every tensor has rank 8',
        {"rank-mismatch"},
        b.rank_pattern_wrong,
        tolerated={"shape-mismatch"},
        verdict="fail",
    ),
    # --- weights ---
    _c(
        "zero-init-untrained",
        "PEFT default init never trained: every lora_B is zero",
        {"zero-adapter"},
        b.zero_init,
        verdict="fail",
    ),
    # Debatable: shape [0] tensors also disagree with every expected shape.
    _c(
        "zero-empty-tensors",
        "every tensor has shape [0], as saved under DeepSpeed ZeRO-3",
        {"zero-adapter"},
        b.zero_empty,
        tolerated={"shape-mismatch", "rank-mismatch"},
        verdict="fail",
    ),
    _c("no-weights-file", "adapter_config.json only, no weights file", {"zero-adapter"}, b.no_weights, verdict="fail"),
    _c("nan-weight", "one lora_A element is NaN", {"non-finite-weights"}, b.nan_weight, verdict="fail"),
    _c("inf-bf16", "bfloat16 adapter with one +Inf in a lora_B", {"non-finite-weights"}, b.inf_bf16, verdict="fail"),
    # vocab-mismatch is the specific form of a shape mismatch on embed_tokens/lm_head.
    _c(
        "vocab-mismatch",
        "embed_tokens/lm_head saved from a base with 64 more tokens",
        {"vocab-mismatch"},
        b.vocab_bigger,
        tolerated={"shape-mismatch"},
        verdict="fail",
        torch=True,
    ),
    # Debatable: the config's modules_to_save names `score`, whose tensor is absent.
    _c(
        "seq-cls-without-head",
        "SEQ_CLS adapter whose score head was not saved",
        {"task-head"},
        b.seq_cls_no_head,
        base=TINY_SEQ_CLS,
        tolerated={"declared-target-missing"},
        torch=True,
    ),
    # Debatable: `score.weight` matches no module of Qwen2ForCausalLM.
    _c(
        "causal-with-score-head",
        "CAUSAL_LM adapter carrying a score.weight classification head",
        {"task-head"},
        b.causal_with_head,
        tolerated={"prefix-mismatch"},
    ),
    _c(
        "unknown-config-field",
        f'config has "{b.UNKNOWN_FIELD}", unknown to this PEFT version',
        {"unknown-config-field"},
        b.unknown_field,
    ),
    # --- file safety and format ---
    # Debatable: a check that refuses to unpickle may also call the weights unreadable.
    _c(
        "unsafe-pickle-raw",
        "adapter_model.bin is a bare pickle calling os.system",
        {"unsafe-pickle"},
        b.unsafe_raw,
        tolerated={"unreadable"},
        verdict="fail",
    ),
    _c(
        "unsafe-pickle-torch-zip",
        "adapter_model.bin in torch's zip layout, data.pkl calling os.system",
        {"unsafe-pickle"},
        b.unsafe_zip,
        tolerated={"unreadable"},
        verdict="fail",
    ),
    _c(
        "truncated-safetensors",
        "safetensors cut in the middle of its tensor data",
        {"unreadable"},
        b.truncated,
        verdict="fail",
    ),
    _c(
        "header-too-long",
        "safetensors header length larger than the file",
        {"unreadable"},
        b.header_too_long,
        verdict="fail",
    ),
    _c(
        "invalid-config-json",
        "adapter_config.json cut in half (invalid JSON)",
        {"unreadable"},
        b.invalid_json,
        verdict="fail",
    ),
    _c(
        "empty-folder",
        "an empty adapter folder",
        {"unreadable"},
        b.empty_folder,
        tolerated={"zero-adapter"},
        verdict="fail",
    ),
    _c(
        "garbage-safetensors",
        "random bytes in place of adapter_model.safetensors",
        {"unreadable"},
        b.garbage,
        verdict="fail",
    ),
    # --- catalog-sized, against config-only bases ---
    _c(
        "instruct-on-base-model",
        "Qwen2.5-0.5B-Instruct adapter on Qwen2.5-0.5B (same shapes)",
        {"base-version-mismatch"},
        b.instruct_on_base,
        base=QWEN25_05B,
        verdict="warn",
    ),
    _c(
        "newer-on-older-generation",
        "Qwen2.5-0.5B adapter on Qwen2-0.5B (same shapes)",
        {"base-version-mismatch"},
        b.newer_on_older,
        base=QWEN2_05B,
        verdict="warn",
    ),
    # Debatable: the claimed name differs from the base's, which a name check may also report.
    _c(
        "quantized-variant-claimed",
        "claims Qwen2.5-0.5B-Instruct-GPTQ-Int4, checked on the unquantized base",
        {"quantization-variant"},
        b.quantized_claim,
        base=QWEN25_05B_INSTRUCT,
        tolerated={"base-version-mismatch"},
    ),
    _c(
        "name-hint-conflict",
        'folder "reddit-4b-think" holds an adapter claiming and fitting Qwen2.5-0.5B',
        {"name-hint-conflict"},
        b.name_hint,
        base=QWEN25_05B_INSTRUCT,
    ),
    _c(
        "case-study-at-scale",
        'Qwen3-4B-shaped "reddit-4b-think" adapter claiming Qwen2.5-1.5B-Instruct',
        {"shape-mismatch", "layer-mismatch", "claimed-base-mismatch", "name-hint-conflict"},
        b.case_study_scaled,
        base=QWEN25_15B_INSTRUCT,
        verdict="fail",
    ),
)

ALL: tuple[Case, ...] = HEALTHY + FAULTS
TORCH_FREE: tuple[Case, ...] = tuple(case for case in ALL if not case.torch)
"""The cases a fixture without torch builds."""
_BY_NAME = {case.name: case for case in ALL}


def case_named(name: str) -> Case:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownNameError(f"no fault case named {name!r}; known: {', '.join(_BY_NAME)}") from None


def expected_categories(name: str) -> frozenset[str]:
    """The categories `check` must report for case `name` (empty for a healthy variant)."""
    return case_named(name).expected


def build_base(workdir: str | Path, *, torch: bool | None = None) -> BaseFixture:
    """Build (or reuse) the shared tiny base and its tokenizer under `workdir/bases`; with `torch`
    (default: when torch, transformers and PEFT import) the real models, else config-only bases."""
    return build_fixture(Path(workdir) / "bases", torch=torch)


def build_all(
    workdir: str | Path,
    cases: Iterable[Case] | None = None,
    fixture: BaseFixture | None = None,
    *,
    torch: bool | None = None,
) -> dict[str, BuiltCase]:
    """Build each case under `workdir/cases/<name>` (must be absent or empty), bases under `workdir/bases`.

    `cases` defaults to every case the fixture can build: `ALL` with torch, `TORCH_FREE` without.
    Returns, by case name, the adapter folder and the base folder to check it against.
    """
    workdir = Path(workdir)
    fx = fixture if fixture is not None else build_base(workdir, torch=torch)
    if cases is None:
        cases = ALL if fx.torch else TORCH_FREE
    built: dict[str, BuiltCase] = {}
    for case in cases:
        if case.torch and not fx.torch:
            raise RuntimeError(f"fault case {case.name!r} needs torch: this fixture is torch-free")
        folder = workdir / "cases" / case.name
        if folder.exists() and any(folder.iterdir()):
            raise OutputExistsError(
                f"Building fault case {case.name!r}: {folder} is not empty. Use a fresh work folder.", path=folder
            )
        folder.mkdir(parents=True, exist_ok=True)
        adapter = case.build(folder, fx)
        built[case.name] = BuiltCase(case=case, adapter=adapter, base=fx.path(case.base))
    return built


def build_cases(workdir: str | Path, cases: Iterable[Case] | None = None) -> dict[str, Path]:
    """Build the cases and return each adapter's folder by case name."""
    return {name: item.adapter for name, item in build_all(workdir, cases).items()}
