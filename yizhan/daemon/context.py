"""What every part of a running Yizhan shares: config, database, raw store and clock."""

from __future__ import annotations

import datetime as dt
import functools
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from yizhan.daemon.config import Config
from yizhan.daemon.metrics import SIGNING_SECONDS, timed
from yizhan.daemon.rules_file import live_rules, load_content_rules
from yizhan.mailstore import outbox
from yizhan.mailstore.auditchain import key_from_secret
from yizhan.mailstore.db import SNAPSHOT, make_engine, make_sessionmaker
from yizhan.mailstore.models import OutboundMessage, Person
from yizhan.mailstore.rawstore import RawStore
from yizhan.routing.content import DEFAULT_CONTENT, ContentRulesError
from yizhan.routing.content.outside import organisation_domains, outside_addresses
from yizhan.routing.passwords import LoginPolicy
from yizhan.routing.rules import DEFAULT_RULES, Rules
from yizhan.signing.keyring import Keyring
from yizhan.signing.pgpmime import SignatureCache, sign_message_bytes


class MaterialWouldLeave(Exception):
    """Internal material was about to be queued for an address outside the organisation."""

    def __init__(self, addresses: Sequence[str]) -> None:
        super().__init__(
            "internal material may not leave the organisation (第十七條): " + ", ".join(addresses)
        )
        self.addresses = list(addresses)


def system_clock() -> dt.datetime:
    """Now, in UTC."""
    return dt.datetime.now(dt.UTC)


@dataclass(kw_only=True)
class Context:
    """The shared handles of one Yizhan process; built once, passed to each part."""

    config: Config
    engine: Engine
    sessions: sessionmaker[Session]
    raw: RawStore
    clock: Callable[[], dt.datetime] = field(default=system_clock)
    rules: Rules = DEFAULT_RULES

    @classmethod
    def open(cls, config: Config, *, clock: Callable[[], dt.datetime] = system_clock) -> Context:
        """Connect to the database named by the config; does not migrate."""
        engine = make_engine(config.database_url)
        raw = RawStore(config.data_dir / "mail")
        return cls(
            config=config,
            engine=engine,
            sessions=make_sessionmaker(engine, audit_key=key_from_secret(config.secret)),
            raw=raw,
            clock=clock,
            rules=live_rules(config),
        )

    def reading(self) -> Session:
        """A session that only reads, in one snapshot: on SQLite it begins without the write
        lock, so it never waits for a writer's transaction (the processor's, a job's)."""
        return self.sessions(bind=self.engine.execution_options(**{SNAPSHOT: True}))

    @property
    def audit_key(self) -> bytes | None:
        """The key of the audit hash chain, from ``yizhan.secret`` (no database row holds it)."""
        return key_from_secret(self.config.secret)

    @functools.cached_property
    def instance(self) -> str:
        """This daemon's name as a lease owner: stable across its restarts, unique per host.

        Several daemons may share one data directory (docs/operations.md); their SMTP
        listeners tell them apart, so that one taking back its own leases after a crash never
        takes another's that is still at work.
        """
        listen = self.config.smtp.listen
        return (
            f"{socket.gethostname()}:{self.config.data_dir.resolve()}:{listen.host}:{listen.port}"
        )

    @functools.cached_property
    def keyring(self) -> Keyring:
        """Yizhan's GnuPG home, opened on first use (``yizhan check`` never creates it)."""
        return Keyring(self.config.signing.gnupg_home, clock=self.clock)

    @functools.cached_property
    def signatures(self) -> SignatureCache:
        """Signatures of identical content made once, whatever the number of recipients."""
        return SignatureCache()

    def sign(self, mail: EmailMessage) -> bytes:
        """``mail`` PGP/MIME-signed by the system key (RFC 3156), as the bytes to queue."""
        with timed(SIGNING_SECONDS):
            return sign_message_bytes(
                mail, self.keyring, [self.keyring.system_signer()], cache=self.signatures
            )

    def queue(
        self,
        session: Session,
        *,
        source: str,
        message: EmailMessage | bytes,
        rcpts: Sequence[str],
        mail_from: str | None = None,
        document_id: int | None = None,
        now: dt.datetime | None = None,
        body_id: int | None = None,
        material: bool = False,
    ) -> OutboundMessage:
        """Put mail on the outbound queue in the caller's transaction (idempotent on ``source``).

        Yizhan's own mail comes from ``cmd@`` unless ``mail_from`` says otherwise; it is retried
        for the configured ``relay.retry_days``. Mail that carries internal material, a manual
        or a tool (``material``) never goes to an address outside the organisation (第十七條):
        :class:`MaterialWouldLeave` is raised, whichever module asks, so the caller's
        transaction queues nothing. The caller says so; headers are not read, since a sender
        could write them into a mail that Yizhan only passes on.
        """
        if material:
            outside = self.outside_organisation(session, rcpts)
            if outside:
                raise MaterialWouldLeave(outside)
        return outbox.enqueue(
            session,
            source=source,
            message=message,
            mail_from=f"cmd@{self.config.domain}" if mail_from is None else mail_from,
            rcpts=rcpts,
            now=self.clock() if now is None else now,
            expires_after=dt.timedelta(days=self.config.relay.retry_days),
            domain=self.config.domain,
            document_id=document_id,
            body_id=body_id,
        )

    def queue_many(
        self, session: Session, batch: Sequence[outbox.Outgoing], *, now: dt.datetime
    ) -> int:
        """Put a batch of heads around stored bodies on the outbound queue in the caller's
        transaction, each from ``cmd@`` to its one recipient (a distribution's copies); the
        number newly queued. Idempotent on each ``source``, as :meth:`queue`."""
        return outbox.enqueue_many(
            session,
            batch,
            mail_from=f"cmd@{self.config.domain}",
            now=now,
            expires_after=dt.timedelta(days=self.config.relay.retry_days),
            domain=self.config.domain,
        )

    def organisation_domains(self, mailboxes: Iterable[str]) -> frozenset[str]:
        """The organisation's mail domains (第十七條): ``[content.materials] domains`` with the
        OA domain, else the domains of ``mailboxes`` that are not public mail services."""
        try:
            configured = load_content_rules(self.config.rules_file).materials.domains
        except ContentRulesError:
            # The gateway reports a broken rules file; the built-in list still applies here.
            configured = DEFAULT_CONTENT.materials.domains
        return organisation_domains(configured, self.config.domain, mailboxes)

    def outside_organisation(self, session: Session, addresses: Sequence[str]) -> list[str]:
        """Those of ``addresses`` outside the organisation's mail domains (第十七條)."""
        mailboxes = session.scalars(select(Person.email).where(Person.email.is_not(None)))
        domains = self.organisation_domains(m for m in mailboxes if m)
        return outside_addresses(addresses, domains)

    @property
    def login_policy(self) -> LoginPolicy:
        """The account policy from the config."""
        a = self.config.accounts
        return LoginPolicy(
            min_length=a.min_password_length,
            max_failed=a.max_failed_logins,
            lockout=dt.timedelta(minutes=a.lockout_minutes),
            max_age=dt.timedelta(days=a.password_max_age_days),
        )

    def close(self) -> None:
        """Release database connections and the keyring's agent."""
        if "keyring" in self.__dict__:
            self.keyring.close()
        self.engine.dispose()
