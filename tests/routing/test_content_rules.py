"""Tests for the content rules other than markings, and for the table that orders them.

Each rule is called on literal facts (an Inspection), as routing is pure: viruses, types,
sizes, archives, outside domains (第十七條), forwarded documents (第二十二條), forbidden words.
"""

from __future__ import annotations

import pytest

from yizhan.routing.content import (
    DEFAULT_CONTENT,
    TABLE,
    ArchiveFacts,
    Attachment,
    Inspection,
    RecipientFacts,
    Verdict,
    content_from_dict,
    judge,
    judge_all,
)
from yizhan.routing.content.archives import ArchiveLimits
from yizhan.routing.content.attachment_types import AttachmentTypes
from yizhan.routing.content.forbidden_words import ForbiddenWords
from yizhan.routing.content.forwarded import ForwardedDocuments
from yizhan.routing.content.outside import (
    OutsideDomains,
    is_inside,
    organisation_domains,
    outside_addresses,
)
from yizhan.routing.content.sizes import SizeLimits
from yizhan.routing.content.virus import VirusFound

MiB = 1024 * 1024
LETTER = RecipientFacts(address="hanjian@oa.example", kind="module", module="hanjian")
MATERIALS = RecipientFacts(address="ziliao@oa.example", kind="module", module="ziliao")
DOMAINS = frozenset({"oa.example", "bureau.example"})


def inspection(*attachments: Attachment, **fields: object) -> Inspection:
    values: dict[str, object] = {
        "subject": "關於報送材料的通知",
        "body": "各處室：\n請按時報送。",
        "attachments": attachments,
        "domains": DOMAINS,
    }
    values.update(fields)
    return Inspection(**values)  # type: ignore[arg-type]


def file(name: str, sniffed: str, **fields: object) -> Attachment:
    return Attachment(name=name, path=name, sniffed=sniffed, **fields)  # type: ignore[arg-type]


# --- Viruses --------------------------------------------------------------------------------------


def test_an_infected_attachment_is_refused_with_the_signature() -> None:
    # Mine rules 一(八): files with viruses may not be published.
    verdict = VirusFound().check(
        inspection(file("a.doc", "doc", virus="Eicar-Test-Signature")), DEFAULT_CONTENT
    )
    assert verdict is not None and verdict.code == 550
    assert "Eicar-Test-Signature" in verdict.reason_en and "一（八）" in verdict.reason_zh


# --- Types ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attachment", "words"),
    [
        (file("報告.pdf", "pe"), "disguised"),  # a program under a document's name
        (file("setup.exe", "pe"), "program or script"),
        (file("run.vbs", "text"), "program or script"),  # text, but Windows runs it
        (file("x.dat", "text", declared_type="application/x-msdownload"), "program"),
        (file("報告\u202efdp.exe", "pe"), "direction controls"),
        (file("宏.docm", "docx", macros=True), "macros"),
        (file("a.pdf", "pdf", encrypted=True), "encrypted"),
        (file("a.docx", "docx", unreadable="bad XML"), "cannot be read"),
        (file("a.7z", "7z"), "not among the allowed types"),
        (file("winmail.dat", "tnef"), "not among the allowed types"),
        (Attachment(name="x.exe", path="a.zip/x.exe", depth=1, sniffed="pe"), "program"),
    ],
)
def test_attachment_types_refused(attachment: Attachment, words: str) -> None:
    # Types by content, not by extension; programs and macros are refused (一(八)).
    verdict = AttachmentTypes().check(inspection(attachment), DEFAULT_CONTENT)
    assert verdict is not None and words in verdict.reason_en, verdict


