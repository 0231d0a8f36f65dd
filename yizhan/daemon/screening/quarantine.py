"""Holds mail refused after it was accepted, and carries out the IT department's decisions on it:
release (accepted again, exactly as it came) or delete (第十四條)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from yizhan.daemon.config import Config
from yizhan.daemon.context import Context
from yizhan.daemon.extract.message import read_message
from yizhan.daemon.screening.notices import report_refusal
from yizhan.mailstore import audit
from yizhan.mailstore.directory import load_directory
from yizhan.mailstore.inbound import InboundWriter, message_id_of
from yizhan.mailstore.models import Inbound
from yizhan.mailstore.quarantine import Quarantine, QuarantineEntry
from yizhan.routing.content import (
    DEFAULT_CONTENT,
    Verdict,
)


def quarantine_of(config: Config) -> Quarantine:
    """The instance's quarantine (``<data_dir>/quarantine``)."""
    return Quarantine(config.data_dir / "quarantine")


def quarantine_accepted(
    ctx: Context,
    session: Session,
    raw: bytes,
    verdict: Verdict,
    *,
    inbound_id: int | None,
    mail_from: str,
    rcpt_tos: Sequence[str],
    sender_account: str | None,
    auth_method: str = "none",
) -> QuarantineEntry:
    """Keep an accepted message that ``verdict`` refuses, and report it in ``session``.

    The bytes are on disk (fsynced) before anything is queued; the caller commits the reply
    to the sender, the notice to the IT department and the audit entry with its own change
    (marking the inbound row ``quarantined``), so a crash repeats nothing.
    """
    entry = quarantine_of(ctx.config).hold(
        raw,
        rule=verdict.rule,
        status=verdict.status,
        reason_zh=verdict.reason_zh,
        reason_en=verdict.reason_en,
        mail_from=mail_from,
        rcpt_tos=rcpt_tos,
        sender_account=sender_account,
        auth_method=auth_method,
        message_id=message_id_of(raw),
        inbound_id=inbound_id,
        now=ctx.clock(),
    )
    directory = load_directory(session)
    read = read_message(raw, DEFAULT_CONTENT)
    report_refusal(
        session,
        ctx,
        raw,
        subject=read.subject,
        sender_address=read.from_address,
        sender_account=sender_account,
        rcpt_tos=rcpt_tos,
        verdict=dataclasses.replace(verdict, notify_it=True),
        mail_from=mail_from,
        directory=directory,
        quarantine_id=entry.id,
    )
    return entry


def release_entry(ctx: Context, entry_id: str, *, by: str) -> QuarantineEntry:
    """Accept a held message again (durably, as the gateway would), then record the decision.

    Safe to repeat after a crash: a message already accepted again under this entry is found
    by its peer (``quarantine:<id>``) and not stored twice.
    """
    store = quarantine_of(ctx.config)
    entry = store.held(entry_id)
    peer = f"quarantine:{entry.id}"
    with ctx.sessions() as session:
        inbound_id = session.scalar(select(Inbound.id).where(Inbound.peer == peer))
    if inbound_id is None:
        inbound_id = asyncio.run(_store_again(ctx, store.read(entry.id), entry, peer))
    entry = store.mark_released(entry.id, by=by, now=ctx.clock(), released_as=inbound_id)
    _audit(ctx, entry, by, "quarantine.release")
    return entry


def delete_entry(ctx: Context, entry_id: str, *, by: str) -> QuarantineEntry:
    """Delete a held message's bytes; the record and the audit entry say who and when."""
    entry = quarantine_of(ctx.config).delete(entry_id, by=by, now=ctx.clock())
    _audit(ctx, entry, by, "quarantine.delete")
    return entry


async def _store_again(ctx: Context, data: bytes, entry: QuarantineEntry, peer: str) -> int:
    writer = InboundWriter(ctx)
    try:
        return await writer.store(
            data=data,
            mail_from=entry.mail_from,
            rcpt_tos=entry.rcpt_tos,
            sender_account=entry.sender_account,
            auth_method=entry.auth_method,
            peer=peer,
        )
    finally:
        await writer.aclose()


def _audit(ctx: Context, entry: QuarantineEntry, by: str, action: str) -> None:
    with ctx.sessions.begin() as session:
        audit.record(
            session,
            at=ctx.clock(),
            actor=by,
            action=action,
            target=entry.id,
            detail={
                "rule": entry.rule,
                "mail_from": entry.mail_from,
                "rcpt_tos": list(entry.rcpt_tos),
                "sender_account": entry.sender_account,
                "sha256": entry.sha256,
                "message_id": entry.message_id,
                "released_as": entry.released_as,
            },
        )
