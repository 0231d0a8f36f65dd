"""Tests for daemon.gateway (the gateway, over real SMTP on loopback), and for the parts it is built
from: mailstore.inbound (durable group commit) and daemon.tls (the certificate).

Each test starts the gateway in an event loop of its own thread and talks to it with smtplib,
as a mail client would. Stored messages are checked through a separate database engine, so a
row counts only if it was committed.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import os
import smtplib
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cryptography import x509
from sqlalchemy import select
from starlette.testclient import TestClient

from tests.admin.conftest import csrf_of
from tests.admin.conftest import login as admin_login
from yizhan.admin.app import create_app
from yizhan.daemon.config import HostPort
from yizhan.daemon.context import Context
from yizhan.daemon.gateway.senders import (
    address_belongs,
    auth_allowed,
    parse_auth_results,
    parse_headers,
    relay_identity,
)
from yizhan.daemon.gateway.server import SmtpServer, start_smtp
from yizhan.daemon.gateway.tls import ensure_certificate, server_context
from yizhan.mailstore import accounts
from yizhan.mailstore.db import SNAPSHOT, make_engine, make_sessionmaker
from yizhan.mailstore.directory import load_directory, save_person
from yizhan.mailstore.inbound import InboundWriter, StoreFailed, message_id_of
from yizhan.mailstore.models import Account, AuditEntry, Inbound

T = TypeVar("T")

PASSWORD = "Qingshui-River-88"
OTHER_PASSWORD = "Baiyun-Mountain-66"
DOMAIN = "oa.example"


# --- Fixtures -------------------------------------------------------------------------------------


@dataclasses.dataclass
class Running:
    """A gateway serving in a thread of its own."""

    ctx: Context
    server: SmtpServer
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    host: str = "127.0.0.1"

    @property
    def port(self) -> int:
        return self.server.port

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=20)

    def client(self, host: str | None = None) -> smtplib.SMTP:
        client = smtplib.SMTP(
            host or self.host, self.port, local_hostname="client.test", timeout=20
        )
        client.ehlo()
        return client

    def login(self, account: str = "wangfang", password: str = PASSWORD) -> smtplib.SMTP:
        client = self.client()
        client.login(account, password)
        return client

    def stop(self) -> None:
        async def close() -> None:
            self.server.close()
            await self.server.wait_closed()

        self.call(close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def start_gateway(bureau: Context) -> Iterator[Callable[..., Running]]:
    """Start a gateway for the demo bureau (wangfang and lijun have final passwords); keyword
    arguments override keys of the [smtp] config. The content rules apply as built in, but
    without clamd: virus scanning is tested with the content rules (tests/daemon/test_content)."""
    bureau.config.rules_file.parent.mkdir(parents=True, exist_ok=True)
    bureau.config.rules_file.write_text("[content.scanner]\nenabled = false\n", encoding="utf-8")
    with bureau.sessions.begin() as session:
        for account in ("wangfang", "lijun"):
            accounts.set_password(
                session,
                account,
                PASSWORD,
                temporary=False,
                actor="test",
                now=bureau.clock(),
                policy=bureau.login_policy,
            )
    running: list[Running] = []

    def start(**smtp: Any) -> Running:
        config = bureau.config
        config = dataclasses.replace(config, smtp=dataclasses.replace(config.smtp, **smtp))
        ctx = dataclasses.replace(bureau, config=config)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="smtp-test-loop", daemon=True)
        thread.start()
        server = asyncio.run_coroutine_threadsafe(start_smtp(ctx), loop).result(20)
        host = (
            "127.0.0.1" if config.smtp.listen.host in ("0.0.0.0", "") else config.smtp.listen.host
        )
        gateway = Running(ctx=ctx, server=server, loop=loop, thread=thread, host=host)
        running.append(gateway)
        return gateway

    yield start
    for gateway in running:
        gateway.stop()


@pytest.fixture
def gateway(start_gateway: Callable[..., Running]) -> Running:
    """A gateway with the default config."""
    return start_gateway()


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate and key."""
    cert, key = tmp_path / "tls" / "cert.pem", tmp_path / "tls" / "key.pem"
    ensure_certificate(cert, key, "oa.example")
    return cert, key


# --- Helpers --------------------------------------------------------------------------------------