@pytest.mark.parametrize(
    "attachment",
    [
        file("a.pdf", "pdf"),
        file("表.xlsx", "xlsx"),
        file("照片.jpg", "jpeg"),
        file("說明.txt", "text"),
        file("資料.zip", "zip"),
        file("舊格式.doc", "doc"),
        file("a.ofd", "ofd"),
        file("renamed.pdf", "docx"),  # a mislabelled document is still a document
    ],
)
def test_attachment_types_accepted(attachment: Attachment) -> None:
    # Everyday documents, images, text and zips pass the type rule.
    assert AttachmentTypes().check(inspection(attachment), DEFAULT_CONTENT) is None


def test_tools_published_by_digest_or_sent_by_it_to_cmd_pass() -> None:
    # "unless the IT department publishes them as tools".
    tool = file("setup.exe", "pe", sha256="ab" * 32)
    rules = content_from_dict({"tools": ["ab" * 32]})
    assert AttachmentTypes().check(inspection(tool), rules) is None
    assert AttachmentTypes().check(inspection(tool), DEFAULT_CONTENT) is not None
    publishing = inspection(
        tool,
        sender_unit_kind="it",
        recipients=(RecipientFacts(address="cmd@oa.example", kind="command"),),
        publishes_tool=True,
    )
    assert AttachmentTypes().check(publishing, DEFAULT_CONTENT) is None
    assert (
        AttachmentTypes().check(
            inspection(tool, published_tools=frozenset({"ab" * 32})), DEFAULT_CONTENT
        )
        is None
    )
    # Not from IT, not only to cmd@, or not a TOOLS ADD: refused.
    office = inspection(
        tool, sender_unit_kind="office", recipients=publishing.recipients, publishes_tool=True
    )
    assert AttachmentTypes().check(office, DEFAULT_CONTENT) is not None
    chatting = inspection(tool, sender_unit_kind="it", recipients=publishing.recipients)
    assert AttachmentTypes().check(chatting, DEFAULT_CONTENT) is not None


def test_pdf_javascript_is_a_setting() -> None:
    # PDF forms with scripts are refused unless the IT department allows them.
    scripted = file("form.pdf", "pdf", macros=True)
    assert AttachmentTypes().check(inspection(scripted), DEFAULT_CONTENT) is not None
    rules = content_from_dict({"types": {"pdf_javascript": True}})
    assert AttachmentTypes().check(inspection(scripted), rules) is None


# --- Sizes ----------------------------------------------------------------------------------------


def test_sizes_per_kind() -> None:
    # 20 MiB for documents, 10 MiB for images (defaults); members count towards archives.
    rule = SizeLimits()
    assert rule.check(inspection(file("a.pdf", "pdf", size=20 * MiB)), DEFAULT_CONTENT) is None
    big = rule.check(inspection(file("a.pdf", "pdf", size=21 * MiB)), DEFAULT_CONTENT)
    assert big is not None and (big.code, big.status) == (552, "5.3.4")
    assert "20 MB" in big.reason_en and "文檔" in big.reason_zh
    assert rule.check(inspection(file("a.png", "png", size=11 * MiB)), DEFAULT_CONTENT)
    member = Attachment(name="m.pdf", path="a.zip/m.pdf", depth=1, sniffed="pdf", size=30 * MiB)
    assert rule.check(inspection(member), DEFAULT_CONTENT) is None
    rules = content_from_dict({"sizes": {"image": "20M"}})
    assert rule.check(inspection(file("a.png", "png", size=11 * MiB)), rules) is None


# --- Archives -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("facts", "words"),
    [
        (ArchiveFacts(members=1, expanded=300 * MiB, max_ratio=1000.0), "zip bomb"),
        (ArchiveFacts(members=1, expanded=50 * MiB, max_ratio=500.0), "zip bomb"),
        (ArchiveFacts(members=3, depth=4), "nests archives 4 deep"),
        (ArchiveFacts(members=5000), "holds 5000 files"),
        (ArchiveFacts(members=1, encrypted=1), "encrypted"),
        (ArchiveFacts(damaged="a.txt: damaged (BadZipFile)"), "cannot be opened"),
    ],
)
def test_archive_limits(facts: ArchiveFacts, words: str) -> None:
    # Bombs by size or ratio, deep nesting, too many files, encrypted or damaged zips.
    verdict = ArchiveLimits().check(
        inspection(file("a.zip", "zip", archive=facts)), DEFAULT_CONTENT
    )
    assert verdict is not None and words in verdict.reason_en


