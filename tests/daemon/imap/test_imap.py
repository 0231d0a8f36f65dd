"""IMAP end to end: staff log in to Yizhan's own Dovecot with their Yizhan accounts, and their
folders are their to-do list (DESIGN.md, "Contract for the next capabilities"; issue 13).

One daemon (with its Dovecot) serves the whole module; each test uses its own people.
"""

from __future__ import annotations

import imaplib
import smtplib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.daemon.imap.conftest import Held, folder, imap_daemon, login, wait_until
from tests.daemon.test_flows import PASSWORD, Daemon, reply
from yizhan.daemon.imap.dovecot import layout_for, passdb_secret
from yizhan.daemon.imap.folders import BULLETINS, DONE, TODO
from yizhan.mailstore import accounts
from yizhan.mailstore.models import Account, ImapFiling, LoginFailure


@pytest.fixture(scope="module")
def daemon(system_key_home: Path) -> Iterator[Daemon]:
    with imap_daemon(system_key_home, admin={"public_url": "https://oa.bureau.example"}) as d:
        yield d


def account_row(daemon: Daemon, account: str) -> Account:
    with daemon.ctx.sessions() as session:
        return accounts.get_account(session, account)


def test_staff_log_in_with_their_yizhan_account_and_see_the_oa_folders(daemon: Daemon) -> None:
    # A newcomer points Thunderbird at Yizhan: the login is their Yizhan account, and the
    # OA folders are there and subscribed, named with "/" as the separator.
    assert account_row(daemon, "gaofeng").last_login_at is None
    client = login(daemon, "gaofeng")
    try:
        kind, listed = client.list()
        assert kind == "OK"
        lines = [line.decode() for line in listed if isinstance(line, bytes)]
        assert '(\\HasNoChildren) "/" &UWxlhw-/&X4WPpg-' in lines  # 公文/待辦
        kind, subscribed = client.lsub()
        names = {line.decode().rsplit(" ", 1)[1] for line in subscribed if isinstance(line, bytes)}
        assert {"&UWxlhw-/&X4WPpg-", "&UWxlhw-/&XfKPpg-", "&UWxlhw-/&UWxUSg-"} <= names
    finally:
        client.logout()
    # The IMAP login is the person's last login, as an SMTP login is.
    assert account_row(daemon, "gaofeng").last_login_at is not None


def test_five_wrong_imap_passwords_lock_smtp_auth_too(daemon: Daemon) -> None:
    # One account, one policy: failures over IMAP count towards the lockout of SMTP AUTH from
    # the same address (Dovecot passes the client's address along).
    for _ in range(5):
        with pytest.raises(imaplib.IMAP4.error):
            login(daemon, "pengliang", "not-the-password")
    with daemon.ctx.sessions() as session:
        lock = session.get(LoginFailure, ("pengliang", "127.0.0.1"))
        assert lock is not None and lock.locked_until is not None
    with (
        smtplib.SMTP("127.0.0.1", daemon.port, timeout=30) as client,
        pytest.raises(smtplib.SMTPAuthenticationError) as refused,
    ):
        client.login("pengliang", PASSWORD)
    assert b"locked" in refused.value.smtp_error
    # Even the right password opens IMAP no more while locked.
    with pytest.raises(imaplib.IMAP4.error, match="locked"):
        login(daemon, "pengliang")


def test_a_suspended_account_cannot_log_in_to_imap(daemon: Daemon) -> None:
    # Suspension applies at once: the very next IMAP login is refused, saying why.
    login(daemon, "dupeng").logout()
    with daemon.ctx.sessions.begin() as session:
        accounts.set_state(session, "dupeng", "suspended", actor="test", now=daemon.ctx.clock())
    with pytest.raises(imaplib.IMAP4.error, match="suspended"):
        login(daemon, "dupeng")


def test_a_temporary_password_is_refused_with_where_to_change_it(daemon: Daemon) -> None:
    # An initial password must be changed first; the refusal says where (the admin page).
    with daemon.ctx.sessions.begin() as session:
        accounts.set_password(
            session,
            "dongchao",
            "Temporary-2026",
            temporary=True,
            actor="test",
            now=daemon.ctx.clock(),
            policy=daemon.ctx.login_policy,
        )
    with pytest.raises(imaplib.IMAP4.error) as refused:
        login(daemon, "dongchao", "Temporary-2026")
    assert "https://oa.bureau.example/account/password" in str(refused.value)


