"""Stores HR's leave book (第六條): records, service starts, corrections, and pending requests."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from yizhan.mailstore import audit
from yizhan.mailstore.models import Document, LeaveProfile, LeaveRecordRow
from yizhan.routing.effects import RecordLeave
from yizhan.routing.leave import ADJUST, HrCorrection, LeaveRecord
from yizhan.routing.rules import CLOSED, RETURNED


def leave_records(session: Session, account: str) -> list[LeaveRecord]:
    """The person's book, plus their requests still being approved (state ``pending``)."""
    rows = session.scalars(
        select(LeaveRecordRow).where(LeaveRecordRow.account == account).order_by(LeaveRecordRow.id)
    ).all()
    records = [
        LeaveRecord(
            id=r.id, leave_type=r.leave_type, start=r.start, end=r.end, days=r.days, state=r.state
        )
        for r in rows
    ]
    # A request being approved holds its days, so that two requests cannot spend them twice.
    pending = session.scalars(
        select(Document).where(
            Document.kind == "xiujia",
            Document.author == account,
            Document.state.not_in((CLOSED, RETURNED, "draft")),
        )
    ).all()
    for doc in pending:
        f = doc.fields
        if "leave_start" in f:
            records.append(
                LeaveRecord(
                    id=None,
                    leave_type=str(f["leave_type"]),
                    start=dt.date.fromisoformat(f["leave_start"]),
                    end=dt.date.fromisoformat(f["leave_end"]),
                    days=int(f["leave_days"]),
                    state="pending",
                )
            )
    return records


def service_start(session: Session, account: str) -> dt.date | None:
    """When the person's service began, as HR recorded it."""
    row = session.get(LeaveProfile, account)
    return row.service_start if row is not None else None


def record_leave(
    session: Session, effect: RecordLeave, *, document_id: int, actor: str, now: dt.datetime
) -> LeaveRecordRow:
    """Write an approved leave into the book, with an audit entry."""
    row = LeaveRecordRow(
        account=effect.account,
        leave_type=effect.leave_type,
        start=effect.start,
        end=effect.end,
        days=effect.days,
        document_id=document_id,
        recorded_by=actor,
        recorded_at=now,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        at=now,
        actor=actor,
        action="leave.record",
        target=effect.account,
        detail={"record": row.id, "document": document_id, "days": effect.days},
    )
    return row


def correct(session: Session, correction: HrCorrection, *, actor: str, now: dt.datetime) -> str:
    """Apply an HR correction; the answer to HR, in both languages."""
    who = correction.account
    if correction.what == "service_start":
        assert correction.service_start is not None
        profile = session.get(LeaveProfile, who)
        if profile is None:
            profile = LeaveProfile(account=who, service_start=correction.service_start)
            session.add(profile)
        profile.service_start, profile.updated_by, profile.updated_at = (
            correction.service_start,
            actor,
            now,
        )
        detail: dict[str, object] = {"service_start": correction.service_start.isoformat()}
        reply = (
            f"已登記 {who} 參加工作時間 {correction.service_start}。\n"
            f"Recorded {who}'s service start {correction.service_start}."
        )
    elif correction.what == "adjust":
        today = now.date()
        row = LeaveRecordRow(
            account=who,
            leave_type=ADJUST,
            start=today,
            end=today,
            days=correction.days,
            note=correction.note,
            recorded_by=actor,
            recorded_at=now,
        )
        session.add(row)
        session.flush()
        detail = {"record": row.id, "days": correction.days, "note": correction.note}
        reply = (
            f"已調整 {who} {today.year}年年休假 {correction.days:+d} 天（記錄 {row.id}）。\n"
            f"Adjusted {who}'s {today.year} annual leave by {correction.days:+d} "
            f"(record {row.id})."
        )
    else:
        found = session.get(LeaveRecordRow, correction.record_id)
        if found is None or found.account != who or found.state != "recorded":
            return (
                f"{who} 沒有有效的記錄 {correction.record_id}。\n"
                f"{who} has no recorded line {correction.record_id}."
            )
        found.state = "cancelled"
        detail = {"record": found.id}
        reply = f"已取消記錄 {found.id}。\nRecord {found.id} cancelled."
    audit.record(
        session, at=now, actor=actor, action=f"leave.{correction.what}", target=who, detail=detail
    )
    return reply
