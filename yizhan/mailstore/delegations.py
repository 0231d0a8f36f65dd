"""Stores delegations while away (外出授權, 第九條) and moves the waiting steps they cover.

The writes that DELEGATE and REVOKE make, in one place for every caller (the desk's commands,
the admin page): whether a delegation may be made, and who acts for whom, is
``routing.delegation``'s to decide; this keeps the delegations, audited, and hands the steps
over, in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from yizhan.mailstore import audit
from yizhan.mailstore.models import DelegationRow, Step
from yizhan.routing.delegation import Delegation

__all__ = [
    "Revoked",
    "active_delegations",
    "covering",
    "delegation_of",
    "done_on_behalf",
    "end_delegations",
    "hand_over",
    "open_delegations_of",
    "revoke_delegation",
    "start_delegation",
]


@dataclass(frozen=True, kw_only=True)
class Revoked:
    """What REVOKE did: the steps that came back, and those done on the delegator's behalf."""

    moved: int
    done_on_behalf: list[Step]


def active_delegations(session: Session) -> list[Delegation]:
    """Every delegation not yet ended (whether it has begun is ``routing``'s to say)."""
    rows = session.scalars(select(DelegationRow).where(DelegationRow.ended_at.is_(None)))
    return [
        Delegation(delegator=r.delegator, delegate=r.delegate, starts_at=r.starts_at, until=r.until)
        for r in rows
    ]


def delegation_of(session: Session, account: str) -> DelegationRow | None:
    """The delegation ``account`` made that is not ended, if any (the newest)."""
    return session.scalars(
        select(DelegationRow)
        .where(DelegationRow.delegator == account, DelegationRow.ended_at.is_(None))
        .order_by(DelegationRow.starts_at.desc())
    ).first()


def open_delegations_of(session: Session, account: str) -> list[DelegationRow]:
    """Every delegation ``account`` made that has not ended, in force or planned, by first day."""
    return list(
        session.scalars(
            select(DelegationRow)
            .where(DelegationRow.delegator == account, DelegationRow.ended_at.is_(None))
            .order_by(DelegationRow.starts_at, DelegationRow.id)
        )
    )


def start_delegation(session: Session, delegation: Delegation, *, now: dt.datetime) -> int:
    """Store ``delegation`` (checked by ``routing.delegation.check_new_delegation``), replacing
    the delegator's earlier one, and give the delegate the delegator's waiting steps.

    Returns how many waiting steps moved. A delegation planned ahead (starting later) is only
    stored: the scheduler begins it on its first day (``jobs.delegations``), and it replaces
    nothing (``routing.delegation`` refused it if it overlaps another).
    """
    account = delegation.delegator
    planned = delegation.starts_at > now
    if not planned:
        end_delegations(session, account, now, how="replaced", started_by=now)
    session.add(
        DelegationRow(
            delegator=account,
            delegate=delegation.delegate,
            starts_at=delegation.starts_at,
            until=delegation.until,
            begun=not planned,
        )
    )
    audit.record(
        session,
        at=now,
        actor=account,
        action="delegation.plan" if planned else "delegation.start",
        target=delegation.delegate,
        detail={"from": delegation.starts_at.isoformat(), "until": delegation.until.isoformat()},
    )
    if planned:
        return 0
    return hand_over(session, account, delegation.delegate, on_behalf_of=account)


def revoke_delegation(session: Session, account: str, *, now: dt.datetime) -> Revoked | None:
    """End ``account``'s delegations and take their waiting steps back; None when there was
    none."""
    rows = end_delegations(session, account, now, how="revoked")
    if not rows:
        return None
    moved = sum(
        hand_over(session, row.delegate, account, on_behalf_of=None, only_for=account)
        for row in rows
    )
    done = done_on_behalf(session, account, min(row.starts_at for row in rows))
    audit.record(session, at=now, actor=account, action="delegation.revoke", target=account)
    return Revoked(moved=moved, done_on_behalf=done)


def end_delegations(
    session: Session,
    delegator: str,
    now: dt.datetime,
    *,
    how: str,
    started_by: dt.datetime | None = None,
) -> list[DelegationRow]:
    """End ``delegator``'s open delegations (``how``: replaced, revoked, expired), or only those
    begun by ``started_by``; returns them."""
    query = select(DelegationRow).where(
        DelegationRow.delegator == delegator, DelegationRow.ended_at.is_(None)
    )
    if started_by is not None:
        query = query.where(DelegationRow.starts_at <= started_by)
    rows = list(session.scalars(query))
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
