"""End-to-end: 常用工具下載 at cmd@ over SMTP on loopback, and the HELP that names every module.

The IT department publishes files by mail (a Windows installer among them, which the gateway
lets through only for an IT member's TOOLS ADD), staff list them with TOOLS and fetch them
with GET, byte for byte, within the download limit; everyone else is refused with the reason.
Attachments are scanned by the test clamd ($YIZHAN_TEST_CLAMD), as in production.
"""

from __future__ import annotations

import dataclasses
import smtplib
from collections.abc import Iterator
from email.message import EmailMessage
from email.message import EmailMessage as Message
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.conftest import make_config, seed_keyring
from tests.daemon.test_flows import PASSWORD, Daemon, start_daemon
from yizhan.daemon.config import DEFAULT_ADDRESSES
from yizhan.daemon.context import Context
from yizhan.daemon.desk.tools import ToolDesk, publish_file
from yizhan.mailstore.db import upgrade
from yizhan.mailstore.directory import load_directory
from yizhan.mailstore.models import AuditEntry, Document
from yizhan.routing.tools import ToolAction, ToolRequest

pytest_plugins = ["tests.daemon.test_flows"]

#: The download limit of these tests: a 100 KB manual is "too big to mail".
LIMIT = 64 * 1024


@pytest.fixture
def daemon(
    tmp_path: Path, database_url: str, system_key_home: Path, clamd_socket: str
) -> Iterator[Daemon]:
    """The demo bureau running with the test clamd and a 64 KB download limit."""
    config = make_config(
        tmp_path,
        database_url,
        signing={"require_signature": []},
        tools={"max_download": LIMIT},
    )
    seed_keyring(config, system_key_home)
    config.rules_file.parent.mkdir(parents=True, exist_ok=True)
    config.rules_file.write_text(
        f'[content.scanner]\nsocket = "{clamd_socket}"\ntimeout = 20\n', encoding="utf-8"
    )
    ctx = Context.open(config)
    upgrade(ctx.engine)
    running = start_daemon(ctx)
    yield running
    running.stop()
    ctx.close()


def send(
    d: Daemon,
    account: str,
    subject: str,
    body: str = "",
    *,
    attachment: tuple[str, bytes] | None = None,
    to: str = "cmd@oa.example",
) -> None:
    """Send as ``account`` (SMTP AUTH), with a file attached as a mail client attaches it."""
    msg = EmailMessage()
    msg["From"] = f"{account}@bureau.example"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body)
    if attachment is not None:
        name, data = attachment
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as client:
        client.login(account, PASSWORD)
        client.send_message(msg)


def answer(d: Daemon, account: str) -> tuple[str, EmailMessage]:
    """The single next mail for ``account``: its text (inside the signature) and the mail."""
    (mail,) = d.inbox(account)
    body = mail.get_body(("plain",))
    assert body is not None
    return str(body.get_content()), mail


def attached(mail: EmailMessage) -> list[tuple[str, str, bytes]]:
    """(file name, content type, bytes) of each file attached to a mail Yizhan sent."""
    files = []
    for part in mail.walk():
        name = part.get_filename()
        if name and part.get_content_type() != "application/pgp-signature":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            files.append((name, part.get_content_type(), payload))
    return files


def audit_actions(d: Daemon, prefix: str) -> list[tuple[str, str, str | None]]:
    with d.ctx.sessions() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.action.like(f"{prefix}%")).order_by(AuditEntry.id)
        )
        return [(r.actor, r.action, r.target) for r in rows]


