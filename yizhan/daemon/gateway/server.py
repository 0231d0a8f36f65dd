"""Starts the SMTP listener: TLS, the directory cache, the gateway and the connection limit."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass

from yizhan.daemon.context import Context
from yizhan.daemon.gateway.directory_cache import DirectoryCache
from yizhan.daemon.gateway.gate import Busy, ConnectionGate
from yizhan.daemon.gateway.hooks import Gateway
from yizhan.daemon.gateway.protocol import GatewaySMTP
from yizhan.daemon.gateway.replies import ERR_421_MAKE_ROOM
from yizhan.daemon.gateway.senders import TrustedRelays
from yizhan.daemon.gateway.tls import server_context
from yizhan.daemon.pickup import Intake

log = logging.getLogger("yizhan.smtp")


@dataclass(kw_only=True)
class SmtpServer:
    """A running listener: the bound port, and how to stop it."""

    server: asyncio.Server
    port: int
    gateway: Gateway
    gate: ConnectionGate
    intake: Intake

    def close(self) -> None:
        """Stop listening and close the open connections; unacknowledged mail is not kept."""
        self.server.close()
        self.gate.close_all()

    async def wait_closed(self) -> None:
        """Wait until the listener is closed, every message being stored is spooled, and
        every spooled message has its row (unless the database is away: then at next start)."""
        await self.server.wait_closed()
        await self.intake.aclose()


async def start_smtp(
    ctx: Context,
    *,
    on_committed: Callable[[list[int]], object] = lambda _ids: None,
    on_queued: Callable[[], None] = lambda: None,
) -> SmtpServer:
    """Listen on ``smtp.listen`` (port 0: any free port, see ``.port``) and serve the gateway.

    STARTTLS is offered when the configured certificate and key exist. ``on_committed`` is
    called with the ids of the inbound rows the pickup made (to wake the processor).
    """
    intake = Intake.open(ctx, on_committed=on_committed)
    writer = intake.writer
    config = ctx.config.smtp
    loop = asyncio.get_running_loop()
    tls_context: ssl.SSLContext | None = None
    if config.tls_cert and config.tls_key and config.tls_cert.exists() and config.tls_key.exists():
        tls_context = server_context(config.tls_cert, config.tls_key)
    else:
        log.warning("no TLS certificate: STARTTLS is off, so only loopback clients can AUTH")
    directory = DirectoryCache(ctx)
    await directory.get()
    # ``on_queued`` wakes the couriers when a refusal queued mail (an answer, IT's notice).
    gateway = Gateway(
        ctx,
        writer,
        directory=directory,
        relays=TrustedRelays.parse(config.trusted_relays),
        on_queued=on_queued,
    )
    gate = ConnectionGate(
        config.max_connections,
        per_client=config.max_connections_per_client,
        unlimited=gateway.relays.trusts,
    )

    def factory() -> asyncio.BaseProtocol:
        if gate.full() and not gate.make_room(ERR_421_MAKE_ROOM.format(host=config.hostname)):
            log.warning("connection refused: %d connections already open", gate.limit)
            return Busy(config.hostname)
        protocol = GatewaySMTP(gateway, tls_context=tls_context, gate=gate, loop=loop)
        gate.enter(protocol)
        return protocol

    server = await loop.create_server(factory, host=config.listen.host, port=config.listen.port)
    port = server.sockets[0].getsockname()[1]
    log.info(
        "listening on %s:%d (TLS %s)", config.listen.host, port, "on" if tls_context else "off"
    )
    return SmtpServer(server=server, port=port, gateway=gateway, gate=gate, intake=intake)
