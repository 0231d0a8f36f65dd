"""Tests for routing.content.markings: markings recognised by where and how they are written.

第十四條 keeps classified material out; the word 秘密 in an ordinary sentence must not. Each
place is tested both ways: a true marking is found, the same words in harmless use are not.
"""

from __future__ import annotations

import pytest

from yizhan.routing.content import DEFAULT_CONTENT, Attachment, Inspection, RecipientFacts
from yizhan.routing.content.config import MarkingWords, content_from_dict
from yizhan.routing.content.markings import ClassifiedMarkings, finder

FIND = finder(MarkingWords())
RULE = ClassifiedMarkings()


def inspection(**fields: object) -> Inspection:
    values: dict[str, object] = {"subject": "關於報送材料的通知", "body": "各處室：\n請按時報送。"}
    values.update(fields)
    return Inspection(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "subject",
    [
        "秘密★1年 關於加強口岸管理的通知",
        "【機密】關於口岸檢疫工作的請示",
        "[特急][秘密]關於某事項的報告",
        "關於某事項的報告（絕密）",
        "秘密：關於某事項的報告",
        "特急 機密 關於某事項的報告",
        "關於某事項的報告_秘密",
        "機密",
        "秘　密",
        "Re: 【绝密】关于某事项",
        "转发：机密★6个月 关于某事项",
        "【涉密】材料清單",
        "涉密：人員名單",
        "密級：秘密 關於某事項",
        "绝密★长期",
        "秘\u200b密★1年 關於",  # a zero-width space does not hide it
    ],
)
def test_markings_in_subjects_are_found(subject: str) -> None:
    # GB/T 9704 places, and the way people type markings into a subject line.
    assert FIND.in_title(subject) is not None


@pytest.mark.parametrize(
    "subject",
    [
        "關於開展保守工作秘密培訓的通知",
        "关于开展保守工作秘密培训的通知",
        "涉密人員保密培訓通知",
        "關於機密文件管理規定的通知",
        "秘密文件傳遞規定",
        "關於規範“秘密★1年”標註格式的通知",
        "關於做好國家秘密定密工作的通知",
        "密級：非密",
        "秘密，是每個人的責任",
        "商業秘密保護講座",
        "機密性、完整性和可用性",
    ],
)
def test_the_same_words_in_ordinary_subjects_are_not_markings(subject: str) -> None:
    # A training notice about keeping work secrets (保守工作秘密) must pass.
    assert FIND.in_title(subject) is None


@pytest.mark.parametrize(
    "body",
    [
        "秘密★1年\n\n遼寧出入境檢驗檢疫局\n關於某事項的通知",
        "000123\n機密★6個月\n特急\n關於某事項的通知",
        "絕密\n關於某事項的報告",
        "秘密★1年      特急\n關於",
        "各處室：\n本文件密級：秘密。\n請閱。",
        "【秘密】\n內容",
        "主送：財務處\n\n"
        + "\n".join(f"第{n}段" for n in range(20))
        + "\n密级和保密期限：机密★5年",
    ],
)
def test_markings_in_bodies_are_found(body: str) -> None:
    # A marking line at the head, or a starred or labelled marking anywhere.
    assert FIND.in_text(body) is not None


@pytest.mark.parametrize(
    "body",
    [
        "各位同事：\n為增強保密意識，請大家保守工作秘密，不得在OA系統處理涉密文件。",
        "秘密，是每個人都有的。\n以上。",
        "\n".join(["第一段"] * 12) + "\n秘密",
        "培訓內容：密級標註格式如“秘密★1年”、「機密★10年」。",
        "涉及國家秘密的文件、信息等資料一律不得在連接OA系統的計算機上處理（第十四條）。",
        "請將機密性要求寫入方案。",
    ],
)
def test_harmless_bodies_pass(body: str) -> None:
    # A standalone 秘密 far below the head, quoted examples of markings and the text of
    # 第十四條 itself are not markings.
    assert FIND.in_text(body) is None


