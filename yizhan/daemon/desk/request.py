"""The incoming message for one of its recipients, as every handler sees it, with its answer.

A :class:`Request` is made by the processor for each (message, recipient) pair, inside the
transaction that processes the message: the parsed mail, who sent it as far as the gateway
could tell, the directory, the clock, and the desk's parts to act with. Its ``key`` names
the pair; every mail queued for it is keyed by it, so processing it again queues nothing twice.

Every auto-reply's headers are made by :func:`answer_headers` and every answer goes where
:func:`answer_address` says (RFC 3834: Reply-To, else From, else the envelope sender; never to
a null sender). A handler that decides something about a document returns an
:class:`Outcome`, which the desk applies (``desk.decisions``).
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr

from sqlalchemy.orm import Session

from yizhan.daemon.context import Context
from yizhan.daemon.desk.mailer import Mailer, MailFile
from yizhan.daemon.desk.parts import Desk
from yizhan.daemon.desk.threads import join_threads
from yizhan.mailstore import audit
from yizhan.mailstore.models import Document, Inbound
from yizhan.routing.commands import Command, command_from_message
from yizhan.routing.directory import Directory, PersonInfo
from yizhan.routing.documents import Decision
from yizhan.routing.replies import body_text
from yizhan.signing.pgpmime import Verification

__all__ = ["Outcome", "Request", "Sender", "answer_address", "answer_headers"]


@dataclass(frozen=True, kw_only=True)
class Sender:
    """Who sent the message: the account the gateway authenticated (None if none), and the
    From address (else the envelope sender), which anyone may write."""

    account: str | None
    address: str


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What a request led to: the engine's ``decision`` on ``document``, to be applied.

    ``actor`` acts, for ``on_behalf_of`` as their delegate (第九條); ``sealed_by`` is the
    custodian's verified signature when the decision applies the seal (第十八條).
    """

    document: Document
    decision: Decision
    actor: str
    on_behalf_of: str | None = None
    sealed_by: Verification | None = None


def answer_address(msg: EmailMessage, mail_from: str) -> str | None:
    """Where an automatic answer to ``msg`` goes (RFC 3834): its Reply-To, else its From,
    else the envelope sender ``mail_from``; None for a null sender (a bounce), which is never
    answered, so that two machines cannot answer each other for ever."""
    if not mail_from:
        return None
    for header in ("Reply-To", "From"):
        values = header_values(msg, header)
        # An encoded word may hide CR LF or other controls in an address (issue 17); such an
        # address cannot be written into a header, so the next choice answers instead.
        addresses = [a for _, a in getaddresses(values) if a and _plain_address(a)]
        if addresses:
            return addresses[0]
    return mail_from


def header_values(msg: EmailMessage, name: str) -> list[str]:
    """The values of header ``name``; a value the email package cannot parse (an encoded word
    hiding CR LF in an address raises ValueError) counts as absent."""
    try:
        return [str(v) for v in msg.get_all(name, [])]
    except ValueError:
        return []


def _plain_address(address: str) -> bool:
    """Whether ``address`` is one mailbox that a header can carry: no spaces or controls."""
    return "@" in address and not any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in address)


def answer_headers(message_id: str | None, references: str | None = None) -> dict[str, str]:
    """The headers of an automatic answer to the message ``message_id`` (RFC 3834, RFC 5322):
    marked auto-replied, so that no client answers it in turn, and threaded under it."""
    headers = {"Auto-Submitted": "auto-replied"}
    if message_id:
        headers["In-Reply-To"] = message_id
        headers["References"] = " ".join(r for r in (references, message_id) if r)
    return headers


