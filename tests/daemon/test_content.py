"""Tests for daemon.screening over real SMTP: a corpus of messages the tests build, each sent to the
gateway (start_smtp, content check wired in its DATA hook) and answered 250 or refused by the
rule it breaks; the test clamd (scripts/clamd.sh, $YIZHAN_TEST_CLAMD) scans the attachments.

Issue 7: true markings in every place and format, harmless uses of the same words, EICAR plain
and zipped, nested zips, a zip bomb, disguised programs, GBK and Big5 subjects, material bound
outside (第十七條), department letters forwarding documents (第二十二條), and a clamd that is
down. Then what a refusal leaves behind (reply, IT notice, audit, nothing stored) and the
quarantine for messages refused after acceptance.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import functools
import smtplib
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select

from yizhan.cli.quarantine import add_parser as add_quarantine_parser
from yizhan.cli.quarantine import format_entries
from yizhan.daemon.config import ConfigError
from yizhan.daemon.context import Context
from yizhan.daemon.gateway.server import SmtpServer, start_smtp
from yizhan.daemon.screening.check import check_accepted, check_content_rules, check_message
from yizhan.daemon.screening.quarantine import (
    delete_entry,
    quarantine_accepted,
    quarantine_of,
    release_entry,
)
from yizhan.mailstore import accounts
from yizhan.mailstore.directory import load_directory, save_person
from yizhan.mailstore.models import AuditEntry, Inbound, OutboundMessage
from yizhan.mailstore.quarantine import QuarantineError
from yizhan.routing.content import Verdict

T = TypeVar("T")
PASSWORD = "Qingshui-River-88"
SENDERS = ("wangfang", "helei", "songjia")


# --- The gateway ----------------------------------------------------------------------------------


@dataclass
class Gateway:
    """A gateway serving in a thread of its own, and a way to send it one message."""

    ctx: Context
    server: SmtpServer
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    clients: dict[str, smtplib.SMTP] = field(default_factory=dict)

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def send(
        self, data: bytes, *, account: str = "wangfang", to: Sequence[str] = ("fawen@oa.example",)
    ) -> tuple[int, str]:
        """Send as ``account``; the final reply to DATA as (code, text)."""
        client = self.clients.get(account)
        if client is None:
            client = smtplib.SMTP("127.0.0.1", self.server.port, timeout=60)
            client.login(account, PASSWORD)
            self.clients[account] = client
        client.mail(f"{account}@oa.example", ["BODY=8BITMIME"])
        for rcpt in to:
            code, text = client.rcpt(rcpt)
            assert code == 250, text
        code, reply = client.data(data)
        client.rset()
        return code, reply.decode("utf-8", "replace")

    def settle(self) -> None:
        """Wait until every 250'd message has its inbound row (the pickup makes them)."""
        deadline = time.monotonic() + 20
        while self.server.intake.pickup.waiting() and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        for client in self.clients.values():
            client.quit()

        async def close() -> None:
            self.server.close()
            await self.server.wait_closed()

        self.call(close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def rules_file(ctx: Context, socket: str, extra: str = "") -> None:
    """Write the [content] table of the rules file (the IT department's file)."""
    ctx.config.rules_file.parent.mkdir(parents=True, exist_ok=True)
    ctx.config.rules_file.write_text(
        f'[content.scanner]\nsocket = "{socket}"\ntimeout = 20\n{extra}', encoding="utf-8"
    )


@pytest.fixture
def start_gateway(bureau: Context) -> Iterator[Callable[[str], Gateway]]:
    """Start gateways for the demo bureau with clamd at the given socket; pengliang's own
    mailbox is outside the organisation (qq.com)."""
    with bureau.sessions.begin() as session:
        for account in SENDERS:
            accounts.set_password(
                session,
                account,
                PASSWORD,
                temporary=False,
                actor="test",
                now=bureau.clock(),
                policy=bureau.login_policy,
            )
        person = load_directory(session).people["pengliang"]
        save_person(
            session, dataclasses.replace(person, email="pengliang@qq.com"), now=bureau.clock()
        )
    running: list[Gateway] = []

    def start(socket: str, extra: str = "") -> Gateway:
        rules_file(bureau, socket, extra)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="content-test-loop", daemon=True)
        thread.start()
        server = asyncio.run_coroutine_threadsafe(start_smtp(bureau), loop).result(20)
        gateway = Gateway(ctx=bureau, server=server, loop=loop, thread=thread)
        running.append(gateway)
        return gateway

    yield start
    for gateway in running:
        gateway.stop()


