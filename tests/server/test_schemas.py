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


def test_lone_surrogates_are_refused_naming_the_item_and_field() -> None:
    """`"\\ud800"` is valid JSON but not Unicode text: no tokenizer encodes it, so it is refused before batching."""
    raw = b'{"items": [{"body": "fine", "rule": "r"}, {"body": "ok \\ud800 x", "rule": "r"}]}'
    err = _raises(raw, 422, "invalid_request")
    assert err.details[0]["loc"] == "items.1.body"
    assert "U+D800 at character 3" in err.details[0]["msg"]
    err = _raises(b'{"body": "x", "rule": "r", "negative_examples": ["a", "\\udfff"]}', 422, "invalid_request")
    assert err.details[0]["loc"] == "negative_examples.1"
    # a real pair of surrogates is one character (U+1F600) and fine
    items, _ = parse_classify(b'{"body": "\\ud83d\\ude00", "rule": "r"}', LIMITS)
    assert items[0].body == "\U0001f600"


@pytest.mark.parametrize("depth", [999, 1_000, 100_000])
def test_json_nested_at_any_depth_is_a_400_not_a_recursion_error(depth: int) -> None:
    limits = Limits(max_body_bytes=1 << 20)
    for raw in (b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth, b"[" * depth):
        with pytest.raises(RequestError) as info:
            parse_classify(raw, limits)
        assert info.value.status in (400, 422), info.value.body()  # 999 deep and closed: valid JSON, not an item
        assert info.value.code in ("malformed_json", "invalid_request")
    with pytest.raises(RequestError) as info:
        parse_classify(b"[" * depth + b"]" * depth, limits)
    if depth >= 1_000:
        assert (info.value.status, info.value.code) == (400, "malformed_json")
        assert "nested too deeply" in info.value.message


def test_a_body_that_trickles_in_is_cut_off_with_408() -> None:
    async def slow() -> AsyncIterator[bytes]:
        yield b'{"body": '
        await asyncio.sleep(5)
        yield b'"x", "rule": "r"}'

    started = asyncio.run(_timed(read_limited(slow(), {}, 2000, timeout=0.2)))
    assert isinstance(started[0], RequestError) and started[0].status == 408 and started[0].code == "request_timeout"
    assert started[1] < 2.0
    assert asyncio.run(read_limited(_chunks([b"ab", b"c"]), {}, 2000, timeout=5)) == b"abc"


async def _timed(coro: object) -> tuple[object, float]:
    import time

    t0 = time.perf_counter()
    try:
        out: object = await coro  # type: ignore[misc]
    except RequestError as exc:
        out = exc
    return out, time.perf_counter() - t0
