"""The office's oversight buttons on /documents/{id} (issue 14 part 3; 第六條, 第二十一條).

Reassign a waiting step, cancel the document, extend a deadline: each runs the very cmd@
command class the office would mail (``desk.acting.run_command``), so it sends the same mails,
writes the same trail and refuses the same mistakes; the page shows the answer the mail would
have given. Only the office (``Duty.OFFICE``) may post.
"""

from __future__ import annotations

import secrets
from typing import Any, Final

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from yizhan.admin.documents import document_page
from yizhan.admin.web import Site, Viewer, forbidden, guard
from yizhan.daemon.desk.acting import run_command, standing_request
from yizhan.routing.commands import Verb
from yizhan.routing.duties import Duty

__all__ = ["routes"]

_VERBS: Final = {"reassign": Verb.REASSIGN, "cancel": Verb.CANCEL, "extend": Verb.EXTEND}


def routes(site: Site) -> list[Route]:
    """POST /documents/{id}/reassign, /cancel and /extend."""

    async def act(request: Request, viewer: Viewer) -> Response:
        action = str(request.path_params["action"])
        raw_id = str(request.path_params["id"])
        if action not in _VERBS or not raw_id.isdigit() or len(raw_id) > 18:
            return forbidden()
        form = await request.form()
        argument = _argument(action, int(raw_id), {k: str(v) for k, v in form.items()})

        def run(session: Session) -> tuple[bool, str]:
            now = site.now()
            acting = standing_request(
                site.desk,
                session,
                account=viewer.account,
                key=f"web:{action}:{raw_id}:{secrets.token_hex(8)}",
                now=now,
            )
            return run_command(acting, _VERBS[action], argument)

        done, answer = await site.write(run)
        site.queued()
        outcome = {"notice": answer} if done else {"error": answer}
        return await document_page(site, request, viewer, raw_id, **outcome)

    return [
        Route("/documents/{id}/{action}", guard(site, act, needs=[Duty.OFFICE]), methods=["POST"])
    ]


def _argument(action: str, document_id: int, form: dict[str, Any]) -> str:
    """The command's argument as the office would write it in the mail."""
    step = form.get("step", "").strip()
    target = f"#{document_id}.{step}" if step.isdigit() else f"#{document_id}"
    reason = " ".join(form.get("reason", "").split())
    if action == "reassign":
        return f"{target} {form.get('person', '').strip() or '-'} {reason}".strip()
    if action == "cancel":
        return f"{target} {reason}".strip()
    return f"{target} {form.get('date', '').strip()}".strip()
