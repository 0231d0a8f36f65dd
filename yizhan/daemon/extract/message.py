"""Reads a whole message for the content rules: its subject, body text, attachments and the mails
inside it; and which of its parts are files."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from typing import Final

from yizhan.daemon.extract.documents import MAX_TEXT
from yizhan.daemon.extract.files import read_file
from yizhan.daemon.extract.headers import plain_header_section
from yizhan.daemon.extract.text import (
    decode_header_text,
    decode_text,
    first_address,
    html_text,
    part_filename,
    part_payload,
    raw_header,
)
from yizhan.routing.content.config import ContentRules
from yizhan.routing.content.model import Attachment

__all__ = ["ReadMessage", "attached_files", "read_message"]

log = logging.getLogger("yizhan.content")

#: MIME parts (and mails inside mails) nested deeper than this are not read.
MAX_NESTING: Final = 30
#: A message of more parts than this is refused unread: parsing a thousand parts costs seconds
#: of CPU and hundreds of MB at the gateway and again in the processor (issue 17: 2,000 small
#: attachments took the daemon from 107 to 301 MB), and no document carries so many files.
#: Counted as lines that open with "--" (a boundary, or a signature's separator): cheap,
#: before parsing; a message under the limit may have up to twice as many such lines.
MAX_PARTS: Final = 200

_TOO_DEEP: Final = f"MIME parts nested more than {MAX_NESTING} deep"

# compat32 keeps headers as the raw strings they are; the default policy's header objects
# cost most of the time of reading a message, on the gateway's hot path.
_PARSER: Final = BytesParser(_class=EmailMessage, policy=policy.compat32)

# The end of the header block: the first empty line.
_HEAD_END: Final = re.compile(rb"\n\r?\n")

# Parts of signed mail that are protocol, not content.
_PROTOCOL_PARTS: Final = frozenset(
    {
        "application/pgp-signature",
        "application/pkcs7-signature",
        "application/x-pkcs7-signature",
    }
)

# What a mail carries that is not one of its files: signatures, and a key sent to register.
_NOT_FILES: Final = _PROTOCOL_PARTS | {"application/pgp-keys"}


def attached_files(msg: EmailMessage) -> list[EmailMessage]:
    """The files a mail carries: its named leaf parts, inside signed or mixed multiparts too,
    but not the signature of a signed mail nor a public key (``iter_attachments`` would give
    a PGP/MIME mail's signature and its whole signed part)."""
    return [
        part
        for part in msg.walk()
        if isinstance(part, EmailMessage)
        and not part.is_multipart()
        and _usable_filename(part)
        and part.get_content_type() not in _NOT_FILES
    ]


def _usable_filename(part: EmailMessage) -> str:
    """The part's file name; one the email package cannot decode (an RFC 2231 name in the
    charset ``unicode_escape``) or that holds control characters is replaced in the parsed
    part, so that every later ``get_filename`` reads the stand-in instead of raising (the
    stored bytes are untouched)."""
    try:
        name = part.get_filename() or ""
        if name.isprintable():
            return name
    except (ValueError, LookupError, UnicodeError):
        name = part_filename(part)
    # Not decodable, or hiding CR LF or other controls (an encoded word): such a name cannot
    # go into the header of a mail that carries the file on.
    safe = "".join(c for c in name if c.isprintable() and c not in '"\\') or "attachment"
    del part["Content-Disposition"]
    part["Content-Disposition"] = f'attachment; filename="{safe}"'
    return safe


@dataclass(frozen=True, kw_only=True)
class ReadMessage:
    """What the content rules need of a message, and the attachment bytes to scan."""

    subject: str
    body: str
    from_address: str
    #: Attachments, each followed by its archive members (depth first).
    attachments: tuple[Attachment, ...]
    #: (index into ``attachments``, bytes) of every file attached to the message itself; the
    #: scanner unpacks archives on its own.
    payloads: tuple[tuple[int, bytes], ...]
    forwarded_messages: int
    size: int


def read_message(raw: bytes, rules: ContentRules) -> ReadMessage:
    """Read a raw message; never raises for a malformed one (what cannot be read says so)."""
    reader = _MessageReader(rules)
    if raw.count(b"\n--") > 2 * MAX_PARTS:
        msg = _head_only(raw)
        reader.unreadable(msg.get_content_type(), f"more than {MAX_PARTS} MIME parts")
    else:
        try:
            msg = _parse(raw)
        except RecursionError:
            # The parser recurses once per level: parts (or mails in mails) nested hundreds
            # deep exhaust the stack before ``walk`` could count them.
            msg = _head_only(raw)
            reader.unreadable(msg.get_content_type(), _TOO_DEEP)
        else:
            reader.walk(msg, depth=0)
    plain = "\n".join(reader.plain)
    body = plain if plain.strip() else "\n".join(reader.html)
    return ReadMessage(
        subject=decode_header_text(raw_header(msg, "Subject")),
        body=body[:MAX_TEXT],
        from_address=first_address(decode_header_text(raw_header(msg, "From"))),
        attachments=tuple(reader.attachments),
        payloads=tuple(reader.payloads),
        forwarded_messages=reader.forwarded,
        size=len(raw),
    )


def _head_only(raw: bytes) -> EmailMessage:
    """The header block of a message whose body is not read: the rules refuse it, unreadable."""
    end = _HEAD_END.search(raw)
    head = _PARSER.parsebytes(raw[: end.start() + 1] if end else raw[:0])
    assert isinstance(head, EmailMessage)
    return head


def _parse(raw: bytes) -> EmailMessage:
    """The message, its body read line by line only when it has parts.

    The parser walks every line of a body; a single-part body is taken whole instead, as the
    parser would have joined it, when the header block parses cleanly on its own (read by
    ``daemon.extract.headers`` when it is plain, as most are).
    """
    plain = plain_header_section(raw)
    if plain is not None:
        fields, body_start = plain
        single = EmailMessage(policy=policy.compat32)
        for name, value in fields:
            single.set_raw(name, value)
        if single.get_content_maintype() not in ("multipart", "message"):
            single.set_payload(raw[body_start:].decode("ascii", "surrogateescape"))
            return single
    end = _HEAD_END.search(raw)
    if end is not None:
        msg = _PARSER.parsebytes(raw[: end.start() + 1])
        if (
            isinstance(msg, EmailMessage)
            and not msg.defects
            and not msg.get_payload()
            and msg.get_content_maintype() not in ("multipart", "message")
        ):
            msg.set_payload(raw[end.end() :].decode("ascii", "surrogateescape"))
            return msg
    whole = _PARSER.parsebytes(raw)
    assert isinstance(whole, EmailMessage)
    return whole


class _MessageReader:
    """Walks the MIME tree: text bodies, attachments, and mails inside the mail."""

    def __init__(self, rules: ContentRules) -> None:
        self.rules = rules
        self.plain: list[str] = []
        self.html: list[str] = []
        self.attachments: list[Attachment] = []
        self.payloads: list[tuple[int, bytes]] = []
        self.forwarded = 0

    def unreadable(self, ctype: str, why: str) -> None:
        """A part (or the whole body) that is not read, and why; the rules refuse it."""
        self.attachments.append(
            Attachment(
                name=ctype, path=ctype, declared_type=ctype, sniffed="unknown", unreadable=why
            )
        )

    def walk(self, part: Message, *, depth: int) -> None:
        ctype = part.get_content_type()
        if depth > MAX_NESTING:
            # Parts inside parts inside parts: a real client never nests this deep.
            self.unreadable(ctype, _TOO_DEEP)
            return
        if ctype in ("message/rfc822", "message/global") and part.is_multipart():
            self._message(part, depth=depth)
            return
        if ctype in _PROTOCOL_PARTS:
            # The signature of a signed message (RFC 3156, RFC 8551) is not an attachment.
            return
        if ctype == "multipart/encrypted":
            self.attachments.append(
                Attachment(
                    name="encrypted message",
                    path="encrypted message",
                    declared_type=ctype,
                    sniffed="unknown",
                    encrypted=True,
                )
            )
            return
        if ctype in ("message/partial", "message/external-body"):
            # A fragment or a pointer: what it carries cannot be checked here.
            self.attachments.append(
                Attachment(
                    name=ctype,
                    path=ctype,
                    declared_type=ctype,
                    sniffed="unknown",
                    unreadable=f"{ctype} parts cannot be checked",
                )
            )
            return
        if part.is_multipart():
            payload = part.get_payload()
            if isinstance(payload, list):
                for sub in payload:
                    if isinstance(sub, Message):
                        self.walk(sub, depth=depth + 1)
            return
        try:
            name = part_filename(part)
            disposition = part.get_content_disposition()
            charset = part.get_content_charset()
        except Exception as exc:
            # Headers broken past what the parser forgives: the part is kept, unreadable.
            log.info("a %s part has unusable headers: %r", ctype, exc)
            name, disposition, charset = "", "attachment", None
        data = part_payload(part)
        if ctype in ("text/plain", "text/html") and not name and disposition != "attachment":
            text = decode_text(data, charset)
            (self.plain if ctype == "text/plain" else self.html).append(
                text if ctype == "text/plain" else html_text(text)
            )
            return
        self._attach(name, data, ctype)

    def _message(self, part: Message, *, depth: int) -> None:
        # A forwarded or attached mail: counted, listed under its subject, and walked, so that
        # its attachments are checked like any other.
        self.forwarded += 1
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if not isinstance(inner, Message):
            return
        try:
            data = inner.as_bytes(policy=policy.compat32)
        except (UnicodeError, LookupError, ValueError):
            data = str(inner).encode("utf-8", "surrogateescape")
        subject = decode_header_text(raw_header(inner, "Subject"))
        name = f"{subject or 'message'}.eml"
        index = len(self.attachments)
        self.attachments.append(
            Attachment(
                name=name,
                path=name,
                declared_type="message/rfc822",
                sniffed="message",
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
            )
        )
        self.payloads.append((index, data))
        inner_reader = _MessageReader(self.rules)
        inner_reader.walk(inner, depth=depth + 1)
        # The forwarded mail's text is read as the text of its .eml "attachment".
        text = "\n".join(inner_reader.plain) or "\n".join(inner_reader.html)
        self.attachments[index] = dataclasses.replace(
            self.attachments[index],
            text=text[:MAX_TEXT],
            properties={"subject": subject} if subject else {},
        )
        self.forwarded += inner_reader.forwarded
        offset = len(self.attachments)
        self.attachments.extend(inner_reader.attachments)
        self.payloads.extend((offset + i, b) for i, b in inner_reader.payloads)

    def _attach(self, name: str, data: bytes, declared: str) -> None:
        index = len(self.attachments)
        self.attachments.extend(read_file(name, data, self.rules, declared_type=declared))
        self.payloads.append((index, data))
