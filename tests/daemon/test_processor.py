"""Tests for yizhan.daemon.processor: what happens to a message between acceptance and delivery."""

from __future__ import annotations

import asyncio
import email
from email.policy import default

from sqlalchemy import select

from yizhan.daemon.context import Context
from yizhan.daemon.processor import Processor
from yizhan.mailstore import accounts, pending
from yizhan.mailstore.models import Inbound, OutboundMessage

RAW = (
    b"From: wangfang@bureau.example\r\nTo: lijun@oa.example\r\nSubject: =?utf-8?b?5pyD6K2w?=\r\n"
    b"Message-ID: <p1@bureau.example>\r\n\r\nbody\r\n"
)


def _accept(ctx: Context) -> int:
    now = ctx.clock()
    stored = ctx.raw.write("inbound", RAW, now)
    with ctx.sessions.begin() as session:
        row = Inbound(
            received_at=now,
            path=stored.relative,
            sha256=stored.sha256,
            size=stored.size,
            message_id="<p1@bureau.example>",
            mail_from="wangfang@bureau.example",
            rcpt_tos=["lijun@oa.example"],
            sender_account="wangfang",
            auth_method="smtp-auth",
            peer="127.0.0.1:1",
            state="accepted",
        )
        session.add(row)
        session.flush()
        return row.id


def test_recipient_gone_since_acceptance_is_answered_with_the_reason(bureau: Context) -> None:
    # A message was accepted for 李軍, whose account was then suspended before processing:
    # the sender is told it was not delivered and why, and nothing goes to the suspended person.
    inbound_id = _accept(bureau)
    with bureau.sessions.begin() as session:
        accounts.set_state(session, "lijun", "suspended", actor="mali", now=bureau.clock())
    assert asyncio.run(Processor(bureau).run_until_empty()) == 1
    with bureau.sessions() as session:
        assert session.get(Inbound, inbound_id).state == "processed"  # type: ignore[union-attr]
        queued = session.scalars(select(OutboundMessage)).all()
    assert len(queued) == 1
    answer = email.message_from_bytes(queued[0].data, policy=default)
    text = "\n".join(
        part.get_content() for part in answer.walk() if part.get_content_type() == "text/plain"
    )
    assert "lijun@oa.example" in text and "suspended" in text
    assert "wangfang@bureau.example" in str(answer["To"])


def test_processing_twice_queues_nothing_twice(bureau: Context) -> None:
    # A crash after the outbox rows were written but before the claim ended: the message is
    # processed again, and the outbox keeps one copy (keyed by the inbound message).
    _accept(bureau)
    processor = Processor(bureau)
    assert asyncio.run(processor.run_until_empty()) == 1
    with bureau.sessions.begin() as session:
        row = session.scalars(select(Inbound)).one()
        row.state = "accepted"
    assert asyncio.run(processor.run_until_empty()) == 1
    with bureau.sessions() as session:
        assert len(session.scalars(select(OutboundMessage)).all()) == 1


def test_a_message_that_keeps_failing_is_set_aside_not_lost(bureau: Context) -> None:
    # A message whose processing raises every time is kept as "failed" after five attempts,
    # with the reason, and listed for the administrator; its bytes stay in the store.
    inbound_id = _accept(bureau)

    def unreadable(relative: str) -> bytes:
        raise OSError(f"{relative}: input/output error")

    bureau.raw.read = unreadable  # type: ignore[method-assign]
    processor = Processor(bureau)
    for _ in range(pending.MAX_ATTEMPTS):
        processor.process_batch()
        with bureau.sessions.begin() as session:
            session.get(Inbound, inbound_id).lease_until = None  # type: ignore[union-attr]
    with bureau.sessions() as session:
        (row,) = pending.set_aside(session)
    assert row.id == inbound_id and "input/output error" in (row.reason or "")
