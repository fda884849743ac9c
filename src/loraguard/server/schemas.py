"""Request validation for `POST /v1/classify`: limits, pydantic models, JSON error bodies.

Validation is done by hand rather than by FastAPI's body injection so that every failure has the
same JSON shape and the size limit is enforced while the body is read (`read_limited`), before
any parsing:

    {"error": {"code": "...", "message": "...", "details": [{"loc": "items.0.body", "msg": "..."}]}}

A classify item maps to one Jigsaw row (`loraguard.scoring.data.REQUIRED_COLUMNS`); missing
examples become empty cells, exactly as an empty CSV cell is scored by `loraguard score`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError, field_validator

from loraguard.errors import InputError, RequestError

__all__ = [
    "MAX_EXAMPLES",
    "ClassifyItem",
    "Limits",
    "error_body",
    "parse_classify",
    "read_limited",
    "to_item",
    "to_row",
]

MAX_EXAMPLES = 2
"""Examples per list: the Jigsaw prompt has two positive and two negative example slots."""


@dataclass(frozen=True)
class Limits:
    """Request size limits (all configurable from `loraguard serve`)."""

    max_body_bytes: int = 1 << 20
    """Request bodies above this are refused with 413 before they are parsed (1 MiB)."""
    max_field_chars: int = 8_000
    """Characters per text field (body, rule, subreddit, each example, key)."""
    max_items: int = 64
    """Items per batch request."""

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1 or self.max_field_chars < 1 or self.max_items < 1:
            raise InputError(f"limits must be positive: {self}")


def error_body(code: str, message: str, details: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """`{"error": {"code", "message", "details"}}`, the shape of every error the server returns."""
    return RequestError.json_body(code, message, details)


class ClassifyItem(BaseModel):
    """One post to classify against one rule (strict types: a number is not a string)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    body: StrictStr
    rule: StrictStr = Field(min_length=1)
    positive_examples: list[StrictStr] = Field(default_factory=list, max_length=MAX_EXAMPLES)
    negative_examples: list[StrictStr] = Field(default_factory=list, max_length=MAX_EXAMPLES)
    subreddit: StrictStr = ""
    key: StrictStr | None = None
    """Sticky routing key (e.g. a user or thread id): the same key goes to the same adapter."""

    @field_validator("rule")
    @classmethod
    def _rule_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


def _field_problems(item: ClassifyItem, limit: int, prefix: str) -> list[dict[str, str]]:
    """Fields over `limit` characters, and fields that are not Unicode text (a lone surrogate such as
    `"\\ud800"` is valid JSON but no tokenizer can encode it: refused here, before any batching)."""
    problems = []
    texts: list[tuple[str, str | None]] = [
        ("body", item.body),
        ("rule", item.rule),
        ("subreddit", item.subreddit),
        ("key", item.key),
    ]
    texts += [(f"positive_examples.{i}", t) for i, t in enumerate(item.positive_examples)]
    texts += [(f"negative_examples.{i}", t) for i, t in enumerate(item.negative_examples)]
    for name, text in texts:
        if text is None:
            continue
        if len(text) > limit:
            problems.append({"loc": f"{prefix}{name}", "msg": f"{len(text)} characters; at most {limit} allowed"})
            continue
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            problems.append(
                {
                    "loc": f"{prefix}{name}",
                    "msg": f"not Unicode text: a lone surrogate U+{ord(text[exc.start]):04X} at character "
                    f"{exc.start} (send UTF-8 text; a JSON \\u escape must not encode half of a surrogate pair)",
                }
            )
    return problems


def _loc(parts: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in parts) or "(body)"


def parse_classify(raw: bytes, limits: Limits) -> tuple[list[ClassifyItem], bool]:
    """Validate a classify request body; returns (items, is_batch). Raises `RequestError` (4xx)."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(400, "malformed_json", f"the request body is not valid JSON: {exc}") from None
    except RecursionError:  # the C parser stops at Python's recursion limit, whatever the depth sent
        raise RequestError(
            400,
            "malformed_json",
            "the request body is JSON nested too deeply to parse (a classify request is at most 4 levels deep)",
        ) from None
    if not isinstance(data, dict):
        raise RequestError(
            422, "invalid_request", 'expected a JSON object: one item {"body", "rule", ...} or a batch {"items": [...]}'
        )
    batch = "items" in data
    if batch:
        if set(data) != {"items"}:
            raise RequestError(
                422,
                "invalid_request",
                'a batch request holds only "items"',
                [{"loc": k, "msg": "unexpected field"} for k in sorted(set(data) - {"items"})],
            )
        raw_items = data["items"]
        if not isinstance(raw_items, list) or not raw_items:
            raise RequestError(422, "invalid_request", '"items" must be a non-empty list of items')
        if len(raw_items) > limits.max_items:
            raise RequestError(
                413, "too_many_items", f"{len(raw_items)} items in one request; at most {limits.max_items} allowed"
            )
    else:
        raw_items = [data]
    items: list[ClassifyItem] = []
    problems: list[dict[str, str]] = []
    for i, obj in enumerate(raw_items):
        prefix = f"items.{i}." if batch else ""
        try:
            item = ClassifyItem.model_validate(obj)
        except ValidationError as exc:
            problems += [{"loc": prefix + _loc(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
            continue
        problems += _field_problems(item, limits.max_field_chars, prefix)
        items.append(item)
    if problems:
        shown = "; ".join(f"{p['loc']}: {p['msg']}" for p in problems[:5])
        raise RequestError(422, "invalid_request", f"invalid request: {shown}", problems)
    return items, batch


async def read_limited(
    stream: AsyncIterator[bytes], headers: Mapping[str, str], limit: int, timeout: float | None = None
) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed `limit` bytes
    (from Content-Length before reading, else while the chunks arrive), and with 408 when it has not
    arrived whole within `timeout` seconds (a client trickling its body cannot hold a request open)."""
    declared = headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise RequestError(400, "bad_request", "Content-Length is not a number") from None
        if size > limit:
            raise RequestError(413, "payload_too_large", f"request body of {size} bytes; at most {limit} allowed")
    chunks: list[bytes] = []
    total = 0
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    it = aiter(stream)
    while True:
        try:
            if deadline is None:
                chunk = await anext(it)
            else:
                chunk = await asyncio.wait_for(anext(it), max(0.0, deadline - loop.time()))
        except StopAsyncIteration:
            break
        except TimeoutError:
            raise RequestError(
                408, "request_timeout", f"the request body did not arrive within {timeout:g} s ({total} bytes read)"
            ) from None
        total += len(chunk)
        if total > limit:
            raise RequestError(413, "payload_too_large", f"request body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def to_row(item: ClassifyItem, row_id: str) -> dict[str, str]:
    """The Jigsaw row `loraguard score` would read for this item (absent examples are empty cells)."""
    pos = [*item.positive_examples, "", ""]
    neg = [*item.negative_examples, "", ""]
    return {
        "row_id": row_id,
        "body": item.body,
        "rule": item.rule,
        "subreddit": item.subreddit,
        "positive_example_1": pos[0],
        "positive_example_2": pos[1],
        "negative_example_1": neg[0],
        "negative_example_2": neg[1],
    }


def to_item(row: Mapping[str, str]) -> dict[str, Any]:
    """The `/v1/classify` item for a Jigsaw row (what a client sends; `to_row` reads it back)."""
    return {
        "body": row["body"],
        "rule": row["rule"],
        "subreddit": row["subreddit"],
        "positive_examples": [row["positive_example_1"], row["positive_example_2"]],
        "negative_examples": [row["negative_example_1"], row["negative_example_2"]],
    }
