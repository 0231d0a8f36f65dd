"""Keeps the outbound queue: each message to send, and where its delivery to each recipient stands.

A message is queued in the caller's transaction, together with the decision that caused it (a
transactional outbox, docs/architecture.md, "Durability"); its ``source`` key makes queueing it a
second time a no-op. Each recipient gets a :class:`~yizhan.mailstore.models.Delivery` that moves
from ``queued`` to ``sent``, or to ``bounced`` (a delivery status notification went to the sender)
or ``failed`` (there was no sender to tell). Workers claim due deliveries with a lease, and with
``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several daemons can share the queue. A
finished delivery is never changed again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import format_datetime, getaddresses

from sqlalchemy import and_, case, func, insert, or_, select, update
from sqlalchemy.orm import Session

from yizhan.mailstore import audit
from yizhan.mailstore.models import Delivery, OutboundBody, OutboundMessage
from yizhan.routing.dsn import FailedRecipient, build_dsn
from yizhan.routing.mailpolicy import WIRE, WIRE_UTF8

QUEUED = "queued"
SENT = "sent"
BOUNCED = "bounced"
FAILED = "failed"

#: How long bounced and failed deliveries stay in :func:`queue_listing` by default.
SHOW_FAILED_FOR = dt.timedelta(days=7)

_ADDRESS_HEADERS = ("From", "Sender", "Reply-To", "To", "Cc")
# The end of a header block: the first empty line.
_HEAD_END = re.compile(rb"\n\r?\n")
# Ids in one IN (…) list: well under SQLite's limit of bound parameters.
_IN_CHUNK = 500


@dataclass(frozen=True, kw_only=True)
class Claimed:
    """A delivery a worker has claimed (leased) to attempt now, with what it needs to send."""

    delivery_id: int
    message_pk: int
    message_id: str
    mail_from: str
    rcpt: str
    #: Attempts made before this one.
    attempts: int
    expires_at: dt.datetime
    created_at: dt.datetime
    #: The message's own bytes: all of it, or its header block when its body is shared.
    head: bytes
    #: The shared body that follows ``head`` (one bytes object for the whole round), or b"".
    body: bytes = b""
    #: An earlier claim of this delivery ended without an outcome recorded (its worker died,
    #: or its daemon stopped): it may have been delivered already.
    unsure: bool = False

    @property
    def data(self) -> bytes:
        """The message as it goes on the wire."""
        return self.head + self.body if self.body else self.head


@dataclass(frozen=True, kw_only=True)
class QueueRow:
    """One delivery as ``yizhan queue`` shows it."""

    delivery_id: int
    message_id: str
    mail_from: str
    rcpt: str
    state: str
    attempts: int
    #: When it is tried next; for a bounced or failed delivery, when it was given up.
    next_attempt_at: dt.datetime
    expires_at: dt.datetime
    last_error: str | None
    created_at: dt.datetime
    lease_until: dt.datetime | None


def enqueue(
    session: Session,
    *,
    source: str,
    message: EmailMessage | bytes,
    mail_from: str,
    rcpts: Sequence[str],
    now: dt.datetime,
    expires_after: dt.timedelta,
    domain: str,
    document_id: int | None = None,
    body_id: int | None = None,
) -> OutboundMessage:
    """Queue ``message`` for ``rcpts`` in the caller's transaction; a known ``source`` adds nothing.

    With ``body_id`` (from :func:`store_body`), ``message`` is only the header block, up to and
    with its empty line, and the body stored once is sent after it.

    ``source`` names what caused the message (``inbound:42:answer``, ``dsn:7`` …). If a message
    with that source is queued already it is returned unchanged, so a decision applied twice
    sends once. Should two transactions queue the same source at the same moment, the unique
    key makes one of them fail as a whole, and its retry finds the other's row.

    An :class:`EmailMessage` is given a ``Message-ID`` (``<uuid@domain>``) and a ``Date`` when
    it has none (it is changed in place), then serialised once, with CRLF line ends. Bytes are
    stored as they are (a signature over them stays valid); only a missing ``Message-ID`` or
    ``Date`` line is put in front. Every later attempt sends exactly these bytes, so a resend
    after a crash carries the same Message-ID. ``mail_from`` may be empty, the null sender.
    """
    existing = session.scalar(select(OutboundMessage).where(OutboundMessage.source == source))
    if existing is not None:
        return existing
    # Addresses are compared without regard to case: nobody wants the same mail twice.
    distinct: dict[str, str] = {}
    for rcpt in rcpts:
        if rcpt.strip():
            distinct.setdefault(rcpt.strip().lower(), rcpt.strip())
    if not distinct:
        raise ValueError(f"outbound message {source!r} has no recipients")
    if isinstance(message, bytes):
        data, message_id = _complete_bytes(message, now=now, domain=domain)
    elif body_id is not None:
        raise ValueError("a message with a shared body is queued as its header block's bytes")
    else:
        message_id = _complete_message(message, now=now, domain=domain)
        data = _serialise(message)
    row = OutboundMessage(
        source=source,
        message_id=message_id,
        mail_from=mail_from,
        data=data,
        created_at=now,
        document_id=document_id,
        body_id=body_id,
    )
    row.deliveries = [
        Delivery(
            rcpt=rcpt,
            state=QUEUED,
            attempts=0,
            next_attempt_at=now,
            expires_at=now + expires_after,
        )
        for rcpt in distinct.values()
    ]
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True, kw_only=True)
class Outgoing:
    """One message of a batch for :func:`enqueue_many`: its header block (the body shared)."""

    source: str
    #: The stored body (:func:`store_body`) that follows the head.
    body_id: int
    #: The header block, up to and with its empty line; a Message-ID and Date are put in
    #: front when it has none (as :func:`enqueue` does with bytes).
    head: bytes
    rcpt: str
    document_id: int | None = None
    #: The Message-ID the head carries, when the caller wrote it: spares parsing the head.
    message_id: str | None = None


def enqueue_many(
    session: Session,
    batch: Sequence[Outgoing],
    *,
    mail_from: str,
    now: dt.datetime,
    expires_after: dt.timedelta,
    domain: str,
) -> int:
    """Queue each of ``batch`` (a head around a stored body, for one recipient) in the
    caller's transaction, as :func:`enqueue` would one by one; returns how many were new.

    A source already queued adds nothing, as with :func:`enqueue`. The rows are written with
    two multi-row INSERTs rather than an ORM flush each: a sealed document's thousand copies
    were a second of the distribution's transaction.
    """
    known: set[str] = set()
    sources = [item.source for item in batch]
    for start in range(0, len(sources), _IN_CHUNK):
        known.update(
            session.scalars(
                select(OutboundMessage.source).where(
                    OutboundMessage.source.in_(sources[start : start + _IN_CHUNK])
                )
            )
        )
    rows: list[dict[str, object]] = []
    rcpts: list[str] = []
    for item in batch:
        rcpt = item.rcpt.strip()
        if not rcpt:
            raise ValueError(f"outbound message {item.source!r} has no recipients")
        if item.source in known:
            continue
        known.add(item.source)
        if item.message_id is not None:
            data, message_id = item.head, item.message_id
        else:
            data, message_id = _complete_bytes(item.head, now=now, domain=domain)
        rows.append(
            {
                "source": item.source,
                "message_id": message_id,
                "mail_from": mail_from,
                "data": data,
                "created_at": now,
                "document_id": item.document_id,
                "body_id": item.body_id,
            }
        )
        rcpts.append(rcpt)
    if not rows:
        return 0
    # The ORM-enabled bulk INSERT: the rows' ids in the order given, then their deliveries.
    ids = session.scalars(
        insert(OutboundMessage).returning(OutboundMessage.id, sort_by_parameter_order=True),
        rows,
    ).all()
    session.execute(
        insert(Delivery),
        [
            {
                "message_pk": pk,
                "rcpt": rcpt,
                "state": QUEUED,
                "attempts": 0,
                "next_attempt_at": now,
                "expires_at": now + expires_after,
            }
            for pk, rcpt in zip(ids, rcpts, strict=True)
        ],
    )
    return len(rows)


def store_body(session: Session, data: bytes, *, now: dt.datetime) -> int:
    """Keep a body that several queued messages share, once; returns its id for :func:`enqueue`.

    A sealed document goes to every recipient with the same signed body; storing it once
    keeps a distribution to a thousand clerks from writing a thousand copies of its PDF.
    """
    digest = hashlib.sha256(data).hexdigest()
    found = session.scalar(select(OutboundBody.id).where(OutboundBody.sha256 == digest))
    if found is not None:
        return found
    row = OutboundBody(sha256=digest, data=data, created_at=now)
    session.add(row)
    session.flush()
    return row.id


def new_message_id(domain: str) -> str:
    """A fresh, globally unique Message-ID at ``domain``."""
    return f"<{uuid.uuid4().hex}@{domain}>"


def claim_due(
    session: Session,
    *,
    now: dt.datetime,
    limit: int,
    lease: dt.timedelta,
    owner: str | None = None,
) -> list[Claimed]:
    """Lease up to ``limit`` queued deliveries that are due at ``now``, the longest-waiting first.

    The lease (``lease_until``) keeps every other worker away from them until it runs out: a
    worker that died holding one leaves it to be claimed again later. The caller commits the
    claim before attempting the deliveries, and must finish them well within ``lease``.
    """
    stmt = (
        select(
            Delivery.id,
            Delivery.message_pk,
            Delivery.rcpt,
            Delivery.attempts,
            Delivery.expires_at,
            Delivery.lease_until,
        )
        .where(
            Delivery.state == QUEUED,
            Delivery.next_attempt_at <= now,
            or_(Delivery.lease_until.is_(None), Delivery.lease_until <= now),
        )
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(limit)
        # PostgreSQL: rows another worker is claiming right now are skipped, not waited for.
        # SQLite renders no FOR UPDATE; there, transactions begin IMMEDIATE and so run one
        # at a time, and the lease alone keeps workers apart.
        .with_for_update(skip_locked=True)
    )
    deliveries = session.execute(stmt).all()
    if not deliveries:
        return []
    ids = [d.id for d in deliveries]
    # One UPDATE for the round, not one per row (rows the ORM would load and flush).
    for start in range(0, len(ids), _IN_CHUNK):
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids[start : start + _IN_CHUNK]))
            .values(lease_until=now + lease, lease_owner=owner)
            .execution_options(synchronize_session=False)
        )
    messages = {
        row.id: row
        for row in session.execute(
            select(
                OutboundMessage.id,
                OutboundMessage.message_id,
                OutboundMessage.mail_from,
                OutboundMessage.created_at,
                OutboundMessage.data,
                OutboundMessage.body_id,
            ).where(OutboundMessage.id.in_({d.message_pk for d in deliveries}))
        )
    }
    # Each shared body is read once and its one bytes object handed to every copy.
    wanted = {m.body_id for m in messages.values() if m.body_id is not None}
    bodies: dict[int, bytes] = {}
    if wanted:
        found = select(OutboundBody.id, OutboundBody.data).where(OutboundBody.id.in_(wanted))
        bodies = {row.id: row.data for row in session.execute(found)}
    return [
        Claimed(
            delivery_id=d.id,
            message_pk=d.message_pk,
            message_id=messages[d.message_pk].message_id,
            mail_from=messages[d.message_pk].mail_from,
            rcpt=d.rcpt,
            attempts=d.attempts,
            expires_at=d.expires_at,
            created_at=messages[d.message_pk].created_at,
            head=messages[d.message_pk].data,
            body=bodies.get(messages[d.message_pk].body_id, b""),
            unsure=d.lease_until is not None,
        )
        for d in deliveries
    ]


def next_due(session: Session) -> dt.datetime | None:
    """When the earliest queued delivery can next be claimed; None when nothing is queued."""
    # A leased delivery is claimable again only when its lease runs out.
    ready = case(
        (Delivery.lease_until > Delivery.next_attempt_at, Delivery.lease_until),
        else_=Delivery.next_attempt_at,
    )
    due = session.scalar(select(func.min(ready)).where(Delivery.state == QUEUED))
    return due if isinstance(due, dt.datetime) else None


def mark_sent(session: Session, delivery_id: int, now: dt.datetime) -> bool:
    """Record that the delivery was made; False (and no change) if it was finished before."""
    delivery = _queued(session, delivery_id)
    if delivery is None:
        return False
    delivery.state = SENT
    delivery.sent_at = now
    delivery.attempts += 1
    delivery.lease_until = None
    return True


def mark_sent_many(session: Session, delivery_ids: Sequence[int], now: dt.datetime) -> set[int]:
    """Record that each of the deliveries was made, as :func:`mark_sent` one by one would;
    the ids marked now (one finished before is left as it is)."""
    marked: set[int] = set()
    for start in range(0, len(delivery_ids), _IN_CHUNK):
        # The row locks the UPDATE takes (PostgreSQL re-reads the state under them), or the
        # immediate transaction (SQLite), keep a finished delivery finished.
        marked.update(
            session.scalars(
                update(Delivery)
                .where(
                    Delivery.id.in_(delivery_ids[start : start + _IN_CHUNK]),
                    Delivery.state == QUEUED,
                )
                .values(state=SENT, sent_at=now, attempts=Delivery.attempts + 1, lease_until=None)
                .returning(Delivery.id)
                .execution_options(synchronize_session=False)
            )
        )
    return marked


def mark_retry(
    session: Session, delivery_id: int, now: dt.datetime, error: str, next_at: dt.datetime
) -> bool:
    """Record a temporary failure and when to try again; False if the delivery was finished."""
    delivery = _queued(session, delivery_id)
    if delivery is None:
        return False
    delivery.attempts += 1
    delivery.last_error = error
    delivery.next_attempt_at = next_at
    delivery.lease_until = None
    return True


def mark_failed(
    session: Session,
    delivery_id: int,
    now: dt.datetime,
    *,
    status: str,
    diagnostic: str,
    domain: str,
    expires_after: dt.timedelta,
) -> str | None:
    """Give the delivery up and tell its sender: the new state, or None if it was finished.

    The sender gets a delivery status notification (RFC 3464), queued from the null sender
    under the source ``dsn:<delivery id>``, and the delivery becomes ``bounced``. A message
    from the null sender (itself a notification) is only marked ``failed``: reports about
    reports would loop. Either way an audit entry records it. ``status`` is the RFC 3463 code
    and ``diagnostic`` what the last attempt got (an SMTP reply, where there was one).
    """
    delivery = _queued(session, delivery_id)
    if delivery is None:
        return None
    message = delivery.message
    delivery.attempts += 1
    delivery.last_error = diagnostic
    # The final attempt's time is kept here; queue_listing shows recent failures by it.
    delivery.next_attempt_at = now
    delivery.lease_until = None
    dsn_id: str | None = None
    if message.mail_from:
        report = build_dsn(
            domain=domain,
            original=message.message_bytes,
            sender=message.mail_from,
            arrival=message.created_at,
            failed=[
                FailedRecipient(
                    rcpt=delivery.rcpt, status=status, diagnostic=diagnostic, last_attempt=now
                )
            ],
            now=now,
        )
        dsn = enqueue(
            session,
            source=f"dsn:{delivery.id}",
            message=report,
            mail_from="",
            rcpts=[message.mail_from],
            now=now,
            expires_after=expires_after,
            domain=domain,
            document_id=message.document_id,
        )
        dsn_id = dsn.message_id
        delivery.state = BOUNCED
    else:
        delivery.state = FAILED
    audit.record(
        session,
        at=now,
        actor=audit.SYSTEM,
        action=f"delivery.{delivery.state}",
        target=f"delivery:{delivery.id}",
        detail={
            "message_id": message.message_id,
            "mail_from": message.mail_from,
            "rcpt": delivery.rcpt,
            "status": status,
            "diagnostic": diagnostic,
            "attempts": delivery.attempts,
            "dsn": dsn_id,
        },
    )
    session.flush()
    return delivery.state


def queue_listing(
    session: Session,
    *,
    now: dt.datetime | None = None,
    show_failed_for: dt.timedelta = SHOW_FAILED_FOR,
) -> list[QueueRow]:
    """Every delivery not yet made, and those given up within ``show_failed_for`` of ``now``.

    Waiting deliveries come first, in the order they are due; then the given-up ones.
    """
    since = (now or dt.datetime.now(dt.UTC)) - show_failed_for
    rows = session.execute(
        select(
            Delivery.id,
            OutboundMessage.message_id,
            OutboundMessage.mail_from,
            Delivery.rcpt,
            Delivery.state,
            Delivery.attempts,
            Delivery.next_attempt_at,
            Delivery.expires_at,
            Delivery.last_error,
            OutboundMessage.created_at,
            Delivery.lease_until,
        )
        .join(OutboundMessage, Delivery.message_pk == OutboundMessage.id)
        .where(
            or_(
                Delivery.state == QUEUED,
                and_(Delivery.state.in_((BOUNCED, FAILED)), Delivery.next_attempt_at >= since),
            )
        )
        .order_by(Delivery.state != QUEUED, Delivery.next_attempt_at, Delivery.id)
    )
    return [
        QueueRow(
            delivery_id=r.id,
            message_id=r.message_id,
            mail_from=r.mail_from,
            rcpt=r.rcpt,
            state=r.state,
            attempts=r.attempts,
            next_attempt_at=r.next_attempt_at,
            expires_at=r.expires_at,
            last_error=r.last_error,
            created_at=r.created_at,
            lease_until=r.lease_until,
        )
        for r in rows
    ]


def format_queue(rows: Sequence[QueueRow], tz: dt.tzinfo) -> str:
    """``rows`` as a table for people, times in ``tz``; each row is followed by why it waits."""
    if not rows:
        return "queue is empty"

    header = ("ID", "STATE", "TRIES", "NEXT ATTEMPT", "QUEUED", "RECIPIENT")
    table = [
        (
            str(r.delivery_id),
            r.state,
            str(r.attempts),
            _local_time(r.next_attempt_at, tz) if r.state == QUEUED else "-",
            _local_time(r.created_at, tz),
            r.rcpt,
        )
        for r in rows
    ]
    widths = [max(_width(cell) for cell in column) for column in zip(header, *table, strict=True)]
    indent = " " * (widths[0] + 2)
    lines = [_row(header, widths)]
    for r, cells in zip(rows, table, strict=True):
        lines.append(_row(cells, widths))
        sender = f"<{r.mail_from}>" if r.mail_from else "<> (a delivery report)"
        lines.append(
            f"{indent}{r.message_id} from {sender}, expires {_local_time(r.expires_at, tz)}"
        )
        lines.append(f"{indent}why: {_why(r, tz)}")
    waiting = sum(1 for r in rows if r.state == QUEUED)
    given_up = len(rows) - waiting
    summary = f"{waiting} waiting"
    if given_up:
        summary += f", {given_up} given up recently"
    lines.append(summary)
    return "\n".join(lines)


def _local_time(value: dt.datetime, tz: dt.tzinfo) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _why(row: QueueRow, tz: dt.tzinfo) -> str:
    error = " ".join((row.last_error or "").split())
    if row.state == BOUNCED:
        return f"given up: {error}; the sender was sent a delivery report"
    if row.state == FAILED:
        return f"given up: {error}; no report (the message had no sender to tell)"
    if row.lease_until is not None and row.lease_until > row.next_attempt_at:
        claimed = f"claimed by a worker until {_local_time(row.lease_until, tz)}"
        return f"{claimed}; last time: {error}" if error else claimed
    if row.attempts == 0:
        return "not tried yet"
    return error or "tried before without success"


def _row(cells: Sequence[str], widths: Sequence[int]) -> str:
    padded = [
        cell + " " * (width - _width(cell)) for cell, width in zip(cells, widths, strict=True)
    ]
    return "  ".join(padded).rstrip()


def _width(text: str) -> int:
    # A CJK character takes two columns in a terminal.
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _queued(session: Session, delivery_id: int) -> Delivery | None:
    # The row lock (PostgreSQL) or the immediate transaction (SQLite) means the state read here
    # cannot change before this transaction commits: a finished delivery stays finished.
    delivery = session.get(Delivery, delivery_id, with_for_update=True, populate_existing=True)
    return delivery if delivery is not None and delivery.state == QUEUED else None


def _complete_message(message: EmailMessage, *, now: dt.datetime, domain: str) -> str:
    if not str(message.get("Message-ID", "")).strip():
        del message["Message-ID"]
        message["Message-ID"] = new_message_id(domain)
    if message.get("Date") is None:
        message["Date"] = format_datetime(now.astimezone(dt.UTC))
    return str(message["Message-ID"]).strip()


def _serialise(message: EmailMessage) -> bytes:
    # RFC 2047 words carry non-ASCII names and subjects to any server; only an address whose
    # mailbox itself is not ASCII needs UTF-8 headers (RFC 6532), which nothing else can carry.
    addresses = getaddresses([str(v) for h in _ADDRESS_HEADERS for v in message.get_all(h, [])])
    utf8 = any(not addr.isascii() for _, addr in addresses)
    return message.as_bytes(policy=WIRE_UTF8 if utf8 else WIRE)


def _complete_bytes(data: bytes, *, now: dt.datetime, domain: str) -> tuple[bytes, str]:
    # Only the header block is parsed: the body may be megabytes of a sealed PDF.
    end = _HEAD_END.search(data)
    headers = BytesHeaderParser(policy=policy.compat32).parsebytes(
        data[: end.end()] if end else data
    )
    newline = b"\r\n" if b"\r\n" in data[:4096] else b"\n"
    prefix = b""
    message_id = " ".join(str(headers.get("Message-ID", "")).split())
    if not message_id:
        message_id = new_message_id(domain)
        prefix += b"Message-ID: " + message_id.encode("ascii") + newline
    if headers.get("Date") is None:
        prefix += b"Date: " + format_datetime(now.astimezone(dt.UTC)).encode("ascii") + newline
    return prefix + data, message_id
