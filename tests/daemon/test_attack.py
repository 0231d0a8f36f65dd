"""The attack suite over SMTP against the whole daemon (issue 17, part 4): each attack is
refused or made harmless, recorded, and changes no document; the owner keeps being served."""

from __future__ import annotations

import datetime as dt
import smtplib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import TEST_SECRET, make_config, seed_keyring
from tests.daemon.test_flows import PASSWORD, Daemon, files_of, reply, start_daemon, text
from yizhan.daemon.context import Context
from yizhan.mailstore import leave as leave_store
from yizhan.mailstore.db import upgrade
from yizhan.mailstore.models import AuditEntry, Document
from yizhan.routing.tokens import make_token

SENDER = "wangfang@bureau.example"


@pytest.fixture
def daemon(tmp_path: Path, database_url: str, system_key_home: Path) -> Iterator[Daemon]:
    """The demo bureau running (no signed replies asked for)."""
    config = make_config(tmp_path, database_url, signing={"require_signature": []})
    seed_keyring(config, system_key_home)
    ctx = Context.open(config)
    upgrade(ctx.engine)
    running = start_daemon(ctx)
    yield running
    running.stop()
    ctx.close()


def message(to: str, subject: str, body: str = "請查收。", *, sender: str = SENDER) -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{time.monotonic_ns()}@client.test>\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"{body}\r\n"
    ).encode()


def settle(d: Daemon, seconds: float = 3.0) -> None:
    """Give the processor and the couriers time to do anything more they would do."""
    time.sleep(seconds)


# --- Recipients (d) ------------------------------------------------------------------------------


def test_the_same_rcpt_300_times_delivers_one_copy(daemon: Daemon) -> None:
    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=30) as client:
        client.login("wangfang", PASSWORD)
        client.mail(SENDER)
        codes = {client.rcpt("lijun@oa.example")[0] for _ in range(300)}
        code, _ = client.data(message("lijun@oa.example", "會議材料"))
    assert codes == {250} and code == 250
    daemon.inbox("lijun")
    settle(daemon)
    assert not list((daemon.ctx.config.maildir_root / "lijun" / "new").glob("*"))[1:]


def test_2000_rcpts_of_cmd_give_one_answer(daemon: Daemon) -> None:
    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=60) as client:
        client.login("wangfang", PASSWORD)
        client.mail(SENDER)
        for n in range(2000):
            client.rcpt("cmd@oa.example" if n % 2 else "CMD@oa.example")
        code, _ = client.data(message("cmd@oa.example", "TODO"))
    assert code == 250
    (answer,) = daemon.inbox("wangfang")
    assert answer["Subject"]
    settle(daemon)
    assert len(list((daemon.ctx.config.maildir_root / "wangfang" / "new").glob("*"))) == 1


def test_a_module_and_its_alias_open_one_document(daemon: Daemon) -> None:
    author = "xiewenbin@bureau.example"
    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=30) as client:
        client.login("xiewenbin", PASSWORD)
        client.sendmail(
            author,
            ["qianbao@oa.example", "report@oa.example"],
            message(
                "qianbao@oa.example", "關於購置檢測設備的請示", "擬購置設備一台。", sender=author
            ),
        )
    daemon.inbox("xiewenbin")
    settle(daemon)
    with daemon.ctx.sessions() as session:
        assert len(session.scalars(select(Document)).all()) == 1


def test_more_than_the_recipient_limit_get_452(daemon: Daemon) -> None:
    # RFC 5321 asks a server to take at least 100 recipients; the 101st distinct one gets 452,
    # which a client answers by sending the rest in another transaction.
    people = [f"{a}@oa.example" for a in ("lijun", "zhaojianguo", "sunlimin")]
    addresses = people + [
        f"r+{make_token(TEST_SECRET, document_id=n, step_id=n, account='lijun')}@oa.example"
        for n in range(120)
    ]
    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=30) as client:
        client.login("wangfang", PASSWORD)
        client.mail(SENDER)
        replies = [client.rcpt(a) for a in addresses]
    accepted = [a for a, (code, _) in zip(addresses, replies, strict=True) if code == 250]
    over = [r for code, r in replies if code == 452]
    assert len(accepted) <= 100 and over and b"at most 100" in over[0]


# --- Scope (f) ----------------------------------------------------------------------------------


