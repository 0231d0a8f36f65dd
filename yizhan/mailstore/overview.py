"""Reads documents, steps, the queue and the audit trail for the admin page's lists and figures.

Every query here is bounded (a page of rows, or an aggregate) and uses the indexes of migration
0015, so that a page stays fast with a hundred thousand documents.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, or_, select, union
from sqlalchemy.orm import Session

from yizhan.mailstore.models import (
    AuditEntry,
    Delivery,
    Document,
    Inbound,
    OutboundMessage,
    Person,
    Step,
    Unit,
)

__all__ = [
    "AuditFilter",
    "UnitLoad",
    "audit_entries",
    "document_ids",
    "documents_by_ids",
    "documents_per_day",
    "last_errors",
    "names_of",
    "queue_figures",
    "recent_documents",
    "steps_of",
    "unit_load",
    "unit_open_steps",
]


@dataclass(frozen=True, kw_only=True)
class UnitLoad:
    """Waiting and overdue steps of one unit."""

    unit: str
    name: str
    waiting: int
    overdue: int


@dataclass(frozen=True, kw_only=True)
class AuditFilter:
    """What the audit page filters by; empty fields filter nothing."""

    actor: str = ""
    action: str = ""
    since: dt.datetime | None = None
    before: dt.datetime | None = None


def recent_documents(
    session: Session,
    *,
    every_kind_but: str | None = None,
    only_kind: str | None = None,
    unit: str | None = None,
    ids: Collection[int] = (),
    everything: bool = False,
    limit: int = 50,
) -> list[Document]:
    """The newest documents of the given sets, united: every one (``everything``), every one
    but a kind, every one of a kind, a unit's, and those of ``ids``."""
    conditions: list[Any] = []
    if everything:
        conditions.append(Document.id.is_not(None))
    if every_kind_but is not None:
        conditions.append(Document.kind != every_kind_but)
    if only_kind is not None:
        conditions.append(Document.kind == only_kind)
    if unit is not None:
        conditions.append(Document.unit_id == unit)
    if ids:
        newest = sorted(ids, reverse=True)[: limit * 4]
        conditions.append(Document.id.in_(newest))
    if not conditions:
        return []
    query = select(Document).where(or_(*conditions)).order_by(Document.id.desc()).limit(limit)
    return list(session.scalars(query))


def document_ids(
    session: Session, *, kinds: Collection[str] = (), unit: str | None = None
) -> list[int]:
    """Ids of the documents of ``kinds``, or of ``unit``."""
    if unit is not None:
        return list(session.scalars(select(Document.id).where(Document.unit_id == unit)))
    if not kinds:
        return []
    return list(session.scalars(select(Document.id).where(Document.kind.in_(list(kinds)))))


def documents_by_ids(session: Session, ids: Sequence[int]) -> dict[int, Document]:
    """Documents by id."""
    if not ids:
        return {}
    return {d.id: d for d in session.scalars(select(Document).where(Document.id.in_(ids)))}


def steps_of(session: Session, document_id: int) -> list[Step]:
    """A document's steps in the order they were opened."""
    return list(
        session.scalars(select(Step).where(Step.document_id == document_id).order_by(Step.id))
    )


def names_of(session: Session, accounts: Collection[str]) -> dict[str, str]:
    """Real names of ``accounts``."""
    wanted = sorted({a for a in accounts if a})
    if not wanted:
        return {}
    rows = session.execute(select(Person.account, Person.name).where(Person.account.in_(wanted)))
    return {a: n for a, n in rows}


def unit_load(session: Session, now: dt.datetime, *, unit: str | None = None) -> list[UnitLoad]:
    """Waiting and overdue steps per unit (the unit a step acts for, else its assignee's)."""
    unit_of = func.coalesce(Step.unit, Person.unit_id)
    overdue = func.sum(case((and_(Step.due_at.is_not(None), Step.due_at < now), 1), else_=0))
    query = (
        select(unit_of.label("unit"), func.count().label("waiting"), overdue.label("overdue"))
        .select_from(Step)
        .join(Person, Person.account == Step.assignee)
        .where(Step.state == "waiting")
        .group_by(unit_of)
    )
    if unit is not None:
        query = query.where(Step.id.in_(_waiting_in_unit(unit))).having(unit_of == unit)
    names = {u: n for u, n in session.execute(select(Unit.id, Unit.name))}
    return sorted(
        (
            UnitLoad(
                unit=r.unit,
                name=names.get(r.unit, r.unit),
                waiting=r.waiting,
                overdue=int(r.overdue or 0),
            )
            for r in session.execute(query)
        ),
        key=lambda load: (-load.overdue, -load.waiting, load.unit),
    )


