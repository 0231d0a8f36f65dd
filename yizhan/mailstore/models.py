"""The database schema: every table Yizhan keeps, as SQLAlchemy 2 declarative models.

The database is the authority on state; message headers only mirror it. Alembic migrations in
``mailstore/migrations`` create exactly these tables; a test checks the two agree.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    true,
)
from sqlalchemy import (
    text as sql_text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Named constraints so that Alembic migrations are identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite's INTEGER PRIMARY KEY is the rowid only when spelled INTEGER, not BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC timestamp on both SQLite and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC)

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        # SQLite returns naive values; they were stored as UTC.
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base with the shared naming convention."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dt.datetime: UtcDateTime, dict[str, Any]: JSON}


class Unit(Base):
    """A unit of the organisation: the bureau, its office, departments and branches."""

    __tablename__ = "units"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("units.id"), default=None)
    prefix: Mapped[str | None] = mapped_column(String(50), default=None)
    leader: Mapped[str | None] = mapped_column(String(64), default=None)


class Person(Base):
    """A member of staff, known by their account name."""

    __tablename__ = "people"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    unit_id: Mapped[str] = mapped_column(ForeignKey("units.id"), index=True)
    email: Mapped[str | None] = mapped_column(String(320), default=None, index=True)
    language: Mapped[str | None] = mapped_column(String(10), default=None)
    roles: Mapped[list[Role]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="Role.role"
    )


class Role(Base):
    """One role a person holds in their unit (staff, clerk, unit_head …)."""

    __tablename__ = "roles"

    account: Mapped[str] = mapped_column(ForeignKey("people.account"), primary_key=True)
    role: Mapped[str] = mapped_column(String(30), primary_key=True)


class DirectoryVersion(Base):
    """One row: raised by every change of units, people, roles or account states, so that a
    process may keep the directory it read until the number moves (mailstore/directory.py)."""

    __tablename__ = "directory_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


class Account(Base):
    """A person's login: password hash, state and the counters of the login policy."""

    __tablename__ = "accounts"

    account: Mapped[str] = mapped_column(ForeignKey("people.account"), primary_key=True)
    state: Mapped[str] = mapped_column(String(12), default="active")
    password_hash: Mapped[str | None] = mapped_column(String(200), default=None)
    password_temporary: Mapped[bool] = mapped_column(Boolean, default=True)
    password_changed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(default=None)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    created_at: Mapped[dt.datetime]


class LoginFailure(Base):
    """Failed logins in a row from one client address: to one account, or to any (``*``).
    A lock here stops the guesser at that address, not the account's owner (issue 17). Rows
    whose account starts ``r+`` count guessed reply tokens instead (``mailstore.reply_guesses``)."""

    __tablename__ = "login_failures"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    client: Mapped[str] = mapped_column(String(64), primary_key=True)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    locks: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(default=None)
    last_at: Mapped[dt.datetime]


class Inbound(Base):
    """A message accepted by the SMTP listener: its raw bytes live in the raw store."""

    __tablename__ = "inbound"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    received_at: Mapped[dt.datetime]
    path: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    message_id: Mapped[str | None] = mapped_column(String(998), default=None)
    mail_from: Mapped[str] = mapped_column(String(320))
    rcpt_tos: Mapped[list[str]] = mapped_column(JSON)
    sender_account: Mapped[str | None] = mapped_column(String(64), default=None)
    auth_method: Mapped[str] = mapped_column(String(20))
    peer: Mapped[str] = mapped_column(String(100))
    # accepted → processed, or quarantined / failed with a reason.
    state: Mapped[str] = mapped_column(String(12), default="accepted")
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[dt.datetime | None] = mapped_column(default=None)
    # Which daemon holds the lease, so that it takes its own leases back after a crash.
    lease_owner: Mapped[str | None] = mapped_column(String(200), default=None)
    processed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    # The version of the content rules the gateway judged the message by; the processor
    # judges it again when the rules have changed since (issue 7: refused after acceptance).
    content_rules: Mapped[str | None] = mapped_column(String(64), default=None)

    __table_args__ = (
        Index("ix_inbound_state_id", "state", "id"),
        # The pickup's key: one row a raw file (mailstore/spool.py).
        Index("ix_inbound_path", "path", unique=True),
    )


