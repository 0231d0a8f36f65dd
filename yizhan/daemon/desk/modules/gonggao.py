"""公告板 at gonggao@: bulletins to the scope their author chooses (第二十三條).

The 範圍 line names units, roles or people; all-bureau scope needs a bulletin marked special,
and an important or special one a bureau leader's approval, an ordinary one the unit head's
(``routing.bulletins``). Once approved the bulletin goes to everyone in scope as a list mail;
its author or the office may withdraw it (撤回 id / WITHDRAW id), and everyone who had it is
told. Scheduled
jobs take it off the board after its 期限 and archive the year's bulletins at year end.
"""

from __future__ import annotations

import datetime as dt

from yizhan.daemon.desk.files import document_files
from yizhan.daemon.desk.modules.base import DocumentModule, Prepared
from yizhan.daemon.desk.request import Outcome, Request
from yizhan.mailstore.documents import document_by_id, load_state
from yizhan.mailstore.models import Document
from yizhan.routing import bulletins
from yizhan.routing.commands import Verb
from yizhan.routing.drafts import Draft
from yizhan.routing.duties import Duty, duties_in
from yizhan.routing.effects import Effect, PublishBulletin, WithdrawBulletin

__all__ = ["Gonggao"]


class Gonggao(DocumentModule):
    """See the module docstring."""

    name = "gonggao"
    help = "公告板 bulletin；撤回 id / WITHDRAW id"
    effects = (PublishBulletin, WithdrawBulletin)
    jobs = ("bulletin_expiry", "bulletin_cleanup_notice", "bulletin_cleanup")

    def command(self, request: Request) -> Outcome | bool:
        """撤回 id / WITHDRAW id from a bulletin's author (第二十三條)."""
        assert request.account is not None
        command = request.command
        line = command.argument if command.verb is Verb.UNKNOWN else ""
        wanted = bulletins.parse_withdraw(line or request.subject)
        if wanted is None:
            return False
        document = document_by_id(request.session, wanted[0])
        if document is None:
            request.reply(f"沒有公告 #{wanted[0]}。\nNo #{wanted[0]}.")
            return True
        decision = bulletins.withdraw(
            load_state(request.session, document),
            actor=request.account,
            reason=wanted[1],
            now=request.now,
            office=Duty.OFFICE in duties_in(request.directory, request.account),
        )
        if not decision.accepted:
            request.reply(decision.reply, document=document)
            return True
        return Outcome(document=document, decision=decision, actor=request.account)

    def prepare(self, request: Request, draft: Draft, today: dt.date) -> Prepared | str:
        """The bulletin's scope (units, roles, people), expiry and importance."""
        scope = bulletins.parse_scope(draft.scope, request.directory)
        if scope.unknown:
            unknown = "、".join(scope.unknown)
            return (
                f"發布範圍中不認識：{unknown}。請寫單位、角色（如 綜合人員）或人員。\n"
                f"Not understood in the scope: {', '.join(scope.unknown)}. Write units, roles "
                "(e.g. clerk) or people."
            )
        expires = bulletins.parse_expiry(draft.deadline, today)
        if isinstance(expires, str):
            return expires
        facts = bulletins.bulletin_facts(draft, request.subject, scope)
        return Prepared(
            fields={
                "scope_roles": list(scope.roles),
                "scope_people": list(scope.people),
                "all_bureau": scope.all_bureau,
                "important": draft.important,
                "special": draft.special,
                "expires": expires.isoformat(),
                # The condition of the gonggao flow's two approval steps (第二十三條).
                "needs_bureau_leader": facts["needs_bureau_leader"],
            },
            facts=facts,
            scope_units=scope.units,
        )

    def apply_effect(
        self, request: Request, document: Document, effect: Effect, *, key: str, actor: str
    ) -> None:
        """Publish an approved bulletin to its scope, or tell its readers it was withdrawn."""
        if isinstance(effect, PublishBulletin):
            self._publish(request, document, effect, key)
        elif isinstance(effect, WithdrawBulletin):
            self._withdraw(request, document, effect, key)
        else:
            super().apply_effect(request, document, effect, key=key, actor=actor)

    def _publish(
        self, request: Request, document: Document, effect: PublishBulletin, key: str
    ) -> None:
        directory, mailer = request.directory, request.mailer
        people = bulletins.audience(directory, effect.units, effect.roles, effect.people)
        document.fields = {
            **document.fields,
            "published_at": request.now.isoformat(),
            "recipients": [p.account for p in people],
        }
        author = directory.people.get(document.author)
        unit = directory.units.get(document.unit_id)
        local = request.now.astimezone(request.ctx.config.tzinfo)
        attachments = document_files(request.session, request.ctx.raw, document)
        headers = mailer.bulletin_headers(document, "published")
        for person in people:
            mailer.send(
                request.session,
                source=f"{key}:bulletin:{person.account}",
                to=person,
                template="bulletin.txt",
                sender=mailer.sender("gonggao", "公告板"),
                headers=headers,
                document_id=document.id,
                attachments=attachments,
                variables={
                    "title": document.title,
                    "body": document.fields.get("body", ""),
                    "important": bool(document.fields.get("important")),
                    "author": author.name if author else document.author,
                    "unit": unit.name if unit else document.unit_id,
                    "date": f"{local:%Y-%m-%d}",
                    "expires": effect.expires,
                    "id": document.id,
                },
            )

    def _withdraw(
        self, request: Request, document: Document, effect: WithdrawBulletin, key: str
    ) -> None:
        directory, mailer = request.directory, request.mailer
        author = directory.people.get(document.author)
        headers = mailer.bulletin_headers(document, "withdrawn")
        for account in document.fields.get("recipients", []):
            person = directory.people.get(account)
            if person is None:
                continue
            mailer.send(
                request.session,
                source=f"{key}:withdrawn:{account}",
                to=person,
                template="bulletin_withdrawn.txt",
                sender=mailer.sender("gonggao", "公告板"),
                headers=headers,
                document_id=document.id,
                variables={
                    "title": document.title,
                    "author": author.name if author else document.author,
                    "id": document.id,
                    "reason": effect.reason,
                },
            )
