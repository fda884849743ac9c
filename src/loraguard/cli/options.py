"""Option types shared by the commands."""

from __future__ import annotations

from enum import Enum


class OutputFormat(str, Enum):
    text = "text"
    json = "json"
    markdown = "markdown"
