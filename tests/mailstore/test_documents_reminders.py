"""Tests for the reminder bookkeeping of yizhan.mailstore.documents.apply_decision.

An opened step with a deadline is put on the reminder sweep (``next_reminder_at``); a closed
or cancelled step is taken off it, so reminders stop the moment a step is done.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select

from yizhan.daemon.context import Context
from yizhan.mailstore.documents import apply_decision, create_document
from yizhan.mailstore.models import Document, Step
from yizhan.routing.calendar import WorkCalendar
from yizhan.routing.documents import Decision, StepState
from yizhan.routing.reminders import first_reminder_at

TZ = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar(tz=TZ)
OPENED = dt.datetime(2026, 9, 22, 10, 0, tzinfo=TZ)
DUE = dt.datetime(2026, 9, 24, 17, 30, tzinfo=TZ)


def _open(ctx: Context, decision: Decision, **kwargs: object) -> tuple[int, list[int]]:
    with ctx.sessions.begin() as session:
        document = create_document(
            session,
            kind="qianbao",
            title="請示",
            author="xiewenbin",
            unit="inspection",
            urgency=None,
            fields={},
            source_inbound=None,
            now=OPENED,
        )
        steps = apply_decision(
            session,
            document,
            decision,
            actor="xiewenbin",
            on_behalf_of=None,
            now=OPENED,
            **kwargs,  # type: ignore[arg-type]
        )
        return document.id, [s.id for s in steps]


def _opening(*specs: StepState) -> Decision:
    return Decision(accepted=True, reply="", state="reviewing", open_steps=specs)


def test_opened_steps_are_planned(bureau: Context) -> None:
    # With the calendar's plan the first reminder time is stored; without it the step is due
    # for the sweep at once, which plans it; a step without a deadline is never reminded.
    review = StepState(
        id=None, name="review", assignee="liangguoqiang", action="approve", due_at=DUE
    )
    note = StepState(id=None, name="read", assignee="hanxue", action="read")
    _, (planned, undated) = _open(
        bureau,
        _opening(review, note),
        first_reminder=lambda opened, due: first_reminder_at(opened, due, CAL),
    )
    _, (unplanned,) = _open(bureau, _opening(review))
    with bureau.sessions() as session:
        times = {s.id: s.next_reminder_at for s in session.scalars(select(Step))}
    assert times[planned] == dt.datetime(2026, 9, 23, 13, 45, tzinfo=TZ)
    assert times[undated] is None
    assert times[unplanned] == OPENED


def test_closed_and_cancelled_steps_leave_the_sweep(bureau: Context) -> None:
    # Reminders stop the moment the step is done (or cancelled by a withdrawal).
    review = StepState(
        id=None, name="review", assignee="liangguoqiang", action="approve", due_at=DUE
    )
    document_id, (first, second) = _open(bureau, _opening(review, review))
    with bureau.sessions.begin() as session:
        document = session.get(Document, document_id)
        assert document is not None
        apply_decision(
            session,
            document,
            Decision(accepted=True, reply="", close_steps=(first,), cancel_steps=(second,)),
            actor="liangguoqiang",
            on_behalf_of=None,
            now=OPENED + dt.timedelta(hours=1),
        )
    with bureau.sessions() as session:
        rows = session.scalars(select(Step).order_by(Step.id)).all()
        assert [(s.state, s.next_reminder_at) for s in rows] == [
            ("done", None),
            ("cancelled", None),
        ]
