"""Tests for the official document (GB/T 9704-2012): its elements, the HTML page and the PDF.

The PDF's text is read back with poppler's ``pdftotext``/``pdfinfo`` (Debian poppler-utils),
else with pypdf; a test that needs one of them is skipped when neither is installed. Text that
comes back as the CJK characters that went in shows that the font was embedded with a
ToUnicode map.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import shutil
import subprocess
import tomllib
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from yizhan.routing.directory import Directory, parse_org
from yizhan.routing.documents import DocumentState, TrailEntry
from yizhan.routing.numbering import format_number
from yizhan.signing.keyring import Fingerprint, SealInfo
from yizhan.templates.cjk_fonts import FONT_PACKAGE, CJKFontMissing, find_cjk_font
from yizhan.templates.official import (
    ELEMENTS,
    OfficialDocument,
    chinese_date,
    official_document,
    qualified_name,
)
from yizhan.templates.official_html import render_official_html
from yizhan.templates.official_pdf import render_official_pdf

TZ = ZoneInfo("Asia/Shanghai")
FINGERPRINT = "0123456789ABCDEF0123456789ABCDEF01234567"
# Signed off late on 24 November in UTC, which is already 25 November in Shanghai.
SIGNED_OFF = dt.datetime(2026, 11, 24, 18, 30, tzinfo=dt.UTC)
ISSUED = dt.datetime(2026, 11, 26, 2, 0, tzinfo=dt.UTC)
TITLE = "關於進一步規範辦公自動化系統公文處理工作的通知"
NUMBER = format_number("遼檢辦", 2026, 62)
BODY = (
    "為進一步規範全局公文處理工作，提高辦文效率，現就有關事項通知如下。\n"
    "\u3000\u3000一、各單位應當指定綜合人員負責本單位公文的收發、登記和流轉。\n"
    "\n"
    "特此通知。"
)
CLASSIFICATION_WORDS = ("密級", "秘密", "機密", "絕密", "保密期限")


@pytest.fixture(scope="module")
def directory() -> Directory:
    text = (resources.files("yizhan.demo") / "bureau.toml").read_text(encoding="utf-8")
    return parse_org(tomllib.loads(text))


def seal() -> SealInfo:
    return SealInfo(
        unit="bureau",
        unit_name="遼寧出入境檢驗檢疫局",
        fingerprint=Fingerprint(FINGERPRINT),
        uid="遼寧出入境檢驗檢疫局 <seal-bureau@oa.example>",
        custodian="zhoujing",
        created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        state="active",
    )


def state(*, doc_type: str = "通知", body: str = BODY, title: str = TITLE) -> DocumentState:
    return DocumentState(
        id=62,
        kind="fawen",
        title=title,
        state="distributing",
        author="wangfang",
        unit="office",
        urgency="特急",
        number=NUMBER,
        fields={
            "body": body,
            "doc_type": doc_type,
            "to_units": ["inspection", "quarantine", "dalian"],
            "cc_units": ["it", "hr"],
            "scope_units": ["inspection", "finance"],
            "attachments": ["公文處理流程圖.pdf", "", "各單位綜合人員名單.xlsx"],
        },
        trail=(
            TrailEntry(at=SIGNED_OFF, actor="chenzhigang", action="approve", step="review"),
            TrailEntry(at=SIGNED_OFF, actor="lijun", action="approve", step="signoff"),
        ),
    )


def build(directory: Directory, *, sealed: bool = True, **changes: str) -> OfficialDocument:
    return official_document(
        state(**changes),
        directory,
        seal() if sealed else None,
        issuing_unit="bureau",
        issued_at=ISSUED,
        tz=TZ,
    )


def markers(html: str) -> list[str]:
    return re.findall(r'data-element="([a-z_]+)"', html)


# -- the elements ----------------------------------------------------------------------------


def test_fields_are_the_elements_in_the_standards_order() -> None:
    # The dataclass is the standard's list: a field added out of place would print out of place.
    assert [f.name for f in dataclasses.fields(OfficialDocument)] == [k for k, _ in ELEMENTS]


def test_elements_of_a_sealed_document(directory: Directory) -> None:
    # A sealed 通知 of the bureau, drafted by the office, sent to three units and copied to two.
    doc = build(directory)
    assert doc.copy_number is None and doc.classification is None
    assert doc.organ_mark == "遼寧出入境檢驗檢疫局文件"
    assert doc.number == "遼檢辦〔2026〕62號"
    assert doc.signer is None  # a 通知 goes down, so no 簽發人
    assert doc.main_recipients_text == "檢驗監管處、衛生檢疫處，大連分局："
    assert doc.body == (
        "為進一步規範全局公文處理工作，提高辦文效率，現就有關事項通知如下。",
        "一、各單位應當指定綜合人員負責本單位公文的收發、登記和流轉。",
        "特此通知。",
    )
    assert doc.attachment_note_items == ("1．公文處理流程圖", "2．各單位綜合人員名單")
    assert doc.organ_signature == "遼寧出入境檢驗檢疫局"
    assert doc.seal is not None
    assert doc.seal.text == (
        "電子印章：遼寧出入境檢驗檢疫局 指紋 0123 4567 89AB CDEF 0123 4567 89AB CDEF 0123 4567"
    )
    assert doc.note_text == "（此件發至財務處）"
    assert doc.attachments == ("公文處理流程圖.pdf", "各單位綜合人員名單.xlsx")
    assert doc.cc_text == "抄送：信息化處，人事處。"
    assert doc.printer == "遼寧出入境檢驗檢疫局辦公室"
    assert doc.printed_text == "2026年11月26日印發"


def test_dates_are_arabic_without_padding_in_the_bureaus_time_zone(directory: Directory) -> None:
    # GB/T 9704-2012 7.3.5.1: 成文日期 in Arabic numerals, full year, month and day unpadded;
    # it is the sign-off day, which in Shanghai is a day later than in UTC here.
    assert chinese_date(dt.date(2026, 1, 5)) == "2026年1月5日"
    doc = build(directory)
    assert doc.date_text == "2026年11月25日"


def test_date_without_sign_off_is_the_issue_day(directory: Directory) -> None:
    # A document whose flow has no sign-off step takes the day it was issued.
    plain = dataclasses.replace(state(), trail=())
    doc = official_document(
        plain, directory, seal(), issuing_unit="bureau", issued_at=ISSUED, tz=TZ
    )
    assert doc.date_text == "2026年11月26日"


def test_signer_only_on_upward_documents(directory: Directory) -> None:
    # GB/T 9704-2012 7.2.6: 簽發人 is printed on a 請示 or 報告 (上行文) only.
    assert build(directory, doc_type="請示").signer_text == "簽發人：李軍"
    assert build(directory, doc_type="報告").signer == "李軍"
    assert build(directory, doc_type="通知").signer is None


def test_one_attachment_is_not_numbered(directory: Directory) -> None:
    # 附件說明 numbers attachments only when there are several; the name loses its extension.
    one = dataclasses.replace(state(), fields={**state().fields, "attachments": ["實施方案.docx"]})
    doc = official_document(one, directory, seal(), issuing_unit="bureau", issued_at=ISSUED, tz=TZ)
    assert doc.attachment_note_items == ("實施方案",)
    assert doc.attachment_pages == (("附件", "實施方案", "（見本郵件所附文件「實施方案.docx」）"),)


def test_organ_names_are_full(directory: Directory) -> None:
    # An organ signs with its full name: the office is the bureau's office.
    assert qualified_name(directory, "bureau") == "遼寧出入境檢驗檢疫局"
    assert qualified_name(directory, "office") == "遼寧出入境檢驗檢疫局辦公室"


def test_unknown_issuing_unit_is_refused(directory: Directory) -> None:
    # A typo in the caller must not print a document with an empty organ.
    with pytest.raises(ValueError, match="nowhere"):
        official_document(
            state(), directory, seal(), issuing_unit="nowhere", issued_at=ISSUED, tz=TZ
        )


# -- the HTML page ---------------------------------------------------------------------------


def test_html_elements_in_order(directory: Directory) -> None:
    # Every element present appears once, in the standard's order; 份號, 密級 and (for a 通知)
    # 簽發人 do not appear.
    found = markers(render_official_html(build(directory)))
    assert found == [
        "urgency",
        "organ_mark",
        "number",
        "title",
        "main_recipients",
        "body",
        "attachment_note",
        "organ_signature",
        "date",
        "seal",
        "note",
        "attachments",
        "cc",
        "printer",
        "printed_on",
    ]


def test_html_upward_document_shows_signer_after_number(directory: Directory) -> None:
    # On a 請示 the 簽發人 stands on the number's line, after it.
    html = render_official_html(build(directory, doc_type="請示"))
    found = markers(html)
    assert found[found.index("number") + 1] == "signer"
    assert "簽發人：" in html and "李軍" in html


def test_html_text_and_number(directory: Directory) -> None:
    # The number is printed in its canonical form, under the red organ mark; no 密級 anywhere.
    html = render_official_html(build(directory))
    assert re.search(r'data-element="number"[^>]*>遼檢辦〔2026〕62號<', html)
    assert re.search(r'data-element="organ_mark" style="[^"]*color:#d40000', html)
    assert "遼寧出入境檢驗檢疫局辦公室" in html and "2026年11月26日印發" in html
    assert "0123 4567 89AB CDEF" in html
    assert not any(word in html for word in CLASSIFICATION_WORDS)


def test_html_is_self_contained(directory: Directory) -> None:
    # Mail clients drop <style> blocks and block remote content: styles are inline, and the
    # seal is inline SVG.
    html = render_official_html(build(directory))
    assert html.startswith("<!DOCTYPE html>")
    for forbidden in (
        "<style",
        "<link",
        "<script",
        "<img",
        "position:absolute",
        "http://",
        "https://",
    ):
        assert forbidden not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<svg" in html and "<polygon" in html


def test_html_unsealed_has_no_seal(directory: Directory) -> None:
    # A preview before sealing shows no seal at all, neither mark nor text.
    html = render_official_html(build(directory, sealed=False))
    assert "seal" not in markers(html)
    assert "<svg" not in html and "電子印章" not in html


def test_html_escapes_the_text(directory: Directory) -> None:
    # The title and body are the author's mail: markup in them is text, not HTML.
    html = render_official_html(build(directory, title="<b>標題</b>", body="a <script>x</script>"))
    assert "<b>標題</b>" not in html and "&lt;b&gt;標題&lt;/b&gt;" in html
    assert "<script>" not in html


# -- the PDF ---------------------------------------------------------------------------------


def pdf_text(data: bytes, tmp_path: Path, page: int | None = None) -> str:
    """The text of a PDF (one page, or all), by pdftotext or else pypdf; skips without both."""
    path = tmp_path / "doc.pdf"
    path.write_bytes(data)
    if shutil.which("pdftotext"):
        pages = ["-f", str(page), "-l", str(page)] if page else []
        return subprocess.run(
            ["pdftotext", *pages, str(path), "-"], capture_output=True, text=True, check=True
        ).stdout
    pypdf = pytest.importorskip("pypdf", reason="neither pdftotext nor pypdf is installed")
    reader = pypdf.PdfReader(str(path))
    chosen = [reader.pages[page - 1]] if page else reader.pages
    return "\n".join(p.extract_text() for p in chosen)


def pdf_info(data: bytes, tmp_path: Path) -> dict[str, str]:
    """The PDF's document information, by pdfinfo or else pypdf."""
    path = tmp_path / "info.pdf"
    path.write_bytes(data)
    if shutil.which("pdfinfo"):
        out = subprocess.run(
            ["pdfinfo", str(path)], capture_output=True, text=True, check=True
        ).stdout
        return {
            k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines())
        }
    pypdf = pytest.importorskip("pypdf", reason="neither pdfinfo nor pypdf is installed")
    reader = pypdf.PdfReader(str(path))
    meta = reader.metadata or {}
    return {
        "Title": str(meta.get("/Title", "")),
        "Author": str(meta.get("/Author", "")),
        "Subject": str(meta.get("/Subject", "")),
        "Pages": str(len(reader.pages)),
    }


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_pdf_is_valid_and_holds_the_text(directory: Directory, tmp_path: Path) -> None:
    # The PDF attachment carries title, number and seal in CJK text that can be extracted,
    # which shows the font is embedded with a ToUnicode map; no 密級 anywhere.
    data = render_official_pdf(build(directory))
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    text = squeeze(pdf_text(data, tmp_path))
    assert TITLE in text
    assert "遼檢辦〔2026〕62號" in text
    assert "遼寧出入境檢驗檢疫局文件" in text
    assert "電子印章：遼寧出入境檢驗檢疫局指紋0123456789ABCDEF" in text
    assert "抄送：信息化處，人事處。" in text
    assert not any(word in text for word in CLASSIFICATION_WORDS)


