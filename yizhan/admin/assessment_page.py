"""/assessment and /assessment.json for the office and the IT department: the monthly
assessment (mine rules 二 考核) of any month, as the office gets it by mail and as
``yizhan report assessment --month YYYY-MM --json`` prints it."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from yizhan.admin.web import Site, Viewer, guard
from yizhan.mailstore.assessment import assessment
from yizhan.routing.assessment import parse_month, previous_month
from yizhan.routing.duties import Duty

__all__ = ["routes"]


def routes(site: Site) -> list[Route]:
    """/assessment, /assessment.json."""
    readers = [Duty.OFFICE, Duty.IT]

    def month_of(request: Request) -> tuple[int, int] | str:
        text = request.query_params.get("month", "").strip()
        if not text:
            return previous_month(site.now().astimezone(site.tz).date())
        try:
            return parse_month(text)
        except ValueError as exc:
            return str(exc)

    async def page(request: Request, viewer: Viewer) -> Response:
        month = month_of(request)
        if isinstance(month, str):
            return site.render(
                request, viewer, "assessment.html", report=None, problem=month, status_code=400
            )
        year, number = month
        now = site.now()
        report = await site.db(lambda s: assessment(s, year, number, site.tz, now))
        return site.render(request, viewer, "assessment.html", report=report, problem="")

    async def data(request: Request, viewer: Viewer) -> Response:
        month = month_of(request)
        if isinstance(month, str):
            return Response(month, status_code=400, media_type="text/plain; charset=utf-8")
        year, number = month
        now = site.now()
        report = await site.db(lambda s: assessment(s, year, number, site.tz, now))
        return Response(
            json.dumps(report, ensure_ascii=False, indent=2),
            media_type="application/json; charset=utf-8",
        )

    return [
        Route("/assessment", guard(site, page, needs=readers), methods=["GET"]),
        Route("/assessment.json", guard(site, data, needs=readers), methods=["GET"]),
    ]
