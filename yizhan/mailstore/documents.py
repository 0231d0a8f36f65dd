"""Stores documents and their steps: loads the engine's view of one, applies its decisions.

A document's trail is kept in the append-only audit log (target ``doc:<id>``), so the history
shown in every mail is the same record the auditors read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from yizhan.mailstore import audit
from yizhan.mailstore.models import AuditEntry, Document, NumberSequence, Person, Step
from yizhan.routing.documents import Decision, DocumentState, StepState, TrailEntry
from yizhan.routing.numbering import format_number, parse_number

TRAIL_PREFIX = "doc."

#: Plans a new step's first reminder: ``(opened_at, due_at) -> when``, None for never
#: (``routing.reminders.first_reminder_at`` with the bureau's calendar).
FirstReminder = Callable[[dt.datetime, dt.datetime], dt.datetime | None]


def doc_target(document_id: int) -> str:
    """The audit target naming a document."""
    return f"doc:{document_id}"


def create_document(
    session: Session,
    *,
    kind: str,
    title: str,
    author: str,
    unit: str,
    urgency: str | None,
    fields: dict[str, Any],
    source_inbound: int | None,
    now: dt.datetime,
) -> Document:
    """Insert a new document in state ``draft``; the first decision moves it on."""
    row = Document(
        kind=kind,
        title=title,
        state="draft",
        author=author,
        unit_id=unit,
        urgency=urgency,
        fields=fields,
        source_inbound=source_inbound,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row


def load_state(session: Session, document: Document) -> DocumentState:
    """The engine's view of ``document``: its steps and its trail."""
    return load_states(session, [document])[0]


def load_states(session: Session, documents: Sequence[Document]) -> list[DocumentState]:
    """The engine's view of each of ``documents``, read with two queries for them all."""
    ids = [d.id for d in documents]
    steps: dict[int, list[Step]] = {i: [] for i in ids}
    trail: dict[str, list[AuditEntry]] = {doc_target(i): [] for i in ids}
    if ids:
        for step in session.scalars(
            select(Step).where(Step.document_id.in_(ids)).order_by(Step.id)
        ):
            steps[step.document_id].append(step)
        # The action is tested here, not in SQL: given both, a planner may walk the action
        # index over every document's trail instead of the target index over these.
        for entry in session.scalars(
            select(AuditEntry).where(AuditEntry.target.in_(list(trail))).order_by(AuditEntry.id)
        ):
            if entry.target is not None and entry.action.startswith(TRAIL_PREFIX):
                trail[entry.target].append(entry)
    return [_document_state(d, steps[d.id], trail[doc_target(d.id)]) for d in documents]


def _document_state(
    document: Document, steps: Sequence[Step], trail: Sequence[AuditEntry]
) -> DocumentState:
    return DocumentState(
        id=document.id,
        kind=document.kind,
        title=document.title,
        state=document.state,
        author=document.author,
        unit=document.unit_id,
        urgency=document.urgency,
        number=document.number,
        version=document.version,
        fields=dict(document.fields),
        steps=tuple(_step_state(s) for s in steps),
        trail=tuple(
            TrailEntry(
                at=e.at,
                actor=e.actor,
                action=e.action.removeprefix(TRAIL_PREFIX),
                on_behalf_of=e.on_behalf_of,
                opinion=str(e.detail.get("opinion", "")),
                step=e.detail.get("step"),
            )
            for e in trail
        ),
    )


