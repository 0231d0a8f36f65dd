"""End-to-end: the whole daemon on loopback, staff as smtplib clients, mail read from Maildirs.

Each test walks a real scenario over SMTP: a person's mail, an internal report (內部簽報) with a
rejection, a revision, delegation while away (第九條), and a reply from someone not asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import email
import json
import mimetypes
import os
import smtplib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import demo_org, make_config, seed_keyring
from yizhan.cli.serve import run_daemon
from yizhan.daemon.context import Context
from yizhan.daemon.jobs.table import run_due_jobs
from yizhan.mailstore import accounts
from yizhan.mailstore.db import upgrade
from yizhan.mailstore.directory import import_directory
from yizhan.routing.directory import parse_org

PASSWORD = "Flow-test-2026"


class Daemon:
    """A running daemon in a background thread, with helpers to send and read mail."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        ready = threading.Event()

        def on_ready(port: int) -> None:
            self.port = port
            ready.set()

        self._thread = threading.Thread(
            target=self._loop.run_until_complete,
            args=(run_daemon(ctx, self._stop, on_ready=on_ready),),
            daemon=True,
        )
        self._thread.start()
        assert ready.wait(30), "daemon did not start"
        self._seen: dict[str, set[Path]] = {}

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def send(
        self,
        account: str,
        to: str,
        subject: str,
        body: str,
        *,
        files: Mapping[str, bytes] = {},
        **headers: str,
    ) -> EmailMessage:
        """Send as the account's mail client would; ``files`` by name, typed by extension."""
        person_email = f"{account}@bureau.example"
        msg = EmailMessage()
        msg["From"] = person_email
        msg["To"] = to
        msg["Subject"] = subject
        for name, value in headers.items():
            msg[name.replace("_", "-")] = value
        msg.set_content(body)
        for name, data in files.items():
            kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
            maintype, subtype = kind.split("/")
            msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as client:
            client.login(account, PASSWORD)
            client.send_message(msg)
        return msg

    def inbox(self, account: str, *, expect: int = 1, timeout: float = 20) -> list[EmailMessage]:
        """Wait for ``expect`` new messages in the account's Maildir and return them."""
        new = self.ctx.config.maildir_root / account / "new"
        seen = self._seen.setdefault(account, set())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            files = sorted(p for p in new.glob("*") if p not in seen) if new.exists() else []
            if len(files) >= expect:
                seen.update(files)
                return [
                    email.message_from_bytes(p.read_bytes(), policy=policy.default)  # type: ignore[misc]
                    for p in files
                ]
            time.sleep(0.05)
        raise AssertionError(f"{account}: expected {expect} new message(s), got {len(files)}")

    def until(self, account: str, state: str, *, timeout: float = 20) -> list[EmailMessage]:
        """Collect new mail for ``account`` until one says the document is in ``state``."""
        got: list[EmailMessage] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got += self.inbox(account, expect=1, timeout=max(0.1, deadline - time.monotonic()))
            if any(m["X-Yizhan-State"] == state for m in got):
                return got
        raise AssertionError(f"{account}: no mail with state {state}")


def start_daemon(ctx: Context) -> Daemon:
    """Give every demo account the test password and start the daemon."""
    with ctx.sessions.begin() as session:
        import_directory(session, parse_org(demo_org()), actor="test", now=ctx.clock())
        people = [person.account for person, _account in accounts.list_accounts(session)]
        accounts.set_password(
            session,
            people[0],
            PASSWORD,
            temporary=False,
            actor="test",
            now=ctx.clock(),
            policy=ctx.login_policy,
        )
        # One argon2 hash (a seventh of a second) serves every account of the test bureau.
        first = accounts.get_account(session, people[0])
        for account in people[1:]:
            row = accounts.get_account(session, account)
            row.password_hash, row.password_temporary = first.password_hash, False
            row.password_changed_at = first.password_changed_at
    # The periodic jobs' current slots are taken now, while there is nothing to report, so the
    # daemon's start-up catch-up cannot send, say, this week's report in the middle of a test.
    run_due_jobs(ctx, ctx.clock())
    return Daemon(ctx)


@contextlib.contextmanager
def running_bureau(
    tmp_path: Path, database_url: str, system_key_home: Path, **sections: dict[str, Any]
) -> Iterator[Daemon]:
    """The demo bureau running, its config's sections overridden as ``make_config`` does."""
    config = make_config(tmp_path, database_url, **sections)
    seed_keyring(config, system_key_home)
    ctx = Context.open(config)
    upgrade(ctx.engine)
    running = start_daemon(ctx)
    try:
        yield running
    finally:
        running.stop()
        ctx.close()


