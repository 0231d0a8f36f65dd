"""The admin web application (Starlette): its route list, the health check and the static files.

Each page family is its own module with a ``routes(site)`` function; ``create_app`` lists them.
Every response carries a Content-Security-Policy that allows no script at all: the pages are
plain forms.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import func, select, text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from yizhan import __version__
from yizhan.admin import (
    account,
    assessment_page,
    audit_pages,
    auth,
    dashboard,
    documents,
    help_page,
    it_pages,
    office_pages,
    ops_pages,
    oversight,
    people,
    rules_pages,
    step_replies,
    support_page,
    unit_pages,
)
from yizhan.admin.dovecot_auth import dovecot_auth_routes
from yizhan.admin.web import Site
from yizhan.daemon.context import Context
from yizhan.mailstore.models import Delivery, Inbound

#: No script, no plug-in, nothing from elsewhere; pages may frame only this site.
CSP = (
    "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'self'; img-src 'self' data:"
)


def create_app(ctx: Context, *, on_queued: Callable[[], None] | None = None) -> Starlette:
    """The admin application bound to one Yizhan context; ``on_queued`` is called after a page
    queued mail (the daemon's couriers then deliver it at once)."""
    site = Site(ctx, on_queued=on_queued)

    def counts() -> dict[str, int]:
        with ctx.sessions() as session:
            session.execute(text("SELECT 1"))
            accepted = session.scalar(
                select(func.count()).select_from(Inbound).where(Inbound.state == "accepted")
            )
            queued = session.scalar(
                select(func.count()).select_from(Delivery).where(Delivery.state == "queued")
            )
        return {"inbound_waiting": accepted or 0, "outbound_waiting": queued or 0}

    async def health(request: Request) -> JSONResponse:
        try:
            figures = await run_in_threadpool(counts)
        except Exception as exc:
            return JSONResponse({"status": "error", "database": str(exc)}, status_code=503)
        return JSONResponse({"status": "ok", "version": __version__, **figures})

    routes: list[BaseRoute] = [
        Route("/health", health),
        *ops_pages.routes(ctx),
        Mount("/static", StaticFiles(packages=[("yizhan.admin", "static")]), name="static"),
        *auth.routes(site),
        *dashboard.routes(site),
        *account.routes(site),
        *documents.routes(site),
        # Before the office's /documents/{id}/{action}, which would take /reply and /object.
        *step_replies.routes(site),
        *oversight.routes(site),
        *people.routes(site),
        *it_pages.routes(site),
        *rules_pages.routes(site),
        *audit_pages.routes(site),
        *assessment_page.routes(site),
        *unit_pages.routes(site),
        *office_pages.routes(site),
        *support_page.routes(site),
        *help_page.routes(site),
        *dovecot_auth_routes(ctx),
    ]
    return Starlette(routes=routes, middleware=[Middleware(BaseHTTPMiddleware, dispatch=_headers)])


async def _headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if request.url.path != "/health" and not request.url.path.startswith("/static"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response
