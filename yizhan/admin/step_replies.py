"""A person's own part in a document, on its page: a reply to their waiting step, an objection.

Each is the reply mail the person would send, sent for them (``by_mail.reply_as``) to the
r+TOKEN@ address of the step, so the desk decides it as it decides the mail (``desk.replies``):
who may act (the person asked or their delegate; anyone else is refused and reported, 第七條),
what the step takes, the mails to the others, the trail. The page shows the desk's answer, as
an error when the document did not change. The replies offered are ``documents.PAGE_REPLIES``:
a receiving clerk's 簽收 or 退回 (第二十一條), the leader's decision on an objection (第二十條),
IT's 辦結 of a problem report (第十二條). 異議 (OBJECT) is open to anyone on the document.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from yizhan.admin.by_mail import Sent, reply_as
from yizhan.admin.documents import PAGE_REPLIES, document_page, visible_document
from yizhan.admin.web import N_, Site, Viewer, forbidden, guard
from yizhan.mailstore.models import Step
from yizhan.routing.commands import Verb

__all__ = ["routes"]

#: The command word the page writes for each verb it offers (any of the mail's words would do).
WORDS: Final = {
    Verb.RECEIVED: "簽收",
    Verb.REJECT: "退回",
    Verb.APPROVE: "同意",
    Verb.DONE: "辦結",
    Verb.OBJECT: "異議",
}
#: Verbs a page reply may carry: those ``PAGE_REPLIES`` offers.
OFFERED: Final = frozenset(v for *_, verbs in PAGE_REPLIES for v in verbs)
#: Longest reason or summary taken from the form.
MAX_TEXT: Final = 1000


def routes(site: Site) -> list[Route]:
    """POST /documents/{id}/reply and /documents/{id}/object (anyone who may see the document)."""

    async def reply(request: Request, viewer: Viewer) -> Response:
        raw_id = str(request.path_params["id"])
        form = await request.form()
        verb, step = str(form.get("verb", "")), str(form.get("step", ""))
        if verb not in {v.value for v in OFFERED} or not step.isdigit() or len(step) > 18:
            return forbidden()
        before = await site.db(lambda s: _changed_at(site, s, viewer, raw_id))
        if before is None:
            return forbidden()
        line = _line(Verb(verb), str(form.get("text", "")))
        sent = await reply_as(site, viewer, int(raw_id), int(step), line)
        return await _answered(site, request, viewer, raw_id, before, sent)

    async def object_to(request: Request, viewer: Viewer) -> Response:
        raw_id = str(request.path_params["id"])
        form = await request.form()
        before = await site.db(lambda s: _changed_at(site, s, viewer, raw_id))
        if before is None:
            return forbidden()
        step = await site.db(lambda s: _step_to_answer(s, int(raw_id), viewer.account))
        if step is None:
            problem = site.text(viewer, N_("Nothing on this document waits: it is not under way."))
            return await document_page(site, request, viewer, raw_id, error=problem)
        line = _line(Verb.OBJECT, str(form.get("reason", "")))
        sent = await reply_as(site, viewer, int(raw_id), step, line)
        return await _answered(site, request, viewer, raw_id, before, sent)

    return [
        Route("/documents/{id:int}/reply", guard(site, reply), methods=["POST"]),
        Route("/documents/{id:int}/object", guard(site, object_to), methods=["POST"]),
    ]


def _line(verb: Verb, text: str) -> str:
    """The reply's command line: the word, then the reason or summary on the same line."""
    said = " ".join(text.split())[:MAX_TEXT]
    return f"{WORDS[verb]}：{said}" if said else WORDS[verb]


def _changed_at(site: Site, session: Session, viewer: Viewer, raw_id: str) -> dt.datetime | None:
    """When the document last changed, if ``viewer`` may see it; None if not (403)."""
    document = visible_document(site, session, viewer, raw_id)
    if document is None:
        return None
    return document.updated_at or document.created_at


def _step_to_answer(session: Session, document_id: int, account: str) -> int | None:
    """The step whose reply address an objection goes to: the person's own latest step on the
    document, else its first (the desk takes an objection from anyone on the document, whatever
    step the address names); None when the document has no step."""
    steps = list(
        session.execute(
            select(Step.id, Step.assignee).where(Step.document_id == document_id).order_by(Step.id)
        )
    )
    if not steps:
        return None
    own = [step_id for step_id, assignee in steps if assignee == account]
    return own[-1] if own else int(steps[0][0])


async def _answered(
    site: Site, request: Request, viewer: Viewer, raw_id: str, before: dt.datetime, sent: Sent
) -> Response:
    """The document's page with the desk's answer: a notice if the document changed, else an
    error (the desk refused and said why)."""
    site.queued()
    after = await site.db(lambda s: _changed_at(site, s, viewer, raw_id))
    outcome: dict[str, Any]
    if sent.answer is None:
        outcome = {"notice": site.text(viewer, N_("Sent; the answer will reach you by mail."))}
    elif after is not None and after != before:
        outcome = {"notice": sent.answer}
    else:
        outcome = {"error": sent.answer, "status_code": 400}
    return await document_page(site, request, viewer, raw_id, **outcome)
