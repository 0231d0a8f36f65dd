"""The IT department's /people: accounts and the organisation (第四條, 第十六條).

Add a person (a temporary password shown once), suspend, revoke, re-activate, reset to a
temporary password, unlock; import an organisation file; move a person to another unit or
give them other roles. The same store functions as ``yizhan user …`` and ``yizhan org import``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from typing import Any

from markupsafe import Markup, escape
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from yizhan.admin.web import Site, Viewer, guard
from yizhan.daemon.desk.acting import hand_over_moves, hand_over_work, standing_request
from yizhan.mailstore import accounts, audit
from yizhan.mailstore.directory import import_directory, record_creation, save_person
from yizhan.mailstore.models import Account, Person, Unit
from yizhan.mailstore.web_sessions import end_sessions_of
from yizhan.routing.directory import ROLES, OrgError, parse_org, person_from_fields
from yizhan.routing.duties import Duty

__all__ = ["routes"]

PAGE = 50
_STATES = {"suspend": "suspended", "revoke": "revoked", "activate": "active"}


def routes(site: Site) -> list[Route]:
    """/people and its forms (IT department only)."""
    it = [Duty.IT]

    async def page(request: Request, viewer: Viewer, **extra: Any) -> Response:
        query = request.query_params.get("q", "").strip()[:100]
        try:
            start = max(0, int(request.query_params.get("page", "1")) - 1) * PAGE
        except ValueError:
            start = 0
        data = await site.db(lambda s: _listing(s, query, start))
        return site.render(
            request,
            viewer,
            "people.html",
            q=query,
            roles=ROLES,
            start=start,
            page_size=PAGE,
            unit_options=_unit_options(data["units"]),
            **data,
            **extra,
        )

    async def show(request: Request, viewer: Viewer) -> Response:
        return await page(request, viewer)

    async def add(request: Request, viewer: Viewer) -> Response:
        form = await request.form()
        fields: dict[str, Any] = {
            "account": str(form.get("account", "")).strip().lower(),
            "name": str(form.get("name", "")).strip(),
            "unit": str(form.get("unit", "")).strip(),
            "roles": [str(r) for r in form.getlist("roles")] or ["staff"],
        }
        email = str(form.get("email", "")).strip()
        if email:
            fields["email"] = email
        reason = str(form.get("reason", "")).strip() or "admin page"

        def create(session: Session) -> tuple[str | None, str | None]:
            directory = site.directory(session)
            account = str(fields["account"])
            if account in directory.people or session.get(Person, account) is not None:
                return f"account {fields['account']} already exists", None
            unit = directory.unit_by_ref(fields["unit"])
            if unit is None:
                return f"no unit {fields['unit']!r}", None
            try:
                person = person_from_fields({**fields, "unit": unit.id})
            except OrgError as exc:
                return "; ".join(exc.problems), None
            if person.email and directory.person_by_address(person.email, site.ctx.config.domain):
                return f"{person.email} already belongs to another person", None
            now = site.now()
            save_person(session, person, now=now)
            record_creation(
                session, person.account, created_by=viewer.account, reason=reason, now=now
            )
            password = accounts.new_temporary_password()
            accounts.set_password(
                session,
                person.account,
                password,
                temporary=True,
                actor=viewer.account,
                now=now,
                policy=site.ctx.login_policy,
            )
            return None, password

        problem, password = await site.write(create)
        site.forget_directory()
        if problem is not None:
            return await page(request, viewer, error=problem)
        return await page(
            request,
            viewer,
            temporary=(fields["account"], password),
            notice=site.text(viewer, "The person was added."),
        )

    async def act(request: Request, viewer: Viewer) -> Response:
        account = str(request.path_params["account"])
        action = str(request.path_params["action"])
        form = await request.form()

        def run(session: Session) -> tuple[str | None, str | None]:
            now = site.now()
            try:
                if action in _STATES:
                    person = site.directory(session).people.get(account)
                    accounts.set_state(
                        session, account, _STATES[action], actor=viewer.account, now=now
                    )
                    if action != "activate":
                        end_sessions_of(session, account, now=now)
                        if person is not None:
                            _hand_over(site, session, viewer, account, person.unit, _STATES[action])
                    return None, None
                if action == "unlock":
                    accounts.unlock(session, account, actor=viewer.account, now=now)
                    return None, None
                if action == "reset":
                    password = accounts.new_temporary_password()
                    accounts.set_password(
                        session,
                        account,
                        password,
                        temporary=True,
                        actor=viewer.account,
                        now=now,
                        policy=site.ctx.login_policy,
                    )
                    end_sessions_of(session, account, now=now)
                    return None, password
                if action == "move":
                    return _move(site, session, account, form, viewer.account), None
            except accounts.AccountError as exc:
                return str(exc), None
            return f"unknown action {action!r}", None

        problem, password = await site.write(run)
        site.forget_directory()
        site.queued()  # a handover's mails (第十條)
        if problem is not None:
            return await page(request, viewer, error=problem)
        return await page(
            request,
            viewer,
            temporary=(account, password) if password else None,
            notice=site.text(viewer, "Done.") + f" {account}: {action}",
        )

    async def import_org(request: Request, viewer: Viewer) -> Response:
        form = await request.form()
        upload = form.get("orgfile")
        text = str(form.get("orgtext", ""))
        if isinstance(upload, UploadFile):
            data = await upload.read()
            if data.strip():
                text = data.decode("utf-8", "replace")
        try:
            directory = parse_org(tomllib.loads(text))
        except tomllib.TOMLDecodeError as exc:
            return await page(request, viewer, error=f"not valid TOML: {exc}")
        except OrgError as exc:
            return await page(request, viewer, error="\n".join(exc.problems))

        def load(session: Session) -> dict[str, int] | str:
            before = site.directory(session)
            now = site.now()
            try:
                counts = import_directory(
                    session,
                    directory,
                    actor=viewer.account,
                    now=now,
                    reason="org import on the admin page",
                )
            except OrgError as exc:
                return "\n".join(exc.problems)
            # Someone moved to another unit leaves no work stuck in the old one (第十條).
            request = standing_request(
                site.desk, session, account=viewer.account, key=f"web:import:{now}", now=now
            )
            counts["steps_handed_over"] = hand_over_moves(request, before)
            return counts

        counts = await site.write(load)
        site.forget_directory()
        site.queued()
        if isinstance(counts, str):
            return await page(request, viewer, error=counts)
        summary = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in counts.items())
        return await page(request, viewer, notice=summary)

    return [
        Route("/people", guard(site, show, needs=it), methods=["GET"]),
        Route("/people/add", guard(site, add, needs=it), methods=["POST"]),
        Route("/people/import", guard(site, import_org, needs=it), methods=["POST"]),
        Route("/people/{account}/{action}", guard(site, act, needs=it), methods=["POST"]),
    ]


def _move(site: Site, session: Session, account: str, form: Any, actor: str) -> str | None:
    """Another unit or other roles for ``account`` (a move, 第十條)."""
    directory = site.directory(session)
    person = directory.people.get(account)
    if person is None:
        return f"no such account: {account}"
    unit = directory.unit_by_ref(str(form.get("unit", person.unit)))
    if unit is None:
        return f"no unit {form.get('unit')!r}"
    roles = [str(r) for r in form.getlist("roles")] or sorted(person.roles)
    fields: dict[str, Any] = {
        "account": account,
        "name": person.name,
        "unit": unit.id,
        "roles": roles,
    }
    if person.email:
        fields["email"] = person.email
    try:
        moved = person_from_fields(fields)
    except OrgError as exc:
        return "; ".join(exc.problems)
    save_person(session, moved, now=site.now())
    if unit.id != person.unit:
        _hand_over(site, session, None, account, person.unit, "moved", actor=actor)
    audit.record(
        session,
        at=site.now(),
        actor=actor,
        action="person.move",
        target=account,
        detail={"unit": unit.id, "roles": roles, "from_unit": person.unit},
    )
    return None


def _hand_over(
    site: Site,
    session: Session,
    viewer: Viewer | None,
    account: str,
    unit: str,
    why: str,
    *,
    actor: str | None = None,
) -> int:
    """The waiting steps of ``account``, who leaves ``unit``, to their successor (第十條), told
    as by the mail commands (``desk.acting``)."""
    now = site.now()
    who = actor or (viewer.account if viewer else "admin")
    request = standing_request(
        site.desk, session, account=who, key=f"web:{why}:{account}:{now.isoformat()}", now=now
    )
    return hand_over_work(request, account=account, unit=unit, why=why)


def _listing(session: Session, query: str, start: int) -> dict[str, Any]:
    q = select(Person, Account).join(Account, Account.account == Person.account)
    count = select(func.count()).select_from(Person)
    if query:
        like = f"%{query.lower()}%"
        cond = or_(
            Person.account.like(like), Person.name.like(f"%{query}%"), Person.unit_id == query
        )
        q = q.where(cond)
        count = count.where(cond)
    rows = session.execute(q.order_by(Person.account).offset(start).limit(PAGE)).all()
    units = session.execute(select(Unit.id, Unit.name).order_by(Unit.id)).all()
    return {
        "people": [(p, a, sorted(r.role for r in p.roles)) for p, a in rows],
        "total": session.scalar(count) or 0,
        "units": [(u.id, u.name) for u in units],
    }


def _unit_options(units: list[tuple[str, str]]) -> Callable[[str], Markup]:
    """The <option>s of every unit, with the one given selected: escaped and joined once a page,
    not once a row (50 rows of 60 units were most of drawing /people)."""
    html = "".join(f'<option value="{escape(uid)}">{escape(name)}</option>' for uid, name in units)

    def with_selected(unit_id: str) -> Markup:
        mark = f'<option value="{escape(unit_id)}">'
        return Markup(html.replace(mark, mark[:-1] + " selected>", 1))

    return with_selected