class OutboundBody(Base):
    """A message body that several queued messages share: a sealed document version is signed
    once for all its recipients (issue 4) and stored once; each message keeps its own head."""

    __tablename__ = "outbound_bodies"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime]


class OutboundMessage(Base):
    """One message to send (one body, one Message-ID), written in the same transaction as
    the decision that caused it; ``source`` makes writing it a second time a no-op."""

    __tablename__ = "outbound_messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(200), unique=True)
    message_id: Mapped[str] = mapped_column(String(998))
    mail_from: Mapped[str] = mapped_column(String(320))
    # The whole message; or, with ``body_id``, its header block, the body being shared.
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime]
    document_id: Mapped[int | None] = mapped_column(BigId, default=None)
    body_id: Mapped[int | None] = mapped_column(ForeignKey("outbound_bodies.id"), default=None)
    body: Mapped[OutboundBody | None] = relationship()
    deliveries: Mapped[list[Delivery]] = relationship(back_populates="message")

    @property
    def message_bytes(self) -> bytes:
        """The message as it goes on the wire: its head and the shared body, or its data."""
        return self.data + self.body.data if self.body is not None else self.data


class Delivery(Base):
    """One recipient of an outbound message and where its delivery stands."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_pk: Mapped[int] = mapped_column(ForeignKey("outbound_messages.id"))
    rcpt: Mapped[str] = mapped_column(String(320))
    # queued → sent, or bounced (a DSN went to the sender) / failed (no DSN possible).
    state: Mapped[str] = mapped_column(String(10), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    lease_until: Mapped[dt.datetime | None] = mapped_column(default=None)
    lease_owner: Mapped[str | None] = mapped_column(String(200), default=None)
    sent_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    message: Mapped[OutboundMessage] = relationship(back_populates="deliveries")

    __table_args__ = (
        Index("ix_deliveries_state_next", "state", "next_attempt_at"),
        UniqueConstraint("message_pk", "rcpt", name="uq_deliveries_message_rcpt"),
    )


class Document(Base):
    """An official document or request moving through a workflow."""

    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    title: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(30))
    number: Mapped[str | None] = mapped_column(String(100), default=None, unique=True)
    urgency: Mapped[str | None] = mapped_column(String(10), default=None)
    author: Mapped[str] = mapped_column(ForeignKey("people.account"))
    unit_id: Mapped[str] = mapped_column(ForeignKey("units.id"))
    version: Mapped[int] = mapped_column(Integer, default=1)
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source_inbound: Mapped[int | None] = mapped_column(BigId, default=None)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]

    # The admin page lists a unit's and an author's documents newest first, and counts
    # documents per day.
    __table_args__ = (
        Index("ix_documents_unit_id_id", "unit_id", "id"),
        Index("ix_documents_author_id", "author", "id"),
        Index("ix_documents_created_at", "created_at"),
    )


class Step(Base):
    """One person's part in a document's workflow, with its deadline."""

    __tablename__ = "steps"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), index=True)
    name: Mapped[str] = mapped_column(String(40))
    assignee: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(12))
    # The unit a per-unit step (receive, handle, countersign) is for.
    unit: Mapped[str | None] = mapped_column(String(64), default=None)
    # waiting → done, or cancelled.
    state: Mapped[str] = mapped_column(String(12), default="waiting")
    due_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    created_at: Mapped[dt.datetime]
    done_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    done_by: Mapped[str | None] = mapped_column(String(64), default=None)
    on_behalf_of: Mapped[str | None] = mapped_column(String(64), default=None)
    outcome: Mapped[str | None] = mapped_column(Text, default=None)
    # When the reminder sweep next looks at this step; None once it is done or cancelled, so
    # the sweep's index holds only open steps and a sweep reads only what is due.
    next_reminder_at: Mapped[dt.datetime | None] = mapped_column(default=None, index=True)
    # Reminders sent so far, and the highest escalation reached (0 the person, 1 their unit's
    # clerk, 2 their unit head, 3 the office: ``routing.reminders.Audience``); server defaults
    # so that the migration fills existing rows.
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    escalation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = (
        Index("ix_steps_state_due", "state", "due_at"),
        # Who acted on what (a document's visibility, the admin page's lists).
        Index("ix_steps_done_by", "done_by"),
        # Only the steps someone did for another (most have none): ANALYZE counts the NULLs,
        # and with them SQLite judged the whole index useless and read every step instead.
        Index(
            "ix_steps_on_behalf_of",
            "on_behalf_of",
            sqlite_where=sql_text("on_behalf_of IS NOT NULL"),
            postgresql_where=sql_text("on_behalf_of IS NOT NULL"),
        ),
        Index("ix_steps_unit_state", "unit", "state"),
        # What the front page counts of the waiting steps, read from the index alone.
        Index("ix_steps_state_assignee", "state", "assignee", "unit", "due_at"),
    )


class NumberSequence(Base):
    """The last document number issued per prefix and year (no gaps, no duplicates)."""

    __tablename__ = "number_sequences"

    prefix: Mapped[str] = mapped_column(String(50), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class Lease(Base):
    """A named lease, so that of several daemons only one runs a periodic job at a time."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    owner: Mapped[str] = mapped_column(String(100))
    until: Mapped[dt.datetime]


