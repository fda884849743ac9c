"""Request validation: every bad request is a clean 4xx with a JSON body naming the field."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from loraguard.errors import RequestError
from loraguard.scoring.data import REQUIRED_COLUMNS
from loraguard.server.schemas import ClassifyItem, Limits, parse_classify, read_limited, to_row

LIMITS = Limits(max_body_bytes=2000, max_field_chars=50, max_items=3)
GOOD = {
    "body": "buy now",
    "rule": "No ads",
    "positive_examples": ["spam"],
    "negative_examples": ["hi", "yo"],
    "subreddit": "x",
    "key": "u1",
}


def _raises(payload: object, status: int, code: str) -> RequestError:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    with pytest.raises(RequestError) as info:
        parse_classify(raw, LIMITS)
    assert (info.value.status, info.value.code) == (status, code), info.value.body()
    return info.value


def test_single_and_batch() -> None:
    items, batch = parse_classify(json.dumps(GOOD).encode(), LIMITS)
    assert not batch and items[0].key == "u1"
    items, batch = parse_classify(json.dumps({"items": [GOOD, {"body": "", "rule": "r"}]}).encode(), LIMITS)
    assert batch and len(items) == 2 and items[1].positive_examples == []


def test_bad_requests() -> None:
    _raises(b"{not json", 400, "malformed_json")
    _raises(b"\xff\xfe", 400, "malformed_json")
    _raises([GOOD], 422, "invalid_request")
    err = _raises({"body": "x"}, 422, "invalid_request")
    assert err.details == [{"loc": "rule", "msg": "Field required"}]
    err = _raises({**GOOD, "body": 3}, 422, "invalid_request")
    assert err.details[0]["loc"] == "body" and "string" in err.details[0]["msg"]
    _raises({**GOOD, "rule": "   "}, 422, "invalid_request")
    _raises({**GOOD, "positive_examples": ["a", "b", "c"]}, 422, "invalid_request")
    _raises({**GOOD, "positive_examples": "a"}, 422, "invalid_request")
    _raises({**GOOD, "extra": 1}, 422, "invalid_request")
    err = _raises({"items": [GOOD, {**GOOD, "body": "x" * 51}]}, 422, "invalid_request")
    assert err.details == [{"loc": "items.1.body", "msg": "51 characters; at most 50 allowed"}]
    _raises({"items": [GOOD] * 4}, 413, "too_many_items")
    _raises({"items": []}, 422, "invalid_request")
    _raises({"items": [GOOD], "key": "x"}, 422, "invalid_request")


def test_to_row_is_a_full_jigsaw_row() -> None:
    row = to_row(ClassifyItem.model_validate(GOOD), "7")
    assert set(row) == set(REQUIRED_COLUMNS)
    assert (row["positive_example_1"], row["positive_example_2"], row["negative_example_2"]) == ("spam", "", "yo")


async def _chunks(parts: list[bytes]) -> AsyncIterator[bytes]:
    for p in parts:
        yield p


def test_body_limit_before_parsing() -> None:
    with pytest.raises(RequestError) as info:  # declared too large: refused before reading anything
        asyncio.run(read_limited(_chunks([]), {"content-length": "5000"}, 2000))
    assert info.value.status == 413
    with pytest.raises(RequestError) as info:  # chunked, no length: refused once the chunks pass the limit
        asyncio.run(read_limited(_chunks([b"x" * 1500, b"x" * 1500, b"never read"]), {}, 2000))
    assert info.value.status == 413
    assert asyncio.run(read_limited(_chunks([b"ab", b"c"]), {"content-length": "3"}, 2000)) == b"abc"
