"""The office's pages (第六條 the office runs the system): bulletins, supervision, the seals.

/bulletins lists the bulletins on the board; the office withdraws any of them there, which is
the mail 撤回 id 理由 to gonggao@ sent for it (``by_mail``), so its readers are told as they are
when the author withdraws (第二十三條).

/supervision lists every open supervision task (督查督辦) with each unit's part, as the weekly
report does (``routing.supervision.report_item``). /seals lists the units' seals and who keeps
each (第十八條); the office hands a seal to another custodian there, who must hold the
seal_custodian role, and the change is audited. The key itself stays the same: rotating or
revoking it stays with the IT department's ``yizhan seal`` verbs.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from yizhan.admin.by_mail import send_as
from yizhan.admin.web import N_, Site, Viewer, guard
from yizhan.mailstore import audit
from yizhan.mailstore.documents import load_states
from yizhan.mailstore.models import Document, Person, Step
from yizhan.mailstore.overview import documents_by_ids
from yizhan.routing.duties import Duty
from yizhan.routing.rules import CLOSED
from yizhan.routing.supervision import KIND as SUPERVISION
from yizhan.routing.supervision import PROGRESS_STEP, deadline_of, report_item

__all__ = ["routes"]

#: Open supervision tasks shown on a page (each with its units' parts), and bulletins on the
#: board shown at once.
SUPERVISION_PAGE = 50
BULLETIN_ROWS = 300


def routes(site: Site) -> list[Route]:
    """/bulletins, /supervision, /seals (the office)."""
    office = [Duty.OFFICE]

    async def bulletin_board(request: Request, viewer: Viewer, **extra: Any) -> Response:
        def read(session: Session) -> list[tuple[Document, str]]:
            rows = session.execute(
                select(Document, Person.name)
                .join(Person, Person.account == Document.author)
                .where(Document.kind == "gonggao", Document.state == CLOSED)
                .order_by(Document.id.desc())
                .limit(BULLETIN_ROWS)
            )
            return [
                (d, name)
                for d, name in rows
                if d.fields.get("published_at") and not d.fields.get("withdrawn_at")
            ]

        board = await site.db(read)
        return site.render(request, viewer, "bulletins.html", board=board, **extra)

    async def withdraw(request: Request, viewer: Viewer) -> Response:
        document_id = int(request.path_params["document"])
        form = await request.form()
        reason = " ".join(str(form.get("reason", "")).split())[:200]
        if not reason:
            problem = site.text(viewer, N_("Say why the bulletin is withdrawn."))
            return await bulletin_board(request, viewer, error=problem, status_code=400)
        gonggao = site.ctx.config.addresses["gonggao"][0]
        sent = await send_as(site, viewer, gonggao, f"撤回 {document_id} {reason}")
        answer = sent.answer or site.text(
            viewer, N_("Sent to gonggao@; the answer will reach you by mail.")
        )
        return await bulletin_board(request, viewer, notice=answer)

    async def supervision(request: Request, viewer: Viewer) -> Response:
        now = site.now()
        try:
            start = max(0, int(request.query_params.get("page", "1")) - 1) * SUPERVISION_PAGE
        except ValueError:
            start = 0

        def read(session: Session) -> tuple[list[dict[str, Any]], int]:
            order = _open_tasks_in_order(session, now)
            shown = documents_by_ids(session, order[start : start + SUPERVISION_PAGE])
            documents = [shown[i] for i in order[start : start + SUPERVISION_PAGE] if i in shown]
            directory = site.directory(session)
            tasks = [
                report_item(s, directory, now, site.tz) for s in load_states(session, documents)
            ]
            return tasks, len(order)

        tasks, total = await site.db(read)
        return site.render(
            request,
            viewer,
            "supervision.html",
            tasks=tasks,
            total=total,
            start=start,
            page_size=SUPERVISION_PAGE,
        )

    async def seals(request: Request, viewer: Viewer, **extra: Any) -> Response:
        found = await run_in_threadpool(site.ctx.keyring.list_seals)
        directory = await site.db(site.directory)
        rows = [
            {
                "seal": seal,
                "custodian_name": (
                    directory.people[seal.custodian].name
                    if seal.custodian in directory.people
                    else seal.custodian
                ),
            }
            for seal in found
            if seal.state == "active"
        ]
        custodians = sorted(
            (p for p in directory.with_role("seal_custodian") if p.state == "active"),
            key=lambda p: p.account,
        )
        return site.render(request, viewer, "seals.html", rows=rows, custodians=custodians, **extra)

    async def hand_over(request: Request, viewer: Viewer) -> Response:
        unit = str(request.path_params["unit"])
        form = await request.form()
        account = str(form.get("custodian", "")).strip().lower()[:64]
        directory = await site.db(site.directory)
        person = directory.people.get(account)
        if person is None or person.state != "active" or "seal_custodian" not in person.roles:
            problem = site.text(
                viewer, N_("Only an active person with the seal custodian role may keep a seal.")
            )
            return await seals(request, viewer, error=problem, status_code=400)
        current = await run_in_threadpool(lambda: site.ctx.keyring.seal(unit))
        if current is None:
            return await seals(
                request, viewer, error=site.text(viewer, N_("No such seal.")), status_code=404
            )
        if current.custodian == account:
            return await seals(request, viewer)
        await run_in_threadpool(lambda: site.ctx.keyring.set_custodian(unit, account))
        await site.write(
            lambda session: audit.record(
                session,
                at=site.now(),
                actor=viewer.account,
                action="seal.custodian",
                target=unit,
                detail={
                    "fingerprint": current.fingerprint,
                    "from": current.custodian,
                    "to": account,
                },
            )
        )
        notice = f"{current.unit_name}: {current.custodian} → {person.name} ({account})"
        return await seals(request, viewer, notice=notice)

    return [
        Route("/bulletins", guard(site, bulletin_board, needs=office), methods=["GET"]),
        Route(
            "/bulletins/{document:int}/withdraw",
            guard(site, withdraw, needs=office),
            methods=["POST"],
        ),
        Route("/supervision", guard(site, supervision, needs=office), methods=["GET"]),
        Route("/seals", guard(site, seals, needs=office), methods=["GET"]),
        Route("/seals/{unit}/custodian", guard(site, hand_over, needs=office), methods=["POST"]),
    ]


def _open_tasks_in_order(session: Session, now: dt.datetime) -> list[int]:
    """Every open supervision task's id as the page lists them: overdue ones first (a unit's
    part still being handled past its due time), then by deadline, then by id; read from the
    deadline field and the steps alone, so that only the page's tasks are loaded whole."""
    late = (
        select(Step.id)
        .where(
            Step.document_id == Document.id,
            Step.name == PROGRESS_STEP,
            Step.state == "waiting",
            Step.due_at < now,
        )
        .exists()
    )
    rows = session.execute(
        select(Document.id, Document.fields["deadline_at"].as_string(), late).where(
            Document.kind == SUPERVISION, Document.state != CLOSED
        )
    ).all()
    never = dt.datetime.max.replace(tzinfo=dt.UTC)

    def key(row: Any) -> tuple[bool, dt.datetime, int]:
        deadline = deadline_of({"deadline_at": row[1]})
        return (not row[2], deadline or never, row[0])

    return [row[0] for row in sorted(rows, key=key)]
