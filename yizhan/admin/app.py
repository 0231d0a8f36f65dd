"""The admin web application (Starlette); for now its health check and a front page."""

from __future__ import annotations

from sqlalchemy import func, select, text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from yizhan import __version__
from yizhan.admin.dovecot_auth import dovecot_auth_routes
from yizhan.daemon.context import Context
from yizhan.mailstore.models import Delivery, Inbound


def create_app(ctx: Context) -> Starlette:
    """The admin application bound to one Yizhan context."""

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

    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(
            "<!doctype html><html lang=zh-Hant><meta charset=utf-8>"
            f"<title>驛站 Yizhan</title><h1>驛站 Yizhan {__version__}</h1>"
            "<p>管理頁面 · Admin page. <a href=/health>health</a></p></html>"
        )

    return Starlette(
        routes=[Route("/", index), Route("/health", health), *dovecot_auth_routes(ctx)]
    )
