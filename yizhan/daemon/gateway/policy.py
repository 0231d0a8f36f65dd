"""Yizhan's Postfix policy service: seals the SASL login into ``X-Yizhan-Login`` at DATA.

The organisation's Postfix asks it for every message (``smtpd_data_restrictions =
check_policy_service inet:HOST:PORT``, docs/deploy.md). The Postfix policy delegation protocol
is a block of ``name=value`` lines ended by an empty line, answered by ``action=...`` and an
empty line, several requests per connection. A client that logged in with SASL gets
``PREPEND X-Yizhan-Login: <login>; queue-id=…; mac=…`` (``gateway.login_header``); anyone else
``DUNNO``. A login of a Yizhan account that the account policy of AUTH refuses (suspended,
revoked, locked, a password to change) gets ``REJECT`` with the reason at once, rather than a
bounce later: the organisation's Dovecot may have checked the password without asking Yizhan.
The gateway applies the same policy again when the message arrives, and records the login.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Final

from sqlalchemy import func, select

from yizhan.daemon.config import HostPort
from yizhan.daemon.context import Context
from yizhan.daemon.gateway.login_header import LOGIN_HEADER, seal
from yizhan.mailstore.accounts import vouched_login
from yizhan.mailstore.models import Person

__all__ = ["answer", "login_refusal", "start_policy_service"]

#: Why a login may not send now, or None (also for a login that is not Yizhan's).
LoginCheck = Callable[[str], str | None]

log = logging.getLogger("yizhan.smtp.policy")

#: A request is a few hundred bytes; anything far longer is not Postfix.
_MAX_LINE: Final = 4096
_MAX_ATTRIBUTES: Final = 100
_IDLE_SECONDS: Final = 300.0


def answer(attributes: dict[str, str], *, secret: str, refusal: str | None = None) -> str:
    """The action for one policy request; ``refusal``: why its login may not send."""
    login = attributes.get("sasl_username", "").strip()
    queue_id = attributes.get("queue_id", "").strip()
    if attributes.get("request") != "smtpd_access_policy" or not login:
        return "DUNNO"
    if refusal:
        # ASCII, one line: it goes into Postfix's SMTP reply.
        reason = " ".join(refusal.encode("ascii", "replace").decode("ascii").split())[:200]
        return f"REJECT 5.7.1 The login {login} may not send: {reason}"
    if not queue_id.isalnum() or any(c in login for c in " \t;\r\n"):
        # Before DATA Postfix has no queue id; a login with separators could not be sealed.
        return "DUNNO"
    return f"PREPEND {LOGIN_HEADER}: {seal(secret, login, queue_id)}"


def login_refusal(ctx: Context) -> LoginCheck:
    """The account policy for a SASL login, read from the database (in a worker thread)."""
    domain = ctx.config.domain.lower()

    def check(login: str) -> str | None:
        login = login.strip().lower()
        local, at, host = login.rpartition("@")
        with ctx.sessions.begin() as session:
            if at and host == domain:
                login = local
            elif at:
                login = (
                    session.scalar(select(Person.account).where(func.lower(Person.email) == login))
                    or ""
                )
            result = vouched_login(
                session, login, now=ctx.clock(), policy=ctx.login_policy, record=False
            )
        # Not an account of Yizhan's: the organisation's own business.
        return None if result.ok or result.account is None else result.reason

    return check


async def start_policy_service(
    listen: HostPort, *, secret: str, check: LoginCheck | None = None
) -> asyncio.Server:
    """Listen on ``listen`` (loopback, or the MTA's network) and answer Postfix."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            while True:
                attributes = await _request(reader)
                if attributes is None:
                    return
                refusal = await _refusal(check, attributes.get("sasl_username", ""))
                action = answer(attributes, secret=secret, refusal=refusal)
                if action.startswith("REJECT"):
                    log.warning("%s: %s", attributes.get("client_address", "?"), action)
                elif action != "DUNNO":
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


async def _refusal(check: LoginCheck | None, login: str) -> str | None:
    if check is None or not login:
        return None
    try:
        return await asyncio.to_thread(check, login)
    except Exception:
        # The gateway applies the policy again when the mail arrives; the MTA need not wait.
        log.exception("could not check the login %r", login[:64])
        return None


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