@dataclass(frozen=True, kw_only=True)
class Request:
    """One recipient's share of an incoming message (see the module docstring)."""

    desk: Desk
    session: Session
    key: str
    inbound_id: int
    message_id: str | None
    recipient: str
    mail_from: str
    path: str
    msg: EmailMessage
    sender: Sender
    directory: Directory
    now: dt.datetime

    @classmethod
    def of(
        cls,
        desk: Desk,
        session: Session,
        row: Inbound,
        index: int,
        msg: EmailMessage,
        directory: Directory,
        now: dt.datetime,
    ) -> Request:
        """The request for recipient number ``index`` of the stored message ``row``."""
        _, address = parseaddr(" ".join(header_values(msg, "From")[:1]))
        if not _plain_address(address):
            address = ""
        return cls(
            desk=desk,
            session=session,
            key=f"in:{row.id}:{index}",
            inbound_id=row.id,
            message_id=row.message_id,
            recipient=row.rcpt_tos[index],
            mail_from=row.mail_from,
            path=row.path,
            msg=msg,
            sender=Sender(account=row.sender_account, address=address or row.mail_from),
            directory=directory,
            now=now,
        )

    @property
    def ctx(self) -> Context:
        """The daemon's shared handles."""
        return self.desk.ctx

    @property
    def mailer(self) -> Mailer:
        """Where every mail the request causes is sent from."""
        return self.desk.mailer

    @property
    def account(self) -> str | None:
        """The authenticated sender's account; None when the gateway could not tell."""
        return self.sender.account

    @property
    def person(self) -> PersonInfo | None:
        """The authenticated sender in the directory, if they are in it."""
        return self.directory.people.get(self.sender.account or "")

    @property
    def subject(self) -> str:
        """The message's subject, as written."""
        # Folded, and an encoded word may hide CR LF or NUL: a subject is one line of text
        # wherever it goes (a header, a document's title in PostgreSQL).
        subject = " ".join(header_values(self.msg, "Subject")[:1]).replace("\x00", "")
        return " ".join(subject.split())

    @functools.cached_property
    def body(self) -> str:
        """The text the sender wrote (:func:`routing.replies.body_text`), read once."""
        return body_text(self.msg)

    @functools.cached_property
    def command(self) -> Command:
        """The command the message carries (the reply's first line, else the subject)."""
        return command_from_message(self.msg, self.body)

    def answer_address(self) -> str | None:
        """Where an answer to this message goes (:func:`answer_address`)."""
        return answer_address(self.msg, self.mail_from)

    def answer_headers(self) -> dict[str, str]:
        """The headers of an answer to this message (:func:`answer_headers`)."""
        message_id = self.msg.get("Message-ID")
        references = self.msg.get("References")
        return answer_headers(
            str(message_id) if message_id else None, str(references) if references else None
        )

    def reply(
        self,
        text: str,
        *,
        to: str | None = None,
        document: Document | None = None,
        attachment: MailFile | None = None,
        kind: str | None = None,
    ) -> None:
        """Answer the sender with ``text``; every command gets an answer (第十一條; nothing is
        dropped silently).

        ``to`` sends it to the person's own mailbox instead of the answer address (a file of
        the library or a tool). ``document`` adds its X-Yizhan-* headers. ``kind`` marks an
        answer that carries a file of a module (``tool``, ``ziliao``) in X-Yizhan-Kind, and
        the queue keeps it inside the organisation (第十七條).
        """
        address = to or self.answer_address()
        if not self.mail_from or address is None:
            return
        headers = self.answer_headers()
        if document is not None:
            headers = join_threads(self.mailer.document_headers(document), headers)
        carries_file = kind is not None and attachment is not None
        if carries_file:
            headers["X-Yizhan-Kind"] = str(kind)
        person = self.person
        self.mailer.send(
            self.session,
            source=f"{self.key}:reply",
            to=address,
            template="reply.txt",
            language=person.language if person else None,
            headers=headers,
            document_id=document.id if document is not None else None,
            attachments=[attachment] if attachment is not None else (),
            material=carries_file,
            variables={"subject": self.subject or "(no subject)", "text": text},
        )

    def refuse_unauthenticated(self) -> None:
        """Refuse a message whose sender the gateway could not establish (第七條): audited,
        and answered with what to do instead."""
        audit.record(
            self.session,
            at=self.ctx.clock(),
            actor=self.sender.address or "unknown",
            action="refused.unauthenticated",
            detail={"inbound": self.inbound_id},
        )
        self.reply(
            "未受理：無法確認這封郵件是您本人發出的（第七條）。"
            "請登錄您的帳號（SMTP 身份驗證）後重新發送。\n"
            "Not accepted: Yizhan could not tell that this mail came from you. Send it again "
            "with SMTP authentication as your account."
        )
