"""Who may hold an SMTP connection: the limits on live connections, in all and per client
address, and the timeouts that keep slots for those who send mail (issue 17).

A connection that has not authenticated (and is not from a trusted relay) can send nothing: it
is closed after ``smtp.auth_timeout`` seconds, and, when every slot is taken, the oldest such
connection gives way to a new one. One client address holds at most
``smtp.max_connections_per_client`` connections. So 200 idle connections sending NOOP, from one
address or from many, do not keep an authenticated sender out.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable
from typing import Final, Protocol

from yizhan.daemon.gateway.replies import ERR_421_BUSY

log = logging.getLogger("yizhan.smtp")

#: Seconds a new connection has to authenticate before it may be made to give way to another.
GRACE: Final = 10.0


class Held(Protocol):
    """What the gate needs to know of a live connection (``GatewaySMTP`` has it)."""

    client_host: str
    opened_at: float

    @property
    def authenticated(self) -> bool: ...

    @property
    def in_transaction(self) -> bool: ...

    def close_with(self, reply: str) -> None: ...


class Busy(asyncio.Protocol):
    """Answers a connection over the limit with 421 and closes it."""

    def __init__(self, hostname: str) -> None:
        self.reply = (ERR_421_BUSY.format(host=hostname) + "\r\n").encode("ascii", "replace")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(self.reply)
        transport.close()


class ConnectionGate:
    """Counts live SMTP connections against ``smtp.max_connections`` and the limit per client
    address (``unlimited`` says which addresses have none: the trusted relays)."""

    def __init__(
        self,
        limit: int,
        *,
        per_client: int | None = None,
        unlimited: Callable[[str], bool] = lambda _host: False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.per_client = per_client or limit
        self.unlimited = unlimited
        self.clock = clock
        # Weak, so that a protocol asyncio drops without connection_lost is not counted forever.
        self._live: weakref.WeakSet[Held] = weakref.WeakSet()

    def full(self) -> bool:
        """Whether a new connection must be refused (after :meth:`make_room` failed)."""
        return len(self._live) >= self.limit

    def make_room(self, reply: str) -> bool:
        """Close the oldest connection that has not authenticated within ``GRACE`` seconds
        (nor is a relay's, nor in a transaction), answering it ``reply``; whether one was."""
        now = self.clock()
        idle = [
            held
            for held in self._live
            if not held.authenticated
            and not held.in_transaction
            and not self.unlimited(held.client_host)
            and now - held.opened_at >= GRACE
        ]
        if not idle:
            return False
        oldest = min(idle, key=lambda held: held.opened_at)
        log.warning("%s: closed to make room for a new connection", oldest.client_host)
        self._live.discard(oldest)
        oldest.close_with(reply)
        return True

    def enter(self, protocol: Held) -> None:
        """Count a new connection."""
        self._live.add(protocol)

    def over_client_limit(self, protocol: Held) -> bool:
        """Whether ``protocol``'s client address already holds its share of connections."""
        host = protocol.client_host
        if self.unlimited(host):
            return False
        same = sum(1 for held in self._live if held is not protocol and held.client_host == host)
        return same >= self.per_client

    def leave(self, protocol: Held) -> None:
        """Forget a closed connection."""
        self._live.discard(protocol)

    def close_all(self) -> None:
        """Close every live connection (at shutdown)."""
        for protocol in list(self._live):
            protocol.close_with("")
