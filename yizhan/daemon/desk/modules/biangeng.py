"""事項變更申請 at biangeng@: change requests and account applications (第十條).

A unit's clerk fills the form (申請表) in the body; its leader approves, the IT department
applies it (``routing.changes``). The approved change is written to the directory and the
accounts, the IT department hears of it, and the office too when a clerk changes (第十條:
綜合人員發生變動時…必須同時報局辦公室備案).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Final

from yizhan.daemon.desk.handover import handover_outcomes
from yizhan.daemon.desk.modules.base import DocumentModule, Prepared
from yizhan.daemon.desk.request import Outcome, Request
from yizhan.mailstore.changes import apply_change
from yizhan.mailstore.directory import load_directory
from yizhan.mailstore.models import Document
from yizhan.routing.changes import Change, is_clerk_change, parse_change
from yizhan.routing.drafts import Draft
from yizhan.routing.duties import it_people, office_staff
from yizhan.routing.effects import ApplyDirectoryChange, Effect

__all__ = ["Biangeng"]

# How each kind of change reads in the notice.
_CHANGE_WORDS: Final = {
    "add": "新增",
    "special": "專用帳號",
    "move": "調動",
    "remove": "撤銷",
    "role": "角色變更",
}


class Biangeng(DocumentModule):
    """See the module docstring."""

    name = "biangeng"
    help = "事項變更申請 change request, account application"
    effects = (ApplyDirectoryChange,)

    def prepare(self, request: Request, draft: Draft, today: dt.date) -> Prepared | str:
        """The form as read, and whether it changes a unit's clerk."""
        assert request.account is not None
        change = parse_change(draft.extra, requester=request.account, directory=request.directory)
        if isinstance(change, list):
            return "\n".join(change)
        return Prepared(
            fields={
                "change": change.as_fields(),
                "clerk_change": is_clerk_change(change, request.directory),
            }
        )

    def apply_effect(
        self, request: Request, document: Document, effect: Effect, *, key: str, actor: str
    ) -> Sequence[Outcome] | None:
        """Apply the approved change and tell IT, and the office for a clerk (第十條); a person
        who leaves their post or unit hands their waiting steps over (``desk.handover``)."""
        if not isinstance(effect, ApplyDirectoryChange):
            return super().apply_effect(request, document, effect, key=key, actor=actor)
        directory, mailer = request.directory, request.mailer
        change = Change.from_fields(effect.change)
        before = directory.people.get(change.account)
        apply_change(request.session, change, document_id=document.id, actor=actor, now=request.now)
        clerk = bool(document.fields.get("clerk_change"))
        told = it_people(directory) + (office_staff(directory) if clerk else [])
        requester = directory.people.get(document.author)
        unit = directory.units.get(change.unit)
        headers = mailer.document_headers(document)
        for n, person in enumerate({p.account: p for p in told}.values()):
            mailer.send(
                request.session,
                source=f"{key}:change:{n}",
                to=person,
                template="directory_changed.txt",
                headers=headers,
                document_id=document.id,
                variables={
                    "doc": document.id,
                    "requester": requester.name if requester else document.author,
                    "what": _CHANGE_WORDS.get(change.action, change.action),
                    "name": change.name,
                    "account": change.account,
                    "unit": unit.name if unit else change.unit,
                    "roles": ", ".join(change.roles) or "-",
                    "created": change.action in ("add", "special"),
                    "responsible": change.responsible,
                    "clerk": clerk,
                },
            )
        leaving = before is not None and (
            change.action == "remove" or (change.action == "move" and change.unit != before.unit)
        )
        if before is None or not leaving:
            return None
        return handover_outcomes(
            request.session,
            load_directory(request.session),
            request.desk.rules,
            account=change.account,
            unit=before.unit,
            why="revoked" if change.action == "remove" else "moved",
            actor=actor,
            now=request.now,
            named=change.successor,
        )
