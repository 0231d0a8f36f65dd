"""End-to-end: IT hears what it must, and never a flood (第七條; mine rules 一(八)).

Impersonation at SMTP and in a reply, and viruses, reach the IT department at once; a second
one within the hour is counted into the next mail, sent after the hour; lockouts come in one
digest a working day. Everything is made over SMTP against the running daemon.
"""

from __future__ import annotations

import datetime as dt
import email
import smtplib
from email.policy import default

import pytest
from sqlalchemy import select

from tests.daemon.conftest import Files
from tests.daemon.test_flows import PASSWORD, Daemon, one, reply, scan_with, text
from tests.daemon.test_processor import _accept
from tests.daemon.test_supervision import deliver, working_day
from yizhan.daemon.context import Context
from yizhan.daemon.jobs.it_notices import run_it_alerts, run_it_digest
from yizhan.daemon.processor import Processor
from yizhan.mailstore import pending
from yizhan.mailstore.models import Inbound, OutboundMessage
from yizhan.routing.calendar import WorkCalendar

pytest_plugins = ["tests.daemon.test_flows"]

IT_HEAD, AUTHOR, HEAD, OUTSIDER = "wuhaifeng", "xiewenbin", "liangguoqiang", "hanxue"


def claim_another(d: Daemon, account: str, claimed: str) -> None:
    """``account``, logged in, claims to send as ``claimed``: refused at MAIL FROM."""
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as client:
        client.login(account, PASSWORD)
        code, _ = client.mail(claimed)
        assert code == 550


def test_impersonation_is_told_at_once_and_then_at_most_hourly_with_counts(
    daemon: Daemon,
) -> None:
    # An SMTP impersonation reaches IT at once; a reply in another's name right after it,
    # and another SMTP one, are not more mails within the hour; after the hour one mail
    # counts the two that came since.
    now = dt.datetime.now(dt.UTC)
    claim_another(daemon, OUTSIDER, "lijun@bureau.example")
    alert = one(daemon, IT_HEAD)
    assert run_it_alerts(daemon.ctx, now) == 0  # told once
    assert "hanxue" in text(alert) and "lijun@bureau.example" in text(alert)
    assert ": 1" in str(alert["Subject"])

    daemon.send(AUTHOR, "qianbao@oa.example", "請示", "內容")
    one(daemon, AUTHOR)
    ask = one(daemon, HEAD)
    reply(daemon, OUTSIDER, ask, "同意")
    assert "未受理" in text(one(daemon, OUTSIDER))
    claim_another(daemon, OUTSIDER, "zhaojianguo@bureau.example")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30)
    assert run_it_alerts(daemon.ctx, later) == 0  # within the hour of the last mail
    with pytest.raises(AssertionError):
        daemon.inbox(IT_HEAD, timeout=3)  # and the reply sent no mail of its own either

    after_hour = now + dt.timedelta(minutes=61)
    assert run_it_alerts(daemon.ctx, after_hour) == 1
    deliver(daemon)
    counted = one(daemon, IT_HEAD)
    assert ": 2" in str(counted["Subject"])
    assert "liangguoqiang" in text(counted) and "zhaojianguo@bureau.example" in text(counted)


def test_a_virus_is_told_at_once_and_a_second_one_counted_after_the_hour(
    daemon: Daemon, clamd_socket: str, content_files: type[Files]
) -> None:
    scan_with(daemon, clamd_socket)
    for _ in range(2):
        with pytest.raises(smtplib.SMTPDataError) as refused:
            daemon.send(
                OUTSIDER,
                "qianbao@oa.example",
                "資料",
                "見附件。",
                files={"a.txt": content_files.eicar},
            )
        assert refused.value.smtp_code == 550
    got = daemon.inbox(IT_HEAD, timeout=20)
    assert len(got) == 1 and "virus" in text(got[0])  # the first at once, the second not
    with pytest.raises(AssertionError):
        daemon.inbox(IT_HEAD, timeout=3)
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    assert run_it_alerts(daemon.ctx, soon) == 0
    assert run_it_alerts(daemon.ctx, soon + dt.timedelta(hours=1)) == 1
    deliver(daemon)
    counted = one(daemon, IT_HEAD)
    assert ": 1" in str(counted["Subject"]) and "hanxue" in text(counted)


def test_lockouts_come_in_one_digest_a_working_day(daemon: Daemon) -> None:
    # Two accounts locked by wrong passwords: nothing at once; the next working day's digest
    # at 08:30 names both, once; a day with nothing new sends nothing.
    for account in ("wangfang", "songjia"):
        with smtplib.SMTP("127.0.0.1", daemon.port, timeout=30) as client:
            for _ in range(5):
                with pytest.raises(smtplib.SMTPAuthenticationError):
                    client.login(account, "guess-guess-1")
    assert run_it_alerts(daemon.ctx, dt.datetime.now(dt.UTC)) == 0  # not an immediate kind
    tz = daemon.ctx.config.tzinfo
    day = working_day(daemon, dt.datetime.now(tz).date(), 1)
    at = dt.datetime.combine(day, dt.time(8, 45), tzinfo=tz)
    assert run_it_digest(daemon.ctx, at) == 1
    assert run_it_digest(daemon.ctx, at + dt.timedelta(hours=2)) == 0
    deliver(daemon)
    digest = one(daemon, IT_HEAD)
    body = text(digest)
    assert "wangfang" in body and "songjia" in body
    assert ": 2" in str(digest["Subject"])
    following = working_day(daemon, day, 1)
    calendar = WorkCalendar(tz=tz)
    assert calendar.is_working_day(following)
    assert run_it_digest(daemon.ctx, dt.datetime.combine(following, dt.time(9), tzinfo=tz)) == 0


def test_a_message_set_aside_is_in_the_next_digest(bureau: Context) -> None:
    # A message whose processing keeps failing (its stored bytes unreadable) is set aside; the
    # next working day's digest tells IT, with its inbound id and the reason.
    inbound_id = _accept(bureau)

    def unreadable(relative: str) -> bytes:
        raise OSError(f"{relative}: input/output error")

    bureau.raw.read = unreadable  # type: ignore[method-assign]
    processor = Processor(bureau)
    for _ in range(pending.MAX_ATTEMPTS):
        processor.process_batch()
        with bureau.sessions.begin() as session:
            session.get(Inbound, inbound_id).lease_until = None  # type: ignore[union-attr]
    tz = bureau.config.tzinfo
    calendar = WorkCalendar(tz=tz)
    day = calendar.next_working_day(dt.datetime.now(tz).date())
    assert run_it_digest(bureau, dt.datetime.combine(day, dt.time(8, 30), tzinfo=tz)) == 1
    with bureau.sessions() as session:
        rows = session.scalars(
            select(OutboundMessage).where(OutboundMessage.source.startswith("it-notice:"))
        ).all()
    (digest,) = [email.message_from_bytes(r.data, policy=default) for r in rows]
    body = "\n".join(
        str(p.get_content()) for p in digest.walk() if p.get_content_type() == "text/plain"
    )
    assert f"#{inbound_id}" in body and "input/output error" in body
    assert "wuhaifeng@" in str(digest["To"])
