"""My account, for everyone: password, to-do list, delegation, settings and signing key.

Each form does what the mail commands do, through the same pieces: the password policy of
``routing.passwords`` (via ``mailstore.accounts.set_password``), SET's reading of a setting
(``routing.settings.apply_set``) and store (``mailstore.settings``), and the keyring's staging
and confirming of a person's key (``signing.keyring``). Delegation is the very mail: DELEGATE
(from now, or FROM a later day) and REVOKE go to cmd@ for the person (``by_mail``), and the page
lists their delegations in force and planned. Each step of the to-do list that the document's
page can answer links there (``documents.PAGE_REPLIES``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from yizhan.admin.by_mail import send_as
from yizhan.admin.documents import page_replies
from yizhan.admin.web import N_, Site, Viewer, guard
from yizhan.mailstore import audit
from yizhan.mailstore.accounts import AccountError, authenticate, set_password
from yizhan.mailstore.delegations import open_delegations_of
from yizhan.mailstore.models import Document, Person, Step
from yizhan.mailstore.settings import load_settings, save_settings
from yizhan.mailstore.web_sessions import end_sessions_of, password_changed
from yizhan.routing.digests import OFF, allowed_windows, windows_for
from yizhan.routing.settings import DIGEST, LANGUAGE, LANGUAGES, SUBSCRIBED, XINXI, apply_set
from yizhan.signing.keyring import KeyringError

__all__ = ["routes"]


@dataclass(frozen=True, kw_only=True)
class TodoItem:
    """One waiting step of mine, with its document."""

    document_id: int
    title: str
    number: str | None
    step: str
    action: str
    due_at: dt.datetime | None
    on_behalf_of: str | None
    overdue: bool
    # Whether the document's page offers this step's replies (``documents.PAGE_REPLIES``).
    on_page: bool


def routes(site: Site) -> list[Route]:
    """/account and its forms, /account/password."""

    async def page(request: Request, viewer: Viewer, **extra: Any) -> Response:
        data = await site.db(lambda s: _account_data(site, s, viewer))
        key = await _key_facts(site, viewer.account)
        return site.render(
            request,
            viewer,
            "account.html",
            **data,
            **key,
            languages=LANGUAGES,
            windows=[t.strftime("%H:%M") for t in allowed_windows(site.ctx.config.work_calendar())],
            **extra,
        )

    async def show(request: Request, viewer: Viewer) -> Response:
        return await page(request, viewer, notice=_notice(site, viewer, request))

    async def password_form(request: Request, viewer: Viewer) -> Response:
        return site.render(
            request,
            viewer,
            "password.html",
            min_length=site.ctx.config.accounts.min_password_length,
            forced=viewer.session.must_change,
        )

    async def change_password(request: Request, viewer: Viewer) -> Response:
        form = await request.form()
        old = str(form.get("old_password", ""))
        new = str(form.get("new_password", ""))
        again = str(form.get("new_password2", ""))
        if new != again:
            return _password_error(
                site, request, viewer, site.text(viewer, "The two new passwords differ.")
            )
        if new == old:
            return _password_error(
                site,
                request,
                viewer,
                site.text(viewer, "The new password must differ from the old one."),
            )

        def change(session: Session) -> str | None:
            now = site.now()
            checked = authenticate(
                session, viewer.account, old, now=now, policy=site.ctx.login_policy
            )
            if not (checked.ok or checked.must_change):
                return checked.reason
            try:
                set_password(
                    session,
                    viewer.account,
                    new,
                    temporary=False,
                    actor=viewer.account,
                    now=now,
                    policy=site.ctx.login_policy,
                )
            except AccountError as exc:
                return str(exc)
            password_changed(session, viewer.session.token_hash)
            # Other browsers logged in with the old password are logged out.
            end_sessions_of(session, viewer.account, now=now, keep=viewer.session.token_hash)
            return None

        problem = await site.write(change)
        if problem is not None:
            return _password_error(site, request, viewer, problem)
        return RedirectResponse("/account?done=password", status_code=303)

    async def delegate(request: Request, viewer: Viewer) -> Response:
        form = await request.form()
        name = " ".join(str(form.get("delegate", "")).split())[:64]
        first = str(form.get("from", "")).strip()[:32]
        until = str(form.get("until", "")).strip()[:32]
        if not name or not until:
            problem = site.text(viewer, "Name the colleague and the last day.")
            return await page(request, viewer, error=problem, status_code=400)
        directory = await site.db(site.directory)
        named = [p.account for p in directory.people.values() if p.name == name]
        # A name as written may hold 自 or 至 (王自強): the account says who without doubt.
        who = named[0] if len(named) == 1 else name
        line = f"授權 {who} 自 {first} 至 {until}" if first else f"授權 {who} 至 {until}"
        return await _by_mail(request, viewer, line)

    async def end_delegation(request: Request, viewer: Viewer) -> Response:
        return await _by_mail(request, viewer, "收回授權")

    async def _by_mail(request: Request, viewer: Viewer, line: str) -> Response:
        """DELEGATE or REVOKE sent to cmd@ as the mail (``by_mail``); the page shows the answer,
        as an error when the person's delegations did not change."""
        before = await site.db(lambda s: _delegations(s, viewer.account))
        sent = await send_as(site, viewer, site.ctx.config.addresses["cmd"][0], line)
        site.queued()
        after = await site.db(lambda s: _delegations(s, viewer.account))
        if sent.answer is None:
            return await page(
                request,
                viewer,
                notice=site.text(viewer, "Sent; the answer will reach you by mail."),
            )
        if _changed(before, after):
            return await page(request, viewer, notice=sent.answer)
        return await page(request, viewer, error=sent.answer, status_code=400)

    async def settings(request: Request, viewer: Viewer) -> Response:
        form = await request.form()
        digest = str(form.get("digest", "on"))
        times = [str(t) for t in form.getlist("times")]
        language = str(form.get("language", ""))
        news = form.get("xinxi") == "on"
        arguments = [
            f"{DIGEST} " + (",".join(times) if digest == "chosen" else digest),
            f"{XINXI} " + ("on" if news else "off"),
        ]
        if language in LANGUAGES:
            arguments.append(f"{LANGUAGE} {language}")
        calendar = site.ctx.config.work_calendar()

        def save(session: Session) -> str | None:
            current = load_settings(session, viewer.account)
            changes: dict[str, str | None] = {}
            for argument in arguments:
                merged = {k: v for k, v in {**current, **changes}.items() if v is not None}
                outcome = apply_set(argument, merged, roles=viewer.roles, calendar=calendar)
                if not outcome.changes:
                    return outcome.reply
                changes.update(outcome.changes)
            wanted = {k: v for k, v in changes.items() if current.get(k) != v}
            save_settings(session, viewer.account, wanted, actor=viewer.account, now=site.now())
            return None

        problem = await site.write(save)
        if problem is not None:
            return await page(request, viewer, error=problem)
        return RedirectResponse("/account?done=settings", status_code=303)

    async def upload_key(request: Request, viewer: Viewer) -> Response:
        form = await request.form()
        upload = form.get("keyfile")
        armored = str(form.get("armored", "")).strip()
        if isinstance(upload, UploadFile):
            data = await upload.read()
            if data.strip():
                armored = data[:200_000].decode("utf-8", "replace")
        if "BEGIN PGP PUBLIC KEY BLOCK" not in armored:
            return await page(
                request,
                viewer,
                error=site.text(
                    viewer,
                    "Choose an ASCII-armoured OpenPGP public key "
                    "(-----BEGIN PGP PUBLIC KEY BLOCK-----).",
                ),
            )
        person = await site.db(lambda s: s.get(Person, viewer.account))
        addresses = [
            a
            for a in (
                (person.email if person else None),
                f"{viewer.account}@{site.ctx.config.domain}",
            )
            if a
        ]

        def stage() -> str | None:
            try:
                facts = site.ctx.keyring.stage_person_key(armored, viewer.account, addresses)
            except KeyringError as exc:
                return str(exc)
            with site.ctx.sessions.begin() as session:
                audit.record(
                    session,
                    at=site.now(),
                    actor=viewer.account,
                    action="key.staged",
                    target=viewer.account,
                    detail={"fingerprint": str(facts.fingerprint), "by": "admin page"},
                )
            return None

        from starlette.concurrency import run_in_threadpool

        problem = await run_in_threadpool(stage)
        if problem is not None:
            return await page(request, viewer, error=problem)
        return RedirectResponse("/account?done=staged#key", status_code=303)

    async def confirm_key(request: Request, viewer: Viewer) -> Response:
        form = await request.form()
        fingerprint = str(form.get("fingerprint", ""))

        def confirm() -> str | None:
            from yizhan.signing.keyring import Fingerprint

            try:
                fpr = site.ctx.keyring.confirm_person_key(viewer.account, Fingerprint(fingerprint))
            except KeyringError as exc:
                return str(exc)
            with site.ctx.sessions.begin() as session:
                audit.record(
                    session,
                    at=site.now(),
                    actor=viewer.account,
                    action="key.import",
                    target=viewer.account,
                    detail={"fingerprint": str(fpr), "by": "admin page"},
                )
            return None

        from starlette.concurrency import run_in_threadpool

        problem = await run_in_threadpool(confirm)
        if problem is not None:
            return await page(request, viewer, error=problem)
        return RedirectResponse("/account?done=key#key", status_code=303)

    return [
        Route("/account", guard(site, show), methods=["GET"]),
        Route("/account/password", guard(site, password_form), methods=["GET"]),
        Route("/account/password", guard(site, change_password), methods=["POST"]),
        Route("/account/delegation", guard(site, delegate), methods=["POST"]),
        Route("/account/delegation/end", guard(site, end_delegation), methods=["POST"]),
        Route("/account/settings", guard(site, settings), methods=["POST"]),
        Route("/account/key", guard(site, upload_key), methods=["POST"]),
        Route("/account/key/confirm", guard(site, confirm_key), methods=["POST"]),
    ]