def test_pdf_metadata(directory: Directory, tmp_path: Path) -> None:
    # Title, author (the organ) and subject (the number) are the PDF's document information.
    info = pdf_info(render_official_pdf(build(directory)), tmp_path)
    assert info["Title"] == TITLE
    assert info["Author"] == "遼寧出入境檢驗檢疫局"
    assert info["Subject"] == "遼檢辦〔2026〕62號"


def test_pdf_is_deterministic(directory: Directory) -> None:
    # One document gives the same bytes every time, so a re-rendered distribution after a crash
    # is the same attachment.
    doc = build(directory)
    assert render_official_pdf(doc) == render_official_pdf(doc)


def test_pdf_long_text_runs_over_pages(directory: Directory, tmp_path: Path) -> None:
    # A long text flows onto later pages; no line starts with closing punctuation, and the 版記
    # is on the last page.
    body = "\n".join(
        f"{n}、各單位應當指定綜合人員負責本單位公文的收發、登記和流轉，並按時報送OpenPGP公鑰。"
        for n in range(1, 40)
    )
    data = render_official_pdf(build(directory, body=body))
    pages = int(pdf_info(data, tmp_path)["Pages"])
    assert pages >= 3
    text = pdf_text(data, tmp_path)
    assert not [line for line in text.splitlines() if line and line[0] in "，。、；：）」"]
    assert "印發" in pdf_text(data, tmp_path, page=pages)
    assert "印發" not in pdf_text(data, tmp_path, page=pages - 1)


