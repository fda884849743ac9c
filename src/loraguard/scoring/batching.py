"""Batch planning (pure Python, no torch): shared-prefix groups, length-sorted batches, padding.

Shared prefixes are found on *token ids*, not on text: rows are grouped (by rule), and a group's
prefix is the longest common prefix of its rows' full prompt ids, shortened so that every row keeps
at least one token of its own. Because the split point is taken from the full prompts' ids, the
prefix is a true prefix of every row's ids even when BPE merges across the text boundary (tokenizing
the prefix text on its own can give different ids there), and the model sees exactly the ids it
would see without the cache.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from loraguard.errors import InputError

__all__ = [
    "PrefixGroup",
    "common_prefix_length",
    "left_pad",
    "plan_batches",
    "plan_prefix_groups",
    "right_pad",
]

MIN_PREFIX_TOKENS = 8
"""A shorter shared prefix is not worth a separate forward pass."""


@dataclass(frozen=True)
class PrefixGroup:
    """Rows whose prompts all start with `prefix_ids` (each row has at least one more token)."""

    key: Hashable
    prefix_ids: tuple[int, ...]
    rows: tuple[int, ...]


def common_prefix_length(seqs: Sequence[Sequence[int]]) -> int:
    """Length of the longest common prefix of all sequences (0 for none)."""
    if not seqs:
        return 0
    first = seqs[0]
    n = min(len(s) for s in seqs)
    for s in seqs[1:]:
        i = 0
        limit = min(n, len(s))
        while i < limit and s[i] == first[i]:
            i += 1
        n = i
        if n == 0:
            break
    return n


def plan_prefix_groups(
    ids: Sequence[Sequence[int]],
    keys: Sequence[Hashable],
    *,
    min_prefix: int = MIN_PREFIX_TOKENS,
    min_rows: int = 2,
) -> tuple[list[PrefixGroup], list[int]]:
    """Group rows by `keys` and find each group's shared token prefix.

    Returns the groups worth caching (at least `min_rows` rows and `min_prefix` shared tokens) and
    the indices of the remaining rows, which are scored without a prefix cache.
    """
    by_key: dict[Hashable, list[int]] = {}
    for i, key in enumerate(keys):
        by_key.setdefault(key, []).append(i)
    groups: list[PrefixGroup] = []
    rest: list[int] = []
    for key, rows in by_key.items():
        if len(rows) < min_rows:
            rest.extend(rows)
            continue
        seqs = [ids[i] for i in rows]
        n = min(common_prefix_length(seqs), min(len(s) for s in seqs) - 1)
        if n < min_prefix:
            rest.extend(rows)
            continue
        groups.append(PrefixGroup(key, tuple(seqs[0][:n]), tuple(rows)))
    return groups, sorted(rest)


def plan_batches(
    lengths: Sequence[int] | Mapping[int, int],
    rows: Iterable[int],
    batch_size: int,
) -> list[tuple[int, ...]]:
    """Chunks of `rows` sorted by length, longest first (so padding is small, a projection of the
    total time from the first batches errs on the safe side, and out-of-memory shows up at once)."""
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    ordered = sorted(rows, key=lambda i: (-lengths[i], i))
    return [tuple(ordered[s : s + batch_size]) for s in range(0, len(ordered), batch_size)]


Table = list[list[int]]


def left_pad(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[Table, Table, Table]:
    """Left-padded ids, attention mask and position ids (0 at each row's first real token)."""
    width = max(len(s) for s in seqs)
    ids, mask, pos = [], [], []
    for s in seqs:
        pad = width - len(s)
        ids.append([pad_id] * pad + list(s))
        mask.append([0] * pad + [1] * len(s))
        pos.append([0] * pad + list(range(len(s))))
    return ids, mask, pos


def right_pad(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[Table, Table]:
    """Right-padded ids and attention mask."""
    width = max(len(s) for s in seqs)
    ids = [list(s) + [pad_id] * (width - len(s)) for s in seqs]
    mask = [[1] * len(s) + [0] * (width - len(s)) for s in seqs]
    return ids, mask
