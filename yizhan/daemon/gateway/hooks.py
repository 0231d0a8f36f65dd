"""The SMTP gateway: decides at each SMTP step whether Yizhan takes a message, then stores it.

Staff submit with AUTH (only after STARTTLS, or from loopback); the organisation's MTA, listed in
``smtp.trusted_relays``, hands over mail without AUTH and vouches for the sender in its
Authentication-Results header. Recipients are checked at RCPT (``routing.addresses``), where a
sender who keeps replying to r+ addresses Yizhan never gave is stopped (``routing.guessing``); the
envelope and header senders must belong to the authenticated account, and acting in another
person's name is refused and written to the audit trail (第七條). A message gets 250 only when
:class:`~yizhan.mailstore.inbound.InboundWriter` has its bytes and its envelope on disk, in the
incoming spool (``mailstore/spool.py``) that the pickup makes rows of (``daemon/pickup.py``).

The hooks stay thin: every reply is a constant below, blocking work (argon2, the
database) runs in worker threads, and the decisions that need no I/O are pure functions at the
bottom of this module. aiosmtpd finds hooks by name; here they are registered explicitly
(:meth:`Gateway.hooks`) and the handler has no ``handle_*`` or ``auth_*`` names to be found.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session
from sqlalchemy.orm import Session as OrmSession

from yizhan.daemon.config import Config
from yizhan.daemon.context import Context
from yizhan.daemon.gateway.directory_cache import DIRECTORY_RECHECK, DirectoryCache
from yizhan.daemon.gateway.login_header import LOGIN_HEADER, strip_field, unseal
from yizhan.daemon.gateway.peers import peer_host, peer_text, shown
from yizhan.daemon.gateway.replies import (
    ERR_450_GUESSING,
    ERR_451_INTERNAL,
    ERR_451_STORE,
    ERR_452_RECIPIENTS,
    ERR_530_AUTH,
    ERR_535_AUTH,
    ERR_550_LOGIN,
    ERR_550_NOT_YOUR_NAME,
    ERR_550_NOT_YOURS,
    ERR_550_NULL_SENDER,
    ERR_553_ADDRESS,
    ERR_554_HEADERS,
    OK_235_AUTH,
    OK_250_QUEUED,
    OK_250_RCPT,
    OK_250_RCPT_AGAIN,
    OK_250_SENDER,
)
from yizhan.daemon.gateway.senders import (
    AUTH_NONE,
    AUTH_RELAY,
    AUTH_SMTP,
    HeaderError,
    HeaderFacts,
    TrustedRelays,
    address_belongs,
    address_problem,
    name_of_another,
    parse_headers,
    relay_identity,
)
from yizhan.daemon.jobs.it_notices import alert_now
from yizhan.daemon.metrics import CONTENT_REFUSED, counted
from yizhan.daemon.rules_file import content_rules_version
from yizhan.daemon.screening.check import check_message
from yizhan.mailstore import audit
from yizhan.mailstore.accounts import (
    LoginResult,
    VerifiedPasswords,
    authenticate,
    vouched_login,
)
from yizhan.mailstore.db import SNAPSHOT
from yizhan.mailstore.inbound import InboundWriter, StoreFailed, message_id_of
from yizhan.mailstore.reply_guesses import Lock, count_guess
from yizhan.mailstore.reply_guesses import locked as guess_locked
from yizhan.routing.addresses import AddressTable, Refusal
from yizhan.routing.guessing import guess_keys
from yizhan.routing.passwords import failure_delay
from yizhan.routing.tokens import read_token

log = logging.getLogger("yizhan.smtp")
auth_log = logging.getLogger("yizhan.smtp.auth")
security_log = logging.getLogger("yizhan.security")


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
        on_queued: Callable[[], None] = lambda: None,
    ) -> None:
        self.ctx = ctx
        self.on_queued = on_queued
        self.config: Config = ctx.config
        self.writer = writer
        self.directory = directory
        self.relays = relays
        self.table = AddressTable(ctx.config.domain, ctx.config.addresses)
        self.verified_passwords = VerifiedPasswords()

    def hooks(self) -> dict[str, Hook]:
        """The aiosmtpd hooks by command; the only ones the gateway has."""
        # Each answer is counted for /metrics (accepted, or refused by stage and code).
        return {
            "MAIL": counted("MAIL", self.on_mail),
            "RCPT": counted("RCPT", self.on_rcpt),
            "DATA": counted("DATA", self.on_data),
        }

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
        peer = peer_text(session.peer)
        trusted = self.relays.trusts(peer_host(session.peer))
        if state.account is None and not trusted:
            log.info("%s: MAIL FROM <%s> refused: not authenticated", peer, shown(address))
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
                    where="MAIL FROM", address=shown(address), account=state.account
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
            fresh = await self.directory.get(max_age=DIRECTORY_RECHECK)
            found = self.table.classify(address, fresh)
        if isinstance(found, Refusal):
            log.info("%s: RCPT TO refused: %s", peer_text(session.peer), shown(found.reason))
            return shown(str(found))
        folded = address.casefold()
        if any(r.casefold() == folded for r in envelope.rcpt_tos):
            # The same RCPT 300 times would put 300 copies in one mailbox (issue 17).
            return OK_250_RCPT_AGAIN
        if len(envelope.rcpt_tos) >= self.config.smtp.max_recipients:
            return ERR_452_RECIPIENTS.format(limit=self.config.smtp.max_recipients)
        if found.kind == "reply":
            refused = await self._guarded_reply(_state(session), envelope, found.token or "")
            if refused is not None:
                return refused
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return OK_250_RCPT

    async def _guarded_reply(
        self, state: GatewaySession, envelope: Envelope, token: str
    ) -> str | None:
        """An ``r+`` recipient: refused while its sender is locked out for guessing tokens,
        and the token counted when it fails its HMAC (``routing.guessing``); None: accepted."""
        client = peer_host(state.peer)
        keys = guess_keys(
            client=client,
            account=state.account,
            envelope_sender=envelope.mail_from,
            relayed=state.account is None,
        )
        genuine = read_token(self.config.secret, token) is not None
        actor = state.account or shown(envelope.mail_from or "")[:64] or client
        try:
            lock, queued = await asyncio.to_thread(
                self._count_guess, keys, genuine, actor, {"client": client, "token": token[:64]}
            )
        except Exception:
            # The database away or a race on a counter: the client tries this RCPT again.
            log.exception("%s: could not check the r+ recipient", peer_text(state.peer))
            return ERR_451_INTERNAL
        if queued:
            self.on_queued()
        if lock is None:
            return None
        security_log.warning(
            "%s: r+ recipients refused until %s (guessed reply tokens; account %s)",
            peer_text(state.peer),
            lock.until.isoformat(timespec="minutes"),
            state.account or shown(envelope.mail_from or ""),
        )
        return ERR_450_GUESSING.format(until=lock.until.strftime("%Y-%m-%d %H:%M"))

    def _count_guess(
        self, keys: list[tuple[str, str]], genuine: bool, actor: str, detail: dict[str, object]
    ) -> tuple[Lock | None, int]:
        if genuine:
            # Every reply a person sends passes here: a lock is only read, without the
            # database's write lock, which on SQLite waits behind the processor (issue 16).
            with (
                self.ctx.engine.connect().execution_options(**{SNAPSHOT: True}) as connection,
                OrmSession(connection) as reading,
            ):
                return guess_locked(reading, keys, self.ctx.clock()), 0
        # One transaction: the lock looked up, the guess counted, a new lock audited and told
        # to the IT department (at most one mail an hour of the kind, 第七條).
        with self.ctx.sessions.begin() as session:
            now = self.ctx.clock()
            lock = guess_locked(session, keys, now)
            if lock is not None:
                return lock, 0
            lock = count_guess(
                session,
                keys,
                now,
                limit=self.config.smtp.reply_guess_limit,
                actor=actor,
                detail=detail,
            )
            if lock is None or lock.entry is None:
                return lock, 0
            session.flush()
            return lock, alert_now(self.ctx, session, "guessing", now)

    async def on_data(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """End of DATA: check the header senders, store durably, and only then say 250."""
        try:
            return await self._data(_state(session), envelope)
        except Exception:
            # Never let an unexpected error become aiosmtpd's "500 Error: (…)" with internals;
            # the message was not stored, so a temporary failure is the truthful answer.
            log.exception("%s: DATA failed", peer_text(session.peer))
            return ERR_451_INTERNAL

    async def check_password(self, session: Session, login: bytes, password: bytes) -> AuthResult:
        """AUTH: check credentials with the account policy, in a worker thread."""
        peer = peer_text(session.peer)
        try:
            login_text, password_text = login.decode("utf-8"), password.decode("utf-8")
        except UnicodeDecodeError:
            return _auth_refused("the user name and password must be UTF-8")
        account = await self._account_for_login(login_text)
        client = peer_host(session.peer)
        result = await asyncio.to_thread(self._authenticate, account, password_text, client)
        if not result.ok:
            auth_log.warning("%s: AUTH as %r refused: %s", peer, shown(account), result.reason)
            # Guessing is slowed at its address; other clients are not (第十六條).
            await asyncio.sleep(failure_delay(result.failed))
            return _auth_refused(result.reason)
        auth_log.info("%s: AUTH as %s", peer, result.account)
        _state(session).account = result.account
        return AuthResult(success=True, auth_data=result.account, message=OK_235_AUTH)

    async def _data(self, state: GatewaySession, envelope: Envelope) -> str:
        data = envelope.original_content
        assert data is not None and envelope.mail_from is not None
        peer = peer_text(state.peer)
        message_id = message_id_of(data)
        try:
            facts = parse_headers(data)
        except HeaderError as exc:
            log.info("%s: refused from %s: %s", message_id, peer, exc)
            return ERR_554_HEADERS.format(reason=shown(str(exc)))
        if state.account is not None:
            account: str | None = state.account
            method = AUTH_SMTP
        elif self.relays.trusts(peer_host(state.peer)):
            account, method = await self._relayed_identity(facts)
            if account is not None and method == AUTH_RELAY:
                # The MTA checked the password; the account policy is still Yizhan's.
                result = await asyncio.to_thread(self._vouch, account)
                if not result.ok:
                    auth_log.warning(
                        "%s: relayed login %s refused: %s", message_id, account, result.reason
                    )
                    return ERR_550_LOGIN.format(account=account, reason=result.reason)
        else:
            return ERR_530_AUTH
        # Only the copy the policy service sealed counts, and it is spent: none is stored.
        data = strip_field(data, LOGIN_HEADER)
        if account is None:
            method = AUTH_NONE
        else:
            claimed = [("From:", a) for a in facts.from_addresses]
            claimed += [("Sender:", a) for a in facts.sender_addresses]
            for where, address in claimed:
                if not await self._belongs(address, account):
                    await self._impersonation(
                        account, address, peer=peer, where=where, message_id=message_id
                    )
                    return ERR_550_NOT_YOURS.format(
                        where=where, address=shown(address), account=account
                    )
            other = name_of_another(facts.from_names, account, await self.directory.get())
            if other is not None:
                await self._impersonation(
                    account, other, peer=peer, where="From: name", message_id=message_id
                )
                return ERR_550_NOT_YOUR_NAME.format(other=other, account=account)
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
            CONTENT_REFUSED.labels(rule=verdict.rule).inc()
            # The refusal queued its answer and, for some rules, IT's notice: send them now.
            self.on_queued()
            return verdict.smtp_reply()
        try:
            key = await self.writer.accept(
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
            return ERR_451_STORE.format(reason=shown(str(exc)))
        if log.isEnabledFor(logging.INFO):
            self._log_accepted(message_id, key, account, mail_from, method, peer, envelope)
        return OK_250_QUEUED.format(key=key)

    def _log_accepted(
        self,
        message_id: str | None,
        key: str,
        account: str | None,
        mail_from: str,
        method: str,
        peer: str,
        envelope: Envelope,
    ) -> None:
        log.info(
            "%s: accepted as %s from %s (%s, %s) for %s, %d bytes",
            message_id,
            key,
            account or shown(mail_from) or "<>",
            method,
            peer,
            ", ".join(shown(r) for r in envelope.rcpt_tos),
            len(envelope.original_content or b""),
        )

    async def _relayed_identity(self, facts: HeaderFacts) -> tuple[str | None, str]:
        # The login sealed by Yizhan's policy service first (gateway.login_header), then the
        # MTA's Authentication-Results.
        directory = await self.directory.get()
        login = unseal(self.config.secret, facts.login_header, facts.first_received)
        if login is not None:
            account = await self._account_for_login(login)
            if account in directory.people:
                return account, AUTH_RELAY
        return relay_identity(
            facts.auth_results, facts.from_addresses, directory, self.config.domain
        )

    def _vouch(self, account: str) -> LoginResult:
        with self.ctx.sessions.begin() as session:
            return vouched_login(
                session, account, now=self.ctx.clock(), policy=self.ctx.login_policy
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

    def _authenticate(self, account: str, password: str, client: str) -> LoginResult:
        # The counters (failures, lockout, last login) are committed whatever the outcome.
        with self.ctx.sessions.begin() as session:
            return authenticate(
                session,
                account,
                password,
                now=self.ctx.clock(),
                policy=self.ctx.login_policy,
                verified=self.verified_passwords,
                client=client,
            )

    async def _impersonation(
        self, account: str, claimed: str, *, peer: str, where: str, message_id: str | None
    ) -> None:
        security_log.warning(
            "%s: %s claimed <%s> in %s from %s; refused (article 7)",
            message_id,
            account,
            shown(claimed),
            where,
            peer,
        )
        detail = {"claimed": shown(claimed), "peer": peer, "where": where}
        if message_id:
            detail["message_id"] = message_id
        try:
            queued = await asyncio.to_thread(self._record, account, shown(claimed)[:200], detail)
            if queued:
                self.on_queued()
        except Exception:
            # The refusal stands even if the trail cannot be written; the log keeps it.
            security_log.exception(
                "%s: could not audit the impersonation by %s", message_id, account
            )

    def _record(self, actor: str, target: str, detail: dict[str, str]) -> int:
        """Audit the impersonation and tell IT at once, at most hourly (第七條); the mails
        queued."""
        with self.ctx.sessions.begin() as session:
            now = self.ctx.clock()
            audit.record(
                session,
                at=now,
                actor=actor,
                action="impersonation",
                target=target,
                detail=detail,
            )
            session.flush()
            return alert_now(self.ctx, session, "impersonation", now)


def _state(session: Session) -> GatewaySession:
    assert isinstance(session, GatewaySession)
    return session


def _auth_refused(reason: str) -> AuthResult:
    return AuthResult(success=False, handled=False, message=ERR_535_AUTH.format(reason=reason))
