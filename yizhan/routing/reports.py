"""Reads a delivery status notification (RFC 3464) that came back for Yizhan's own mail.

The organisation's MTA (Postfix) that could not deliver a message Yizhan relayed sends a
``multipart/report; report-type=delivery-status`` to its envelope sender (cmd@). What matters
is which recipients failed, with what status and diagnostic, and which of Yizhan's messages it
was: the Message-ID in the returned headers (``text/rfc822-headers``) or message
(``message/rfc822``). Pure: a parsed message in, facts out; nothing here reads a store.
"""

from __future__ import annotations

from dataclasses import dataclass
from email import message_from_string, policy
from email.message import EmailMessage, Message

__all__ = ["DeliveryReport", "ReportedRecipient", "read_report"]


@dataclass(frozen=True, kw_only=True)
class ReportedRecipient:
    """One per-recipient block of the report."""

    rcpt: str
    #: ``failed``, ``delayed``, ``delivered``, ``relayed`` or ``expanded``.
    action: str
    status: str
    diagnostic: str


@dataclass(frozen=True, kw_only=True)
class DeliveryReport:
    """What a delivery status notification says."""

    reporting_mta: str
    recipients: tuple[ReportedRecipient, ...]
    #: The Message-ID of the message it reports on, as returned; None if it was not returned.
    original_id: str | None

    @property
    def failed(self) -> tuple[ReportedRecipient, ...]:
        """The recipients the message was not delivered to, for good."""
        return tuple(r for r in self.recipients if r.action == "failed")


def read_report(msg: EmailMessage, mail_from: str) -> DeliveryReport | None:
    """The report ``msg`` carries, if it is a delivery status notification from the null
    sender (only the null sender sends them, RFC 3464 section 2); None otherwise."""
    if mail_from not in ("", "<>"):
        return None
    if msg.get_content_type() != "multipart/report":
        return None
    if str(msg.get_param("report-type", "")).lower() != "delivery-status":
        return None
    reporting_mta = ""
    recipients: list[ReportedRecipient] = []
    original_id: str | None = None
    for part in msg.walk():
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            blocks = [b for b in part.get_payload() if isinstance(b, Message)]
            if blocks:
                reporting_mta = _typed(blocks[0].get("Reporting-MTA"))
            for block in blocks[1:]:
                rcpt = _typed(block.get("Final-Recipient") or block.get("Original-Recipient"))
                if rcpt:
                    recipients.append(
                        ReportedRecipient(
                            rcpt=rcpt,
                            action=str(block.get("Action", "")).strip().lower(),
                            status=str(block.get("Status", "")).strip(),
                            diagnostic=" ".join(_typed(block.get("Diagnostic-Code")).split()),
                        )
                    )
        elif kind == "text/rfc822-headers" and original_id is None:
            returned = message_from_string(part.get_content(), policy=policy.default)
            original_id = _message_id(returned)
        elif kind == "message/rfc822" and original_id is None:
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                original_id = _message_id(inner[0])
    return DeliveryReport(
        reporting_mta=reporting_mta, recipients=tuple(recipients), original_id=original_id
    )


def _typed(value: object) -> str:
    # "rfc822; lijun@bureau.example", "dns; mta.example", "smtp; 550 5.1.1 ...": the value.
    text = str(value or "")
    return text.split(";", 1)[1].strip() if ";" in text else text.strip()


def _message_id(headers: Message) -> str | None:
    value = headers.get("Message-ID")
    return str(value).strip() if value else None