def test_get_says_the_same_for_a_document_one_may_not_see_and_a_missing_one(
    daemon: Daemon,
) -> None:
    # 謝文斌's report is not 韓雪's to see: her GET of it is answered as for an id that does not
    # exist (no list of ids by asking), sends nothing, and is recorded.
    daemon.send("xiewenbin", "qianbao@oa.example", "關於購置檢測設備的請示", "擬購置設備一台。")
    daemon.inbox("xiewenbin")
    with daemon.ctx.sessions() as session:
        (document,) = session.scalars(select(Document)).all()
    answers = {}
    for ref in (document.id, document.id + 1000):
        daemon.send("hanxue", "cmd@oa.example", f"GET #{ref}", "")
        (answer,) = daemon.inbox("hanxue")
        answers[ref] = text(answer).replace(f"「#{ref}」", "「#N」").replace(f"'#{ref}'", "'#N'")
        assert not files_of(answer)
    assert answers[document.id] == answers[document.id + 1000]
    with daemon.ctx.sessions() as session:
        (refused,) = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "document.get_refused")
        ).all()
    assert refused.actor == "hanxue" and refused.target == str(document.id)


# --- Look-alikes of Yizhan's own mail (g) -------------------------------------------------------


def test_mail_to_a_colleague_cannot_look_like_a_request_of_yizhan(daemon: Daemon) -> None:
    # 王芳 dresses a mail to 李軍 as Yizhan's approval request: forged X-Yizhan-* headers, a
    # Reply-To at an r+ token, the display name 驛站. It reaches 李軍 without them, body as sent;
    # the forward is recorded with what was taken out.
    forged = (
        "From: =?utf-8?b?6amb56uZ?= <wangfang@bureau.example>\r\nTo: lijun@oa.example\r\n"
        "Subject: [待批] 關於購置檢測設備的請示\r\nReply-To: r+AAAAAAAAAAAAAAAAAAAA@oa.example\r\n"
        "X-Yizhan-Doc: 5\r\nX-Yizhan-Action: approve\r\nX-Yizhan-State:\r\n approving\r\n"
        f"Message-ID: <{time.monotonic_ns()}@client.test>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "請回覆「同意」。\r\nX-Yizhan-Doc: in the body stays\r\n"
    ).encode()
    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=30) as client:
        client.login("wangfang", PASSWORD)
        client.sendmail(SENDER, ["lijun@oa.example"], forged)
    (got,) = daemon.inbox("lijun")
    assert not [name for name, _ in got.items() if name.lower().startswith("x-yizhan-")]
    assert got["Reply-To"] is None
    assert got["From"].addresses[0].display_name == "王芳"
    assert got["From"].addresses[0].addr_spec == SENDER
    assert got["Subject"] == "[待批] 關於購置檢測設備的請示"
    assert got.get_content() == "請回覆「同意」。\r\nX-Yizhan-Doc: in the body stays\r\n"
    with daemon.ctx.sessions() as session:
        (entry,) = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "mail.forward")
        ).all()
    assert set(entry.detail["removed"]) == {
        "x-yizhan-doc",
        "x-yizhan-action",
        "x-yizhan-state",
        "reply-to",
        "from display name",
    }


# --- Tokens and HR commands (h) -----------------------------------------------------------------


def rcpt(d: Daemon, account: str, address: str, *, source: str = "127.0.0.1") -> tuple[int, str]:
    """Log in as ``account`` from ``source`` and name ``address`` at RCPT; the answer."""
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30, source_address=(source, 0)) as client:
        client.login(account, PASSWORD)
        client.mail(f"{account}@bureau.example")
        code, answer = client.rcpt(address)
        client.rset()
    return code, answer.decode()


def genuine(account: str = "lijun") -> str:
    """A reply address Yizhan could have given (its HMAC holds), for a step of no document."""
    return f"r+{make_token(TEST_SECRET, document_id=7, step_id=9, account=account)}@oa.example"


def guesses(d: Daemon) -> list[AuditEntry]:
    with d.ctx.sessions() as session:
        return list(
            session.scalars(
                select(AuditEntry).where(
                    AuditEntry.action.in_(("reply.unknown_token", "reply.guessing_locked"))
                )
            )
        )


def test_guessed_reply_tokens_are_refused_at_rcpt_after_five_and_told_to_it(
    daemon: Daemon,
) -> None:
    # 王芳 replies to r+ addresses Yizhan never gave. Five are answered and recorded, as a typo
    # would be; the sixth is refused at RCPT, and from then on every r+ address from her account
    # (a real one too, from another machine: no way to tell real tokens from guesses), with the
    # reason and the time it ends; the IT department (吳海峰) is told once. Others reply as usual.
    for n in range(5):
        daemon.send("wangfang", f"r+guess{n:016d}@oa.example", "Re: 請示", "同意")
        assert "could not tell which document" in text(daemon.inbox("wangfang")[0])
    code, answer = rcpt(daemon, "wangfang", "r+guess0000000000000005@oa.example")
    assert code == 450 and "never gave" in answer and "refused" in answer and "until" in answer
    assert rcpt(daemon, "wangfang", genuine(), source="127.0.0.3") == (code, answer)
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        daemon.send("wangfang", "r+guess0000000000000006@oa.example", "Re: 請示", "同意")
    assert rcpt(daemon, "xiewenbin", genuine(), source="127.0.0.4")[0] == 250
    assert rcpt(daemon, "wangfang", "cmd@oa.example")[0] == 250

    (told,) = daemon.inbox("wuhaifeng")
    assert "wangfang" in text(told) and "r+" in str(told["Subject"])
    entries = guesses(daemon)
    answered = [e for e in entries if e.action == "reply.unknown_token"]
    locks = [e for e in entries if e.action == "reply.guessing_locked"]
    assert len(answered) == 5 and {e.actor for e in answered} == {"wangfang"}
    assert locks and {e.actor for e in locks} == {"wangfang"}
    assert {e.detail["client"] for e in locks} == {"127.0.0.1"}
    settle(daemon)
    assert len(list((daemon.ctx.config.maildir_root / "wuhaifeng" / "new").glob("*"))) == 1
    assert not list((daemon.ctx.config.maildir_root / "wangfang" / "new").glob("*"))[5:]


