"""Tests for yizhan.daemon.desk.request: where an answer goes and how it is threaded."""

from __future__ import annotations

import asyncio
import email
from email import policy
from email.message import EmailMessage

from sqlalchemy import select

from yizhan.daemon.context import Context
from yizhan.daemon.desk.request import answer_address, answer_headers
from yizhan.daemon.processor import Processor
from yizhan.mailstore.models import Inbound, OutboundMessage


def parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def test_an_answer_goes_to_reply_to_else_from_else_the_envelope() -> None:
    # RFC 3834: a mail client's Reply-To says where answers go; without one, the From; a
    # message with neither is answered at its envelope sender, a bounce (<>) never.
    both = parse(
        b"From: Wang <wangfang@bureau.example>\r\nReply-To: office@bureau.example\r\n\r\nx\r\n"
    )
    assert answer_address(both, "wangfang@bureau.example") == "office@bureau.example"
    from_only = parse(b"From: Wang <wangfang@bureau.example>\r\n\r\nx\r\n")
    assert answer_address(from_only, "other@bureau.example") == "wangfang@bureau.example"
    bare = parse(b"Subject: x\r\n\r\nx\r\n")
    assert answer_address(bare, "wangfang@bureau.example") == "wangfang@bureau.example"
    assert answer_address(both, "") is None


def test_an_answer_is_marked_auto_replied_and_threaded_under_the_message() -> None:
    # The answer continues the thread: In-Reply-To names the message, References carries the
    # thread so far and then the message; a message without an id is answered unthreaded.
    assert answer_headers("<m2@x>", "<m0@x> <m1@x>") == {
        "Auto-Submitted": "auto-replied",
        "In-Reply-To": "<m2@x>",
        "References": "<m0@x> <m1@x> <m2@x>",
    }
    assert answer_headers("<m2@x>") == {
        "Auto-Submitted": "auto-replied",
        "In-Reply-To": "<m2@x>",
        "References": "<m2@x>",
    }
    assert answer_headers(None) == {"Auto-Submitted": "auto-replied"}


def test_a_cmd_answer_follows_reply_to_and_the_thread(bureau: Context) -> None:
    # 王芳 asks cmd@ for HELP from a client that sets Reply-To to her OA address and keeps the
    # thread's References: the answer goes to the Reply-To and continues the thread, as every
    # answer of the processor did before the desk's answers were made in one place.
    raw = (
        b"From: wangfang@bureau.example\r\nReply-To: wangfang@oa.example\r\n"
        b"To: cmd@oa.example\r\nSubject: HELP\r\nMessage-ID: <h2@bureau.example>\r\n"
        b"References: <h0@bureau.example> <h1@bureau.example>\r\n\r\nHELP\r\n"
    )
    now = bureau.clock()
    stored = bureau.raw.write("inbound", raw, now)
    with bureau.sessions.begin() as session:
        session.add(
            Inbound(
                received_at=now,
                path=stored.relative,
                sha256=stored.sha256,
                size=stored.size,
                message_id="<h2@bureau.example>",
                mail_from="wangfang@bureau.example",
                rcpt_tos=["cmd@oa.example"],
                sender_account="wangfang",
                auth_method="smtp-auth",
                peer="127.0.0.1:1",
                state="accepted",
            )
        )
    assert asyncio.run(Processor(bureau).run_until_empty()) == 1
    with bureau.sessions() as session:
        (row,) = session.scalars(select(OutboundMessage)).all()
        answer = parse(row.data)
        assert [d.rcpt for d in row.deliveries] == ["wangfang@oa.example"]
    assert answer["To"] == "wangfang@oa.example"
    assert answer["In-Reply-To"] == "<h2@bureau.example>"
    assert answer["References"] == "<h0@bureau.example> <h1@bureau.example> <h2@bureau.example>"
    assert answer["Auto-Submitted"] == "auto-replied"
