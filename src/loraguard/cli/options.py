"""Option types shared by the commands."""

from __future__ import annotations

from enum import StrEnum


class OutputFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"