@pytest.fixture
def daemon(tmp_path: Path, database_url: str, system_key_home: Path) -> Iterator[Daemon]:
    """The demo bureau running, with no step asking for a signed reply (see test_signed_flow)."""
    with running_bureau(
        tmp_path, database_url, system_key_home, signing={"require_signature": []}
    ) as running:
        yield running


def text(mail: EmailMessage) -> str:
    """The plain-text body of a mail Yizhan sent (inside its PGP/MIME signature)."""
    body = mail.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def one(d: Daemon, account: str) -> EmailMessage:
    """The single next mail for ``account``."""
    (mail,) = d.inbox(account)
    return mail


def reply(d: Daemon, account: str, to_mail: EmailMessage, text: str) -> None:
    """Reply as a mail client would: to the Reply-To, quoting the original below."""
    original = to_mail.get_body(("plain",))
    quoted = (
        "\n".join("> " + line for line in original.get_content().splitlines()) if original else ""
    )
    d.send(
        account,
        str(to_mail["Reply-To"] or to_mail["From"]),
        "Re: " + str(to_mail["Subject"]),
        f"{text}\n\n在 2026年11月25日 10:00，驛站 写道：\n{quoted}",
        In_Reply_To=str(to_mail["Message-ID"]),
    )


def show_document(d: Daemon, ref: str) -> dict[str, Any]:
    """`yizhan doc show REF --json`, run as a program against the daemon's database."""
    config = d.ctx.config
    path = config.data_dir / "yizhan.toml"
    path.write_text(
        f'[yizhan]\ndata_dir = "{config.data_dir}"\nsecret = "{config.secret}"\n'
        f'[database]\nurl = "{config.database_url}"\n',
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "yizhan", "doc", "show", ref, "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "YIZHAN_CONFIG": str(path)},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    shown: dict[str, Any] = json.loads(result.stdout)
    return shown


def test_mail_to_a_person_reaches_their_mailbox(daemon: Daemon) -> None:
    # Ordinary work mail to account@<OA domain> goes on to the person's own mailbox.
    daemon.send("wangfang", "lijun@oa.example", "會議材料", "請查收。")
    (got,) = daemon.inbox("lijun")
    assert got["Subject"] == "會議材料"
    assert "請查收" in got.get_body(("plain",)).get_content()


def test_internal_report_with_rejection_revision_and_delegation(daemon: Daemon) -> None:
    # 內部簽報: staff → unit head (rejects, then approves the revision) → bureau leader, who is
    # away and has delegated to another leader; the result goes back to the author.
    head, leader = "liangguoqiang", "sunlimin"
    until = (datetime.date.today() + datetime.timedelta(days=30)).isoformat()
    daemon.send(leader, "cmd@oa.example", "授權", f"授權 李軍 至 {until}")
    (confirm,) = daemon.inbox(leader)
    assert "李軍" in confirm.get_body(("plain",)).get_content()

    daemon.send("xiewenbin", "qianbao@oa.example", "關於購置檢測設備的請示", "擬購置設備一台。")
    daemon.inbox("xiewenbin")  # the author's confirmation
    (ask,) = daemon.inbox(head)
    assert ask["X-Yizhan-Action"] == "approve"
    assert ask["X-Yizhan-Kind"] == "qianbao"
    assert str(ask["Reply-To"]).startswith("r+")
    doc_id = ask["X-Yizhan-Doc"]

    reply(daemon, head, ask, "退回：請補充預算")
    (confirm,) = daemon.inbox(head)
    (returned,) = daemon.inbox("xiewenbin")
    assert "請補充預算" in returned.get_body(("plain",)).get_content()
    assert returned["X-Yizhan-Action"] == "handle"

    reply(daemon, "xiewenbin", returned, "擬購置設備一台，預算五萬元。")
    daemon.inbox("xiewenbin")
    (ask2,) = daemon.inbox(head)
    reply(daemon, head, ask2, "同意")
    daemon.inbox(head)

    # The bureau leader is away: the step goes to the delegate, marked 代.
    (ask3,) = daemon.inbox("lijun")
    assert ask3["X-Yizhan-Doc"] == doc_id
    assert "代" in ask3.get_body(("plain",)).get_content()
    reply(daemon, "lijun", ask3, "同意，抓緊辦理")
    daemon.inbox("lijun")
    daemon.until("xiewenbin", "closed")

    # A second reply on a finished step is answered, and changes nothing.
    reply(daemon, "lijun", ask3, "同意")
    (again,) = daemon.inbox("lijun")
    assert "已" in again.get_body(("plain",)).get_content()


def scan_with(d: Daemon, clamd_socket: str) -> None:
    """Have the gateway's content rules use the test clamd, so that mail may carry files."""
    d.ctx.config.rules_file.parent.mkdir(parents=True, exist_ok=True)
    d.ctx.config.rules_file.write_text(
        f'[content.scanner]\nsocket = "{clamd_socket}"\ntimeout = 20\n', encoding="utf-8"
    )


def files_of(mail: EmailMessage) -> list[tuple[str, bytes]]:
    """The files a mail from Yizhan carries, in order, as (name, bytes)."""
    found: list[tuple[str, bytes]] = []
    for part in mail.walk():
        name = part.get_filename()
        if name and part.get_content_type() != "application/pgp-signature":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            found.append((name, payload))
    return found


def test_the_files_of_a_report_go_with_each_request(
    daemon: Daemon, clamd_socket: str, content_files: Any
) -> None:
    # The unit head asked to approve a 簽報 gets its files with the request and sees them
    # named; a revision that brings files replaces them, one that brings only its signature's
    # logo (an Outlook reply) keeps them.
    scan_with(daemon, clamd_socket)
    head, author = "liangguoqiang", "xiewenbin"
    budget = content_files.pdf(["設備預算：五萬元"], title="預算表")
    daemon.send(
        author,
        "qianbao@oa.example",
        "關於購置檢測設備的請示",
        "擬購置設備一台，預算見附件。",
        files={"預算表.pdf": budget},
    )
    daemon.inbox(author)
    ask = one(daemon, head)
    assert files_of(ask) == [("預算表.pdf", budget)]
    assert "預算表.pdf" in text(ask)

    reply(daemon, head, ask, "退回：請附報價單")
    one(daemon, head)
    returned = one(daemon, author)
    assert files_of(returned) == []  # the author has the files: a send-back does not repeat them
    quote = content_files.zip({"報價.txt": "報價四萬八千元".encode()})
    daemon.send(
        author,
        str(returned["Reply-To"]),
        "Re: " + str(returned["Subject"]),
        "擬購置設備一台，報價見附件，預算不變。",
        files={"報價單.zip": quote},
    )
    daemon.inbox(author)
    ask2 = one(daemon, head)
    assert files_of(ask2) == [("報價單.zip", quote)]

    reply(daemon, head, ask2, "退回：請寫明交貨期")
    one(daemon, head)
    returned = one(daemon, author)
    revision = EmailMessage()
    revision["From"] = f"{author}@bureau.example"
    revision["To"] = str(returned["Reply-To"])
    revision["Subject"] = "Re: " + str(returned["Subject"])
    revision.set_content("擬購置設備一台，交貨期三十天。")
    revision.add_alternative(
        '<p>擬購置設備一台，交貨期三十天。</p><img src="cid:logo001@bureau">', subtype="html"
    )
    html = revision.get_body(("html",))
    assert html is not None
    html.add_related(  # as Outlook sends it: inline, named, shown by the HTML
        content_files.png(),
        "image",
        "png",
        cid="<logo001@bureau>",
        disposition="inline",
        filename="image001.png",
    )
    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=30) as client:
        client.login(author, PASSWORD)
        client.send_message(revision)
    daemon.inbox(author)
    ask3 = one(daemon, head)
    assert "交貨期三十天" in text(ask3)
    assert files_of(ask3) == [("報價單.zip", quote)]


