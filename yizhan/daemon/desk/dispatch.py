"""The one table of who answers each recipient of a message: a module, cmd@, a reply to a step,
a person's OA address; and the answers for a recipient nobody serves.

The processor classifies each recipient (``routing.addresses``) and looks up
:data:`RECEIVERS` by the module's name or the recipient's kind. Every module address has the
same front door: a sender the gateway could not authenticate is refused (第七條), and HELP is
answered at every address (unless the module explains itself, as ziliao@ does).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

from yizhan.daemon.desk import bounces, commands, replies
from yizhan.daemon.desk.lookalike import strip_lookalike
from yizhan.daemon.desk.modules import MODULES, Module
from yizhan.daemon.desk.request import Outcome, Request
from yizhan.mailstore import audit
from yizhan.routing.addresses import Recipient
from yizhan.routing.commands import Verb

__all__ = ["RECEIVERS", "Receiver", "not_delivered", "not_served"]

#: Answers one recipient's request; returns the decision to apply, if it led to one.
Receiver = Callable[[Request, Recipient], Outcome | None]


def forward_to_person(request: Request, recipient: Recipient) -> None:
    """Mail to account@<OA domain> goes on to the person's own mailbox, unchanged but for the
    look of Yizhan's own requests (``lookalike``), audited (第十一條: work mail between
    colleagues is the organisation's mail server's business)."""
    assert recipient.account is not None
    person = request.directory.people[recipient.account]
    sender = request.person
    cleaned = strip_lookalike(
        request.ctx.raw.read(request.path),
        domain=request.desk.domain,
        sender_name=sender.name if sender else (request.account or ""),
    )
    request.mailer.forward(
        request.session,
        source=request.key,
        message=cleaned.message,
        mail_from=request.mail_from,
        to=person.mailbox(request.desk.domain),
    )
    detail: dict[str, object] = {"inbound": request.inbound_id, "message_id": request.message_id}
    if cleaned.removed:
        # A look-alike of Yizhan's own requests: recorded, and the IT department can see who.
        detail["removed"] = list(cleaned.removed)
    audit.record(
        request.session,
        at=request.now,
        actor=request.account or request.mail_from or "unknown",
        action="mail.forward",
        target=person.account,
        detail=detail,
    )


def command_or_report(request: Request, recipient: Recipient) -> Outcome | None:
    """cmd@: a command, or a delivery report for Yizhan's own mail (it leaves from cmd@)."""
    report = bounces.report_of(request)
    if report is not None:
        bounces.receive_report(request, report)
        return None
    return commands.receive(request, recipient)


def _front_door(module: Module) -> Receiver:
    def receive(request: Request, _recipient: Recipient) -> Outcome | None:
        if request.account is None:
            request.refuse_unauthenticated()
            return None
        command = request.command
        # HELP works anywhere; "幫助困難職工…" is a title, not HELP.
        if not module.own_help and command.verb is Verb.HELP and not command.argument.strip():
            request.reply(commands.HELP.text(request.ctx.config, command))
            return None
        return module.receive(request)

    return receive


#: Who answers a recipient, by module name, or by kind for cmd@, replies and people.
RECEIVERS: Final[Mapping[str, Receiver]] = MappingProxyType(
    {
        "person": forward_to_person,
        "reply": replies.receive,
        "command": command_or_report,
        **{name: _front_door(module) for name, module in MODULES.items()},
    }
)


def not_delivered(request: Request, reason: str) -> None:
    """Tell the sender that ``request``'s recipient was not delivered to, and why (refused
    at RCPT time normally; the directory may have changed since)."""
    rcpt = request.recipient
    _answer(
        request, "reply.txt", text=f"未送達 {rcpt}：{reason}\nNot delivered to {rcpt}: {reason}"
    )


def not_served(request: Request, _recipient: Recipient) -> None:
    """Tell the sender that nothing here serves the address yet, and that the mail is kept."""
    _answer(request, "received.txt" if request.account else "not_authenticated.txt")


def _answer(request: Request, template: str, *, text: str = "") -> None:
    # Every message gets an answer; nothing is dropped silently (第十一條, docs/modules.md).
    address = request.answer_address()
    if address is None:
        return
    person = request.person
    request.mailer.send(
        request.session,
        source=request.key,
        to=address,
        template=template,
        language=person.language if person else None,
        headers=request.answer_headers(),
        now=request.now,
        variables={
            "subject": request.subject or "(no subject)",
            "address": request.recipient,
            "inbound_id": request.inbound_id,
            "text": text,
        },
    )
