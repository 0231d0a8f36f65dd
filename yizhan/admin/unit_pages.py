"""A unit's /unit (its open and overdue items) and HR's /leave (the leave book, 第六條): the
people who answer for them see them, and HR corrects the book here as by mail.

/unit is what ``TODO unit`` (待辦 本單位) at cmd@ answers, for the same people: the unit's clerk,
who keeps its items, and its head, who answers for them (第五條; ``commands.todo.UNIT_ROLES``).

A correction on the page is the text HR would send to xiujia@ after 設置 (SET): a service start,
an adjustment with its reason, a cancelled record. It is read and applied by the same code as the
mail (``routing.leave.parse_hr_set``, ``mailstore.leave.correct``), audited the same way.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from yizhan.admin.web import Site, Viewer, forbidden, guard
from yizhan.daemon.desk.commands.todo import UNIT_ROLES
from yizhan.mailstore import leave as leave_store
from yizhan.mailstore.models import LeaveProfile, LeaveRecordRow, Person
from yizhan.mailstore.overview import unit_load, unit_open_steps
from yizhan.routing import leave as leave_rules
from yizhan.routing.duties import Duty

__all__ = ["routes"]

#: Lines of the leave book shown at once.
LEAVE_ROWS = 300


def routes(site: Site) -> list[Route]:
    """/unit, /leave."""

    async def unit(request: Request, viewer: Viewer) -> Response:
        if not viewer.roles & UNIT_ROLES:
            return forbidden()
        now = site.now()

        def read(session: Session) -> dict[str, Any]:
            return {
                "items": unit_open_steps(session, viewer.unit),
                "load": unit_load(session, now, unit=viewer.unit),
            }

        data = await site.db(read)
        return site.render(request, viewer, "unit.html", now=now, **data)

    def leave_data(session: Session, account: str) -> dict[str, Any]:
        query = (
            select(LeaveRecordRow, Person.name)
            .join(Person, Person.account == LeaveRecordRow.account)
            .order_by(LeaveRecordRow.id.desc())
            .limit(LEAVE_ROWS)
        )
        profiles = select(LeaveProfile, Person.name).join(
            Person, Person.account == LeaveProfile.account
        )
        balance = None
        if account:
            query = query.where(LeaveRecordRow.account == account)
            profiles = profiles.where(LeaveProfile.account == account)
            if session.get(Person, account) is not None:
                year = site.now().astimezone(site.ctx.config.tzinfo).year
                balance = leave_rules.balance(
                    leave_store.leave_records(session, account),
                    leave_store.service_start(session, account),
                    year,
                ).text()
        return {
            "records": list(session.execute(query)),
            "profiles": list(
                session.execute(profiles.order_by(LeaveProfile.account).limit(LEAVE_ROWS))
            ),
            "balance": balance,
        }

    async def leave(request: Request, viewer: Viewer) -> Response:
        account = request.query_params.get("account", "").strip().lower()[:64]
        data = await site.db(lambda session: leave_data(session, account))
        return site.render(request, viewer, "leave.html", account=account, correction="", **data)

    async def correct(request: Request, viewer: Viewer) -> Response:
        form = await request.form()
        text = " ".join(str(form.get("correction", "")).split())[:300]
        parsed = leave_rules.parse_hr_set(
            text, site.now().astimezone(site.ctx.config.tzinfo).date()
        )
        if isinstance(parsed, str):
            # The usage, as the mail answers a correction it cannot read; nothing changed.
            error, notice = parsed, None
        else:
            known = await site.db(lambda session: session.get(Person, parsed.account) is not None)
            if not known:
                error, notice = f"沒有帳號 {parsed.account}。No account {parsed.account}.", None
            else:
                notice = await site.write(
                    lambda session: leave_store.correct(
                        session, parsed, actor=viewer.account, now=site.now()
                    )
                )
                error = None
        account = parsed.account if not isinstance(parsed, str) else ""
        data = await site.db(lambda session: leave_data(session, account))
        return site.render(
            request,
            viewer,
            "leave.html",
            account=account,
            notice=notice,
            error=error,
            correction="" if notice else text,
            status_code=400 if error else 200,
            **data,
        )

    return [
        Route("/unit", guard(site, unit), methods=["GET"]),
        Route("/leave", guard(site, leave, needs=[Duty.HR]), methods=["GET"]),
        Route("/leave", guard(site, correct, needs=[Duty.HR]), methods=["POST"]),
    ]
