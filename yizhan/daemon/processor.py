"""Takes accepted messages to "processed": applies the decision and queues the mail it causes.

Each message is handled in one transaction (docs/architecture.md, "Durability"): the outgoing
messages are written to the outbound queue, the audit entries appended and the inbound row
marked processed together. Outbound rows are keyed by the inbound id, so a message processed
twice after a crash changes nothing the second time. Each recipient's request goes to whoever
answers its address (``desk.dispatch.RECEIVERS``); a decision it leads to is applied by the
desk (``desk.decisions``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from email.message import EmailMessage
from email.parser import BytesParser

from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from yizhan import crashpoints
from yizhan.daemon.context import Context
from yizhan.daemon.desk import Desk
from yizhan.daemon.desk.decisions import apply_outcome
from yizhan.daemon.desk.dispatch import RECEIVERS, not_delivered, not_served
from yizhan.daemon.desk.request import Request, answer_headers
from yizhan.daemon.logs import MESSAGE_ID
from yizhan.daemon.rules_file import content_rules_version
from yizhan.daemon.screening.check import check_accepted
from yizhan.daemon.screening.quarantine import quarantine_accepted
from yizhan.mailstore import audit, pending
from yizhan.mailstore.directory import load_directory
from yizhan.mailstore.models import Inbound
from yizhan.mailstore.tools import published_digests
from yizhan.routing.addresses import AddressTable, Recipient, Refusal
from yizhan.routing.directory import Directory
from yizhan.routing.duties import it_people
from yizhan.routing.mailpolicy import MAIL
from yizhan.signing.pgpmime import SigningUnavailable

log = logging.getLogger("yizhan.processor")

LEASE = dt.timedelta(minutes=5)
BATCH = 50


class ContentCheckPending(Exception):
    """The message could not be judged yet (e.g. clamd is down); it is tried again later."""


#: Failures of the machine, not of the message: the database away or locked, a race with
#: another daemon, the disk. Only these are worth trying again (after the lease runs out);
#: anything else is the message making the code fail, which fails the same way every time, so
#: the message is set aside at once and its sender and the IT department told (issue 17).
TEMPORARY_FAILURES: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    IntegrityError,
    OSError,
    # gpg made no signature: its agent went away (a crash, a load), not the message's fault.
    SigningUnavailable,
)


class Processor:
    """Processes accepted messages as they arrive and catches up on any left by a crash."""

    def __init__(
        self,
        ctx: Context,
        *,
        on_queued: Callable[[], None] = lambda: None,
        owner: str | None = None,
        in_hand: Callable[[int | None], None] = lambda _id: None,
    ) -> None:
        self.ctx = ctx
        #: Told (from the processing thread) which message is begun, and None once it is
        #: done with it: a worker tells its daemon, which sets aside a message it died on five
        #: times (daemon/workers.py).
        self.in_hand = in_hand
        #: Whose leases this processor's claims are (``pending.worker_owner`` in a worker).
        self.owner = owner or ctx.instance
        self.on_queued = on_queued
        self.desk = Desk(ctx)
        self.addresses = AddressTable(ctx.config.domain, ctx.config.addresses)
        self._wakeup = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def wake(self) -> None:
        """Say that new messages were accepted (safe to call from the event loop only)."""
        self._wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Process until ``stop`` is set; polls now and then to pick up other daemons' leftovers."""
        self._loop = asyncio.get_running_loop()
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
                    session, now=now, limit=BATCH, lease=LEASE, owner=self.owner
                )
            ]
        for inbound_id in claimed:
            MESSAGE_ID.set(None)
            self.in_hand(inbound_id)
            try:
                with self.ctx.sessions.begin() as session:
                    self.process(session, inbound_id)
                # Its mail goes now, not once the whole batch is done (a burst's first
                # answer waited for the fiftieth message).
                if self._loop is not None:
                    self._loop.call_soon_threadsafe(self.on_queued)
            except ContentCheckPending as exc:
                log.warning("inbound %s: waiting for the content check: %s", inbound_id, exc)
                with self.ctx.sessions.begin() as session:
                    pending.postpone(session, inbound_id, str(exc))
            except Exception as exc:
                log.exception("inbound %s: processing failed", inbound_id)
                self._failed(inbound_id, exc)
            # Done with it, whatever came of it: a worker that dies from here on did not die
            # on this message, nor on the ones after it in the batch, not begun yet.
            self.in_hand(None)
        MESSAGE_ID.set(None)
        return len(claimed)

    def process(self, session: Session, inbound_id: int) -> None:
        """Apply one message's decision in the caller's transaction."""
        now = self.ctx.clock()
        if not pending.mark_processed(session, inbound_id, now=now):
            return
        row = session.get(Inbound, inbound_id)
        assert row is not None
        raw = self.ctx.raw.read(row.path)
        crashpoints.poisoned(raw)
        directory = load_directory(session)
        if self._refused_since_accepted(session, row, raw, directory):
            return
        msg = BytesParser(policy=MAIL).parsebytes(raw)
        assert isinstance(msg, EmailMessage)
        # Every line logged while this message is handled names it (daemon/logs.py).
        MESSAGE_ID.set(row.message_id)
        log.info("%s: processing inbound %s", row.message_id, inbound_id)
        served: set[Recipient] = set()
        for n, rcpt in enumerate(row.rcpt_tos):
            request = Request.of(self.desk, session, row, n, msg, directory, now)
            recipient = self.addresses.classify(rcpt, directory)
            if isinstance(recipient, Recipient):
                if recipient in served:
                    # fawen@ and outgoing@, or cmd@ twice: one message is one request, and
                    # gets one answer (issue 17).
                    continue
                served.add(recipient)
            if isinstance(recipient, Refusal):
                # Refused at RCPT time normally; the directory may have changed since.
                not_delivered(request, recipient.reason)
                continue
            receive = RECEIVERS.get(recipient.module or recipient.kind, not_served)
            outcome = receive(request, recipient)
            if outcome is not None:
                apply_outcome(request, outcome)

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

    def _failed(self, inbound_id: int, exc: Exception) -> None:
        final = not isinstance(exc, TEMPORARY_FAILURES)
        self.record_failure(inbound_id, repr(exc)[:2000], final=final)

    def record_failure(self, inbound_id: int, reason: str, *, final: bool = False) -> None:
        """Record a failure; when it sets the message aside, audit it and tell its sender and
        the IT department, each in its own savepoint so that the message is set aside even if
        telling someone fails too. Also called by the daemon for a message its processing
        worker died on (daemon/workers.py)."""
        with self.ctx.sessions.begin() as session:
            now = self.ctx.clock()
            aside = pending.mark_failed(session, inbound_id, reason, now=now, final=final)
            if aside is None:
                return
            audit.record(
                session,
                at=now,
                actor=aside.sender_account or aside.mail_from or "unknown",
                action="inbound.set_aside",
                target=str(aside.id),
                detail={
                    "message_id": aside.message_id,
                    "peer": aside.peer,
                    "attempts": aside.attempts,
                    "reason": reason,
                },
            )
            for tell in (self._tell_set_aside, self._tell_it):
                try:
                    with session.begin_nested():
                        tell(session, aside, now)
                except Exception:
                    log.exception("inbound %s: could not tell of its failure", inbound_id)

    def _tell_set_aside(self, session: Session, row: Inbound, now: dt.datetime) -> None:
        """Tell the sender that their message could not be handled and is kept for the IT
        department (nothing is dropped silently); the message itself may be what fails to
        parse, so only the envelope is used."""
        if not row.mail_from:
            return
        directory = load_directory(session)
        sender = directory.people.get(row.sender_account or "")
        it = "、".join(p.name for p in it_people(directory)) or "-"
        named = row.message_id or f"#{row.id}"
        self.desk.mailer.send(
            session,
            source=f"inbound:{row.id}:set-aside",
            to=row.mail_from,
            template="reply.txt",
            language=sender.language if sender else None,
            headers=answer_headers(row.message_id),
            now=now,
            variables={
                "subject": f"inbound #{row.id}",
                "text": (
                    f"您的郵件（{named}）處理失敗，已保留待信息化處（{it}）查看，未被執行；"
                    "信息化處已收到通知。如急需辦理，請聯繫信息化處，或改寫後重發。\n"
                    f"Your message ({named}) could not be processed. It is kept for the IT "
                    "department, who have been told, and was not acted on; if it is urgent, "
                    "contact them or send it again in another form."
                ),
            },
        )

    def _tell_it(self, session: Session, row: Inbound, now: dt.datetime) -> None:
        """Tell the IT department which message was set aside, from whom and why, so that
        a person looks at it (``yizhan queue`` and the admin page list it)."""
        directory = load_directory(session)
        for person in it_people(directory):
            self.desk.mailer.send(
                session,
                source=f"inbound:{row.id}:set-aside:it:{person.account}",
                to=person,
                template="reply.txt",
                headers={"Auto-Submitted": "auto-generated"},
                now=now,
                variables={
                    "subject": f"inbound #{row.id}",
                    "text": (
                        f"收到的郵件 #{row.id} 處理失敗，已保留，未被執行。\n"
                        f"Inbound message #{row.id} could not be processed; it is kept and was "
                        "not acted on.\n\n"
                        f"Message-ID: {row.message_id or '-'}\n"
                        f"MAIL FROM: {row.mail_from or '<>'}\n"
                        f"Account: {row.sender_account or '-'}\n"
                        f"Client: {row.peer or '-'}\n"
                        f"Attempts: {row.attempts}\n"
                        f"Reason: {row.reason or '-'}\n\n"
                        "yizhan queue / 管理頁 IT 隊列 lists it."
                    ),
                },
            )