def test_it_publishes_staff_list_and_download(daemon: Daemon, content_files: Any) -> None:
    # Issue 6 item 10: 何磊 of 信息化處 publishes a Windows installer with a description; the
    # gateway lets the program through because it is an IT member's TOOLS ADD to cmd@. Staff
    # see it in TOOLS with a GET link and receive the very same bytes as an attachment, at
    # their own mailbox; a misspelt name gets the close names.
    installer = content_files.exe()
    send(
        daemon,
        "helei",
        "TOOLS ADD vpn-client",
        "VPN 客戶端，外網辦公時使用。\n適用 Windows 10/11，雙擊安裝。\n",
        attachment=("vpn-setup.exe", installer),
    )
    text, _ = answer(daemon, "helei")
    assert "已發布工具 vpn-client" in text and "第 1 版" in text

    send(daemon, "xiewenbin", "工具")
    text, _ = answer(daemon, "xiewenbin")
    assert "vpn-client" in text and "VPN 客戶端，外網辦公時使用。" in text
    assert "vpn-setup.exe" in text and f"{len(installer)} B" in text
    assert "mailto:cmd@oa.example?subject=GET%20vpn-client" in text

    send(daemon, "xiewenbin", "下載 vpn-client")
    text, mail = answer(daemon, "xiewenbin")
    assert mail["To"] == "xiewenbin@bureau.example"
    assert "vpn-client" in text and "雙擊安裝" in text
    ((name, content_type, data),) = attached(mail)
    assert (name, data) == ("vpn-setup.exe", installer)
    assert content_type == "application/x-msdos-program"  # sniffed: an MZ/PE program

    # The link's form: GET in the subject, nothing in the body; and case does not matter.
    send(daemon, "wangfang", "GET VPN-Client")
    _, mail = answer(daemon, "wangfang")
    assert [f[2] for f in attached(mail)] == [installer]

    send(daemon, "wangfang", "GET vpn-clinet")
    text, mail = answer(daemon, "wangfang")
    assert "沒有名為「vpn-clinet」的工具" in text and "vpn-client" in text
    assert attached(mail) == []

    # A document reference is not a tool: GET #12 is left to the documents' handler.
    send(daemon, "wangfang", "GET #12")
    text, _ = answer(daemon, "wangfang")
    assert "的工具" not in text

    assert audit_actions(daemon, "tool.") == [
        ("helei", "tool.publish", "vpn-client"),
        ("xiewenbin", "tool.get", "vpn-client"),
        ("wangfang", "tool.get", "vpn-client"),
    ]


def test_only_the_it_department_publishes(daemon: Daemon, content_files: Any) -> None:
    # 第十一條, mine rules 一(八): a program from anyone else is refused at the gateway with the
    # reason; a document they try to publish reaches cmd@ and is refused by the desk, audited;
    # IT's own mail carrying a program, when it is not a TOOLS ADD, is refused like anyone's.
    # (The gateway's explanatory mail is not awaited: the SMTP reply already says why.)
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(daemon, "hanxue", "TOOLS ADD setup", "x", attachment=("setup.exe", b"MZ" * 200))
    assert refused.value.smtp_code == 550
    assert "信息化處發布為工具" in refused.value.smtp_error.decode("utf-8")

    template = content_files.docx(["會議紀要模板"])
    send(
        daemon,
        "wangfang",
        "工具 發布 紀要模板",
        "會議紀要模板。",
        attachment=("紀要.docx", template),
    )
    text, _ = answer(daemon, "wangfang")
    assert "只有信息化處" in text and "辦公室" in text
    send(daemon, "wangfang", "TOOLS REMOVE vpn-client")
    assert "只有信息化處" in answer(daemon, "wangfang")[0]
    assert audit_actions(daemon, "refused.tool") == [
        ("wangfang", "refused.tool", "紀要模板"),
        ("wangfang", "refused.tool", "vpn-client"),
    ]

    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(daemon, "mali", "給你的程序", "x", attachment=("setup.exe", content_files.exe()))
    assert refused.value.smtp_code == 550
    assert "attachment_type" in refused.value.smtp_error.decode("utf-8")

    send(daemon, "wangfang", "工具")
    assert "沒有發布工具" in answer(daemon, "wangfang")[0]


