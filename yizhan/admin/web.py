"""What every page of the admin site shares: who is looking, the guard before each page, rendering.

A page handler is ``async (request, viewer) -> Response``; :func:`guard` wraps it so that a
visitor who is not logged in is sent to the login page, a person who must change their password
sees only the password page, every POST carries the session's ``csrf_token``, and a person
without the duty a page needs gets the one 403 every refusal gets (same body, no redirect).
Database work runs in worker threads (``run_in_threadpool``), never on the event loop.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from yizhan.admin import csrf
from yizhan.daemon.context import Context
from yizhan.daemon.desk.parts import Desk
from yizhan.mailstore.directory import load_directory
from yizhan.mailstore.models import Person, Unit
from yizhan.mailstore.web_sessions import LiveSession, find_session
from yizhan.routing.directory import Directory, PersonInfo, UnitInfo
from yizhan.routing.duties import Duty, duties
from yizhan.templates.web import gettext, pick_language, render_page

__all__ = [
    "COOKIE",
    "FORBIDDEN",
    "IDLE",
    "LONGEST",
    "N_",
    "Site",
    "Viewer",
    "forbidden",
    "guard",
]

#: The session cookie's name.
COOKIE = "yizhan_session"
#: A session unused this long ends; one ends this long after login in any case.
IDLE = dt.timedelta(minutes=30)
LONGEST = dt.timedelta(hours=12)
#: Paths a person who must change their password may still reach.
_WHILE_CHANGING = frozenset({"/account/password", "/logout"})

#: The body of every 403, whatever was refused and to whom: nothing tells pages apart.
FORBIDDEN = (
    b"<!doctype html><html><head><meta charset=utf-8><title>403</title></head><body>"
    b"<h1>403</h1><p>\xe6\x82\xa8\xe7\x84\xa1\xe6\xac\x8a\xe8\xa8\xaa\xe5\x95\x8f\xe3\x80\x82"
    b' You may not see this page.</p><p><a href="/">Yizhan</a></p></body></html>'
)

T = TypeVar("T")

#: What a page may leave out: no note, no error, nothing checked or previewed.
_PAGE_DEFAULTS: dict[str, Any] = {
    "notice": None,
    "error": None,
    "problems": None,
    "preview": None,
    "checked": False,
    "temporary": None,
}


@dataclass(frozen=True, kw_only=True)
class Viewer:
    """The person logged in, as a page needs them."""

    account: str
    name: str
    unit: str
    unit_name: str
    roles: frozenset[str]
    duties: frozenset[Duty]
    language: str
    session: LiveSession

    @property
    def csrf_token(self) -> str:
        """The token every form of this session carries."""
        return self.session.csrf_token


Handler = Callable[[Request, Viewer], Awaitable[Response]]


class Site:
    """The admin site's shared state: the context, and a directory reloaded every few seconds."""

    def __init__(
        self,
        ctx: Context,
        *,
        directory_max_age: float = 5.0,
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self._on_queued = on_queued
        self.tz = ctx.config.tzinfo
        self.secure_cookies = not _loopback(ctx.config.admin_listen.host)
        self._directory: Directory | None = None
        self._loaded_at = 0.0
        self._max_age = directory_max_age
        self._lock = threading.Lock()

    async def db(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in a read session in a worker thread."""

        def run() -> T:
            with self.ctx.sessions() as session:
                return work(session)

        return await run_in_threadpool(run)

    async def write(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in one transaction in a worker thread; committed when it returns."""

        def run() -> T:
            with self.ctx.sessions.begin() as session:
                return work(session)

        return await run_in_threadpool(run)

    def directory(self, session: Session | None = None) -> Directory:
        """The organisation (blocking; call from a worker thread), at most a few seconds old.

        Pass the caller's ``session`` when there is one: on SQLite every transaction takes the
        write lock, so a second session in the same thread would wait for the first forever.
        """
        with self._lock:
            if self._directory is not None and time.monotonic() - self._loaded_at < self._max_age:
                return self._directory
        if session is not None:
            directory = load_directory(session)
        else:
            with self.ctx.sessions() as own:
                directory = load_directory(own)
        with self._lock:
            self._directory, self._loaded_at = directory, time.monotonic()
        return directory

    @functools.cached_property
    def desk(self) -> Desk:
        """The desk's parts, for what the page does as the mail commands do (built once)."""
        return Desk(self.ctx)

    def queued(self) -> None:
        """A page queued mail: wake the daemon's couriers, if it runs them."""
        if self._on_queued is not None:
            self._on_queued()

    def forget_directory(self) -> None:
        """The organisation changed: load it again at the next question."""
        with self._lock:
            self._directory = None

    def now(self) -> dt.datetime:
        """The context's clock."""
        return self.ctx.clock()

    def local(self, value: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        """A time in the bureau's zone, for people."""
        return value.astimezone(self.tz).strftime(fmt) if value is not None else "-"

    async def viewer(self, request: Request) -> Viewer | None:
        """The person whose session cookie came with ``request``, if it holds."""
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        accept = request.headers.get("accept-language", "")
        return await run_in_threadpool(self._viewer, token, accept)

    def _viewer(self, token: str, accept: str) -> Viewer | None:
        with self.ctx.sessions.begin() as session:
            live = find_session(session, token, now=self.now(), idle=IDLE, longest=LONGEST)
            if live is None:
                return None
            person = session.get(Person, live.account)
            if person is None:
                return None
            unit = session.get(Unit, person.unit_id)
            roles = frozenset(r.role for r in person.roles)
            info = PersonInfo(
                account=person.account, name=person.name, unit=person.unit_id, roles=roles
            )
            unit_info = (
                UnitInfo(id=unit.id, name=unit.name, kind=unit.kind) if unit is not None else None
            )
            return Viewer(
                account=person.account,
                name=person.name,
                unit=person.unit_id,
                unit_name=unit.name if unit is not None else person.unit_id,
                roles=roles,
                duties=duties(info, unit_info),
                language=pick_language(person.language, accept, self.ctx.config.language),
                session=live,
            )

    def render(
        self, request: Request, viewer: Viewer | None, template: str, **variables: Any
    ) -> HTMLResponse:
        """A page in the viewer's language (the browser's before login)."""
        language = (
            viewer.language
            if viewer is not None
            else pick_language(
                None, request.headers.get("accept-language", ""), self.ctx.config.language
            )
        )
        status = int(variables.pop("status_code", 200))
        variables = {**_PAGE_DEFAULTS, **variables}
        html = render_page(
            template,
            language,
            viewer=viewer,
            path=request.url.path,
            local=self.local,
            Duty=Duty,
            **variables,
        )
        return HTMLResponse(html, status_code=status)

    def text(self, viewer: Viewer | None, message: str) -> str:
        """``message`` in the viewer's language (for notes built in code)."""
        return gettext(viewer.language if viewer else self.ctx.config.language, message)


def N_(message: str) -> str:
    """Mark ``message`` for the catalogs; it is translated where it is shown (``Site.text``)."""
    return message


def forbidden() -> Response:
    """The one 403 of the site."""
    return HTMLResponse(FORBIDDEN, status_code=403)


def guard(site: Site, handler: Handler, *, needs: Collection[Duty] | None = None) -> Any:
    """``handler`` behind the login, the password change, the CSRF check and ``needs``.

    ``needs`` None: any logged-in person; otherwise the person must have one of the duties.
    """
    wanted = frozenset(needs) if needs is not None else None

    async def endpoint(request: Request) -> Response:
        viewer = await site.viewer(request)
        if viewer is None:
            if request.method != "GET":
                return forbidden()
            target = quote(
                request.url.path + (f"?{request.url.query}" if request.url.query else "")
            )
            return RedirectResponse(f"/login?next={target}", status_code=303)
        if request.method == "POST" and not await csrf.form_token_matches(
            request, viewer.csrf_token
        ):
            return forbidden()
        if viewer.session.must_change and request.url.path not in _WHILE_CHANGING:
            if request.method != "GET":
                return forbidden()
            return RedirectResponse("/account/password", status_code=303)
        if wanted is not None and not (viewer.duties & wanted):
            return forbidden()
        return await handler(request, viewer)

    return endpoint


def _loopback(host: str) -> bool:
    return host in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")
