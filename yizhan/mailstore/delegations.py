"""Keeps delegations while away (外出授權, 第九條): starts, ends and reads them, moves the steps.

The writes that DELEGATE and REVOKE at cmd@ make, in one place for every caller (the desk, the
admin page): whether a delegation may be made is ``routing.delegation``'s decision; this module
only stores it and moves the waiting steps, audited, in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from yizhan.mailstore import audit
from yizhan.mailstore.models import DelegationRow, Step
from yizhan.routing.delegation import Delegation


@dataclass(frozen=True, kw_only=True)
class Revoked:
    """What REVOKE did: the steps that came back, and those done on the delegator's behalf."""

    moved: int
    done_on_behalf: list[Step]


def open_delegations(session: Session) -> list[Delegation]:
    """Every delegation not ended yet (``routing.delegation.active`` decides which hold)."""
    rows = session.scalars(select(DelegationRow).where(DelegationRow.ended_at.is_(None))).all()
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


def start_delegation(session: Session, delegation: Delegation, *, now: dt.datetime) -> int:
    """Store ``delegation`` (checked by ``routing.delegation.check_new_delegation``), replacing
    the delegator's earlier one, and give the delegate the delegator's waiting steps.

    Returns how many waiting steps moved.
    """
    account = delegation.delegator
    end_delegations(session, account, now, how="replaced")
    session.add(
        DelegationRow(
            delegator=account,
            delegate=delegation.delegate,
            starts_at=delegation.starts_at,
            until=delegation.until,
        )
    )
    audit.record(
        session,
        at=now,
        actor=account,
        action="delegation.start",
        target=delegation.delegate,
        detail={"until": delegation.until.isoformat()},
    )
    return reassign_steps(session, account, delegation.delegate, on_behalf_of=account)


def revoke_delegation(session: Session, account: str, *, now: dt.datetime) -> Revoked | None:
    """End ``account``'s delegation and take its waiting steps back; None when there was none."""
    rows = end_delegations(session, account, now, how="revoked")
    if not rows:
        return None
    moved = 0
    for delegation in rows:
        moved += reassign_steps(
            session, delegation.delegate, account, on_behalf_of=None, only_for=account
        )
    done = list(
        session.scalars(
            select(Step).where(
                Step.on_behalf_of == account,
                Step.state == "done",
                Step.done_at >= min(r.starts_at for r in rows),
            )
        )
    )
    audit.record(session, at=now, actor=account, action="delegation.revoke", target=account)
    return Revoked(moved=moved, done_on_behalf=done)


def end_delegations(
    session: Session, account: str, now: dt.datetime, *, how: str
) -> list[DelegationRow]:
    """Mark ``account``'s open delegations ended (``how``: revoked, replaced, expired)."""
    rows = list(
        session.scalars(
            select(DelegationRow).where(
                DelegationRow.delegator == account, DelegationRow.ended_at.is_(None)
            )
        )
    )
    for r in rows:
        r.ended_at, r.ended_by = now, how
    return rows


def reassign_steps(
    session: Session,
    from_account: str,
    to_account: str,
    *,
    on_behalf_of: str | None,
    only_for: str | None = None,
) -> int:
    """Give ``from_account``'s waiting steps (only those for ``only_for``, when given) to
    ``to_account``, acting for ``on_behalf_of``; how many moved."""
    query = select(Step).where(Step.assignee == from_account, Step.state == "waiting")
    if only_for is not None:
        query = query.where(Step.on_behalf_of == only_for)
    steps = list(session.scalars(query))
    for step in steps:
        step.assignee, step.on_behalf_of = to_account, on_behalf_of
    return len(steps)
