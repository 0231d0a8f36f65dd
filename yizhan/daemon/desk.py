"""Acts on documents for one inbound message: opens them, applies replies, answers cmd@.

The desk is the edge between mail and the pure engine: it reads the message and the database,
asks ``routing`` what to do, writes the decision and queues the mail it causes, all inside the
processor's transaction. Who may act is settled here (DESIGN.md "Who may act", 第七條, 第九條).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from typing import Any, Final

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from yizhan.daemon import intake
from yizhan.daemon.context import Context
from yizhan.daemon.effects import Effects
from yizhan.daemon.extract.message import attached_files
from yizhan.daemon.files import attach_files, brings_files, document_files
from yizhan.daemon.tools import MailFile, ToolDesk
from yizhan.mailstore import audit
from yizhan.mailstore import leave as leave_store
from yizhan.mailstore import publicity as publicity_store
from yizhan.mailstore.documents import (
    allocate_number,
    apply_decision,
    create_document,
    doc_target,
    find_document,
    load_state,
    waiting_steps,
)
from yizhan.mailstore.models import DelegationRow, Document, Inbound, OutboundMessage, Step
from yizhan.mailstore.outbox import store_body
from yizhan.mailstore.settings import load_settings, save_settings
from yizhan.routing import bulletins, edits, leave, publicity, supervision, workflow
from yizhan.routing.bulletins import parse_withdraw
from yizhan.routing.commands import (
    VERB_WORDS,
    Command,
    Verb,
    command_from_message,
    parse_command,
    parse_delegate,
)
from yizhan.routing.delegation import Delegation, check_new_delegation, resolve
from yizhan.routing.directory import Directory
from yizhan.routing.documents import Decision, DocumentState
from yizhan.routing.drafts import parse_draft
from yizhan.routing.numbering import format_number
from yizhan.routing.reminders import first_reminder_at
from yizhan.routing.replies import body_text, normalise, reply_part
from yizhan.routing.rules import REVISE_STEP
from yizhan.routing.settings import apply_set
from yizhan.routing.tokens import TokenClaim, make_token, read_token
from yizhan.routing.tools import ToolRequest, tool_request
from yizhan.signing.keyring import KeyringError, SignerSpec
from yizhan.signing.pgpmime import (
    SignedPart,
    Verification,
    sign_message_bytes,
    signed_body,
    signed_content,
    verify_message,
    wrap_head,
)
from yizhan.templates.official import official_document
from yizhan.templates.official_html import render_official_html
from yizhan.templates.official_pdf import CJKFontMissing, render_official_pdf
from yizhan.templates.render import render_mail

log = logging.getLogger("yizhan.desk")

#: The modules whose mail opens a document of a flow in the rules: the four document flows and
#: the modules of 第二條 built on them (公告板, 休假管理, 事項變更申請, 信息宣傳, 督查督辦).
DOCUMENT_MODULES = (
    "fawen",
    "shouwen",
    "qianbao",
    "hanjian",
    "gonggao",
    "xiujia",
    "biangeng",
    "xinxi",
    "duban",
)

#: Notices that bring a document to someone who has not seen it, or asks them to act on it:
#: they carry the document's files (daemon.files). Replies to the author and outcomes do not.
_NOTICES_WITH_FILES: Final = frozenset({"step_request", "distributed", "supervision"})

_LABELS = {
    "step_request": ("請辦理", "Action requested"),
    "distributed": ("公文分發", "Document distributed"),
    "instruction": ("領導批示", "Instruction"),
    "rejected": ("已退回", "Returned"),
    "approved": ("已同意", "Approved"),
    "result": ("辦理結果", "Result"),
    "closed": ("已辦結", "Closed"),
    "comment": ("意見", "Comment"),
    "withdrawn": ("已撤回", "Withdrawn"),
    "published": ("已發布", "Published"),
    "reply": ("回覆", "Reply"),
    "supervision": ("督辦", "Supervision"),
    "progress": ("辦理進展", "Progress"),
    "part_done": ("請確認辦結", "Confirm completion"),
}


@dataclass(frozen=True, kw_only=True)
class Incoming:
    """The message being processed, for one of its recipients.

    ``key`` names this (message, recipient) pair; every outbound mail the desk queues for it is
    keyed by it, so processing the message again queues nothing twice.
    """

    inbound_id: int
    key: str
    mail_from: str
    sender_account: str | None
    path: str

    @classmethod
    def of(cls, row: Inbound, recipient_index: int) -> Incoming:
        """The pair for recipient number ``recipient_index`` of ``row``."""
        return cls(
            inbound_id=row.id,
            key=f"in:{row.id}:{recipient_index}",
            mail_from=row.mail_from,
            sender_account=row.sender_account,
            path=row.path,
        )


@dataclass(frozen=True, kw_only=True)
class SharedBody:
    """A distribution's signed body, stored once, and the subject that goes with it."""

    signed: SignedPart
    subject: str
    body_id: int


@dataclass(frozen=True, kw_only=True)
class OfficialCopy:
    """The sealed document's official form, attached to its distribution (GB/T 9704-2012).

    ``shared`` keeps the signed bodies made from it during one distribution (issue 4: one
    signature and one stored copy per document version, however many recipients).
    """

    html: str
    pdf: bytes | None
    filename: str
    shared: dict[tuple[str, ...], SharedBody] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Sender:
    """Who sent the message being processed, as far as it could be established."""

    account: str | None
    address: str


