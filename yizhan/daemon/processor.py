"""Takes accepted messages to "processed": applies the decision and queues the mail it causes.

Each message is handled in one transaction (DESIGN.md, Durability): the outgoing messages are
written to the outbound queue, the audit entries appended and the inbound row marked processed
together. Outbound rows are keyed by the inbound id, so a message processed twice after a crash
changes nothing the second time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses

from sqlalchemy.orm import Session

from yizhan.daemon.context import Context
from yizhan.daemon.desk import DOCUMENT_MODULES, Desk, Incoming
from yizhan.daemon.rules_file import content_rules_version
from yizhan.daemon.screening.check import check_accepted
from yizhan.daemon.screening.notices import it_people
from yizhan.daemon.screening.quarantine import quarantine_accepted
from yizhan.mailstore import audit, pending
from yizhan.mailstore.directory import load_directory
from yizhan.mailstore.models import Inbound
from yizhan.mailstore.tools import published_digests
from yizhan.routing.addresses import AddressTable, Recipient
from yizhan.routing.directory import Directory
from yizhan.templates.render import render_mail

log = logging.getLogger("yizhan.processor")

LEASE = dt.timedelta(minutes=5)
BATCH = 50


class ContentCheckPending(Exception):
    """The message could not be judged yet (e.g. clamd is down); it is tried again later."""


class Processor:
    """Processes accepted messages as they arrive and catches up on any left by a crash."""

    def __init__(self, ctx: Context, *, on_queued: Callable[[], None] = lambda: None) -> None:
        self.ctx = ctx
        self.on_queued = on_queued
        self.desk = Desk(ctx)
        self.addresses = AddressTable(ctx.config.domain, ctx.config.addresses)
        self._wakeup = asyncio.Event()

    def wake(self) -> None:
        """Say that new messages were accepted (safe to call from the event loop only)."""
        self._wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Process until ``stop`` is set; polls now and then to pick up other daemons' leftovers."""
        while not stop.is_set():
            self._wakeup.clear()
            try:
                done = await asyncio.to_thread(self.process_batch)
            except Exception:
                log.exception("processing batch failed")
                done = 0
            if done:
                self.on_queued()
                continue
            waiter = asyncio.create_task(self._wakeup.wait())
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait({waiter, stopper}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()

    async def run_until_empty(self, *, max_rounds: int = 100) -> int:
        """Process until nothing is left (for tests and `jobs run`); returns how many."""
        total = 0
        for _ in range(max_rounds):
            done = await asyncio.to_thread(self.process_batch)
            if not done:
                break
            total += done
        return total

    def process_batch(self) -> int:
        """Claim a batch and process each message in its own transaction."""
        now = self.ctx.clock()
        with self.ctx.sessions.begin() as session:
            claimed = [
                row.id
                for row in pending.claim_accepted(
                    session, now=now, limit=BATCH, lease=LEASE, owner=self.ctx.instance
                )
            ]
        for inbound_id in claimed:
            try:
                with self.ctx.sessions.begin() as session:
                    self.process(session, inbound_id)
            except ContentCheckPending as exc:
                log.warning("inbound %s: waiting for the content check: %s", inbound_id, exc)
                with self.ctx.sessions.begin() as session:
                    pending.postpone(session, inbound_id, str(exc))
            except Exception as exc:
                log.exception("inbound %s: processing failed", inbound_id)
                with self.ctx.sessions.begin() as session:
                    now = self.ctx.clock()
                    aside = pending.mark_failed(session, inbound_id, repr(exc), now=now)
                    if aside is not None:
                        try:
                            # Its own savepoint: the message is set aside even if telling
                            # the sender fails too.
                            with session.begin_nested():
                                self._tell_set_aside(session, aside, now)
                        except Exception:
                            log.exception("inbound %s: could not tell its sender", inbound_id)
        return len(claimed)

    def process(self, session: Session, inbound_id: int) -> None:
        """Apply one message's decision in the caller's transaction."""
        now = self.ctx.clock()
        if not pending.mark_processed(session, inbound_id, now=now):
            return
        row = session.get(Inbound, inbound_id)
        assert row is not None
        raw = self.ctx.raw.read(row.path)
        directory = load_directory(session)
        if self._refused_since_accepted(session, row, raw, directory):
            return
        msg = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(msg, EmailMessage)
        log.info("%s: processing inbound %s", row.message_id, inbound_id)
        for n, rcpt in enumerate(row.rcpt_tos):
            recipient = self.addresses.classify(rcpt, directory)
            incoming = Incoming.of(row, n)
            if not isinstance(recipient, Recipient):
                # Refused at RCPT time normally; the directory may have changed since.
                self._answer(
                    session, row, msg, rcpt, directory, incoming.key, now, refusal=recipient.reason
                )
            elif recipient.kind == "person":
                self._deliver_to_person(session, row, recipient, directory, incoming.key, now)
            elif recipient.kind == "reply":
                self.desk.handle_reply(session, incoming, msg, recipient.token, directory)
            elif recipient.kind == "command":
                self.desk.handle_command(session, incoming, msg, directory)
            elif recipient.module in DOCUMENT_MODULES:
                self.desk.open_document(session, incoming, msg, recipient.module, directory)
            elif recipient.module == "ziliao":
                self.desk.library.handle(session, incoming, msg, directory)
            else:
                self._answer(session, row, msg, rcpt, directory, incoming.key, now)

    def _refused_since_accepted(
        self, session: Session, row: Inbound, raw: bytes, directory: Directory
    ) -> bool:
        """Judge the message again if the content rules changed since the gateway did (issue 7).

        A message the newer rules refuse is quarantined with the reason, its sender answered
        and the IT department told; nothing is lost. A temporary verdict (the scanner is
        down) raises, so the message is tried again later and never passes unscanned.
        """
        if row.content_rules == content_rules_version(self.ctx.config.rules_file):
            return False
        verdict = check_accepted(
            self.ctx,
            raw,
            rcpt_tos=row.rcpt_tos,
            sender_account=row.sender_account,
            mail_from=row.mail_from,
            directory=directory,
            # Read in this transaction: on SQLite another one would wait for this one's lock.
            published_tools=published_digests(session),
        )
        if verdict is None:
            return False
        if verdict.temporary:
            raise ContentCheckPending(f"{verdict.rule}: {verdict.reason_en}")
        entry = quarantine_accepted(
            self.ctx,
            session,
            raw,
            verdict,
            inbound_id=row.id,
            mail_from=row.mail_from,
            rcpt_tos=row.rcpt_tos,
            sender_account=row.sender_account,
            auth_method=row.auth_method,
        )
        pending.mark_quarantined(session, row, f"{verdict.rule}: {verdict.reason_en}")
        log.info("%s: inbound %s quarantined as %s", row.message_id, row.id, entry.id)
        return True

    def _tell_set_aside(self, session: Session, row: Inbound, now: dt.datetime) -> None:
        """Tell the sender that their message could not be handled and is kept for the IT
        department (nothing is dropped silently); the message itself may be what fails to
        parse, so only the envelope is used."""
        if not row.mail_from:
            return
        directory = load_directory(session)
        sender = directory.people.get(row.sender_account or "")
        it = "、".join(p.name for p in it_people(directory)) or "-"
        answer = render_mail(
            "reply.txt",
            sender.language if sender else None,
            sender=f"cmd@{self.ctx.config.domain}",
            to=row.mail_from,
            headers={"Auto-Submitted": "auto-replied"}
            | ({"In-Reply-To": row.message_id} if row.message_id else {}),
            subject=f"inbound #{row.id}",
            text=(
                f"您的郵件（{row.message_id or '#' + str(row.id)}）多次處理失敗，已保留待信息化處"
                f"（{it}）查看，未被執行；如急需辦理，請聯繫信息化處或稍後重發。\n"
                f"Your message ({row.message_id or '#' + str(row.id)}) could not be processed "
                "after several attempts. It is kept for the IT department and was not acted on; "
                "if it is urgent, contact them or send it again later."
            ),
        )
        self.ctx.queue(
            session,
            source=f"inbound:{row.id}:set-aside",
            message=self.ctx.sign(answer),
            rcpts=[row.mail_from],
            now=now,
        )

    def _deliver_to_person(
        self,
        session: Session,
        row: Inbound,
        recipient: Recipient,
        directory: Directory,
        source: str,
        now: dt.datetime,
    ) -> None:
        # Mail to account@<OA domain> goes on to the person's own mailbox, unchanged.
        assert recipient.account is not None
        person = directory.people[recipient.account]
        target = person.mailbox(self.ctx.config.domain)
        self.ctx.queue(
            session,
            source=source,
            message=self.ctx.raw.read(row.path),
            mail_from=row.mail_from,
            rcpts=[target],
            now=now,
        )
        audit.record(
            session,
            at=now,
            actor=row.sender_account or row.mail_from or "unknown",
            action="mail.forward",
            target=person.account,
            detail={"inbound": row.id, "message_id": row.message_id},
        )

    def _answer(
        self,
        session: Session,
        row: Inbound,
        msg: EmailMessage,
        rcpt: str,
        directory: Directory,
        source: str,
        now: dt.datetime,
        *,
        refusal: str | None = None,
    ) -> None:
        # Every message gets an answer; nothing is dropped silently (DESIGN.md, Commands).
        reply_to = _reply_address(row, msg)
        if not reply_to:
            return
        sender = directory.people.get(row.sender_account or "")
        language = sender.language if sender else None
        if refusal is not None:
            template = "reply.txt"
        elif row.sender_account:
            template = "received.txt"
        else:
            template = "not_authenticated.txt"
        subject = str(msg.get("Subject", "")) or "(no subject)"
        answer = render_mail(
            template,
            language,
            sender=f"cmd@{self.ctx.config.domain}",
            to=reply_to,
            headers=_reply_headers(msg),
            subject=subject,
            address=rcpt,
            inbound_id=row.id,
            text=f"未送達 {rcpt}：{refusal}\nNot delivered to {rcpt}: {refusal}",
        )
        self.ctx.queue(
            session,
            source=source,
            message=self.ctx.sign(answer),
            rcpts=[reply_to],
            now=now,
        )


def _reply_address(row: Inbound, msg: EmailMessage) -> str | None:
    """Where an answer goes: Reply-To, else From, else the envelope sender; never to <>."""
    if not row.mail_from:
        return None
    for header in ("Reply-To", "From"):
        addresses = [a for _, a in getaddresses([str(v) for v in msg.get_all(header, [])]) if a]
        if addresses:
            return addresses[0]
    return row.mail_from


def _reply_headers(msg: EmailMessage) -> dict[str, str]:
    headers = {"Auto-Submitted": "auto-replied"}
    if msg.get("Message-ID"):
        headers["In-Reply-To"] = str(msg["Message-ID"])
        headers["References"] = " ".join(
            str(v) for v in (msg.get("References"), msg["Message-ID"]) if v
        )
    return headers
