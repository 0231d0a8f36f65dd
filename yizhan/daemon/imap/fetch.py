"""Fetch mode: reads the mail for Yizhan from a mailbox on the organisation's IMAP server.

For organisations that cannot route the OA domain to Yizhan, their server delivers it into
one mailbox (``[fetch] account``) and Yizhan reads it: IDLE where the server has it, else a
look every ``poll_seconds``. Each message enters through the same inbound store as SMTP
(``mailstore.inbound.InboundWriter``) exactly once: the message (UIDVALIDITY, UID and its
digest) is recorded before it is stored and completed after, so neither a restart nor a
renumbered mailbox (a new UIDVALIDITY) makes it count twice; then it is moved to the
processed folder.

Fetched mail carries no SMTP AUTH. It acts in a person's name only when the topmost
Authentication-Results was added by the server named in ``[fetch] authserv_id`` and says
``auth=pass smtp.auth=<login>`` (or a DKIM pass for every From address), as for a trusted
relay, every From address is that person's, and the account policy of AUTH lets the account
send (not suspended, locked or due a new password; the fetch is then its last login);
otherwise it is stored as unauthenticated ("none"), which the processor answers but never
acts on.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
from email import policy
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from typing import Final

from yizhan.daemon.context import Context
from yizhan.daemon.gateway.senders import (
    AUTH_NONE,
    AUTH_RELAY,
    HeaderError,
    address_belongs,
    parse_headers,
    relay_identity,
)
from yizhan.daemon.imap.responses import fetched_literals
from yizhan.daemon.imap.session import ImapFailure, ImapSession
from yizhan.mailstore import imap_filings
from yizhan.mailstore.accounts import LoginResult, vouched_login
from yizhan.mailstore.directory import load_directory
from yizhan.mailstore.inbound import InboundWriter, StoreFailed
from yizhan.mailstore.models import FetchedMessage
from yizhan.routing.directory import Directory

__all__ = ["FetchWorker", "fetched_identity", "fetched_recipients"]

log = logging.getLogger("yizhan.imap.fetch")
security_log = logging.getLogger("yizhan.security")

#: IDLE is renewed within this, well inside the 30 minutes servers allow (RFC 2177).
IDLE_SECONDS: Final = 600.0
FIRST_BACKOFF: Final = 1.0
MAX_BACKOFF: Final = 60.0

_HEADER_END: Final = re.compile(rb"\r?\n\r?\n")
_RECIPIENT_FIELDS: Final = ("X-Original-To", "Delivered-To", "To", "Cc")


def fetched_identity(
    data: bytes, *, authserv_id: str, directory: Directory, domain: str
) -> tuple[str | None, str]:
    """The account a fetched message may act for, and how that is known; (None, "none")."""
    if not authserv_id:
        return None, AUTH_NONE
    try:
        facts = parse_headers(data)
    except HeaderError:
        return None, AUTH_NONE
    if not facts.auth_results:
        return None, AUTH_NONE
    top = facts.auth_results[0]
    if top.split(";", 1)[0].strip().lower() != authserv_id.strip().lower():
        return None, AUTH_NONE
    account, method = relay_identity(
        facts.auth_results[:1], facts.from_addresses, directory, domain
    )
    if account is None:
        return None, AUTH_NONE
    if not all(address_belongs(a, account, directory, domain) for a in facts.from_addresses):
        security_log.warning(
            "fetched mail authenticated as %s claims From %s; taken as unauthenticated",
            account,
            ", ".join(facts.from_addresses),
        )
        return None, AUTH_NONE
    return account, method


def fetched_recipients(data: bytes, domain: str) -> list[str]:
    """The OA-domain addresses a fetched message was for: its delivery headers, To and Cc."""
    end = _HEADER_END.search(data)
    head = BytesHeaderParser(policy=policy.compat32).parsebytes(data[: end.end()] if end else data)
    found: list[str] = []
    for field in _RECIPIENT_FIELDS:
        for _name, address in getaddresses([str(v) for v in head.get_all(field) or []]):
            address = address.strip().lower()
            if address.endswith("@" + domain) and address not in found:
                found.append(address)
    return found or [f"cmd@{domain}"]


class FetchWorker:
    """Reads ``[fetch] folder`` until told to stop; see the module docstring."""

    def __init__(self, ctx: Context, writer: InboundWriter) -> None:
        self.ctx = ctx
        self.writer = writer
        fetch = ctx.config.fetch
        assert fetch.server is not None and fetch.password_file is not None
        self.fetch = fetch
        self.server = fetch.server
        self.source = f"{fetch.server}/{fetch.account}/{fetch.folder}"[:300]
        self.taken = 0

    async def run(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        """Fetch, wait for more (IDLE or polling), and again; reconnect after failures.

        With ``ready`` (the server is Yizhan's own Dovecot), the first try waits for it.
        """
        if ready is not None:
            waiters = [asyncio.ensure_future(e.wait()) for e in (stop, ready)]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()
        backoff = FIRST_BACKOFF
        while not stop.is_set():
            session: ImapSession | None = None
            try:
                session = await self._open()
                backoff = FIRST_BACKOFF
                while not stop.is_set():
                    await self.fetch_once(session)
                    await self._wait(session, stop)
            except ImapFailure as exc:
                log.warning("fetch from %s: %s; again in %.0f s", self.server, exc, backoff)
            except Exception:
                log.exception("fetch from %s failed", self.server)
            finally:
                if session is not None:
                    await session.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def fetch_once(self, session: ImapSession) -> int:
        """Take every message in the folder; how many were new to Yizhan."""
        session.selected = None
        validity = await session.select(self.fetch.folder)
        new = 0
        for uid in sorted(await session.uid_search("ALL")):
            new += await self._take(session, validity, uid)
        return new

    async def _open(self) -> ImapSession:
        password_file = self.fetch.password_file
        assert password_file is not None
        try:
            password = password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ImapFailure(f"password file {password_file}: {exc.strerror}") from exc
        session = await ImapSession.open(
            self.server.host,
            self.server.port,
            self.fetch.account,
            password,
            use_ssl=self.fetch.ssl,
        )
        try:
            await session.ensure_folders([self.fetch.processed_folder])
        except ImapFailure:
            await session.close()
            raise
        return session

    async def _wait(self, session: ImapSession, stop: asyncio.Event) -> None:
        if not session.has_capability("IDLE"):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.fetch.poll_seconds)
            return
        idle = asyncio.ensure_future(session.idle(min(IDLE_SECONDS, self.fetch.poll_seconds * 10)))
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({idle, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
        if not idle.done():
            idle.cancel()
            with contextlib.suppress(asyncio.CancelledError, ImapFailure):
                await idle
            return
        idle.result()
        # The connection is checked after every IDLE: a dead one fails here, not silently.
        await session.noop()

    async def _take(self, session: ImapSession, validity: int, uid: int) -> int:
        record = await asyncio.to_thread(self._record, validity, uid)
        if record is not None and record.inbound_id is not None:
            await self._move(session, uid)
            return 0
        lines = await session.fetch([uid], "(UID BODY.PEEK[])")
        data = fetched_literals(lines).get(uid)
        if data is None:
            return 0
        digest = hashlib.sha256(data).hexdigest()
        inbound_id = await asyncio.to_thread(self._already, validity, uid, digest)
        if inbound_id is None:
            inbound_id = await self._store(data)
            await asyncio.to_thread(self._complete, validity, uid, inbound_id)
            log.info("fetched UID %d/%d as inbound #%d", validity, uid, inbound_id)
            self.taken += 1
            new = 1
        else:
            new = 0
        await self._move(session, uid)
        return new

    async def _store(self, data: bytes) -> int:
        config = self.ctx.config
        directory = await asyncio.to_thread(self._directory)
        account, method = fetched_identity(
            data, authserv_id=self.fetch.authserv_id, directory=directory, domain=config.domain
        )
        if account is not None and method == AUTH_RELAY:
            # The MTA checked the password; the account policy is still Yizhan's.
            result = await asyncio.to_thread(self._vouch, account)
            if not result.ok:
                log.warning(
                    "fetched mail of %s taken as unauthenticated: %s", account, result.reason
                )
                account, method = None, AUTH_NONE
        try:
            return await self.writer.store(
                data=data,
                mail_from=_return_path(data),
                rcpt_tos=fetched_recipients(data, config.domain),
                sender_account=account,
                auth_method=method,
                peer=f"fetch {self.server} {self.fetch.account}"[:100],
            )
        except StoreFailed as exc:
            raise ImapFailure(f"not stored: {exc}") from exc

    async def _move(self, session: ImapSession, uid: int) -> None:
        await session.uid_move([uid], self.fetch.processed_folder)

    # -- database --------------------------------------------------------------------------

    def _record(self, validity: int, uid: int) -> FetchedMessage | None:
        with self.ctx.sessions() as db:
            return imap_filings.fetch_record(db, self.source, validity, uid)

    def _already(self, validity: int, uid: int, digest: str) -> int | None:
        """The inbound row this message already became, or None after noting it is coming."""
        with self.ctx.sessions.begin() as db:
            record = imap_filings.fetch_record(db, self.source, validity, uid)
            if record is None:
                # The same bytes under an older UIDVALIDITY were taken before.
                earlier = imap_filings.fetched_digest(db, self.source, digest)
                if earlier is not None and earlier.inbound_id is not None:
                    return earlier.inbound_id
                imap_filings.begin_fetch(
                    db, self.source, validity, uid, digest, now=self.ctx.clock()
                )
                return None
            # Noted before a crash: stored, or not yet?
            found = imap_filings.find_stored(db, record)
            if found is not None:
                record.inbound_id = found
            return found

    def _complete(self, validity: int, uid: int, inbound_id: int) -> None:
        with self.ctx.sessions.begin() as db:
            imap_filings.complete_fetch(db, self.source, validity, uid, inbound_id)

    def _directory(self) -> Directory:
        with self.ctx.sessions() as db:
            return load_directory(db)

    def _vouch(self, account: str) -> LoginResult:
        with self.ctx.sessions.begin() as db:
            return vouched_login(db, account, now=self.ctx.clock(), policy=self.ctx.login_policy)


def _return_path(data: bytes) -> str:
    end = _HEADER_END.search(data)
    head = data[: end.start()] if end else data
    match = re.search(rb"^return-path:[ \t]*<([^>\r\n]*)>", head, re.IGNORECASE | re.MULTILINE)
    return match[1].decode("utf-8", "replace") if match else ""
