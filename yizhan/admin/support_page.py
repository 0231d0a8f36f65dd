"""/support: a problem report to the IT department (報修, 第十二條), for everyone.

The report is the mail to baoxiu@ (its subject the title, its text the body, its files such as
screenshots attached), sent for the person (``by_mail``), so the desk opens it as it opens the
mail: a step for IT due in one working day, reminded and escalated. The page lists the person's
own reports; IT closes one with 辦結 on its document's page (``step_replies``) or by mail, and
the summary reaches the reporter by mail.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from yizhan.admin.by_mail import send_as
from yizhan.admin.web import N_, Site, Viewer, guard
from yizhan.mailstore.models import Document

__all__ = ["routes"]

#: The module whose address takes problem reports, and the reports listed at once.
KIND: Final = "baoxiu"
ROWS: Final = 50


def routes(site: Site) -> list[Route]:
    """/support (GET: the form and my reports; POST: send one)."""

    async def page(request: Request, viewer: Viewer, **extra: Any) -> Response:
        reports = await site.db(lambda s: _reports(s, viewer.account))
        return site.render(request, viewer, "support.html", reports=reports, **extra)

    async def send(request: Request, viewer: Viewer) -> Response:
        form = await request.form()
        title = " ".join(str(form.get("subject", "")).split())[:200]
        body = str(form.get("body", "")).replace("\r\n", "\n").strip()[:20_000]
        # Base64 makes a file a third larger in the mail.
        limit = site.ctx.config.smtp.max_message_size * 3 // 4
        files = await _files(form.getlist("files"), limit)
        if files is None:
            problem = site.text(viewer, N_("The files are larger than a mail may be."))
            return await page(request, viewer, error=problem, status_code=413)
        before = await site.db(lambda s: _reports(s, viewer.account))
        sent = await send_as(
            site,
            viewer,
            site.ctx.config.addresses[KIND][0],
            title,
            body=body or title,
            files=files,
        )
        site.queued()
        if sent.answer is None:
            notice = site.text(viewer, N_("Sent; the answer will reach you by mail."))
            return await page(request, viewer, notice=notice)
        after = await site.db(lambda s: _reports(s, viewer.account))
        if [d.id for d in after[:1]] != [d.id for d in before[:1]]:
            return await page(request, viewer, notice=sent.answer)
        return await page(request, viewer, error=sent.answer, status_code=400)

    return [
        Route("/support", guard(site, page), methods=["GET"]),
        Route("/support", guard(site, send), methods=["POST"]),
    ]


async def _files(uploads: list[Any], limit: int) -> list[tuple[str, bytes]] | None:
    """The uploaded files (screenshots …) as (name, bytes); None when together they are larger
    than a mail may be (``[smtp] max_message_size``)."""
    files: list[tuple[str, bytes]] = []
    total = 0
    for upload in uploads:
        if not isinstance(upload, UploadFile) or not upload.filename:
            continue
        data = await upload.read(limit + 1 - total)
        total += len(data)
        if total > limit:
            return None
        if data:
            # Only the name, whatever path a browser sent with it.
            files.append((PurePath(upload.filename.replace("\\", "/")).name[:200], data))
    return files


def _reports(session: Session, account: str) -> list[Document]:
    """The person's own problem reports, newest first."""
    return list(
        session.scalars(
            select(Document)
            .where(Document.kind == KIND, Document.author == account)
            .order_by(Document.id.desc())
            .limit(ROWS)
        )
    )
