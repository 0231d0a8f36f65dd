"""The SMTP gateway: decides at each SMTP step whether Yizhan takes a message, then stores it.

Staff submit with AUTH (only after STARTTLS, or from loopback); the organisation's MTA, listed in
``smtp.trusted_relays``, hands over mail without AUTH and vouches for the sender in its
Authentication-Results header. Recipients are checked at RCPT (``routing.addresses``); the
envelope and header senders must belong to the authenticated account, and acting in another
person's name is refused and written to the audit trail (第七條). A message gets 250 only when
:class:`~yizhan.mailstore.inbound.InboundWriter` has its bytes and its row on disk.

The hooks stay thin (STYLE 8): every reply is a constant below, blocking work (argon2, the
database) runs in worker threads, and the decisions that need no I/O are pure functions at the
bottom of this module. aiosmtpd finds hooks by name; here they are registered explicitly
(:meth:`Gateway.hooks`) and the handler has no ``handle_*`` or ``auth_*`` names to be found.
"""

from __future__ import annotations

import asyncio
import binascii
import ipaddress
import logging
import re
import ssl
import time
import weakref
from base64 import b64decode
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from email import policy
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from typing import Any, Final

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, Session

from yizhan import __version__
from yizhan.daemon.config import Config, ConfigError
from yizhan.daemon.content import check_message, content_rules_version
from yizhan.daemon.context import Context
from yizhan.daemon.headers import PLAIN_ADDRESS, plain_header_section, plain_mailbox
from yizhan.daemon.smtp_data import DataRefusal, read_data
from yizhan.daemon.tls import server_context
from yizhan.mailstore import audit
from yizhan.mailstore.accounts import LoginResult, VerifiedPasswords, authenticate
from yizhan.mailstore.directory import load_directory
from yizhan.mailstore.inbound import InboundWriter, StoreFailed, message_id_of
from yizhan.routing.addresses import AddressTable, Refusal
from yizhan.routing.directory import Directory

__all__ = [
    "ConnectionGate",
    "DirectoryCache",
    "Gateway",
    "GatewaySMTP",
    "GatewaySession",
    "HeaderError",
    "HeaderFacts",
    "SmtpServer",
    "TrustedRelays",
    "address_belongs",
    "address_problem",
    "auth_allowed",
    "parse_auth_results",
    "parse_headers",
    "relay_identity",
    "start_smtp",
]

log = logging.getLogger("yizhan.smtp")
auth_log = logging.getLogger("yizhan.smtp.auth")
security_log = logging.getLogger("yizhan.security")

# --- Replies --------------------------------------------------------------------------------------
# Kept ASCII: a client that did not ask for SMTPUTF8 may not read anything else.

OK_235_AUTH: Final = "235 2.7.0 Authentication successful"
OK_250_SENDER: Final = "250 2.1.0 Sender OK"
OK_250_RCPT: Final = "250 2.1.5 Recipient OK"
OK_250_STORED: Final = "250 2.0.0 OK: stored as inbound #{id}"
ERR_421_BUSY: Final = "421 4.7.0 {host} Too many connections; try again later"
ERR_451_STORE: Final = "451 4.3.0 The message was not accepted: {reason}; try again later"
ERR_451_INTERNAL: Final = "451 4.3.0 Temporary server error; try again later"
ERR_501_BASE64: Final = "501 5.5.2 Cannot decode the base64 credentials"
ERR_501_DATA: Final = "501 5.5.4 Syntax: DATA"
ERR_501_PLAIN: Final = "501 5.5.2 AUTH PLAIN needs authzid NUL login NUL password"
ERR_503_NO_RCPT: Final = "503 5.5.1 Error: need RCPT command"
ERR_530_AUTH: Final = "530 5.7.0 Authentication required"
ERR_535_AUTH: Final = "535 5.7.8 Authentication failed: {reason}"
ERR_550_NOT_YOURS: Final = (
    "550 5.7.1 {where} <{address}> is not an address of account {account}; "
    "sending in another person's name is refused and recorded (article 7)"
)
ERR_550_NULL_SENDER: Final = (
    "550 5.7.1 The null sender <> is accepted only from the organisation's mail server"
)
ERR_553_ADDRESS: Final = "553 5.1.7 The address is not valid: {reason}"
ERR_554_HEADERS: Final = "554 5.6.0 The message headers cannot be used: {reason}"

