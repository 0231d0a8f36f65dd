"""What a module of 第二條 is to the desk: the contract, and the base of the document modules.

A module answers mail to its own address (``name`` is its key in ``[addresses]`` and the
kind of the documents it opens). A document module's mail opens a document of its flow in
the rules; before that, the module may read the mail as a command of its own (a bulletin's
WITHDRAW, the leave balance) and add what its flow needs (:meth:`DocumentModule.prepare`: the
intake). When a flow ends, the effect records it names are carried out by the module that
declares them (``effects``). ``jobs`` names the scheduled jobs that serve the module.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, ClassVar, Protocol

from yizhan.daemon.desk.request import Outcome, Request
from yizhan.daemon.extract.message import attached_files
from yizhan.mailstore.documents import create_document
from yizhan.mailstore.models import Document
from yizhan.routing import workflow
from yizhan.routing.commands import Command
from yizhan.routing.documents import Decision, DocumentState
from yizhan.routing.drafts import Draft, parse_draft
from yizhan.routing.effects import Effect

__all__ = ["DocumentModule", "Module", "Prepared", "fixed_due"]


class Module(Protocol):
    """A module at its own address (see the module docstring)."""

    @property
    def name(self) -> str:
        """Its key in ``[addresses]`` (its pinyin local part by default) and its documents'
        kind."""

    @property
    def help(self) -> str:
        """Its line in HELP: what it is, in Chinese and English, and its own commands."""

    @property
    def own_help(self) -> bool:
        """Whether it answers HELP at its address itself (else the desk's HELP answers)."""

    @property
    def effects(self) -> tuple[type[Effect], ...]:
        """The effect records (``routing.effects``) it carries out."""

    @property
    def jobs(self) -> tuple[str, ...]:
        """The scheduled jobs (by name, ``daemon.scheduler.JOBS``) that serve it."""

    def receive(self, request: Request) -> Outcome | None:
        """Answer a mail to the module's address from an authenticated sender; the
        decision to apply, if it led to one."""
        ...

    def apply_effect(
        self, request: Request, document: Document, effect: Effect, *, key: str, actor: str
    ) -> Sequence[Outcome] | None:
        """Carry out ``effect`` for ``document``; ``key`` names the request and the effect,
        for every mail it queues. What it returns are further decisions the desk applies in
        turn (a person removed: their waiting steps handed over, ``desk.handover``)."""
        ...


@dataclass(frozen=True, kw_only=True)
class Prepared:
    """A module's additions to ``workflow.open_document``: fields, facts and scope units.

    ``scope_units`` replaces the draft's 範圍 units when not None (a bulletin's scope also
    names roles and people, which are not units). ``due_at``, when not None, is the deadline
    of the first steps instead of the flow's working days (a supervision task's 期限).
    """

    fields: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, bool] = field(default_factory=dict)
    scope_units: tuple[str, ...] | None = None
    due_at: dt.datetime | None = None


