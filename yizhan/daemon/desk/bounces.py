"""A bounce for Yizhan's own mail: into the document's trail, and to the IT department.

Yizhan's mail leaves from cmd@ (``Context.queue``), so the organisation's MTA sends its
delivery status notifications there when it cannot deliver what Yizhan relayed: a person's
mailbox that is gone, a full one. Such a report must not vanish (第四條(二): the IT department
keeps the system and its mail flowing; 第十一條: nothing is lost). It is matched to the message
Yizhan sent by the returned Message-ID; only a recipient of that message counts, so a report
about mail Yizhan never sent changes nothing. Each failed recipient's delivery is marked
bounced, the document's trail gets an entry ``doc.undelivered`` (who, status, diagnostic), and
the IT department is told, with the document's headers so that the notice joins its thread.
A report is never answered (RFC 3464: no reports about reports).
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from yizhan.daemon.desk.request import Request
from yizhan.mailstore import audit
from yizhan.mailstore.documents import TRAIL_PREFIX, doc_target, load_state
from yizhan.mailstore.models import Delivery, Document, OutboundMessage
from yizhan.mailstore.outbox import BOUNCED
from yizhan.routing.duties import it_people
from yizhan.routing.reports import DeliveryReport, ReportedRecipient, read_report

__all__ = ["receive_report", "report_of"]

log = logging.getLogger("yizhan.desk.bounces")


def report_of(request: Request) -> DeliveryReport | None:
    """The delivery report ``request`` carries, or None if it is not one."""
    return read_report(request.msg, request.mail_from)


def receive_report(request: Request, report: DeliveryReport) -> None:
    """Record what the report says of Yizhan's message; see the module docstring."""
    session = request.session
    sent = (
        session.scalars(
            select(OutboundMessage).where(OutboundMessage.message_id == report.original_id)
        ).first()
        if report.original_id
        else None
    )
    failed = [r for r in report.failed if sent is not None and _delivery(request, sent, r)]
    if sent is None or not failed:
        log.info(
            "inbound %d: a delivery report about %s, not a message of ours that failed",
            request.inbound_id,
            report.original_id or "(no Message-ID)",
        )
        return
    document = session.get(Document, sent.document_id) if sent.document_id else None
    for r in failed:
        delivery = _delivery(request, sent, r)
        assert delivery is not None
        delivery.state = BOUNCED
        delivery.last_error = f"{r.status} {r.diagnostic}".strip()
        # As when the queue gives up: the queue listing shows recent failures by this time.
        delivery.next_attempt_at = request.now
        audit.record(
            session,
            at=request.now,
            actor=audit.SYSTEM,
            action=f"{TRAIL_PREFIX}undelivered" if document else "delivery.bounced",
            target=doc_target(document.id) if document else f"delivery:{delivery.id}",
            detail={
                "opinion": f"{r.rcpt} {r.status} {r.diagnostic}".strip(),
                "rcpt": r.rcpt,
                "status": r.status,
                "diagnostic": r.diagnostic,
                "message_id": sent.message_id,
                "reported_by": report.reporting_mta,
                "inbound": request.inbound_id,
            },
        )
        log.warning("%s: not delivered to %s: %s", sent.message_id, r.rcpt, r.diagnostic)
    _tell_it(request, report, sent, document, failed)


def _delivery(request: Request, sent: OutboundMessage, r: ReportedRecipient) -> Delivery | None:
    return request.session.scalars(
        select(Delivery)
        .where(Delivery.message_pk == sent.id)
        .where(Delivery.rcpt.ilike(r.rcpt.strip("<>")))
    ).first()


def _tell_it(
    request: Request,
    report: DeliveryReport,
    sent: OutboundMessage,
    document: Document | None,
    failed: list[ReportedRecipient],
) -> None:
    headers = (
        request.mailer.document_headers(load_state(request.session, document)) if document else {}
    )
    what = (
        f"公文 {document.number or document.id}《{document.title}》"
        if document
        else sent.message_id
    )
    lines = [f"{r.rcpt}: {r.status} {r.diagnostic}".strip() for r in failed]
    text = (
        f"驛站發出的郵件未能投遞：{what}\n"
        f"Mail Yizhan sent could not be delivered: {what}\n\n"
        + "\n".join(lines)
        + f"\n\n{report.reporting_mta} · Message-ID {sent.message_id}"
    )
    for person in it_people(request.directory):
        request.mailer.send(
            request.session,
            source=f"{request.key}:it:{person.account}",
            to=person,
            template="reply.txt",
            variables={"subject": "未投遞 / Undelivered", "text": text},
            headers=headers,
            document_id=document.id if document else None,
            now=request.now,
        )
