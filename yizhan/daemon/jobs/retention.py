"""The retention job (第二十三條, 第四條(二)): once a day at ``[retention] time``, archived
documents, raw messages and Maildir copies older than their ``[retention]`` periods are
deleted, except what a legal hold keeps; each run is audited with its counts.

Rows go in one transaction; files after it commits (a rolled-back run deletes no file).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from yizhan.daemon.context import Context
from yizhan.daemon.jobs.slots import claim_slot, daily_slot, work_calendar
from yizhan.mailstore import audit
from yizhan.mailstore.holds import held_documents
from yizhan.mailstore.models import Document, Inbound, Step
from yizhan.mailstore.search import forget_documents
from yizhan.routing.calendar import WorkCalendar
from yizhan.routing.retention import copy_expired, document_expired

log = logging.getLogger("yizhan.retention")

_DOC_HEADER = re.compile(rb"^X-Yizhan-Doc:\s*(\d+)", re.MULTILINE | re.IGNORECASE)
_CHUNK = 500


def run_retention(ctx: Context, now: dt.datetime, calendar: WorkCalendar | None = None) -> int:
    """Apply the retention periods once a day; returns 0 (it sends no mail)."""
    settings = ctx.config.retention
    if not (settings.archived_days or settings.raw_days or settings.maildir_days):
        return 0
    cal = calendar or work_calendar(ctx)
    slot = daily_slot(now, cal, settings.time, working_days_only=False)
    if not claim_slot(ctx, "retention", slot, now):
        return 0
    with ctx.sessions.begin() as session:
        held = held_documents(session)
        documents, steps = _documents(session, ctx, now, held)
        raw = _raw_files(session, ctx, now)
        mail = _maildir_files(ctx, now, held)
        detail: dict[str, Any] = {
            "documents": len(documents),
            "steps": steps,
            "raw_files": len(raw),
            "maildir_files": len(mail),
            "held": len(held),
            "document_ids": documents[:1000],
        }
        if documents or raw or mail:
            audit.record(
                session,
                at=now,
                actor=audit.SYSTEM,
                action="retention.applied",
                target="retention",
                detail=detail,
            )
    for path in [*raw, *mail]:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("retention: %s not deleted: %s", path, exc)
    log.info("retention: %s", {k: v for k, v in detail.items() if k != "document_ids"})
    return 0


def _documents(
    session: Session, ctx: Context, now: dt.datetime, held: set[int]
) -> tuple[list[int], int]:
    keep_days = ctx.config.retention.archived_days
    if not keep_days:
        return [], 0
    waiting = (
        select(Step.document_id, func.count().label("n"))
        .where(Step.state == "waiting")
        .group_by(Step.document_id)
        .subquery()
    )
    rows = session.execute(
        select(Document.id, Document.state, Document.updated_at, waiting.c.n)
        .outerjoin(waiting, waiting.c.document_id == Document.id)
        .where(Document.updated_at <= now - dt.timedelta(days=keep_days))
    ).all()
    gone = [
        doc_id
        for doc_id, state, finished_at, n in rows
        if document_expired(
            state=state,
            finished_at=finished_at,
            waiting_steps=n or 0,
            held=doc_id in held,
            now=now,
            keep_days=keep_days,
        )
    ]
    steps = 0
    for start in range(0, len(gone), _CHUNK):
        ids = gone[start : start + _CHUNK]
        forget_documents(session, ids)
        steps += session.scalar(select(func.count()).where(Step.document_id.in_(ids))) or 0
        session.execute(delete(Step).where(Step.document_id.in_(ids)))
        session.execute(delete(Document).where(Document.id.in_(ids)))
    return gone, steps


def _raw_files(session: Session, ctx: Context, now: dt.datetime) -> list[Path]:
    """Raw files of processed mail past ``raw_days`` that no remaining document is made of."""
    keep_days = ctx.config.retention.raw_days
    if not keep_days:
        return []
    needed: set[int] = set()
    for source, fields in session.execute(select(Document.source_inbound, Document.fields)):
        if source is not None:
            needed.add(int(source))
        inbound = (fields or {}).get("inbound")
        if inbound:
            needed.add(int(inbound))
    rows = session.execute(
        select(Inbound.id, Inbound.path, Inbound.received_at).where(
            Inbound.state != "accepted",
            Inbound.received_at <= now - dt.timedelta(days=keep_days),
        )
    ).all()
    root = ctx.raw.root
    return [
        root / path
        for inbound_id, path, received_at in rows
        if inbound_id not in needed
        and copy_expired(made_at=received_at, held=False, now=now, keep_days=keep_days)
        and (root / path).is_file()
    ]


def _maildir_files(ctx: Context, now: dt.datetime, held: set[int]) -> list[Path]:
    """Delivered copies in the local Maildirs past ``maildir_days``, but those of held documents."""
    keep_days = ctx.config.retention.maildir_days
    root = ctx.config.maildir_root
    if not keep_days or not root.is_dir():
        return []
    out = []
    for path in root.glob("*/*/*"):
        if path.parent.name not in ("cur", "new") or not path.is_file():
            continue
        made = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
        if not copy_expired(made_at=made, held=False, now=now, keep_days=keep_days):
            continue
        with path.open("rb") as f:
            head = f.read(16384).split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
        found = _DOC_HEADER.search(head)
        if found is not None and int(found.group(1)) in held:
            continue
        out.append(path)
    return out
