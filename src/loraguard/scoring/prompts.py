"""Prompt templates: `chat` (default), the case study's `plain` and `chat-v2`, or a user Jinja file.

- `chat`: system + user message through the tokenizer's chat template, asking for Yes or No. What
  rows share comes first (system text, the instruction, the rule), then the row's examples, then
  the subreddit and the comment last, so rows with the same rule share a long token prefix that the
  engine computes once (the Jigsaw examples differ from row to row, so they are not shared). If
  the chat template refuses a system role (Gemma), the system text goes at the top of the user
  message instead.
- `plain`: the case study's `create_prompt` (v1), verbatim: plain text ending in `Probability:`.
- `chat-v2`: the case study's `create_prompt_v2`, verbatim: a chat prompt asking for a number. With
  `method="generate"` this reproduces the case study's loop.
- a path to a Jinja file (`*.j2`, `*.jinja` or any existing file): rendered in a sandbox with the
  row's columns as variables (an unknown variable is an error). The text is tokenized as it is.

Chat prompts are tokenized without adding special tokens (the chat template writes them); plain
and Jinja prompts with them (e.g. Llama's BOS). `PromptTemplate.add_special_tokens` says which.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loraguard.errors import InputError, MissingExtraError

__all__ = ["BUILTIN_TEMPLATES", "PromptTemplate", "get_template"]

Messages = list[dict[str, str]]

CHAT_SYSTEM = (
    "You are a content moderator for an online community. You are given a community rule, examples of "
    "comments that violate it and comments that do not, and one comment to judge. Answer with a single "
    "word: Yes if the comment violates the rule, No if it does not."
)


def _chat_messages(row: Mapping[str, str]) -> Messages:
    user = (
        "Decide whether the comment at the end violates the rule. Answer Yes or No.\n\n"
        f"Rule: {row['rule']}\n\n"
        "Examples of comments that violate the rule:\n"
        f"1. {row['positive_example_1']}\n2. {row['positive_example_2']}\n\n"
        "Examples of comments that do not violate the rule:\n"
        f"1. {row['negative_example_1']}\n2. {row['negative_example_2']}\n\n"
        f"Comment (r/{row['subreddit']}):\n"
        f"{row['body']}"
    )
    return [{"role": "system", "content": CHAT_SYSTEM}, {"role": "user", "content": user}]


def _plain_v1(row: Mapping[str, str]) -> str:
    # The case study's create_prompt, character for character.
    return f"""You are a content moderator.
Determine if the following post violates the given rule.

Rule: {row["rule"]}
Post to evaluate: {row["body"]}

Does this post violate the rule?
Answer with a probability between 0 and 1.

Probability:"""


def _chat_v2_messages(row: Mapping[str, str]) -> Messages:
    # The case study's create_prompt_v2, character for character.
    system = "You are a precise AI. Respond ONLY with a decimal number between 0.0 and 1.0. NO other text."
    user = f"""Analyze if this post violates the rule.

RULE: {row["rule"]}
POST: {row["body"]}

Respond with ONLY a number between 0.0 and 1.0:
- 0.0 = NOT a violation
- 1.0 = IS a violation

Examples: 0.95, 0.23, 0.78, 0.02

Your answer (number only):"""
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


@dataclass(frozen=True)
class PromptTemplate:
    """Turns a row into the prompt text given to the tokenizer."""

    name: str
    build: Callable[[Mapping[str, str]], str | Messages]
    """Returns plain text, or chat messages that `render` passes through the chat template."""
    add_special_tokens: bool

    def render(self, row: Mapping[str, str], tokenizer: Any) -> str:
        """The prompt text for one row (chat messages go through `tokenizer`'s chat template)."""
        built = self.build(row)
        if isinstance(built, str):
            return built
        return apply_chat(tokenizer, built)


def apply_chat(tokenizer: Any, messages: Messages) -> str:
    """`apply_chat_template(..., add_generation_prompt=True)` as text; system merged if refused."""
    if not getattr(tokenizer, "chat_template", None):
        raise InputError("the tokenizer has no chat template: use --template plain or a Jinja file")
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except Exception as exc:  # jinja2 TemplateError raised by templates that refuse a system role
        if messages[0]["role"] != "system":
            raise InputError(f"the tokenizer's chat template failed: {exc}") from exc
        merged = [{"role": "user", "content": messages[0]["content"] + "\n\n" + messages[1]["content"]}, *messages[2:]]
        text = tokenizer.apply_chat_template(merged, tokenize=False, add_generation_prompt=True)
    if not isinstance(text, str):  # pragma: no cover - depends on the tokenizer class
        raise InputError("the tokenizer's chat template did not return text")
    return text


BUILTIN_TEMPLATES: dict[str, PromptTemplate] = {
    "chat": PromptTemplate("chat", _chat_messages, add_special_tokens=False),
    "plain": PromptTemplate("plain", _plain_v1, add_special_tokens=True),
    "chat-v2": PromptTemplate("chat-v2", _chat_v2_messages, add_special_tokens=False),
}


def get_template(spec: str | Path | PromptTemplate) -> PromptTemplate:
    """A built-in template by name (`chat`, `plain`, `chat-v2`) or a Jinja file by path."""
    if isinstance(spec, PromptTemplate):
        return spec
    if isinstance(spec, str) and spec in BUILTIN_TEMPLATES:
        return BUILTIN_TEMPLATES[spec]
    path = Path(spec)
    if not path.is_file():
        raise InputError(
            f"template {str(spec)!r}: not a built-in template ({', '.join(BUILTIN_TEMPLATES)}) and no such file",
            path=path,
        )
    return _jinja_template(path)


def _jinja_template(path: Path) -> PromptTemplate:
    try:
        from jinja2 import StrictUndefined, TemplateError, UndefinedError
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError("Jinja prompt templates", "ml") from exc
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"template {path}: cannot read it as UTF-8 text: {exc}", path=path) from exc
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)
    try:
        compiled = env.from_string(source)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        raise InputError(f"template {path}{f' line {line}' if line else ''}: {exc}", path=path) from exc

    def build(row: Mapping[str, str]) -> str:
        try:
            return compiled.render(**row)
        except UndefinedError as exc:
            raise InputError(
                f"template {path}, row_id {row.get('row_id')!r}: {exc.message}; the variables are the "
                f"CSV columns: {', '.join(row)}",
                path=path,
            ) from exc
        except TemplateError as exc:
            raise InputError(f"template {path}, row_id {row.get('row_id')!r}: {exc}", path=path) from exc

    return PromptTemplate(path.name, build, add_special_tokens=True)
