"""Keeps the record of what Yizhan filed into whose IMAP folder, and what fetch mode has read.

The daemon's IMAP parts (``yizhan.daemon.imap``) do the talking; this module only reads and
writes the rows, in the caller's transaction: a filing is recorded with its delivery, the
tidy pass asks which requests wait no longer, the repair job which requests a person's
公文/待辦 should hold. Fetch mode's rows make each fetched message enter Yizhan once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, func, insert, or_, select
from sqlalchemy.orm import Session

from yizhan.mailstore.models import (
    FetchedMessage,
    ImapFiling,
    Inbound,
    Lease,
    OutboundBody,
    OutboundMessage,
    Step,
)

__all__ = [
    "Filed",
    "FilingRow",
    "begin_fetch",
    "complete_fetch",
    "fetch_record",
    "fetched_digest",
    "filing_accounts",
    "filings_in",
    "find_stored",
    "mark_gone",
    "message_bytes",
    "record_filing",
    "record_filings",
    "relocate",
    "stale_requests",
    "take_lease",
]


@dataclass(frozen=True, kw_only=True)
class Filed:
    """A message just put into a folder, as the courier reports it."""

    delivery_id: int
    message_pk: int
    message_id: str
    account: str
    folder: str
    uidvalidity: int
    uid: int
    step_id: int | None
    document_id: int | None


@dataclass(frozen=True, kw_only=True)
class FilingRow:
    """A recorded filing, with whether its step still waits for that person."""

    id: int
    account: str
    folder: str
    uidvalidity: int
    uid: int
    step_id: int | None
    message_pk: int
    message_id: str
    #: The step waits, and for this person (or the person they stand in for).
    waiting: bool


def record_filing(session: Session, filed: Filed, *, now: dt.datetime) -> None:
    """Record (or, for a message filed again after a loss, update) one filing."""
    row = session.scalar(select(ImapFiling).where(ImapFiling.delivery_id == filed.delivery_id))
    if row is None:
        session.add(
            ImapFiling(
                delivery_id=filed.delivery_id,
                message_pk=filed.message_pk,
                message_id=filed.message_id,
                account=filed.account,
                folder=filed.folder,
                uidvalidity=filed.uidvalidity,
                uid=filed.uid,
                step_id=filed.step_id,
                document_id=filed.document_id,
                state="filed",
                filed_at=now,
                updated_at=now,
            )
        )
        return
    row.folder, row.uidvalidity, row.uid = filed.folder, filed.uidvalidity, filed.uid
    row.state, row.updated_at = "filed", now


def record_filings(session: Session, batch: Sequence[Filed], *, now: dt.datetime) -> None:
    """:func:`record_filing` for each of ``batch``: the new ones in one multi-row INSERT (a
    round of the outbound worker files up to hundreds of messages)."""
    ids = [f.delivery_id for f in batch]
    known: set[int] = set()
    for start in range(0, len(ids), 500):
        known.update(
            session.scalars(
                select(ImapFiling.delivery_id).where(
                    ImapFiling.delivery_id.in_(ids[start : start + 500])
                )
            )
        )
    rows = [
        {
            "delivery_id": f.delivery_id,
            "message_pk": f.message_pk,
            "message_id": f.message_id,
            "account": f.account,
            "folder": f.folder,
            "uidvalidity": f.uidvalidity,
            "uid": f.uid,
            "step_id": f.step_id,
            "document_id": f.document_id,
            "state": "filed",
            "filed_at": now,
            "updated_at": now,
        }
        for f in batch
        if f.delivery_id not in known
    ]
    if rows:
        session.execute(insert(ImapFiling), rows)
    for f in batch:
        if f.delivery_id in known:
            # Filed again after a loss: rare, one at a time.
            record_filing(session, f, now=now)


def _waiting() -> object:
    # The step waits, and for the filing's person: a request given to someone else no
    # longer waits for this one.
    return and_(
        Step.state == "waiting",
        or_(Step.assignee == ImapFiling.account, Step.on_behalf_of == ImapFiling.account),
    )


def _rows(session: Session, stmt: object) -> list[FilingRow]:
    return [
        FilingRow(
            id=f.id,
            account=f.account,
            folder=f.folder,
            uidvalidity=f.uidvalidity,
            uid=f.uid,
            step_id=f.step_id,
            message_pk=f.message_pk,
            message_id=f.message_id,
            waiting=bool(waiting),
        )
        for f, waiting in session.execute(stmt)  # type: ignore[call-overload]
    ]


def stale_requests(session: Session, folder: str, *, limit: int) -> list[FilingRow]:
    """Requests filed in ``folder`` (公文/待辦) whose step waits for that person no longer."""
    waiting = _waiting()
    stmt = (
        select(ImapFiling, waiting)  # type: ignore[call-overload]
        .outerjoin(Step, Step.id == ImapFiling.step_id)
        .where(ImapFiling.folder == folder, ImapFiling.state == "filed")
        .where(ImapFiling.step_id.is_not(None))
        .where(~func.coalesce(waiting, False))
        .order_by(ImapFiling.account, ImapFiling.id)
        .limit(limit)
    )
    return _rows(session, stmt)


def filings_in(session: Session, account: str, folder: str) -> list[FilingRow]:
    """Every message recorded in ``account``'s ``folder``."""
    stmt = (
        select(ImapFiling, _waiting())  # type: ignore[call-overload]
        .outerjoin(Step, Step.id == ImapFiling.step_id)
        .where(
            ImapFiling.account == account,
            ImapFiling.folder == folder,
            ImapFiling.state == "filed",
        )
        .order_by(ImapFiling.id)
    )
    return _rows(session, stmt)


