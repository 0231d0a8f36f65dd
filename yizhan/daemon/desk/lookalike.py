"""What mail forwarded to a colleague may not carry: the look of Yizhan's own requests.

Mail to a person's OA address goes on unchanged (第十一條), but a sender could dress it as one
of Yizhan's requests: X-Yizhan-* headers (which mail filters and the IMAP filing read), a
Reply-To at an ``r+TOKEN@`` address, the display name 驛站. As RT strips inbound X-RT-*
headers, these are taken out of the header section; the body and every other field are left
byte for byte (issue 17).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import formataddr, getaddresses
from typing import Final

from yizhan.daemon.desk.mailer import SYSTEM_NAME
from yizhan.daemon.extract.text import decode_header_text

__all__ = ["Cleaned", "strip_lookalike"]

_HEAD_END: Final = re.compile(rb"\r?\n\r?\n")
# One field: its first line and the folded lines after it.
_FIELD: Final = re.compile(rb"[^ \t\r\n][^\r\n]*(?:\r?\n[ \t][^\r\n]*)*(?:\r?\n)?")
#: Display names only Yizhan itself uses (simplified, traditional, pinyin, English).
_SYSTEM_NAMES: Final = frozenset({SYSTEM_NAME, "驿站", "yizhan"})


@dataclass(frozen=True)
class Cleaned:
    """The message as it goes on, and what was taken out of it (for the audit trail)."""

    message: bytes
    removed: tuple[str, ...]


def strip_lookalike(raw: bytes, *, domain: str, sender_name: str) -> Cleaned:
    """``raw`` without X-Yizhan-* fields, without a Reply-To at an ``r+`` address of
    ``domain``, and with a From whose display name is Yizhan's shown as ``sender_name``."""
    end = _HEAD_END.search(raw)
    head, body = (raw[: end.start()], raw[end.start() :]) if end else (raw, b"")
    kept: list[bytes] = []
    removed: list[str] = []
    for found in _FIELD.finditer(head):
        field = found.group()
        name = field.split(b":", 1)[0].strip().decode("ascii", "replace").lower()
        value = field.split(b":", 1)[1] if b":" in field else b""
        text = decode_header_text(value.decode("utf-8", "surrogateescape").strip())
        if name.startswith("x-yizhan-"):
            removed.append(name)
            continue
        if name == "reply-to" and _token_address(text, domain):
            removed.append(name)
            continue
        if name == "from":
            mailboxes = getaddresses([text])
            if any(n.strip().casefold() in _SYSTEM_NAMES for n, _ in mailboxes):
                newline = b"\r\n" if field.endswith(b"\r\n") else b"\n"
                shown = ", ".join(formataddr((sender_name, a)) for _, a in mailboxes if a)
                field = b"From: " + _header_bytes(shown) + newline
                removed.append("from display name")
        kept.append(field)
    if not removed:
        return Cleaned(raw, ())
    return Cleaned(b"".join(kept).rstrip(b"\r\n") + body, tuple(removed))


def _token_address(value: str, domain: str) -> bool:
    for _name, address in getaddresses([value]):
        local, _, host = address.rpartition("@")
        if host.casefold() == domain.casefold() and local.casefold().startswith("r+"):
            return True
    return False


def _header_bytes(text: str) -> bytes:
    # formataddr encodes a non-ASCII display name as an RFC 2047 word; an address may be UTF-8
    # (SMTPUTF8), as it came.
    return text.encode("utf-8", "surrogateescape")
