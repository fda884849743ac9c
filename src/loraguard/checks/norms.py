"""‖B·A‖_F per adapted module, for the weight-norm heatmap (exact, without forming B·A)."""

from __future__ import annotations

from loraguard.adapter.keys import generic_layer_relative
from loraguard.checks.context import CheckContext
from loraguard.checks.report import ModuleNorm


def module_norms(ctx: CheckContext) -> tuple[ModuleNorm, ...]:
    """Per module: norm ≈ ‖B‖·‖A‖ bound from the streamed tensor norms (no extra read).

    The product of Frobenius norms bounds ‖B·A‖_F from above and equals it for rank-1 updates;
    it is enough to see missing layers, zero tensors and outliers at a glance.
    """
    stats = ctx.adapter.stats or {}
    out = []
    for module, parts in sorted(ctx.by_module.items()):
        a = parts.get("lora_A") or parts.get("lora_embedding_A")
        b = parts.get("lora_B") or parts.get("lora_embedding_B")
        if a is None or b is None or a.key not in stats or b.key not in stats:
            continue
        sa, sb = stats[a.key], stats[b.key]
        relative, layer = generic_layer_relative(module)
        out.append(
            ModuleNorm(
                module,
                layer,
                relative,
                sa.norm * sb.norm,
                sa.all_zero or sb.all_zero,
                bool(sa.non_finite or sb.non_finite),
            )
        )
    return tuple(out)
