"""Logs people in and out of the admin page with their Yizhan account.

The password check is SMTP AUTH's (``mailstore.accounts.authenticate``): the same failure
counter and lockout (第十六條; mine rules 一(四)), suspended and revoked accounts refused. A
temporary or expired password opens a session that reaches only the password page.
"""

from __future__ import annotations

import hmac

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from yizhan.admin import csrf
from yizhan.admin.web import COOKIE, IDLE, LONGEST, Site, Viewer, forbidden, guard
from yizhan.mailstore.accounts import LoginResult, authenticate
from yizhan.mailstore.web_sessions import end_session, open_session

__all__ = ["routes"]


def routes(site: Site) -> list[Route]:
    """GET and POST /login, POST /logout."""

    async def login_form(request: Request) -> Response:
        return _form(site, request, error=None, account="")

    async def login(request: Request) -> Response:
        nonce = request.cookies.get(csrf.LOGIN_COOKIE, "")
        if not nonce or not await csrf.form_token_matches(
            request, csrf.login_token(site.ctx.config.secret, nonce)
        ):
            return forbidden()
        form = await request.form()
        account = str(form.get("account", "")).strip().lower()[:64]
        password = str(form.get("password", ""))
        peer = request.client.host if request.client else ""

        def check(session: Session) -> tuple[LoginResult, str | None]:
            result = authenticate(
                session,
                account,
                password,
                now=site.now(),
                policy=site.ctx.login_policy,
                client=peer,
            )
            if not (result.ok or result.must_change) or result.account is None:
                return result, None
            token, _live = open_session(
                session, result.account, must_change=result.must_change, now=site.now(), peer=peer
            )
            return result, token

        result, token = await site.write(check)
        if token is None:
            return _form(site, request, error=result.reason, account=account, status=401)
        target = "/account/password" if result.must_change else _safe_next(request)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            token,
            max_age=int(LONGEST.total_seconds()),
            httponly=True,
            samesite="strict",
            secure=site.secure_cookies,
            path="/",
        )
        response.delete_cookie(csrf.LOGIN_COOKIE, path="/login")
        return response

    async def logout(request: Request, viewer: Viewer) -> Response:
        await site.write(lambda s: end_session(s, viewer.session.token_hash, now=site.now()))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    return [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", guard(site, logout), methods=["POST"]),
    ]


def _form(
    site: Site, request: Request, *, error: str | None, account: str, status: int = 200
) -> Response:
    """The login form, with a fresh signed CSRF token bound to a cookie."""
    nonce = csrf.new_login_nonce()
    response = site.render(
        request,
        None,
        "login.html",
        csrf_token=csrf.login_token(site.ctx.config.secret, nonce),
        error=error,
        account=account,
        next=_safe_next(request),
        idle_minutes=int(IDLE.total_seconds() // 60),
        status_code=status,
    )
    response.set_cookie(
        csrf.LOGIN_COOKIE,
        nonce,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=site.secure_cookies,
        path="/login",
    )
    return response


def _safe_next(request: Request) -> str:
    """Where to go after login: a path on this site only (never another host)."""
    target = request.query_params.get("next", "/")
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target if not hmac.compare_digest(target, "/logout") else "/"
