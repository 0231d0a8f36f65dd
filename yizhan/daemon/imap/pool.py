"""Where Yizhan files into, and its logged-in master sessions, one per person, kept a while.

A master login (``account*master``) reaches one person's mailbox, so filing for many people
takes many sessions; each is kept for a minute after use, so that a round of requests for the
same people logs in once. A session serves one task at a time (IMAP has one selected folder).
Each person's OA folders are created and subscribed on their first session.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from yizhan.daemon.config import Config
from yizhan.daemon.imap.dovecot import MASTER_USER
from yizhan.daemon.imap.dovecot_conf import MASTER_SEPARATOR
from yizhan.daemon.imap.folders import OA_FOLDERS
from yizhan.daemon.imap.session import ImapFailure, ImapSession

__all__ = ["ImapTarget", "SessionPool", "imap_target"]

#: How long an unused session is kept.
IDLE_SECONDS: Final = 60.0
#: At most this many sessions are kept open (Yizhan's Dovecot allows 1,024 IMAP processes).
MAX_SESSIONS: Final = 64


@dataclass(frozen=True, kw_only=True)
class ImapTarget:
    """The Dovecot Yizhan files into and the master login it uses."""

    host: str
    port: int
    master_user: str
    password_file: Path
    #: Yizhan's own Dovecot (started by ``yizhan serve``), not an organisation's.
    own: bool

    def login(self, account: str) -> str:
        """The master login that opens ``account``'s mailbox."""
        return f"{account}{MASTER_SEPARATOR}{self.master_user}"

    def password(self) -> str:
        """The master password; ImapFailure while there is none (Dovecot never started)."""
        try:
            return self.password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ImapFailure(f"master password {self.password_file}: {exc.strerror}") from exc


def imap_target(config: Config) -> ImapTarget | None:
    """Where people's mail is filed: ``[imap] server``, else Yizhan's own Dovecot when mail
    is delivered locally (no relay host); None: no IMAP filing, Maildir delivery as before."""
    imap = config.imap
    if imap.server is not None and imap.master_password_file is not None:
        return ImapTarget(
            host=imap.server.host,
            port=imap.server.port,
            master_user=imap.master_user,
            password_file=imap.master_password_file,
            own=False,
        )
    if imap.listen is not None and not config.relay.host:
        host = imap.listen.host
        return ImapTarget(
            host={"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host),
            port=imap.listen.port,
            master_user=MASTER_USER,
            password_file=config.data_dir / "imap-master-password",
            own=True,
        )
    return None


@dataclass(eq=False)
class _Kept:
    session: ImapSession
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    used: float = field(default_factory=time.monotonic)


class SessionPool:
    """Master sessions by account; see the module docstring."""

    def __init__(
        self, target: ImapTarget, *, timeout: float = 30.0, keep_seconds: float = IDLE_SECONDS
    ) -> None:
        self.target = target
        self.timeout = timeout
        self.keep_seconds = keep_seconds
        self._kept: dict[str, _Kept] = {}
        self._ensured: set[str] = set()
        self._opening: dict[str, asyncio.Lock] = {}

    @contextlib.asynccontextmanager
    async def session(self, account: str) -> AsyncIterator[ImapSession]:
        """A logged-in session for ``account``, this task's alone while the block runs.

        A session that failed is dropped; the next use opens a new one.
        """
        kept = await self._get(account)
        async with kept.lock:
            try:
                yield kept.session
            except ImapFailure:
                if kept.session.lost is not None:
                    self._forget(account, kept)
                raise
            finally:
                kept.used = time.monotonic()
                if kept.session.lost is not None:
                    self._forget(account, kept)

    async def reset(self, account: str) -> None:
        """A folder was missing ([TRYCREATE]): a new session creates the folders again."""
        self._ensured.discard(account)
        kept = self._kept.pop(account, None)
        if kept is not None:
            await kept.session.close()

    async def close_idle(self) -> None:
        """Close the sessions unused for ``keep_seconds``."""
        now = time.monotonic()
        for account, kept in list(self._kept.items()):
            if now - kept.used >= self.keep_seconds and not kept.lock.locked():
                self._forget(account, kept)
                await kept.session.close()

    async def close(self) -> None:
        """Close every session."""
        kept, self._kept = list(self._kept.values()), {}
        for k in kept:
            await k.session.close()

    async def _get(self, account: str) -> _Kept:
        kept = self._kept.get(account)
        if kept is not None and kept.session.lost is None:
            return kept
        opening = self._opening.setdefault(account, asyncio.Lock())
        async with opening:
            kept = self._kept.get(account)
            if kept is not None and kept.session.lost is None:
                return kept
            await self._make_room()
            session = await ImapSession.open(
                self.target.host,
                self.target.port,
                self.target.login(account),
                self.target.password(),
                timeout=self.timeout,
            )
            try:
                if account not in self._ensured:
                    await session.ensure_folders(OA_FOLDERS)
                    self._ensured.add(account)
            except ImapFailure:
                await session.close()
                raise
            kept = self._kept[account] = _Kept(session)
            return kept

    async def _make_room(self) -> None:
        if len(self._kept) < MAX_SESSIONS:
            return
        idle = sorted((k.used, account) for account, k in self._kept.items() if not k.lock.locked())
        closing = []
        for _used, account in idle[: len(self._kept) - MAX_SESSIONS + 1]:
            # Taken out before any await: another task making room at the same moment sees
            # the pool without them and cannot take the same session out again.
            closing.append(self._kept.pop(account).session)
        for session in closing:
            await session.close()

    def _forget(self, account: str, kept: _Kept) -> None:
        if self._kept.get(account) is kept:
            del self._kept[account]