def test_pdf_unsealed_and_no_attachments(directory: Directory, tmp_path: Path) -> None:
    # An unsealed document without attachments still has its signature, date and 版記.
    plain = dataclasses.replace(state(), fields={**state().fields, "attachments": []})
    doc = official_document(plain, directory, None, issuing_unit="bureau", issued_at=ISSUED, tz=TZ)
    text = squeeze(pdf_text(render_official_pdf(doc), tmp_path))
    assert "2026年11月25日" in text and "電子印章" not in text and "附件" not in text


# -- the font --------------------------------------------------------------------------------


def test_missing_font_names_the_package(tmp_path: Path) -> None:
    # Without a usable CJK font the error says what to install instead of crashing in ReportLab.
    with pytest.raises(CJKFontMissing) as caught:
        find_cjk_font([tmp_path / "absent.ttc"], ask_fontconfig=False)
    assert FONT_PACKAGE in str(caught.value) and "apt-get install" in str(caught.value)


def test_unusable_font_files_are_skipped(tmp_path: Path) -> None:
    # A file that is no TrueType font (a broken download, a CFF face) is passed over.
    broken = tmp_path / "broken.ttc"
    broken.write_bytes(b"OTTO" + bytes(200))
    with pytest.raises(CJKFontMissing, match=FONT_PACKAGE):
        find_cjk_font([broken], ask_fontconfig=False)


def test_installed_font_is_found() -> None:
    # The project installs a CJK TrueType font (scripts/services.sh); the PDF needs it.
    font = find_cjk_font()
    assert font.path.is_file()