def test_an_ordinary_archive_passes() -> None:
    # A normal zip, within every limit.
    facts = ArchiveFacts(members=12, expanded=30 * MiB, max_ratio=8.0, depth=2)
    assert (
        ArchiveLimits().check(inspection(file("a.zip", "zip", archive=facts)), DEFAULT_CONTENT)
        is None
    )


# --- Outside domains ------------------------------------------------------------------------------


def test_organisation_domains() -> None:
    # Configured domains win; otherwise the directory's mailboxes, public services excepted.
    assert organisation_domains(["Bureau.Example"], "oa.example", ["x@qq.com"]) == {
        "oa.example",
        "bureau.example",
    }
    assert organisation_domains([], "oa.example", ["a@bureau.example", "b@qq.com"]) == {
        "oa.example",
        "bureau.example",
    }
    assert is_inside("a@mail.bureau.example", DOMAINS)
    assert not is_inside("a@bureau.example.evil.test", DOMAINS)
    assert outside_addresses(["a@oa.example", "b@163.com"], DOMAINS) == ["b@163.com"]


def person(mailbox: str) -> RecipientFacts:
    return RecipientFacts(address="x@oa.example", kind="person", mailbox=mailbox)


@pytest.mark.parametrize(
    "message",
    [
        inspection(recipients=(MATERIALS, person("zhang@qq.com"))),
        inspection(subject="OA系統操作手冊（第三版）", recipients=(person("zhang@qq.com"),)),
        inspection(file("技術文檔.pdf", "pdf"), recipients=(person("zhang@gmail.com"),)),
        inspection(sender_module="ziliao", recipients=(person("zhang@qq.com"),)),
        inspection(
            file("tool.exe", "pe", sha256="cd" * 32),
            published_tools=frozenset({"cd" * 32}),
            recipients=(person("zhang@qq.com"),),
        ),
    ],
)
def test_material_to_an_outside_mailbox_is_refused(message: Inspection) -> None:
    # 第十七條: manuals, technical documents, ziliao@ and OA software stay inside.
    verdict = OutsideDomains().check(message, DEFAULT_CONTENT)
    assert verdict is not None and "第十七條" in verdict.reason_zh
    assert "qq.com" in verdict.reason_en or "gmail.com" in verdict.reason_en


@pytest.mark.parametrize(
    "message",
    [
        inspection(subject="OA系統操作手冊", recipients=(person("zhang@bureau.example"),)),
        inspection(recipients=(MATERIALS,)),
        inspection(subject="周末聚餐", recipients=(person("zhang@qq.com"),)),
    ],
)
def test_material_inside_or_ordinary_mail_outside_passes(message: Inspection) -> None:
    # Material to an inside mailbox, and ordinary mail to an outside one, pass.
    assert OutsideDomains().check(message, DEFAULT_CONTENT) is None


# --- Forwarded documents --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        inspection(forwarded_messages=1),
        inspection(file("原件.eml", "message")),
        inspection(subject="Fwd: 關於某事項的通知"),
        inspection(subject="轉發：關於某事項的通知"),
        inspection(subject="關於轉發《某辦法》的通知"),
        inspection(subject="遼檢辦〔2024〕62號 關於某事項"),
        inspection(body="請閱。\n\n-------- 轉發郵件信息 --------\n發件人：某人"),
        inspection(body="請閱。\n---------- Forwarded message ---------\nFrom: x"),
        inspection(body="請閱。\n------------------ 原始郵件 ------------------\n"),
        inspection(file("遼檢辦〔2024〕62號.pdf", "pdf")),
        inspection(
            file("通知.docx", "docx", text="遼寧出入境檢驗檢疫局文件\n遼檢辦〔2024〕62號\n關於")
        ),
        inspection(file("通知.pdf", "pdf", text="大檢發[2023]7号\n关于")),
    ],
)
def test_forwarded_documents_are_found(message: Inspection) -> None:
    # 第二十二條: signs of a forwarded document.
    verdict = ForwardedDocuments().check(message, DEFAULT_CONTENT)
    assert verdict is not None and "fawen@" in verdict.reason_en