def test_a_request_waits_in_todo_and_moves_to_done_when_approved(daemon: Daemon) -> None:
    # 內部簽報: the unit head finds the request in 公文/待辦; after APPROVE (a reply over
    # SMTP) it is in 公文/已辦, marked seen, and the bureau leader's request in theirs.
    author, head, leader = "xiewenbin", "liangguoqiang", "sunlimin"
    title = "關於購置冷藏設備的請示"
    daemon.send(author, "qianbao@oa.example", title, "擬購置冷藏設備。")

    def requests(account: str, name: str) -> list[Held]:
        return [m for m in folder(daemon, account, name) if title in m.mail["Subject"]]

    (ask,) = wait_until(lambda: requests(head, TODO), what="the head's request")
    assert ask.mail["X-Yizhan-Action"] == "approve"
    assert "\\Seen" not in ask.flags
    # The author's confirmation asks nothing of them: it is in their INBOX.
    confirmations = wait_until(lambda: folder(daemon, author, "INBOX"), what="confirmation")
    assert all(m.mail["X-Yizhan-Action"] in (None, "none") for m in confirmations)

    reply(daemon, head, ask.mail, "同意")
    (done,) = wait_until(lambda: requests(head, DONE), what="the request in 已辦")
    assert done.mail["Message-ID"] == ask.mail["Message-ID"]
    assert "\\Seen" in done.flags
    assert requests(head, TODO) == []
    (next_ask,) = wait_until(lambda: requests(leader, TODO), what="the leader's request")
    assert next_ask.mail["X-Yizhan-Doc"] == ask.mail["X-Yizhan-Doc"]


def test_a_published_bulletin_is_in_every_readers_bulletin_folder(daemon: Daemon) -> None:
    # 第二十三條: once the unit head approves, the bulletin (List-Id) is filed in 公文/公告.
    author, head = "hanxue", "liangguoqiang"
    daemon.send(author, "gonggao@oa.example", "消防演練通知", "範圍：衛生檢疫處\n\n週五演練。")
    ask = wait_until(
        lambda: [m for m in folder(daemon, head, TODO) if m.mail["X-Yizhan-Kind"] == "gonggao"],
        what="the bulletin's approval request",
    )[0]
    reply(daemon, head, ask.mail, "同意")
    (bulletin,) = wait_until(lambda: folder(daemon, "xuna", BULLETINS), what="the bulletin")
    assert bulletin.mail["List-Id"] == "公告板 <gonggao.oa.example>"
    assert bulletin.mail["Subject"].endswith("消防演練通知")


def test_filing_as_master_user_is_not_a_login_of_the_person(daemon: Daemon) -> None:
    # Yizhan's own filing logs in as a master user: it counts neither as the person's login
    # nor as a failed one. tianlu never logs in until the mail is filed.
    daemon.send("wangfang", "tianlu@oa.example", "會議材料", "請查收。")

    def filed() -> list[ImapFiling]:
        with daemon.ctx.sessions() as session:
            return list(session.scalars(select(ImapFiling).where(ImapFiling.account == "tianlu")))

    (filing,) = wait_until(filed, what="the filing")
    assert filing.folder == "INBOX"
    row = account_row(daemon, "tianlu")
    assert row.last_login_at is None and row.failed_logins == 0
    (mail,) = folder(daemon, "tianlu", "INBOX")
    assert mail.mail["Subject"] == "會議材料"
    assert mail.uid == filing.uid


def test_only_dovecot_may_ask_the_login_endpoint(daemon: Daemon) -> None:
    # The endpoint answers Dovecot's lua passdb only: without its secret (which only the
    # lua file, readable by Dovecot's user, holds) a request is refused and counts nothing.
    port = admin_port(daemon)
    body = urllib.parse.urlencode({"account": "zhengwei", "password": "guess"}).encode()
    for headers in ({}, {"X-Yizhan-Dovecot": "not-the-secret"}):
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/internal/dovecot/verify", data=body, headers=headers
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 403
    assert account_row(daemon, "zhengwei").failed_logins == 0
    # With the secret, a wrong password is a failure like any other.
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/internal/dovecot/verify",
        data=body,
        headers={"X-Yizhan-Dovecot": passdb_secret(daemon.ctx.config)},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.read().startswith(b"fail\t")
    assert account_row(daemon, "zhengwei").failed_logins == 1


def admin_port(daemon: Daemon) -> int:
    """The admin page's port, as the daemon's Dovecot was told it."""
    lua = layout_for(daemon.ctx.config).lua_file.read_text(encoding="utf-8")
    return int(lua.split('local url = "http://127.0.0.1:', 1)[1].split("/", 1)[0])
