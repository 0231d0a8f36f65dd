"""Keeps each person's 公文/待辦 equal to the steps waiting for them (README, "IMAP").

The tidy pass moves every filed request whose step waits no longer (done by the person,
their delegate, an escalation or a withdrawal) to 公文/已辦, flagged \\Seen; it runs when the
processor or the scheduler has changed something, and every minute. The repair job goes
through each person's 待辦 after an outage (Dovecot restarted, filing failed) and every hour:
a request that went missing is filed again from the outbound store, a copy filed twice is
removed, and a stale one is moved. Whatever IMAP fails at is tried again later; the
database's record of what was filed is only changed after the server did it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Final

from yizhan.daemon.context import Context
from yizhan.daemon.imap.folders import DONE, TODO
from yizhan.daemon.imap.pool import SessionPool
from yizhan.daemon.imap.responses import fetched_literals, message_id_of
from yizhan.daemon.imap.session import ImapFailure, ImapRefused, ImapSession
from yizhan.daemon.loops import call_in
from yizhan.mailstore import imap_filings
from yizhan.mailstore.imap_filings import FilingRow

__all__ = ["Tidier"]

log = logging.getLogger("yizhan.imap.tidy")

#: Requests looked at per pass.
BATCH: Final = 500
#: The lease that keeps two daemons sharing a database from tidying the same folders at once.
LEASE_NAME: Final = "imap.tidy"
LEASE: Final = dt.timedelta(minutes=2)
#: After a failure, the next try waits this long (doubling up to a minute).
FIRST_BACKOFF: Final = 1.0
MAX_BACKOFF: Final = 60.0


class Tidier:
    """Runs the tidy pass and the repair job; see the module docstring."""

    def __init__(
        self,
        ctx: Context,
        pool: SessionPool,
        *,
        period: float = 60.0,
        repair_period: float = 3600.0,
    ) -> None:
        self.ctx = ctx
        self.pool = pool
        self.period = period
        self.repair_period = repair_period
        self._wakeup = asyncio.Event()
        self._repair_due = True
        self._loop: asyncio.AbstractEventLoop | None = None

    def wake(self) -> None:
        """Tidy now: a step may have changed. Safe to call from any thread."""
        self._set_soon()

    def repair_soon(self) -> None:
        """Repair every person's 待辦 soon: the server was away (it restarted)."""
        self._repair_due = True
        self._set_soon()

    async def run(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        """Tidy and repair until ``stop`` is set; begin once ``ready`` is set, if given."""
        self._loop = asyncio.get_running_loop()
        if ready is not None:
            waiters = [asyncio.ensure_future(e.wait()) for e in (stop, ready)]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()
        backoff = FIRST_BACKOFF
        last_repair = time.monotonic()
        while not stop.is_set():
            self._wakeup.clear()
            delay = self.period
            try:
                if self._repair_due or time.monotonic() - last_repair > self.repair_period:
                    self._repair_due = False
                    await self.repair()
                    last_repair = time.monotonic()
                # A full batch means more may wait; a bounded number of passes, so that
                # rows a server keeps refusing cannot hold the loop.
                for _ in range(20):
                    if await self.tidy() < BATCH:
                        break
                backoff = FIRST_BACKOFF
            except ImapFailure as exc:
                log.warning("IMAP not available (%s); trying again in %.0f s", exc, backoff)
                # What failed may have been an outage: look at everything when it is over.
                self._repair_due = True
                delay, backoff = backoff, min(backoff * 2, MAX_BACKOFF)
            except Exception:
                log.exception("tidying the IMAP folders failed")
                delay = MAX_BACKOFF
            waiters = [asyncio.ensure_future(e.wait()) for e in (stop, self._wakeup)]
            try:
                await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()

    async def tidy(self) -> int:
        """Move the requests whose steps wait no longer; how many were looked at."""
        rows = await asyncio.to_thread(self._stale)
        by_account: dict[str, list[FilingRow]] = defaultdict(list)
        for row in rows:
            by_account[row.account].append(row)
        for account, requests in by_account.items():
            try:
                async with self.pool.session(account) as session:
                    await self._move_done(session, requests)
            except ImapRefused as exc:
                # One person's folder refused (deleted, say): the others are tidied.
                log.warning("%s: requests not moved: %s", account, exc)
                await self.pool.reset(account)
        return len(rows)

    async def repair(self) -> int:
        """Reconcile every person's 待辦 with their open steps; how many messages it fixed."""
        accounts = await asyncio.to_thread(self._accounts)
        fixed = 0
        for account in accounts:
            try:
                async with self.pool.session(account) as session:
                    fixed += await self._repair(session, account)
            except ImapRefused as exc:
                log.warning("%s: 公文/待辦 not repaired: %s", account, exc)
                await self.pool.reset(account)
        if fixed:
            log.info("repair: %d request(s) in 公文/待辦 put right", fixed)
        return fixed

    # -- one person's folders ----------------------------------------------------------------

    async def _move_done(self, session: ImapSession, rows: Sequence[FilingRow]) -> None:
        validity = await session.select(TODO)
        at: dict[int, FilingRow] = {}
        gone: list[int] = []
        for row in rows:
            uid = row.uid if row.uidvalidity == validity else None
            if uid is None:
                # The folder was renumbered (UIDVALIDITY changed): find it by its Message-ID.
                found = await session.search_message_id(row.message_id)
                uid = found[-1] if found else None
            if uid is None:
                gone.append(row.id)
            else:
                at[uid] = row
        # Where each moved request went (COPYUID); None when the server did not say.
        moved: dict[int, int] | None = {}
        target_validity = 0
        if at:
            await session.uid_flag(list(at), "(\\Seen)")
            copied = await session.uid_move(list(at), DONE)
            session.selected = None
            if copied is None:
                moved = None
            else:
                moved, target_validity = copied.uids, copied.uidvalidity
                # Not moved: the person had moved or deleted it themselves meanwhile.
                gone += [row.id for uid, row in at.items() if uid not in copied.uids]
        now = self.ctx.clock()

        def record() -> None:
            with self.ctx.sessions.begin() as db:
                for uid, row in at.items():
                    if moved is None or uid in moved:
                        imap_filings.relocate(
                            db,
                            row.id,
                            folder=DONE,
                            uidvalidity=target_validity,
                            uid=(moved or {}).get(uid, 0),
                            now=now,
                        )
                imap_filings.mark_gone(db, gone, now=now)

        await asyncio.to_thread(record)
        if at:
            log.info("%s: %d request(s) moved to 公文/已辦", session.user, len(at))

    async def _repair(self, session: ImapSession, account: str) -> int:
        rows = await asyncio.to_thread(self._filed, account)
        session.selected = None
        validity = await session.select(TODO)
        held = await self._message_ids(session) if session.exists else {}
        by_id: dict[str, list[int]] = defaultdict(list)
        for uid, message_id in sorted(held.items()):
            by_id[message_id].append(uid)
        keep: set[int] = set()
        relocations: list[tuple[int, int, int]] = []
        stale: list[FilingRow] = []
        fixed = 0
        for row in rows:
            if not row.waiting:
                stale.append(row)
                continue
            if row.uidvalidity == validity and row.uid in held:
                keep.add(row.uid)
                continue
            copies = [uid for uid in by_id.get(row.message_id, []) if uid not in keep]
            if copies:
                keep.add(copies[0])
                relocations.append((row.id, validity, copies[0]))
                continue
            data = await asyncio.to_thread(self._bytes, row.message_pk)
            if data is None:
                continue
            appended = await session.append(TODO, data)
            relocations.append((row.id, appended.uidvalidity, appended.uid))
            keep.add(appended.uid)
            fixed += 1
            log.warning("%s: request %s was missing from 公文/待辦; filed again", account, row.id)
        # A second copy of a request Yizhan filed (a filing retried after a crash) goes.
        known = {row.message_id for row in rows if row.waiting}
        copies = [uid for uid, mid in held.items() if mid in known and uid not in keep]
        if copies:
            await session.select(TODO)
            await session.uid_expunge(copies)
            fixed += len(copies)
        if relocations:
            now = self.ctx.clock()

            def record() -> None:
                with self.ctx.sessions.begin() as db:
                    for filing_id, uidvalidity, uid in relocations:
                        imap_filings.relocate(
                            db, filing_id, folder=TODO, uidvalidity=uidvalidity, uid=uid, now=now
                        )

            await asyncio.to_thread(record)
        if stale:
            await self._move_done(session, stale)
            fixed += len(stale)
        return fixed

    async def _message_ids(self, session: ImapSession) -> dict[int, str]:
        lines = await session.fetch("1:*", "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        found: dict[int, str] = {}
        for uid, header in fetched_literals(lines).items():
            message_id = message_id_of(header)
            if message_id:
                found[uid] = message_id
        return found

    # -- database ------------------------------------------------------------------------------

    def _leased(self) -> bool:
        with self.ctx.sessions.begin() as db:
            return imap_filings.take_lease(
                db, LEASE_NAME, owner=self.ctx.instance, now=self.ctx.clock(), ttl=LEASE
            )

    def _stale(self) -> list[FilingRow]:
        if not self._leased():
            return []
        with self.ctx.sessions() as db:
            return imap_filings.stale_requests(db, TODO, limit=BATCH)

    def _accounts(self) -> list[str]:
        if not self._leased():
            return []
        with self.ctx.sessions() as db:
            return imap_filings.filing_accounts(db, TODO)

    def _filed(self, account: str) -> list[FilingRow]:
        with self.ctx.sessions() as db:
            return imap_filings.filings_in(db, account, TODO)

    def _bytes(self, message_pk: int) -> bytes | None:
        with self.ctx.sessions() as db:
            return imap_filings.message_bytes(db, message_pk)

    def _set_soon(self) -> None:
        call_in(self._loop, self._wakeup.set)
