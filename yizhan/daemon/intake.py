"""Reads a module's new mail into what its flow needs: the fields its steps' conditions and
effects read, and the facts its content rules refuse on.

The engine's four document flows need nothing beyond the draft; the modules of 第二條 do:
a bulletin's scope and expiry (第二十三條), a leave's type, period and balance (第六條), a
change request's form (第十條), a supervision task's deadline and who may assign it (第六條).
The rules themselves are in ``routing``; this reads the store for what they need (a person's
leave book) and passes it in.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from yizhan.mailstore.leave import leave_records, service_start
from yizhan.routing.bulletins import bulletin_facts, parse_expiry, parse_scope
from yizhan.routing.calendar import WorkCalendar
from yizhan.routing.changes import Change, is_clerk_change, parse_change
from yizhan.routing.directory import Directory
from yizhan.routing.drafts import Draft
from yizhan.routing.leave import LeaveRequest, check_request
from yizhan.routing.supervision import KIND as SUPERVISION
from yizhan.routing.supervision import check_assignment


@dataclass(frozen=True, kw_only=True)
class Prepared:
    """A module's additions to ``workflow.open_document``: fields, facts and scope units.

    ``scope_units`` replaces the draft's 範圍 units when not None (a bulletin's scope also
    names roles and people, which are not units). ``due_at``, when not None, is the deadline
    of the first steps instead of the flow's working days (a supervision task's 期限).
    """

    fields: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, bool] = field(default_factory=dict)
    scope_units: tuple[str, ...] | None = None
    due_at: dt.datetime | None = None


def prepare(
    module: str,
    *,
    draft: Draft,
    subject: str,
    author: str,
    directory: Directory,
    session: Session,
    calendar: WorkCalendar,
    today: dt.date,
) -> Prepared | str:
    """What ``module`` adds for a new document, or the reason to refuse it."""
    if module == "gonggao":
        return _bulletin(draft, subject, directory, today)
    if module == "xiujia":
        request = check_request(
            type_text=draft.leave_type,
            period_text=draft.period,
            records=leave_records(session, author),
            service_start=service_start(session, author),
            calendar=calendar,
            today=today,
        )
        return request if isinstance(request, str) else _leave(request)
    if module == "biangeng":
        change = parse_change(draft.extra, requester=author, directory=directory)
        return "\n".join(change) if isinstance(change, list) else _change(change, directory)
    if module == SUPERVISION:
        assignment = check_assignment(
            author=author,
            to_units=draft.to_units,
            cc_units=draft.cc_units,
            scope=draft.scope,
            deadline_text=draft.deadline,
            directory=directory,
            calendar=calendar,
            today=today,
        )
        if isinstance(assignment, str):
            return assignment
        return Prepared(fields=assignment.fields(), due_at=assignment.due_at)
    return Prepared()


def _bulletin(draft: Draft, subject: str, directory: Directory, today: dt.date) -> Prepared | str:
    scope = parse_scope(draft.scope, directory)
    if scope.unknown:
        unknown = "、".join(scope.unknown)
        return (
            f"發布範圍中不認識：{unknown}。請寫單位、角色（如 綜合人員）或人員。\n"
            f"Not understood in the scope: {', '.join(scope.unknown)}. Write units, roles "
            "(e.g. clerk) or people."
        )
    expires = parse_expiry(draft.deadline, today)
    if isinstance(expires, str):
        return expires
    facts = bulletin_facts(draft, subject, scope)
    return Prepared(
        fields={
            "scope_roles": list(scope.roles),
            "scope_people": list(scope.people),
            "all_bureau": scope.all_bureau,
            "important": draft.important,
            "special": draft.special,
            "expires": expires.isoformat(),
            # The condition of the gonggao flow's two approval steps (第二十三條).
            "needs_bureau_leader": facts["needs_bureau_leader"],
        },
        facts=facts,
        scope_units=scope.units,
    )


def _leave(request: LeaveRequest) -> Prepared:
    return Prepared(
        fields={
            "leave_type": request.leave_type,
            "leave_start": request.start.isoformat(),
            "leave_end": request.end.isoformat(),
            "leave_days": request.days,
            # The condition of the xiujia flow's bureau-leader step.
            "long_leave": request.long,
        }
    )


def _change(change: Change, directory: Directory) -> Prepared:
    return Prepared(
        fields={"change": change.as_fields(), "clerk_change": is_clerk_change(change, directory)}
    )
