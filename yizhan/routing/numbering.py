"""Writes and reads document numbers (文號) such as 遼檢辦〔2026〕62號.

A document number is a prefix, the year in hexagonal brackets 〔〕 (U+3014, U+3015) and the
sequence number of that prefix in that year, without leading zeros, followed by 號. People type
the brackets in many ways ([], 【】, (), （）, ［］, 〖〗) and sometimes pad the sequence with zeros
or write 第 and the simplified 号; :func:`parse_number` accepts all of these and
:func:`format_number` always writes the one canonical form.

Incoming documents (收文) get a receipt register number (收文號) of the same shape with the prefix
:data:`RECEIPT_PREFIX`, for example 收〔2026〕5號: a sequence of its own per year, so that the
register has no gaps and never collides with an outgoing number (no unit prefix is 收 alone).

Allocating the next sequence number is the store's job (one row per prefix and year, taken
under a lock); this module only writes and reads the text.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "LEFT",
    "RECEIPT_PREFIX",
    "RIGHT",
    "format_number",
    "format_receipt_number",
    "parse_number",
]

#: The hexagonal brackets around the year (六角括號), U+3014 and U+3015.
LEFT: Final = "\u3014"
RIGHT: Final = "\u3015"

#: The prefix of receipt register numbers (收文號) for incoming documents.
RECEIPT_PREFIX: Final = "收"

# The opening and closing brackets people type around the year, paired by position.
_OPENING: Final = "〔[【(（［〖"
_CLOSING: Final = "〕]】)）］〗"
_BRACKETS: Final = frozenset(_OPENING + _CLOSING)

_NUMBER: Final = re.compile(
    r"^\s*(?P<prefix>[^\s\d" + re.escape(_OPENING + _CLOSING) + r"]+?)\s*"
    r"(?P<open>[" + re.escape(_OPENING) + r"])\s*(?P<year>\d{4})\s*"
    r"(?P<close>[" + re.escape(_CLOSING) + r"])\s*"
    r"第?\s*(?P<seq>\d{1,9})\s*[號号]\s*$"
)


def format_number(prefix: str, year: int, seq: int) -> str:
    """The canonical number, e.g. ``format_number("遼檢辦", 2026, 62)`` is 遼檢辦〔2026〕62號.

    Raises ValueError for an empty prefix or one holding brackets, digits or spaces, a year
    that is not four digits, or a sequence number below 1.
    """
    prefix = prefix.strip()
    if not prefix or any(c in _BRACKETS or c.isspace() or c.isdigit() for c in prefix):
        raise ValueError(f"prefix {prefix!r} must be non-empty, without brackets, digits or spaces")
    if not 1000 <= year <= 9999:
        raise ValueError(f"year {year} must have four digits")
    if seq < 1:
        raise ValueError(f"sequence number {seq} must be 1 or more")
    return f"{prefix}{LEFT}{year}{RIGHT}{seq}號"


def format_receipt_number(year: int, seq: int) -> str:
    """The receipt register number (收文號) of an incoming document, e.g. 收〔2026〕5號."""
    return format_number(RECEIPT_PREFIX, year, seq)


def parse_number(text: str) -> tuple[str, int, int] | None:
    """``(prefix, year, seq)`` of a number as people write it, or None if it is not one.

    Accepts any of the bracket pairs people type (the closing bracket must match the opening
    one), leading zeros, an optional 第 and 號 or 号: 遼檢辦[2026]062号 gives
    ("遼檢辦", 2026, 62). A sequence number of 0 is not a number.
    """
    found = _NUMBER.match(text)
    if found is None:
        return None
    if _OPENING.index(found["open"]) != _CLOSING.index(found["close"]):
        return None
    seq = int(found["seq"])
    if seq < 1:
        return None
    return found["prefix"], int(found["year"]), seq
