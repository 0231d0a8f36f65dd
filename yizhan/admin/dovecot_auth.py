"""Answers Dovecot's lua passdb: IMAP logins checked by the same code and counters as SMTP AUTH.

Dovecot (``yizhan.daemon.imap.dovecot_conf``) posts each login to ``/internal/dovecot/verify``
and each user lookup (a master login, an LMTP delivery, by account or address) to
``/internal/dovecot/lookup``. A login is ``mailstore.accounts.authenticate``, as for SMTP AUTH:
five failures lock the account for SMTP and IMAP alike, a suspended or revoked account is
refused at once, a success is the last login, and a temporary or expired password is refused
with where to change it. A lookup only says whether the account may have mail; it counts
nothing. Only Dovecot may ask: the request must come from this host and carry the secret that
only Dovecot's lua file holds.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import urllib.parse
from typing import Final

from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Route

from yizhan.daemon.context import Context
from yizhan.daemon.imap.dovecot import passdb_secret
from yizhan.daemon.imap.dovecot_conf import PASSDB_PATH
from yizhan.mailstore.accounts import LoginResult, VerifiedPasswords, authenticate
from yizhan.mailstore.models import Account, Person

__all__ = ["PREFIX", "dovecot_auth_routes"]

log = logging.getLogger("yizhan.imap.auth")

#: Where the lua passdb finds the endpoint (``<admin>/internal/dovecot``).
PREFIX: Final = PASSDB_PATH
_HEADER: Final = "x-yizhan-dovecot"


def dovecot_auth_routes(ctx: Context) -> list[BaseRoute]:
    """The endpoint's routes for the admin app."""
    secret = passdb_secret(ctx.config)
    verified = VerifiedPasswords()

    def allowed(request: Request) -> bool:
        given = request.headers.get(_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            return False
        client = request.client.host if request.client else ""
        server = request.scope.get("server") or ("", 0)
        return _local(client) or client == server[0]

    def check(account: str, password: str, client: str) -> LoginResult:
        with ctx.sessions.begin() as session:
            return authenticate(
                session,
                account,
                password,
                now=ctx.clock(),
                policy=ctx.login_policy,
                verified=verified,
                client=client,
            )

    def lookup(login: str) -> str | None:
        # An LMTP delivery from the organisation's Postfix names the recipient by address:
        # either of a person's two addresses is their account.
        login = login.strip().lower()
        local, at, domain = login.rpartition("@")
        with ctx.sessions() as session:
            if at and domain == ctx.config.domain.lower():
                login = local
            elif at:
                login = (
                    session.scalar(select(Person.account).where(func.lower(Person.email) == login))
                    or ""
                )
            return session.scalar(
                select(Account.account).where(Account.account == login, Account.state == "active")
            )

    async def verify_route(request: Request) -> PlainTextResponse:
        if not allowed(request):
            return PlainTextResponse("forbidden\n", status_code=403)
        form = await _form(request)
        account, password = form.get("account", ""), form.get("password", "")
        # Dovecot passes the IMAP client's address: a lock stops that address, not the owner.
        result = await run_in_threadpool(check, account, password, form.get("rip", ""))
        where = f"{form.get('service', 'imap')} from {form.get('rip', '?')}"
        if result.ok:
            log.info("%s: login as %s", where, result.account)
            return _answer("ok", result.account or "")
        log.warning("%s: login as %r refused: %s", where, account[:64], result.reason)
        if result.must_change:
            return _answer(
                "refused",
                f"{result.reason}: change it at {ctx.config.admin_public_url}account/password",
            )
        if result.account is not None and not result.reason.startswith("unknown"):
            # Suspended, revoked or locked: the person is told why, as SMTP AUTH tells them.
            return _answer("refused", result.reason)
        return _answer("fail", result.reason)

    async def lookup_route(request: Request) -> PlainTextResponse:
        if not allowed(request):
            return PlainTextResponse("forbidden\n", status_code=403)
        form = await _form(request)
        found = await run_in_threadpool(lookup, form.get("account", ""))
        return _answer("ok", found) if found else _answer("unknown", "no such active account")

    return [
        Route(f"{PREFIX}/verify", verify_route, methods=["POST"]),
        Route(f"{PREFIX}/lookup", lookup_route, methods=["POST"]),
    ]


async def _form(request: Request) -> dict[str, str]:
    # The lua script sends one small urlencoded form; no multipart parser is needed for it.
    body = (await request.body())[:8192].decode("utf-8", "replace")
    return {k: v[0] for k, v in urllib.parse.parse_qs(body, keep_blank_values=True).items()}


def _answer(verdict: str, detail: str) -> PlainTextResponse:
    # One line, verdict TAB detail; IMAP shows the detail, so it stays ASCII and short.
    text = " ".join(detail.split()).encode("ascii", "replace").decode("ascii")[:300]
    return PlainTextResponse(f"{verdict}\t{text}\n")


def _local(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
