"""Reading the delivery reports that come back for Yizhan's mail (routing.reports)."""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage

from yizhan.routing.reports import read_report

# As Postfix 3.7 writes one (headers returned only, the default for a body it did not keep).
POSTFIX_REPORT = b"""\
From: MAILER-DAEMON@mta.bureau.example (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: cmd@oa.example
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="B1"
Message-Id: <20261206230000.1@mta.bureau.example>

--B1
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mta.bureau.example.

--B1
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mta.bureau.example
X-Postfix-Queue-ID: 4AbC
Arrival-Date: Sun,  6 Dec 2026 23:00:00 +0000 (UTC)

Final-Recipient: rfc822; liangguoqiang@retired.example
Original-Recipient: rfc822;liangguoqiang@retired.example
Action: failed
Status: 5.1.2
Diagnostic-Code: X-Postfix; no mail system for
    this domain on the test host

Final-Recipient: rfc822; lijun@bureau.example
Action: delayed
Status: 4.4.1
Diagnostic-Code: X-Postfix; connect to mailbox: timed out

--B1
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: =?utf-8?b?6amb56uZ?= <cmd@oa.example>
Subject: =?utf-8?b?6KuL5om5?=
Message-ID: <abc123@oa.example>

--B1--
"""


def parsed(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def test_a_postfix_report_names_the_failed_recipients_and_the_message() -> None:
    report = read_report(parsed(POSTFIX_REPORT), "")
    assert report is not None
    assert report.reporting_mta == "mta.bureau.example"
    assert report.original_id == "<abc123@oa.example>"
    (failed,) = report.failed
    assert failed.rcpt == "liangguoqiang@retired.example"
    assert failed.status == "5.1.2"
    assert failed.diagnostic == "no mail system for this domain on the test host"
    # A delay is reported, not a failure: the message may still arrive.
    assert [r.action for r in report.recipients] == ["failed", "delayed"]


def test_only_a_delivery_report_from_the_null_sender_is_one() -> None:
    # Anyone can write a multipart/report; only the null sender sends real ones (RFC 3464).
    assert read_report(parsed(POSTFIX_REPORT), "someone@elsewhere.example") is None
    plain = parsed(b"From: a@b\r\nSubject: x\r\n\r\nhello\r\n")
    assert read_report(plain, "") is None


def test_a_returned_message_names_its_message_id_too() -> None:
    returned = POSTFIX_REPORT.replace(
        b"Content-Type: text/rfc822-headers", b"Content-Type: message/rfc822"
    )
    report = read_report(parsed(returned), "<>")
    assert report is not None and report.original_id == "<abc123@oa.example>"