_DONE = {
    "password": N_("Your password has been changed."),
    "settings": N_("Your settings are saved."),
    "staged": N_("Check the fingerprint below, then confirm that the key is yours."),
    "key": N_("Your signing key is registered."),
}


def _notice(site: Site, viewer: Viewer, request: Request) -> str | None:
    done = request.query_params.get("done", "")
    return site.text(viewer, _DONE[done]) if done in _DONE else None


def _password_error(site: Site, request: Request, viewer: Viewer, problem: str) -> Response:
    return site.render(
        request,
        viewer,
        "password.html",
        min_length=site.ctx.config.accounts.min_password_length,
        forced=viewer.session.must_change,
        error=problem,
        status_code=400,
    )


def _account_data(site: Site, session: Session, viewer: Viewer) -> dict[str, Any]:
    now = site.now()
    rows = session.execute(
        select(Step, Document.title, Document.number, Document.kind)
        .join(Document, Document.id == Step.document_id)
        .where(Step.assignee == viewer.account, Step.state == "waiting")
        .order_by(Step.due_at.is_(None), Step.due_at, Step.id)
        .limit(500)
    )
    todo = [
        TodoItem(
            document_id=step.document_id,
            title=title,
            number=number,
            step=step.name,
            action=step.action,
            due_at=step.due_at,
            on_behalf_of=step.on_behalf_of,
            overdue=step.due_at is not None and step.due_at < now,
            on_page=bool(page_replies(kind, step.name, step.action)),
        )
        for step, title, number, kind in rows
    ]
    delegations = _delegations(session, viewer.account)
    settings = load_settings(session, viewer.account)
    digest = settings.get(DIGEST)
    chosen = [t.strftime("%H:%M") for t in windows_for(viewer.roles, digest)]
    return {
        "todo": todo,
        "delegations": delegations,
        "digest_mode": "off" if digest == OFF else ("chosen" if digest else "on"),
        "digest_times": chosen,
        "language_setting": settings.get(LANGUAGE, ""),
        "news": settings.get(XINXI) == SUBSCRIBED,
    }


