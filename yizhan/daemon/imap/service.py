"""Starts the daemon's IMAP parts and ties them together: Dovecot, filing, tidying, fetching.

``yizhan serve`` makes one :class:`ImapService`: its ``filing`` goes to the outbound worker,
``wake`` is called whenever the processor or the scheduler changed something, and ``start``
(once the admin page, which answers Dovecot's logins, has its port) starts Yizhan's own
Dovecot when ``[imap] listen`` is set, the tidy and repair jobs when mail is filed over IMAP,
and fetch mode when ``[fetch] server`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from yizhan.daemon.context import Context
from yizhan.daemon.imap.courier import ImapFiling
from yizhan.daemon.imap.dovecot import (
    DovecotError,
    DovecotSupervisor,
    dovecot_usable,
    running_dovecot,
)
from yizhan.daemon.imap.dovecot_conf import PASSDB_PATH
from yizhan.daemon.imap.fetch import FetchWorker
from yizhan.daemon.imap.pool import SessionPool, imap_target
from yizhan.daemon.imap.tidy import Tidier
from yizhan.mailstore.inbound import InboundWriter

__all__ = ["ImapService", "filing_for"]

log = logging.getLogger("yizhan.imap")


def filing_for(ctx: Context) -> ImapFiling | None:
    """IMAP filing for a process that only delivers (``yizhan jobs run``), or None; its
    sessions end with each round.

    Yizhan's own Dovecot runs only inside ``yizhan serve``: with no daemon running, mail is
    delivered into the Maildirs as without Dovecot (INBOX; the next ``serve`` gives the files
    to Dovecot's user), rather than waiting in the queue for a daemon.
    """
    target = imap_target(ctx.config)
    if target is None or (target.own and running_dovecot(ctx.config) is None):
        return None
    return ImapFiling(ctx.config, SessionPool(target, keep_seconds=0), clock=ctx.clock)


class ImapService:
    """The IMAP parts of one daemon; see the module docstring."""

    def __init__(self, ctx: Context, *, on_dovecot_start: Callable[[], None] = lambda: None):
        self.ctx = ctx
        self.on_dovecot_start = on_dovecot_start
        target = imap_target(ctx.config)
        self.unusable = dovecot_usable(ctx.config) if ctx.config.imap.listen else None
        if self.unusable is not None:
            # Without a Dovecot to run, mail is delivered into the Maildirs as before.
            log.error("no IMAP: %s; mail for people goes into their Maildirs", self.unusable)
            if target is not None and target.own:
                target = None
        self.pool = SessionPool(target) if target is not None else None
        self.filing = (
            ImapFiling(ctx.config, self.pool, clock=ctx.clock) if self.pool is not None else None
        )
        self.tidier = Tidier(ctx, self.pool) if self.pool is not None else None
        if self.filing is not None and self.tidier is not None:
            self.filing.on_request_filed = self.tidier.wake
        self.supervisor: DovecotSupervisor | None = None
        # aioimaplib logs every unexpected line (a server's BYE at shutdown) at INFO.
        logging.getLogger("aioimaplib").setLevel(logging.WARNING)

    def wake(self) -> None:
        """A step may have changed: tidy the folders. Safe from any thread."""
        if self.tidier is not None:
            self.tidier.wake()

    def start(
        self,
        stop: asyncio.Event,
        *,
        admin_port: int,
        writer: InboundWriter,
        after: asyncio.Event | None = None,
    ) -> list[asyncio.Task[None]]:
        """Start what is configured; the tasks end when ``stop`` is set, Dovecot last, once
        ``after`` is set too (the couriers filing into it have stopped)."""
        config = self.ctx.config
        listen = config.imap.listen
        if listen is not None and self.unusable is None:
            host = config.admin_listen.host
            host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
            url_host = f"[{host}]" if ":" in host else host
            try:
                self.supervisor = DovecotSupervisor(
                    config,
                    listen,
                    auth_url=f"http://{url_host}:{admin_port}{PASSDB_PATH}",
                    on_start=self._dovecot_started,
                )
            except DovecotError as exc:
                log.error("no IMAP: %s", exc)
        tasks: list[asyncio.Task[None]] = []
        if self.tidier is not None:
            # With its own Dovecot, the first pass waits until Dovecot is up.
            up = self.supervisor.ready if self.supervisor is not None else None
            tasks.append(asyncio.create_task(self.tidier.run(stop, up), name="imap-tidy"))
        if config.fetch.server is not None:
            fetcher = FetchWorker(self.ctx, writer)
            own = listen is not None and config.fetch.server == listen
            ready = self.supervisor.ready if own and self.supervisor is not None else None
            tasks.append(asyncio.create_task(fetcher.run(stop, ready), name="imap-fetch"))
        if self.supervisor is None or listen is None:
            return tasks
        # Dovecot stops after the sessions into it are closed, so that its processes end
        # at once instead of waiting for their clients.
        dovecot_stop = asyncio.Event()
        others = list(tasks)

        async def stop_dovecot_last() -> None:
            await stop.wait()
            await asyncio.gather(*others, return_exceptions=True)
            await self.close()
            if after is not None:
                await after.wait()
            dovecot_stop.set()

        tasks.append(asyncio.create_task(self.supervisor.run(dovecot_stop), name="dovecot"))
        tasks.append(asyncio.create_task(stop_dovecot_last(), name="dovecot-stop"))
        smtp = config.smtp.listen
        print(
            f"yizhan: IMAP on {listen}. Thunderbird: add a mail account with your account name "
            f"as the username; IMAP server {listen.host} port {listen.port} and SMTP server "
            f"{smtp.host} port {smtp.port}, connection security None, authentication "
            "Normal password",
            flush=True,
        )
        return tasks

    async def close(self) -> None:
        """Close the IMAP sessions (after the tasks have ended)."""
        if self.pool is not None:
            with contextlib.suppress(Exception):
                await self.pool.close()

    def _dovecot_started(self) -> None:
        if self.tidier is not None:
            self.tidier.repair_soon()
        self.on_dovecot_start()