def message(
    *,
    sender: str = "wangfang@oa.example",
    to: str = "fawen@oa.example",
    subject: str = "Test",
    body: str = "Hello.",
    extra: str = "",
) -> bytes:
    """A small message with CRLF line ends, as it arrives after DATA."""
    text = (
        f"{extra}From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{time.monotonic_ns()}@client.test>\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    return text.encode("utf-8")


def send(
    client: smtplib.SMTP,
    data: bytes,
    *,
    mail_from: str = "wangfang@oa.example",
    rcpts: tuple[str, ...] = ("fawen@oa.example",),
    options: tuple[str, ...] = (),
) -> tuple[int, str]:
    """Run one transaction step by step; return the first refusal or the DATA reply."""
    code, reply = client.mail(mail_from, list(options))
    if code != 250:
        client.rset()
        return code, reply.decode()
    for rcpt in rcpts:
        code, reply = client.rcpt(rcpt)
        if code != 250:
            client.rset()
            return code, reply.decode()
    code, reply = client.data(data)
    return code, reply.decode()


def queued_key(reply: str) -> str:
    """The key in a 250 reply: the name of the message's raw file until it has a row."""
    return reply.rsplit(" ", 1)[1]


def committed_inbound(ctx: Context, key: str | int, wait: float = 10) -> Inbound | None:
    """The inbound row of a 250'd message (by its key) or of a row id, as a fresh connection
    sees it: only committed data; the pickup makes the row a moment after the 250."""
    engine = make_engine(ctx.config.database_url)
    deadline = time.monotonic() + wait
    try:
        # A reader's snapshot: on SQLite it does not wait for a writer.
        with make_sessionmaker(engine.execution_options(**{SNAPSHOT: True}))() as session:
            while True:
                if isinstance(key, int):
                    row = session.get(Inbound, key)
                else:
                    row = session.scalars(
                        select(Inbound).where(Inbound.path.endswith(f"/{key}.eml"))
                    ).first()
                if row is not None or time.monotonic() > deadline:
                    return row
                session.rollback()
                time.sleep(0.05)
    finally:
        engine.dispose()


def audit_rows(ctx: Context, action: str) -> list[AuditEntry]:
    with ctx.sessions() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def settle(ctx: Context) -> None:
    """Wait until every 250'd message has its inbound row: the pickup removes a spool file
    once its rows are committed."""
    incoming = ctx.config.data_dir / "spool" / "incoming"
    deadline = time.monotonic() + 20
    while any(incoming.glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.05)


def inbound_count(ctx: Context) -> int:
    settle(ctx)
    with ctx.sessions() as session:
        return len(list(session.scalars(select(Inbound.id))))


def plain(login: str, password: str) -> str:
    return base64.b64encode(f"\0{login}\0{password}".encode()).decode()


def local_address() -> str | None:
    """A non-loopback address of this host, if it has one."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))
        address: str = probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") else address


# --- Hooks ----------------------------------------------------------------------------------------


def test_each_registered_hook_runs(gateway: Running) -> None:
    # STYLE "avoid 3": hooks are registered explicitly; a misnamed one must not go unnoticed,
    # so every registered hook is seen to run in one ordinary transaction.
    handler = gateway.server.gateway
    assert set(handler.hooks()) == {"MAIL", "RCPT", "DATA"}
    assert not [n for n in dir(handler) if n.startswith(("handle_", "auth_"))]
    calls: list[str] = []
    for name, attribute in (("MAIL", "on_mail"), ("RCPT", "on_rcpt"), ("DATA", "on_data")):
        original = getattr(handler, attribute)

        async def spy(*args: Any, _name: str = name, _original: Any = original) -> str:
            calls.append(_name)
            result: str = await _original(*args)
            return result

        setattr(handler, attribute, spy)
    client = gateway.login()
    code, _reply = send(client, message())
    client.quit()
    assert code == 250
    assert calls == ["MAIL", "RCPT", "DATA"]


# --- AUTH -----------------------------------------------------------------------------------------


def test_auth_plain_succeeds(gateway: Running) -> None:
    # A client on loopback logs in with AUTH PLAIN without TLS.
    client = gateway.client()
    assert "PLAIN" in client.esmtp_features["auth"].split()
    code, reply = client.docmd("AUTH", "PLAIN " + plain("wangfang", PASSWORD))
    client.quit()
    assert (code, reply) == (235, b"2.7.0 Authentication successful")


def test_auth_login_succeeds_with_the_full_address(gateway: Running) -> None:
    # AUTH LOGIN, with the user name given as the person's own mailbox (as Thunderbird does).
    client = gateway.client()
    code, challenge = client.docmd("AUTH", "LOGIN")
    assert (code, base64.b64decode(challenge)) == (334, b"Username:")
    code, challenge = client.docmd(base64.b64encode(b"WangFang@bureau.example").decode())
    assert (code, base64.b64decode(challenge)) == (334, b"Password:")
    code, reply = client.docmd(base64.b64encode(PASSWORD.encode()).decode())
    client.quit()
    assert code == 235, reply


def test_auth_wrong_password_is_535(gateway: Running) -> None:
    # A wrong password is refused with 535 and counted.
    client = gateway.client()
    code, reply = client.docmd("AUTH", "PLAIN " + plain("wangfang", "not-the-password"))
    client.quit()
    assert code == 535
    assert b"wrong password" in reply
    with gateway.ctx.sessions() as session:
        assert accounts.get_account(session, "wangfang").failed_logins == 1


def auth(gateway: Running, account: str, password: str) -> tuple[int, bytes]:
    """One AUTH PLAIN on a connection of its own, as a mail client that logs in per message."""
    client = gateway.client()
    try:
        return client.docmd("AUTH", "PLAIN " + plain(account, password))
    finally:
        client.quit()


def test_a_wrong_password_is_refused_after_a_remembered_login(gateway: Running) -> None:
    # The gateway remembers a verified password for a while to spare argon2 (issue 16); a
    # wrong one given after it is still refused and counted.
    assert auth(gateway, "wangfang", PASSWORD)[0] == 235
    assert auth(gateway, "wangfang", PASSWORD)[0] == 235
    code, reply = auth(gateway, "wangfang", PASSWORD + "x")
    assert code == 535 and b"wrong password" in reply
    with gateway.ctx.sessions() as session:
        assert accounts.get_account(session, "wangfang").failed_logins == 1


def test_a_password_changed_on_the_admin_page_counts_at_the_next_auth(gateway: Running) -> None:
    # 王芳's mail client logged in a moment ago; she changes her password on the admin page
    # (served by the same daemon): her client's next login with the old one is refused.
    assert auth(gateway, "wangfang", PASSWORD)[0] == 235
    with TestClient(create_app(gateway.ctx), base_url="http://127.0.0.1") as admin:
        assert admin_login(admin, "wangfang", PASSWORD).status_code == 303
        page = admin.get("/account/password")
        changed = admin.post(
            "/account/password",
            data={
                "csrf_token": csrf_of(page.text),
                "old_password": PASSWORD,
                "new_password": OTHER_PASSWORD,
                "new_password2": OTHER_PASSWORD,
            },
        )
        assert changed.status_code in (200, 303), changed.text
    code, reply = auth(gateway, "wangfang", PASSWORD)
    assert code == 535 and b"wrong password" in reply
    assert auth(gateway, "wangfang", OTHER_PASSWORD)[0] == 235


def test_a_password_set_at_the_console_counts_at_the_next_auth(
    gateway: Running, tmp_path: Path
) -> None:
    # The IT department resets 李軍's password with `yizhan user passwd` (another process)
    # while his client is logged in: the old password is refused at once, the new one works.
    assert auth(gateway, "lijun", PASSWORD)[0] == 235
    config = gateway.ctx.config
    path = tmp_path / "yizhan.toml"
    path.write_text(
        f'[yizhan]\ndata_dir = "{config.data_dir}"\nsecret = "{config.secret}"\n'
        f'[database]\nurl = "{config.database_url}"\n'
        f'[signing]\ngnupg_home = "{config.signing.gnupg_home}"\n',
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "yizhan", "user", "passwd", "lijun"],
        input=OTHER_PASSWORD + "\n",
        capture_output=True,
        text=True,
        env={**os.environ, "YIZHAN_CONFIG": str(path)},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    code, reply = auth(gateway, "lijun", PASSWORD)
    assert code == 535 and b"wrong password" in reply
    assert auth(gateway, "lijun", OTHER_PASSWORD)[0] == 235


def test_auth_with_temporary_password_says_why(start_gateway: Callable[..., Running]) -> None:
    # An initial (temporary) password must be changed first; the reply says so (第十六條).
    gateway = start_gateway()
    with gateway.ctx.sessions.begin() as session:
        accounts.set_password(
            session,
            "mali",
            OTHER_PASSWORD,
            temporary=True,
            actor="test",
            now=gateway.ctx.clock(),
            policy=gateway.ctx.login_policy,
        )
    client = gateway.client()
    code, reply = client.docmd("AUTH", "PLAIN " + plain("mali", OTHER_PASSWORD))
    client.quit()
    assert code == 535
    assert b"initial password must be changed" in reply


def test_lockout_after_five_failures(gateway: Running) -> None:
    # Five wrong passwords in a row from one address lock that address out of the account;
    # the sixth try there, with the right password, is refused too, and the counters were
    # committed each time. (Other addresses: tests/daemon/test_attack_smtp.py.)
    client = gateway.client()
    for _ in range(5):
        code, _reply = client.docmd("AUTH", "PLAIN " + plain("wangfang", "guess-guess-1"))
        assert code == 535
    code, reply = client.docmd("AUTH", "PLAIN " + plain("wangfang", PASSWORD))
    client.quit()
    assert code == 535
    assert b"too many failed logins from this address; locked until" in reply
    with gateway.ctx.sessions() as session:
        row = session.get(Account, "wangfang")
        assert row is not None and row.failed_logins == 5
    (locked,) = audit_rows(gateway.ctx, "account.locked")
    assert locked.target == "wangfang" and locked.detail["client"] == "127.0.0.1"


def test_suspended_account_cannot_log_in(gateway: Running) -> None:
    # A suspended account is refused even with its right password.
    with gateway.ctx.sessions.begin() as session:
        accounts.set_state(session, "lijun", "suspended", actor="test", now=gateway.ctx.clock())
    client = gateway.client()
    code, reply = client.docmd("AUTH", "PLAIN " + plain("lijun", PASSWORD))
    client.quit()
    assert code == 535
    assert b"the account is suspended" in reply


def test_auth_decision_per_peer() -> None:
    # AUTH in clear text is for loopback peers only; over TLS it is for everyone.
    assert auth_allowed("127.0.0.1", tls=False)
    assert auth_allowed("127.0.0.5", tls=False)
    assert auth_allowed("::1", tls=False)
    assert auth_allowed("::ffff:127.0.0.1", tls=False)
    assert not auth_allowed("192.0.2.7", tls=False)
    assert not auth_allowed("2001:db8::1", tls=False)
    assert not auth_allowed("", tls=False)
    assert auth_allowed("192.0.2.7", tls=True)


def test_starttls_then_auth_from_a_non_loopback_peer(
    start_gateway: Callable[..., Running], tls_files: tuple[Path, Path]
) -> None:
    # From another host, AUTH is not even offered before STARTTLS (538 if tried); after
    # STARTTLS it works. The host's own non-loopback address stands in for another host.
    address = local_address()
    if address is None:
        pytest.skip("this host has no non-loopback address")
    cert, key = tls_files
    gateway = start_gateway(listen=HostPort(host=address, port=0), tls_cert=cert, tls_key=key)
    client = gateway.client(address)
    assert client.has_extn("starttls")
    assert not client.has_extn("auth")
    code, reply = client.docmd("AUTH", "PLAIN " + plain("wangfang", PASSWORD))
    assert code == 538, reply
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    client.starttls(context=context)
    client.ehlo()
    assert "PLAIN" in client.esmtp_features["auth"].split()
    client.login("wangfang", PASSWORD)
    code, _reply = send(client, message())
    client.quit()
    assert code == 250


def test_starttls_on_loopback(
    start_gateway: Callable[..., Running], tls_files: tuple[Path, Path]
) -> None:
    # A loopback client may also use STARTTLS, log in and send; a message of many TLS records
    # (and dot-stuffed lines) is stored exactly as the client meant it.
    cert, key = tls_files
    gateway = start_gateway(tls_cert=cert, tls_key=key)
    client = gateway.client()
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    client.starttls(context=context)
    client.ehlo()
    client.login("wangfang", PASSWORD)
    data = message(body="\r\n".join(f".{n} 檢驗記錄 " + "x" * 60 for n in range(4000)))
    code, reply = send(client, data)
    client.quit()
    assert code == 250, reply
    row = committed_inbound(gateway.ctx, queued_key(reply))
    assert row is not None and gateway.ctx.raw.read(row.path) == data


# --- MAIL and RCPT --------------------------------------------------------------------------------


def test_mail_without_auth_is_530(gateway: Running) -> None:
    # An unauthenticated client that is not the trusted MTA may not send.
    client = gateway.client()
    code, reply = client.mail("wangfang@oa.example")
    client.quit()
    assert (code, reply) == (530, b"5.7.0 Authentication required")


def test_recipients_of_every_kind_are_accepted(gateway: Running) -> None:
    # A kind, its alias, cmd@, a reply token and a person all get 250, and the stored row
    # lists them.
    rcpts = (
        "fawen@oa.example",
        "outgoing@oa.example",
        "cmd@oa.example",
        "r+abc@oa.example",
        "wangfang@oa.example",
    )
    client = gateway.login()
    code, reply = send(client, message(), rcpts=rcpts)
    client.quit()
    assert code == 250, reply
    row = committed_inbound(gateway.ctx, queued_key(reply))
    assert row is not None and row.rcpt_tos == list(rcpts)
    assert (row.sender_account, row.auth_method, row.state) == ("wangfang", "smtp-auth", "accepted")


def test_rcpt_outside_domain_is_550(gateway: Running) -> None:
    # Yizhan is no open relay; the reply says which domain it serves.
    client = gateway.login()
    client.mail("wangfang@oa.example")
    code, reply = client.rcpt("someone@example.com")
    client.quit()
    assert code == 550
    assert reply.startswith(b"5.1.2 ")
    assert b"Yizhan only accepts mail for @oa.example" in reply


def test_rcpt_unknown_local_part_is_550(gateway: Running) -> None:
    # A mistyped module address gets the list of modules.
    client = gateway.login()
    client.mail("wangfang@oa.example")
    code, reply = client.rcpt("fawne@oa.example")
    client.quit()
    assert code == 550
    assert reply.startswith(b"5.1.1 <fawne@oa.example>: no such module or person; modules are ")


def test_mail_from_of_another_person_is_550_and_audited(gateway: Running) -> None:
    # wangfang, logged in, claims to be lijun: refused and recorded (第七條).
    client = gateway.login()
    code, reply = client.mail("lijun@bureau.example")
    client.quit()
    assert code == 550
    assert reply.startswith(b"5.7.1 MAIL FROM <lijun@bureau.example> is not an address of account")
    [entry] = audit_rows(gateway.ctx, "impersonation")
    assert (entry.actor, entry.target) == ("wangfang", "lijun@bureau.example")
    assert entry.detail["where"] == "MAIL FROM"
    assert entry.detail["peer"].startswith("127.0.0.1:")


def test_mail_from_own_mailbox_is_accepted(gateway: Running) -> None:
    # Both of a person's addresses are theirs, in any case.
    client = gateway.login()
    code, reply = send(
        client,
        message(sender="王芳 <WangFang@Bureau.Example>"),
        mail_from="WANGFANG@bureau.example",
    )
    client.quit()
    assert code == 250, reply


def test_header_from_forged_is_550_and_audited(gateway: Running) -> None:
    # The envelope is wangfang's but the header From is lijun's: refused, recorded, not stored.
    client = gateway.login()
    code, reply = send(client, message(sender="李軍 <lijun@oa.example>"))
    client.quit()
    assert code == 550
    assert "From: <lijun@oa.example> is not an address of account wangfang" in reply
    [entry] = audit_rows(gateway.ctx, "impersonation")
    assert (entry.actor, entry.target, entry.detail["where"]) == (
        "wangfang",
        "lijun@oa.example",
        "From:",
    )
    assert entry.detail["message_id"].endswith("@client.test>")
    assert inbound_count(gateway.ctx) == 0


def test_null_sender_only_from_trusted_relay(start_gateway: Callable[..., Running]) -> None:
    # Bounces (<>) come from the organisation's MTA, never from a logged-in person.
    gateway = start_gateway()
    client = gateway.login()
    code, reply = client.mail("<>")
    client.quit()
    assert code == 550 and b"null sender" in reply
    relay = start_gateway(trusted_relays=("127.0.0.1",))
    client = relay.client()
    code, reply = send(client, message(sender="MAILER-DAEMON@bureau.example"), mail_from="<>")
    client.quit()
    assert code == 250, reply
    row = committed_inbound(relay.ctx, queued_key(reply))
    assert row is not None and row.mail_from == ""


# --- DATA -----------------------------------------------------------------------------------------


def test_size_limit_at_mail_and_after_data(start_gateway: Callable[..., Running]) -> None:
    # SIZE is advertised; a declared size above it is refused at MAIL, and an undeclared one
    # after DATA, both with 552, and the session goes on.
    gateway = start_gateway(max_message_size=20_000)
    client = gateway.login()
    assert client.esmtp_features["size"] == "20000"
    big = message(body="x" * 70 + ("\r\n" + "x" * 70) * 400)
    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        client.sendmail("wangfang@oa.example", ["fawen@oa.example"], big)
    assert refused.value.smtp_code == 552
    code, _reply = send(client, big)
    assert code == 552
    code, reply = send(client, message())
    client.quit()
    assert code == 250, reply
    assert inbound_count(gateway.ctx) == 1


CHARSET_MESSAGES = {
    "gbk-encoded-words": (
        b"From: =?GBK?B?" + base64.b64encode("王芳".encode("gbk")) + b"?= <wangfang@oa.example>\r\n"
        b"To: fawen@oa.example\r\n"
        b"Subject: =?GBK?B?"
        + base64.b64encode("关于召开安全工作会议的通知".encode("gbk"))
        + b"?=\r\n"
        b"Message-ID: <gbk-1@client.test>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=GBK\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n"
        + "各处室：定于下周一召开安全工作会议。".encode("gbk")
        + b"\r\n"
    ),
    "gbk-raw-8bit-headers": (
        # Old clients put raw GBK bytes in headers, without RFC 2047.
        "From: 王芳 <wangfang@oa.example>\r\n".encode("gbk")
        + b"To: fawen@oa.example\r\n"
        + "Subject: 关于报送材料的通知\r\n".encode("gbk")
        + b"Content-Type: text/plain; charset=gb2312\r\n\r\n"
        + "请于周五前报送。".encode("gbk")
        + b"\r\n"
    ),
    "gb18030": (
        b"From: wangfang@oa.example\r\nTo: fawen@oa.example\r\n"
        b"Subject: =?gb18030?B?" + base64.b64encode("𠮷野家与㐀字".encode("gb18030")) + b"?=\r\n"
        b"Content-Type: text/plain; charset=gb18030\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + "生僻字：𠮷、㐀、䶮。".encode("gb18030")
        + b"\r\n"
    ),
    "big5": (
        b"From: =?Big5?Q?"
        + "".join(f"={b:02X}" for b in "王芳".encode("big5")).encode()
        + b"?= <wangfang@oa.example>\r\n"
        b"To: fawen@oa.example\r\n"
        b"Subject: =?Big5?B?" + base64.b64encode("關於召開會議的通知".encode("big5")) + b"?=\r\n"
        b"Content-Type: text/plain; charset=big5\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + "各處室：請準時出席。".encode("big5")
        + b"\r\n"
    ),
    "utf-8-unknown-charset": (
        b"From: wangfang@oa.example\r\nTo: fawen@oa.example\r\n"
        b"Subject: =?x-unknown-charset?B?" + base64.b64encode("通知".encode()) + b"?=\r\n"
        b"Content-Type: text/plain; charset=x-unknown-charset\r\n\r\n" + "正文".encode() + b"\r\n"
    ),
    "broken-mime": (
        # multipart without a boundary parameter, a part whose base64 is garbage, and a
        # boundary that is never closed.
        b"From: wangfang@oa.example\r\nTo: fawen@oa.example\r\nSubject: broken\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\n"
        b"--nothing\r\nContent-Type: text/plain; charset=GBK\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!\r\n"
        b"--nothing\r\nContent-Type: application/octet-stream; name==?GBK?B?broken\r\n\r\n"
        + bytes(range(128, 256)).replace(b"\r", b"").replace(b"\n", b"")
        + b"\r\n"
    ),
}


@pytest.mark.parametrize("name", sorted(CHARSET_MESSAGES))
def test_chinese_charsets_and_broken_mime_are_stored_byte_for_byte(
    gateway: Running, name: str
) -> None:
    # GBK, GB18030 and Big5 (encoded words, raw 8-bit headers and bodies), an unknown charset
    # and broken MIME are accepted; the stored file holds exactly the bytes sent, and the row
    # is committed (read through a fresh connection).
    data = CHARSET_MESSAGES[name]
    client = gateway.login()
    code, reply = send(client, data, options=("BODY=8BITMIME",))
    client.quit()
    assert code == 250, reply
    row = committed_inbound(gateway.ctx, queued_key(reply))
    assert row is not None
    assert gateway.ctx.raw.read(row.path) == data
    assert row.size == len(data)
    assert (row.state, row.sender_account) == ("accepted", "wangfang")


def test_message_without_headers_is_554(gateway: Running) -> None:
    # Text with no header section at all cannot be attributed: 554 with the reason.
    client = gateway.login()
    code, reply = send(client, b"just some text, no headers\r\nand more\r\n")
    assert code == 554
    assert reply.startswith("5.6.0 The message headers cannot be used: no header section")
    code, reply = send(client, b"Subject: no sender\r\n\r\nbody\r\n")
    client.quit()
    assert code == 554
    assert "no From: header" in reply
    assert inbound_count(gateway.ctx) == 0


def test_smtputf8_sender_of_the_person(start_gateway: Callable[..., Running]) -> None:
    # A person whose own mailbox has a Chinese local part sends with SMTPUTF8; another
    # person's Chinese address is refused and recorded.
    gateway = start_gateway()
    with gateway.ctx.sessions.begin() as session:
        person = load_directory(session).people["wangfang"]
        save_person(
            session,
            dataclasses.replace(person, email="王芳@bureau.example"),
            now=gateway.ctx.clock(),
        )
    client = gateway.login()
    assert client.has_extn("smtputf8")
    data = message(sender="王芳 <王芳@bureau.example>", subject="=?utf-8?B?5rWL6K+V?=")
    code, reply = send(client, data, mail_from="王芳@bureau.example", options=("SMTPUTF8",))
    assert code == 250, reply
    row = committed_inbound(gateway.ctx, queued_key(reply))
    assert row is not None and row.mail_from == "王芳@bureau.example"
    code, reply = send(client, data, mail_from="李軍@bureau.example", options=("SMTPUTF8",))
    client.quit()
    assert code == 550, reply
    assert [e.target for e in audit_rows(gateway.ctx, "impersonation")] == ["李軍@bureau.example"]


def test_non_utf8_address_is_553(gateway: Running) -> None:
    # Raw GBK bytes in MAIL FROM are neither stored nor echoed: 553, and the session goes on.
    client = gateway.login()
    client.send(b"MAIL FROM:<" + "王芳".encode("gbk") + b"@oa.example>\r\n")
    code, reply = client.getreply()
    assert code == 553, reply
    assert b"not UTF-8" in reply
    code, _reply = send(client, message())
    client.quit()
    assert code == 250


def test_garbage_commands_get_500_and_the_session_continues(gateway: Running) -> None:
    # Unknown verbs, binary junk and a malformed address are answered; the message after
    # them is accepted on the same connection.
    client = gateway.login()
    code, _ = client.docmd("XYZZY", "plugh")
    assert code == 500
    client.send(b"\xff\xfe\x00junk\r\n")
    code, _ = client.getreply()
    assert code == 500
    code, reply = client.docmd("MAIL", "FROM:<no closing bracket")
    assert code == 553 and b"needs a local part" in reply
    code, _ = client.docmd("RCPT", "TO:<fawen@oa.example>")
    assert code == 503
    assert client.noop()[0] == 250
    code, reply = send(client, message())
    client.quit()
    assert code == 250, reply


# --- DATA as pipelining clients and smugglers send it (daemon.gateway.data) --------------------


def converse(gateway: Running, script: bytes) -> list[bytes]:
    """Send the whole script at once (a pipelining client) and read until the server closes."""
    with socket.create_connection((gateway.host, gateway.port), timeout=20) as conn:
        conn.recv(4096)  # greeting
        conn.sendall(script)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    return received.split(b"\r\n")


def session_script(*data: bytes) -> bytes:
    auth = plain("wangfang", "Qingshui-River-88")
    script = f"EHLO client.test\r\nAUTH PLAIN {auth}\r\n".encode()
    for one in data:
        script += b"MAIL FROM:<wangfang@oa.example>\r\nRCPT TO:<fawen@oa.example>\r\nDATA\r\n"
        script += one
    return script + b"QUIT\r\n"


def replies(lines: list[bytes], code: bytes) -> list[bytes]:
    return [line for line in lines if line.startswith(code + b" ")]


def test_pipelined_transactions_after_the_data_are_each_answered(gateway: Running) -> None:
    first, second = message(body="..first"), message(body="second.")
    lines = converse(gateway, session_script(first + b".\r\n", second + b".\r\n"))
    stored = replies(lines, b"250")
    assert [line for line in stored if b"queued as" in line], lines
    ids = [queued_key(line.decode()) for line in stored if b"queued as" in line]
    assert len(ids) == 2 and replies(lines, b"221"), lines
    bodies = [gateway.ctx.raw.read(committed_inbound(gateway.ctx, i).path) for i in ids]  # type: ignore[union-attr]
    assert bodies == [first.replace(b"\r\n..first", b"\r\n.first"), second]


def test_a_smuggled_second_message_stays_inside_the_first(gateway: Running) -> None:
    # "<LF>.<CR><LF>" then a whole transaction: one message, holding all of it (SMTP smuggling).
    inner = b"MAIL FROM:<lijun@oa.example>\r\nRCPT TO:<fawen@oa.example>\r\nDATA\r\n"
    first = message(body="hello\n.\r\n" + inner.decode() + "From: lijun@oa.example\r\n\r\nforged")
    lines = converse(gateway, session_script(first + b".\r\n"))
    ids = [queued_key(line.decode()) for line in replies(lines, b"250") if b"queued" in line]
    assert len(ids) == 1, lines
    row = committed_inbound(gateway.ctx, ids[0])
    assert row is not None and gateway.ctx.raw.read(row.path) == first


def test_a_line_too_long_is_500_and_the_session_goes_on(gateway: Running) -> None:
    lines = converse(
        gateway,
        session_script(message(body="z" * 2000) + b".\r\n", message() + b".\r\n"),
    )
    assert replies(lines, b"500") and b"Line too long" in replies(lines, b"500")[0], lines
    assert len([line for line in replies(lines, b"250") if b"queued as" in line]) == 1, lines


def test_a_client_gone_in_the_middle_of_the_data_leaves_nothing(gateway: Running) -> None:
    # The connection ends before the final dot: no row, no reply owed, and the next client
    # is served as usual.
    with socket.create_connection((gateway.host, gateway.port), timeout=20) as conn:
        conn.recv(4096)
        conn.sendall(session_script(message(body="cut " * 3000))[:-10])
        time.sleep(0.2)
    client = gateway.login()
    code, reply = send(client, message())
    client.quit()
    assert code == 250, reply
    assert inbound_count(gateway.ctx) == 1


def test_connection_limit_is_421(start_gateway: Callable[..., Running]) -> None:
    # Over smtp.max_connections a client gets 421 at once; when one leaves, there is room.
    gateway = start_gateway(max_connections=1)
    first = gateway.client()
    with pytest.raises(smtplib.SMTPConnectError) as refused:
        gateway.client()
    assert refused.value.smtp_code == 421
    first.quit()
    deadline = time.monotonic() + 5
    while True:
        try:
            gateway.client().quit()
            break
        except smtplib.SMTPConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# --- The trusted MTA ------------------------------------------------------------------------------


RELAY_CASES = {
    "smtp-auth": (
        "Authentication-Results: mx.bureau.example; auth=pass (cram-md5) smtp.auth=wangfang\r\n"
        "Authentication-Results: mx.bureau.example; auth=pass smtp.auth=lijun\r\n",
        "wangfang@bureau.example",
        ("wangfang", "relay-auth"),
    ),
    "dkim": (
        "Authentication-Results: mx.bureau.example;\r\n"
        "  dkim=pass (2048-bit key) header.d=bureau.example header.i=@bureau.example\r\n",
        "王芳 <wangfang@bureau.example>",
        ("wangfang", "relay-dkim"),
    ),
    "dkim-other-domain": (
        "Authentication-Results: mx.bureau.example; dkim=pass header.i=@elsewhere.example\r\n",
        "wangfang@bureau.example",
        (None, "none"),
    ),
    "none": ("", "outsider@partner.example", (None, "none")),
    "lower-header-only": (
        "X-Other: 1\r\nAuthentication-Results: forged.example; auth=pass smtp.auth=wangfang\r\n",
        "wangfang@bureau.example",
        (None, "none"),
    ),
}


@pytest.mark.parametrize("case", sorted(RELAY_CASES))
def test_trusted_relay_identity_from_authentication_results(
    start_gateway: Callable[..., Running], case: str
) -> None:
    # The org MTA hands mail over without AUTH; its topmost Authentication-Results names the
    # sender. Mail it cannot vouch for is stored anyway, with no sender account.
    results, sender, expected = RELAY_CASES[case]
    gateway = start_gateway(trusted_relays=("127.0.0.0/8",))
    if case == "lower-header-only":
        # Only the topmost header counts, and here it is not an Authentication-Results.
        results = "Authentication-Results: mx.bureau.example; none\r\n" + results
    client = gateway.client()
    data = message(sender=sender, extra=results)
    code, reply = send(client, data, mail_from="bounce-123@bureau.example")
    client.quit()
    assert code == 250, reply
    row = committed_inbound(gateway.ctx, queued_key(reply))
    assert row is not None
    assert (row.sender_account, row.auth_method) == expected
    assert gateway.ctx.raw.read(row.path) == data


def test_trusted_relay_sender_forging_from_is_550(start_gateway: Callable[..., Running]) -> None:
    # The MTA vouches for wangfang, but the header From is lijun's: refused and recorded.
    gateway = start_gateway(trusted_relays=("127.0.0.1",))
    client = gateway.client()
    extra = "Authentication-Results: mx.bureau.example; auth=pass smtp.auth=wangfang\r\n"
    code, reply = send(client, message(sender="lijun@bureau.example", extra=extra))
    client.quit()
    assert code == 550, reply
    [entry] = audit_rows(gateway.ctx, "impersonation")
    assert (entry.actor, entry.target) == ("wangfang", "lijun@bureau.example")


# --- Pure parts -----------------------------------------------------------------------------------


def test_parse_auth_results() -> None:
    # Comments are dropped, the authserv-id skipped, properties collected per method.
    value = (
        "mx.example (Postfix); auth=pass (PLAIN) smtp.auth=wangfang@oa.example;"
        ' dkim=fail reason="bad sig" header.i=@oa.example; spf=pass smtp.mailfrom=oa.example'
    )
    assert parse_auth_results(value) == [
        ("auth", "pass", {"smtp.auth": "wangfang@oa.example"}),
        ("dkim", "fail", {"header.i": "@oa.example"}),
        ("spf", "pass", {"smtp.mailfrom": "oa.example"}),
    ]


def test_relay_identity_refuses_inactive_people(bureau: Context) -> None:
    # An MTA's word does not bring a suspended account back.
    with bureau.sessions.begin() as session:
        accounts.set_state(session, "lijun", "suspended", actor="test", now=bureau.clock())
        directory = load_directory(session)
    value = "mx; auth=pass smtp.auth=lijun"
    assert relay_identity([value], ["lijun@oa.example"], directory, DOMAIN) == (None, "none")
    value = "mx; auth=pass smtp.auth=wangfang@oa.example"
    assert relay_identity([value], [], directory, DOMAIN) == ("wangfang", "relay-auth")
    assert address_belongs("WANGFANG@BUREAU.EXAMPLE", "wangfang", directory, DOMAIN)
    assert not address_belongs("lijun@oa.example", "wangfang", directory, DOMAIN)


def test_parse_headers_reads_from_and_keeps_order() -> None:
    # From addresses are read even with raw 8-bit display names; Authentication-Results keep
    # their order, topmost first.
    data = (
        b"Authentication-Results: a; none\r\nAuthentication-Results: b; none\r\n"
        + "From: 王芳 <wangfang@oa.example>, lijun@oa.example\r\n\r\nbody".encode("gbk")
    )
    facts = parse_headers(data)
    assert facts.from_addresses == ("wangfang@oa.example", "lijun@oa.example")
    assert facts.auth_results == ("a; none", "b; none")


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ('"lijun@oa.example" <wangfang@oa.example>', {"lijun@oa.example", "wangfang@oa.example"}),
        ('"lijun"@oa.example', {"lijun@oa.example"}),
        ("lijun@oa.example)<wangfang@oa.example>", {"lijun@oa.example", "wangfang@oa.example"}),
        ("<@relay.example:wangfang@oa.example>", {"wangfang@oa.example"}),
    ],
)
def test_parse_headers_finds_every_address(field: str, expected: set[str]) -> None:
    # No quoting or syntax trick hides an address from the sender check: a display name
    # that is someone's address counts as that address.
    facts = parse_headers(f"From: {field}\r\n\r\n".encode())
    assert set(facts.from_addresses) == expected


def test_message_id_of() -> None:
    # The Message-ID is found without MIME parsing, unfolded, and never taken from the body.
    assert message_id_of(b"Subject: x\r\nMessage-Id:\r\n <a@b>\r\n\r\nbody") == "<a@b>"
    assert message_id_of(b"Subject: x\r\n\r\nMessage-ID: <body@b>\r\n") is None
    assert message_id_of(b"Message-ID: <\xff\x00@b>\r\n\r\n") == "<\ufffd @b>"


# --- Inbound writer (group commit) ----------------------------------------------------------------


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def store(writer: InboundWriter, data: bytes, mail_from: str = "a@oa.example") -> int:
    return await writer.store(
        data=data,
        mail_from=mail_from,
        rcpt_tos=["fawen@oa.example"],
        sender_account=None,
        auth_method="none",
        peer="127.0.0.1:1",
    )


class HeldCommit:
    """Holds the first group in its directory fsync until the test lets it go, so that the
    messages sent meanwhile form one group; records the size of every insert."""

    def __init__(self, writer: InboundWriter, refuse: str | None = None) -> None:
        self.sync = writer._sync
        self.insert = writer._insert
        self.refuse = refuse
        self.started = threading.Event()
        self.release = threading.Event()
        self.sizes: list[int] = []

    def install(self, writer: InboundWriter, monkeypatch: Any) -> None:
        monkeypatch.setattr(writer, "_sync", self.held_sync)
        monkeypatch.setattr(writer, "_insert", self.counted_insert)

    def held_sync(self, batch: list[Any]) -> str | None:
        if not self.started.is_set():
            self.started.set()
            self.release.wait(10)
        return self.sync(batch)

    def counted_insert(self, batch: list[Any]) -> list[int]:
        self.sizes.append(len(batch))
        if any(p.row["mail_from"] == self.refuse for p in batch):
            raise ValueError("refused row")
        return self.insert(batch)

    async def group(self, writer: InboundWriter, *senders: str) -> list[Any]:
        """Store one message, then ``senders`` while its commit is held; all results."""
        first = asyncio.ensure_future(store(writer, message(), "first@oa.example"))
        await asyncio.to_thread(self.started.wait, 10)
        rest = [asyncio.ensure_future(store(writer, message(), s)) for s in senders]
        while len(writer._group) < len(senders):
            await asyncio.sleep(0.01)
        self.release.set()
        return list(await asyncio.gather(first, *rest, return_exceptions=True))


def test_group_commit_batches_concurrent_messages(ctx: Context, monkeypatch: Any) -> None:
    # Messages arriving while a commit is running are committed together in the next one;
    # every sender gets its own row id, and on_committed hears of every id.
    committed: list[list[int]] = []
    writer = InboundWriter(ctx, on_committed=committed.append)
    held = HeldCommit(writer)
    held.install(writer, monkeypatch)

    async def main() -> list[int]:
        ids = await held.group(writer, *(f"s{n}@oa.example" for n in range(20)))
        await writer.aclose()
        return ids

    ids = run(main())
    assert len(set(ids)) == 21
    assert held.sizes == [1, 20]
    assert committed[0] == ids[:1] and sorted(committed[1]) == sorted(ids[1:])
    for row_id in ids:
        row = committed_inbound(ctx, row_id)
        assert row is not None and ctx.raw.read(row.path).startswith(b"From:")


def test_failed_commit_fails_its_batch_and_removes_the_files(
    ctx: Context, monkeypatch: Any
) -> None:
    # The database refuses: every message of the batch fails with StoreFailed, and no file
    # is left behind.
    writer = InboundWriter(ctx)

    def broken(batch: list[Any]) -> list[int]:
        raise RuntimeError("database is down")

    monkeypatch.setattr(writer, "_insert", broken)

    async def main() -> list[Any]:
        results = await asyncio.gather(
            *(store(writer, message()) for _ in range(3)), return_exceptions=True
        )
        await writer.aclose()
        return list(results)

    results = run(main())
    assert all(isinstance(r, StoreFailed) for r in results)
    assert list((ctx.raw.root / "inbound").rglob("*.eml")) == []
    assert inbound_count(ctx) == 0


def test_one_bad_row_fails_alone(ctx: Context, monkeypatch: Any) -> None:
    # A row the database refuses inside a group: the group is retried message by message,
    # so only that message fails, and only its file is removed.
    writer = InboundWriter(ctx)
    held = HeldCommit(writer, refuse="bad@oa.example")
    held.install(writer, monkeypatch)

    async def main() -> list[Any]:
        results = await held.group(writer, "ok1@oa.example", "bad@oa.example", "ok2@oa.example")
        await writer.aclose()
        return results

    results = run(main())
    assert held.sizes == [1, 3, 1, 1, 1]
    assert [type(r) for r in results] == [int, int, StoreFailed, int]
    assert inbound_count(ctx) == 3
    assert len(list((ctx.raw.root / "inbound").rglob("*.eml"))) == 3


def test_failed_directory_fsync_fails_the_group(ctx: Context, monkeypatch: Any) -> None:
    # The renames cannot be made durable (EIO): nothing is acknowledged, no file stays.
    import yizhan.mailstore.inbound as inbound

    def broken(directories: Any) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(inbound, "sync_directories", broken)
    writer = InboundWriter(ctx)

    async def main() -> Any:
        try:
            return await store(writer, message())
        except StoreFailed as exc:
            return exc
        finally:
            await writer.aclose()

    result = run(main())
    assert isinstance(result, StoreFailed) and "Input/output error" in str(result)
    assert list((ctx.raw.root / "inbound").rglob("*.eml")) == []
    assert inbound_count(ctx) == 0


def test_many_concurrent_messages_are_all_committed(ctx: Context) -> None:
    # Fifty messages at once, groups forming and handing over freely: each gets its own row,
    # committed, pointing at its own file.
    writer = InboundWriter(ctx, threads=8)

    async def main() -> list[int]:
        ids = await asyncio.gather(
            *(store(writer, message(body=f"n{n}"), f"s{n}@oa.example") for n in range(50))
        )
        await writer.aclose()
        return list(ids)

    ids = run(main())
    assert len(set(ids)) == 50 and inbound_count(ctx) == 50
    engine = make_engine(ctx.config.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            rows = list(session.scalars(select(Inbound)))
    finally:
        engine.dispose()
    for row in rows:
        n = row.mail_from.removesuffix("@oa.example")[1:]
        assert ctx.raw.read(row.path).rstrip().endswith(f"n{n}".encode())


def test_cancelled_sender_still_gets_its_message_committed(ctx: Context) -> None:
    # The client went away during the store: the store finishes, so no file is orphaned.
    writer = InboundWriter(ctx)

    async def main() -> None:
        task = asyncio.ensure_future(store(writer, message()))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await writer.aclose()

    run(main())
    assert inbound_count(ctx) == 1


# --- TLS ------------------------------------------------------------------------------------------


def test_ensure_certificate(tmp_path: Path) -> None:
    # A missing certificate is created once: key mode 0600, SAN hostname and 127.0.0.1,
    # ten years; the server context loads it.
    cert, key = tmp_path / "tls" / "cert.pem", tmp_path / "tls" / "key.pem"
    assert ensure_certificate(cert, key, "mail.oa.example") is True
    assert ensure_certificate(cert, key, "mail.oa.example") is False
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    san = loaded.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["mail.oa.example"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    lifetime = loaded.not_valid_after_utc - loaded.not_valid_before_utc
    assert lifetime > dt.timedelta(days=3649)
    assert isinstance(server_context(cert, key), ssl.SSLContext)
