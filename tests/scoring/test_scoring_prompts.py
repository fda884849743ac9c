"""Prompt templates: the case study's prompts verbatim, the chat prompt's order, Jinja files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from loraguard.errors import InputError
from loraguard.scoring.batching import common_prefix_length
from loraguard.scoring.builtin_rows import builtin_rows
from loraguard.scoring.prompts import get_template

pytestmark = pytest.mark.slow

ROW = builtin_rows()[0]


@pytest.fixture(scope="module")
def tok(tiny_base: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_base)


def test_plain_is_the_case_study_v1_prompt(tok: Any) -> None:
    expected = (
        "You are a content moderator.\n"
        "Determine if the following post violates the given rule.\n\n"
        f"Rule: {ROW['rule']}\n"
        f"Post to evaluate: {ROW['body']}\n\n"
        "Does this post violate the rule?\n"
        "Answer with a probability between 0 and 1.\n\n"
        "Probability:"
    )
    assert get_template("plain").render(ROW, tok) == expected
    assert get_template("plain").add_special_tokens is True


def test_chat_v2_is_the_case_study_v2_prompt(tok: Any) -> None:
    text = get_template("chat-v2").render(ROW, tok)
    assert text.startswith(
        "<|im_start|>system\nYou are a precise AI. Respond ONLY with a decimal number "
        "between 0.0 and 1.0. NO other text.<|im_end|>\n<|im_start|>user\n"
        "Analyze if this post violates the rule.\n\n"
    )
    assert f"RULE: {ROW['rule']}\nPOST: {ROW['body']}\n\n" in text
    assert text.endswith(
        "Examples: 0.95, 0.23, 0.78, 0.02\n\nYour answer (number only):<|im_end|>\n<|im_start|>assistant\n"
    )


def test_chat_puts_shared_text_first_and_the_post_last(tok: Any) -> None:
    text = get_template("chat").render(ROW, tok)
    order = [
        text.index(s)
        for s in (
            "<|im_start|>system",
            "Answer Yes or No.",
            f"Rule: {ROW['rule']}",
            ROW["positive_example_1"],
            ROW["negative_example_2"],
            f"Comment (r/{ROW['subreddit']}):",
        )
    ]
    assert order == sorted(order)
    assert text.endswith(f"):\n{ROW['body']}<|im_end|>\n<|im_start|>assistant\n")
    assert get_template("chat").add_special_tokens is False


def test_rows_of_one_rule_share_the_system_and_rule_tokens(tok: Any) -> None:
    rows = [r for r in builtin_rows() if r["rule"] == ROW["rule"]]
    tpl = get_template("chat")
    ids = [tok(tpl.render(r, tok), add_special_tokens=False)["input_ids"] for r in rows]
    head = tpl.render(ROW, tok).split("Examples of comments that violate")[0]
    assert common_prefix_length(ids) >= len(tok(head, add_special_tokens=False)["input_ids"]) - 1


def test_chat_template_refusing_system_role_gets_it_merged(tok: Any) -> None:
    import copy

    strict = copy.deepcopy(tok)
    strict.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system role') }}"
        "{% endif %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    text = get_template("chat").render(ROW, strict)
    assert text.startswith("<|im_start|>user\nYou are a content moderator")
    assert "<|im_start|>system" not in text


def test_no_chat_template_is_a_clear_error(tok: Any) -> None:
    import copy

    bare = copy.deepcopy(tok)
    bare.chat_template = None
    with pytest.raises(InputError, match="no chat template: use --template plain"):
        get_template("chat").render(ROW, bare)


def test_jinja_file(tmp_path: Path, tok: Any) -> None:
    path = tmp_path / "p.j2"
    path.write_text("r/{{ subreddit }} | {{ rule }} | {{ body | upper }}\nAnswer:")
    tpl = get_template(str(path))
    assert tpl.render(ROW, tok) == f"r/{ROW['subreddit']} | {ROW['rule']} | {ROW['body'].upper()}\nAnswer:"


def test_jinja_unknown_variable_names_row_and_columns(tmp_path: Path, tok: Any) -> None:
    path = tmp_path / "p.j2"
    path.write_text("{{ bodyy }}")
    with pytest.raises(InputError, match=r"row_id '9000': 'bodyy' is undefined; the variables are the CSV"):
        get_template(path).render(ROW, tok)


def test_jinja_syntax_error_names_line(tmp_path: Path) -> None:
    path = tmp_path / "p.j2"
    path.write_text("ok\n{% if %}")
    with pytest.raises(InputError, match="line 2"):
        get_template(path)


def test_jinja_sandbox_blocks_attribute_tricks(tmp_path: Path, tok: Any) -> None:
    path = tmp_path / "p.j2"
    path.write_text("{{ body.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(InputError, match=r"unsafe|access"):
        get_template(path).render(ROW, tok)


def test_unknown_template() -> None:
    with pytest.raises(InputError, match="not a built-in template"):
        get_template("chatty")