def test_reply_from_someone_not_asked_is_refused_and_reported(daemon: Daemon) -> None:
    # 第七條: acting in another's name is refused and the IT department is told.
    daemon.send("xiewenbin", "qianbao@oa.example", "請示", "內容")
    daemon.inbox("xiewenbin")
    (ask,) = daemon.inbox("liangguoqiang")
    reply(daemon, "hanxue", ask, "同意")
    (refused,) = daemon.inbox("hanxue")
    assert "未受理" in refused.get_body(("plain",)).get_content()
    (report,) = daemon.inbox("wuhaifeng")
    assert "hanxue" in report.get_body(("plain",)).get_content()


def test_outgoing_document_from_draft_to_receipt(daemon: Daemon) -> None:
    # 局發文: draft → unit head → office 核稿 (returns it once) → 簽發 by the delegate of a
    # leader who is away → number → seal → every clerk in scope signs for receipt
    # (第九條, 第二十條, 第二十一條); the drafter follows it by mail.
    until = (datetime.date.today() + datetime.timedelta(days=10)).isoformat()
    daemon.send("sunlimin", "cmd@oa.example", "授權", f"DELEGATE lijun UNTIL {until}")
    daemon.inbox("sunlimin")
    daemon.send(
        "songjia",
        "fawen@oa.example",
        "[加急]關於加強進口食品檢驗的通知",
        "主送：大連分局、丹東分局\n抄送：財務處\n\n各分局：請加強進口食品檢驗。",
    )
    daemon.inbox("songjia")
    (ask,) = daemon.inbox("liangguoqiang")
    reply(daemon, "liangguoqiang", ask, "同意")
    daemon.inbox("liangguoqiang")
    (check,) = daemon.inbox("liuyang")
    reply(daemon, "liuyang", check, "退回：請寫明檢驗範圍")
    daemon.inbox("liuyang")
    (returned,) = daemon.inbox("songjia")
    assert returned["X-Yizhan-State"] == "returned"
    assert "請寫明檢驗範圍" in returned.get_body(("plain",)).get_content()
    reply(
        daemon,
        "songjia",
        returned,
        "主送：大連分局、丹東分局\n抄送：財務處\n\n各分局：請加強進口肉類和水產品檢驗。",
    )
    daemon.inbox("songjia")
    for approver in ("liangguoqiang", "liuyang", "lijun"):
        (ask,) = daemon.inbox(approver)
        assert ask["X-Yizhan-Action"] == "approve"
        assert ask["X-Yizhan-Urgency"] == "加急"
        if approver == "lijun":
            # The sign-off was asked of 孫立民, who is away: it reaches 李軍, marked 代.
            assert "代" in ask.get_body(("plain",)).get_content()
        reply(daemon, approver, ask, "同意")
        daemon.inbox(approver)
    (seal,) = daemon.inbox("zhoujing")
    assert seal["X-Yizhan-Action"] == "seal"
    number = str(seal["X-Yizhan-Number"])
    assert number.startswith("遼檢監〔") and number.endswith("〕1號")
    reply(daemon, "zhoujing", seal, "用印")
    daemon.inbox("zhoujing")
    for clerk in ("tianlu", "panting", "caoyaqin"):
        (doc,) = daemon.inbox(clerk)
        assert doc["X-Yizhan-Action"] == "receive"
        assert str(doc["X-Yizhan-Number"]) == number
        assert "請加強進口肉類和水產品檢驗" in doc.get_body(("plain",)).get_content()
        reply(daemon, clerk, doc, "簽收")
        daemon.inbox(clerk)
    updates = daemon.until("songjia", "closed")
    final = next(m for m in updates if m["X-Yizhan-State"] == "closed")
    trail = final.get_body(("plain",)).get_content()
    for name in ("梁國強", "劉洋", "李軍（代 孫立民）", "周靜", "田璐"):
        assert name in trail

    # An administrator looks the document up by its number.
    shown = show_document(daemon, number)
    assert shown["state"] == "closed" and shown["number"] == number
    assert {s["name"] for s in shown["steps"]} >= {"review", "check", "signoff", "seal"}
    assert all(s["state"] != "waiting" for s in shown["steps"])


