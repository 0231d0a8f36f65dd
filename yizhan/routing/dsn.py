"""Builds the delivery status notification (RFC 3464) that tells a sender their mail failed.

The report is a ``multipart/report; report-type=delivery-status`` of three parts: a note for
people in Chinese and English, the machine-readable ``message/delivery-status`` and the headers
of the original message as ``text/rfc822-headers``. Nothing here sends it or reads a store.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage, Message, MIMEPart
from email.parser import BytesHeaderParser
from email.utils import format_datetime

#: The status of a delivery given up because the retry period ran out (RFC 3463 X.4.7).
EXPIRED = "5.4.7"
#: The status of mail for an address that has no mailbox here (RFC 3463 X.1.1).
NO_MAILBOX = "5.1.1"

_REPLY = re.compile(r"^\s*([245])\d\d[\s-]")
_ENHANCED = re.compile(r"^\s*(?:[245]\d\d[\s-]+)?([245])\.(\d{1,3})\.(\d{1,3})\b")
_HEADER_END = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True, kw_only=True)
class FailedRecipient:
    """One recipient the message could not be delivered to, and why."""

    rcpt: str
    #: The RFC 3463 status, ``5.x.x``.
    status: str
    #: What the last attempt got, ideally the SMTP reply (``550 5.1.1 No such user``).
    diagnostic: str
    last_attempt: dt.datetime


def status_of(code: int, text: str) -> str:
    """The RFC 3463 status of an SMTP reply: the enhanced code it carries, else ``C.0.0``.

    >>> status_of(550, "5.1.1 No such user")
    '5.1.1'
    >>> status_of(554, "Transaction failed")
    '5.0.0'
    """
    found = _ENHANCED.match(text)
    if found and found.group(1) == str(code // 100):
        return ".".join(found.groups())
    return f"{code // 100}.0.0"


def permanent_status(status: str) -> str:
    """``status`` as a failure: a DSN's ``Action: failed`` goes with a ``5.x.x`` status."""
    return "5" + status[1:] if status[:1] in ("4", "5") else "5.0.0"


def build_dsn(
    *,
    domain: str,
    original: bytes,
    sender: str,
    arrival: dt.datetime,
    failed: Sequence[FailedRecipient],
    now: dt.datetime,
) -> EmailMessage:
    """The report to ``sender`` that ``original`` could not be delivered to ``failed``.

    ``original`` is the message as queued; only its header section is returned to the sender,
    as RFC 3462 allows, so a large attachment is not mailed back. ``arrival`` is when the
    message entered the queue. The caller sends the report from the null sender ``<>``, so that
    a report that fails in turn never causes another.
    """
    if not failed:
        raise ValueError("a delivery status notification needs at least one failed recipient")
    header_bytes = original_headers(original)
    parsed = BytesHeaderParser(policy=policy.default).parsebytes(header_bytes)
    subject = _one_line(str(parsed.get("Subject", "")))
    original_id = _one_line(str(parsed.get("Message-ID", "")))

    report = EmailMessage()
    report["From"] = Address("郵件系統 Mail Delivery System", "MAILER-DAEMON", domain)
    report["To"] = sender
    title = "郵件未能送達 / Undelivered mail"
    report["Subject"] = f"{title}: {subject}" if subject else title
    report["Date"] = format_datetime(now.astimezone(dt.UTC))
    # RFC 3834: an automatic answer, so that vacation responders leave it alone.
    report["Auto-Submitted"] = "auto-replied"
    if original_id:
        report["In-Reply-To"] = original_id
        report["References"] = original_id

    human = MIMEPart()
    human.set_content(_human_text(subject, failed))

    status = MIMEPart()
    status["Content-Type"] = "message/delivery-status"
    per_message = _fields(
        [
            ("Reporting-MTA", f"dns; {domain}"),
            ("Arrival-Date", format_datetime(arrival.astimezone(dt.UTC))),
        ]
    )
    per_recipient = [
        _fields(
            [
                ("Final-Recipient", f"rfc822; {f.rcpt}"),
                ("Action", "failed"),
                ("Status", permanent_status(f.status)),
                ("Diagnostic-Code", _diagnostic_code(f.diagnostic)),
                ("Last-Attempt-Date", format_datetime(f.last_attempt.astimezone(dt.UTC))),
            ]
        )
        for f in failed
    ]
    # The email package models message/delivery-status as a list of header blocks.
    status.set_payload([per_message, *per_recipient])

    headers = MIMEPart()
    # Raw 8-bit header bytes are rare and not always UTF-8; a stray byte must not stop a report.
    headers.set_content(header_bytes.decode("utf-8", errors="replace"), subtype="rfc822-headers")

    report.make_mixed()
    report.set_type("multipart/report")
    report.set_param("report-type", "delivery-status")
    report.set_payload([human, status, headers])
    return report


def original_headers(data: bytes) -> bytes:
    """The header section of a message, without the blank line that ends it."""
    end = _HEADER_END.search(data)
    return data[: end.start()] if end else data


def _fields(pairs: Sequence[tuple[str, str]]) -> Message:
    block = Message(policy=policy.SMTP)
    for name, value in pairs:
        block[name] = _one_line(value)
    return block


def _diagnostic_code(diagnostic: str) -> str:
    # "smtp" says the text is an SMTP reply; anything else (a refused connection, a full disk)
    # is our own wording, which RFC 3464 marks with a private "X-" type.
    kind = "smtp" if _REPLY.match(diagnostic) else "X-Yizhan"
    return f"{kind}; {_one_line(diagnostic)}"


def _human_text(subject: str, failed: Sequence[FailedRecipient]) -> str:
    lines = [
        "您的郵件未能送達下列收件人。",
        "Your message could not be delivered to the following recipients.",
        "",
    ]
    if subject:
        lines += [f"主題 / Subject: {subject}", ""]
    for f in failed:
        lines.append(f"收件人 / Recipient: {f.rcpt}")
        if f.status[2:] == EXPIRED[2:]:
            lines.append("說明 / Note: 多次重試直至期限仍未送達 / retried until the time limit")
        lines += [f"原因 / Reason: {_one_line(f.diagnostic)}", ""]
    lines += [
        "這是系統自動發出的通知，請勿回覆。原郵件的標頭附在後面。",
        "This notice was sent automatically; please do not reply. "
        "The headers of your message are attached.",
    ]
    return "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    # Multi-line SMTP replies and folded headers become one line: a header value may not
    # contain a line break, and a reason reads better unbroken.
    return " ".join(text.split())