@pytest.fixture
def gateway(start_gateway: Callable[..., Gateway], clamd_socket: str) -> Gateway:
    """A gateway whose attachments the test clamd scans; text documents are limited to 100 KB."""
    return start_gateway(clamd_socket, '[content.sizes]\ntext = "100K"\n')


# --- The corpus -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One message of the corpus and what the gateway must answer: "accept" or a rule name."""

    name: str
    data: bytes
    expect: str
    account: str = "wangfang"
    to: tuple[str, ...] = ("fawen@oa.example",)
    #: Which test sends it (set by :func:`corpus`).
    group: str = ""


Part = tuple[str, bytes]


def mail(
    subject: str = "關於報送材料的通知",
    body: str = "各處室：\n請按時報送。\n",
    *,
    attachments: Sequence[Part] = (),
    html: str | None = None,
    charset: str = "utf-8",
    raw_subject: bytes | None = None,
    filename_charset: str | None = None,
    inner: EmailMessage | None = None,
    sender: str = "wangfang@oa.example",
) -> bytes:
    """A message as a mail client sends it; ``raw_subject`` replaces the Subject line's bytes."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "fawen@oa.example"
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{time.monotonic_ns()}@client.test>"
    if html is not None:
        msg.set_content(html, subtype="html")
    elif charset == "utf-8":
        msg.set_content(body)
    else:
        msg.set_content(body.encode(charset), maintype="text", subtype="plain", cte="8bit")
        msg.set_param("charset", charset)
    for name, data in attachments:
        filename: Any = (filename_charset, "", name) if filename_charset else name
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=filename)
    if inner is not None:
        msg.add_attachment(inner)
    data = msg.as_bytes(policy=default_policy.clone(linesep="\r\n"))
    if raw_subject is not None:
        head, sep, rest = data.partition(b"\r\n\r\n")
        lines = [
            b"Subject: " + raw_subject if line.lower().startswith(b"subject:") else line
            for line in head.split(b"\r\n")
        ]
        data = b"\r\n".join(lines) + sep + rest
    return data


def encoded(text: str, charset: str) -> bytes:
    return f"=?{charset}?B?{base64.b64encode(text.encode(charset)).decode()}?=".encode()


def forwarded(subject: str, body: str = "原件內容") -> EmailMessage:
    inner = EmailMessage()
    inner["From"] = "someone@bureau.example"
    inner["Subject"] = subject
    inner.set_content(body)
    return inner


@functools.cache
def corpus(f: Any) -> list[Case]:
    """Every message the issue asks for, built here; ``f`` is the file builders."""
    harmless_docx = f.docx(["關於報送統計數據的通知", "各處室："])
    classified = [
        Case("subject-star", mail("秘密★1年 關於加強口岸管理的通知"), "classified"),
        Case("subject-bracket", mail("【機密】關於口岸檢疫工作的請示"), "classified"),
        Case(
            "subject-gbk",
            mail(raw_subject=encoded("【机密】关于口岸工作的请示", "gbk")),
            "classified",
        ),
        Case(
            "subject-big5",
            mail(raw_subject=encoded("機密：關於口岸工作的請示", "big5")),
            "classified",
        ),
        Case(
            "subject-gb2312-label",
            mail(raw_subject=encoded("绝密 关于某事项", "gb2312")),
            "classified",
        ),
        Case(
            "subject-raw-8bit-gbk", mail(raw_subject="绝密 关于某事项".encode("gbk")), "classified"
        ),
        Case("subject-tag-shemi", mail("【涉密】人員名單"), "classified"),
        Case(
            "body-head",
            mail(body="秘密★1年\n\n遼寧出入境檢驗檢疫局\n關於某事項的通知\n"),
            "classified",
        ),
        Case("body-gbk", mail(body="机密\n关于某事项的通知\n", charset="gbk"), "classified"),
        Case("body-big5", mail(body="機密★6個月\n關於某事項\n", charset="big5"), "classified"),
        Case("body-label", mail(body="各處室：\n本件密級：秘密。\n"), "classified"),
        Case("body-html", mail(html="<p>機密★6個月</p><p>關於某事項</p>"), "classified"),
        Case(
            "name-star", mail(attachments=[("秘密★1年-名單.xlsx", f.xlsx(["姓名"]))]), "classified"
        ),
        Case(
            "name-rfc2231-gbk",
            mail(attachments=[("【机密】方案.docx", harmless_docx)], filename_charset="gbk"),
            "classified",
        ),
        Case(
            "docx-header",
            mail(attachments=[("通知.docx", f.docx(["關於"], headers=["秘密★1年"]))]),
            "classified",
        ),
        Case(
            "docx-first-line",
            mail(attachments=[("通知.docx", f.docx(["機密", "關於某事項"]))]),
            "classified",
        ),
        Case(
            "docx-title",
            mail(attachments=[("通知.docx", f.docx(["x"], core={"title": "機密 關於某事項"}))]),
            "classified",
        ),
        Case(
            "docx-custom",
            mail(attachments=[("通知.docx", f.docx(["x"], custom={"密級": "秘密"}))]),
            "classified",
        ),
        Case(
            "xlsx-page-header",
            mail(attachments=[("表.xlsx", f.xlsx(["姓名"], header="機密"))]),
            "classified",
        ),
        Case(
            "xlsx-first-cell",
            mail(attachments=[("表.xlsx", f.xlsx(["絕密", "姓名"]))]),
            "classified",
        ),
        Case(
            "pptx-slide",
            mail(attachments=[("匯報.pptx", f.pptx([["秘密★1年", "匯報"]]))]),
            "classified",
        ),
        Case(
            "pptx-keywords",
            mail(attachments=[("匯報.pptx", f.pptx([["x"]], core={"keywords": "機密"}))]),
            "classified",
        ),
        Case(
            "pdf-text",
            mail(attachments=[("通知.pdf", f.pdf(["秘密★1年", "关于某事项"]))]),
            "classified",
        ),
        Case(
            "pdf-title",
            mail(attachments=[("通知.pdf", f.pdf(["x"], title="【绝密】关于某事项"))]),
            "classified",
        ),
        Case(
            "pdf-keywords",
            mail(attachments=[("通知.pdf", f.pdf(["x"], keywords="秘密"))]),
            "classified",
        ),
        Case(
            "odt-text", mail(attachments=[("通知.odt", f.odt(["機密★10年", "關於"]))]), "classified"
        ),
        Case(
            "odt-property",
            mail(attachments=[("通知.odt", f.odt(["x"], user_defined={"密級": "機密"}))]),
            "classified",
        ),
        Case(
            "txt-gbk",
            mail(attachments=[("通知.txt", "秘密★1年\n关于某事项\n".encode("gbk"))]),
            "classified",
        ),
        Case(
            "txt-big5",
            mail(attachments=[("通知.txt", "機密\n關於某事項\n".encode("big5"))]),
            "classified",
        ),
        Case(
            "txt-utf8-label",
            mail(attachments=[("通知.txt", "x\n密级：绝密\n".encode())]),
            "classified",
        ),
        Case(
            "doc-97",
            mail(attachments=[("通知.doc", f.ole_doc(["秘密★1年", "關於加強管理的通知"]))]),
            "classified",
        ),
        Case(
            "zip-member-docx",
            mail(attachments=[("材料.zip", f.zip({"通知.docx": f.docx(["x"], headers=["機密"])}))]),
            "classified",
        ),
        Case(
            "zip-gbk-member-name",
            mail(
                attachments=[
                    ("材料.zip", f.zip({"秘密★1年-名單.docx": harmless_docx}, utf8_names=False))
                ]
            ),
            "classified",
        ),
        Case("forwarded-mail", mail(inner=forwarded("【秘密】原件")), "classified"),
    ]
    harmless = [
        Case(
            "training-notice",
            mail(
                "關於開展保守工作秘密培訓的通知", "請大家保守工作秘密，不得在OA系統處理涉密文件。\n"
            ),
            "accept",
        ),
        Case(
            "training-gbk",
            mail(raw_subject=encoded("关于开展保守工作秘密培训的通知", "gbk")),
            "accept",
        ),
        Case("training-big5", mail(raw_subject=encoded("涉密人員保密培訓通知", "big5")), "accept"),
        Case("secret-sentence", mail(body="秘密，是每個人都有的。\n以上。\n"), "accept"),
        Case(
            "docx-training",
            mail(
                attachments=[
                    (
                        "培訓.docx",
                        f.docx(["保密培訓", "請保守工作秘密。"], core={"title": "保密培訓"}),
                    )
                ]
            ),
            "accept",
        ),
        Case(
            "pdf-article-14",
            mail(
                attachments=[
                    ("辦法.pdf", f.pdf(["第十四條 凡涉及國家秘密的文件", "一律不得在OA系統上處理"]))
                ]
            ),
            "accept",
        ),
        Case(
            "pptx-quoted-example",
            mail(attachments=[("培訓.pptx", f.pptx([["保密培訓"], ["密級標註格式如“秘密★1年”"]]))]),
            "accept",
        ),
        Case(
            "xlsx-keywords",
            mail(attachments=[("表.xlsx", f.xlsx(["x"], core={"keywords": "保守秘密;培訓"}))]),
            "accept",
        ),
        Case(
            "txt-gbk-trade-secret",
            mail(attachments=[("講座.txt", "商业秘密保护讲座\n时间：周三\n".encode("gbk"))]),
            "accept",
        ),
        Case(
            "odt-not-classified",
            mail(attachments=[("a.odt", f.odt(["x"], user_defined={"密級": "非密"}))]),
            "accept",
        ),
        Case(
            "name-training", mail(attachments=[("保守工作秘密培訓.pdf", f.pdf(["培訓"]))]), "accept"
        ),
        Case(
            "zip-harmless",
            mail(
                attachments=[("材料.zip", f.zip({"通知.docx": harmless_docx, "圖.png": f.png()}))]
            ),
            "accept",
        ),
        Case(
            "nested-zip-2",
            mail(attachments=[("材料.zip", f.nested_zip(2, {"說明.txt": b"ok"}))]),
            "accept",
        ),
        Case("png", mail(attachments=[("照片.png", f.png())]), "accept"),
    ]
    dangerous = [
        Case("eicar", mail(attachments=[("readme.txt", f.eicar)]), "virus"),
        Case(
            "eicar-zip",
            mail(attachments=[("content_files.zip", f.zip({"readme.txt": f.eicar}))]),
            "virus",
        ),
        Case(
            "eicar-nested-zip",
            mail(attachments=[("content_files.zip", f.nested_zip(2, {"r.txt": f.eicar}))]),
            "virus",
        ),
        Case("eicar-as-pdf", mail(attachments=[("報告.pdf", f.eicar)]), "virus"),
        Case(
            "nested-zip-4",
            mail(attachments=[("deep.zip", f.nested_zip(4, {"a.txt": b"x"}))]),
            "archive_limits",
        ),
        Case("zip-bomb", mail(attachments=[("bomb.zip", f.zip_bomb())]), "archive_limits"),
        Case(
            "encrypted-zip",
            mail(attachments=[("e.zip", f.encrypted_zip("a.txt", b"x"))]),
            "archive_limits",
        ),
        Case("disguised-exe", mail(attachments=[("報告.pdf", f.exe())]), "attachment_type"),
        Case(
            "exe-in-zip",
            mail(attachments=[("工具.zip", f.zip({"setup.pdf": f.exe()}))]),
            "attachment_type",
        ),
        Case("vbs-script", mail(attachments=[("run.vbs", b'MsgBox "hi"\r\n')]), "attachment_type"),
        Case(
            "docm-macros",
            mail(attachments=[("宏.docm", f.docx(["x"], macros=True))]),
            "attachment_type",
        ),
        Case(
            "pdf-javascript",
            mail(attachments=[("表單.pdf", f.pdf(["x"], javascript=True))]),
            "attachment_type",
        ),
        Case(
            "7z", mail(attachments=[("a.7z", b"7z\xbc\xaf\x27\x1c" + bytes(64))]), "attachment_type"
        ),
        Case("rlo-name", mail(attachments=[("報告\u202efdp.exe", f.exe())]), "attachment_type"),
        Case(
            "text-too-large", mail(attachments=[("log.txt", b"line\n" * 30000)]), "attachment_size"
        ),
        Case(
            "tool-published-by-it",
            mail(
                "TOOLS ADD setup",
                "VPN 客戶端",
                attachments=[("setup.exe", f.exe())],
                sender="helei@oa.example",
            ),
            "accept",
            account="helei",
            to=("cmd@oa.example",),
        ),
        Case(
            "tool-published-by-it-in-chinese",
            mail(
                "工具 發布 setup", attachments=[("setup.exe", f.exe())], sender="helei@oa.example"
            ),
            "accept",
            account="helei",
            to=("cmd@oa.example",),
        ),
        Case(
            "program-from-it-not-publishing",
            mail(attachments=[("setup.exe", f.exe())], sender="helei@oa.example"),
            "attachment_type",
            account="helei",
            to=("cmd@oa.example",),
        ),
        Case(
            "tool-publishing-not-from-it",
            mail("TOOLS ADD setup", attachments=[("setup.exe", f.exe())]),
            "attachment_type",
            to=("cmd@oa.example",),
        ),
    ]
    outside = [
        Case(
            "manual-outside",
            mail("OA系統操作手冊（第三版）"),
            "outside_domains",
            to=("pengliang@oa.example",),
        ),
        Case(
            "ziliao-and-outside",
            mail(),
            "outside_domains",
            to=("ziliao@oa.example", "pengliang@oa.example"),
        ),
        Case("ordinary-outside", mail("周末加班安排"), "accept", to=("pengliang@oa.example",)),
        Case("manual-inside", mail("OA系統操作手冊（第三版）"), "accept", to=("lijun@oa.example",)),
    ]
    letters = [
        Case(
            "letter-rfc822",
            mail("商洽事項", inner=forwarded("原件")),
            "forwarded_document",
            to=("hanjian@oa.example",),
        ),
        Case(
            "letter-fwd-subject",
            mail("轉發：關於某事項的通知"),
            "forwarded_document",
            to=("hanjian@oa.example",),
        ),
        Case(
            "letter-doc-number",
            mail(attachments=[("遼檢辦〔2024〕62號關於某事項的通知.pdf", f.pdf(["x"]))]),
            "forwarded_document",
            to=("hanjian@oa.example",),
        ),
        Case(
            "letter-forward-separator",
            mail(body="請閱。\n\n-------- 轉發郵件信息 --------\n發件人：某人\n"),
            "forwarded_document",
            to=("hanjian@oa.example",),
        ),
        Case(
            "letter-citing-a-number",
            mail("關於報送數據的函", "根據遼檢辦〔2024〕62號文件要求，請於月底前報送。\n"),
            "accept",
            to=("hanjian@oa.example",),
        ),
        Case(
            "letter-classified",
            mail("【秘密】關於商洽事項的函"),
            "classified",
            to=("hanjian@oa.example",),
        ),
    ]
    groups = {
        "classified": classified,
        "harmless": harmless,
        "dangerous": dangerous,
        "outside": outside,
        "letters": letters,
    }
    return [dataclasses.replace(c, group=g) for g, cases in groups.items() for c in cases]


def outcome(code: int, reply: str) -> str:
    if code == 250:
        return "accept"
    rule = reply.rpartition("(rule ")[2].rstrip(")")
    return rule if code == 550 or code == 552 else f"{code} {reply}"


def run_corpus(gateway: Gateway, cases: Sequence[Case]) -> None:
    """Send every case; fail once, listing each message whose answer was not the expected one."""
    wrong = []
    for case in cases:
        code, reply = gateway.send(case.data, account=case.account, to=case.to)
        got = outcome(code, reply)
        if got != case.expect:
            wrong.append(f"{case.name}: expected {case.expect}, got {got} ({code} {reply[:200]})")
    assert not wrong, "\n".join(wrong)


# --- Tests ----------------------------------------------------------------------------------------


def test_the_corpus_has_every_kind_of_message(content_files: Any) -> None:
    # Issue 7 asks for at least 60 messages; every rule is exercised both ways.
    cases = corpus(content_files)
    assert len(cases) >= 60 and len({c.name for c in cases}) == len(cases)
    expected = {c.expect for c in cases}
    assert expected >= {
        "accept",
        "classified",
        "virus",
        "archive_limits",
        "attachment_type",
        "attachment_size",
        "outside_domains",
        "forwarded_document",
    }


def test_classified_markings_in_every_place_and_format(
    gateway: Gateway, content_files: Any
) -> None:
    # 第十四條: subject (UTF-8, GBK, Big5, gb2312-labelled, raw 8-bit), body head and labels,
    # HTML, file names (RFC 2231 GBK too), docx/xlsx/pptx/pdf/odt/txt/doc text and properties,
    # zip members, forwarded mail.
    run_corpus(gateway, [c for c in corpus(content_files) if c.group == "classified"])


def test_harmless_uses_of_the_same_words_pass(gateway: Gateway, content_files: Any) -> None:
    # 保守工作秘密 in a training notice, 涉密人員 in a subject, quoted examples of markings,
    # the text of 第十四條, in every charset and format: all accepted and stored.
    cases = [c for c in corpus(content_files) if c.group == "harmless"]
    before = _count(gateway.ctx, Inbound)
    run_corpus(gateway, cases)
    gateway.settle()
    assert _count(gateway.ctx, Inbound) == before + len(cases)


def test_viruses_bombs_and_disguised_programs(gateway: Gateway, content_files: Any) -> None:
    # EICAR plain, zipped, nested and renamed; nesting past the limit; a 300 MB zip bomb; an
    # encrypted zip; programs under documents' names; macros; a script; sizes per kind. A
    # program the IT department sends to cmd@ is a tool being published, and passes.
    run_corpus(gateway, [c for c in corpus(content_files) if c.group == "dangerous"])


def test_material_never_goes_to_outside_mailboxes(gateway: Gateway, content_files: Any) -> None:
    # 第十七條: pengliang's own mailbox is at qq.com.
    run_corpus(gateway, [c for c in corpus(content_files) if c.group == "outside"])


def test_department_letters_may_not_forward(gateway: Gateway, content_files: Any) -> None:
    # 第二十二條: attached mail, a forwarding subject, another document's number, a client's
    # forward separator; a number merely cited passes; a classified letter cites art. 22 too.
    cases = [c for c in corpus(content_files) if c.group == "letters"]
    run_corpus(gateway, cases)
    code, reply = gateway.send(mail("【秘密】關於商洽事項的函"), to=("hanjian@oa.example",))
    assert code == 550 and "第二十二條" in reply and "art. 22" in reply


def test_a_refusal_is_explained_reported_and_nothing_is_stored(gateway: Gateway) -> None:
    # 550 5.7.1 with the reason in Chinese and English; a reply to the sender, a notice to the
    # head of the IT department, an audit entry; no inbound row.
    ctx = gateway.ctx
    before = _count(ctx, Inbound)
    code, reply = gateway.send(mail("秘密★1年 關於加強口岸管理的通知"))
    assert code == 550
    assert reply.startswith("5.7.1 未受理") and "第十四條" in reply and "art. 14" in reply
    assert "(rule classified)" in reply
    gateway.settle()
    assert _count(ctx, Inbound) == before
    with ctx.sessions() as session:
        sources = set(session.scalars(select(OutboundMessage.source)))
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "content.refused")
        ).one()
    assert any(s.endswith(":reply") for s in sources)
    assert any(s.endswith(":it:wuhaifeng") for s in sources)
    assert entry.actor == "wangfang" and entry.target == "classified"
    assert entry.detail["rcpt_tos"] == ["fawen@oa.example"]


def test_a_scanner_that_is_down_means_try_again_later(
    start_gateway: Callable[..., Gateway], tmp_path: Path
) -> None:
    # Never pass mail unscanned: an attachment waits (451); mail without attachments, and a
    # marking that refuses the message whatever the scan says, are answered at once.
    gateway = start_gateway(str(tmp_path / "no-clamd.sock"))
    code, reply = gateway.send(mail(attachments=[("照片.png", b"\x89PNG\r\n\x1a\n" + bytes(32))]))
    assert code == 451 and "4.3.0" in reply and "virus scanner" in reply
    assert gateway.send(mail())[0] == 250
    code, reply = gateway.send(mail("【機密】關於", attachments=[("a.txt", b"x")]))
    assert code == 550 and "(rule classified)" in reply


def test_a_broken_rules_file_means_try_again_later(
    start_gateway: Callable[..., Gateway], clamd_socket: str
) -> None:
    # An IT typo in the rules file refuses nothing by mistake and lets nothing through.
    gateway = start_gateway(clamd_socket, "[content.archives]\nmax_depth = 'three'\n")
    code, reply = gateway.send(mail())
    assert code == 451 and "(rule content_rules)" in reply


def test_rules_file_edits_apply_without_a_restart(gateway: Gateway, clamd_socket: str) -> None:
    # The IT department adds a word; the next message is judged with it.
    assert gateway.send(mail("【內部】通訊錄"))[0] == 250
    rules_file(gateway.ctx, clamd_socket, '[content.markings]\ntags = ["涉密", "內部"]\n')
    code, reply = gateway.send(mail("【內部】通訊錄 2"))
    assert code == 550 and "(rule classified)" in reply


# --- After acceptance: the quarantine -------------------------------------------------------------


def test_a_message_refused_after_acceptance_is_quarantined_released_and_deleted(
    bureau: Context, clamd_socket: str, content_files: Any
) -> None:
    # Issue 7.7: nothing lost. A later rule refuses an accepted message: it is held with the
    # reason, the sender and IT are told; IT releases one (accepted again, audited) and deletes
    # the other (its bytes are gone, the record stays).
    rules_file(bureau, clamd_socket)
    raw = mail("【機密】關於某事項")
    verdict = check_accepted(
        bureau,
        raw,
        rcpt_tos=["fawen@oa.example"],
        sender_account="wangfang",
        mail_from="wangfang@oa.example",
    )
    assert verdict is not None and verdict.rule == "classified"
    with bureau.sessions.begin() as session:
        held = quarantine_accepted(
            bureau,
            session,
            raw,
            verdict,
            inbound_id=None,
            mail_from="wangfang@oa.example",
            rcpt_tos=["fawen@oa.example"],
            sender_account="wangfang",
            auth_method="smtp-auth",
        )
    store = quarantine_of(bureau.config)
    assert store.read(held.id) == raw
    assert [e.id for e in store.entries()] == [held.id]
    assert "classified" in format_entries(store.entries(), bureau.config.tzinfo, as_json=False)
    with bureau.sessions() as session:
        sources = set(session.scalars(select(OutboundMessage.source)))
    assert any(s.endswith(":reply") for s in sources) and any(":it:" in s for s in sources)

    released = release_entry(bureau, held.id, by="helei")
    with bureau.sessions() as session:
        row = session.get(Inbound, released.released_as)
        actions = list(session.scalars(select(AuditEntry.action)))
    assert row is not None and row.state == "accepted" and row.sender_account == "wangfang"
    assert bureau.raw.read(row.path) == raw
    assert {"content.quarantined", "quarantine.release"} <= set(actions)
    # Released bytes pass the later check; a second release is refused.
    assert (
        check_accepted(
            bureau, raw, rcpt_tos=["fawen@oa.example"], sender_account="wangfang", mail_from="x"
        )
        is None
    )
    with pytest.raises(QuarantineError, match="already released"):
        release_entry(bureau, held.id, by="helei")

    other = quarantine_of(bureau.config).hold(
        mail("another"),
        rule="virus",
        status="5.7.1",
        reason_zh="病毒",
        reason_en="virus",
        mail_from="wangfang@oa.example",
        rcpt_tos=["fawen@oa.example"],
        sender_account="wangfang",
        now=bureau.clock(),
    )
    deleted = delete_entry(bureau, other.id, by="console")
    assert deleted.state == "deleted" and not (store.root / f"{other.id}.eml").exists()
    with pytest.raises(QuarantineError, match="deleted"):
        store.read(other.id)
    assert store.entries() == [] and len(store.entries(include_done=True)) == 2


def test_the_quarantine_verbs_parse() -> None:
    # The verbs cli.py adds: list [--all] [--json], release ID [--by], delete ID [--by].
    parser = argparse.ArgumentParser(prog="yizhan")
    add_quarantine_parser(parser.add_subparsers(dest="verb"))
    args = parser.parse_args(["quarantine", "release", "20260101T000000-abcdef12", "--by", "helei"])
    assert (args.quarantine_verb, args.id, args.by) == (
        "release",
        "20260101T000000-abcdef12",
        "helei",
    )
    assert parser.parse_args(["quarantine", "list", "--all", "--json"]).json


def test_check_message_without_the_gateway(
    bureau: Context, clamd_socket: str, content_files: Any
) -> None:
    # The entry point the gateway calls, with the rules and the scanner it would use.
    rules_file(bureau, clamd_socket)
    verdict = asyncio.run(
        check_message(
            bureau,
            mail(attachments=[("a.zip", content_files.zip({"x.txt": content_files.eicar}))]),
            rcpt_tos=["fawen@oa.example"],
            sender_account="wangfang",
            report=False,
        )
    )
    assert isinstance(verdict, Verdict) and verdict.rule == "virus"
    assert "Eicar-Test-Signature" in verdict.reason_en


def _count(ctx: Context, model: type[Any]) -> int:
    with ctx.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_yizhan_check_reports_the_content_rules(
    bureau: Context, clamd_socket: str, tmp_path: Path
) -> None:
    # `yizhan check` prints an OK line, warns about a scanner that does not answer, and fails
    # with every problem of a broken [content] table.
    rules_file(bureau, clamd_socket)
    lines = check_content_rules(bureau.config)
    assert lines[0].startswith("content rules OK") and len(lines) == 1
    rules_file(bureau, str(tmp_path / "none.sock"))
    assert "does not answer" in check_content_rules(bureau.config)[-1]
    rules_file(bureau, clamd_socket, "[content.sizes]\ndocument = 'big'\nfurniture = 1\n")
    with pytest.raises(ConfigError) as raised:
        check_content_rules(bureau.config)
    assert "content.sizes.document" in str(raised.value) and "furniture" in str(raised.value)
