"""Tells of a refusal: the audit entry, the answer to the sender and the notice to the IT
department, in the caller's transaction."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

from sqlalchemy.orm import Session

from yizhan.daemon.context import Context
from yizhan.daemon.desk.mailer import Mailer
from yizhan.daemon.desk.request import answer_headers
from yizhan.mailstore import audit
from yizhan.mailstore.inbound import message_id_of
from yizhan.mailstore.it_notices import may_tell_now
from yizhan.routing.content import (
    Verdict,
)
from yizhan.routing.directory import Directory
from yizhan.routing.duties import it_people

log = logging.getLogger("yizhan.content")


def report_refusal(
    session: Session,
    ctx: Context,
    raw: bytes,
    *,
    subject: str,
    sender_address: str,
    sender_account: str | None,
    rcpt_tos: Sequence[str],
    verdict: Verdict,
    mail_from: str,
    directory: Directory,
    quarantine_id: str | None,
) -> None:
    """The audit entry, the reply to the sender and the IT notice, in the caller's session."""
    now = ctx.clock()
    digest = hashlib.sha256(raw).hexdigest()
    message_id = message_id_of(raw)
    source = f"content:{digest[:40]}"
    sender = sender_account or sender_address or mail_from or "unknown"
    detail: dict[str, object] = {
        "rule": verdict.rule,
        "status": verdict.status,
        "article": verdict.article,
        "reason": verdict.reason_en[:500],
        "from": sender_address,
        "rcpt_tos": list(rcpt_tos),
        "sha256": digest,
    }
    if message_id:
        detail["message_id"] = message_id
    if quarantine_id:
        detail["quarantine"] = quarantine_id
    entry = audit.record(
        session,
        at=now,
        actor=sender,
        action="content.quarantined" if quarantine_id else "content.refused",
        target=verdict.rule,
        detail=detail,
    )
    mailer = Mailer(ctx)
    # The answer goes to the verified From address of an authenticated sender, else to the
    # envelope sender; never to <> (no answers to bounces).
    to = (sender_address if sender_account else "") or mail_from
    if mail_from and to:
        person = directory.people.get(sender_account or "")
        held = (
            "\n\n這封郵件已暫扣在隔離區，由信息化處處理。\n"
            "The message is held in the quarantine for the IT department."
            if quarantine_id
            else ""
        )
        mailer.send(
            session,
            source=f"{source}:reply",
            to=to,
            template="reply.txt",
            language=person.language if person else None,
            headers=answer_headers(message_id),
            variables={
                "subject": subject or "(no subject)",
                "text": f"{verdict.reason_zh}\n\n{verdict.reason_en}\n\n"
                f"（規則 rule: {verdict.rule}；{verdict.article}）{held}",
            },
            now=now,
        )
    if not verdict.notify_it:
        return
    session.flush()
    if verdict.rule == "virus" and not may_tell_now(session, "virus", now, entry.id):
        # IT heard of a virus within the hour: the it_alerts job counts this into the next.
        return
    for it_person in it_people(directory):
        mailer.send(
            session,
            source=f"{source}:it:{it_person.account}",
            to=it_person,
            template="content_notice.txt",
            headers={"Auto-Submitted": "auto-generated"},
            variables={
                "rule": verdict.rule,
                "article": verdict.article or "-",
                "sender_name": sender,
                "recipients": ", ".join(rcpt_tos) or "-",
                "subject": subject or "(no subject)",
                "message_id": message_id or "-",
                "reason_zh": verdict.reason_zh,
                "reason_en": verdict.reason_en,
                "quarantine_id": quarantine_id or "",
            },
            now=now,
        )