class AuditEntry(Base):
    """One attributable action; rows are only ever inserted, then sealed once (triggers refuse
    the rest)."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(50), index=True)
    target: Mapped[str | None] = mapped_column(String(200), default=None)
    on_behalf_of: Mapped[str | None] = mapped_column(String(64), default=None)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The hash chain (mailstore/auditchain.py): empty when inserted, set once when the
    # inserting transaction commits; the triggers allow exactly that one update.
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True, index=True, default=None)
    prev_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    hash: Mapped[str | None] = mapped_column(String(64), default=None)

    # A document's trail is read by its target; the admin page filters by person.
    __table_args__ = (
        Index("ix_audit_target_id", "target", "id"),
        Index("ix_audit_actor_at", "actor", "at"),
    )


class AuditHead(Base):
    """The end of the audit hash chain: one row, locked by every commit that extends the chain."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    # HMAC over (seq, hash): moving the head back over deleted rows needs the key.
    seal: Mapped[str | None] = mapped_column(String(64), default=None)
    # Which key sealed the chain (a digest of it, not the key), to tell a changed secret apart.
    key_id: Mapped[str | None] = mapped_column(String(16), default=None)
    # The highest audit id when the chain was introduced: older rows are chained once, in order.
    legacy_until: Mapped[int | None] = mapped_column(BigInteger, default=None)


