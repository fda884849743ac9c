"""The `generate` method: greedy generation of a few tokens, then the case study's 3-stage parser.

This is the approach the case study used (and the one that hid its failure): the model *writes* a
probability. It is kept as a baseline and for adapters trained to write numbers. Batches are LEFT
padded; `generate` derives position ids from the attention mask. With `batch_size=1` there is no
padding at all, which is exactly the case study's one-row loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from loraguard.errors import InputError
from loraguard.scoring.batching import left_pad, plan_batches
from loraguard.scoring.logits import causal_lm_of
from loraguard.scoring.progress import ProgressSink

__all__ = ["MAX_NEW_TOKENS", "generate_texts"]

MAX_NEW_TOKENS = 10


def generate_texts(
    model: Any,
    tokenizer: Any,
    ids: Sequence[Sequence[int]],
    *,
    batch_size: int = 8,
    max_new_tokens: int = MAX_NEW_TOKENS,
    pad_id: int = 0,
    progress: ProgressSink | None = None,
) -> list[str]:
    """Greedy-decode up to `max_new_tokens` after each prompt; the new text, special tokens removed."""
    import torch

    if not 1 <= max_new_tokens <= MAX_NEW_TOKENS:
        raise InputError(f"max_new_tokens must be in 1..{MAX_NEW_TOKENS}, got {max_new_tokens}")
    lm = causal_lm_of(model)
    device = next(lm.parameters()).device
    lengths = [len(s) for s in ids]
    texts = [""] * len(ids)
    if progress is not None:
        progress.start(len(ids), sum(lengths) + max_new_tokens * len(ids))
    eos = getattr(tokenizer, "eos_token_id", None)
    with torch.inference_mode():
        for batch in plan_batches(lengths, range(len(ids)), batch_size):
            b_ids, b_mask, _ = left_pad([ids[i] for i in batch], pad_id)
            input_ids = torch.tensor(b_ids, dtype=torch.long, device=device)
            out = lm.generate(
                input_ids=input_ids,
                attention_mask=torch.tensor(b_mask, dtype=torch.long, device=device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                num_beams=1,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=pad_id,
                eos_token_id=eos,
            )
            new = out[:, input_ids.shape[1] :]
            decoded = tokenizer.batch_decode(new, skip_special_tokens=True)
            for i, text in zip(batch, decoded, strict=True):
                texts[i] = text.strip()
            if progress is not None:
                progress.advance(len(batch), sum(lengths[i] for i in batch) + max_new_tokens * len(batch))
    return texts
