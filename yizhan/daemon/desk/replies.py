"""Answers a reply to a step (r+TOKEN@): checks who may act, then lets the engine decide.

The token names the document, the step and the person asked (``routing.tokens``); when a mail
client dropped the plus part, the thread's In-Reply-To/References find Yizhan's mail instead.
A reply counts only from the person asked or their active delegate (第九條); anyone else is
refused, audited and reported to the IT department (第七條), except for a COMMENT, which anyone
on the document may make. The steps listed in ``[signing] require_signature`` (簽發, 用印) count
only with the person's own OpenPGP signature, and then only what was signed (第十八條). A
reply to a returned document is its new version. The document's module decides the command.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from email.utils import parseaddr
from typing import Final

from sqlalchemy import func, select

from yizhan.daemon.desk.files import brings_files
from yizhan.daemon.desk.modules import DOCUMENT_MODULES, DocumentModule
from yizhan.daemon.desk.request import Outcome, Request
from yizhan.daemon.extract.message import attached_files
from yizhan.mailstore import audit
from yizhan.mailstore.delegations import active_delegations
from yizhan.mailstore.documents import doc_target, load_state
from yizhan.mailstore.it_notices import may_tell_now
from yizhan.mailstore.models import AuditEntry, Document, OutboundMessage, Step
from yizhan.routing import edits, workflow
from yizhan.routing.addresses import Recipient
from yizhan.routing.commands import Verb, parse_command
from yizhan.routing.delegation import resolve
from yizhan.routing.documents import Decision, DocumentState
from yizhan.routing.drafts import parse_draft
from yizhan.routing.duties import it_people
from yizhan.routing.replies import normalise, reply_part
from yizhan.routing.rules import REDISTRIBUTE_STEP, REVISE_STEP
from yizhan.routing.tokens import TokenClaim, read_token
from yizhan.signing.pgpmime import Verification, verify_message

__all__ = ["receive"]


def receive(request: Request, recipient: Recipient) -> Outcome | None:
    """A reply to a step (see the module docstring); the decision to apply, if accepted."""
    secret = request.ctx.config.secret
    claim = read_token(secret, recipient.token) if recipient.token else None
    if claim is None:
        claim = _claim_from_thread(request)
    if claim is None:
        _unknown_token(request, recipient.token or "")
        request.reply(
            "無法識別您回覆的是哪一份文件：請直接回覆驛站發給您的那封郵件，不要修改收件人。\n"
            "Yizhan could not tell which document this reply is for: reply to the mail "
            "Yizhan sent you, without changing the recipient."
        )
        return None
    account = request.account
    if account is None:
        request.refuse_unauthenticated()
        return None
    session = request.session
    step = session.get(Step, claim.step_id)
    document = session.get(Document, claim.document_id)
    if step is None or document is None or step.document_id != document.id:
        request.reply("該文件已不存在。The document no longer exists.")
        return None
    on_behalf_of: str | None = None
    command = request.command
    step_id: int | None = step.id
    if account != step.assignee:
        acting, delegator = resolve(step.assignee, active_delegations(session), request.now)
        if command.verb in (Verb.COMMENT, Verb.OBJECT) and acting != account:
            # Anyone on the document may comment or object; the engine checks that they are.
            step_id = None
        elif acting != account:
            _impersonation(request, step.assignee)
            return None
        else:
            on_behalf_of = delegator
    if step.on_behalf_of and on_behalf_of is None and step_id is not None:
        on_behalf_of = step.on_behalf_of
    flow = request.desk.rules.flow(document.kind)
    rule = flow.step(step.name) if flow is not None else None
    if rule is not None and rule.edits_body and command.verb is Verb.APPROVE:
        # An edited text is published as written, with its full-width ，。： (routing.edits).
        command = replace(command, text=edits.text_below_command(request.body))
    verification: Verification | None = None
    if (
        step.name in request.ctx.config.signing.require_signature
        and step.state == "waiting"
        and step_id is not None
        and command.verb not in (Verb.COMMENT, Verb.OBJECT)
    ):
        # 簽發 and 用印 count only with the person's own OpenPGP signature (第十八條).
        verification = verify_message(
            request.ctx.raw.read(request.path), request.ctx.keyring, account=account
        )
        if not verification.ok:
            _refuse_unsigned(request, document, step, verification)
            return None
        # Only what was signed counts as the command.
        command = parse_command(reply_part(normalise(verification.signed_text or "")))
    state = load_state(session, document)
    if step.name == REVISE_STEP and step.state == "waiting" and command.verb in _REVISING:
        decision = _revise(request, state, on_behalf_of)
    else:
        decision = _module_of(state).decide(
            request,
            state,
            step_id=step_id,
            command=command,
            actor=account,
            on_behalf_of=on_behalf_of,
        )
    if not decision.accepted:
        request.reply(decision.reply, document=document)
        return None
    if step.name == REDISTRIBUTE_STEP and brings_files(request.msg):
        # A refused copy corrected with the missing files (第二十一條): they become the
        # document's files, as a revision's do.
        names = [p.get_filename() or "" for p in attached_files(request.msg)]
        decision = replace(
            decision,
            fields={**decision.fields, "attachments": names, "inbound": request.inbound_id},
        )
    return Outcome(
        document=document,
        decision=decision,
        actor=account,
        on_behalf_of=on_behalf_of,
        sealed_by=verification if step.name == "seal" and verification is not None else None,
    )


#: What a reply to a returned document may open with: a new version has no command word, or
#: reads as DONE ("辦結，修改稿如下").
_REVISING = (Verb.UNKNOWN, Verb.DONE)


def _module_of(state: DocumentState) -> DocumentModule:
    # A kind the desk has no module for (only a rules file names it) is the engine's alone.
    return DOCUMENT_MODULES.get(state.kind) or _EngineOnly()


class _EngineOnly(DocumentModule):
    name = "-"
    help = ""


def _revise(request: Request, state: DocumentState, on_behalf_of: str | None) -> Decision:
    """The author's reply to the returned document: its new version, kept as written
    (，。： not made ASCII), like a new document; its files replace the old only if it
    brings any."""
    assert request.account is not None
    msg = request.msg
    draft = parse_draft(request.subject, edits.reply_as_written(request.body))
    files: dict[str, object] = {}
    if brings_files(msg):
        names = [p.get_filename() or "" for p in attached_files(msg)]
        files = {"attachments": names, "inbound": request.inbound_id}
    return workflow.revise_document(
        doc=state,
        actor=request.account,
        on_behalf_of=on_behalf_of,
        new_title=draft.title or None,
        new_fields={"body": draft.body, **files},
        to_units=draft.to_units or None,
        cc_units=draft.cc_units or None,
        scope_units=draft.scope or None,
        directory=request.directory,
        rules=request.desk.rules,
        now=request.now,
        due=request.desk.calendar.due,
    )


def _refuse_unsigned(
    request: Request, document: Document, step: Step, verification: Verification
) -> None:
    audit.record(
        request.session,
        at=request.now,
        actor=request.account or request.sender.address,
        action="refused.signature",
        target=doc_target(document.id),
        detail={"status": verification.status},
    )
    request.reply(
        f"未受理：{verification.reason_zh}\n"
        f"這一步（{step.name}）需要用您登記的 OpenPGP 密鑰簽名回覆。\n"
        f"Not accepted: {verification.reason_en}\nThis step ({step.name}) needs a "
        "reply signed with your registered OpenPGP key.",
        document=document,
    )


#: Replies to tokens Yizhan never gave, from one sender in a day, after which the IT department
#: is told: a mistyped address happens once, guessing happens many times (第七條).
GUESSES_TOLD: Final = 5


def _unknown_token(request: Request, token: str) -> None:
    """Record a reply to an ``r+`` address Yizhan never gave; at the ``GUESSES_TOLD``-th in a
    day from the same sender, tell the IT department."""
    actor = request.account or request.sender.address or request.mail_from or "unknown"
    audit.record(
        request.session,
        at=request.now,
        actor=actor,
        action="reply.unknown_token",
        target=token[:64] or None,
        detail={"inbound": request.inbound_id, "recipient": request.recipient[:200]},
    )
    recent = request.session.scalar(
        select(func.count(AuditEntry.id)).where(
            AuditEntry.action == "reply.unknown_token",
            AuditEntry.actor == actor,
            AuditEntry.at >= request.now - dt.timedelta(days=1),
        )
    )
    if recent != GUESSES_TOLD:
        return
    for it_person in it_people(request.directory):
        request.mailer.send(
            request.session,
            source=f"{request.key}:guessing:{it_person.account}",
            to=it_person,
            template="reply.txt",
            headers={"Auto-Submitted": "auto-generated"},
            now=request.now,
            variables={
                "subject": f"reply tokens: {actor}",
                "text": (
                    f"{actor} 一天內 {GUESSES_TOLD} 次回覆驛站從未發出的地址（r+…），"
                    f"可能在猜測回覆地址（第七條）。最近一次：收到的郵件 #{request.inbound_id}。\n"
                    f"{actor} replied {GUESSES_TOLD} times in a day to r+ addresses Yizhan "
                    "never gave: perhaps guessing reply addresses (art. 7). The latest: inbound "
                    f"message #{request.inbound_id}. `yizhan audit` lists them "
                    "(reply.unknown_token)."
                ),
            },
        )


def _impersonation(request: Request, asked: str) -> None:
    """Acting in another person's name is refused and reported to IT (第七條)."""
    sender, directory = request.sender, request.directory
    entry = audit.record(
        request.session,
        at=request.now,
        actor=sender.account or sender.address,
        action="impersonation",
        target=asked,
        detail={"inbound": request.inbound_id},
    )
    request.session.flush()
    asked_name = directory.people[asked].name if asked in directory.people else asked
    request.reply(
        f"未受理：這一步是請 {asked_name} 辦理的，"
        "您不是他本人，也不是他的授權代理人（第七條）。"
        "此事已報告信息化處。\n"
        f"Refused: this step was asked of {asked_name}; you are neither that person nor "
        "their delegate. The IT department has been told."
    )
    if not may_tell_now(request.session, "impersonation", request.now, entry.id):
        # IT heard of one within the hour: the it_alerts job counts this into the next.
        return
    for n, it_person in enumerate(it_people(directory)):
        request.mailer.send(
            request.session,
            source=f"{request.key}:it:{n}",
            to=it_person.mailbox(request.desk.domain),
            template="impersonation.txt",
            language=it_person.language,
            now=request.now,
            variables={
                "account": sender.account or sender.address,
                "asked": asked,
                "inbound_id": request.inbound_id,
            },
        )


def _claim_from_thread(request: Request) -> TokenClaim | None:
    """When a client dropped the plus part: find Yizhan's mail by In-Reply-To/References."""
    msg = request.msg
    ids = " ".join(str(msg.get(h, "")) for h in ("In-Reply-To", "References")).split()
    for message_id in reversed(ids):
        sent = request.session.scalars(
            select(OutboundMessage).where(OutboundMessage.message_id == message_id)
        ).first()
        if sent is None:
            continue
        for line in sent.data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
            if line.lower().startswith(b"reply-to:"):
                address = line.split(b":", 1)[1].decode("ascii", "replace").strip()
                local = parseaddr(address)[1].split("@")[0]
                if local.lower().startswith("r+"):
                    return read_token(request.ctx.config.secret, local[2:])
    return None