@pytest.mark.parametrize(
    ("name", "value", "found"),
    [
        ("密级", "秘密", True),
        ("密級", "機密★10年", True),
        ("Classification", "机密", True),
        ("密级", "非密", False),
        ("密級", "不涉密", False),
        ("keywords", "培訓;秘密;通知", True),
        ("keywords", "保守工作秘密;培訓", False),
        ("title", "秘密★1年 關於某事項", True),
        ("title", "保守工作秘密培訓", False),
        ("category", "絕密", True),
        ("description", "本文件不涉密", False),
    ],
)
def test_document_properties(name: str, value: str, found: bool) -> None:
    # A classification property holds a level; keywords are tokens; titles are titles.
    assert (FIND.in_property(name, value) is not None) is found


def test_the_rule_reports_the_first_place_and_cites_article_14() -> None:
    # The subject is clean; the marking is in the properties of the second attachment.
    clean = Attachment(name="名單.xlsx", path="名單.xlsx", sniffed="xlsx", text="姓名\n部門")
    marked = Attachment(
        name="方案.docx", path="方案.docx", sniffed="docx", properties={"密级": "机密"}
    )
    verdict = RULE.check(inspection(attachments=(clean, marked)), DEFAULT_CONTENT)
    assert verdict is not None
    assert (verdict.code, verdict.status, verdict.rule) == (550, "5.7.1", "classified")
    assert "第十四條" in verdict.reason_zh and "art. 14" in verdict.reason_en
    assert "方案.docx" in verdict.reason_zh and "方案.docx" in verdict.reason_en


def test_department_letters_also_cite_article_22() -> None:
    # 第二十二條: a classified department letter is refused on both articles.
    verdict = RULE.check(
        inspection(
            subject="【秘密】關於商洽事項的函",
            recipients=(
                RecipientFacts(address="hanjian@oa.example", kind="module", module="hanjian"),
            ),
        ),
        DEFAULT_CONTENT,
    )
    assert (
        verdict is not None and "第二十二條" in verdict.reason_zh and "art. 22" in verdict.reason_en
    )


@pytest.mark.parametrize(
    "attachment",
    [
        Attachment(name="秘密★1年-關於某事項.docx", path="秘密★1年-關於某事項.docx"),
        Attachment(name="關於某事項（機密）.pdf", path="關於某事項（機密）.pdf"),
        Attachment(name="x.txt", path="a.zip/x.txt", depth=1, text="機密\n關於某事項"),
        Attachment(name="x.pdf", path="x.pdf", text="\n關於某事項\n密級：絕密"),
    ],
)
def test_attachment_names_and_texts_are_checked(attachment: Attachment) -> None:
    # File names are read as titles; texts by their head and anywhere-markings.
    assert RULE.check(inspection(attachments=(attachment,)), DEFAULT_CONTENT) is not None


def test_harmless_attachments_pass() -> None:
    # The same words in training material and titles are not markings.
    attachments = (
        Attachment(
            name="保守工作秘密培訓.pptx", path="保守工作秘密培訓.pptx", text="保密培訓\n要點"
        ),
        Attachment(name="商業秘密.pdf", path="商業秘密.pdf", properties={"title": "商業秘密保護"}),
    )
    assert RULE.check(inspection(attachments=attachments), DEFAULT_CONTENT) is None


def test_the_it_department_adds_words_and_patterns() -> None:
    # [content.markings]: an English marking as an extra pattern, 内部 as a tag.
    rules = content_from_dict(
        {"markings": {"patterns": [r"(?i)\bTOP SECRET\b"], "tags": ["涉密", "內部"]}}
    )
    assert RULE.check(inspection(subject="TOP SECRET plan"), rules) is not None
    assert RULE.check(inspection(subject="【內部】通訊錄"), rules) is not None
    assert RULE.check(inspection(subject="【內部】通訊錄"), DEFAULT_CONTENT) is None