def test_incoming_document_registered_instructed_and_handled(daemon: Daemon) -> None:
    # 收文: a clerk registers a document from outside; the office proposes (擬辦); the leader
    # sends the proposal back once, then instructs (批示) naming the handling unit, whose
    # clerk is away: her delegate handles it (DONE) and the document closes.
    until = (datetime.date.today() + datetime.timedelta(days=10)).isoformat()
    daemon.send("xuna", "cmd@oa.example", "授權", f"授權 馮剛 至 {until}")
    daemon.inbox("xuna")
    daemon.send("wangfang", "shouwen@oa.example", "海關總署關於口岸衛生檢疫的通知", "原文如下。")
    daemon.inbox("wangfang")
    (propose,) = daemon.inbox("chenzhigang")
    assert propose["X-Yizhan-Number"] is not None
    reply(daemon, "chenzhigang", propose, "同意，擬請財務處辦理")
    daemon.inbox("chenzhigang")
    (instruct,) = daemon.inbox("lijun")
    reply(daemon, "lijun", instruct, "退回：應由衛生檢疫處辦理")
    daemon.inbox("lijun")
    (again,) = daemon.inbox("chenzhigang")
    assert "衛生檢疫處" in again.get_body(("plain",)).get_content()
    reply(daemon, "chenzhigang", again, "同意，擬請衛生檢疫處辦理")
    daemon.inbox("chenzhigang")
    (instruct,) = daemon.inbox("lijun")
    reply(daemon, "lijun", instruct, "同意：衛生檢疫處")
    daemon.inbox("lijun")
    (handle,) = daemon.inbox("fenggang")
    assert handle["X-Yizhan-Action"] == "handle"
    reply(daemon, "fenggang", handle, "辦結：已部署口岸檢疫")
    daemon.inbox("fenggang")
    updates = daemon.until("wangfang", "closed")
    trail = next(m for m in updates if m["X-Yizhan-State"] == "closed")
    assert "馮剛（代 許娜）" in trail.get_body(("plain",)).get_content()


