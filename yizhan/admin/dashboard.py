"""The dashboard (/) for the IT department and the office: waiting and overdue steps per unit,
documents per day (a server-drawn SVG), the queue's depth and age, quarantine, last errors.

Everyone else is sent to their own account page.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from yizhan.admin.timeline import duration_text
from yizhan.admin.web import Site, Viewer, guard
from yizhan.daemon.screening.quarantine import quarantine_of
from yizhan.mailstore.overview import documents_per_day, last_errors, queue_figures, unit_load
from yizhan.routing.duties import Duty

__all__ = ["Bar", "bars", "routes"]

#: Days the chart shows.
CHART_DAYS = 30


@dataclass(frozen=True, kw_only=True)
class Bar:
    """One bar of the chart, in SVG user units."""

    x: float
    y: float
    width: float
    height: float
    label: str
    count: int


def bars(
    counts: list[tuple[dt.date, int]], *, width: float = 600, height: float = 120
) -> list[Bar]:
    """Bars for ``counts`` in a ``width`` × ``height`` box (a 14-unit margin below for labels)."""
    if not counts:
        return []
    top = max(c for _d, c in counts) or 1
    step = width / len(counts)
    usable = height - 14
    return [
        Bar(
            x=round(i * step + 1, 1),
            y=round(usable - usable * c / top, 1),
            width=round(max(step - 2, 1), 1),
            height=round(usable * c / top, 1),
            label=day.strftime("%m-%d"),
            count=c,
        )
        for i, (day, c) in enumerate(counts)
    ]


def routes(site: Site) -> list[Route]:
    """/."""

    async def home(request: Request, viewer: Viewer) -> Response:
        if not viewer.duties & {Duty.IT, Duty.OFFICE}:
            return RedirectResponse("/unit" if Duty.UNIT_HEAD in viewer.duties else "/account", 303)
        now = site.now()

        def read(session: Session) -> dict[str, Any]:
            since = dt.datetime.combine(
                now.astimezone(site.tz).date() - dt.timedelta(days=CHART_DAYS - 1),
                dt.time(0),
                tzinfo=site.tz,
            )
            per_day = documents_per_day(session, since, site.tz, CHART_DAYS)
            depth, oldest = queue_figures(session)
            return {
                "loads": unit_load(session, now),
                "per_day": per_day,
                "bars": bars(per_day),
                "depth": depth,
                "oldest_age": duration_text(now - oldest) if oldest else None,
                "errors": last_errors(session),
            }

        data = await site.db(read)
        held = await run_in_threadpool(lambda: len(quarantine_of(site.ctx.config).entries()))
        return site.render(request, viewer, "dashboard.html", held=held, **data)

    return [Route("/", guard(site, home), methods=["GET"])]
