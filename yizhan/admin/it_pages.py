"""The IT department's running of the system (第四條): quarantine, the outbound queue and the
mail set aside, the content rules in force and the published tools.

Release and delete are the ``yizhan quarantine`` verbs' own functions, under the deciding
person's account.
"""

from __future__ import annotations

import tomllib
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from yizhan.admin.web import Site, Viewer, guard
from yizhan.daemon.rules_file import load_content_rules
from yizhan.daemon.screening.quarantine import delete_entry, quarantine_of, release_entry
from yizhan.mailstore.inbound import StoreFailed
from yizhan.mailstore.outbox import queue_listing
from yizhan.mailstore.pending import set_aside
from yizhan.mailstore.quarantine import QuarantineError
from yizhan.mailstore.tools import published
from yizhan.routing.content import ContentRulesError
from yizhan.routing.duties import Duty

__all__ = ["routes"]

#: Rows of the queue shown at once.
QUEUE_ROWS = 200


def routes(site: Site) -> list[Route]:
    """/quarantine, /queue, /content, /tools (IT department only)."""
    it = [Duty.IT]

    async def quarantine(request: Request, viewer: Viewer, **extra: Any) -> Response:
        show_all = request.query_params.get("all") == "1"
        entries = await run_in_threadpool(
            lambda: quarantine_of(site.ctx.config).entries(include_done=show_all)
        )
        return site.render(
            request, viewer, "quarantine.html", entries=entries, show_all=show_all, **extra
        )

    async def decide(request: Request, viewer: Viewer) -> Response:
        entry_id = str(request.path_params["entry"])
        action = str(request.path_params["action"])

        def run() -> str | None:
            try:
                if action == "release":
                    release_entry(site.ctx, entry_id, by=viewer.account)
                elif action == "delete":
                    delete_entry(site.ctx, entry_id, by=viewer.account)
                else:
                    return f"unknown action {action!r}"
            except (QuarantineError, StoreFailed) as exc:
                return str(exc)
            return None

        problem = await run_in_threadpool(run)
        if problem is not None:
            return await quarantine(request, viewer, error=problem)
        return await quarantine(request, viewer, notice=f"{entry_id}: {action}")

    async def queue(request: Request, viewer: Viewer) -> Response:
        def read(session: Any) -> dict[str, Any]:
            rows = queue_listing(session, now=site.now())
            return {"rows": rows[:QUEUE_ROWS], "total": len(rows), "failed": set_aside(session)}

        data = await site.db(read)
        return site.render(request, viewer, "queue.html", now=site.now(), **data)

    async def content(request: Request, viewer: Viewer) -> Response:
        path = site.ctx.config.rules_file

        def read() -> dict[str, Any]:
            problem = None
            table: Any = {}
            try:
                load_content_rules(path)
                if path.exists():
                    table = tomllib.loads(path.read_text(encoding="utf-8")).get("content", {})
            except (ContentRulesError, tomllib.TOMLDecodeError, OSError) as exc:
                problem = str(exc)
            return {
                "table": table,
                "problem": problem,
                "source": str(path) if path.exists() else None,
            }

        data = await run_in_threadpool(read)
        tools = await site.db(published)
        return site.render(request, viewer, "content.html", tools=tools, **data)

    return [
        Route("/quarantine", guard(site, quarantine, needs=it), methods=["GET"]),
        Route("/quarantine/{entry}/{action}", guard(site, decide, needs=it), methods=["POST"]),
        Route("/queue", guard(site, queue, needs=it), methods=["GET"]),
        Route("/content", guard(site, content, needs=it), methods=["GET"]),
    ]
