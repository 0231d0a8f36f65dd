"""Composes, signs and queues every mail Yizhan sends, and writes its X-Yizhan-* headers.

One call sends one mail: :meth:`Mailer.send` renders a template in the reader's language
(``templates.render``), attaches files, signs it with the system key (or the signers given:
the seal and the system key after a SEAL, 第十八條) as PGP/MIME (RFC 3156) and puts it on the
outbound queue in the caller's transaction, keyed by ``source`` so that a message processed
twice queues nothing twice (docs/architecture.md, "Durability"). A sealed document goes to
many readers with one signature and one stored body: pass a :class:`Distribution`.

The X-Yizhan-* headers that mail filters and the IMAP filing read are written here only:
:meth:`Mailer.document_headers` for every mail about a document, :meth:`Mailer.bulletin_headers`
and :meth:`Mailer.news_headers` for what a module publishes to a list of readers.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any, Protocol

from sqlalchemy.orm import Session

from yizhan.daemon.context import Context
from yizhan.daemon.desk.files import attach_files
from yizhan.daemon.desk.threads import document_thread
from yizhan.daemon.metrics import SIGNING_SECONDS, timed
from yizhan.mailstore.models import Document, OutboundMessage
from yizhan.mailstore.outbox import Outgoing, new_message_id, store_body
from yizhan.routing.directory import PersonInfo
from yizhan.routing.mailpolicy import MAIL
from yizhan.signing.keyring import SignerSpec
from yizhan.signing.pgpmime import (
    HeadMaker,
    SignedPart,
    sign_message_bytes,
    signed_body,
    signed_content,
    wrap_head,
)
from yizhan.templates.render import render_mail

__all__ = ["Distribution", "DocumentFacts", "MailFile", "Mailer", "StepFacts"]

#: Who Yizhan's own mail is from, by default: 驛站 at cmd@.
SYSTEM_NAME = "驛站"


class DocumentFacts(Protocol):
    """What the headers say of a document: the engine's state or the stored row alike."""

    @property
    def id(self) -> int | None: ...
    @property
    def kind(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def number(self) -> str | None: ...
    @property
    def urgency(self) -> str | None: ...


class StepFacts(Protocol):
    """What the headers say of a step: its name and deadline."""

    @property
    def name(self) -> str: ...
    @property
    def due_at(self) -> dt.datetime | None: ...


@dataclass(frozen=True, kw_only=True)
class MailFile:
    """A file to attach to a mail, as bytes with its name and type."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, kw_only=True)
class SharedBody:
    """A signed body stored once, and the subject that goes with it."""

    signed: SignedPart
    subject: str
    body_id: int
    #: Each reader's header block around ``signed``, the shared headers folded once.
    heads: HeadMaker


@dataclass(frozen=True, kw_only=True)
class Prepared:
    """A mail rendered and signed, not yet queued (:meth:`Mailer.prepare`)."""

    address: str
    message: bytes


@dataclass
class Distribution:
    """The signed bodies of one distribution, each made once for all its readers (issue 4).

    A sealed document goes to a thousand clerks: the body of each kind of notice (its
    ``body_key``) is rendered, signed and stored once; each reader's mail is a header block
    around it. The body may not vary by reader, so the caller keys it by everything it shows.
    The readers' copies wait in ``pending`` (:meth:`Mailer.distribute`) until
    :meth:`Mailer.queue_distribution` writes them all at once, in the same transaction.
    """

    bodies: dict[Hashable, SharedBody] = field(default_factory=dict)
    pending: list[Outgoing] = field(default_factory=list)


class Mailer:
    """Sends Yizhan's mail through the outbound queue; one per daemon (see the module docstring)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.domain = ctx.config.domain

    def sender(self, local: str = "cmd", name: str = SYSTEM_NAME) -> str:
        """A From address at the OA domain: 驛站 <cmd@…> unless a module speaks for itself."""
        return formataddr((name, f"{local}@{self.domain}"))

    def send(
        self,
        session: Session,
        *,
        source: str,
        to: PersonInfo | str,
        template: str,
        variables: Mapping[str, Any] | None = None,
        sender: str | None = None,
        language: str | None = None,
        headers: Mapping[str, str] | None = None,
        document_id: int | None = None,
        attachments: Sequence[EmailMessage | MailFile] = (),
        html: str | None = None,
        signers: Sequence[SignerSpec] = (),
        material: bool = False,
        distribution: Distribution | None = None,
        body_key: Hashable = None,
        now: dt.datetime | None = None,
    ) -> OutboundMessage:
        """Render ``template`` with ``variables`` for ``to``, sign it and queue it under ``source``;
        returns the queued row (the one queued before, when ``source`` was).

        ``to`` is a person (their own mailbox, their name and language) or an address.
        ``html`` is an HTML alternative of the body (the official form of a sealed document);
        ``attachments`` are a document's files (parts of a stored mail) or files as bytes.
        ``signers`` default to the system key. ``material`` says that the mail carries
        internal material, a manual or a tool, which never leaves the organisation (第十七條;
        ``Context.queue`` refuses). With a ``distribution``, the body is shared with every
        other mail of the same ``body_key``. ``now`` is when the mail is queued: the wall
        clock unless given.
        """
        address, shown, reader_language = self._recipient(to, language)
        compose = functools.partial(
            _compose,
            template,
            reader_language,
            sender=sender or self.sender(),
            to=shown,
            headers=headers,
            variables=variables,
            html=html,
            attachments=attachments,
        )
        keyring = self.ctx.keyring
        chosen = list(signers) or [keyring.system_signer()]
        queued_at = self.ctx.clock() if now is None else now
        if distribution is None:
            mail = compose()
            with timed(SIGNING_SECONDS):
                message = sign_message_bytes(mail, keyring, chosen, cache=self.ctx.signatures)
            return self.ctx.queue(
                session,
                source=source,
                message=message,
                rcpts=[address],
                now=queued_at,
                document_id=document_id,
                material=material,
            )
        shared = distribution.bodies.get(body_key)
        if shared is None:
            shared = distribution.bodies[body_key] = self._shared_body(
                session, compose, chosen, queued_at
            )
        envelope = EmailMessage(policy=MAIL)
        envelope["From"] = sender or self.sender()
        envelope["To"] = shown
        envelope["Subject"] = shared.subject
        for name, value in (headers or {}).items():
            envelope[name] = value
        return self.ctx.queue(
            session,
            source=source,
            message=wrap_head(shared.signed, envelope),
            body_id=shared.body_id,
            rcpts=[address],
            now=queued_at,
            document_id=document_id,
            material=material,
        )

    def prepare(
        self,
        *,
        to: PersonInfo,
        template: str,
        variables: Mapping[str, Any],
        headers: Mapping[str, str],
    ) -> Prepared:
        """Render and sign a mail to ``to`` from the system, as :meth:`send` would, without a
        transaction: a job whose mail is long to make (a report of thousands of lines) makes
        it before it takes the database's writer, and queues it with :meth:`queue_prepared`."""
        address, shown, reader_language = self._recipient(to, None)
        mail = render_mail(
            template,
            reader_language,
            sender=self.sender(),
            to=shown,
            headers=dict(headers),
            **variables,
        )
        return Prepared(address=address, message=self.ctx.sign(mail))

    def queue_prepared(self, session: Session, *, source: str, prepared: Prepared) -> None:
        """Queue a mail made by :meth:`prepare` under ``source`` in the caller's transaction."""
        self.ctx.queue(session, source=source, message=prepared.message, rcpts=[prepared.address])

    def distribute(
        self,
        session: Session,
        *,
        source: str,
        to: PersonInfo | str,
        template: str,
        distribution: Distribution,
        body_key: Hashable = None,
        variables: Mapping[str, Any] | None = None,
        sender: str | None = None,
        language: str | None = None,
        headers: Mapping[str, str] | None = None,
        document_id: int | None = None,
        attachments: Sequence[EmailMessage | MailFile] = (),
        html: str | None = None,
        signers: Sequence[SignerSpec] = (),
        now: dt.datetime | None = None,
    ) -> None:
        """One reader's copy of a distribution, as :meth:`send` with ``distribution`` would
        queue it, kept in ``distribution.pending`` for :meth:`queue_distribution`.

        The body of ``body_key`` is rendered, signed and stored on its first reader; each
        copy is its own header block (From, To, Subject, ``headers``, a fresh Message-ID and
        the Date), written down now so that a resend carries the same bytes.
        """
        address, shown, reader_language = self._recipient(to, language)
        queued_at = self.ctx.clock() if now is None else now
        shared = distribution.bodies.get(body_key)
        if shared is None:
            compose = functools.partial(
                _compose,
                template,
                reader_language,
                sender=sender or self.sender(),
                to=shown,
                headers=headers,
                variables=variables,
                html=html,
                attachments=attachments,
            )
            chosen = list(signers) or [self.ctx.keyring.system_signer()]
            shared = distribution.bodies[body_key] = self._shared_body(
                session, compose, chosen, queued_at
            )
        message_id = new_message_id(self.domain)
        head = shared.heads.head(
            [
                ("Message-ID", message_id),
                ("Date", format_datetime(queued_at.astimezone(dt.UTC))),
                ("From", sender or self.sender()),
                ("To", shown),
                ("Subject", shared.subject),
                *(headers or {}).items(),
            ]
        )
        distribution.pending.append(
            Outgoing(
                source=source,
                body_id=shared.body_id,
                head=head,
                rcpt=address,
                document_id=document_id,
                message_id=message_id,
            )
        )

    def queue_distribution(
        self, session: Session, distribution: Distribution, *, now: dt.datetime | None = None
    ) -> int:
        """Queue every copy :meth:`distribute` kept, in the caller's transaction; the number
        newly queued (a source queued before adds nothing)."""
        batch, distribution.pending = distribution.pending, []
        if not batch:
            return 0
        return self.ctx.queue_many(session, batch, now=self.ctx.clock() if now is None else now)

    def forward(
        self, session: Session, *, source: str, message: bytes, mail_from: str, to: str
    ) -> OutboundMessage:
        """Queue ``message`` unchanged for ``to``, with its own envelope sender (第十一條:
        work mail to a person's OA address goes on to their mailbox as it came)."""
        return self.ctx.queue(
            session,
            source=source,
            message=message,
            mail_from=mail_from,
            rcpts=[to],
            now=self.ctx.clock(),
        )

    # -- headers ------------------------------------------------------------------------------

    def document_headers(
        self,
        doc: DocumentFacts,
        step: StepFacts | None = None,
        action: str = "none",
        *,
        state: str | None = None,
    ) -> dict[str, str]:
        """The X-Yizhan-* headers of a mail about ``doc`` (the contract of every such mail).

        ``action`` is what this reader is asked to do at ``step`` (``none``: for information);
        ``state`` overrides the document's, for a mail that says what just became of it.
        """
        headers = {
            "X-Yizhan-Doc": str(doc.id),
            "X-Yizhan-Kind": doc.kind,
            "X-Yizhan-State": state or doc.state,
            "X-Yizhan-Step": step.name if step is not None else "-",
            "X-Yizhan-Action": action,
        }
        if step is not None and step.due_at:
            headers["X-Yizhan-Deadline"] = format_datetime(
                step.due_at.astimezone(self.ctx.config.tzinfo)
            )
        if doc.number:
            headers["X-Yizhan-Number"] = doc.number
        if doc.urgency:
            headers["X-Yizhan-Urgency"] = doc.urgency
        if doc.id is not None:
            # One conversation per document in Thunderbird and Outlook (desk.threads).
            title = getattr(doc, "title", None)
            headers.update(
                document_thread(doc.id, self.domain, title if isinstance(title, str) else None)
            )
        return headers

    def bulletin_headers(self, document: Document, state: str) -> dict[str, str]:
        """The headers of a bulletin's mail to its readers (第二十三條): the document's, in
        ``state`` (published, withdrawn), and those of a list, with its expiry and importance.

        There is deliberately no List-Unsubscribe: a bulletin in scope is part of the work.
        A mail about a bulletin to its author alone is an ordinary :meth:`document_headers`.
        """
        headers = {
            **self._list_headers("公告板", "gonggao"),
            **self.document_headers(document, state=state),
        }
        expires = document.fields.get("expires")
        if expires:
            end = dt.datetime.combine(
                dt.date.fromisoformat(expires), dt.time(23, 59), tzinfo=self.ctx.config.tzinfo
            )
            headers["Expires"] = format_datetime(end)
        if document.fields.get("important"):
            headers["X-Yizhan-Importance"] = "high"
        return headers

    def news_headers(self, document: Document) -> dict[str, str]:
        """The headers of a published news item (信息宣傳): its subscribers opted in, so unlike
        a bulletin it says how to opt out (RFC 2369); ``X-Yizhan-Unit`` names the unit."""
        return {
            **self._list_headers(
                "信息宣傳",
                "xinxi",
                unsubscribe=f"<mailto:cmd@{self.domain}?subject=SET%20xinxi%20off>",
            ),
            **self.document_headers(document, state="published"),
            "X-Yizhan-Unit": document.unit_id,
        }

    def _list_headers(
        self, name: str, local: str, *, unsubscribe: str | None = None
    ) -> dict[str, str]:
        # List-Id lets mail filters sort a module's publications into a folder of their own.
        headers = {"List-Id": f"{name} <{local}.{self.domain}>", "Precedence": "list"}
        if unsubscribe is not None:
            headers["List-Unsubscribe"] = unsubscribe
        return headers

    # -- helpers ------------------------------------------------------------------------------

    def _recipient(self, to: PersonInfo | str, language: str | None) -> tuple[str, str, str]:
        """(envelope address, To header, language) for ``to``."""
        if isinstance(to, PersonInfo):
            address = to.mailbox(self.domain)
            return (
                address,
                formataddr((to.name, address)),
                language or to.language or self.ctx.config.language,
            )
        return to, to, language or self.ctx.config.language

    def _shared_body(
        self,
        session: Session,
        compose: Callable[[], EmailMessage],
        signers: Sequence[SignerSpec],
        now: dt.datetime,
    ) -> SharedBody:
        mail = compose()
        with timed(SIGNING_SECONDS):
            signed = self.ctx.signatures.sign(signed_content(mail), self.ctx.keyring, signers)
        return SharedBody(
            signed=signed,
            subject=str(mail["Subject"]),
            body_id=store_body(session, signed_body(signed), now=now),
            heads=HeadMaker(signed),
        )


def _compose(
    template: str,
    language: str,
    *,
    sender: str,
    to: str,
    headers: Mapping[str, str] | None,
    variables: Mapping[str, Any] | None,
    html: str | None,
    attachments: Sequence[EmailMessage | MailFile],
) -> EmailMessage:
    """A mail rendered from ``template`` in ``language``, with its HTML alternative and files."""
    mail = render_mail(
        template, language, sender=sender, to=to, headers=dict(headers or {}), **(variables or {})
    )
    if html is not None:
        mail.add_alternative(html, subtype="html", charset="utf-8")
    _attach(mail, attachments)
    return mail


def _attach(mail: EmailMessage, attachments: Sequence[EmailMessage | MailFile]) -> None:
    """Attach each file in order: bytes with their type, or a stored mail's part as it is."""
    for item in attachments:
        if isinstance(item, MailFile):
            maintype, _, subtype = item.content_type.partition("/")
            mail.add_attachment(
                item.data, maintype=maintype, subtype=subtype, filename=item.filename
            )
        else:
            attach_files(mail, [item])