class Desk:
    """Document actions for the processor; one instance per daemon."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.rules = ctx.rules
        self.calendar = ctx.config.work_calendar()
        self.domain = ctx.config.domain
        self.effects = Effects(ctx)
        self.tools = ToolDesk(ctx)
        # The finder and the library build on the desk (its replies and scope check), so they
        # are imported here, not at the top, where they would import the desk in a circle.
        from yizhan.daemon.materials import Library
        from yizhan.daemon.search import Finder

        self.finder = Finder(self)
        self.library = Library(self.finder)

    # -- entry points -------------------------------------------------------------------------

    def open_document(
        self, session: Session, row: Incoming, msg: EmailMessage, module: str, directory: Directory
    ) -> None:
        """A mail to a module address starts a document (DESIGN.md: subject is its title)."""
        now = self.ctx.clock()
        sender = self._sender(row, msg)
        if sender.account is None:
            self._refuse_unauthenticated(session, row, msg, sender, directory)
            return
        if self._module_command(session, row, msg, module, sender, directory, now):
            return
        subject = str(msg.get("Subject", ""))
        draft = parse_draft(subject, body_text(msg))
        if draft.problems:
            self._reply(session, row, msg, sender, directory, "\n".join(draft.problems))
            return
        today = now.astimezone(self.ctx.config.tzinfo).date()
        prepared = intake.prepare(
            module,
            draft=draft,
            subject=subject,
            author=sender.account,
            directory=directory,
            session=session,
            calendar=self.calendar,
            today=today,
        )
        if isinstance(prepared, str):
            self._reply(session, row, msg, sender, directory, prepared)
            return
        fields = {
            "body": draft.body,
            "doc_type": draft.doc_type,
            "deadline": draft.deadline,
            "attachments": [p.get_filename() or "" for p in attached_files(msg)],
            "inbound": row.inbound_id,
            **prepared.fields,
        }
        decision = workflow.open_document(
            kind=module,
            title=draft.title,
            author=sender.account,
            urgency=draft.urgency,
            to_units=draft.to_units,
            cc_units=draft.cc_units,
            scope_units=draft.scope if prepared.scope_units is None else prepared.scope_units,
            fields=fields,
            forwards_document=any(p.get_content_type() == "message/rfc822" for p in msg.walk())
            or prepared.facts.get("forwards_document", False),
            facts=prepared.facts,
            directory=directory,
            rules=self.rules,
            now=now,
            due=self.calendar.due if prepared.due_at is None else _fixed_due(prepared.due_at),
        )
        if module == supervision.KIND:
            decision = supervision.assigned(decision, directory, now)
        if not decision.accepted:
            self._reply(session, row, msg, sender, directory, decision.reply)
            return
        author = directory.people[sender.account]
        document = create_document(
            session,
            kind=module,
            title=draft.title,
            author=sender.account,
            unit=author.unit,
            urgency=draft.urgency,
            fields={},
            source_inbound=row.inbound_id,
            now=now,
        )
        self._apply(session, row, msg, document, decision, sender.account, None, directory, now)

    def handle_reply(
        self,
        session: Session,
        row: Incoming,
        msg: EmailMessage,
        token: str | None,
        directory: Directory,
    ) -> None:
        """A reply to a step: check who sent it, then let the engine decide."""
        now = self.ctx.clock()
        sender = self._sender(row, msg)
        claim = read_token(self.ctx.config.secret, token) if token else None
        if claim is None:
            claim = self._claim_from_thread(session, msg)
        if claim is None:
            self._reply(
                session,
                row,
                msg,
                sender,
                directory,
                "無法識別您回覆的是哪一份文件：請直接回覆驛站發給您的那封郵件，不要修改收件人。\n"
                "Yizhan could not tell which document this reply is for: reply to the mail "
                "Yizhan sent you, without changing the recipient.",
            )
            return
        if sender.account is None:
            self._refuse_unauthenticated(session, row, msg, sender, directory)
            return
        step = session.get(Step, claim.step_id)
        document = session.get(Document, claim.document_id)
        if step is None or document is None or step.document_id != document.id:
            self._reply(
                session,
                row,
                msg,
                sender,
                directory,
                "該文件已不存在。The document no longer exists.",
            )
            return
        actor, on_behalf_of = sender.account, None
        command = command_from_message(msg)
        step_id: int | None = step.id
        if sender.account != step.assignee:
            acting, delegator = resolve(step.assignee, self._delegations(session), now)
            if command.verb is Verb.COMMENT and acting != sender.account:
                # Anyone on the document may comment; the engine checks that they are.
                step_id = None
            elif acting != sender.account:
                self._impersonation(session, row, msg, sender, step.assignee, directory, now)
                return
            else:
                on_behalf_of = delegator
        if step.on_behalf_of and on_behalf_of is None and step_id is not None:
            on_behalf_of = step.on_behalf_of
        flow = self.rules.flow(document.kind)
        rule = flow.step(step.name) if flow is not None else None
        if rule is not None and rule.edits_body and command.verb is Verb.APPROVE:
            # An edited text is published as written, with its full-width ，。： (routing.edits).
            command = replace(command, text=edits.text_below_command(body_text(msg)))
        verification: Verification | None = None
        if (
            step.name in self.ctx.config.signing.require_signature
            and step.state == "waiting"
            and step_id is not None
            and command.verb is not Verb.COMMENT
        ):
            # 簽發 and 用印 count only with the person's own OpenPGP signature (第十八條).
            verification = verify_message(
                self.ctx.raw.read(row.path), self.ctx.keyring, account=sender.account
            )
            if not verification.ok:
                audit.record(
                    session,
                    at=now,
                    actor=sender.account,
                    action="refused.signature",
                    target=doc_target(document.id),
                    detail={"status": verification.status},
                )
                self._reply(
                    session,
                    row,
                    msg,
                    sender,
                    directory,
                    f"未受理：{verification.reason_zh}\n"
                    f"這一步（{step.name}）需要用您登記的 OpenPGP 密鑰簽名回覆。\n"
                    f"Not accepted: {verification.reason_en}\nThis step ({step.name}) needs a "
                    "reply signed with your registered OpenPGP key.",
                    document=document,
                )
                return
            # Only what was signed counts as the command.
            command = parse_command(reply_part(normalise(verification.signed_text or "")))
        state = load_state(session, document)
        if (
            step.name == REVISE_STEP
            and step.state == "waiting"
            and (command.verb in (Verb.UNKNOWN, Verb.DONE))
        ):
            # The new version is kept as written (，。： not made ASCII), like a new document.
            draft = parse_draft(str(msg.get("Subject", "")), edits.reply_as_written(body_text(msg)))
            decision = workflow.revise_document(
                doc=state,
                actor=actor,
                on_behalf_of=on_behalf_of,
                new_title=draft.title or None,
                new_fields={"body": draft.body, **_revised_files(msg, row)},
                to_units=draft.to_units or None,
                cc_units=draft.cc_units or None,
                scope_units=draft.scope or None,
                directory=directory,
                rules=self.rules,
                now=now,
                due=self.calendar.due,
            )
        else:
            # 督查督辦 decides its own commands on the engine's steps (routing.supervision).
            decide = (
                supervision.apply_command
                if state.kind == supervision.KIND
                else workflow.apply_command
            )
            decision = decide(
                doc=state,
                step_id=step_id,
                command=command,
                actor=actor,
                on_behalf_of=on_behalf_of,
                directory=directory,
                rules=self.rules,
                now=now,
                due=self.calendar.due,
            )
        if not decision.accepted:
            self._reply(session, row, msg, sender, directory, decision.reply, document=document)
            return
        seal_by = verification if step.name == "seal" and verification is not None else None
        self._apply(
            session,
            row,
            msg,
            document,
            decision,
            actor,
            on_behalf_of,
            directory,
            now,
            sealed_by=seal_by,
        )

    def handle_command(
        self, session: Session, row: Incoming, msg: EmailMessage, directory: Directory
    ) -> None:
        """A mail to cmd@: delegation, status, to-do list and help (第九條)."""
        now = self.ctx.clock()
        sender = self._sender(row, msg)
        command = command_from_message(msg)
        armored = _public_key_block(msg)
        if armored is not None and sender.account is not None:
            text = self._stage_key(session, sender.account, armored, directory, now)
            self._reply(session, row, msg, sender, directory, text)
            return
        tools = tool_request(str(msg.get("Subject", "")), body_text(msg))
        if armored is None and tools is not None:
            self._tools(session, row, msg, sender, directory, tools, now)
            return
        if armored is None and command.verb in (Verb.HELP, Verb.UNKNOWN):
            self._reply(session, row, msg, sender, directory, help_text(self.domain, command))
            return
        if sender.account is None:
            self._refuse_unauthenticated(session, row, msg, sender, directory)
            return
        if command.verb is Verb.APPROVE and self.ctx.keyring.pending_person_key(sender.account):
            text = self._confirm_key(session, sender.account, now)
            self._reply(session, row, msg, sender, directory, text)
            return
        handlers = {
            Verb.DELEGATE: self._delegate,
            Verb.REVOKE: self._revoke,
            Verb.STATUS: self._status,
            Verb.TODO: self._todo,
            Verb.SET: self._set,
            Verb.SEARCH: self.finder.search_command,
        }
        if command.verb is Verb.GET and self.finder.get_command(
            session, row, msg, sender, command.argument, directory
        ):
            return
        handler = handlers.get(command.verb)
        if handler is None:
            text = (
                f"「{command.verb.value}」命令不在 cmd@ 使用，或尚未開放。\n"
                f"The command {command.verb.value.upper()} is not available at cmd@.\n\n"
                + help_text(self.domain, command)
            )
        else:
            text = handler(session, sender.account, command, directory, now)
        self._reply(session, row, msg, sender, directory, text)

    def _tools(
        self,
        session: Session,
        row: Incoming,
        msg: EmailMessage,
        sender: Sender,
        directory: Directory,
        request: ToolRequest,
        now: dt.datetime,
    ) -> None:
        """TOOLS, GET name and the IT department's TOOLS ADD/REMOVE (see ``daemon.tools``)."""
        if sender.account is None:
            self._refuse_unauthenticated(session, row, msg, sender, directory)
            return
        answer = self.tools.answer(
            session,
            request,
            account=sender.account,
            address=sender.address,
            msg=msg,
            directory=directory,
            now=now,
        )
        to = replace(sender, address=answer.to)
        self._reply(
            session, row, msg, to, directory, answer.text, attachment=answer.attachment, kind="tool"
        )

    # -- commands at a module's own address ---------------------------------------------------

    def _module_command(
        self,
        session: Session,
        row: Incoming,
        msg: EmailMessage,
        module: str,
        sender: Sender,
        directory: Directory,
        now: dt.datetime,
    ) -> bool:
        """Handle a command sent to a module's address; False when the mail is a new document.

        HELP is answered at every address; gonggao@ takes 撤回/WITHDRAW id from a bulletin's
        author (第二十三條); xiujia@ takes
        查詢/STATUS (the leave balance) from anyone and 設置/SET corrections from HR (第六條);
        xinxi@ takes 統計/STATUS [year] (each unit's published news items) from anyone.
        """
        assert sender.account is not None
        command = command_from_message(msg)
        if command.verb is Verb.HELP and not command.argument.strip():
            # HELP works anywhere (DESIGN.md, Commands); "幫助困難職工…" is a title, not HELP.
            self._reply(session, row, msg, sender, directory, help_text(self.domain, command))
            return True
        line = command.argument if command.verb is Verb.UNKNOWN else ""
        if module == "gonggao":
            wanted = parse_withdraw(line or str(msg.get("Subject", "")))
            if wanted is None:
                return False
            document = session.get(Document, wanted[0])
            if document is None:
                self._reply(
                    session,
                    row,
                    msg,
                    sender,
                    directory,
                    f"沒有公告 #{wanted[0]}。\nNo #{wanted[0]}.",
                )
                return True
            decision = bulletins.withdraw(
                load_state(session, document), actor=sender.account, reason=wanted[1], now=now
            )
            if not decision.accepted:
                self._reply(session, row, msg, sender, directory, decision.reply, document=document)
                return True
            self._apply(session, row, msg, document, decision, sender.account, None, directory, now)
            return True
        if module == "xiujia" and command.verb in (Verb.STATUS, Verb.SET):
            hr = directory.people[sender.account].unit in {
                u.id for u in directory.units_of_kind("hr")
            }
            if command.verb is Verb.SET:
                if not hr:
                    text = (
                        "休假記錄由人事處更正（第六條）。\nOnly HR corrects leave records (art. 6)."
                    )
                else:
                    correction = leave.parse_hr_set(command.argument)
                    text = (
                        correction
                        if isinstance(correction, str)
                        else leave_store.correct(session, correction, actor=sender.account, now=now)
                    )
            else:
                account = command.argument.strip().lower() or sender.account
                if account != sender.account and not hr:
                    text = "只有人事處可以查看他人的休假。\nOnly HR may see another's leave."
                elif account not in directory.people:
                    text = f"沒有帳號 {account}。\nNo account {account}."
                else:
                    year = now.astimezone(self.ctx.config.tzinfo).year
                    text = leave.balance(
                        leave_store.leave_records(session, account),
                        leave_store.service_start(session, account),
                        year,
                    ).text()
            self._reply(session, row, msg, sender, directory, text)
            return True
        if module == "xinxi":
            count = publicity.parse_count_request(command)
            if count is None:
                return False
            tz = self.ctx.config.tzinfo
            year = count.year or now.astimezone(tz).year
            year_end = dt.datetime(year + 1, 1, 1, tzinfo=tz)
            counts = publicity.yearly_counts(
                publicity_store.published_items(session, before=year_end), year, tz
            )
            text = publicity.count_report(counts, year, directory)
            self._reply(session, row, msg, sender, directory, text)
            return True
        return False

    # -- cmd@ commands ------------------------------------------------------------------------

    def _stage_key(
        self,
        session: Session,
        account: str,
        armored: str,
        directory: Directory,
        now: dt.datetime,
    ) -> str:
        """A person sent their public key: keep it until they confirm its fingerprint."""
        person = directory.people[account]
        addresses = [a for a in (person.email, f"{account}@{self.domain}") if a]
        try:
            facts = self.ctx.keyring.stage_person_key(armored, account, addresses)
        except KeyringError as exc:
            return f"未登記公鑰：{exc}\nKey not registered: {exc}"
        audit.record(
            session,
            at=now,
            actor=account,
            action="key.staged",
            target=account,
            detail={"fingerprint": facts.fingerprint},
        )
        grouped = " ".join(
            facts.fingerprint[i : i + 4] for i in range(0, len(facts.fingerprint), 4)
        )
        return (
            f"收到您的公鑰，指紋：{grouped}\n請核對無誤後回覆「同意」確認登記。\n"
            f"Yizhan received your public key, fingerprint {grouped}.\n"
            "If it is yours, reply APPROVE to register it."
        )

    def _confirm_key(self, session: Session, account: str, now: dt.datetime) -> str:
        """The person confirmed the key they sent: from now on it signs for them."""
        pending = self.ctx.keyring.pending_person_key(account)
        assert pending is not None
        fingerprint = self.ctx.keyring.confirm_person_key(account, pending.fingerprint)
        audit.record(
            session,
            at=now,
            actor=account,
            action="key.import",
            target=account,
            detail={"fingerprint": fingerprint, "by": "mail"},
        )
        return f"公鑰已登記：{fingerprint}\nYour key {fingerprint} is registered."

    def _delegate(
        self,
        session: Session,
        account: str,
        command: Command,
        directory: Directory,
        now: dt.datetime,
    ) -> str:
        parsed = parse_delegate(command.argument)
        if parsed is None:
            return (
                "請寫明授權給誰、到哪天，例如：授權 王芳 至 2026-12-01\n"
                "Say whom and until when, e.g.: DELEGATE wangfang UNTIL 2026-12-01"
            )
        name, until = parsed
        delegations = self._delegations(session)
        result = check_new_delegation(
            account,
            name,
            until,
            directory,
            delegations,
            now,
            self.ctx.config.tzinfo,
            domain=self.domain,
        )
        if isinstance(result, str):
            return result
        self._end_delegations(session, account, now, how="replaced")
        session.add(
            DelegationRow(
                delegator=account, delegate=result.delegate, starts_at=now, until=result.until
            )
        )
        audit.record(
            session,
            at=now,
            actor=account,
            action="delegation.start",
            target=result.delegate,
            detail={"until": result.until.isoformat()},
        )
        moved = self._reassign(session, account, result.delegate, on_behalf_of=account)
        delegate = directory.people[result.delegate]
        until_local = result.until.astimezone(self.ctx.config.tzinfo).date().isoformat()
        return (
            f"已授權 {delegate.name}（{delegate.account}）代為處理，至 {until_local}；"
            f"轉交待辦 {moved} 件。回崗後請發送「收回授權」。\n"
            f"Delegated to {delegate.name} ({delegate.account}) until {until_local}; "
            f"{moved} waiting step(s) re-sent. Send REVOKE when you are back."
        )

    def _revoke(
        self,
        session: Session,
        account: str,
        command: Command,
        directory: Directory,
        now: dt.datetime,
    ) -> str:
        rows = self._end_delegations(session, account, now, how="revoked")
        if not rows:
            return "您目前沒有有效的授權。You have no active delegation."
        moved = 0
        for delegation in rows:
            moved += self._reassign(
                session, delegation.delegate, account, on_behalf_of=None, only_for=account
            )
        done = session.scalars(
            select(Step).where(
                Step.on_behalf_of == account,
                Step.state == "done",
                Step.done_at >= min(r.starts_at for r in rows),
            )
        ).all()
        lines = [
            f"- #{s.document_id} {s.name}: {s.outcome or ''} ({s.done_by}, "
            f"{s.done_at.astimezone(self.ctx.config.tzinfo):%Y-%m-%d %H:%M})"
            for s in done
            if s.done_at
        ]
        audit.record(session, at=now, actor=account, action="delegation.revoke", target=account)
        return (
            f"已收回授權；{moved} 件待辦已轉回給您。授權期間代辦事項 {len(lines)} 件：\n"
            f"Delegation revoked; {moved} waiting step(s) came back to you. "
            f"Done on your behalf ({len(lines)}):\n" + "\n".join(lines)
        )

    def _status(
        self,
        session: Session,
        account: str,
        command: Command,
        directory: Directory,
        now: dt.datetime,
    ) -> str:
        ref = command.argument.strip()
        document = find_document(session, ref) if ref else None
        if document is None:
            return (
                f"找不到文件「{ref}」。請寫文件編號或文號，"
                "例如：查詢 12 或 查詢 遼檢辦〔2026〕5號\n"
                f"No document {ref!r}. Send STATUS with its id or number, e.g. STATUS 12"
            )
        state = load_state(session, document)
        if not self._may_see(state, account, directory):
            return f"您無權查看文件「{ref}」。You may not see document {ref}."
        return document_summary(state, directory, self.ctx.config.tzinfo)

    def _set(
        self,
        session: Session,
        account: str,
        command: Command,
        directory: Directory,
        now: dt.datetime,
    ) -> str:
        key = self.ctx.keyring.person_key(account)
        outcome = apply_set(
            command.argument,
            load_settings(session, account),
            roles=directory.people[account].roles,
            calendar=self.calendar,
            signature_key=str(key) if key is not None else None,
        )
        save_settings(session, account, outcome.changes, actor=account, now=now)
        if outcome.remove_key and key is not None:
            audit.record(
                session,
                at=now,
                actor=account,
                action="key.remove",
                target=account,
                detail={"fingerprint": str(key)},
            )
            # The keyring is no part of this transaction: the key is taken back once the
            # audit entry and the answer are committed, never for an answer that was not.
            event.listen(
                session, "after_commit", lambda _s: self._take_key_back(account), once=True
            )
        return outcome.reply

    def _take_key_back(self, account: str) -> None:
        try:
            self.ctx.keyring.revoke_person_key(account)
        except KeyringError as exc:
            log.error("%s: the signature key could not be taken back: %s", account, exc)

    def _todo(
        self,
        session: Session,
        account: str,
        command: Command,
        directory: Directory,
        now: dt.datetime,
    ) -> str:
        steps = waiting_steps(session, account)
        if not steps:
            return "您沒有待辦事項。Nothing is waiting for you."
        lines = []
        for step in steps:
            document = session.get(Document, step.document_id)
            assert document is not None
            due = (
                step.due_at.astimezone(self.ctx.config.tzinfo).strftime("%m-%d %H:%M")
                if step.due_at
                else "-"
            )
            token = make_token(
                self.ctx.config.secret, document_id=document.id, step_id=step.id, account=account
            )
            lines.append(
                f"- #{document.id} {document.title} [{step.name}/{step.action}] 期限 due {due}  "
                f"回覆 reply: r+{token}@{self.domain}"
            )
        return f"待辦 {len(steps)} 件 / {len(steps)} waiting:\n" + "\n".join(lines)

    # -- applying decisions -------------------------------------------------------------------

    def _apply(
        self,
        session: Session,
        row: Incoming,
        msg: EmailMessage,
        document: Document,
        decision: Decision,
        actor: str,
        on_behalf_of: str | None,
        directory: Directory,
        now: dt.datetime,
        *,
        sealed_by: Verification | None = None,
    ) -> None:
        if decision.needs_number is not None:
            year = now.astimezone(self.ctx.config.tzinfo).year
            seq = allocate_number(session, decision.needs_number, year)
            decision = workflow.assign_number(
                decision, format_number(decision.needs_number, year, seq)
            )
        decision = self._route_to_delegates(session, decision, now)
        opened = apply_decision(
            session,
            document,
            decision,
            actor=actor,
            on_behalf_of=on_behalf_of,
            now=now,
            first_reminder=lambda opened_at, due: first_reminder_at(opened_at, due, self.calendar),
        )
        if decision.title is not None or decision.number is not None or "body" in decision.fields:
            # What a search reads changed: opened, revised or numbered.
            self.finder.index(session, document)
        state = load_state(session, document)
        files = (
            document_files(session, self.ctx.raw, document)
            if any(n.template in _NOTICES_WITH_FILES for n in decision.notices)
            else []
        )
        with self._signers(sealed_by, directory) as (signers, seal_unit):
            official = None
            if seal_unit is not None and any(n.template == "distributed" for n in decision.notices):
                official = self._official_copy(state, directory, seal_unit, now)
            for n, notice in enumerate(decision.notices):
                step = opened[notice.step_index] if notice.step_index is not None else None
                self._send_notice(
                    session,
                    row,
                    n,
                    state,
                    notice.to,
                    notice.template,
                    notice.action,
                    step,
                    notice.on_behalf_of,
                    notice.variables,
                    directory,
                    now,
                    signers=signers,
                    official=official if notice.template == "distributed" else None,
                    files=files if notice.template in _NOTICES_WITH_FILES else (),
                )
        for n, effect in enumerate(decision.effects):
            self.effects.apply(
                session,
                key=f"{row.key}:fx:{n}",
                document=document,
                effect=effect,
                actor=actor,
                directory=directory,
                now=now,
            )
        sender = Sender(account=actor, address=row.mail_from)
        self._reply(session, row, msg, sender, directory, decision.reply, document=document)

    def _official_copy(
        self, state: DocumentState, directory: Directory, seal_unit: str, now: dt.datetime
    ) -> OfficialCopy:
        """The sealed document in GB/T 9704 form, as HTML and PDF, made once per distribution."""
        seal = self.ctx.keyring.seal(seal_unit)
        document = official_document(
            state, directory, seal, issuing_unit=seal_unit, issued_at=now, tz=self.ctx.config.tzinfo
        )
        try:
            pdf: bytes | None = render_official_pdf(document)
        except CJKFontMissing as exc:
            # The HTML copy still carries the whole document; the admin is told in the log.
            log.error("doc %s: no PDF: %s", state.id, exc)
            pdf = None
        return OfficialCopy(
            html=render_official_html(document),
            pdf=pdf,
            filename=f"{document.number or state.id}.pdf",
        )

    @contextlib.contextmanager
    def _signers(
        self, sealed_by: Verification | None, directory: Directory
    ) -> Iterator[tuple[list[SignerSpec], str | None]]:
        """Who signs the mail of a decision: the system key, and the seal after a SEAL.

        The seal is the unit's whose custodian signed the SEAL, else the bureau's; its key is
        usable only inside this block (第十八條; docs/seals.md).
        """
        system = self.ctx.keyring.system_signer()
        if sealed_by is None:
            yield [system], None
            return
        units = [
            s.unit
            for s in self.ctx.keyring.list_seals()
            if s.state == "active" and s.custodian == sealed_by.account
        ]
        bureau = [u.id for u in directory.units_of_kind("bureau")]
        unit = (units or bureau)[0]
        with self.ctx.keyring.seal_signer(unit, authorised_by=sealed_by) as seal:
            yield [seal, system], unit

    def _route_to_delegates(
        self, session: Session, decision: Decision, now: dt.datetime
    ) -> Decision:
        """Steps for a person who is away go to their delegate, marked 代 (第九條)."""
        delegations = self._delegations(session)
        if not delegations:
            return decision
        steps = []
        for spec in decision.open_steps:
            acting, delegator = resolve(spec.assignee, delegations, now)
            steps.append(
                replace(spec, assignee=acting, on_behalf_of=delegator) if delegator else spec
            )
        notices = []
        for notice in decision.notices:
            if notice.step_index is not None:
                spec = steps[notice.step_index]
                notice = replace(notice, to=spec.assignee, on_behalf_of=spec.on_behalf_of)
            notices.append(notice)
        return replace(decision, open_steps=tuple(steps), notices=tuple(notices))

    def _send_notice(
        self,
        session: Session,
        row: Incoming,
        n: int,
        state: DocumentState,
        to: str,
        template: str,
        action: str,
        step: Step | None,
        on_behalf_of: str | None,
        variables: dict[str, object],
        directory: Directory,
        now: dt.datetime,
        *,
        signers: Sequence[SignerSpec] | None = None,
        official: OfficialCopy | None = None,
        files: Sequence[EmailMessage] = (),
    ) -> None:
        person = directory.people.get(to)
        if person is None:
            return
        language = person.language
        if official is not None:
            # A sealed document is signed once for all its recipients (issue 4): its body may
            # not vary by reader, so it is in the bureau's language and names no delegate.
            language, on_behalf_of = self.ctx.config.language, None
        headers = self._document_headers(state, step, action)
        if step is not None and action != "none":
            token = make_token(
                self.ctx.config.secret, document_id=state.id or 0, step_id=step.id, account=to
            )
            headers["Reply-To"] = f"r+{token}@{self.domain}"
        deadline = (
            step.due_at.astimezone(self.ctx.config.tzinfo).strftime("%Y-%m-%d %H:%M")
            if step is not None and step.due_at
            else ""
        )
        address = person.mailbox(self.domain)
        source = f"{row.key}:doc:{state.id}:{n}"

        def compose() -> EmailMessage:
            mail = self._document_mail(
                state,
                template,
                action,
                step,
                on_behalf_of,
                variables,
                directory,
                language,
                deadline,
                to=formataddr((person.name, address)),
                headers=headers,
                files=files,
            )
            if official is not None:
                mail.add_alternative(official.html, subtype="html", charset="utf-8")
                if official.pdf is not None:
                    mail.add_attachment(
                        official.pdf,
                        maintype="application",
                        subtype="pdf",
                        filename=official.filename,
                    )
            attach_files(mail, files)
            return mail

        if official is not None:
            # What the body is made of besides the document: the same for every recipient
            # of one kind of notice, so they all share one signed, stored body.
            key = (template, action, step.name if step else "", deadline, repr(variables))
            shared = official.shared.get(key)
            if shared is None:
                mail = compose()
                signed = self.ctx.signatures.sign(
                    signed_content(mail),
                    self.ctx.keyring,
                    signers or [self.ctx.keyring.system_signer()],
                )
                shared = official.shared[key] = SharedBody(
                    signed=signed,
                    subject=str(mail["Subject"]),
                    body_id=store_body(session, signed_body(signed), now=now),
                )
            envelope = EmailMessage()
            envelope["From"] = formataddr(("驛站", f"cmd@{self.domain}"))
            envelope["To"] = formataddr((person.name, address))
            envelope["Subject"] = shared.subject
            for name, value in headers.items():
                envelope[name] = value
            self.ctx.queue(
                session,
                source=source,
                message=wrap_head(shared.signed, envelope),
                body_id=shared.body_id,
                rcpts=[address],
                now=now,
                document_id=state.id,
            )
            return
        self.ctx.queue(
            session,
            source=source,
            message=sign_message_bytes(
                compose(),
                self.ctx.keyring,
                signers or [self.ctx.keyring.system_signer()],
                cache=self.ctx.signatures,
            ),
            rcpts=[address],
            now=now,
            document_id=state.id,
        )

    def _document_mail(
        self,
        state: DocumentState,
        template: str,
        action: str,
        step: Step | None,
        on_behalf_of: str | None,
        variables: dict[str, object],
        directory: Directory,
        language: str | None,
        deadline: str,
        *,
        to: str,
        headers: dict[str, str],
        files: Sequence[EmailMessage] = (),
    ) -> EmailMessage:
        """The mail about ``state`` to ``to``, not yet signed; ``files`` are only named."""
        zh, en = _LABELS.get(template, (template, template))
        delegator = directory.people.get(on_behalf_of or "")
        return render_mail(
            "document.txt",
            language,
            sender=formataddr(("驛站", f"cmd@{self.domain}")),
            to=to,
            headers=headers,
            label=zh if (language or "zh_CN") != "en" else en,
            doc=state,
            action=action,
            step=step,
            on_behalf_of=delegator.name if delegator else None,
            variables=variables,
            trail=trail_lines(state, directory, self.ctx.config.tzinfo, language),
            deadline=deadline,
            files=[f.get_filename() or "" for f in files],
        )

    def _document_headers(
        self, state: DocumentState, step: Step | None, action: str
    ) -> dict[str, str]:
        headers = {
            "X-Yizhan-Doc": str(state.id),
            "X-Yizhan-Kind": state.kind,
            "X-Yizhan-State": state.state,
            "X-Yizhan-Step": step.name if step is not None else "-",
            "X-Yizhan-Action": action,
        }
        if step is not None and step.due_at:
            headers["X-Yizhan-Deadline"] = format_datetime(
                step.due_at.astimezone(self.ctx.config.tzinfo)
            )
        if state.number:
            headers["X-Yizhan-Number"] = state.number
        if state.urgency:
            headers["X-Yizhan-Urgency"] = state.urgency
        return headers

    # -- who may act --------------------------------------------------------------------------

    def _sender(self, row: Incoming, msg: EmailMessage) -> Sender:
        _, address = parseaddr(str(msg.get("From", "")))
        return Sender(account=row.sender_account, address=address or row.mail_from)

    def _refuse_unauthenticated(
        self,
        session: Session,
        row: Incoming,
        msg: EmailMessage,
        sender: Sender,
        directory: Directory,
    ) -> None:
        audit.record(
            session,
            at=self.ctx.clock(),
            actor=sender.address or "unknown",
            action="refused.unauthenticated",
            detail={"inbound": row.inbound_id},
        )
        self._reply(
            session,
            row,
            msg,
            sender,
            directory,
            "未受理：無法確認這封郵件是您本人發出的（第七條）。"
            "請登錄您的帳號（SMTP 身份驗證）後重新發送。\n"
            "Not accepted: Yizhan could not tell that this mail came from you. Send it again "
            "with SMTP authentication as your account.",
        )

    def _impersonation(
        self,
        session: Session,
        row: Incoming,
        msg: EmailMessage,
        sender: Sender,
        asked: str,
        directory: Directory,
        now: dt.datetime,
    ) -> None:
        """Acting in another person's name is refused and reported to IT (第七條)."""
        audit.record(
            session,
            at=now,
            actor=sender.account or sender.address,
            action="impersonation",
            target=asked,
            detail={"inbound": row.inbound_id},
        )
        asked_name = directory.people[asked].name if asked in directory.people else asked
        self._reply(
            session,
            row,
            msg,
            sender,
            directory,
            f"未受理：這一步是請 {asked_name} 辦理的，"
            "您不是他本人，也不是他的授權代理人（第七條）。"
            "此事已報告信息化處。\n"
            f"Refused: this step was asked of {asked_name}; you are neither that person nor "
            "their delegate. The IT department has been told.",
        )
        for n, it_person in enumerate(
            [p for u in directory.units_of_kind("it") for p in directory.members(u.id, "unit_head")]
        ):
            report = render_mail(
                "impersonation.txt",
                it_person.language,
                sender=f"cmd@{self.domain}",
                to=it_person.mailbox(self.domain),
                account=sender.account or sender.address,
                asked=asked,
                inbound_id=row.inbound_id,
            )
            self.ctx.queue(
                session,
                source=f"{row.key}:it:{n}",
                message=self.ctx.sign(report),
                rcpts=[it_person.mailbox(self.domain)],
                now=now,
            )

    def _may_see(
        self, state: DocumentState, account: str, directory: Directory | None = None
    ) -> bool:
        """Whether STATUS and SEARCH show ``state`` to ``account``: its author, the people on
        its steps or in its trail, and a bulletin's readers (given the ``directory``)."""
        if (
            account == state.author
            or any(account in (s.assignee, s.on_behalf_of, s.done_by) for s in state.steps)
            or account in {e.actor for e in state.trail}
        ):
            return True
        return (
            directory is not None
            and state.kind == "gonggao"
            and bulletins.may_read(
                state.state,
                state.fields,
                account,
                in_office=directory.in_unit_of_kind(account, "office"),
            )
        )

    # -- delegation store ---------------------------------------------------------------------

    def _delegations(self, session: Session) -> list[Delegation]:
        rows = session.scalars(select(DelegationRow).where(DelegationRow.ended_at.is_(None))).all()
        return [
            Delegation(
                delegator=r.delegator, delegate=r.delegate, starts_at=r.starts_at, until=r.until
            )
            for r in rows
        ]

    def _end_delegations(
        self, session: Session, account: str, now: dt.datetime, *, how: str
    ) -> list[DelegationRow]:
        rows = list(
            session.scalars(
                select(DelegationRow).where(
                    DelegationRow.delegator == account, DelegationRow.ended_at.is_(None)
                )
            )
        )
        for r in rows:
            r.ended_at, r.ended_by = now, how
        return rows

    def _reassign(
        self,
        session: Session,
        from_account: str,
        to_account: str,
        *,
        on_behalf_of: str | None,
        only_for: str | None = None,
    ) -> int:
        query = select(Step).where(Step.assignee == from_account, Step.state == "waiting")
        if only_for is not None:
            query = query.where(Step.on_behalf_of == only_for)
        steps = list(session.scalars(query))
        for step in steps:
            step.assignee, step.on_behalf_of = to_account, on_behalf_of
        return len(steps)

    # -- fallbacks and answers ----------------------------------------------------------------

    def _claim_from_thread(self, session: Session, msg: EmailMessage) -> TokenClaim | None:
        """When a client dropped the plus part: find our message by In-Reply-To/References."""
        ids = " ".join(str(msg.get(h, "")) for h in ("In-Reply-To", "References")).split()
        for message_id in reversed(ids):
            sent = session.scalars(
                select(OutboundMessage).where(OutboundMessage.message_id == message_id)
            ).first()
            if sent is None:
                continue
            for line in sent.data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
                if line.lower().startswith(b"reply-to:"):
                    address = line.split(b":", 1)[1].decode("ascii", "replace").strip()
                    local = parseaddr(address)[1].split("@")[0]
                    if local.lower().startswith("r+"):
                        return read_token(self.ctx.config.secret, local[2:])
        return None

    def _reply(
        self,
        session: Session,
        row: Incoming,
        msg: EmailMessage,
        sender: Sender,
        directory: Directory,
        text: str,
        *,
        document: Document | None = None,
        attachment: MailFile | None = None,
        kind: str | None = None,
    ) -> None:
        """Answer the sender; every command gets one (DESIGN.md, Commands).

        ``kind`` marks an answer that carries a file of a module (``tool``, ``ziliao``) in
        X-Yizhan-Kind, so the queue keeps it inside the organisation (第十七條).
        """
        if not row.mail_from:
            return
        to = sender.address or row.mail_from
        person = directory.people.get(sender.account or "")
        subject = str(msg.get("Subject", "")) or "(no subject)"
        headers = {"Auto-Submitted": "auto-replied"}
        if msg.get("Message-ID"):
            headers["In-Reply-To"] = str(msg["Message-ID"])
            headers["References"] = str(msg["Message-ID"])
        if document is not None:
            headers.update(self._document_headers(load_state(session, document), None, "none"))
        if kind is not None and attachment is not None:
            headers["X-Yizhan-Kind"] = kind
        mail = render_mail(
            "reply.txt",
            person.language if person else None,
            sender=formataddr(("驛站", f"cmd@{self.domain}")),
            to=to,
            headers=headers,
            subject=subject,
            text=text,
        )
        if attachment is not None:
            maintype, _, subtype = attachment.content_type.partition("/")
            mail.add_attachment(
                attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename
            )
        self.ctx.queue(
            session,
            source=f"{row.key}:reply",
            message=self.ctx.sign(mail),
            rcpts=[to],
            now=self.ctx.clock(),
            document_id=document.id if document is not None else None,
            material=kind is not None and attachment is not None,
        )


