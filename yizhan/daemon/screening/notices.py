"""Tells of a refusal: the audit entry, the answer to the sender and the notice to the IT
department, in the caller's transaction."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formataddr

from sqlalchemy.orm import Session

from yizhan.daemon.context import Context
from yizhan.mailstore import audit
from yizhan.mailstore.inbound import message_id_of
from yizhan.routing.content import (
    Verdict,
)
from yizhan.routing.directory import Directory, PersonInfo
from yizhan.templates.render import render_mail

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
    domain = ctx.config.domain
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
    audit.record(
        session,
        at=now,
        actor=sender,
        action="content.quarantined" if quarantine_id else "content.refused",
        target=verdict.rule,
        detail=detail,
    )
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
        headers = {"Auto-Submitted": "auto-replied"}
        if message_id:
            headers["In-Reply-To"] = headers["References"] = message_id
        reply = render_mail(
            "reply.txt",
            person.language if person else None,
            sender=formataddr(("驛站", f"cmd@{domain}")),
            to=to,
            headers=headers,
            subject=subject or "(no subject)",
            text=f"{verdict.reason_zh}\n\n{verdict.reason_en}\n\n"
            f"（規則 rule: {verdict.rule}；{verdict.article}）{held}",
        )
        ctx.queue(
            session,
            source=f"{source}:reply",
            message=_signed(ctx, reply),
            rcpts=[to],
            now=now,
        )
    if not verdict.notify_it:
        return
    for it_person in it_people(directory):
        address = it_person.mailbox(domain)
        notice = render_mail(
            "content_notice.txt",
            it_person.language,
            sender=formataddr(("驛站", f"cmd@{domain}")),
            to=address,
            headers={"Auto-Submitted": "auto-generated"},
            rule=verdict.rule,
            article=verdict.article or "-",
            sender_name=sender,
            recipients=", ".join(rcpt_tos) or "-",
            subject=subject or "(no subject)",
            message_id=message_id or "-",
            reason_zh=verdict.reason_zh,
            reason_en=verdict.reason_en,
            quarantine_id=quarantine_id or "",
        )
        ctx.queue(
            session,
            source=f"{source}:it:{it_person.account}",
            message=_signed(ctx, notice),
            rcpts=[address],
            now=now,
        )


def it_people(directory: Directory) -> list[PersonInfo]:
    """Who hears of refusals: the heads of the IT units, else everyone active in them."""
    units = directory.units_of_kind("it")
    heads = [p for u in units for p in directory.members(u.id, "unit_head")]
    if heads:
        return heads
    return sorted(
        (
            p
            for p in directory.people.values()
            if p.state == "active" and any(p.unit == u.id for u in units)
        ),
        key=lambda p: p.account,
    )


def _signed(ctx: Context, mail: EmailMessage) -> EmailMessage | bytes:
    try:
        return ctx.sign(mail)
    except Exception:
        # An unsigned notice is better than none; the log says why it is unsigned.
        log.exception("signing a content notice failed; it goes unsigned")
        return mail
