"""Stores delegations while away (外出授權, 第九條) and moves the waiting steps they cover.

``routing.delegation`` decides who acts for whom; this keeps the delegations and hands the
steps over, in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from yizhan.mailstore.models import DelegationRow, Step
from yizhan.routing.delegation import Delegation

__all__ = [
    "active_delegations",
    "covering",
    "done_on_behalf",
    "end_delegations",
    "hand_over",
    "start_delegation",
]


def active_delegations(session: Session) -> list[Delegation]:
    """Every delegation not yet ended (whether it has begun is ``routing``'s to say)."""
    rows = session.scalars(select(DelegationRow).where(DelegationRow.ended_at.is_(None)))
    return [
        Delegation(delegator=r.delegator, delegate=r.delegate, starts_at=r.starts_at, until=r.until)
        for r in rows
    ]


def start_delegation(
    session: Session, delegator: str, delegate: str, *, now: dt.datetime, until: dt.datetime
) -> DelegationRow:
    """Record a delegation from ``now`` until ``until``."""
    row = DelegationRow(delegator=delegator, delegate=delegate, starts_at=now, until=until)
    session.add(row)
    return row


def end_delegations(
    session: Session, delegator: str, now: dt.datetime, *, how: str
) -> list[DelegationRow]:
    """End ``delegator``'s open delegations (``how``: replaced, revoked); returns them."""
    rows = list(
        session.scalars(
            select(DelegationRow).where(
                DelegationRow.delegator == delegator, DelegationRow.ended_at.is_(None)
            )
        )
    )
    for row in rows:
        row.ended_at, row.ended_by = now, how
    return rows


def hand_over(
    session: Session,
    from_account: str,
    to_account: str,
    *,
    on_behalf_of: str | None,
    only_for: str | None = None,
) -> int:
    """Give ``from_account``'s waiting steps (those held for ``only_for``, if given) to
    ``to_account``, marked as done for ``on_behalf_of``; returns how many moved."""
    query = select(Step).where(Step.assignee == from_account, Step.state == "waiting")
    if only_for is not None:
        query = query.where(Step.on_behalf_of == only_for)
    steps = list(session.scalars(query))
    for step in steps:
        step.assignee, step.on_behalf_of = to_account, on_behalf_of
    return len(steps)


def done_on_behalf(session: Session, account: str, since: dt.datetime) -> list[Step]:
    """The steps done for ``account`` by a delegate since ``since``, in the order done."""
    return list(
        session.scalars(
            select(Step)
            .where(Step.on_behalf_of == account, Step.state == "done", Step.done_at >= since)
            .order_by(Step.done_at)
        )
    )


def covering(session: Session, account: str, until: dt.datetime) -> DelegationRow | None:
    """An open delegation of ``account`` that lasts at least until ``until``, if any."""
    return session.scalars(
        select(DelegationRow).where(
            DelegationRow.delegator == account,
            DelegationRow.ended_at.is_(None),
            DelegationRow.until >= until,
        )
    ).first()