class DelegationRow(Base):
    """A delegation while away (外出授權, 第九條): steps for the delegator go to the delegate."""

    __tablename__ = "delegations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delegator: Mapped[str] = mapped_column(ForeignKey("people.account"), index=True)
    delegate: Mapped[str] = mapped_column(ForeignKey("people.account"))
    starts_at: Mapped[dt.datetime]
    until: Mapped[dt.datetime]
    ended_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    # How it ended: revoked by the delegator, or expired at its date.
    ended_by: Mapped[str | None] = mapped_column(String(20), default=None)
    # False for one planned ahead (FROM date) until the scheduler begins it on its first day,
    # handing the waiting steps over (issue 15).
    begun: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class PersonSetting(Base):
    """One personal setting made with ``SET`` at cmd@ (digest windows, or digests off)."""

    __tablename__ = "person_settings"

    account: Mapped[str] = mapped_column(ForeignKey("people.account"), primary_key=True)
    key: Mapped[str] = mapped_column(String(30), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[dt.datetime]


class JobRun(Base):
    """One run of a periodic job for one slot (a digest window, a day).

    The key makes each slot run once however many daemons share the database. A short job
    writes the row in the transaction that does the slot's work, so a failed run leaves no
    row and is tried again. A long one (``jobs.slots.run_slot_in_batches``) writes it first,
    unfinished, and does the work in small transactions, each moving ``cursor`` on past what
    it did: a run cut short is taken up where it stopped, nothing done twice or skipped.
    """

    __tablename__ = "job_runs"

    job: Mapped[str] = mapped_column(String(40), primary_key=True)
    slot: Mapped[dt.datetime] = mapped_column(primary_key=True)
    ran_at: Mapped[dt.datetime]
    owner: Mapped[str] = mapped_column(String(100))
    # How much the run did (mails queued), for the admin.
    count: Mapped[int] = mapped_column(Integer, default=0)
    # The last key a long job's batches have done (an account …); None before the first.
    cursor: Mapped[str | None] = mapped_column(String(200), default=None)
    finished: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class LeaveRecordRow(Base):
    """One line of HR's leave book (休假管理, 第六條): a leave taken, or an HR correction.

    ``leave_type`` is a type of ``routing.leave.LEAVE_TYPES`` or ``adjust`` (HR's correction
    of the year's annual days, ``days`` signed); HR cancels a wrong line rather than deleting
    it, so the book keeps its history.
    """

    __tablename__ = "leave_records"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(ForeignKey("people.account"), index=True)
    leave_type: Mapped[str] = mapped_column(String(20))
    start: Mapped[dt.date] = mapped_column(Date)
    end: Mapped[dt.date] = mapped_column(Date)
    days: Mapped[int] = mapped_column(Integer)
    # recorded, or cancelled by HR.
    state: Mapped[str] = mapped_column(String(12), default="recorded")
    document_id: Mapped[int | None] = mapped_column(BigId, default=None)
    note: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[dt.datetime]


class LeaveProfile(Base):
    """When a person's service began, as HR recorded it: the basis of annual leave."""

    __tablename__ = "leave_profiles"

    account: Mapped[str] = mapped_column(ForeignKey("people.account"), primary_key=True)
    service_start: Mapped[dt.date] = mapped_column(Date)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime]


class AccountRecord(Base):
    """The account file IT keeps (mine rules 一(二), 一(七)): how an account came to be.

    Written when an approved application creates the account: the confidentiality agreement
    (保密協議) was signed, and for a special-purpose account (專用帳號) who answers for it.
    """

    __tablename__ = "account_records"

    account: Mapped[str] = mapped_column(ForeignKey("people.account"), primary_key=True)
    nda_signed: Mapped[bool] = mapped_column(Boolean, default=False)
    special: Mapped[bool] = mapped_column(Boolean, default=False)
    responsible: Mapped[str | None] = mapped_column(String(64), default=None)
    document_id: Mapped[int | None] = mapped_column(BigId, default=None)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
    # Why it was made, for an account made without a change request (``yizhan user add
    # --reason``, ``org import``, the admin page): mine rules 一(二).
    reason: Mapped[str] = mapped_column(Text, default="", server_default="")


class Tool(Base):
    """A file the IT department publishes for staff to fetch with GET at cmd@ (常用工具下載).

    The bytes are kept in the row, not on disk: every daemon sharing the database serves the
    same file without a shared file system, a publication (row, bytes, audit entry) is one
    transaction, and ``yizhan backup`` carries it. Publishing the same name again replaces the
    file and counts up ``version``; a removed tool keeps its row (without the bytes) so that a
    later publication continues the count. The audit trail keeps every version's digest.
    """

    __tablename__ = "tools"

    #: The name as compared: NFKC, case-folded (``routing.tools.name_key``).
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    # published, or removed.
    state: Mapped[str] = mapped_column(String(12))
    description: Mapped[str] = mapped_column(Text)
    filename: Mapped[str] = mapped_column(String(255))
    #: The MIME type of what the bytes are (sniffed), as the attachment is sent.
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    published_by: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[dt.datetime]


class SearchText(Base):
    """The folded text of one field of a document (title, body, attachments), as indexed.

    Kept to confirm that a term of several characters stands together in the text (the gram
    index only says that its character pairs are there) and to know which documents are
    indexed; see ``routing.search``.
    """

    __tablename__ = "search_texts"

    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), primary_key=True)
    field: Mapped[str] = mapped_column(String(20), primary_key=True)
    text: Mapped[str] = mapped_column(Text)


