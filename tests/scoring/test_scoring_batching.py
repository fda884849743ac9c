"""Batch planning: shared prefixes on token ids, length-sorted batches, padding."""

from __future__ import annotations

import pytest

from loraguard.scoring.batching import (
    common_prefix_length,
    left_pad,
    plan_batches,
    plan_prefix_groups,
    right_pad,
)


def test_common_prefix_length() -> None:
    assert common_prefix_length([[1, 2, 3], [1, 2, 4], [1, 2, 3, 5]]) == 2
    assert common_prefix_length([[1, 2], [1, 2, 3]]) == 2
    assert common_prefix_length([[9], [1]]) == 0
    assert common_prefix_length([]) == 0


def test_prefix_groups_split_where_token_ids_diverge() -> None:
    shared = list(range(100, 120))
    ids = [
        [*shared, 1, 2, 3],
        [*shared, 1, 2, 9, 9],  # diverges after 22 tokens (a BPE merge could do this)
        shared[:10] + [7] * 15,  # same rule, diverges after 10
        list(range(50, 80)),  # another rule with one row: no group
    ]
    groups, rest = plan_prefix_groups(ids, ["a", "a", "a", "b"])
    assert len(groups) == 1
    assert groups[0].rows == (0, 1, 2) and groups[0].prefix_ids == tuple(shared[:10])
    assert rest == [3]
    for i in groups[0].rows:
        assert tuple(ids[i][:10]) == groups[0].prefix_ids


def test_every_row_keeps_a_suffix_token() -> None:
    ids = [list(range(20)), list(range(20)), list(range(25))]
    groups, _ = plan_prefix_groups(ids, ["r"] * 3)
    assert len(groups[0].prefix_ids) == 19


def test_short_prefix_is_not_worth_caching() -> None:
    groups, rest = plan_prefix_groups([[1, 2, 3, 4], [1, 2, 3, 5]], ["r", "r"])
    assert groups == [] and rest == [0, 1]


def test_plan_batches_longest_first_covering_all_rows() -> None:
    lengths = [5, 1, 9, 3, 7]
    batches = plan_batches(lengths, range(5), 2)
    assert batches == [(2, 4), (0, 3), (1,)]
    with pytest.raises(ValueError):
        plan_batches(lengths, range(5), 0)


def test_left_pad_positions_start_at_each_rows_first_token() -> None:
    ids, mask, pos = left_pad([[5, 6, 7], [8]], pad_id=0)
    assert ids == [[5, 6, 7], [0, 0, 8]]
    assert mask == [[1, 1, 1], [0, 0, 1]]
    assert pos == [[0, 1, 2], [0, 0, 0]]


def test_right_pad() -> None:
    ids, mask = right_pad([[5, 6, 7], [8]], pad_id=0)
    assert ids == [[5, 6, 7], [8, 0, 0]] and mask == [[1, 1, 1], [1, 0, 0]]