# --- Identity methods stored in Inbound.auth_method (see mailstore.inbound.AUTH_METHODS) ----------

AUTH_SMTP: Final = "smtp-auth"
AUTH_RELAY: Final = "relay-auth"
AUTH_RELAY_DKIM: Final = "relay-dkim"
AUTH_NONE: Final = "none"

#: How old the cached directory may be before a lookup reloads it, in seconds.
DIRECTORY_MAX_AGE: Final = 5.0
# A recipient not found is looked up again in a directory no older than this, in case the person
# was added a moment ago (bounded, since anyone the MTA relays can name unknown recipients).
_DIRECTORY_RECHECK: Final = 1.0

# The header section ends at the first empty line.
_HEADER_END: Final = re.compile(rb"\r?\n\r?\n")
_HEADER_PARSER: Final = BytesHeaderParser(policy=policy.compat32)
# Anything in a From field that looks like an address, wherever it stands.
_ADDRESS_TOKEN: Final = re.compile(r"[^\s<>()\[\]\",;:@\\]+@[^\s<>()\[\]\",;:@\\]+")
# A backslash-escaped character inside a quoted local part.
_QUOTED_PAIR: Final = re.compile(r"\\(?P<char>.)")
# Characters never valid in an address we would store or echo: controls, and lone surrogates
# (aiosmtpd decodes non-UTF-8 bytes with surrogateescape).
_BAD_ADDRESS_CHAR: Final = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
# An envelope address has a local part and a domain; aiosmtpd passes on anything it can quote.
_ADDRESS_SHAPE: Final = re.compile(r"^(?P<local>.+)@(?P<domain>[^@\s\"]+)$")
# The usual envelope path, <dot-atom@domain> and its parameters: read without email's parser.
_PLAIN_PATH: Final = re.compile(rf"<(?P<address>{PLAIN_ADDRESS})>(?=[ \t]|\Z)")
# Authentication-Results (RFC 8601): comments, one "method=result" and its properties.
_AR_COMMENT: Final = re.compile(r"\([^()]*\)")
_AR_RESULT: Final = re.compile(r"^\s*(?P<method>[A-Za-z0-9_-]+)(?:/\d+)?\s*=\s*(?P<result>\w+)")
_AR_PROPERTY: Final = re.compile(
    r"(?P<ptype>[A-Za-z0-9_-]+)\.(?P<prop>[A-Za-z0-9_.-]+)\s*=\s*"
    r'(?:"(?P<quoted>[^"]*)"|(?P<value>[^\s";]+))'
)


# --- The handler ----------------------------------------------------------------------------------


