"""/audit and /audit.csv for the IT department and the office: the trail filtered by person,
action and date, and the same as CSV (mine rules 一(五))."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from yizhan.admin.web import Site, Viewer, guard
from yizhan.mailstore.overview import AuditFilter, audit_entries
from yizhan.routing.duties import Duty

__all__ = ["routes"]

PAGE = 100
#: Rows one CSV export holds at most.
CSV_ROWS = 100_000


def routes(site: Site) -> list[Route]:
    """/audit, /audit.csv."""
    readers = [Duty.IT, Duty.OFFICE]

    def read_filter(request: Request) -> AuditFilter:
        q = request.query_params
        return AuditFilter(
            actor=q.get("actor", "").strip().lower()[:64],
            action=q.get("action", "").strip()[:50],
            since=_day(site, q.get("since", "")),
            before=_day(site, q.get("until", ""), next_day=True),
        )

    async def page(request: Request, viewer: Viewer) -> Response:
        where = read_filter(request)
        try:
            offset = max(0, int(request.query_params.get("page", "1")) - 1) * PAGE
        except ValueError:
            offset = 0
        entries = await site.db(lambda s: audit_entries(s, where, offset=offset, limit=PAGE + 1))
        return site.render(
            request,
            viewer,
            "audit.html",
            entries=entries[:PAGE],
            more=len(entries) > PAGE,
            where=where,
            q=request.query_params,
            page_no=offset // PAGE + 1,
            query=str(request.url.query),
            json=lambda d: json.dumps(d, ensure_ascii=False),
        )

    async def export(request: Request, viewer: Viewer) -> Response:
        where = read_filter(request)
        entries = await site.db(lambda s: audit_entries(s, where, limit=CSV_ROWS))
        buffer = io.StringIO()
        out = csv.writer(buffer)
        out.writerow(["id", "at", "actor", "action", "target", "on_behalf_of", "detail"])
        for e in entries:
            out.writerow(
                [
                    e.id,
                    e.at.astimezone(site.tz).isoformat(timespec="seconds"),
                    _cell(e.actor),
                    _cell(e.action),
                    _cell(e.target or ""),
                    _cell(e.on_behalf_of or ""),
                    _cell(json.dumps(e.detail, ensure_ascii=False)),
                ]
            )
        stamp = site.now().astimezone(site.tz).strftime("%Y%m%d-%H%M")
        return Response(
            "\ufeff" + buffer.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="yizhan-audit-{stamp}.csv"'},
        )

    return [
        Route("/audit", guard(site, page, needs=readers), methods=["GET"]),
        Route("/audit.csv", guard(site, export, needs=readers), methods=["GET"]),
    ]


def _day(site: Site, text: str, *, next_day: bool = False) -> dt.datetime | None:
    try:
        day = dt.date.fromisoformat(text.strip())
    except ValueError:
        return None
    if next_day:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(0), tzinfo=site.tz)


def _cell(text: str) -> str:
    # A spreadsheet runs a cell that starts with = + - @ as a formula (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