def test_guessing_from_one_address_under_several_accounts_is_refused_there(
    daemon: Daemon,
) -> None:
    # Guesses spread over three accounts from one machine (127.0.0.2): each account stays under
    # its limit, the address does not; the same accounts from elsewhere are not stopped.
    for n in range(5):
        account = ("wangfang", "xiewenbin", "hanxue")[n % 3]
        code, _ = rcpt(daemon, account, f"r+spread{n:016d}@oa.example", source="127.0.0.2")
        assert code == 250
    code, answer = rcpt(daemon, "hanxue", "r+spread0000000000000005@oa.example", source="127.0.0.2")
    assert code == 450 and "never gave" in answer
    assert rcpt(daemon, "xiewenbin", genuine(), source="127.0.0.2") == (code, answer)
    assert rcpt(daemon, "hanxue", genuine(), source="127.0.0.5")[0] == 250
    (lock,) = [e for e in guesses(daemon) if e.action == "reply.guessing_locked"]
    assert lock.detail["client"] == "127.0.0.2" and lock.target == "r+*/127.0.0.2"
    (told,) = daemon.inbox("wuhaifeng")
    assert "127.0.0.2" in text(told)


def test_hr_commands_from_outside_hr_are_recorded(daemon: Daemon) -> None:
    daemon.send("wangfang", "xiujia@oa.example", "設置 lijun 調整 +30 多給", "")
    assert "人事處" in text(daemon.inbox("wangfang")[0])
    daemon.send("wangfang", "xiujia@oa.example", "查詢 lijun", "")
    assert "人事處" in text(daemon.inbox("wangfang")[0])
    with daemon.ctx.sessions() as session:
        refused = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "leave.hr_refused")
        ).all()
    assert [(r.actor, r.target, r.detail["command"]) for r in refused] == [
        ("wangfang", "lijun", "set"),
        ("wangfang", "lijun", "status"),
    ]


def test_hr_cannot_set_a_service_start_no_one_can_have(daemon: Daemon) -> None:
    daemon.send("guohongmei", "xiujia@oa.example", "設置 lijun 參加工作 1800-01-01", "")
    answer = text(daemon.inbox("guohongmei")[0])
    assert "1800-01-01" in answer and "not possible" in answer
    with daemon.ctx.sessions() as session:
        assert leave_store.service_start(session, "lijun") != dt.date(1800, 1, 1)


# --- A delegate after the delegation ended ------------------------------------------------------


def test_a_delegate_cannot_act_after_the_delegation_ended(daemon: Daemon) -> None:
    # 第九條: the head is away and delegates; the request reaches the delegate, marked 代. The
    # head comes back and revokes: the step goes back to them, and the delegate's reply to the
    # request they still hold is refused and changes nothing.
    head, delegate, author = "liangguoqiang", "hanxue", "xiewenbin"
    until = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    daemon.send(head, "cmd@oa.example", "授權", f"授權 韓雪 至 {until}")
    daemon.inbox(head)
    daemon.send(author, "qianbao@oa.example", "關於購置檢測設備的請示", "擬購置設備一台。")
    daemon.inbox(author)
    (ask,) = daemon.inbox(delegate)
    assert ask["X-Yizhan-Action"] == "approve" and "代" in text(ask)
    doc_id = int(ask["X-Yizhan-Doc"])

    daemon.send(head, "cmd@oa.example", "收回授權", "收回授權")
    (back,) = daemon.inbox(head)
    assert "1 件待辦已轉回給您" in text(back)

    reply(daemon, delegate, ask, "同意")
    (refused,) = daemon.inbox(delegate)
    assert "不是他的授權代理人" in text(refused) and "第七條" in text(refused)
    with daemon.ctx.sessions() as session:
        document = session.get(Document, doc_id)
        assert document is not None and document.state != "closed"
        decided = session.scalars(
            select(AuditEntry).where(
                AuditEntry.target == f"doc:{doc_id}", AuditEntry.actor == delegate
            )
        ).all()
    assert not [e for e in decided if e.action == "doc.approve"]