#: How each trail action reads, per language (zh_CN, zh_TW, en).
TRAIL_WORDS: dict[str, tuple[str, str, str]] = {
    "open": ("起草", "起草", "drafted"),
    "approve": ("同意", "同意", "approved"),
    "reject": ("退回", "退回", "returned"),
    "revise": ("修改后重新提交", "修改後重新提交", "revised"),
    "number": ("编号", "編號", "numbered"),
    "seal": ("用印", "用印", "sealed"),
    "received": ("签收", "簽收", "received"),
    "done": ("办结", "辦結", "done"),
    "read": ("已阅", "已閱", "read"),
    "forward": ("转交", "轉交", "forwarded"),
    "comment": ("意见", "意見", "commented"),
    "remind": ("催办", "催辦", "reminded"),
    "progress": ("进展", "進展", "reported progress"),
    "file": ("归档", "歸檔", "filed"),
    "withdraw": ("撤回", "撤回", "withdrawn"),
    "expire": ("到期", "到期", "expired"),
    "archive": ("年底归档", "年底歸檔", "archived at year end"),
}
_LANGUAGE_INDEX = {"zh_CN": 0, "zh_TW": 1, "en": 2}


def _revised_files(msg: EmailMessage, row: Incoming) -> dict[str, Any]:
    """A revision that brings files replaces the document's; one without keeps them."""
    if not brings_files(msg):
        return {}
    names = [p.get_filename() or "" for p in attached_files(msg)]
    return {"attachments": names, "inbound": row.inbound_id}


