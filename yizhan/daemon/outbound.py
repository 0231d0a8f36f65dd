"""Sends what the outbound queue holds, through the relay host or into local Maildirs.

A round claims the deliveries that are due (with a lease, so several daemons can share one
queue). Through the relay it makes one SMTP transaction per message for all its claimed
recipients and records the outcomes a few messages at a time (``RECORD_EVERY``), while it
sends the next: sent, tried again later with backoff, or given up with a delivery status
notification to the sender. Into Maildirs and
IMAP folders the whole round is delivered at once (a sealed document's thousand copies) and
recorded in one transaction once all of it is durable. A crash between delivering and
recording means the message is delivered again when the lease runs out, with the same bytes
and so the same Message-ID; into a Maildir, the second delivery finds the first and writes
nothing; IMAP filing looks for the Message-ID first (``Claimed.unsure``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import aiosmtplib
from aiosmtplib import (
    SMTPDataError,
    SMTPException,
    SMTPHeloError,
    SMTPRecipientsRefused,
    SMTPResponseException,
    SMTPSenderRefused,
)
from sqlalchemy.orm import Session

from yizhan import crashpoints
from yizhan.daemon.context import Context
from yizhan.daemon.loops import call_in
from yizhan.daemon.metrics import DELIVERY_SECONDS
from yizhan.mailstore import maildir, outbox
from yizhan.mailstore.directory import load_directory
from yizhan.mailstore.imap_filings import Filed, record_filings
from yizhan.mailstore.outbox import Claimed
from yizhan.routing.directory import Directory
from yizhan.routing.dsn import EXPIRED, NO_MAILBOX, status_of
from yizhan.routing.retry import next_attempt

log = logging.getLogger("yizhan.outbound")

#: Deliveries claimed per round. A round is claimed with one UPDATE and recorded in one
#: transaction (for the couriers that deliver a round at once): a sealed document's
#: thousand copies go in two rounds.
BATCH = 500
#: How long a round waits for more mail once woken: at most this is added to a delivery.
GATHER_SECONDS = 0.02
#: Relayed messages whose outcomes are recorded in one transaction: a transaction a message
#: took a quarter of the daemon's time under load on PostgreSQL (docs/perf.md).
RECORD_EVERY = 16
#: How long a claim keeps other workers away; far longer than a round can take.
LEASE = dt.timedelta(minutes=15)
#: The longest sleep between looks at the queue when nothing wakes the worker.
IDLE_SECONDS = 60.0
#: The shortest sleep: what is due may still be locked by another daemon's claim.
MIN_SLEEP_SECONDS = 0.05
#: The wait after a round failed unexpectedly (the database was away, say).
ERROR_PAUSE_SECONDS = 5.0
#: The limit on each exchange with the relay.
SMTP_TIMEOUT_SECONDS = 60.0

Result = Literal["sent", "retry", "fail"]


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What one attempt at one delivery came to."""

    claimed: Claimed
    result: Result
    #: The relay's reply, or what went wrong.
    detail: str = ""
    #: For ``fail``: the RFC 3463 status the sender is told.
    status: str = ""
    #: For ``sent``: where it was filed over IMAP, recorded in the transaction that marks
    #: it sent (all of a round's filings together).
    filed: Filed | None = None
    #: For ``sent``: more to do in that transaction.
    on_record: Callable[[Session], None] | None = None


class _Courier(Protocol):
    """Carries one message to its claimed recipients; one courier serves one round."""

    async def send(self, group: Sequence[Claimed]) -> list[Outcome]: ...

    async def close(self) -> None: ...


class Filing(Protocol):
    """Files people's mail into their IMAP folders (``yizhan.daemon.imap.courier``)."""

    def courier(self, directory: Directory, *, others: _Courier | None) -> _Courier:
        """A courier for one round; mail for anyone else goes to ``others`` (the relay)."""
        ...


