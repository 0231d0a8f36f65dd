"""Hands accepted inbound messages to the processor: claims with a lease, marks the outcome."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from yizhan.mailstore.models import Delivery, Inbound

#: After this many failed attempts a message is set aside (state "failed"), kept for the admin.
MAX_ATTEMPTS = 5


def claim_accepted(
    session: Session,
    *,
    now: dt.datetime,
    limit: int,
    lease: dt.timedelta,
    owner: str,
) -> list[Inbound]:
    """Lease up to ``limit`` accepted messages, oldest first; others' leases are skipped."""
    query = (
        select(Inbound)
        .where(Inbound.state == "accepted")
        .where(or_(Inbound.lease_until.is_(None), Inbound.lease_until < now))
        .order_by(Inbound.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = list(session.scalars(query))
    for row in rows:
        row.lease_until, row.lease_owner = now + lease, owner
        row.attempts += 1
    return rows


_WORKER = " processor "


def worker_owner(owner: str, n: int) -> str:
    """The lease owner of a daemon's ``n``-th processing worker (daemon/workers.py)."""
    return f"{owner}{_WORKER}{n}"


def release_leases(session: Session, owner: str, *, with_workers: bool = True) -> int:
    """Free the leases ``owner`` held when it stopped; a restarted daemon calls this first.

    Only the daemon's own leases are taken back, with its processing workers' (when
    ``with_workers``): another daemon sharing the database may be working on its own right now.
    """
    released = 0
    for model in (Inbound, Delivery):
        mine = model.lease_owner == owner
        if with_workers:
            mine = or_(mine, model.lease_owner.startswith(owner + _WORKER, autoescape=True))
        # A delivery's lease ends at once but stays set: the next claim knows that an
        # attempt may have been made without its outcome recorded (outbox.Claimed.unsure).
        ended = Delivery.next_attempt_at if model is Delivery else None
        result = session.execute(
            update(model)
            .where(mine, model.lease_until.is_not(None))
            .values(lease_until=ended, lease_owner=None)
        )
        released += result.rowcount  # type: ignore[attr-defined]
    return released


def mark_processed(session: Session, inbound_id: int, *, now: dt.datetime) -> bool:
    """Mark a message processed; False when another worker already did (nothing to apply)."""
    row = session.get(Inbound, inbound_id, with_for_update=_lock(session))
    if row is None or row.state != "accepted":
        return False
    row.state, row.processed_at, row.lease_until = "processed", now, None
    return True


def mark_failed(
    session: Session, inbound_id: int, reason: str, *, now: dt.datetime, final: bool = False
) -> Inbound | None:
    """Record a processing failure; after MAX_ATTEMPTS (or at once when ``final``: the
    message itself is what fails, so trying again cannot help) it is set aside, not lost.

    Returns the row when this failure set it aside, so that its sender can be told.
    """
    row = session.get(Inbound, inbound_id)
    if row is None or row.state != "accepted":
        return None
    row.reason = reason
    if final or row.attempts >= MAX_ATTEMPTS:
        row.state, row.processed_at = "failed", now
        return row
    return None
    # Back off: the next claim waits for the lease to run out.


def not_started(session: Session, owner: str, in_hand: int) -> int:
    """Uncount the claim of the messages a dead worker had claimed with ``in_hand`` but not
    begun (they come after it in its batch): only the message it died on was attempted, so a
    poison message does not use up its neighbours' attempts. Returns how many."""
    row = session.get(Inbound, in_hand)
    if row is None or row.lease_owner != owner or row.lease_until is None:
        return 0
    # One claim gives its whole batch the same lease; the worker takes them in id order.
    result = session.execute(
        update(Inbound)
        .where(
            Inbound.lease_owner == owner,
            Inbound.lease_until == row.lease_until,
            Inbound.state == "accepted",
            Inbound.id > in_hand,
            Inbound.attempts > 0,
        )
        .values(attempts=Inbound.attempts - 1)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def postpone(session: Session, inbound_id: int, reason: str) -> None:
    """Try again when the lease runs out, without counting the attempt: the message was not
    at fault (the virus scanner was down), so it must not be set aside for it."""
    row = session.get(Inbound, inbound_id)
    if row is None or row.state != "accepted":
        return
    row.reason = reason
    row.attempts = max(row.attempts - 1, 0)


def mark_quarantined(session: Session, row: Inbound, reason: str) -> None:
    """Mark a message the content rules refused after acceptance; its bytes are in the
    quarantine, and it is not processed."""
    row.state, row.reason = "quarantined", reason


def _lock(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def set_aside(session: Session) -> list[Inbound]:
    """Messages set aside by the processor (see ``mark_failed``): kept, waiting for an admin."""
    return list(
        session.scalars(select(Inbound).where(Inbound.state == "failed").order_by(Inbound.id))
    )