def _fixed_due(at: dt.datetime) -> workflow.Due:
    """A ``due`` for the engine that gives every step opened now the deadline ``at``."""

    def due(_now: dt.datetime, _working_days: int, _urgency: str | None) -> dt.datetime:
        return at

    return due


def _public_key_block(msg: EmailMessage) -> str | None:
    """An ASCII-armoured public key in the body or attached (application/pgp-keys), if any."""
    for part in msg.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        text = payload.decode("utf-8", "replace")
        start = text.find("-----BEGIN PGP PUBLIC KEY BLOCK-----")
        end = text.find("-----END PGP PUBLIC KEY BLOCK-----")
        if start != -1 and end > start:
            return text[start : end + len("-----END PGP PUBLIC KEY BLOCK-----")] + "\n"
    return None


def trail_lines(
    state: DocumentState, directory: Directory, tz: dt.tzinfo, language: str | None = None
) -> list[str]:
    """The document's history, a line per action, for the body of every mail about it."""
    index = _LANGUAGE_INDEX.get(language or "zh_CN", 0)
    lines = []
    for entry in state.trail:
        who = directory.people[entry.actor].name if entry.actor in directory.people else entry.actor
        if entry.on_behalf_of:
            delegator = directory.people.get(entry.on_behalf_of)
            name = delegator.name if delegator else entry.on_behalf_of
            who += f"（代 {name}）" if index < 2 else f" (for {name})"
        words = TRAIL_WORDS.get(entry.action)
        what = words[index] if words else entry.action
        opinion = f"：{entry.opinion}" if entry.opinion else ""
        lines.append(f"{entry.at.astimezone(tz):%Y-%m-%d %H:%M} {who} {what}{opinion}")
    return lines