def test_department_letter_forwarding_a_document_is_refused(daemon: Daemon) -> None:
    # 第二十二條: a department letter may not carry a forwarded document; the gateway refuses it
    # at DATA with the rule named, so nothing is stored and the sender's client shows why.
    msg = EmailMessage()
    msg["From"] = "songjia@bureau.example"
    msg["To"] = "hanjian@oa.example"
    msg["Subject"] = "轉發文件"
    msg.set_content("主送：財務處\n\n請閱。")
    inner = EmailMessage()
    inner["Subject"] = "原件"
    inner.set_content("原件內容")
    msg.add_attachment(inner)
    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=30) as client:
        client.login("songjia", PASSWORD)
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.send_message(msg)
    assert refused.value.smtp_code == 550
    assert b"22" in refused.value.smtp_error


def test_department_letter_approved_and_received(daemon: Daemon) -> None:
    # 處室函: the unit head returns it once, approves the revision; the addressed unit's clerk
    # has delegated to a colleague, who signs for it.
    until = (datetime.date.today() + datetime.timedelta(days=10)).isoformat()
    daemon.send("caoyaqin", "cmd@oa.example", "授權", f"授權 pengliang 至 {until}")
    daemon.inbox("caoyaqin")
    daemon.send("songjia", "hanjian@oa.example", "關於借用檢測設備的函", "主送：財務處\n\n請支持。")
    daemon.inbox("songjia")
    (ask,) = daemon.inbox("liangguoqiang")
    reply(daemon, "liangguoqiang", ask, "不同意：請寫明借用期限")
    daemon.inbox("liangguoqiang")
    (returned,) = daemon.inbox("songjia")
    reply(daemon, "songjia", returned, "主送：財務處\n\n請支持，借用兩周。")
    daemon.inbox("songjia")
    (ask,) = daemon.inbox("liangguoqiang")
    reply(daemon, "liangguoqiang", ask, "批准")
    daemon.inbox("liangguoqiang")
    (letter,) = daemon.inbox("pengliang")
    assert "借用兩周" in letter.get_body(("plain",)).get_content()
    reply(daemon, "pengliang", letter, "RECEIVED")
    daemon.inbox("pengliang")
    daemon.until("songjia", "closed")


def test_typo_and_html_only_phone_reply(daemon: Daemon) -> None:
    # A typo gets the step's help; an HTML-only top-posted phone reply is understood.
    daemon.send("xiewenbin", "qianbao@oa.example", "請示", "內容")
    daemon.inbox("xiewenbin")
    (ask,) = daemon.inbox("liangguoqiang")
    reply(daemon, "liangguoqiang", ask, "同億")
    (help_,) = daemon.inbox("liangguoqiang")
    assert "同意" in help_.get_body(("plain",)).get_content()
    phone = EmailMessage()
    phone["From"] = "liangguoqiang@bureau.example"
    phone["To"] = str(ask["Reply-To"])
    phone["Subject"] = "回复：" + str(ask["Subject"])
    phone["In-Reply-To"] = str(ask["Message-ID"])
    phone.set_content(
        "<div>同意</div><div><br></div><div>发自我的iPhone</div>"
        "<div><br><blockquote type=cite>原文</blockquote></div>",
        subtype="html",
    )
    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=30) as client:
        client.login("liangguoqiang", PASSWORD)
        client.send_message(phone)
    daemon.inbox("liangguoqiang")
    (nxt,) = daemon.inbox("sunlimin")
    assert nxt["X-Yizhan-Action"] == "approve"