class GatewaySession(Session):
    """One SMTP connection's state; ``account`` is set by a successful AUTH."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.account: str | None = None

    # aiosmtpd sets login_data after every AUTH and its setter logs a deprecation warning
    # each time; this plain property keeps the log for what matters.
    @property
    def login_data(self) -> Any:
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


Hook = Callable[..., Awaitable[str]]


class Gateway:
    """The SMTP hooks and the AUTH check of one listener; see the module docstring."""

    def __init__(
        self,
        ctx: Context,
        writer: InboundWriter,
        *,
        directory: DirectoryCache,
        relays: TrustedRelays,
    ) -> None:
        self.ctx = ctx
        self.config: Config = ctx.config
        self.writer = writer
        self.directory = directory
        self.relays = relays
        self.table = AddressTable(ctx.config.domain, ctx.config.addresses)
        self.verified_passwords = VerifiedPasswords()

    def hooks(self) -> dict[str, Hook]:
        """The aiosmtpd hooks by command; the only ones the gateway has."""
        return {"MAIL": self.on_mail, "RCPT": self.on_rcpt, "DATA": self.on_data}

    async def on_mail(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        """MAIL FROM: who may send, and as whom."""
        state = _state(session)
        peer = _peer_text(session.peer)
        trusted = self.relays.trusts(_peer_host(session.peer))
        if state.account is None and not trusted:
            log.info("%s: MAIL FROM <%s> refused: not authenticated", peer, _shown(address))
            return ERR_530_AUTH
        if address == "<>":
            if not trusted:
                log.info("%s: null sender refused from an untrusted peer", peer)
                return ERR_550_NULL_SENDER
        else:
            problem = address_problem(address)
            if problem:
                return ERR_553_ADDRESS.format(reason=problem)
            if state.account is not None and not await self._belongs(address, state.account):
                await self._impersonation(
                    state.account, address, peer=peer, where="MAIL FROM", message_id=None
                )
                return ERR_550_NOT_YOURS.format(
                    where="MAIL FROM", address=_shown(address), account=state.account
                )
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return OK_250_SENDER

    async def on_rcpt(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        """RCPT TO: only addresses of a kind, cmd@, a reply token or a known person."""
        problem = address_problem(address)
        if problem:
            return ERR_553_ADDRESS.format(reason=problem)
        found = self.table.classify(address, await self.directory.get())
        if isinstance(found, Refusal) and found.status in ("5.1.1", "5.2.1"):
            # Perhaps the person was added or reinstated a moment ago.
            fresh = await self.directory.get(max_age=_DIRECTORY_RECHECK)
            found = self.table.classify(address, fresh)
        if isinstance(found, Refusal):
            log.info("%s: RCPT TO refused: %s", _peer_text(session.peer), _shown(found.reason))
            return _shown(str(found))
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return OK_250_RCPT

    async def on_data(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """End of DATA: check the header senders, store durably, and only then say 250."""
        try:
            return await self._data(_state(session), envelope)
        except Exception:
            # Never let an unexpected error become aiosmtpd's "500 Error: (…)" with internals;
            # the message was not stored, so a temporary failure is the truthful answer.
            log.exception("%s: DATA failed", _peer_text(session.peer))
            return ERR_451_INTERNAL

    async def check_password(self, session: Session, login: bytes, password: bytes) -> AuthResult:
        """AUTH: check credentials with the account policy, in a worker thread."""
        peer = _peer_text(session.peer)
        try:
            login_text, password_text = login.decode("utf-8"), password.decode("utf-8")
        except UnicodeDecodeError:
            return _auth_refused("the user name and password must be UTF-8")
        account = await self._account_for_login(login_text)
        result = await asyncio.to_thread(self._authenticate, account, password_text)
        if not result.ok:
            auth_log.warning("%s: AUTH as %r refused: %s", peer, _shown(account), result.reason)
            return _auth_refused(result.reason)
        auth_log.info("%s: AUTH as %s", peer, result.account)
        _state(session).account = result.account
        return AuthResult(success=True, auth_data=result.account, message=OK_235_AUTH)

    async def _data(self, state: GatewaySession, envelope: Envelope) -> str:
        data = envelope.original_content
        assert data is not None and envelope.mail_from is not None
        peer = _peer_text(state.peer)
        message_id = message_id_of(data)
        try:
            facts = parse_headers(data)
        except HeaderError as exc:
            log.info("%s: refused from %s: %s", message_id, peer, exc)
            return ERR_554_HEADERS.format(reason=_shown(str(exc)))
        if state.account is not None:
            account: str | None = state.account
            method = AUTH_SMTP
        elif self.relays.trusts(_peer_host(state.peer)):
            directory = await self.directory.get()
            account, method = relay_identity(
                facts.auth_results, facts.from_addresses, directory, self.config.domain
            )
        else:
            return ERR_530_AUTH
        if account is None:
            method = AUTH_NONE
        else:
            for address in facts.from_addresses:
                if not await self._belongs(address, account):
                    await self._impersonation(
                        account, address, peer=peer, where="From:", message_id=message_id
                    )
                    return ERR_550_NOT_YOURS.format(
                        where="From:", address=_shown(address), account=account
                    )
        mail_from = "" if envelope.mail_from == "<>" else envelope.mail_from
        # Content rules (issue 7; 第十一條, 第十四條, 第十七條, 第二十二條): refused before storing.
        # The version is taken first: should the file change meanwhile, the processor judges
        # the message again under the newer rules.
        rules_version = content_rules_version(self.config.rules_file)
        verdict = await check_message(
            self.ctx,
            data,
            rcpt_tos=envelope.rcpt_tos,
            sender_account=account,
            mail_from=mail_from,
            directory=await self.directory.get(),
        )
        if verdict is not None:
            return verdict.smtp_reply()
        try:
            inbound_id = await self.writer.store(
                data=data,
                mail_from=mail_from,
                rcpt_tos=envelope.rcpt_tos,
                sender_account=account,
                auth_method=method,
                peer=peer,
                content_rules=rules_version,
            )
        except StoreFailed as exc:
            log.error("%s: not accepted from %s: %s", message_id, peer, exc)
            return ERR_451_STORE.format(reason=_shown(str(exc)))
        if log.isEnabledFor(logging.INFO):
            self._log_accepted(message_id, inbound_id, account, mail_from, method, peer, envelope)
        return OK_250_STORED.format(id=inbound_id)

    def _log_accepted(
        self,
        message_id: str | None,
        inbound_id: int,
        account: str | None,
        mail_from: str,
        method: str,
        peer: str,
        envelope: Envelope,
    ) -> None:
        log.info(
            "%s: accepted as inbound #%d from %s (%s, %s) for %s, %d bytes",
            message_id,
            inbound_id,
            account or _shown(mail_from) or "<>",
            method,
            peer,
            ", ".join(_shown(r) for r in envelope.rcpt_tos),
            len(envelope.original_content or b""),
        )

    async def _belongs(self, address: str, account: str) -> bool:
        domain = self.config.domain
        if address_belongs(address, account, await self.directory.get(), domain):
            return True
        # The person's own mailbox may have been changed a moment ago; a refusal here is
        # recorded as impersonation, so it is decided on the directory as it is now.
        fresh = await self.directory.get(max_age=0.0)
        return address_belongs(address, account, fresh, domain)

    async def _account_for_login(self, login: str) -> str:
        # Mail clients often log in with the full address; either of a person's two
        # addresses names their account.
        login = login.strip()
        if "@" not in login:
            return login.lower()
        person = (await self.directory.get()).person_by_address(login, self.config.domain)
        return person.account if person else login.lower()

    def _authenticate(self, account: str, password: str) -> LoginResult:
        # The counters (failures, lockout, last login) are committed whatever the outcome.
        with self.ctx.sessions.begin() as session:
            return authenticate(
                session,
                account,
                password,
                now=self.ctx.clock(),
                policy=self.ctx.login_policy,
                verified=self.verified_passwords,
            )

    async def _impersonation(
        self, account: str, claimed: str, *, peer: str, where: str, message_id: str | None
    ) -> None:
        security_log.warning(
            "%s: %s claimed <%s> in %s from %s; refused (article 7)",
            message_id,
            account,
            _shown(claimed),
            where,
            peer,
        )
        detail = {"claimed": _shown(claimed), "peer": peer, "where": where}
        if message_id:
            detail["message_id"] = message_id
        try:
            await asyncio.to_thread(self._record, account, _shown(claimed)[:200], detail)
        except Exception:
            # The refusal stands even if the trail cannot be written; the log keeps it.
            security_log.exception(
                "%s: could not audit the impersonation by %s", message_id, account
            )

    def _record(self, actor: str, target: str, detail: dict[str, str]) -> None:
        with self.ctx.sessions.begin() as session:
            audit.record(
                session,
                at=self.ctx.clock(),
                actor=actor,
                action="impersonation",
                target=target,
                detail=detail,
            )


# --- The protocol ---------------------------------------------------------------------------------


class GatewaySMTP(SMTP):
    """aiosmtpd's SMTP with Yizhan's per-connection AUTH rule, explicit hooks and async AUTH."""

    # The prompts of AUTH LOGIN as most servers send them; some clients look for them.
    AuthLoginUsernameChallenge = "Username:"
    AuthLoginPasswordChallenge = "Password:"

    def __init__(
        self,
        gateway: Gateway,
        *,
        tls_context: ssl.SSLContext | None,
        gate: ConnectionGate,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        smtp = gateway.config.smtp
        super().__init__(
            gateway,
            data_size_limit=smtp.max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=smtp.hostname,
            ident=f"Yizhan {__version__} ESMTP",
            tls_context=tls_context,
            require_starttls=False,
            auth_required=False,
            auth_require_tls=True,
            loop=loop,
        )
        self.gateway = gateway
        self._gate = gate
        # Explicit registration (STYLE, "avoid 3"): aiosmtpd looked for handle_* names on the
        # handler and found none; these are the hooks, and tests check that each one runs.
        self._handle_hooks = gateway.hooks()

    def _create_session(self) -> Session:
        return GatewaySession(self.loop)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # aiosmtpd decides "AUTH only over TLS" per server; Yizhan decides per connection:
        # loopback clients may AUTH in clear text. A STARTTLS upgrade calls this again, with
        # the original transport set aside; the decision is made on the first call only.
        if self._original_transport is None:
            peer = transport.get_extra_info("peername")
            self._auth_require_tls = not auth_allowed(_peer_host(peer), tls=False)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self._gate.leave(self)
        super().connection_lost(error)

    async def handle_exception(self, error: Exception) -> str:
        """A failure in a command: log it, and answer without showing internals."""
        log.exception(
            "%s: SMTP session error", _peer_text(self.session.peer if self.session else None)
        )
        return ERR_451_INTERNAL

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """The path of MAIL FROM or RCPT TO and what follows it, as aiosmtpd reads them.

        aiosmtpd parses every path with the email package's header parser (and defines a class
        on each call); the usual ``<name@domain>`` is read here with one regular expression
        and gives the same result. Anything else (quoting, UTF-8, source routes, ``<>``) goes
        to aiosmtpd.
        """
        match = _PLAIN_PATH.match(arg)
        if match is None:
            return super()._getaddr(arg)
        rest = arg[match.end() :].lstrip()
        if rest.startswith("("):
            return super()._getaddr(arg)  # a comment after the path
        address = match["address"]
        if self.local_part_limit and address.index("@") > self.local_part_limit:
            return None, None
        return address, rest

    async def smtp_DATA(self, arg: str) -> None:
        """DATA, read in blocks (``daemon.smtp_data``) rather than aiosmtpd's line by line."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push(ERR_503_NO_RCPT)
            return
        if arg:
            await self.push(ERR_501_DATA)
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            data = await read_data(
                self._reader,
                size_limit=self.data_size_limit,
                line_limit=self.line_length_limit,
            )
        except asyncio.IncompleteReadError:
            # The client is gone; end the session as aiosmtpd does when it sees the EOF first.
            log.info(
                "%s: connection lost during DATA",
                _peer_text(self.session.peer if self.session else None),
            )
            raise asyncio.CancelledError() from None
        if isinstance(data, DataRefusal):
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            await self.push(data.value)
            return
        self.envelope.content = self.envelope.original_content = data
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push("250 OK" if status is MISSING else status)

    async def _first_response(self, args: list[str], prompt: str) -> bytes | None:
        """The client's first AUTH answer: the initial response, or asked for with ``prompt``.

        None when the client cancelled or sent bad base64 (already answered with 501).
        """
        if len(args) == 1:
            answer = await self.challenge_auth(prompt)
            return answer if isinstance(answer, bytes) else None
        try:
            return b64decode(args[1], validate=True)
        except binascii.Error:
            await self.push(ERR_501_BASE64)
            return None

    async def auth_PLAIN(self, _: SMTP, args: list[str]) -> AuthResult:
        """AUTH PLAIN (RFC 4616), with or without an initial response."""
        blob = await self._first_response(args, "")
        if blob is None:
            return AuthResult(success=False, handled=True)
        parts = blob.split(b"\x00")
        if len(parts) != 3:
            await self.push(ERR_501_PLAIN)
            return AuthResult(success=False, handled=True)
        assert self.session is not None
        return await self.gateway.check_password(self.session, parts[1], parts[2])

    async def auth_LOGIN(self, _: SMTP, args: list[str]) -> AuthResult:
        """AUTH LOGIN, with or without the user name on the command line."""
        login = await self._first_response(args, self.AuthLoginUsernameChallenge)
        if login is None:
            return AuthResult(success=False, handled=True)
        password = await self.challenge_auth(self.AuthLoginPasswordChallenge)
        if password is MISSING:
            return AuthResult(success=False, handled=True)
        assert isinstance(login, bytes) and isinstance(password, bytes)
        assert self.session is not None
        return await self.gateway.check_password(self.session, login, password)


