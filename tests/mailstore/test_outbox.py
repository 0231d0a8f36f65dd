"""Tests of yizhan.mailstore.outbox, the outbound queue, and of the pure maths and report it uses
(yizhan.routing.retry, yizhan.routing.dsn)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser

import pytest
from sqlalchemy import func, select

from yizhan.daemon.context import Context
from yizhan.mailstore import outbox
from yizhan.mailstore.models import AuditEntry, Delivery, OutboundMessage
from yizhan.routing.dsn import FailedRecipient, build_dsn, status_of
from yizhan.routing.retry import backoff, next_attempt

NOW = dt.datetime(2024, 5, 6, 2, 0, tzinfo=dt.UTC)
DAYS5 = dt.timedelta(days=5)
SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")

RAW = (
    b"From: lijun@oa.example\r\n"
    b"To: wangfang@bureau.example\r\n"
    b"Subject: =?utf-8?b?5L2g5aW9?=\r\n"
    b"Message-ID: <raw-1@oa.example>\r\n"
    b"Date: Mon, 06 May 2024 02:00:00 +0000\r\n"
    b"\r\n"
    b"body\r\n"
)


def _message(subject: str = "會議通知") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "王芳 <wangfang@oa.example>"
    msg["To"] = "lijun@bureau.example"
    msg["Subject"] = subject
    msg.set_content("請於明天上午九點到會。\n")
    return msg


def _enqueue(
    ctx: Context,
    source: str = "test:1",
    message: EmailMessage | bytes = RAW,
    rcpts: tuple[str, ...] = ("wangfang@bureau.example",),
    mail_from: str = "lijun@oa.example",
    now: dt.datetime = NOW,
) -> OutboundMessage:
    with ctx.sessions.begin() as session:
        return outbox.enqueue(
            session,
            source=source,
            message=message,
            mail_from=mail_from,
            rcpts=rcpts,
            now=now,
            expires_after=DAYS5,
            domain="oa.example",
        )


def _delivery(ctx: Context, delivery_id: int) -> Delivery:
    with ctx.sessions() as session:
        row = session.get(Delivery, delivery_id)
        assert row is not None
        return row


def _count(ctx: Context, model: type[OutboundMessage] | type[Delivery]) -> int:
    with ctx.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_enqueue_message_gets_message_id_date_crlf_and_one_delivery_per_recipient(
    ctx: Context,
) -> None:
    # A rendered message is completed (Message-ID at our domain, Date) and serialised once with
    # CRLF; recipients that differ only in case get one delivery.
    msg = _message()
    row = _enqueue(
        ctx, message=msg, rcpts=("lijun@bureau.example", "LiJun@Bureau.Example", "mali@oa.example")
    )
    assert row.message_id == msg["Message-ID"]
    assert row.message_id.startswith("<") and row.message_id.endswith("@oa.example>")
    assert msg["Date"] is not None
    assert b"\r\n\r\n" in row.data and b"\n" not in row.data.replace(b"\r\n", b"")
    parsed = BytesParser(policy=policy.default).parsebytes(row.data)
    assert parsed["Subject"] == "會議通知"
    assert parsed["Message-ID"] == row.message_id
    with ctx.sessions() as session:
        deliveries = session.scalars(select(Delivery).order_by(Delivery.id)).all()
        assert [d.rcpt for d in deliveries] == ["lijun@bureau.example", "mali@oa.example"]
        for d in deliveries:
            assert d.state == "queued" and d.attempts == 0
            assert d.next_attempt_at == NOW and d.expires_at == NOW + DAYS5


def test_enqueue_twice_with_same_source_adds_nothing(ctx: Context) -> None:
    # Processing an inbound message twice (after a crash) queues its mail once: the second
    # enqueue returns the first row, even with other content and recipients.
    first = _enqueue(ctx, source="inbound:7:answer")
    again = _enqueue(ctx, source="inbound:7:answer", message=_message(), rcpts=("x@example.org",))
    assert again.id == first.id and again.message_id == "<raw-1@oa.example>"
    assert _count(ctx, OutboundMessage) == 1
    assert _count(ctx, Delivery) == 1


def test_enqueue_bytes_are_stored_as_they_are(ctx: Context) -> None:
    # Signed bytes must reach the recipient unchanged; their own Message-ID is used.
    row = _enqueue(ctx, message=RAW)
    assert row.data == RAW
    assert row.message_id == "<raw-1@oa.example>"


def test_enqueue_bytes_without_message_id_or_date_get_them_in_front(ctx: Context) -> None:
    # A forwarded message may lack both; resends must carry one Message-ID, so it is added.
    bare = b"From: a@example.org\r\nSubject: x\r\n\r\nhello\r\n"
    row = _enqueue(ctx, message=bare)
    assert row.data.endswith(bare)
    prefix = row.data[: -len(bare)]
    assert prefix.startswith(b"Message-ID: " + row.message_id.encode() + b"\r\n")
    assert b"\r\nDate: Mon, 06 May 2024 02:00:00 +0000\r\n" in b"\r\n" + prefix


def test_enqueue_keeps_non_ascii_mailbox_in_utf8(ctx: Context) -> None:
    # RFC 2047 cannot carry a non-ASCII mailbox; such a message is written with UTF-8 headers.
    msg = _message()
    msg.replace_header("To", "用户@例子.cn")
    row = _enqueue(ctx, message=msg, rcpts=("用户@例子.cn",))
    assert "To: 用户@例子.cn\r\n".encode() in row.data


def test_enqueue_without_recipients_is_refused(ctx: Context) -> None:
    # A message nobody receives is a caller's mistake, not something to keep.
    with pytest.raises(ValueError):
        _enqueue(ctx, rcpts=(" ",))


def test_claim_leases_due_deliveries_once(ctx: Context) -> None:
    # A claimed delivery is not claimed again while its lease runs, is again once it ran out,
    # and deliveries of one message share one copy of the bytes.
    _enqueue(ctx, rcpts=("a@example.org", "b@example.org"))
    _enqueue(ctx, source="test:later", now=NOW + dt.timedelta(hours=1))
    lease = dt.timedelta(minutes=10)
    with ctx.sessions.begin() as session:
        claimed = outbox.claim_due(session, now=NOW, limit=10, lease=lease)
    assert [c.rcpt for c in claimed] == ["a@example.org", "b@example.org"]
    assert claimed[0].data is claimed[1].data and claimed[0].data == RAW
    assert claimed[0].message_id == "<raw-1@oa.example>"
    assert claimed[0].mail_from == "lijun@oa.example" and claimed[0].attempts == 0
    assert claimed[0].expires_at == NOW + DAYS5 and claimed[0].created_at == NOW
    with ctx.sessions.begin() as session:
        assert (
            outbox.claim_due(session, now=NOW + dt.timedelta(minutes=9), limit=10, lease=lease)
            == []
        )
    with ctx.sessions.begin() as session:
        again = outbox.claim_due(session, now=NOW + dt.timedelta(minutes=11), limit=1, lease=lease)
    assert [c.rcpt for c in again] == ["a@example.org"]


def test_next_due_accounts_for_leases(ctx: Context) -> None:
    # The worker sleeps until the earliest delivery can be claimed: a leased one only when its
    # lease has run out.
    with ctx.sessions.begin() as session:
        assert outbox.next_due(session) is None
    _enqueue(ctx)
    with ctx.sessions.begin() as session:
        assert outbox.next_due(session) == NOW
        outbox.claim_due(session, now=NOW, limit=1, lease=dt.timedelta(minutes=10))
    with ctx.sessions.begin() as session:
        assert outbox.next_due(session) == NOW + dt.timedelta(minutes=10)


def test_sent_delivery_is_never_changed_again(ctx: Context) -> None:
    # Once marked sent, a late retry or failure from a slow worker must not undo it.
    row = _enqueue(ctx)
    delivery_id = row.deliveries[0].id
    later = NOW + dt.timedelta(minutes=1)
    with ctx.sessions.begin() as session:
        assert outbox.mark_sent(session, delivery_id, NOW)
    with ctx.sessions.begin() as session:
        assert not outbox.mark_sent(session, delivery_id, later)
        assert not outbox.mark_retry(session, delivery_id, later, "451 later", later)
        state = outbox.mark_failed(
            session,
            delivery_id,
            later,
            status="5.1.1",
            diagnostic="550 no",
            domain="oa.example",
            expires_after=DAYS5,
        )
        assert state is None
    d = _delivery(ctx, delivery_id)
    assert (d.state, d.sent_at, d.attempts, d.last_error) == ("sent", NOW, 1, None)
    assert _count(ctx, OutboundMessage) == 1


def test_mark_retry_counts_and_reschedules(ctx: Context) -> None:
    # A temporary failure is counted, its reason kept and the next attempt set; the lease goes.
    row = _enqueue(ctx)
    with ctx.sessions.begin() as session:
        (c,) = outbox.claim_due(session, now=NOW, limit=5, lease=dt.timedelta(minutes=5))
    later = NOW + dt.timedelta(minutes=1)
    with ctx.sessions.begin() as session:
        assert outbox.mark_retry(session, c.delivery_id, NOW, "451 4.3.0 busy", later)
    d = _delivery(ctx, row.deliveries[0].id)
    assert (d.state, d.attempts, d.last_error) == ("queued", 1, "451 4.3.0 busy")
    assert d.next_attempt_at == later and d.lease_until is None


def test_mark_failed_bounces_to_sender_with_a_dsn(ctx: Context) -> None:
    # A permanent failure queues a delivery report from <> to the original sender, keyed by
    # the delivery, and leaves an audit entry.
    row = _enqueue(ctx)
    delivery_id = row.deliveries[0].id
    with ctx.sessions.begin() as session:
        state = outbox.mark_failed(
            session,
            delivery_id,
            NOW,
            status="5.1.1",
            diagnostic="550 5.1.1 No such user",
            domain="oa.example",
            expires_after=DAYS5,
        )
    assert state == "bounced"
    with ctx.sessions() as session:
        dsn = session.scalars(
            select(OutboundMessage).where(OutboundMessage.source == f"dsn:{delivery_id}")
        ).one()
        assert dsn.mail_from == ""
        assert [d.rcpt for d in dsn.deliveries] == ["lijun@oa.example"]
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "delivery.bounced")
        ).one()
        assert entry.actor == "yizhan" and entry.detail["rcpt"] == "wangfang@bureau.example"
        assert entry.detail["dsn"] == dsn.message_id
    report = BytesParser(policy=policy.default).parsebytes(dsn.data)
    assert report.get_content_type() == "multipart/report"


def test_mark_failed_for_null_sender_sends_no_report(ctx: Context) -> None:
    # A report that cannot be delivered must not cause a report about the report.
    row = _enqueue(ctx, mail_from="")
    with ctx.sessions.begin() as session:
        state = outbox.mark_failed(
            session,
            row.deliveries[0].id,
            NOW,
            status="5.1.1",
            diagnostic="550 5.1.1 No such user",
            domain="oa.example",
            expires_after=DAYS5,
        )
    assert state == "failed"
    assert _count(ctx, OutboundMessage) == 1
    with ctx.sessions() as session:
        actions = session.scalars(select(AuditEntry.action)).all()
    assert actions == ["delivery.failed"]


def test_queue_listing_shows_what_waits_and_why(ctx: Context) -> None:
    # `yizhan queue` lists the waiting delivery with its last error, and a recent bounce, but
    # not what was sent; old bounces drop out of the listing.
    waiting = _enqueue(ctx, source="a", rcpts=("slow@example.org",)).deliveries[0].id
    sent = _enqueue(ctx, source="b", rcpts=("ok@example.org",)).deliveries[0].id
    fresh = _enqueue(ctx, source="c", rcpts=("new@example.org",), mail_from="").deliveries[0].id
    gone = _enqueue(ctx, source="d", rcpts=("gone@example.org",), mail_from="").deliveries[0].id
    retry_at = NOW + dt.timedelta(minutes=2)
    with ctx.sessions.begin() as session:
        outbox.mark_retry(session, waiting, NOW, "451 4.7.1 Greylisted, try again", retry_at)
        outbox.mark_sent(session, sent, NOW)
        outbox.mark_failed(
            session,
            gone,
            NOW,
            status="5.1.1",
            diagnostic="550 5.1.1 No such user",
            domain="oa.example",
            expires_after=DAYS5,
        )
    with ctx.sessions() as session:
        rows = outbox.queue_listing(session, now=NOW)
        much_later = outbox.queue_listing(session, now=NOW + dt.timedelta(days=8))
    assert [r.delivery_id for r in rows] == [fresh, waiting, gone]
    slow = rows[1]
    assert (slow.rcpt, slow.state, slow.attempts) == ("slow@example.org", "queued", 1)
    assert slow.last_error == "451 4.7.1 Greylisted, try again"
    assert slow.next_attempt_at == retry_at and slow.message_id == "<raw-1@oa.example>"
    assert [r.delivery_id for r in much_later] == [fresh, waiting]

    text = outbox.format_queue(rows, SHANGHAI)
    lines = text.splitlines()
    assert lines[0].split() == ["ID", "STATE", "TRIES", "NEXT", "ATTEMPT", "QUEUED", "RECIPIENT"]
    slow_line = next(i for i, line in enumerate(lines) if "slow@example.org" in line)
    # Times are shown in the bureau's zone: 02:02 UTC is 10:02 in Shanghai.
    assert "2024-05-06 10:02" in lines[slow_line]
    assert lines[slow_line + 2].strip() == "why: 451 4.7.1 Greylisted, try again"
    assert "why: not tried yet" in text
    assert "given up: 550 5.1.1 No such user" in text
    assert lines[-1] == "2 waiting, 1 given up recently"


def test_format_queue_says_when_empty() -> None:
    # An empty queue is said in words, not shown as an empty table.
    assert outbox.format_queue([], SHANGHAI) == "queue is empty"


def test_backoff_doubles_from_first_retry_and_caps_at_an_hour() -> None:
    # Pure maths: 1, 2, 4 … minutes, never more than an hour between attempts.
    minute = dt.timedelta(minutes=1)
    assert [backoff(n, minute) for n in (1, 2, 3, 4)] == [
        minute,
        2 * minute,
        4 * minute,
        8 * minute,
    ]
    assert backoff(7, minute) == dt.timedelta(hours=1)
    assert backoff(10_000, minute) == dt.timedelta(hours=1)


def test_next_attempt_ends_at_expiry() -> None:
    # The last attempt is made at the expiry time itself; after it the delivery is given up.
    expires = NOW + dt.timedelta(minutes=3)
    minute = dt.timedelta(minutes=1)
    assert next_attempt(attempts=1, now=NOW, expires_at=expires, first=minute) == NOW + minute
    assert next_attempt(attempts=5, now=NOW, expires_at=expires, first=minute) == expires
    assert next_attempt(attempts=6, now=expires, expires_at=expires, first=minute) is None


def test_status_of_reads_enhanced_codes() -> None:
    # RFC 3463 codes are taken from the reply text when they agree with the reply code.
    assert status_of(550, "5.1.1 <x@y>: Recipient address rejected") == "5.1.1"
    assert status_of(550, "550 5.7.1 Relaying denied") == "5.7.1"
    assert status_of(554, "Transaction failed") == "5.0.0"
    assert status_of(550, "4.1.1 inconsistent") == "5.0.0"


def test_build_dsn_has_the_three_parts_of_rfc_3464() -> None:
    # The report carries a bilingual note, machine-readable fields per recipient and the
    # original's headers (not its body).
    failed = [
        FailedRecipient(
            rcpt="a@example.org",
            status="5.1.1",
            diagnostic="550 5.1.1 No such\nuser",
            last_attempt=NOW,
        ),
        FailedRecipient(
            rcpt="b@example.org",
            status="4.4.7",
            diagnostic="connection refused",
            last_attempt=NOW,
        ),
    ]
    report = build_dsn(
        domain="oa.example",
        original=RAW,
        sender="lijun@oa.example",
        arrival=NOW - dt.timedelta(days=5),
        failed=failed,
        now=NOW,
    )
    parsed = BytesParser(policy=policy.default).parsebytes(report.as_bytes(policy=policy.SMTP))
    assert parsed.get_content_type() == "multipart/report"
    assert parsed.get_param("report-type") == "delivery-status"
    assert parsed["To"] == "lijun@oa.example"
    assert parsed["In-Reply-To"] == "<raw-1@oa.example>"
    assert parsed["Auto-Submitted"] == "auto-replied"
    human, status, headers = parsed.iter_parts()
    note = human.get_content()
    assert "您的郵件未能送達" in note and "Your message could not be delivered" in note
    assert "主題 / Subject: 你好" in note and "550 5.1.1 No such user" in note
    assert status.get_content_type() == "message/delivery-status"
    blocks = status.get_payload()
    assert isinstance(blocks, list)
    per_message, first, second = (dict(b.items()) for b in blocks if isinstance(b, Message))
    assert per_message["Reporting-MTA"] == "dns; oa.example"
    assert per_message["Arrival-Date"] == "Wed, 01 May 2024 02:00:00 +0000"
    assert first["Final-Recipient"] == "rfc822; a@example.org"
    assert first["Action"] == "failed" and first["Status"] == "5.1.1"
    assert first["Diagnostic-Code"] == "smtp; 550 5.1.1 No such user"
    assert first["Last-Attempt-Date"] == "Mon, 06 May 2024 02:00:00 +0000"
    # A failed delivery is reported with a 5.x.x status; our own wording is an X- diagnostic.
    assert second["Status"] == "5.4.7"
    assert second["Diagnostic-Code"] == "X-Yizhan; connection refused"
    assert headers.get_content_type() == "text/rfc822-headers"
    assert "Message-ID: <raw-1@oa.example>" in headers.get_content()
    assert "body" not in headers.get_content()


def _copies(ctx: Context, n: int, *, source: str = "dist") -> int:
    head = (
        "From: cmd@oa.example\r\nTo: clerk{i}@oa.example\r\nMessage-ID: <m{i}@oa.example>\r\n\r\n"
    )
    with ctx.sessions.begin() as session:
        body_id = outbox.store_body(session, b"the sealed body\r\n", now=NOW)
        batch = [
            outbox.Outgoing(
                source=f"{source}:{i}",
                body_id=body_id,
                head=head.format(i=i).encode(),
                rcpt=f"clerk{i}@oa.example",
                document_id=7,
                message_id=f"<m{i}@oa.example>",
            )
            for i in range(n)
        ]
        return outbox.enqueue_many(
            session,
            batch,
            mail_from="cmd@oa.example",
            now=NOW,
            expires_after=DAYS5,
            domain="oa.example",
        )


def test_enqueue_many_queues_each_copy_once_with_the_shared_body(ctx: Context) -> None:
    # A distribution's copies: each its own head and Message-ID around the one stored body,
    # one delivery each; queued again (a decision applied twice), nothing more is added.
    assert _copies(ctx, 3) == 3
    assert _copies(ctx, 3) == 0
    assert _count(ctx, OutboundMessage) == 3 and _count(ctx, Delivery) == 3
    with ctx.sessions.begin() as session:
        claimed = outbox.claim_due(session, now=NOW, limit=10, lease=dt.timedelta(minutes=5))
    assert sorted(c.rcpt for c in claimed) == [
        "clerk0@oa.example",
        "clerk1@oa.example",
        "clerk2@oa.example",
    ]
    for c in claimed:
        n = c.rcpt.removeprefix("clerk").partition("@")[0]
        assert c.message_id == f"<m{n}@oa.example>"
        assert c.data.endswith(b"\r\n\r\nthe sealed body\r\n")
        assert f"To: clerk{n}@oa.example".encode() in c.data
    assert claimed[0].body is claimed[1].body


def test_enqueue_many_gives_a_head_without_one_a_message_id(ctx: Context) -> None:
    with ctx.sessions.begin() as session:
        body_id = outbox.store_body(session, b"body\r\n", now=NOW)
        outbox.enqueue_many(
            session,
            [
                outbox.Outgoing(
                    source="x", body_id=body_id, head=b"To: a@b.example\r\n\r\n", rcpt="a@b.example"
                )
            ],
            mail_from="",
            now=NOW,
            expires_after=DAYS5,
            domain="oa.example",
        )
    with ctx.sessions.begin() as session:
        (claimed,) = outbox.claim_due(session, now=NOW, limit=10, lease=dt.timedelta(minutes=5))
    assert claimed.message_id.endswith("@oa.example>")
    assert claimed.data.startswith(f"Message-ID: {claimed.message_id}\r\nDate: ".encode())


def test_mark_sent_many_leaves_finished_deliveries_alone(ctx: Context) -> None:
    _copies(ctx, 3)
    with ctx.sessions.begin() as session:
        ids = sorted(session.scalars(select(Delivery.id)))
        outbox.mark_retry(session, ids[2], NOW, "451 later", NOW)
        assert outbox.mark_sent(session, ids[0], NOW)
    later = NOW + dt.timedelta(minutes=1)
    with ctx.sessions.begin() as session:
        assert outbox.mark_sent_many(session, ids, later) == {ids[1], ids[2]}
    first, second, third = (_delivery(ctx, i) for i in ids)
    assert (first.state, first.sent_at, first.attempts) == ("sent", NOW, 1)
    assert (second.state, second.sent_at, second.attempts) == ("sent", later, 1)
    assert (third.state, third.attempts, third.lease_until) == ("sent", 2, None)


def test_a_claim_whose_outcome_was_never_recorded_is_claimed_again_as_unsure(
    ctx: Context,
) -> None:
    # The daemon died holding the lease (or stopped and gave it back): the next claim says
    # that the message may have been delivered already, so IMAP filing looks first.
    from yizhan.mailstore.pending import release_leases

    _enqueue(ctx)
    lease = dt.timedelta(minutes=10)
    with ctx.sessions.begin() as session:
        (first,) = outbox.claim_due(session, now=NOW, limit=1, lease=lease, owner="me")
    assert not first.unsure
    with ctx.sessions.begin() as session:
        assert release_leases(session, "me") == 1
    with ctx.sessions.begin() as session:
        (again,) = outbox.claim_due(session, now=NOW, limit=1, lease=lease, owner="me")
    assert again.unsure and again.delivery_id == first.delivery_id
    later = NOW + lease + dt.timedelta(minutes=1)
    with ctx.sessions.begin() as session:
        (expired,) = outbox.claim_due(session, now=later, limit=1, lease=lease)
    assert expired.unsure