@pytest.mark.parametrize(
    "message",
    [
        inspection(body="根據遼檢辦〔2024〕62號文件要求，請各部門於月底前報送數據。"),
        inspection(subject="關於不得隨意轉發文件的提醒"),
        inspection(file("統計表.xlsx", "xlsx", text="部門\n人數")),
    ],
)
def test_letters_that_only_cite_a_document_pass(message: Inspection) -> None:
    # A number cited in the letter's own text is a reference, not a forwarded document.
    assert ForwardedDocuments().check(message, DEFAULT_CONTENT) is None


def test_the_forwarded_rule_applies_to_department_letters_only() -> None:
    # The table, not the rule, says where it applies.
    forwarded = inspection(subject="Fwd: 通知", recipients=(LETTER,))
    assert judge(forwarded, DEFAULT_CONTENT) is not None
    to_bureau = RecipientFacts(address="fawen@oa.example", kind="module", module="fawen")
    assert judge(inspection(subject="Fwd: 通知", recipients=(to_bureau,)), DEFAULT_CONTENT) is None


# --- Forbidden words ------------------------------------------------------------------------------


def test_forbidden_words_are_the_it_departments_list() -> None:
    # 第十三條: empty by default; a listed word refuses the message.
    message = inspection(file("a.txt", "text", text="某違法內容"))
    assert ForbiddenWords().check(message, DEFAULT_CONTENT) is None
    rules = content_from_dict({"forbidden_words": ["違法內容"]})
    verdict = ForbiddenWords().check(message, rules)
    assert verdict is not None and "第十三條" in verdict.reason_zh


# --- The table and the verdict --------------------------------------------------------------------


def test_the_table_orders_reasons_and_says_who_is_told() -> None:
    # A virus is reported before a marking; oversized files are not reported to IT.
    both = inspection(file("秘密★1年.doc", "doc", virus="Eicar-Test-Signature"))
    verdicts = judge_all(both, DEFAULT_CONTENT)
    assert [v.rule for v in verdicts] == ["virus", "classified"]
    first = judge(both, DEFAULT_CONTENT)
    assert first is not None and first.rule == "virus" and first.notify_it
    big = judge(inspection(file("a.pdf", "pdf", size=30 * MiB)), DEFAULT_CONTENT)
    assert big is not None and big.rule == "attachment_size" and not big.notify_it
    assert len({row.rule.name for row in TABLE}) == len(TABLE)
    assert judge(inspection(file("a.pdf", "pdf")), DEFAULT_CONTENT) is None


def test_the_smtp_reply_is_chinese_then_english_in_short_safe_lines() -> None:
    # RFC 5321 limits a reply line to 512 octets; a CR or LF in a quoted name must not break
    # the reply.
    verdict = Verdict(
        rule="classified",
        code=550,
        status="5.7.1",
        reason_zh="未受理：附件「a\r\nb」" + "很長的說明" * 80,
        reason_en="Refused: attachment 'a\r\nb' " + "long text " * 60,
    )
    reply = verdict.smtp_reply()
    lines = reply.split("\r\n")
    assert all(len(line.encode()) <= 512 for line in lines)
    assert all(line.startswith("550-5.7.1 ") for line in lines[:-1])
    assert lines[-1].startswith("550 5.7.1 ") and lines[-1].endswith("(rule classified)")
    assert "未受理" in lines[0] and "\n" not in "".join(lines)
    assert not verdict.temporary