class _Busy(asyncio.Protocol):
    """Answers a connection over the limit with 421 and closes it."""

    def __init__(self, hostname: str) -> None:
        self.reply = (ERR_421_BUSY.format(host=hostname) + "\r\n").encode("ascii", "replace")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(self.reply)
        transport.close()


class ConnectionGate:
    """Counts live SMTP connections against ``smtp.max_connections``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        # Weak, so that a protocol asyncio drops without connection_lost is not counted forever.
        self._live: weakref.WeakSet[GatewaySMTP] = weakref.WeakSet()

    def full(self) -> bool:
        """Whether a new connection must be refused."""
        return len(self._live) >= self.limit

    def enter(self, protocol: GatewaySMTP) -> None:
        """Count a new connection."""
        self._live.add(protocol)

    def leave(self, protocol: GatewaySMTP) -> None:
        """Forget a closed connection."""
        self._live.discard(protocol)

    def close_all(self) -> None:
        """Close every live connection (at shutdown)."""
        for protocol in list(self._live):
            if protocol.transport is not None:
                protocol.transport.close()


# --- The server -----------------------------------------------------------------------------------


@dataclass(kw_only=True)
class SmtpServer:
    """A running listener: the bound port, and how to stop it."""

    server: asyncio.Server
    port: int
    gateway: Gateway
    gate: ConnectionGate

    def close(self) -> None:
        """Stop listening and close the open connections; unacknowledged mail is not kept."""
        self.server.close()
        self.gate.close_all()

    async def wait_closed(self) -> None:
        """Wait until the listener is closed and every message being stored is committed."""
        await self.server.wait_closed()
        await self.gateway.writer.drain()


async def start_smtp(ctx: Context, writer: InboundWriter) -> SmtpServer:
    """Listen on ``smtp.listen`` (port 0: any free port, see ``.port``) and serve the gateway.

    STARTTLS is offered when the configured certificate and key exist.
    """
    config = ctx.config.smtp
    loop = asyncio.get_running_loop()
    tls_context: ssl.SSLContext | None = None
    if config.tls_cert and config.tls_key and config.tls_cert.exists() and config.tls_key.exists():
        tls_context = server_context(config.tls_cert, config.tls_key)
    else:
        log.warning("no TLS certificate: STARTTLS is off, so only loopback clients can AUTH")
    directory = DirectoryCache(ctx)
    await directory.get()
    gateway = Gateway(
        ctx, writer, directory=directory, relays=TrustedRelays.parse(config.trusted_relays)
    )
    gate = ConnectionGate(config.max_connections)

    def factory() -> asyncio.BaseProtocol:
        if gate.full():
            log.warning("connection refused: %d connections already open", gate.limit)
            return _Busy(config.hostname)
        protocol = GatewaySMTP(gateway, tls_context=tls_context, gate=gate, loop=loop)
        gate.enter(protocol)
        return protocol

    server = await loop.create_server(factory, host=config.listen.host, port=config.listen.port)
    port = server.sockets[0].getsockname()[1]
    log.info(
        "listening on %s:%d (TLS %s)", config.listen.host, port, "on" if tls_context else "off"
    )
    return SmtpServer(server=server, port=port, gateway=gateway, gate=gate)


# --- Shared state ---------------------------------------------------------------------------------


class DirectoryCache:
    """The organisation directory, reloaded from the database at most every few seconds.

    A reload runs in a worker thread; concurrent lookups share it. If a reload fails, the
    previous directory is kept and the failure logged.
    """

    def __init__(
        self,
        ctx: Context,
        *,
        max_age: float = DIRECTORY_MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = ctx.sessions
        self.max_age = max_age
        self._clock = clock
        self._directory: Directory | None = None
        self._loaded_at = 0.0
        self._loading: asyncio.Future[Directory] | None = None

    async def get(self, *, max_age: float | None = None) -> Directory:
        """The directory, no older than ``max_age`` seconds (default: the cache's)."""
        limit = self.max_age if max_age is None else max_age
        if self._directory is not None and self._clock() - self._loaded_at < limit:
            return self._directory
        if self._loading is None:
            self._loading = asyncio.ensure_future(self._reload())
        return await asyncio.shield(self._loading)

    async def _reload(self) -> Directory:
        started = self._clock()
        try:
            directory = await asyncio.to_thread(self._read)
        except Exception:
            if self._directory is None:
                raise
            log.exception("reloading the directory failed; using the one loaded before")
            return self._directory
        finally:
            self._loading = None
        self._directory, self._loaded_at = directory, started
        return directory

    def _read(self) -> Directory:
        with self._sessions() as session:
            return load_directory(session)


@dataclass(frozen=True)
class TrustedRelays:
    """The networks of the organisation's MTA (``smtp.trusted_relays``)."""

    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> TrustedRelays:
        """Read addresses or networks (``10.0.0.5``, ``10.0.0.0/24``, ``::1``)."""
        networks = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError as exc:
                raise ConfigError(
                    "smtp.trusted_relays", f"{entry!r} is not an IP address or network"
                ) from exc
        return cls(tuple(networks))

    def trusts(self, host: str) -> bool:
        """Whether a peer address is one of the trusted relays."""
        if not self.networks:
            return False
        address = _ip(host)
        return address is not None and any(address in network for network in self.networks)


# --- Pure decisions -------------------------------------------------------------------------------


class HeaderError(ValueError):
    """The header section cannot be used; the message says why, for the SMTP reply."""


@dataclass(frozen=True, kw_only=True)
class HeaderFacts:
    """What the gateway needs from the header section."""

    from_addresses: tuple[str, ...]
    #: Authentication-Results values, topmost (added last, by the nearest MTA) first.
    auth_results: tuple[str, ...]


def auth_allowed(peer_host: str, *, tls: bool) -> bool:
    """Whether AUTH may be offered: over TLS, or in clear text to a loopback peer only."""
    if tls:
        return True
    address = _ip(peer_host)
    return address is not None and address.is_loopback


def address_problem(address: str) -> str | None:
    """Why an envelope address cannot be taken (it could not be stored or echoed), or None."""
    bad = _BAD_ADDRESS_CHAR.search(address)
    if bad is not None:
        if "\ud800" <= bad.group() <= "\udfff":
            return "it is not UTF-8 (RFC 6531)"
        return "it contains control characters"
    if _ADDRESS_SHAPE.match(address) is None:
        return f"<{address}> needs a local part, an @ and a domain"
    return None


def address_belongs(address: str, account: str, directory: Directory, domain: str) -> bool:
    """Whether ``address`` is one of the account's two addresses (case-insensitive)."""
    address = address.strip().lower()
    if address == f"{account}@{domain}".lower():
        return True
    person = directory.people.get(account)
    return person is not None and person.email is not None and address == person.email.lower()


def parse_headers(data: bytes) -> HeaderFacts:
    """Read the From addresses and Authentication-Results; raise HeaderError if impossible.

    Lenient about everything else: a broken MIME body, unknown charsets and 8-bit bytes in
    headers are left for the processor. Only the header section is read, as stored (compat32,
    no header objects; ``daemon.headers`` for plain ones): this runs for every message on the
    event loop, and the structured parse of policy.default costs five times as much. The From
    addresses are what a lenient parser finds plus every address-like token in the field, so
    that no quoting trick can hide an address from the check that they all belong to the
    sender.
    """
    plain = plain_header_section(data)
    if plain is not None:
        fields = plain[0]
    else:
        end = _HEADER_END.search(data)
        head = data[: end.end()] if end else data
        try:
            fields = list(_HEADER_PARSER.parsebytes(head).raw_items())
        except Exception as exc:
            raise HeaderError(
                f"the header section cannot be parsed ({exc.__class__.__name__})"
            ) from exc
    if not fields:
        raise HeaderError(
            "no header section found; a message starts with header lines such as From: and Subject:"
        )
    values = [_unfold(value) for name, value in fields if name.lower() == "from"]
    if not values:
        raise HeaderError("the message has no From: header (RFC 5322 section 3.6)")
    mailboxes = [plain_mailbox(value) for value in values]
    if all(mailboxes):
        found = dict.fromkeys(address for address in mailboxes if address)
    else:
        found = dict.fromkeys(address for _name, address in getaddresses(values) if address)
    for value in values:
        found.update(dict.fromkeys(_ADDRESS_TOKEN.findall(value)))
    addresses = tuple(
        dict.fromkeys(_unquote(_utf8(address)) for address in found if address != "<>")
    )
    if not addresses:
        raise HeaderError("the From: header holds no address")
    results = tuple(
        _unfold(value) for name, value in fields if name.lower() == "authentication-results"
    )
    return HeaderFacts(from_addresses=addresses, auth_results=results)


def parse_auth_results(value: str) -> list[tuple[str, str, dict[str, str]]]:
    """One Authentication-Results value as ``(method, result, {ptype.property: value})``.

    The authserv-id (before the first ";") is dropped; methods and results are lower-cased.
    """
    text = value
    while True:
        stripped = _AR_COMMENT.sub(" ", text)
        if stripped == text:
            break
        text = stripped
    found = []
    for resinfo in text.split(";")[1:]:
        match = _AR_RESULT.match(resinfo)
        if match is None:
            continue
        properties = {
            f"{p['ptype'].lower()}.{p['prop'].lower()}": p["quoted"] or p["value"] or ""
            for p in _AR_PROPERTY.finditer(resinfo, match.end())
        }
        found.append((match["method"].lower(), match["result"].lower(), properties))
    return found


def relay_identity(
    auth_results: Sequence[str],
    from_addresses: Sequence[str],
    directory: Directory,
    domain: str,
) -> tuple[str | None, str]:
    """The sender's account as the trusted MTA vouches for it, and how; (None, "none") if not.

    Only the topmost Authentication-Results counts: that is the one the trusted MTA added;
    any below it came with the message. ``auth=pass smtp.auth=<login>`` names the account
    (an account name or either of its addresses); failing that, ``dkim=pass`` with
    ``header.i`` (or ``header.d``) matching every From address names the From's owner.
    """
    if not auth_results:
        return None, AUTH_NONE
    results = parse_auth_results(auth_results[0])
    for method, result, props in results:
        if method == "auth" and result == "pass" and props.get("smtp.auth"):
            account = _person_for_login(props["smtp.auth"], directory, domain)
            if account is not None:
                return account, AUTH_RELAY
    for method, result, props in results:
        if method != "dkim" or result != "pass" or not from_addresses:
            continue
        identity = props.get("header.i") or ("@" + props["header.d"] if "header.d" in props else "")
        if not all(_dkim_covers(identity, address) for address in from_addresses):
            continue
        owners = {directory.person_by_address(a, domain) for a in from_addresses}
        if len(owners) == 1:
            owner = owners.pop()
            if owner is not None and owner.state == "active":
                return owner.account, AUTH_RELAY_DKIM
    return None, AUTH_NONE


def _dkim_covers(identity: str, address: str) -> bool:
    # "user@domain" vouches for that address; "@domain" for every address at that domain.
    identity, address = identity.strip().lower(), address.strip().lower()
    if not identity or "@" not in identity:
        return False
    if identity.startswith("@"):
        return address.rpartition("@")[2] == identity[1:]
    return address == identity


def _person_for_login(login: str, directory: Directory, domain: str) -> str | None:
    login = login.strip().lower()
    person = (
        directory.person_by_address(login, domain) if "@" in login else directory.people.get(login)
    )
    return person.account if person is not None and person.state == "active" else None


def _unfold(value: str) -> str:
    return " ".join(value.split())


def _unquote(address: str) -> str:
    # '"lijun"@oa.example' is lijun@oa.example; the check must see it as such.
    local, at, domain = address.rpartition("@")
    if at and len(local) >= 2 and local[0] == local[-1] == '"':
        local = _QUOTED_PAIR.sub(r"\g<char>", local[1:-1])
    return f"{local}{at}{domain}"


def _utf8(text: str) -> str:
    # The parser reads header bytes as ASCII and keeps the rest as lone surrogates; raw UTF-8
    # (RFC 6532, sent with SMTPUTF8) is turned back into the characters it stands for. Other
    # 8-bit bytes stay escaped, and such an address matches no one.
    try:
        return text.encode("utf-8", errors="surrogateescape").decode("utf-8")
    except UnicodeError:
        return text


def _state(session: Session) -> GatewaySession:
    assert isinstance(session, GatewaySession)
    return session


def _auth_refused(reason: str) -> AuthResult:
    return AuthResult(success=False, handled=False, message=ERR_535_AUTH.format(reason=reason))


def _peer_host(peer: Any) -> str:
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return str(peer or "")


def _peer_text(peer: Any) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = str(peer[0])
        return f"[{host}]:{peer[1]}" if ":" in host else f"{host}:{peer[1]}"
    return str(peer or "unknown")


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _shown(text: str) -> str:
    # Text echoed in a reply or a log must be encodable: aiosmtpd keeps undecodable bytes as
    # lone surrogates, which would make the reply itself fail.
    return text.encode("utf-8", errors="backslashreplace").decode("utf-8")
