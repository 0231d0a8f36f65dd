"""Files the outbound queue's mail for people into their IMAP folders, as a Dovecot master user.

Used instead of Maildir delivery when Dovecot is configured (Yizhan's own, or ``[imap]
server``): each message goes by APPEND (UIDPLUS tells where) into the folder ``folders``
chooses, and the filing is recorded in the transaction that marks the delivery sent, so the
tidy pass and the repair job know every filed request. Mail for anyone not of the
organisation goes to the relay when there is one. A server that is down, drops the
connection or answers NO defers the delivery (the outbound queue retries with backoff);
before filing a message again after a failure, the folder is searched for its Message-ID, so
a message whose APPEND succeeded unseen is not filed twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import Final, Protocol

from sqlalchemy import event
from sqlalchemy.orm import Session

from yizhan.daemon.config import Config
from yizhan.daemon.imap.folders import placement
from yizhan.daemon.imap.pool import SessionPool
from yizhan.daemon.imap.responses import AppendUid
from yizhan.daemon.imap.session import ImapFailure, ImapRefused
from yizhan.daemon.metrics import IMAP_FILING_ERRORS
from yizhan.daemon.outbound import Outcome
from yizhan.mailstore.imap_filings import Filed
from yizhan.mailstore.outbox import Claimed
from yizhan.routing.directory import Directory
from yizhan.routing.dsn import NO_MAILBOX

__all__ = ["ImapFiling"]

log = logging.getLogger("yizhan.imap.filing")

#: How many people's messages are filed at once.
PARALLEL: Final = 32


class _Courier(Protocol):
    async def send(self, group: Sequence[Claimed]) -> list[Outcome]: ...

    async def close(self) -> None: ...


class ImapFiling:
    """What the outbound worker files through (``outbound.Filing``); lives as long as it."""

    def __init__(
        self, config: Config, pool: SessionPool, *, clock: Callable[[], dt.datetime]
    ) -> None:
        self.config = config
        self.pool = pool
        self.clock = clock
        #: Called once a request's filing is committed: its step may be decided already
        #: (someone answered from another copy), so the tidy pass looks again.
        self.on_request_filed: Callable[[], None] = lambda: None

    def courier(self, directory: Directory, *, others: _Courier | None) -> ImapCourier:
        """A courier for one round of the outbound queue."""
        return ImapCourier(self, directory, others)


class ImapCourier:
    """Files one round's messages; see the module docstring."""

    def __init__(self, filing: ImapFiling, directory: Directory, others: _Courier | None) -> None:
        self.filing = filing
        self.directory = directory
        self.others = others
        # Set when the server could not be reached: the rest of the round is deferred at once.
        self.down: str | None = None
        # Outcomes of messages filed ahead by prepare(), by delivery.
        self._ready: dict[int, Outcome] = {}

    async def prepare(self, claims: Sequence[Claimed]) -> set[int]:
        """File the round's mail for people up front, several people at once.

        Each person's messages are filed in order, one after the other; different people's
        go in parallel (each person has their own Dovecot session and process), so the
        server's disk waits overlap. ``send`` then hands back what was done; returns the
        deliveries filed (or refused) here.
        """
        domain = self.filing.config.domain
        by_account: dict[str, list[Claimed]] = {}
        for c in claims:
            person = self.directory.person_by_address(c.rcpt, domain)
            if person is not None:
                by_account.setdefault(person.account, []).append(c)
        lanes = asyncio.Semaphore(PARALLEL)

        async def file_all(account: str, items: list[Claimed]) -> None:
            async with lanes:
                for c in items:
                    self._ready[c.delivery_id] = await self._file(c, account)

        # Every lane runs to its end even when one fails, so that what the others filed is
        # reported; a failed lane's rest is filed again one by one by send().
        results = await asyncio.gather(
            *(file_all(a, items) for a, items in by_account.items()), return_exceptions=True
        )
        for failed in results:
            if isinstance(failed, Exception):
                log.error("filing ahead failed; filing one by one", exc_info=failed)
        return set(self._ready)

    async def send(self, group: Sequence[Claimed]) -> list[Outcome]:
        config = self.filing.config
        people: list[tuple[Claimed, str]] = []
        others: list[Claimed] = []
        for c in group:
            person = self.directory.person_by_address(c.rcpt, config.domain)
            if person is None:
                others.append(c)
            else:
                people.append((c, person.account))
        outcomes = await self._others(others) if others else []
        for c, account in people:
            ready = self._ready.pop(c.delivery_id, None)
            outcomes.append(ready if ready is not None else await self._file(c, account))
        return outcomes

    async def close(self) -> None:
        if self.others is not None:
            await self.others.close()
        await self.filing.pool.close_idle()

    async def _others(self, claims: list[Claimed]) -> list[Outcome]:
        if self.others is not None:
            return await self.others.send(claims)
        return [
            Outcome(
                claimed=c,
                result="fail",
                detail=f"550 5.1.1 no relay is configured and {c.rcpt} is not a person of "
                "this organisation",
                status=NO_MAILBOX,
            )
            for c in claims
        ]

    async def _file(self, c: Claimed, account: str) -> Outcome:
        if self.down is not None:
            return Outcome(claimed=c, result="retry", detail=self.down)
        config = self.filing.config
        message = c.data  # joined head and shared body: once, not for each use
        place = placement(message, secret=config.secret, domain=config.domain)
        # Return-Path in front, as a delivery agent writes it (and the Maildir courier does).
        newline = b"\r\n" if b"\r\n" in message[:4096] else b"\n"
        data = b"Return-Path: <" + c.mail_from.encode("utf-8") + b">" + newline + message
        try:
            appended = await self._append(c, account, place.folder, data)
        except ImapRefused as exc:
            IMAP_FILING_ERRORS.labels(kind="refused").inc()
            log.warning("%s: filing for %s refused: %s", c.message_id, account, exc)
            return Outcome(claimed=c, result="retry", detail=f"IMAP {exc}")
        except ImapFailure as exc:
            target = self.filing.pool.target
            self.down = f"IMAP {target.host}:{target.port}: {exc}"
            IMAP_FILING_ERRORS.labels(kind="unavailable").inc()
            log.warning("%s: filing for %s deferred: %s", c.message_id, account, exc)
            return Outcome(claimed=c, result="retry", detail=self.down)
        filed = Filed(
            delivery_id=c.delivery_id,
            message_pk=c.message_pk,
            message_id=c.message_id,
            account=account,
            folder=place.folder,
            uidvalidity=appended.uidvalidity,
            uid=appended.uid,
            step_id=place.step_id,
            document_id=place.document_id,
        )

        def request_filed(session: Session) -> None:
            # Once committed, the tidy pass looks again (see ImapFiling.on_request_filed);
            # once for the whole round, however many requests it filed.
            if not session.info.get("imap_request_filed"):
                session.info["imap_request_filed"] = True
                event.listen(
                    session, "after_commit", lambda _s: self.filing.on_request_filed(), once=True
                )

        log.info("%s: filed for %s in %s", c.message_id, account, place.folder)
        return Outcome(
            claimed=c,
            result="sent",
            detail=f"{account}/{place.folder}",
            filed=filed,
            on_record=request_filed if filed.step_id is not None else None,
        )

    async def _append(self, c: Claimed, account: str, folder: str, data: bytes) -> AppendUid:
        pool = self.filing.pool
        for attempt in (1, 2):
            try:
                async with pool.session(account) as session:
                    if c.attempts > 0 or c.unsure:
                        # A failed attempt, or one whose outcome was never recorded (the
                        # daemon died), may have filed it: look before filing again.
                        validity = await session.select(folder)
                        found = await session.search_message_id(c.message_id)
                        if found:
                            return AppendUid(uidvalidity=validity, uid=found[-1])
                    return await session.append(folder, data)
            except ImapRefused as exc:
                if not exc.trycreate or attempt == 2:
                    raise
                # The person deleted an OA folder: make it again, and subscribe it.
                await pool.reset(account)
        raise AssertionError("unreachable")
