"""A person who is suspended, revoked or moves unit leaves no work stuck (第十條; mine rules
一(三)): each of their waiting steps goes to their unit head, or the successor the change request
names (``routing.oversight.successor``), who is told why.

The handover is a REASSIGN the system makes (``routing.oversight.reassign``): the same decision,
the same notices and the same trail as the office's command. This only finds the steps and
decides; the desk applies the outcomes (``desk.decisions``, ``desk.acting``).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from yizhan.daemon.desk.request import Outcome
from yizhan.mailstore import audit
from yizhan.mailstore.documents import load_state
from yizhan.mailstore.models import Document, Step
from yizhan.routing.directory import Directory
from yizhan.routing.oversight import leaving_reason, reassign, successor
from yizhan.routing.rules import Rules

__all__ = ["handover_outcomes"]


def handover_outcomes(
    session: Session,
    directory: Directory,
    rules: Rules,
    *,
    account: str,
    unit: str,
    why: str,
    actor: str,
    now: dt.datetime,
    named: str | None = None,
) -> list[Outcome]:
    """The reassignments of ``account``'s waiting steps, who leaves ``unit`` (``why``:
    suspended, revoked, moved); ``directory`` is as it is after the change."""
    steps = list(
        session.scalars(
            select(Step).where(Step.assignee == account, Step.state == "waiting").order_by(Step.id)
        )
    )
    if not steps:
        return []
    to = successor(directory, account, unit=unit, named=named)
    if to is None:
        # Nobody above them is left: the office's oversight (TODO, the escalation) finds it.
        audit.record(
            session,
            at=now,
            actor=actor,
            action="handover.nobody",
            target=account,
            detail={"steps": [s.id for s in steps]},
        )
        return []
    reason = leaving_reason(directory, account, why)
    outcomes = []
    for step in steps:
        document = session.get(Document, step.document_id)
        if document is None:
            continue
        decision = reassign(
            load_state(session, document),
            step_id=step.id,
            to=to,
            reason=reason,
            actor=actor,
            directory=directory,
            flow=rules.flow(document.kind),
            now=now,
        )
        if decision.accepted:
            outcomes.append(Outcome(document=document, decision=decision, actor=actor))
    return outcomes