def filing_accounts(session: Session, folder: str) -> list[str]:
    """The people with filings recorded in ``folder``."""
    return list(
        session.scalars(
            select(ImapFiling.account)
            .where(ImapFiling.folder == folder, ImapFiling.state == "filed")
            .distinct()
            .order_by(ImapFiling.account)
        )
    )


def relocate(
    session: Session,
    filing_id: int,
    *,
    folder: str,
    uidvalidity: int,
    uid: int,
    now: dt.datetime,
) -> None:
    """The message is now at ``folder``/``uid`` (moved, found again or filed again)."""
    row = session.get(ImapFiling, filing_id)
    if row is not None:
        row.folder, row.uidvalidity, row.uid = folder, uidvalidity, uid
        row.state, row.updated_at = "filed", now


def mark_gone(session: Session, filing_ids: Sequence[int], *, now: dt.datetime) -> None:
    """The person moved or deleted these messages themselves: Yizhan leaves them be."""
    for filing_id in filing_ids:
        row = session.get(ImapFiling, filing_id)
        if row is not None:
            row.state, row.updated_at = "gone", now


def message_bytes(session: Session, message_pk: int) -> bytes | None:
    """The outbound message's bytes as they were sent, for filing it again."""
    row = session.execute(
        select(OutboundMessage.data, OutboundBody.data)
        .outerjoin(OutboundBody, OutboundBody.id == OutboundMessage.body_id)
        .where(OutboundMessage.id == message_pk)
    ).first()
    if row is None:
        return None
    head, body = row
    return bytes(head) + (bytes(body) if body is not None else b"")


def take_lease(
    session: Session, name: str, *, owner: str, now: dt.datetime, ttl: dt.timedelta
) -> bool:
    """Hold the named lease until ``now + ttl`` unless another owner holds it now."""
    lease = session.get(Lease, name, with_for_update=True)
    if lease is None:
        session.add(Lease(name=name, owner=owner[:100], until=now + ttl))
        return True
    if lease.owner != owner[:100] and lease.until > now:
        return False
    lease.owner, lease.until = owner[:100], now + ttl
    return True


# -- fetch mode --------------------------------------------------------------------------------


def fetch_record(
    session: Session, source: str, uidvalidity: int, uid: int
) -> FetchedMessage | None:
    """What was recorded of this message of ``source``, if anything."""
    return session.get(FetchedMessage, (source, uidvalidity, uid))


def begin_fetch(
    session: Session, source: str, uidvalidity: int, uid: int, sha256: str, *, now: dt.datetime
) -> None:
    """Note that this message is about to be stored (before the inbound row exists)."""
    floor = session.scalar(select(func.max(Inbound.id))) or 0
    session.add(
        FetchedMessage(
            source=source,
            uidvalidity=uidvalidity,
            uid=uid,
            sha256=sha256,
            inbound_floor=floor,
            fetched_at=now,
        )
    )


def complete_fetch(
    session: Session, source: str, uidvalidity: int, uid: int, inbound_id: int
) -> None:
    """The message is stored as ``inbound_id``."""
    row = session.get(FetchedMessage, (source, uidvalidity, uid))
    if row is not None:
        row.inbound_id = inbound_id


def find_stored(session: Session, record: FetchedMessage) -> int | None:
    """The inbound row a half-recorded fetch made before a crash, if it made one."""
    return session.scalar(
        select(Inbound.id)
        .where(Inbound.id > record.inbound_floor, Inbound.sha256 == record.sha256)
        .order_by(Inbound.id)
        .limit(1)
    )


def fetched_digest(session: Session, source: str, sha256: str) -> FetchedMessage | None:
    """A message of ``source`` with these bytes stored before (under any UIDVALIDITY)."""
    return session.scalar(
        select(FetchedMessage)
        .where(FetchedMessage.source == source, FetchedMessage.sha256 == sha256)
        .limit(1)
    )
