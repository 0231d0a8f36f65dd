"""Puts text in one form before the content rules match words in it.

NFKC folds full-width letters, digits, brackets and colons into their ASCII forms (``（`` → ``(``,
``：`` → ``:``, ``１`` → ``1``), so one pattern covers both; zero-width and bidirectional
control characters are removed, since they hide words from a match but not from a reader.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterator
from typing import Final

__all__ = ["head_lines", "normalise", "quote", "size_text", "strip_reply_prefixes"]

# Zero-width characters, bidirectional embeddings and overrides, the BOM.
_INVISIBLE: Final = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
_REPLY_PREFIX: Final = re.compile(
    r"^\s*(?:(?:re|aw|sv|fwd?|fw|回復|回复|答復|答复|轉發|转发|轉寄|转寄)\s*(?:\[\d+\])?\s*:\s*)+",
    re.IGNORECASE,
)


@functools.lru_cache(maxsize=64)
def normalise(text: str) -> str:
    """``text`` in NFKC without invisible characters; line breaks are kept.

    Several rules read the same body on the gateway's hot path; the cache makes that one
    normalisation per message instead of one per rule.
    """
    if text.isascii():
        # ASCII is its own NFKC form and holds none of the invisible characters.
        return text
    return _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))


def strip_reply_prefixes(subject: str) -> str:
    """A subject without its leading "Re:", "Fwd:", "回复：" … (already normalised)."""
    return _REPLY_PREFIX.sub("", subject)


def head_lines(text: str, count: int) -> list[str]:
    """The first ``count`` non-empty lines of ``text``, stripped."""
    return list(_first(text, count))


def quote(text: str, limit: int = 60) -> str:
    """A fragment of untrusted text fit to quote in a reply: one line, at most ``limit`` chars."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _first(text: str, count: int) -> Iterator[str]:
    found = 0
    for line in text.splitlines():
        line = line.strip()
        if line:
            yield line
            found += 1
            if found >= count:
                return


def size_text(size: int) -> str:
    """A size for people: "900 B", "12 KB", "20 MB" (binary multiples, as file managers show)."""
    for unit, factor in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= factor:
            value = size / factor
            shown = f"{value:.0f}" if value >= 10 or value.is_integer() else f"{value:.1f}"
            return f"{shown} {unit}"
    return f"{size} B"
