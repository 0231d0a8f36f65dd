"""Tests for daemon.extract: what is read from attachments, and that every read is bounded.

Files are built by the `content_files` fixture (tests/daemon/conftest.py); nothing is scanned here.
"""

from __future__ import annotations

import base64
import time
from email.message import EmailMessage
from typing import Any

import pytest

from yizhan.daemon.extract import message as inspect_module
from yizhan.daemon.extract.files import read_file, sniff
from yizhan.daemon.extract.message import read_message
from yizhan.daemon.extract.text import decode_header_text, decode_text, raw_header
from yizhan.routing.content import DEFAULT_CONTENT, content_from_dict


def test_docx_header_body_and_properties(content_files: Any) -> None:
    # Page headers come first: that is where a marking sits.
    data = content_files.docx(
        ["關於某事項的通知", "各處室："],
        headers=["秘密★1年"],
        core={"title": "通知", "keywords": "培訓"},
        custom={"密級": "秘密"},
    )
    (doc,) = read_file("通知.docx", data, DEFAULT_CONTENT)
    assert doc.sniffed == "docx" and not doc.macros
    assert doc.text.splitlines() == ["秘密★1年", "關於某事項的通知", "各處室："]
    assert doc.properties == {"title": "通知", "keywords": "培訓", "密級": "秘密"}


def test_xlsx_pptx_odt_pdf(content_files: Any) -> None:
    # Each format's text in reading order, and its properties.
    (xlsx,) = read_file(
        "a.xlsx", content_files.xlsx(["姓名", "部門"], header="機密"), DEFAULT_CONTENT
    )
    assert xlsx.sniffed == "xlsx" and xlsx.text.splitlines()[0] == "機密"
    (pptx,) = read_file("a.pptx", content_files.pptx([["第一頁"], ["第二頁"]]), DEFAULT_CONTENT)
    assert pptx.sniffed == "pptx" and pptx.text == "第一頁\n第二頁"
    (odt,) = read_file(
        "a.odt",
        content_files.odt(["正文"], title="標題", user_defined={"密級": "機密"}),
        DEFAULT_CONTENT,
    )
    assert odt.sniffed == "odt" and odt.text == "正文"
    assert odt.properties == {"title": "標題", "密級": "機密"}
    (pdf,) = read_file(
        "a.pdf", content_files.pdf(["秘密★1年", "關於"], title="普通"), DEFAULT_CONTENT
    )
    assert pdf.sniffed == "pdf" and pdf.text.splitlines()[:2] == ["秘密★1年", "關於"]
    assert pdf.properties["title"] == "普通" and not pdf.macros


def test_macros_are_found(content_files: Any) -> None:
    # VBA in Office Open XML and in Word 97 files, Basic in OpenDocument, JavaScript in PDF.
    for name, data in (
        ("a.docm", content_files.docx(["x"], macros=True)),
        ("a.doc", content_files.ole_doc(["正文"], macros=True)),
        ("a.odt", content_files.odt(["x"], macros=True)),
        ("a.pdf", content_files.pdf(["x"], javascript=True)),
    ):
        (found,) = read_file(name, data, DEFAULT_CONTENT)
        assert found.macros, name


def test_word_97_text_is_read_from_its_utf16_runs(content_files: Any) -> None:
    # Legacy .doc files keep Chinese text as UTF-16; its runs are the paragraphs.
    (doc,) = read_file(
        "a.doc", content_files.ole_doc(["秘密★1年", "關於加強管理的通知"]), DEFAULT_CONTENT
    )
    assert doc.sniffed == "doc" and doc.text.splitlines() == ["秘密★1年", "關於加強管理的通知"]


@pytest.mark.parametrize(
    ("name", "make", "sniffed"),
    [
        ("報告.pdf", "exe", "pe"),  # a disguised program
        ("photo.jpg", "png", "png"),  # the bytes say PNG, whatever the name says
        ("a.zip", "zip", "zip"),
        ("a.bin", "empty", "text"),
    ],
)
def test_types_come_from_the_bytes(content_files: Any, name: str, make: str, sniffed: str) -> None:
    # Magic bytes decide; a name is only a claim.
    data = {
        "exe": content_files.exe(),
        "png": content_files.png(),
        "zip": content_files.zip({"a.txt": b"x"}),
        "empty": b"",
    }[make]
    assert sniff(data, name) == sniffed


def test_nested_zips_are_walked_and_gbk_member_names_read(content_files: Any) -> None:
    # Members of nested zips are listed with their path; GBK names (no UTF-8 flag) read right.
    inner = content_files.zip({"秘密★1年-名單.docx": content_files.docx(["x"])}, utf8_names=False)
    found = read_file(
        "outer.zip", content_files.zip({"inner.zip": inner, "說明.txt": b"ok"}), DEFAULT_CONTENT
    )
    assert [a.path for a in found] == [
        "outer.zip",
        "outer.zip/inner.zip",
        "outer.zip/inner.zip/秘密★1年-名單.docx",
        "outer.zip/說明.txt",
    ]
    assert [a.depth for a in found] == [0, 1, 2, 1]
    facts = found[0].archive
    assert facts is not None and facts.depth == 2 and facts.members == 3


