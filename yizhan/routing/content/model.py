"""The facts the content rules judge (:class:`Inspection`) and what they return (:class:`Verdict`).

The daemon reads a message (``daemon.extract``), has its attachments scanned
(``daemon.screening.clamd``) and fills these dataclasses; the rules only look at them, so each
rule is tested on literal facts. Nothing here holds attachment bytes: what the rules need was
extracted already.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    from yizhan.routing.content.config import ContentRules

__all__ = [
    "MAX_REPLY_LINE",
    "ArchiveFacts",
    "Attachment",
    "ContentRule",
    "Inspection",
    "RecipientFacts",
    "Verdict",
]

#: Bytes of text in one SMTP reply line, leaving room for the code and CRLF (RFC 5321 4.5.3.1.5).
MAX_REPLY_LINE: Final = 400


@dataclass(frozen=True, kw_only=True)
class ArchiveFacts:
    """What walking an archive (and the archives inside it) found, counted over the whole tree.

    Sizes are the uncompressed sizes the archive declares; the walk stops before expanding
    anything past the limits, so these may be all that is known of a bomb.
    """

    #: Members in the whole tree, directories not counted.
    members: int = 0
    #: Declared uncompressed bytes of every member, at every level.
    expanded: int = 0
    #: The largest uncompressed/compressed ratio of a member worth counting (see config).
    max_ratio: float = 0.0
    #: How deep archives nest: 1 for a zip holding no archive, 2 for a zip in a zip, …
    depth: int = 1
    #: Members that are encrypted (their content cannot be scanned or read).
    encrypted: int = 0
    #: Why the archive could not be read, in English, or None.
    damaged: str | None = None


@dataclass(frozen=True, kw_only=True)
class Attachment:
    """One attached file, or one member of an attached archive."""

    #: The file name as sent (an archive member: its name inside the archive); may be empty.
    name: str
    #: Where it is: the name for an attachment, ``outer.zip/inner.zip/name`` for a member.
    path: str
    #: 0 for a file attached to the message, n for one inside n archives.
    depth: int = 0
    #: The MIME type the message declares for it ("" for archive members).
    declared_type: str = ""
    #: What its bytes are, a key of ``routing.content.kinds.TYPES`` ("pdf", "docx", "pe" …).
    sniffed: str = "unknown"
    size: int = 0
    sha256: str = ""
    #: Extracted text, page headers first, one line per paragraph or cell; "" if none.
    text: str = ""
    #: Document properties (title, subject, keywords, custom properties …) by name.
    properties: Mapping[str, str] = field(default_factory=dict)
    #: Whether it carries macros or other active code (VBA, ODF Basic, PDF JavaScript).
    macros: bool = False
    #: Whether it is encrypted or password-protected, so its content cannot be read.
    encrypted: bool = False
    #: Why its content could not be read, in English, or None.
    unreadable: str | None = None
    #: For an archive: what walking it found.
    archive: ArchiveFacts | None = None
    #: The signature clamd found, or None (archive members are scanned with their archive).
    virus: str | None = None


@dataclass(frozen=True, kw_only=True)
class RecipientFacts:
    """One envelope recipient, as the address table classified it."""

    address: str
    #: "module", "command", "reply" or "person" (``routing.addresses``).
    kind: str
    #: The module key for kind "module" ("hanjian", "ziliao" …).
    module: str | None = None
    #: For kind "person": the mailbox Yizhan forwards the message to.
    mailbox: str | None = None


@dataclass(frozen=True, kw_only=True)
class Inspection:
    """Everything the content rules look at, for one message."""

    subject: str
    #: The text of the message body (text/plain, or text/html without its markup).
    body: str
    #: Attachments and, after each archive, its members (depth first).
    attachments: tuple[Attachment, ...] = ()
    #: How many message/rfc822 parts (forwarded or attached mails) the message holds.
    forwarded_messages: int = 0
    recipients: tuple[RecipientFacts, ...] = ()
    #: The first From address.
    sender_address: str = ""
    sender_account: str | None = None
    #: The module whose address the From field uses (mail from ziliao@), or None.
    sender_module: str | None = None
    #: The kind of the sender's unit ("it", "office" …), or None.
    sender_unit_kind: str | None = None
    #: The organisation's mail domains (the OA domain among them).
    domains: frozenset[str] = frozenset()
    #: SHA-256 digests of the files the IT department publishes as tools.
    published_tools: frozenset[str] = frozenset()
    #: Whether the message's command is TOOLS ADD (工具 發布): its attachment is being published.
    publishes_tool: bool = False
    size: int = 0

    @property
    def modules(self) -> frozenset[str]:
        """The module keys the message is addressed to."""
        return frozenset(r.module for r in self.recipients if r.module)


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """A refusal: which rule, the SMTP code and status, and why in Chinese and English."""

    rule: str
    code: int
    status: str
    reason_zh: str
    reason_en: str
    #: The articles the refusal rests on ("第十四條").
    article: str = ""
    #: Whether the IT department is told (set by the table).
    notify_it: bool = False

    @property
    def temporary(self) -> bool:
        """Whether the sender should try again later (a 4xx reply)."""
        return 400 <= self.code < 500

    def smtp_reply(self) -> str:
        """The whole SMTP reply: Chinese first, English on the last line, each line short.

        The reasons quote subjects and file names, so controls are replaced here: a CR or LF
        in a file name must not end the reply early.
        """
        texts = [
            f"{_clean(self.reason_zh)}（規則 {self.rule}）",
            f"{_clean(self.reason_en)} (rule {self.rule})",
        ]
        pieces = [piece for text in texts for piece in _split(text, MAX_REPLY_LINE)]
        lines = [f"{self.code}-{self.status} {piece}" for piece in pieces[:-1]]
        lines.append(f"{self.code} {self.status} {pieces[-1]}")
        return "\r\n".join(lines)


class ContentRule(Protocol):
    """A content rule: a name, what it checks, the articles behind it, and one check.

    ``check`` looks at the facts and the configured rules and returns a :class:`Verdict`
    when the message must be refused, else None. It does no I/O.
    """

    name: str
    description: str
    article: str

    def check(self, inspection: Inspection, rules: ContentRules) -> Verdict | None:
        """The refusal this rule makes of ``inspection``, or None."""
        ...


def _clean(text: str) -> str:
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def _split(text: str, limit: int) -> list[str]:
    # Cut at character boundaries so that no line's UTF-8 exceeds ``limit`` bytes.
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for char in text:
        width = len(char.encode("utf-8"))
        if size + width > limit and current:
            pieces.append("".join(current))
            current = []
            size = 0
        current.append(char)
        size += width
    pieces.append("".join(current))
    return [p for p in pieces if p] or [""]
