"""Stored attachments scanned again when clamd's signatures change (第十一條; mine rules
一(八)): a file that passed the gateway may be recognised by a later signature.

Every ``[rescan] interval_minutes`` the job asks clamd for its version and reads the names,
sizes and times of the files in ``[rescan] signatures`` (clamd's database directory): together
the signatures' fingerprint. The first fingerprint is a baseline (the files were scanned on
arrival); each new one has the files of every open and archived document scanned, once, by
the daemon that records it first. A hit moves the document's mail into the quarantine (the
document keeps its text; its files are no longer sent), and its author and IT are told.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from yizhan.daemon.context import Context
from yizhan.daemon.desk.files import files_mail
from yizhan.daemon.extract.message import attached_files
from yizhan.daemon.jobs.mail import send_job_mail
from yizhan.daemon.jobs.slots import work_calendar
from yizhan.daemon.rules_file import load_content_rules
from yizhan.daemon.screening.clamd import Clamd, ScannerUnavailable, ScanRefused, scanner_for
from yizhan.daemon.screening.quarantine import quarantine_of
from yizhan.mailstore import audit
from yizhan.mailstore.directory import load_directory
from yizhan.mailstore.models import Document, Inbound, SignatureScan
from yizhan.routing.calendar import WorkCalendar
from yizhan.routing.duties import it_people

log = logging.getLogger("yizhan.rescan")

T = TypeVar("T")


def _run(work: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run``, also when the calling thread runs an event loop of its own (a job run
    by hand from such a thread, as the browser tests' driver does): then in a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, work).result()


def run_rescan(ctx: Context, now: dt.datetime, calendar: WorkCalendar | None = None) -> int:
    """Look for new signatures every ``interval_minutes``; scan once per new set. Mails queued."""
    cal = calendar or work_calendar(ctx)
    local = now.astimezone(cal.tz)
    if (local.hour * 60 + local.minute) % ctx.config.rescan.interval_minutes:
        return 0
    scanner = scanner_for(load_content_rules(ctx.config.rules_file))
    if scanner is None:
        return 0
    try:
        signatures = _run(fingerprint(scanner, ctx.config.rescan.signatures))
    except ScannerUnavailable as exc:
        log.warning("re-scan: %s", exc)
        return 0
    try:
        with ctx.sessions.begin() as session:
            if session.get(SignatureScan, signatures) is not None:
                return 0
            baseline = not session.scalar(select(func.count()).select_from(SignatureScan))
            session.add(
                SignatureScan(
                    signatures=signatures, started_at=now, finished_at=now if baseline else None
                )
            )
    except IntegrityError:
        return 0  # another daemon recorded it first, and scans
    if baseline:
        log.info("re-scan: signatures %s noted; files are scanned when they change", signatures)
        return 0
    log.info("re-scan: new signatures %s; scanning the stored files again", signatures)
    scanned, hits, queued = _run(_scan_all(ctx, scanner, signatures, now))
    with ctx.sessions.begin() as session:
        row = session.get(SignatureScan, signatures)
        if row is not None:
            row.finished_at, row.scanned, row.infected = ctx.clock(), scanned, hits
    log.info("re-scan under %s: %d file(s), %d infected", signatures, scanned, hits)
    return queued


async def fingerprint(scanner: Clamd, directory: Path | None) -> str:
    """clamd's version, and a digest of its database directory's listing when readable."""
    version = await scanner.version()
    listing = []
    if directory is not None and directory.is_dir():
        for path in sorted(directory.iterdir()):
            if path.is_file():
                stat = path.stat()
                listing.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    if not listing:
        return version[:200]
    digest = hashlib.sha256("\n".join(listing).encode()).hexdigest()[:16]
    return f"{version[:180]} #{digest}"


async def _scan_all(
    ctx: Context, scanner: Clamd, signatures: str, now: dt.datetime
) -> tuple[int, int, int]:
    scanned = hits = queued = 0
    with ctx.sessions() as session:
        ids = list(session.scalars(select(Document.id).order_by(Document.id)))
    for doc_id in ids:
        with ctx.sessions() as session:
            document = session.get(Document, doc_id)
            data = files_mail(session, ctx.raw, document) if document is not None else None
        if data is None:
            continue
        msg = BytesParser(policy=policy.default).parsebytes(data)
        assert isinstance(msg, EmailMessage)
        for part in attached_files(msg):
            content = part.get_content()
            payload = content if isinstance(content, bytes) else str(content).encode()
            try:
                result = await scanner.scan(payload)
            except ScanRefused:
                continue
            scanned += 1
            if result.signature is not None:
                hits += 1
                name = part.get_filename() or "-"
                queued += await asyncio.to_thread(
                    _infected, ctx, doc_id, data, name, result.signature, signatures, now
                )
                break
    return scanned, hits, queued


def _infected(
    ctx: Context,
    doc_id: int,
    data: bytes,
    name: str,
    signature: str,
    signatures: str,
    now: dt.datetime,
) -> int:
    """Quarantine the document's mail, record it, tell its author and IT; mails queued."""
    with ctx.sessions.begin() as session:
        document = session.get(Document, doc_id)
        assert document is not None
        inbound_id = document.fields.get("inbound") or document.source_inbound
        row = session.get(Inbound, int(inbound_id)) if inbound_id else None
        assert row is not None
        entry = quarantine_of(ctx.config).hold(
            data,
            rule="rescan",
            status="5.7.1",
            reason_zh=f"重新掃描時發現病毒 {signature}（公文 #{doc_id} 附件 {name}）",
            reason_en=f"virus {signature} found on re-scan (document #{doc_id}, file {name})",
            mail_from=row.mail_from,
            rcpt_tos=row.rcpt_tos,
            sender_account=row.sender_account,
            auth_method=row.auth_method,
            message_id=row.message_id,
            inbound_id=row.id,
            now=now,
        )
        audit.record(
            session,
            at=now,
            actor=audit.SYSTEM,
            action="document.infected",
            target=f"doc:{doc_id}",
            detail={
                "file": name,
                "signature": signature,
                "quarantine": entry.id,
                "signatures": signatures,
            },
        )
        queued = _tell(ctx, session, document, name, signature, entry.id, signatures)
    # Out of the raw store only once the quarantine holds it and the transaction committed:
    # the document keeps its text, and its files are no longer sent to anyone.
    (ctx.raw.root / row.path).unlink(missing_ok=True)
    log.warning(
        "doc %s: %s in %s; its mail is quarantined as %s", doc_id, signature, name, entry.id
    )
    return queued


def _tell(
    ctx: Context,
    session: Session,
    document: Document,
    name: str,
    signature: str,
    quarantine_id: str,
    signatures: str,
) -> int:
    directory = load_directory(session)
    told = [p for p in [directory.people.get(document.author)] if p is not None]
    told += [p for p in it_people(directory) if p not in told]
    key = hashlib.sha256(signatures.encode()).hexdigest()[:12]
    return sum(
        send_job_mail(
            ctx,
            session,
            source=f"rescan:{key}:{document.id}:{person.account}",
            template="rescan_infected.txt",
            person=person,
            headers={},
            variables={
                "doc_id": document.id,
                "title": document.title,
                "file": name,
                "signature": signature,
                "quarantine_id": quarantine_id,
            },
            document_id=document.id,
        )
        for person in told
    )
