"""What monitoring reads: ``/healthz`` (the process answers), ``/readyz`` (the database, clamd,
gpg and Dovecot answer) and Prometheus ``/metrics``.

``/metrics`` is for loopback, or for a scraper that sends ``Authorization: Bearer`` with
``[metrics] token``; anyone else gets 403. The checks hold no secret but say what is down, so
``/readyz`` is under the same rule; ``/healthz`` says nothing and is open.
"""

from __future__ import annotations

import hmac
import ipaddress

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from yizhan.daemon.context import Context
from yizhan.daemon.health import readiness
from yizhan.daemon.metrics import exposition


def routes(ctx: Context) -> list[BaseRoute]:
    """The monitoring routes of one daemon."""

    def allowed(request: Request) -> bool:
        host = request.client.host if request.client else ""
        try:
            if ipaddress.ip_address(host).is_loopback:
                return True
        except ValueError:
            pass
        token = ctx.config.metrics.token
        given = request.headers.get("authorization", "")
        return bool(token) and hmac.compare_digest(given.encode(), f"Bearer {token}".encode())

    def figures() -> bytes:
        with ctx.sessions() as session:
            return exposition(session, ctx.clock())

    async def metrics(request: Request) -> Response:
        if not allowed(request):
            return PlainTextResponse(
                "metrics: from loopback, or with the [metrics] token\n", status_code=403
            )
        return Response(await run_in_threadpool(figures), media_type=CONTENT_TYPE_LATEST)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(request: Request) -> Response:
        if not allowed(request):
            return PlainTextResponse("readyz: from loopback, or with the token\n", status_code=403)
        checks = await readiness(ctx)
        ready = all(c.ok for c in checks.values())
        return JSONResponse(
            {
                "status": "ready" if ready else "not ready",
                "checks": {name: {"ok": c.ok, "detail": c.detail} for name, c in checks.items()},
            },
            status_code=200 if ready else 503,
        )

    return [
        Route("/metrics", metrics),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
    ]