class OutboundWorker:
    """Works through the outbound queue until told to stop; see the module docstring."""

    def __init__(
        self,
        ctx: Context,
        *,
        batch: int = BATCH,
        lease: dt.timedelta = LEASE,
        idle_seconds: float = IDLE_SECONDS,
        smtp_timeout: float = SMTP_TIMEOUT_SECONDS,
        filing: Filing | None = None,
        owner: str | None = None,
    ) -> None:
        self.ctx = ctx
        #: Whose leases this worker's claims are: the daemon's, or, in a processing worker
        #: process, that worker's (``pending.worker_owner``), released when it dies.
        self.owner = owner or ctx.instance
        #: With Dovecot configured, people's mail is filed over IMAP instead (issue 13).
        self.filing = filing
        self.batch = batch
        self.lease = lease
        self.idle_seconds = idle_seconds
        self.smtp_timeout = smtp_timeout
        self._wakeup = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def wake(self) -> None:
        """Look at the queue now: something was queued. Safe to call from any thread; before
        the courier runs, nothing (its first round looks at the queue anyway)."""
        call_in(self._loop, self._wakeup.set)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver due mail, then sleep until more is due, ``wake()`` is called or ``stop`` set."""
        self._loop = asyncio.get_running_loop()
        while not stop.is_set():
            # Cleared before the round, so a wake() during the round is not lost.
            self._wakeup.clear()
            try:
                if await self.run_once():
                    # What is queued meanwhile goes in the next round: a round a message
                    # processed (a claim, a record) took a third of the daemon's time under
                    # load, beside the gateway (docs/perf.md).
                    await _first_of(stop, timeout=GATHER_SECONDS)
                    continue
                delay = await asyncio.to_thread(self._seconds_to_next_due)
            except Exception:
                log.exception("outbound round failed; trying again shortly")
                delay = ERROR_PAUSE_SECONDS
            await _first_of(stop, self._wakeup, timeout=delay)
            if self._wakeup.is_set():
                await _first_of(stop, timeout=GATHER_SECONDS)

    async def run_until_empty(self, *, max_rounds: int = 1000) -> int:
        """Run rounds until nothing is due at the clock's now; the number of attempts made.

        For tests and catching up by hand (Mailman's ``make_testable_runner``): deliveries
        retried later stay queued until the clock reaches them.
        """
        total = 0
        for _ in range(max_rounds):
            done = await self.run_once()
            if not done:
                return total
            total += done
        raise RuntimeError(f"outbound queue still busy after {max_rounds} rounds")

    async def run_once(self) -> int:
        """One round: claim what is due, deliver it, record the outcomes (see the docstring)."""
        claims = await self.claim()
        if not claims:
            return 0
        courier = await self._courier()
        try:
            # A courier may do the round's work up front (IMAP files several people at once,
            # Maildir delivery writes every file before syncing them); what it did is durable
            # when ``send`` hands it back, and is recorded with the rest.
            prepare = getattr(courier, "prepare", None)
            prepared: set[int] = await prepare(claims) if prepare is not None else set()
            await self._deliver(courier, claims, prepared)
        finally:
            await courier.close()
        return len(claims)

    async def _deliver(
        self, courier: _Courier, claims: Sequence[Claimed], prepared: set[int]
    ) -> None:
        """Send the round message by message and record the outcomes.

        What went through the relay is recorded a chunk (``RECORD_EVERY``) at a time, each
        chunk while the next messages are sent: neither the relay nor the database waits for
        the other, and a crash sends at most a chunk again (same Message-IDs; a relay does not
        know it has them). What was prepared rides along, or goes in the round's last record.
        Whatever ends the round, what was done is recorded, not sent again later.
        """
        recording: asyncio.Task[None] | None = None
        done: list[Outcome] = []
        relayed = 0
        try:
            for group in _by_message(claims):
                done += await courier.send(group)
                relayed += sum(1 for c in group if c.delivery_id not in prepared)
                if relayed >= RECORD_EVERY:
                    if recording is not None:
                        await recording
                    recording = asyncio.create_task(self.record(done))
                    done, relayed = [], 0
        finally:
            if recording is not None:
                try:
                    await recording
                except Exception:
                    log.exception("recording a chunk of outcomes failed; it goes again later")
            await self.record(done)

    async def claim(self) -> list[Claimed]:
        """Lease the deliveries due now, in their own committed transaction."""
        return await asyncio.to_thread(self._claim)

    async def record(self, outcomes: Sequence[Outcome]) -> None:
        """Mark each delivery sent, due again later, or given up, in one transaction."""
        if outcomes:
            await asyncio.to_thread(self._record, outcomes)

    def smtp_client(self) -> aiosmtplib.SMTP:
        """A new, unconnected client for the configured relay; the one place that makes one."""
        relay = self.ctx.config.relay
        return aiosmtplib.SMTP(
            hostname=relay.host,
            port=relay.port,
            # Configured STARTTLS is required and the certificate checked. Otherwise TLS is
            # used when offered, without checking (Postfix's "may" level): better than plain
            # text, and a relay with a private certificate still gets its mail.
            start_tls=relay.starttls or None,
            validate_certs=relay.starttls,
            username=relay.username or None,
            password=relay.password or None,
            local_hostname=self.ctx.config.smtp.hostname,
            timeout=self.smtp_timeout,
        )

    def _claim(self) -> list[Claimed]:
        with self.ctx.sessions.begin() as session:
            return outbox.claim_due(
                session,
                now=self.ctx.clock(),
                limit=self.batch,
                lease=self.lease,
                owner=self.owner,
            )

    def _record(self, outcomes: Sequence[Outcome]) -> None:
        config = self.ctx.config
        expiry = dt.timedelta(days=config.relay.retry_days)
        first = dt.timedelta(seconds=config.relay.first_retry_seconds)
        with self.ctx.sessions.begin() as session:
            now = self.ctx.clock()
            sent = [o for o in outcomes if o.result == "sent"]
            marked = outbox.mark_sent_many(session, [o.claimed.delivery_id for o in sent], now)
            filed = []
            for o in sent:
                c = o.claimed
                if c.delivery_id in marked:
                    DELIVERY_SECONDS.observe(max(0.0, (now - c.created_at).total_seconds()))
                    log.info("%s: delivered to %s", c.message_id, c.rcpt)
                    if o.filed is not None:
                        filed.append(o.filed)
                    if o.on_record is not None:
                        o.on_record(session)
            if filed:
                record_filings(session, filed, now=now)
            for o in outcomes:
                c = o.claimed
                if o.result == "sent":
                    continue
                status, diagnostic = o.status, o.detail
                if o.result == "retry":
                    when = next_attempt(
                        attempts=c.attempts + 1, now=now, expires_at=c.expires_at, first=first
                    )
                    if when is not None:
                        outbox.mark_retry(session, c.delivery_id, now, o.detail, when)
                        log.info(
                            "%s: to %s deferred until %s: %s",
                            c.message_id,
                            c.rcpt,
                            when.isoformat(timespec="seconds"),
                            o.detail,
                        )
                        continue
                    status = EXPIRED
                state = outbox.mark_failed(
                    session,
                    c.delivery_id,
                    now,
                    status=status,
                    diagnostic=diagnostic,
                    domain=config.domain,
                    expires_after=expiry,
                )
                if state is not None:
                    log.warning("%s: to %s %s: %s", c.message_id, c.rcpt, state, diagnostic)

    def _seconds_to_next_due(self) -> float:
        with self.ctx.sessions.begin() as session:
            due = outbox.next_due(session)
        if due is None:
            return self.idle_seconds
        wait = (due - self.ctx.clock()).total_seconds()
        return min(max(wait, MIN_SLEEP_SECONDS), self.idle_seconds)

    async def _courier(self) -> _Courier:
        relay = _RelayCourier(self) if self.ctx.config.relay.host else None
        if self.filing is not None:
            return self.filing.courier(await asyncio.to_thread(self._directory), others=relay)
        if relay is not None:
            return relay
        directory = await asyncio.to_thread(self._directory)
        return _MaildirCourier(self.ctx.config.maildir_root, directory, self.ctx.config.domain)

    def _directory(self) -> Directory:
        with self.ctx.sessions.begin() as session:
            return load_directory(session)


class _MaildirCourier:
    """Delivers into ``<data_dir>/maildirs/<account>/`` for people of the organisation."""

    def __init__(self, root: Path, directory: Directory, domain: str) -> None:
        self.root = root
        self.directory = directory
        self.domain = domain

        # Outcomes of the round's deliveries made by prepare(), by delivery.
        self._ready: dict[int, Outcome] = {}

    async def prepare(self, claims: Sequence[Claimed]) -> set[int]:
        """Deliver the whole round at once: every file written, then synced together; the
        deliveries done (or failed) here."""
        self._ready = await asyncio.to_thread(self._write_all, claims)
        return set(self._ready)

    async def send(self, group: Sequence[Claimed]) -> list[Outcome]:
        missing = [c for c in group if c.delivery_id not in self._ready]
        if missing:
            self._ready.update(await asyncio.to_thread(self._write_all, missing))
        return [self._ready.pop(c.delivery_id) for c in group]

    async def close(self) -> None:
        pass

    def _write_all(self, claims: Sequence[Claimed]) -> dict[int, Outcome]:
        outcomes: dict[int, Outcome] = {}
        batch: list[tuple[Claimed, maildir.Letter]] = []
        for c in claims:
            person = self.directory.person_by_address(c.rcpt, self.domain)
            if person is None:
                reason = f"no relay is configured and {c.rcpt} is not a person of this organisation"
                outcomes[c.delivery_id] = Outcome(
                    claimed=c, result="fail", detail=f"550 5.1.1 {reason}", status=NO_MAILBOX
                )
                continue
            letter = maildir.Letter(
                account=person.account,
                parts=(c.head, c.body),
                unique=_maildir_key(c),
                mail_from=c.mail_from,
                # A first attempt under a lease nobody held before cannot find itself there.
                maybe_delivered=c.attempts > 0 or c.unsure,
            )
            batch.append((c, letter))
        done = maildir.deliver_many(self.root, [letter for _c, letter in batch])
        for (c, _letter), result in zip(batch, done, strict=True):
            if isinstance(result, OSError):
                detail = f"maildir: {result}"
                outcomes[c.delivery_id] = Outcome(claimed=c, result="retry", detail=detail)
            else:
                outcomes[c.delivery_id] = Outcome(claimed=c, result="sent", detail=str(result))
        return outcomes


class _RelayCourier:
    """Sends through the relay host, one connection per round, one transaction per message."""

    def __init__(self, worker: OutboundWorker) -> None:
        self.worker = worker
        self.client: aiosmtplib.SMTP | None = None
        # Set when the relay could not be reached this round: the rest of the round is deferred
        # at once instead of each message waiting for its own connection timeout.
        self.down: str | None = None

    async def send(self, group: Sequence[Claimed]) -> list[Outcome]:
        if self.down is not None:
            return _all(group, "retry", self.down)
        try:
            client = await self._connected()
        except (SMTPException, OSError, TimeoutError) as exc:
            relay = self.worker.ctx.config.relay
            self.down = f"relay {relay.host}:{relay.port} not available: {_describe(exc)}"
            return _all(group, "retry", self.down)

        first = group[0]
        rcpts = [c.rcpt for c in group]
        options = []
        if not first.data.isascii() and client.supports_extension("8bitmime"):
            options.append("BODY=8BITMIME")
        if not (first.mail_from + "".join(rcpts)).isascii() and client.supports_extension(
            "smtputf8"
        ):
            options.append("SMTPUTF8")
        try:
            errors, _reply = await client.sendmail(
                first.mail_from, rcpts, first.data, mail_options=options
            )
            crashpoints.reached("relay")
        except SMTPRecipientsRefused as exc:
            refused = {e.recipient: e for e in exc.recipients}
            return [_from_reply(c, refused[c.rcpt].code, refused[c.rcpt].message) for c in group]
        except (SMTPSenderRefused, SMTPDataError) as exc:
            # A reply to MAIL FROM or to the message itself holds for every recipient.
            return [_from_reply(c, exc.code, exc.message) for c in group]
        except SMTPResponseException as exc:
            await self._drop()
            return _all(group, "retry", f"{exc.code} {_one_line(exc.message)}")
        except ValueError as exc:
            # An address aiosmtplib cannot put on the wire (not ASCII, and the relay has no
            # SMTPUTF8): trying again will not help. The envelope may be half open: hang up.
            await self._drop()
            status = "5.6.7" if not (first.mail_from + "".join(rcpts)).isascii() else "5.1.3"
            return [
                Outcome(claimed=c, result="fail", detail=f"553 {status} {exc}", status=status)
                for c in group
            ]
        except (SMTPException, OSError, TimeoutError) as exc:
            await self._drop()
            return _all(group, "retry", f"relay connection lost: {_describe(exc)}")
        outcomes = []
        for c in group:
            if c.rcpt in errors:
                outcomes.append(_from_reply(c, errors[c.rcpt].code, errors[c.rcpt].message))
            else:
                outcomes.append(Outcome(claimed=c, result="sent"))
        return outcomes

    async def close(self) -> None:
        if self.client is not None and self.client.is_connected:
            with contextlib.suppress(SMTPException, OSError, TimeoutError):
                await self.client.quit()
        await self._drop()

    async def _connected(self) -> aiosmtplib.SMTP:
        if self.client is not None and self.client.is_connected:
            return self.client
        client = self.worker.smtp_client()
        try:
            await client.connect()
            if client.is_ehlo_or_helo_needed:
                try:
                    await client.ehlo()
                except SMTPHeloError:
                    await client.helo()
        except BaseException:
            client.close()
            raise
        self.client = client
        return client

    async def _drop(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None


def _from_reply(claimed: Claimed, code: int, message: str) -> Outcome:
    reply = f"{code} {_one_line(message)}"
    if 200 <= code < 300:
        return Outcome(claimed=claimed, result="sent", detail=reply)
    if 500 <= code < 600:
        return Outcome(
            claimed=claimed, result="fail", detail=reply, status=status_of(code, message)
        )
    # 4xx, and anything a relay should not have said, is worth another try.
    return Outcome(claimed=claimed, result="retry", detail=reply)


def _all(group: Sequence[Claimed], result: Result, detail: str) -> list[Outcome]:
    return [Outcome(claimed=c, result=result, detail=detail) for c in group]


def _by_message(claims: Sequence[Claimed]) -> list[list[Claimed]]:
    groups: dict[int, list[Claimed]] = {}
    for c in claims:
        groups.setdefault(c.message_pk, []).append(c)
    return list(groups.values())


def _maildir_key(claimed: Claimed) -> str:
    # The delivery id alone would repeat if the database were ever started afresh over an old
    # data directory; with the Message-ID's digest, only the same delivery matches.
    digest = hashlib.sha256(claimed.message_id.encode("utf-8")).hexdigest()[:16]
    return f"{claimed.delivery_id}-{digest}"


def _describe(exc: BaseException) -> str:
    return _one_line(str(exc)) or type(exc).__name__


def _one_line(text: str) -> str:
    return " ".join(text.split())


async def _first_of(*events: asyncio.Event, timeout: float) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
