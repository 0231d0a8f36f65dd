"""A unit head's /unit (their unit's open and overdue items) and HR's /leave (the leave book,
第六條): read-only views for the people who answer for them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from yizhan.admin.web import Site, Viewer, guard
from yizhan.mailstore.models import LeaveProfile, LeaveRecordRow, Person
from yizhan.mailstore.overview import unit_load, unit_open_steps
from yizhan.routing.duties import Duty

__all__ = ["routes"]

#: Lines of the leave book shown at once.
LEAVE_ROWS = 300


def routes(site: Site) -> list[Route]:
    """/unit, /leave."""

    async def unit(request: Request, viewer: Viewer) -> Response:
        now = site.now()

        def read(session: Session) -> dict[str, Any]:
            return {
                "items": unit_open_steps(session, viewer.unit),
                "load": unit_load(session, now, unit=viewer.unit),
            }

        data = await site.db(read)
        return site.render(request, viewer, "unit.html", now=now, **data)

    async def leave(request: Request, viewer: Viewer) -> Response:
        account = request.query_params.get("account", "").strip().lower()[:64]

        def read(session: Session) -> dict[str, Any]:
            query = (
                select(LeaveRecordRow, Person.name)
                .join(Person, Person.account == LeaveRecordRow.account)
                .order_by(LeaveRecordRow.id.desc())
                .limit(LEAVE_ROWS)
            )
            profiles = select(LeaveProfile, Person.name).join(
                Person, Person.account == LeaveProfile.account
            )
            if account:
                query = query.where(LeaveRecordRow.account == account)
                profiles = profiles.where(LeaveProfile.account == account)
            return {
                "records": list(session.execute(query)),
                "profiles": list(
                    session.execute(profiles.order_by(LeaveProfile.account).limit(LEAVE_ROWS))
                ),
            }

        data = await site.db(read)
        return site.render(request, viewer, "leave.html", account=account, **data)

    return [
        Route("/unit", guard(site, unit, needs=[Duty.UNIT_HEAD]), methods=["GET"]),
        Route("/leave", guard(site, leave, needs=[Duty.HR]), methods=["GET"]),
    ]