class SearchPosting(Base):
    """One posting of the search index: a gram (``routing.search.index_grams``) of a document,
    and how often it occurs in each indexed field (0: not there).

    One row a gram and document rather than a field, and no second index: at a million
    documents of a few lines the index holds some eighty million rows. The primary key opens
    with the gram and then the document, so "the newest documents holding X" is a range of the
    key read backwards, and "does document d hold Y" one probe; on PostgreSQL the key carries
    the counts, so neither reads the table. A document's rows are found, to replace or delete
    them, through its grams, which its indexed texts give.
    """

    __tablename__ = "search_postings"

    gram: Mapped[str] = mapped_column(String(40), primary_key=True)
    document_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    in_title: Mapped[int] = mapped_column(Integer, default=0)
    in_body: Mapped[int] = mapped_column(Integer, default=0)
    in_attachment: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        PrimaryKeyConstraint(
            "gram",
            "document_id",
            postgresql_include=["in_title", "in_body", "in_attachment"],
        ),
        {"sqlite_with_rowid": False},
    )


class WebSession(Base):
    """A login to the admin page, kept on the server so that logging out ends it everywhere.

    The cookie holds a random token; only its SHA-256 is stored, so a reader of the database
    cannot take over a session. ``must_change`` holds a person who logged in with a temporary
    or expired password to the password page (第十六條).
    """

    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account: Mapped[str] = mapped_column(ForeignKey("people.account"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    must_change: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime]
    last_seen_at: Mapped[dt.datetime]
    ended_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    peer: Mapped[str] = mapped_column(String(100), default="")


class RulesVersion(Base):
    """One saved version of ``<data_dir>/rules.toml``, with who saved it and when (issue 14)."""

    __tablename__ = "rules_versions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    saved_at: Mapped[dt.datetime]
    saved_by: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    note: Mapped[str] = mapped_column(Text, default="")


class ImapFiling(Base):
    """One message Yizhan filed into a person's IMAP folder (issue 13), and where it is now.

    Written in the transaction that marks its delivery sent, so a filed message is always
    known; the tidy pass moves a request (``step_id``) whose step no longer waits from
    公文/待辦 to 公文/已辦, and the repair job puts back what an outage lost. ``state`` is
    ``filed`` while the message is where ``folder`` and ``uid`` say, ``gone`` once the person
    moved or deleted it themselves.
    """

    __tablename__ = "imap_filings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(BigId, unique=True)
    message_pk: Mapped[int] = mapped_column(BigId)
    message_id: Mapped[str] = mapped_column(String(998))
    account: Mapped[str] = mapped_column(String(64), index=True)
    folder: Mapped[str] = mapped_column(String(200))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)
    step_id: Mapped[int | None] = mapped_column(BigId, default=None, index=True)
    document_id: Mapped[int | None] = mapped_column(BigId, default=None)
    state: Mapped[str] = mapped_column(String(12), default="filed")
    filed_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]

    __table_args__ = (Index("ix_imap_filings_folder_state", "folder", "state"),)


class FetchedMessage(Base):
    """One message fetch mode read from a mailbox (issue 13), so it is processed once.

    Written before the message is stored (``inbound_id`` empty) and completed after, so a
    crash in between is recognised: the message's bytes (``sha256``) are looked for among the
    inbound rows made after ``inbound_floor``.
    """

    __tablename__ = "fetched_messages"

    source: Mapped[str] = mapped_column(String(300), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    uid: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    inbound_floor: Mapped[int] = mapped_column(BigInteger)
    inbound_id: Mapped[int | None] = mapped_column(BigId, default=None)
    fetched_at: Mapped[dt.datetime]


class LegalHold(Base):
    """A legal hold on a document (``yizhan doc hold ID``): the retention job (第二十三條,
    第四條) never deletes a held document, its raw mail or its Maildir copies."""

    __tablename__ = "legal_holds"

    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), primary_key=True)
    placed_at: Mapped[dt.datetime]
    placed_by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)


class SignatureScan(Base):
    """One re-scan of the stored attachments under a set of clamd signatures (第十一條): the row
    is claimed when the scan starts, so one daemon does it, and completed with its counts."""

    __tablename__ = "signature_scans"

    signatures: Mapped[str] = mapped_column(String(200), primary_key=True)
    started_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    scanned: Mapped[int] = mapped_column(Integer, default=0)
    infected: Mapped[int] = mapped_column(Integer, default=0)