def test_a_zip_bomb_is_measured_not_expanded(content_files: Any) -> None:
    # 300 MB of zeros in a 300 KB zip: refused from the directory, in no time.
    bomb = content_files.zip_bomb()
    started = time.monotonic()
    found = read_file("bomb.zip", bomb, DEFAULT_CONTENT)
    assert time.monotonic() - started < 1.0
    facts = found[0].archive
    assert facts is not None and facts.expanded == 300 << 20 and facts.max_ratio > 500
    assert len(found) == 1  # no member was read


def test_nesting_deeper_than_the_limit_stops(content_files: Any) -> None:
    # The walk stops one level past max_depth, so the rule can say how deep it went.
    found = read_file("deep.zip", content_files.nested_zip(5, {"a.txt": b"x"}), DEFAULT_CONTENT)
    facts = found[0].archive
    assert facts is not None and facts.depth == 4  # counted one past the limit of 3, then stopped
    shallow = content_from_dict({"archives": {"max_depth": 5}})
    facts = read_file("deep.zip", content_files.nested_zip(5, {"a.txt": b"x"}), shallow)[0].archive
    assert facts is not None and facts.depth == 5


def test_encrypted_and_damaged(content_files: Any) -> None:
    # What cannot be read says so, and is never parsed as if it could be.
    found = read_file("e.zip", content_files.encrypted_zip("a.txt", b"secret"), DEFAULT_CONTENT)
    assert found[0].archive is not None and found[0].archive.encrypted == 1
    assert found[1].encrypted
    (broken,) = read_file("a.docx", content_files.docx(["x"])[:200], DEFAULT_CONTENT)
    assert broken.sniffed == "zip" or broken.unreadable
    (dtd,) = read_file(
        "a.docx",
        content_files.zip(
            {"word/document.xml": b'<!DOCTYPE x [<!ENTITY a "aaaa">]><w:document>&a;</w:document>'}
        ),
        DEFAULT_CONTENT,
    )
    assert dtd.unreadable == "XML with a DTD"


@pytest.mark.parametrize("codec", ["utf-8", "gb18030", "big5"])
def test_text_in_every_chinese_charset(codec: str) -> None:
    # Attachments in UTF-8, GBK (GB 18030) and Big5 decode to the same text.
    text = "秘密★1年\n關於加強檢驗檢疫工作的通知\n各處室："
    assert decode_text(text.encode(codec)) == text


def test_headers_in_gbk_big5_and_raw_8bit() -> None:
    # Subjects as Chinese mail clients send them, mislabelled gb2312 included.
    gbk = base64.b64encode("【机密】关于某事项".encode("gbk")).decode()
    assert decode_header_text(f"=?gb2312?B?{gbk}?=") == "【机密】关于某事项"
    big5 = base64.b64encode("機密：關於".encode("big5")).decode()
    assert decode_header_text(f"=?big5?B?{big5}?= =?utf-8?Q?abc?=") == "機密：關於abc"
    raw = "秘密文件".encode("gbk").decode("utf-8", "surrogateescape")
    assert decode_header_text(raw) == "秘密文件"


def test_a_message_body_attachments_and_forwarded_mail(content_files: Any) -> None:
    # The plain body wins over HTML; a forwarded mail is listed, counted and walked.
    inner = EmailMessage()
    inner["Subject"] = "原件"
    inner.set_content("原件內容")
    inner.add_attachment(content_files.png(), maintype="image", subtype="png", filename="圖.png")
    msg = EmailMessage()
    msg["From"] = "王芳 <wangfang@oa.example>"
    msg["Subject"] = "測試"
    msg.set_content("正文第一行\n第二行")
    msg.add_alternative("<p>正文第一行</p><p>第二行</p>", subtype="html")
    msg.add_attachment(
        content_files.pdf(["x"]), maintype="application", subtype="pdf", filename="附件.pdf"
    )
    msg.add_attachment(inner)
    read = read_message(bytes(msg), DEFAULT_CONTENT)
    assert read.subject == "測試" and read.from_address == "wangfang@oa.example"
    assert read.body.splitlines()[:2] == ["正文第一行", "第二行"]
    assert [a.name for a in read.attachments] == ["附件.pdf", "原件.eml", "圖.png"]
    assert read.forwarded_messages == 1
    assert [i for i, _ in read.payloads] == [0, 1, 2]