def apply_decision(
    session: Session,
    document: Document,
    decision: Decision,
    *,
    actor: str,
    on_behalf_of: str | None,
    now: dt.datetime,
    first_reminder: FirstReminder | None = None,
) -> list[Step]:
    """Write an accepted decision; returns the opened steps in ``decision.open_steps`` order.

    An opened step with a deadline gets its first reminder time from ``first_reminder``;
    without one it is due for the reminder sweep at once, which plans it on its next pass. A
    closed or cancelled step is taken off the sweep.
    """
    if not decision.accepted or decision.needs_number is not None:
        raise ValueError("only an accepted decision with its number allocated can be applied")
    if decision.state is not None:
        document.state = decision.state
    if decision.fields:
        document.fields = {**document.fields, **decision.fields}
    if decision.title is not None:
        document.title = decision.title
    if decision.version is not None:
        document.version = decision.version
    if decision.number is not None:
        document.number = decision.number
    document.updated_at = now
    for step_id in decision.close_steps:
        step = _waiting_step(session, document, step_id)
        if step is not None:
            step.state, step.done_at, step.done_by = "done", now, actor
            step.on_behalf_of, step.outcome = on_behalf_of, decision.outcome
            step.next_reminder_at = None
    for step_id in decision.cancel_steps:
        step = _waiting_step(session, document, step_id)
        if step is not None:
            step.state, step.done_at = "cancelled", now
            step.next_reminder_at = None
    for step_id, due_at in decision.extend_steps:
        step = _waiting_step(session, document, step_id)
        if step is not None:
            # A new deadline starts the reminders and the escalation ladder afresh.
            step.due_at, step.reminders_sent, step.escalation = due_at, 0, 0
            step.next_reminder_at = first_reminder(now, due_at) if first_reminder else now
    opened = []
    for spec in decision.open_steps:
        next_reminder_at = None
        if spec.due_at is not None:
            next_reminder_at = first_reminder(now, spec.due_at) if first_reminder else now
        step = Step(
            document_id=document.id,
            name=spec.name,
            assignee=spec.assignee,
            action=spec.action,
            unit=spec.unit,
            state="waiting",
            due_at=spec.due_at,
            on_behalf_of=spec.on_behalf_of,
            created_at=now,
            next_reminder_at=next_reminder_at,
        )
        session.add(step)
        opened.append(step)
    for entry in decision.trail:
        audit.record(
            session,
            at=entry.at,
            actor=entry.actor,
            action=TRAIL_PREFIX + entry.action,
            target=doc_target(document.id),
            on_behalf_of=entry.on_behalf_of,
            detail={
                "opinion": entry.opinion,
                "step": entry.step,
                "reasons": list(decision.reasons),
            },
        )
    session.flush()
    return opened


def _waiting_step(session: Session, document: Document, step_id: int) -> Step | None:
    step = session.get(Step, step_id)
    if step is None or step.document_id != document.id or step.state != "waiting":
        return None
    return step


def allocate_number(session: Session, prefix: str, year: int) -> int:
    """The next number of ``prefix`` in ``year``: no gaps, no duplicates, even concurrently.

    The sequence row is locked for the rest of the caller's transaction (FOR UPDATE on
    PostgreSQL; SQLite transactions here are BEGIN IMMEDIATE and so already serialised), so
    two sign-offs at the same moment get consecutive numbers, and a rolled-back transaction
    gives its number back.
    """
    dialect = session.get_bind().dialect.name
    values = {"prefix": prefix, "year": year, "last": 0}
    if dialect == "postgresql":
        session.execute(pg_insert(NumberSequence).values(**values).on_conflict_do_nothing())
    else:
        session.execute(sqlite_insert(NumberSequence).values(**values).on_conflict_do_nothing())
    row = session.scalars(
        select(NumberSequence)
        .where(NumberSequence.prefix == prefix, NumberSequence.year == year)
        .with_for_update()
    ).one()
    row.last += 1
    session.flush()
    return row.last


#: The largest id a document can have (a 64-bit column); a bigger one written in a mail names
#: no document, rather than making the database refuse the query.
MAX_ID: Final = 2**63 - 1


def document_by_id(session: Session, document_id: int) -> Document | None:
    """The document with ``document_id``, or None (also for an id no column can hold)."""
    if not 0 < document_id <= MAX_ID:
        return None
    return session.get(Document, document_id)


def find_document(session: Session, ref: str) -> Document | None:
    """A document by its id (digits, optionally after #) or its number."""
    ref = ref.strip().lstrip("#")
    if ref.isascii() and ref.isdigit():
        return document_by_id(session, int(ref))
    # People type 【】 or [] for 〔〕 and leading zeros; look up the canonical form.
    parsed = parse_number(ref)
    number = format_number(*parsed) if parsed else ref
    return session.scalars(select(Document).where(Document.number == number)).first()


def waiting_steps(session: Session, account: str) -> list[Step]:
    """Steps waiting for ``account``, oldest first."""
    return list(
        session.scalars(
            select(Step).where(Step.assignee == account, Step.state == "waiting").order_by(Step.id)
        )
    )


def unit_waiting_steps(session: Session, unit: str) -> list[tuple[Step, Document]]:
    """Steps waiting in ``unit``: addressed to it, or held by one of its people; oldest first."""
    members = select(Person.account).where(Person.unit_id == unit)
    rows = session.execute(
        select(Step, Document)
        .join(Document, Document.id == Step.document_id)
        .where(Step.state == "waiting")
        .where((Step.unit == unit) | Step.assignee.in_(members))
        .order_by(Step.id)
    )
    return [(step, document) for step, document in rows]


def _step_state(step: Step) -> StepState:
    return StepState(
        id=step.id,
        name=step.name,
        assignee=step.assignee,
        action=step.action,
        state=step.state,
        due_at=step.due_at,
        on_behalf_of=step.on_behalf_of,
        done_by=step.done_by,
        done_at=step.done_at,
        outcome=step.outcome,
        unit=step.unit,
    )
