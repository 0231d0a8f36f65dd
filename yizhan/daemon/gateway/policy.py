"""Yizhan's Postfix policy service: seals the SASL login into ``X-Yizhan-Login`` at DATA.

The organisation's Postfix asks it for every message (``smtpd_data_restrictions =
check_policy_service inet:HOST:PORT``, docs/deploy.md). The Postfix policy delegation protocol
is a block of ``name=value`` lines ended by an empty line, answered by ``action=...`` and an
empty line, several requests per connection. A client that logged in with SASL gets
``PREPEND X-Yizhan-Login: <login>; queue-id=…; mac=…`` (``gateway.login_header``); anyone else
``DUNNO``. Whether that login may send (suspended, locked, expired) is decided by the gateway
when the message reaches Yizhan, with the account policy that AUTH applies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

from yizhan.daemon.config import HostPort
from yizhan.daemon.gateway.login_header import LOGIN_HEADER, seal

__all__ = ["answer", "start_policy_service"]

log = logging.getLogger("yizhan.smtp.policy")

#: A request is a few hundred bytes; anything far longer is not Postfix.
_MAX_LINE: Final = 4096
_MAX_ATTRIBUTES: Final = 100
_IDLE_SECONDS: Final = 300.0


def answer(attributes: dict[str, str], *, secret: str) -> str:
    """The action for one policy request."""
    login = attributes.get("sasl_username", "").strip()
    queue_id = attributes.get("queue_id", "").strip()
    if attributes.get("request") != "smtpd_access_policy" or not login:
        return "DUNNO"
    if not queue_id.isalnum() or any(c in login for c in " \t;\r\n"):
        # Before DATA Postfix has no queue id; a login with separators could not be sealed.
        return "DUNNO"
    return f"PREPEND {LOGIN_HEADER}: {seal(secret, login, queue_id)}"


async def start_policy_service(listen: HostPort, *, secret: str) -> asyncio.Server:
    """Listen on ``listen`` (loopback, or the MTA's network) and answer Postfix."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            while True:
                attributes = await _request(reader)
                if attributes is None:
                    return
                action = answer(attributes, secret=secret)
                if action != "DUNNO":
                    log.info(
                        "%s: %s logged in as %s",
                        attributes.get("queue_id", "?"),
                        attributes.get("client_address", "?"),
                        attributes.get("sasl_username", "?"),
                    )
                writer.write(f"action={action}\n\n".encode())
                await writer.drain()
        except (TimeoutError, ValueError, ConnectionError) as exc:
            log.warning("policy client %s dropped: %s", peer, exc.__class__.__name__)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    server = await asyncio.start_server(serve, host=listen.host, port=listen.port)
    log.info("policy service on %s:%d", listen.host, server.sockets[0].getsockname()[1])
    return server


async def _request(reader: asyncio.StreamReader) -> dict[str, str] | None:
    attributes: dict[str, str] = {}
    while True:
        async with asyncio.timeout(_IDLE_SECONDS):
            line = await reader.readline()
        if not line:
            return None
        if len(line) > _MAX_LINE or len(attributes) > _MAX_ATTRIBUTES:
            raise ValueError("request too long")
        text = line.decode("utf-8", "replace").rstrip("\r\n")
        if not text:
            return attributes
        name, _, value = text.partition("=")
        attributes[name] = value