class DocumentModule:
    """A module whose mail opens a document of its flow in the rules (第二條); see ``Module``.

    Subclasses name themselves and override what their module adds: :meth:`command` for its
    commands at its address, :meth:`prepare` for its intake, :meth:`opened` and :meth:`decide`
    for a module that decides part of its flow itself, :meth:`apply_effect` for its effects.
    """

    name: ClassVar[str]
    help: ClassVar[str]
    own_help: ClassVar[bool] = False
    effects: ClassVar[tuple[type[Effect], ...]] = ()
    jobs: ClassVar[tuple[str, ...]] = ()

    #: The rule that decides a command in a reply to one of the module's steps: the workflow
    #: engine, or a module's own (supervision's PROGRESS, DONE and confirmation).
    engine = staticmethod(workflow.apply_command)

    def receive(self, request: Request) -> Outcome | None:
        """See ``Module``: a command of the module's own, else a new document."""
        handled = self.command(request)
        if isinstance(handled, Outcome):
            return handled
        if handled:
            return None
        return self.open(request)

    def command(self, request: Request) -> Outcome | bool:
        """Answer the mail if it is a command at the module's address: True when answered,
        an Outcome to apply, False when it is a new document (the default)."""
        return False

    def prepare(self, request: Request, draft: Draft, today: dt.date) -> Prepared | str:
        """What the module adds for a new document, or the reason to refuse it."""
        return Prepared()

    def opened(self, request: Request, decision: Decision) -> Decision:
        """The engine's decision on a new document, as the module completes it."""
        return decision

    def decide(
        self,
        request: Request,
        state: DocumentState,
        *,
        step_id: int | None,
        command: Command,
        actor: str,
        on_behalf_of: str | None,
    ) -> Decision:
        """The engine's decision on a command in a reply to one of the module's steps."""
        return self.engine(
            doc=state,
            step_id=step_id,
            command=command,
            actor=actor,
            on_behalf_of=on_behalf_of,
            directory=request.directory,
            rules=request.desk.rules,
            now=request.now,
            due=request.desk.calendar.due,
        )

    def apply_effect(
        self, request: Request, document: Document, effect: Effect, *, key: str, actor: str
    ) -> Sequence[Outcome] | None:
        """See ``Module``; a module that declares no effects is never asked."""
        raise TypeError(f"{self.name} carries out no {type(effect).__name__}")

    def open(self, request: Request) -> Outcome | None:
        """A mail to the module's address starts a document: the subject is its title, the
        body may open with key: value lines (docs/modules.md, Common rules)."""
        assert request.account is not None
        subject = request.subject
        draft = parse_draft(subject, request.body)
        if draft.problems:
            request.reply("\n".join(draft.problems))
            return None
        today = request.now.astimezone(request.ctx.config.tzinfo).date()
        prepared = self.prepare(request, draft, today)
        if isinstance(prepared, str):
            request.reply(prepared)
            return None
        decision = self.opened(request, self._decide_opening(request, draft, prepared))
        if not decision.accepted:
            request.reply(decision.reply)
            return None
        author = request.directory.people[request.account]
        document = create_document(
            request.session,
            kind=self.name,
            title=draft.title,
            author=request.account,
            unit=author.unit,
            urgency=draft.urgency,
            fields={},
            source_inbound=request.inbound_id,
            now=request.now,
        )
        return Outcome(document=document, decision=decision, actor=request.account)

    def _decide_opening(self, request: Request, draft: Draft, prepared: Prepared) -> Decision:
        assert request.account is not None
        msg = request.msg
        fields = {
            "body": draft.body,
            "doc_type": draft.doc_type,
            "deadline": draft.deadline,
            "attachments": [p.get_filename() or "" for p in attached_files(msg)],
            "inbound": request.inbound_id,
            **prepared.fields,
        }
        desk = request.desk
        return workflow.open_document(
            kind=self.name,
            title=draft.title,
            author=request.account,
            urgency=draft.urgency,
            to_units=draft.to_units,
            cc_units=draft.cc_units,
            scope_units=draft.scope if prepared.scope_units is None else prepared.scope_units,
            fields=fields,
            forwards_document=_forwards_document(msg)
            or prepared.facts.get("forwards_document", False),
            facts=prepared.facts,
            directory=request.directory,
            rules=desk.rules,
            now=request.now,
            due=desk.calendar.due if prepared.due_at is None else fixed_due(prepared.due_at),
        )


def fixed_due(at: dt.datetime) -> workflow.Due:
    """A ``due`` for the engine that gives every step opened now the deadline ``at``."""

    def due(_now: dt.datetime, _working_days: int, _urgency: str | None) -> dt.datetime:
        return at

    return due


def _forwards_document(msg: EmailMessage) -> bool:
    # A forwarded mail attached whole is a forwarded document (第二十二條 for letters).
    return any(p.get_content_type() == "message/rfc822" for p in msg.walk())
