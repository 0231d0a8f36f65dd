"""Reads plain header sections and plain mailboxes without the email package's parsers.

The gateway reads the header section of every message twice (the senders, then the content
rules), and the email package's feed parser takes some 60 µs for the seven lines of a usual
message, its address parser as long for one ``From``. Most mail is plain: CRLF line ends, every
line a field or its folded continuation, a ``From`` of one ``Name <address>``. That is read here
with regular expressions, giving exactly what ``policy.compat32`` and ``getaddresses`` give
(tests/daemon/test_headers.py holds them side by side); anything else answers None, and the
caller uses the email package, which knows how to be lenient about odd mail.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["PLAIN_ADDRESS", "plain_header_section", "plain_mailbox"]

# Field lines ("name:" then anything but a line break, CRLF) and their continuations, then the
# empty line. Names are printable ASCII without the colon, as email.feedparser reads them.
_PLAIN_SECTION: Final = re.compile(rb"(?:[!-9;-~]+:[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*)+\r\n")
# One field of such a section, decoded as the feed parser decodes it (ASCII, surrogateescape):
# its value loses the blanks after the colon, keeps its folds, and not its last CRLF.
_FIELD: Final = re.compile(r"([!-9;-~]+):[ \t]*([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)\r\n")
_DOT_ATOM: Final = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
#: A plain address as a pattern: ASCII dot-atoms, no quoting, no literal domain.
PLAIN_ADDRESS: Final = _DOT_ATOM + r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
# "Display Name <local@domain>" or "local@domain": a name without quotes, dots or specials,
# from a non-blank to a non-blank (so that runs of blanks cannot be split two ways).
_NAME_CHAR: Final = r"[^\"(),.:;<>@\[\]\\\s]"
_PLAIN_MAILBOX: Final = re.compile(
    rf"[ \t]*(?:(?:{_NAME_CHAR}(?:[^\"(),.:;<>@\[\]\\\r\n]*{_NAME_CHAR})?[ \t]*)?"
    rf"<(?P<angle>{PLAIN_ADDRESS})>|(?P<bare>{PLAIN_ADDRESS}))[ \t]*"
)


def plain_header_section(raw: bytes) -> tuple[list[tuple[str, str]], int] | None:
    """The fields of a plain header section as ``(name, value)``, and where the body starts.

    The fields are those ``BytesHeaderParser(policy=compat32)`` would give; None when the
    section is not plain (the caller then parses it with the email package).
    """
    section = _PLAIN_SECTION.match(raw)
    if section is None:
        return None
    text = raw[: section.end() - 2].decode("ascii", "surrogateescape")
    return _FIELD.findall(text), section.end()


def plain_mailbox(value: str) -> str | None:
    """The address of a field value holding one plain mailbox, as ``getaddresses`` reads it."""
    match = _PLAIN_MAILBOX.fullmatch(value)
    if match is None:
        return None
    return match["angle"] or match["bare"]