def unit_open_steps(
    session: Session, unit: str, *, limit: int = 200
) -> list[tuple[Step, Document, str]]:
    """A unit's waiting steps (for the unit or with one of its people), most urgent first,
    with their documents and the assignee's name."""
    rows = session.execute(
        select(Step, Document, Person.name)
        .join(Document, Document.id == Step.document_id)
        .join(Person, Person.account == Step.assignee)
        .where(Step.id.in_(_waiting_in_unit(unit)))
        .order_by(Step.due_at.is_(None), Step.due_at, Step.id)
        .limit(limit)
    )
    return [(s, d, n) for s, d, n in rows]


def _waiting_in_unit(unit: str) -> Any:
    """The ids of the waiting steps for ``unit`` or with one of its people, as a union of two
    index lookups: asked as one condition with OR, both databases read every waiting step of
    the bureau (20,000 of 100,000 documents) to keep a unit's score."""
    members = select(Person.account).where(Person.unit_id == unit)
    return union(
        select(Step.id).where(Step.unit == unit, Step.state == "waiting"),
        select(Step.id).where(Step.assignee.in_(members), Step.state == "waiting"),
    )


def documents_per_day(
    session: Session, since: dt.datetime, tz: dt.tzinfo, days: int
) -> list[tuple[dt.date, int]]:
    """How many documents were opened on each of the ``days`` local days from ``since``.

    One statement of a count a day, each a range of the created_at index: not a query a day
    (thirty round trips), nor one pass testing every row against every day (SQLite evaluates
    thirty conditions a row).
    """
    first = since.astimezone(tz).date()
    days_shown = [first + dt.timedelta(days=i) for i in range(days)]
    if not days_shown:
        return []
    bounds = [dt.datetime.combine(day, dt.time(0), tzinfo=tz) for day in days_shown]
    bounds.append(bounds[-1] + dt.timedelta(days=1))
    counts = [
        select(func.count())
        .select_from(Document)
        .where(Document.created_at >= start, Document.created_at < end)
        .scalar_subquery()
        for start, end in itertools.pairwise(bounds)
    ]
    row = session.execute(select(*counts)).one()
    return [(day, int(found or 0)) for day, found in zip(days_shown, row, strict=True)]


def queue_figures(session: Session) -> tuple[int, dt.datetime | None]:
    """Deliveries waiting, and when the oldest of them was queued."""
    count, oldest = session.execute(
        select(func.count(), func.min(OutboundMessage.created_at))
        .select_from(Delivery)
        .join(OutboundMessage, OutboundMessage.id == Delivery.message_pk)
        .where(Delivery.state == "queued")
    ).one()
    return int(count or 0), oldest


def last_errors(session: Session, limit: int = 10) -> list[tuple[dt.datetime, str, str]]:
    """The latest problems: deliveries that failed an attempt, inbound mail set aside."""
    deliveries = session.execute(
        select(Delivery.next_attempt_at, Delivery.rcpt, Delivery.last_error)
        .where(Delivery.last_error.is_not(None))
        .order_by(Delivery.id.desc())
        .limit(limit)
    )
    inbound = session.execute(
        select(Inbound.received_at, Inbound.mail_from, Inbound.reason)
        .where(Inbound.state == "failed")
        .order_by(Inbound.id.desc())
        .limit(limit)
    )
    found = [(at, who, str(why)) for at, who, why in [*deliveries, *inbound]]
    return sorted(found, key=lambda r: r[0], reverse=True)[:limit]


def audit_entries(
    session: Session, where: AuditFilter, *, offset: int = 0, limit: int | None = 100
) -> list[AuditEntry]:
    """Audit entries matching ``where``, newest first."""
    query = select(AuditEntry)
    if where.actor:
        query = query.where(AuditEntry.actor == where.actor)
    if where.action:
        query = query.where(AuditEntry.action.startswith(where.action))
    if where.since is not None:
        query = query.where(AuditEntry.at >= where.since)
    if where.before is not None:
        query = query.where(AuditEntry.at < where.before)
    query = query.order_by(AuditEntry.id.desc()).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))
