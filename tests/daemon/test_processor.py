"""Tests for yizhan.daemon.processor: what happens to a message between acceptance and delivery."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
from email.policy import default

from sqlalchemy import select

from yizhan.daemon.context import Context
from yizhan.daemon.processor import Processor
from yizhan.daemon.rules_file import content_rules_version
from yizhan.daemon.screening.quarantine import quarantine_of, release_entry
from yizhan.mailstore import accounts, pending
from yizhan.mailstore.models import Inbound, OutboundMessage

RAW = (
    b"From: wangfang@bureau.example\r\nTo: lijun@oa.example\r\nSubject: =?utf-8?b?5pyD6K2w?=\r\n"
    b"Message-ID: <p1@bureau.example>\r\n\r\nbody\r\n"
)


def _accept(ctx: Context, raw: bytes = RAW, *, content_rules: str | None = None) -> int:
    now = ctx.clock()
    stored = ctx.raw.write("inbound", raw, now)
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
            content_rules=content_rules,
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
    # Its sender is told once that it was not acted on and is kept for the IT department,
    # and the IT department (吳海峰, its head) is told which message and why.
    bureau.raw.read = type(bureau.raw).read.__get__(bureau.raw)  # type: ignore[method-assign]
    processor.process_batch()
    texts = _texts(bureau)
    assert sorted(texts) == ["wangfang@bureau.example", "wuhaifeng@bureau.example"]
    assert "input/output error" in texts["wuhaifeng@bureau.example"]
    assert (
        "信息化處" in texts["wangfang@bureau.example"]
        and "not acted on" in (texts["wangfang@bureau.example"])
    )


def test_a_worker_that_dies_costs_an_attempt_only_to_the_message_it_was_on(
    bureau: Context,
) -> None:
    # A worker claimed three messages and died on the second (daemon/workers.py learns which
    # from its pipe). The second's death counts against it; the third, never begun, keeps
    # its attempts; the first, processed, is untouched.
    first, second, third = (_accept(bureau) for _ in range(3))
    owner = pending.worker_owner(bureau.instance, 0)
    with bureau.sessions.begin() as session:
        pending.claim_accepted(
            session, now=bureau.clock(), limit=3, lease=dt.timedelta(minutes=5), owner=owner
        )
        pending.mark_processed(session, first, now=bureau.clock())
    with bureau.sessions.begin() as session:
        assert pending.not_started(session, owner, second) == 1
    with bureau.sessions() as session:
        attempts = {i: session.get(Inbound, i).attempts for i in (first, second, third)}  # type: ignore[union-attr]
    assert attempts == {first: 1, second: 1, third: 0}
    # Four more deaths on it and it is set aside, its sender and the IT department told.
    processor = Processor(bureau)
    for n in range(2, pending.MAX_ATTEMPTS + 1):
        with bureau.sessions.begin() as session:
            session.get(Inbound, second).attempts = n  # type: ignore[union-attr]
        processor.record_failure(second, "the processing worker died (signal 11)")
    with bureau.sessions() as session:
        (aside,) = pending.set_aside(session)
    assert aside.id == second and "signal 11" in (aside.reason or "")
    assert sorted(_texts(bureau)) == ["wangfang@bureau.example", "wuhaifeng@bureau.example"]


def test_a_worker_is_done_with_each_message_before_the_next(bureau: Context) -> None:
    # The daemon charges a dead worker's death to the message it says it has in hand. Once a
    # message is processed it is no longer in hand: a worker dying between two messages of
    # its batch did not die on the first, and the ones after it were never begun.
    first, second = _accept(bureau), _accept(bureau)
    said: list[int | None] = []
    Processor(bureau, in_hand=said.append).process_batch()
    assert said == [first, None, second, None]


GAMBLING = (
    "From: wangfang@bureau.example\r\nTo: lijun@oa.example\r\nSubject: 週末安排\r\n"
    "Message-ID: <p2@bureau.example>\r\nContent-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n\r\n週末一起去網上賭博吧\r\n"
).encode()


def _texts(ctx: Context) -> dict[str, str]:
    """The plain text of every queued mail, by its first recipient."""
    with ctx.sessions() as session:
        rows = session.scalars(select(OutboundMessage)).all()
        found = {}
        for row in rows:
            mail = email.message_from_bytes(row.data, policy=default)
            text = "\n".join(
                str(part.get_content())
                for part in mail.walk()
                if part.get_content_type() == "text/plain"
            )
            found[row.deliveries[0].rcpt] = text
    return found


def test_a_message_the_changed_rules_refuse_is_quarantined_then_released(bureau: Context) -> None:
    # Accepted under the old rules; before it was processed the IT department listed a
    # forbidden word it contains. The processor judges it again: it is held in the quarantine
    # with the rule named, 王芳 and the IT department are told, 李軍 gets nothing. Released by
    # IT, it is accepted again and delivered.
    inbound_id = _accept(
        bureau, GAMBLING, content_rules=content_rules_version(bureau.config.rules_file)
    )
    bureau.config.rules_file.write_text('[content]\nforbidden_words = ["賭博"]\n', "utf-8")
    assert asyncio.run(Processor(bureau).run_until_empty()) == 1
    with bureau.sessions() as session:
        row = session.get(Inbound, inbound_id)
        assert row is not None and row.state == "quarantined"
        assert "forbidden_words" in (row.reason or "")
    (entry,) = quarantine_of(bureau.config).entries()
    assert entry.inbound_id == inbound_id and entry.rule == "forbidden_words"
    texts = _texts(bureau)
    assert "賭博" in texts["wangfang@bureau.example"]
    assert not any(rcpt.startswith("lijun") for rcpt in texts)
    assert any(entry.id in text for text in texts.values())  # the notice to IT names the entry

    released = release_entry(bureau, entry.id, by="console")
    assert asyncio.run(Processor(bureau).run_until_empty()) == 1
    with bureau.sessions() as session:
        again = session.get(Inbound, released.released_as)
        assert again is not None and again.state == "processed"
    assert "lijun@bureau.example" in _texts(bureau)


def test_while_the_scanner_is_down_a_message_waits_and_is_not_set_aside(bureau: Context) -> None:
    # The rules changed after acceptance and now name a virus scanner that is not running:
    # the message with an attachment cannot be judged, so it waits (never passes unscanned)
    # however often it is tried, and is not set aside as failed.
    raw = (
        b"From: wangfang@bureau.example\r\nTo: lijun@oa.example\r\nSubject: report\r\n"
        b"Message-ID: <p3@bureau.example>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: text/plain\r\n\r\nsee attached\r\n--b\r\n"
        b'Content-Type: text/plain; name="a.txt"\r\nContent-Disposition: attachment; '
        b'filename="a.txt"\r\n\r\nnumbers\r\n--b--\r\n'
    )
    inbound_id = _accept(bureau, raw, content_rules="an older version")
    missing = bureau.config.data_dir / "no-clamd.sock"
    bureau.config.rules_file.write_text(f'[content.scanner]\nsocket = "{missing}"\n', "utf-8")
    processor = Processor(bureau)
    for _ in range(pending.MAX_ATTEMPTS + 2):
        processor.process_batch()
        with bureau.sessions.begin() as session:
            session.get(Inbound, inbound_id).lease_until = None  # type: ignore[union-attr]
    with bureau.sessions() as session:
        row = session.get(Inbound, inbound_id)
        assert row is not None and row.state == "accepted"
        assert "scanner" in (row.reason or "")
        assert not session.scalars(select(OutboundMessage)).all()


def test_while_gpg_cannot_sign_a_message_waits_and_is_answered_once_it_can(
    bureau: Context,
) -> None:
    # gpg making no signature (its agent gone under a crash or a load, the key out of reach)
    # is the machine's failure, not the message's: it is tried again, not set aside.
    home = bureau.config.signing.gnupg_home
    keys, away = home / "private-keys-v1.d", home / "private-keys-away"
    raw = RAW.replace(b"To: lijun@oa.example", b"To: cmd@oa.example").replace(b"body", b"HELP")
    inbound_id = _accept(bureau, raw)
    with bureau.sessions.begin() as session:
        session.get(Inbound, inbound_id).rcpt_tos = ["cmd@oa.example"]  # type: ignore[union-attr]
    keys.rename(away)
    try:
        asyncio.run(Processor(bureau).run_until_empty())
    finally:
        away.rename(keys)
    with bureau.sessions.begin() as session:
        row = session.get(Inbound, inbound_id)
        assert row is not None and row.state == "accepted" and row.attempts == 1, row.reason
        assert "could not sign" in (row.reason or "")
        assert session.scalars(select(OutboundMessage)).all() == []
        row.lease_until = None  # the lease ran out
    assert asyncio.run(Processor(bureau).run_until_empty()) == 1
    with bureau.sessions() as session:
        assert session.get(Inbound, inbound_id).state == "processed"  # type: ignore[union-attr]
        assert len(session.scalars(select(OutboundMessage)).all()) == 1
