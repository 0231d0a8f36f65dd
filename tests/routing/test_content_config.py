"""Tests for routing.content.config: the [content] table of the rules file, as `yizhan check`
reads it. Every problem is listed, each naming its key."""

from __future__ import annotations

import tomllib

import pytest

from yizhan.routing.content import DEFAULT_CONTENT, ContentRulesError, content_from_dict
from yizhan.routing.content.config import content_warnings, parse_size

EXAMPLE = """
[content]
domains = ["bureau.example", "branch.bureau.example"]
tools = ["ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB"]
forbidden_words = ["某違禁詞"]

[content.markings]
levels = ["絕密", "绝密", "機密", "机密", "秘密"]
tags = ["涉密", "內部"]
head_lines = 6
patterns = ['(?i)\\bconfidential\\b']

[content.types]
allowed = ["pdf", "docx", "xlsx", "zip", "png", "jpeg", "text"]
pdf_javascript = true

[content.sizes]
document = "30M"
image = 5242880

[content.archives]
max_depth = 2
max_expanded = "500M"
max_ratio = 50

[content.scanner]
socket = "/run/clamav/clamd.ctl"
timeout = 20

[content.materials]
words = ["操作手冊", "接口文檔"]
"""


def test_an_empty_table_is_the_defaults() -> None:
    # No [content] table: the built-in rules apply.
    assert content_from_dict({}) == DEFAULT_CONTENT


def test_a_full_table_is_read() -> None:
    # The IT department's edits: words, patterns, types, sizes, limits, scanner.
    rules = content_from_dict(tomllib.loads(EXAMPLE)["content"])
    assert rules.materials.domains == ("bureau.example", "branch.bureau.example")
    assert rules.tools == {"ab" * 32}
    assert rules.markings.tags == ("涉密", "內部") and rules.markings.head_lines == 6
    assert rules.types.allowed == {"pdf", "docx", "xlsx", "zip", "png", "jpeg", "text"}
    assert rules.types.pdf_javascript
    assert rules.sizes["document"] == 30 * 1024 * 1024 and rules.sizes["image"] == 5242880
    assert rules.sizes["archive"] == DEFAULT_CONTENT.sizes["archive"]
    assert rules.archives.max_depth == 2 and rules.archives.max_ratio == 50.0
    assert rules.scanner.socket == "/run/clamav/clamd.ctl" and rules.scanner.timeout == 20.0
    assert rules.materials.words == ("操作手冊", "接口文檔")
    assert content_warnings(rules) == []


def test_every_problem_is_listed_with_its_key() -> None:
    # One run of `yizhan check` shows them all.
    with pytest.raises(ContentRulesError) as raised:
        content_from_dict(
            {
                "colour": "red",
                "domains": ["not a domain"],
                "tools": ["1234"],
                "markings": {"levels": [], "patterns": ["(unclosed"], "head_lines": 0},
                "types": {"allowed": ["pdf", "exe"], "refuse_unreadable": "yes"},
                "sizes": {"document": "big", "furniture": 1},
                "archives": {"max_ratio": 1, "max_depth": "3"},
                "scanner": {"port": 70000},
            }
        )
    problems = "\n".join(raised.value.problems)
    for key in (
        "unknown key 'colour'",
        "content.domains",
        "content.tools",
        "content.markings.levels",
        "content.markings.patterns",
        "content.markings.head_lines",
        "unknown type 'exe'",
        "content.types.refuse_unreadable",
        "content.sizes.document",
        "unknown key 'furniture'",
        "content.archives.max_ratio",
        "content.archives.max_depth",
        "content.scanner.port",
    ):
        assert key in problems, key
    assert len(raised.value.problems) == 13


def test_warnings_for_settings_that_weaken_a_regulation() -> None:
    # Allowed, but `yizhan check` says which regulation they weaken.
    rules = content_from_dict(
        {
            "scanner": {"enabled": False},
            "types": {"allowed": ["pdf", "pe"], "refuse_encrypted": False},
        }
    )
    warnings = "\n".join(content_warnings(rules))
    assert "not virus-scanned" in warnings and "(pe)" in warnings and "第十四條" in warnings


@pytest.mark.parametrize(
    ("text", "size"),
    [(1024, 1024), ("20M", 20 << 20), ("512 KiB", 512 << 10), ("1G", 1 << 30), ("1.5M", 1572864)],
)
def test_sizes(text: object, size: int) -> None:
    # Sizes as people write them.
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["big", -1, True, "20 furlongs"])
def test_bad_sizes(text: object) -> None:
    # Anything else is a problem `yizhan check` reports.
    with pytest.raises(ValueError):
        parse_size(text)