def test_signature_parts_are_not_attachments() -> None:
    # A PGP/MIME signature (RFC 3156) is protocol; it is neither scanned nor judged.
    raw = (
        b"From: a@oa.example\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/signed; boundary="b"; protocol="application/pgp-signature"\r\n'
        b"\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        b"--b\r\nContent-Type: application/pgp-signature; name=signature.asc\r\n\r\n"
        b"-----BEGIN PGP SIGNATURE-----\r\nxx\r\n-----END PGP SIGNATURE-----\r\n--b--\r\n"
    )
    read = read_message(raw, DEFAULT_CONTENT)
    assert read.attachments == () and read.body.strip() == "hello"


def test_file_manager_leftovers_in_zips_are_not_judged(content_files: Any) -> None:
    # A zip made on a Mac or in Explorer carries __MACOSX/ forks and Thumbs.db (an OLE2 file):
    # counted with the archive, not refused as files of an unknown type.
    data = content_files.zip(
        {
            "通知.docx": content_files.docx(["x"]),
            "__MACOSX/._通知.docx": b"\x00\x05\x16\x07" + bytes(60),
            "Thumbs.db": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504),
        }
    )
    found = read_file("a.zip", data, DEFAULT_CONTENT)
    assert [a.path for a in found] == ["a.zip", "a.zip/通知.docx"]
    assert found[0].archive is not None and found[0].archive.members == 3


def test_mime_nested_past_the_limit_is_unreadable() -> None:
    # Sixty multiparts inside each other: read to the limit, the rest reported, no recursion
    # error (which would turn into a 451 for ever).
    body = b"hello"
    for level in range(60):
        boundary = f"b{level}".encode()
        body = (
            (b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n--' + boundary)
            + b"\r\n"
            + body
            + b"\r\n--"
            + boundary
            + b"--\r\n"
        )
    read = read_message(
        b"From: a@oa.example\r\nSubject: s\r\nMIME-Version: 1.0\r\n" + body, DEFAULT_CONTENT
    )
    (deepest,) = read.attachments
    assert deepest.unreadable is not None and "nested" in deepest.unreadable


@pytest.mark.parametrize(
    "raw",
    [
        b"Subject: plain\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xe7\xa7\x98\xe5\xaf\x86"
        b"\xe2\x98\x851\xe5\xb9\xb4\r\nline two\r\n",
        b"Subject: lf only\nContent-Type: text/plain; charset=gbk\n\n\xc3\xd8\xc3\xdc\n",
        b"Subject: base64\r\nContent-Transfer-Encoding: base64\r\nContent-Type: text/plain; "
        b"charset=utf-8\r\n\r\n" + base64.encodebytes("機密★長期\n".encode()) + b"\r\n",
        b"Subject: folded\r\n  header\r\nX-A: 1\r\n\r\n\r\nbody after an empty line\r\n",
        b"Subject: no separator\r\nthis is not a header\r\nbody\r\n\r\nmore\r\n",
        b"Subject: only headers\r\n",
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n\r\ninner\r\n--b--\r\n',
    ],
)
def test_a_message_reads_the_same_as_the_parser_reads_it_whole(raw: bytes) -> None:
    # Single-part bodies are taken whole rather than line by line; what the rules see must be
    # exactly what the full parse gives, for odd messages too.
    fast = read_message(raw, DEFAULT_CONTENT)
    whole = inspect_module._PARSER.parsebytes(raw)
    reader = inspect_module._MessageReader(DEFAULT_CONTENT)
    reader.walk(whole, depth=0)
    assert fast.body.strip() == ("\n".join(reader.plain) or "\n".join(reader.html)).strip()
    assert fast.subject == decode_header_text(raw_header(whole, "Subject"))
    assert [a.name for a in fast.attachments] == [a.name for a in reader.attachments]


def test_the_files_of_a_signed_mail_are_its_attachments_only() -> None:
    # A PGP/MIME mail (RFC 3156) from Thunderbird: its signature is not a file, nor is the
    # signed part; a plain signed command has no files at all.
    inner = EmailMessage()
    inner.set_content("範圍：信息化處\n\n操作手冊")
    inner.add_attachment(
        b"PK\x03\x04manual", maintype="application", subtype="zip", filename="手冊.zip"
    )
    signed = EmailMessage()
    signed["Subject"] = "OA系統操作手冊"
    signed.set_type("multipart/signed")
    signed.set_param("protocol", "application/pgp-signature")
    signature = EmailMessage()
    signature.set_content(
        b"-----BEGIN PGP SIGNATURE-----\n",
        maintype="application",
        subtype="pgp-signature",
        filename="signature.asc",
    )
    signed.attach(inner)
    signed.attach(signature)
    assert [p.get_filename() for p in inspect_module.attached_files(signed)] == ["手冊.zip"]
    command = EmailMessage()
    command.set_content("搜索 檢疫")
    bare = EmailMessage()
    bare.set_type("multipart/signed")
    bare.attach(command)
    bare.attach(signature)
    assert inspect_module.attached_files(bare) == []