@dataclass(frozen=True, kw_only=True)
class DelegationItem:
    """One delegation of mine not yet ended: in force, or planned for a later day (第九條)."""

    delegate: str
    delegate_name: str
    starts_at: dt.datetime
    until: dt.datetime
    planned: bool


def _delegations(session: Session, account: str) -> list[DelegationItem]:
    items = []
    for row in open_delegations_of(session, account):
        delegate = session.get(Person, row.delegate)
        items.append(
            DelegationItem(
                delegate=row.delegate,
                delegate_name=delegate.name if delegate else row.delegate,
                starts_at=row.starts_at,
                until=row.until,
                planned=not row.begun,
            )
        )
    return items


def _changed(before: list[DelegationItem], after: list[DelegationItem]) -> bool:
    def key(items: list[DelegationItem]) -> list[tuple[str, dt.datetime, dt.datetime]]:
        return [(i.delegate, i.starts_at, i.until) for i in items]

    return key(before) != key(after)


async def _key_facts(site: Site, account: str) -> dict[str, Any]:
    from starlette.concurrency import run_in_threadpool

    def read() -> dict[str, Any]:
        keyring = site.ctx.keyring
        try:
            pending = keyring.pending_person_key(account)
        except KeyringError:
            pending = None
        return {
            "key_fingerprint": keyring.person_key(account),
            "pending_key": pending,
        }

    return await run_in_threadpool(read)
