"""The one place that talks IMAP: a logged-in aioimaplib connection with every command bounded.

aioimaplib leaves a command waiting forever when the server goes away mid-command, and IDLE
can hang the same way (aio-libs/aioimaplib #120, #110), so each command here runs under a
timeout, a lost connection fails every later command at once, and IDLE is re-issued with a
NOOP well inside the server's own timeout. Mailbox names go out in modified UTF-7, quoted
(aioimaplib sends them as given). Every failure is an :class:`ImapFailure`: the server could
not be reached, dropped the connection, timed out or answered NO or BAD; callers try again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Sequence
from typing import Any, Final

import aioimaplib

from yizhan.daemon.imap import responses
from yizhan.daemon.imap.mutf7 import encode
from yizhan.daemon.imap.responses import AppendUid, CopyUid

__all__ = ["ImapFailure", "ImapRefused", "ImapSession", "quote_mailbox"]

log = logging.getLogger("yizhan.imap")

#: The limit on one command, connecting and logging in included.
COMMAND_SECONDS: Final = 30.0


class ImapFailure(Exception):
    """The IMAP server was down, dropped the connection, timed out or refused; try again later."""


class ImapRefused(ImapFailure):
    """The server answered NO or BAD."""

    def __init__(self, command: str, result: str, text: str) -> None:
        super().__init__(f"{command}: {result} {text}".strip())
        self.result = result
        self.text = text

    @property
    def trycreate(self) -> bool:
        """The mailbox does not exist and could be created (RFC 3501 [TRYCREATE])."""
        return "[TRYCREATE]" in self.text.upper()


def quote_mailbox(name: str) -> str:
    """``name`` as a quoted IMAP string in modified UTF-7."""
    wire = encode(name).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{wire}"'


class ImapSession:
    """One logged-in connection; :meth:`open` makes it, :meth:`close` ends it."""

    def __init__(self, client: Any, user: str, timeout: float) -> None:
        self._client = client
        self.user = user
        self.timeout = timeout
        self.lost: str | None = None
        self.selected: str | None = None
        self.uidvalidity: int | None = None
        #: How many messages the selected folder held when selected.
        self.exists = 0

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        user: str,
        password: str,
        *,
        use_ssl: bool = False,
        timeout: float = COMMAND_SECONDS,
    ) -> ImapSession:
        """Connect and log in; ImapFailure if either fails."""
        holder: list[ImapSession] = []

        def lost(exc: Exception | None) -> None:
            if holder:
                holder[0].lost = f"connection lost: {exc or 'closed by the server'}"
                # An IDLE waiting for the server's push would wait forever (aioimaplib #110).
                with contextlib.suppress(Exception):
                    holder[0]._client.protocol.idle_queue.put_nowait(
                        aioimaplib.STOP_WAIT_SERVER_PUSH
                    )

        try:
            if use_ssl:
                client = aioimaplib.IMAP4_SSL(
                    host=host,
                    port=port,
                    timeout=timeout,
                    conn_lost_cb=lost,
                    ssl_context=ssl.create_default_context(),
                )
            else:
                client = aioimaplib.IMAP4(host=host, port=port, timeout=timeout, conn_lost_cb=lost)
        except OSError as exc:
            raise ImapFailure(f"{host}:{port}: {exc}") from exc
        session = cls(client, user, timeout)
        holder.append(session)
        try:
            await session._bounded("connect", client.wait_hello_from_server())
            response = await session._bounded("LOGIN", client.login(user, password))
        except ImapFailure:
            await session.close()
            raise
        if response.result != "OK":
            await session.close()
            raise ImapRefused("LOGIN " + user, response.result, _text(response.lines))
        return session

    # -- mailboxes -------------------------------------------------------------------------

    async def mailboxes(self, *, subscribed: bool = False) -> dict[str, tuple[str, ...]]:
        """Every mailbox (or every subscribed one) with its flags, names decoded."""
        verb = "LSUB" if subscribed else "LIST"
        call = self._client.lsub if subscribed else self._client.list
        response = await self._ok(verb, call('""', '"*"'))
        return responses.listed_mailboxes(response.lines)

    async def ensure_folders(self, names: Sequence[str]) -> None:
        """Create and subscribe each of ``names`` that is not yet (clients hide unsubscribed
        folders); a parent such as 公文 comes with its children."""
        existing = await self.mailboxes()
        subscribed = await self.mailboxes(subscribed=True)
        for name in names:
            if name not in existing:
                try:
                    await self._ok("CREATE", self._client.create(quote_mailbox(name)))
                except ImapRefused as exc:
                    # Made meanwhile by another session, or implied by a child: fine.
                    if "ALREADYEXISTS" not in exc.text.upper():
                        raise
            if name not in subscribed:
                try:
                    await self._ok("SUBSCRIBE", self._client.subscribe(quote_mailbox(name)))
                except ImapRefused as exc:
                    # Filing goes on; the person can still subscribe the folder themselves.
                    log.warning("%s: %s not subscribed: %s", self.user, name, exc)

    async def select(self, folder: str) -> int:
        """Select ``folder``; its UIDVALIDITY."""
        if self.selected == folder and self.uidvalidity is not None:
            return self.uidvalidity
        response = await self._ok("SELECT", self._client.select(quote_mailbox(folder)))
        validity = responses.uidvalidity(response.lines)
        if validity is None:
            raise ImapFailure(f"SELECT {folder}: the server sent no UIDVALIDITY")
        self.selected, self.uidvalidity = folder, validity
        self.exists = responses.exists(response.lines) or 0
        return validity

    # -- messages --------------------------------------------------------------------------

    async def append(self, folder: str, data: bytes, *, seen: bool = False) -> AppendUid:
        """Put ``data`` into ``folder``; where it went (UIDPLUS, RFC 4315)."""
        response = await self._ok(
            "APPEND",
            self._client.append(data, quote_mailbox(folder), flags="(\\Seen)" if seen else None),
        )
        found = responses.appenduid(response.lines)
        if found is None:
            raise ImapFailure("APPEND: the server sent no APPENDUID (it needs UIDPLUS)")
        if self.selected == folder:
            # The selected mailbox changed under this session; read it again when needed.
            self.selected = None
        return found

    async def uid_search(self, *criteria: str) -> list[int]:
        """UID SEARCH in the selected folder."""
        response = await self._ok(
            "UID SEARCH", self._client.protocol.search(*criteria, charset=None, by_uid=True)
        )
        return responses.search_uids(response.lines)

    async def search_message_id(self, message_id: str) -> list[int]:
        """The UIDs of the selected folder's messages with this Message-ID."""
        return await self.uid_search("HEADER", "Message-ID", _quoted(message_id))

    async def uid_move(self, uids: Sequence[int], folder: str) -> CopyUid | None:
        """UID MOVE (RFC 6851); which UID each message got in ``folder``, when the server says."""
        response = await self._ok(
            "UID MOVE", self._client.uid("move", responses.uid_set(uids), quote_mailbox(folder))
        )
        return responses.copyuid(response.lines)

    async def uid_flag(self, uids: Sequence[int], flags: str, *, add: bool = True) -> None:
        """Add (or remove) ``flags`` such as ``\\Seen`` on the selected folder's ``uids``."""
        verb = "+FLAGS.SILENT" if add else "-FLAGS.SILENT"
        await self._ok("UID STORE", self._client.uid("store", responses.uid_set(uids), verb, flags))

    async def uid_expunge(self, uids: Sequence[int]) -> None:
        """Remove the selected folder's ``uids`` for good (marks them \\Deleted first)."""
        await self.uid_flag(uids, "(\\Deleted)")
        await self._ok("UID EXPUNGE", self._client.uid("expunge", responses.uid_set(uids)))

    async def fetch(self, uids: Sequence[int] | str, parts: str) -> list[Any]:
        """UID FETCH ``parts`` of ``uids`` (or a set such as ``1:*``): the raw response lines."""
        uid_set = uids if isinstance(uids, str) else responses.uid_set(uids)
        response = await self._ok("UID FETCH", self._client.uid("fetch", uid_set, parts))
        return list(response.lines)

    async def noop(self) -> None:
        """NOOP: keeps the connection and shows the server is there."""
        await self._ok("NOOP", self._client.noop())

    def has_capability(self, name: str) -> bool:
        """Whether the server announced ``name``."""
        return bool(self._client.has_capability(name))

    async def idle(self, seconds: float) -> bool:
        """IDLE for up to ``seconds``; True when the server announced a change (RFC 2177)."""
        self._raise_if_lost()
        try:
            waiter = await asyncio.wait_for(self._client.idle_start(timeout=seconds), self.timeout)
            try:
                push = await asyncio.wait_for(
                    self._client.wait_server_push(timeout=seconds + 5), seconds + self.timeout
                )
            finally:
                if self.lost is None:
                    self._client.idle_done()
                    await asyncio.wait_for(waiter, self.timeout)
                else:
                    waiter.cancel()
        except (TimeoutError, aioimaplib.AioImapException, OSError) as exc:
            self._fail(f"IDLE: {exc or type(exc).__name__}")
        if push == aioimaplib.STOP_WAIT_SERVER_PUSH:
            self._raise_if_lost()
            return False
        return any(b"EXISTS" in line or b"RECENT" in line for line in _lines(push))

    async def close(self) -> None:
        """Log out (briefly) and drop the connection."""
        if self.lost is None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._client.logout(), 2)
        with contextlib.suppress(Exception):
            transport = self._client.protocol.transport
            if transport is not None:
                transport.close()
        self.lost = self.lost or "closed"

    # -- internals -------------------------------------------------------------------------

    async def _ok(self, command: str, call: Any) -> Any:
        response = await self._bounded(command, call)
        if response.result != "OK":
            raise ImapRefused(command, response.result, _text(response.lines))
        return response

    async def _bounded(self, command: str, call: Any) -> Any:
        if self.lost is not None:
            call.close()
            raise ImapFailure(f"{command}: {self.lost}")
        try:
            return await asyncio.wait_for(call, self.timeout)
        except (TimeoutError, aioimaplib.AioImapException, OSError, ConnectionError) as exc:
            self._fail(f"{command}: {type(exc).__name__} {exc}".strip())
        raise AssertionError("unreachable")

    def _fail(self, reason: str) -> None:
        # After a timeout the connection's state is unknown: nothing more is sent on it.
        self.lost = self.lost or reason
        with contextlib.suppress(Exception):
            self._client.protocol.transport.close()
        raise ImapFailure(reason)

    def _raise_if_lost(self) -> None:
        if self.lost is not None:
            raise ImapFailure(self.lost)


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _lines(push: Any) -> list[bytes]:
    if isinstance(push, bytes):
        return [push]
    if isinstance(push, list):
        return [p for p in push if isinstance(p, bytes)]
    return []


def _text(lines: Sequence[Any]) -> str:
    last = lines[-1] if lines else b""
    return last.decode("utf-8", "replace") if isinstance(last, bytes | bytearray) else str(last)
