"""Checks the ``csrf_token`` every form carries: the session's token, or before login a signed one.

After login each session has its own random token (kept with the session on the server). The
login form has no session yet, so its token is an HMAC, under the instance secret, of a random
value in a short-lived cookie: a page on another site can neither read the cookie (SameSite,
HttpOnly) nor compute the token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request

__all__ = ["LOGIN_COOKIE", "form_token_matches", "login_token", "new_login_nonce"]

#: The cookie that binds the login form's token to this browser.
LOGIN_COOKIE = "yizhan_login"


def new_login_nonce() -> str:
    """A random value for the login cookie."""
    return secrets.token_urlsafe(24)


def login_token(secret: str, nonce: str) -> str:
    """The login form's ``csrf_token`` for the cookie value ``nonce``."""
    return hmac.new(secret.encode(), b"login:" + nonce.encode(), hashlib.sha256).hexdigest()


async def form_token_matches(request: Request, expected: str) -> bool:
    """Whether the POSTed form's ``csrf_token`` is ``expected`` (compared in constant time)."""
    try:
        form = await request.form()
    except Exception:
        return False
    given = form.get("csrf_token")
    return isinstance(given, str) and bool(expected) and hmac.compare_digest(given, expected)