def document_summary(state: DocumentState, directory: Directory, tz: dt.tzinfo) -> str:
    """A STATUS answer: what the document is, where it stands, who has it now."""
    waiting = [s for s in state.steps if s.state == "waiting"]
    who = (
        "、".join(
            (directory.people[s.assignee].name if s.assignee in directory.people else s.assignee)
            + f"（{s.name}）"
            for s in waiting
        )
        or "-"
    )
    return "\n".join(
        [
            f"#{state.id} {state.title}",
            f"文號 Number: {state.number or '-'}",
            f"狀態 State: {state.state}",
            f"待辦 Waiting for: {who}",
            "",
            *trail_lines(state, directory, tz),
        ]
    )


def document_json(state: DocumentState) -> dict[str, Any]:
    """A document as plain data, for ``yizhan doc show --json``."""
    return {
        "id": state.id,
        "kind": state.kind,
        "title": state.title,
        "state": state.state,
        "number": state.number,
        "urgency": state.urgency,
        "author": state.author,
        "unit": state.unit,
        "version": state.version,
        "fields": state.fields,
        "steps": [
            {
                "id": s.id,
                "name": s.name,
                "assignee": s.assignee,
                "action": s.action,
                "state": s.state,
                "due_at": s.due_at.isoformat() if s.due_at else None,
                "on_behalf_of": s.on_behalf_of,
                "done_by": s.done_by,
                "outcome": s.outcome,
            }
            for s in state.steps
        ],
        "trail": [
            {
                "at": e.at.isoformat(),
                "actor": e.actor,
                "action": e.action,
                "on_behalf_of": e.on_behalf_of,
                "opinion": e.opinion,
            }
            for e in state.trail
        ],
    }