def test_replace_too_big_and_remove(daemon: Daemon, content_files: Any) -> None:
    # A second publication replaces the file as version 2 and GET sends the new bytes; a tool
    # over the download limit is listed, but GET says to ask IT; REMOVE takes one down. The
    # command may also open the body ("發布工具 name"), the description below it.
    first, second = content_files.exe(), content_files.exe() + b"v2"
    send(daemon, "helei", "工具 发布 vpn-client", "VPN 客户端。", attachment=("vpn.exe", first))
    answer(daemon, "helei")
    send(
        daemon,
        "wuhaifeng",
        "TOOLS ADD vpn-client",
        "VPN 客戶端（新版）。",
        attachment=("vpn2.exe", second),
    )
    text, _ = answer(daemon, "wuhaifeng")
    assert "第 2 版" in text and "替換第 1 版" in text
    send(daemon, "xiewenbin", "GET vpn-client")
    _, mail = answer(daemon, "xiewenbin")
    assert attached(mail) == [("vpn2.exe", "application/x-msdos-program", second)]

    manual = ("第一章 系統登錄\n" * 8000).encode("utf-8")
    assert len(manual) > LIMIT
    send(
        daemon,
        "zhengwei",
        "OA 使用說明",
        "發布工具 handbook\n驛站使用說明，新同事必讀。\n",
        attachment=("handbook.txt", manual),
    )
    text, _ = answer(daemon, "zhengwei")
    assert "已發布工具 handbook" in text and "超過郵件下載上限" in text
    send(daemon, "xiewenbin", "工具")
    listed, _ = answer(daemon, "xiewenbin")
    assert (
        "handbook" in listed
        and "驛站使用說明，新同事必讀。" in listed
        and "版本 Version: 2" in listed
    )
    send(daemon, "xiewenbin", "下载 handbook")
    text, mail = answer(daemon, "xiewenbin")
    assert "超過郵件下載上限 64 KB" in text and "吳海峰" in text and attached(mail) == []

    send(daemon, "helei", "TOOLS REMOVE handbook")
    assert "已下架工具 handbook" in answer(daemon, "helei")[0]
    send(daemon, "xiewenbin", "TOOLS")
    listed, _ = answer(daemon, "xiewenbin")
    assert "handbook" not in listed and "vpn-client" in listed
    send(daemon, "xiewenbin", "GET handbook")
    assert "沒有名為「handbook」的工具" in answer(daemon, "xiewenbin")[0]

    assert [a[:2] for a in audit_actions(daemon, "tool.") if a[1] != "tool.get"] == [
        ("helei", "tool.publish"),
        ("wuhaifeng", "tool.publish"),
        ("zhengwei", "tool.publish"),
        ("helei", "tool.remove"),
    ]


def test_help_names_every_module_address_and_command(daemon: Daemon) -> None:
    # 第十一條 (issue 6): HELP lists every module address and every cmd@ command, and points
    # to the module guide on the admin page.
    send(daemon, "xiewenbin", "幫助")
    text, _ = answer(daemon, "xiewenbin")
    for module, (local, *_aliases) in DEFAULT_ADDRESSES.items():
        assert f"{local}@oa.example" in text, module
    for word in ("DELEGATE", "REVOKE", "STATUS", "TODO", "SEARCH", "SET", "TOOLS", "GET", "HELP"):
        assert word in text
    assert f"{daemon.ctx.config.admin_public_url}help" in text
    # HELP works at a module's address too, and opens no document there.
    daemon.send("xiewenbin", "xinxi@oa.example", "幫助", "")
    (reply,) = daemon.inbox("xiewenbin")
    assert f"{daemon.ctx.config.admin_public_url}help" in str(
        reply.get_body(("plain",)).get_content()
    )  # type: ignore[union-attr]
    with daemon.ctx.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Document)) == 0


def test_tools_never_go_to_a_mailbox_outside(bureau: Context) -> None:
    # 第十七條: the bureau's software and manuals are never given outside. 彭亮's own mailbox is
    # at qq.com, so GET answers that it cannot be sent there, and sends nothing attached.
    with bureau.sessions.begin() as session:
        published = publish_file(
            session,
            name="handbook",
            description="OA 使用手冊",
            filename="handbook.pdf",
            data=b"%PDF-1.4 handbook",
            actor="helei",
            now=bureau.clock(),
        )
        assert not isinstance(published, str) and published.content_type == "application/pdf"
        directory = load_directory(session)
        person = directory.people["pengliang"]
        outside = dataclasses.replace(
            directory,
            people={
                **directory.people,
                "pengliang": dataclasses.replace(person, email="pengliang@qq.com"),
            },
        )
        get = ToolRequest(action=ToolAction.GET, name="handbook")
        refused = ToolDesk(bureau).answer(
            session,
            get,
            account="pengliang",
            address="pengliang@oa.example",
            msg=Message(),
            directory=outside,
            now=bureau.clock(),
        )
        assert refused.attachment is None and "第十七條" in refused.text
        assert refused.to == "pengliang@oa.example"
        inside = ToolDesk(bureau).answer(
            session,
            get,
            account="pengliang",
            address="pengliang@bureau.example",
            msg=Message(),
            directory=directory,
            now=bureau.clock(),
        )
        assert inside.attachment is not None and inside.attachment.data == b"%PDF-1.4 handbook"