def help_text(domain: str, command: Command | None = None) -> str:
    """The HELP answer: every module address and every command, in Chinese and English.

    Each module's commands, with an example mail for each, are in docs/modules.md (第十一條).
    """
    intro = ""
    if command is not None and command.verb is Verb.UNKNOWN and command.argument:
        intro = f"沒有看懂「{command.argument[:60]}」。Yizhan did not understand that.\n\n"
    words = "\n".join(
        f"  {verb.value.upper():<9} " + " / ".join(VERB_WORDS[verb]) for verb in VERB_WORDS
    )
    modules = "\n".join(
        f"  {local + '@' + domain:<24} {what}"
        for local, what in (
            ("fawen", "局發文 outgoing document"),
            ("shouwen", "收文 incoming document"),
            ("qianbao", "內部簽報 internal report"),
            ("hanjian", "處室函 department letter"),
            ("gonggao", "公告板 bulletin；撤回 id / WITHDRAW id"),
            ("xiujia", "休假 leave；查詢 / STATUS 假期餘額 balance"),
            ("biangeng", "事項變更申請 change request, account application"),
            (
                "duban",
                "督查督辦 supervision (辦公室交辦：主送、期限 / the office assigns: To-Units, "
                "Deadline)；進展 / PROGRESS，辦結 / DONE",
            ),
            ("xinxi", "信息宣傳 news for publication；統計 年份 / STATUS year 各單位發布數"),
            ("ziliao", "內部資料 internal materials (範圍 + 附件)；搜索 / 目錄 / 下載 id"),
        )
    )
    commands = "\n".join(
        f"  {zh} / {en} — {what}"
        for zh, en, what in (
            ("授權 王芳 至 2026-12-01", "DELEGATE name UNTIL date", "外出授權 delegate while away"),
            ("收回授權", "REVOKE", "收回授權 take it back"),
            ("查詢 12", "STATUS id-or-number", "文件狀態 where a document is"),
            ("待辦", "TODO", "我的待辦 what waits for you"),
            ("搜索 檢疫 公告", "SEARCH words", "在標題、正文、附件中查找 search documents"),
            ("下載 #12", "GET #id", "全文及附件 the whole document with its files"),
            ("設置 摘要 關閉", "SET digest off", "個人設置 settings (設置 alone lists them)"),
            ("設置 語言 en", "SET language zh_CN|zh_TW|en", "郵件語言 language"),
            ("設置 信息訂閱 是", "SET xinxi on|off", "訂閱信息宣傳 subscribe to the news"),
            ("工具", "TOOLS", "常用工具 tools published by IT"),
            ("下載 名稱", "GET name", "下載工具 download a tool"),
            ("幫助", "HELP", "本說明 this help"),
        )
    )
    return (
        intro + "驛站 Yizhan 幫助 / help\n\n"
        "發到模塊地址開始一件事 · Write to a module's address to start:\n"
        f"{modules}\n"
        "郵件主題為標題；正文開頭可寫「主送：」「抄送：」「範圍：」「緊急程度：」「期限：」等行，"
        "以空行結束。\n"
        "The subject is the title; the body may open with To-Units:, Cc-Units:, Scope:, "
        "Urgency:, Deadline: lines and a blank line.\n\n"
        "回覆驛站的郵件即可辦理，第一行寫命令：\nReply to Yizhan's mail with the command on "
        f"the first line:\n{words}\n\n"
        f"發到 cmd@{domain} · At cmd@{domain}:\n{commands}\n"
        "  信息化處 IT department: 工具 發布 名稱 / TOOLS ADD name（附件為文件，正文為說明 "
        "file attached, description in the body）；工具 下架 名稱 / TOOLS REMOVE name\n\n"
        "每個模塊的命令和示例郵件 · Each module's commands with example mails: docs/modules.md\n"
        "同事之間的工作郵件照常經單位郵件服務器收發；寫到 帳號@驛站域名 的郵件直接轉到本人郵箱。\n"
        "Work mail between colleagues flows through the organisation's mail server as before; "
        f"mail to account@{domain} is forwarded to the person's own mailbox.\n"
    )
