"""End-to-end: searching documents (SEARCH, GET #id at cmd@) and the internal-materials library
at ziliao@ (第十七條), over SMTP on loopback, as staff would use them (issue 6, items 5 and 8).

Attachments go through the gateway's content rules with the test clamd scanning them, and their
text is found by the same extractors.
"""

from __future__ import annotations

import dataclasses
import os
import re
import smtplib
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator, Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import make_config, seed_keyring
from tests.daemon.test_content import rules_file
from tests.daemon.test_flows import PASSWORD, Daemon, one, reply, start_daemon, text
from yizhan.daemon.context import Context
from yizhan.daemon.desk import search as desk_search
from yizhan.mailstore.db import upgrade
from yizhan.mailstore.directory import load_directory, save_person
from yizhan.mailstore.models import AuditEntry
from yizhan.mailstore.search import field_texts, forget_documents

#: Whose own mailbox is outside the organisation: an IT staff member, in the scope of IT's
#: materials.
OUTSIDE = "helei"


@pytest.fixture
def library(
    tmp_path: Path, database_url: str, system_key_home: Path, clamd_socket: str
) -> Iterator[Daemon]:
    """The demo bureau running with the test clamd; helei's mail goes to qq.com."""
    config = make_config(tmp_path, database_url, signing={"require_signature": []})
    seed_keyring(config, system_key_home)
    ctx = Context.open(config)
    upgrade(ctx.engine)
    rules_file(ctx, clamd_socket)
    running = start_daemon(ctx)
    with ctx.sessions.begin() as session:
        person = load_directory(session).people[OUTSIDE]
        save_person(
            session, dataclasses.replace(person, email=f"{OUTSIDE}@qq.com"), now=ctx.clock()
        )
    yield running
    running.stop()
    ctx.close()


def send(
    d: Daemon,
    account: str,
    to: str,
    subject: str,
    body: str,
    files: Sequence[tuple[str, bytes]] = (),
) -> None:
    """Mail from ``account``'s OA address (theirs whatever their own mailbox), with files."""
    msg = EmailMessage()
    msg["From"] = f"{account}@oa.example"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body)
    for name, data in files:
        maintype, subtype = (
            ("application", "pdf")
            if name.endswith(".pdf")
            else ("application", "vnd.openxmlformats-officedocument.wordprocessingml.document")
        )
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as client:
        client.login(account, PASSWORD)
        client.send_message(msg)


def files_of(mail: EmailMessage) -> list[str]:
    """The files attached, without the OpenPGP signature every mail from Yizhan carries."""
    return [
        str(p.get_filename())
        for p in mail.walk()
        if p.get_filename() and p.get_content_type() != "application/pgp-signature"
    ]


def listed(results: str) -> list[str]:
    """The hits of a results mail: "#12" or a document number, in the order listed."""
    return re.findall(r"^\d+\. (\S+) ", results, re.MULTILINE)


def links(results: str) -> list[str]:
    return re.findall(r"<(mailto:[^>]+)>", results)


def click(d: Daemon, account: str, url: str) -> None:
    """Send the mail a mailto: link writes, as a mail client would."""
    parsed = urllib.parse.urlsplit(url)
    fields = urllib.parse.parse_qs(parsed.query)
    send(
        d,
        account,
        urllib.parse.unquote(parsed.path),
        fields["subject"][0],
        fields.get("body", [""])[0],
    )


def open_report(d: Daemon, author: str, title: str, body: str, **kw: Any) -> str:
    """An internal report (內部簽報) left with the author's unit head; returns its id."""
    send(d, author, "qianbao@oa.example", title, body, **kw)
    confirmation = one(d, author)
    return str(confirmation["X-Yizhan-Doc"])


def test_search_finds_closed_documents_by_title_body_and_attachments(
    library: Daemon, content_files: Any
) -> None:
    # 文檔查詢: a bulletin is approved and closed; its author finds it by a two-character word
    # in its title, in its body, in a PDF and in a Word attachment; a document of another unit
    # with the same word is not found; STATUS and GET from the result links fetch it.
    d = library
    author, head = "xiewenbin", "liangguoqiang"
    send(
        d,
        author,
        "gonggao@oa.example",
        "口岸檢疫設備停用公示",
        "範圍：衛生檢疫處\n\n請各處室做好消毒安排。",
        files=[
            ("清單.pdf", content_files.pdf(["設備維修清單"], title="清單")),
            ("物資.docx", content_files.docx(["防疫物資一覽"])),
        ],
    )
    one(d, author)
    ask = one(d, head)
    bulletin = str(ask["X-Yizhan-Doc"])
    reply(d, head, ask, "同意")
    one(d, head)
    d.until(author, "closed")
    # Someone else's document with the same word, which the author may not see.
    other = open_report(d, "caoyaqin", "關於檢疫經費的請示", "請批准。")
    one(d, "dengxiuying")

    for words, where in (
        ("檢疫", "出现在: 标题"),
        ("消毒", "出现在: 正文"),
        ("維修", "出现在: 附件"),
        ("物資", "出现在: 附件"),
        ("检疫 物资", "出现在: 标题, 附件"),  # Simplified finds Traditional; both words needed
    ):
        send(d, author, "cmd@oa.example", f"搜索 {words}", "")
        results = text(one(d, author))
        assert listed(results) == [f"#{bulletin}"], (words, results)
        assert "状态: closed" in results
        assert where in results
    send(d, author, "cmd@oa.example", "SEARCH 停電", "")
    nothing = text(one(d, author))
    assert listed(nothing) == [] and "没有找到" in nothing and "搜索" in nothing

    # The other unit's document is indexed (its author finds it), but not for xiewenbin.
    send(d, "caoyaqin", "cmd@oa.example", "搜索 經費", "")
    assert listed(text(one(d, "caoyaqin"))) == [f"#{other}"]
    send(d, author, "cmd@oa.example", "搜索 經費", "")
    assert listed(text(one(d, author))) == []

    # One click on STATUS tells where it stands; one on GET brings it whole, with its files.
    send(d, author, "cmd@oa.example", "搜索 檢疫", "")
    status_link, get_link = links(text(one(d, author)))
    assert status_link.startswith("mailto:cmd@oa.example?subject=")
    click(d, author, status_link)
    status = text(one(d, author))
    assert f"#{bulletin} 口岸檢疫設備停用公示" in status and "closed" in status
    click(d, author, get_link)
    copy = one(d, author)
    assert copy["X-Yizhan-Doc"] == bulletin and copy["X-Yizhan-State"] == "closed"
    assert "請各處室做好消毒安排" in text(copy)
    assert sorted(files_of(copy)) == ["清單.pdf", "物資.docx"]
    # GET of a document one may not see is refused with the reason.
    send(d, author, "cmd@oa.example", f"下載 #{other}", "")
    refused = one(d, author)
    assert "無權" in text(refused) and not files_of(refused)
    send(d, author, "cmd@oa.example", "GET #999", "")
    assert "找不到文件" in text(one(d, author))
    send(d, author, "cmd@oa.example", "下載 遼檢辦〔2026〕999號", "")
    assert "找不到文件" in text(one(d, author))


def test_hits_are_ranked_title_body_attachment(library: Daemon, content_files: Any) -> None:
    # The same word in a title ranks over a body, which ranks over an attachment.
    d = library
    author = "xiewenbin"
    in_attachment = open_report(
        d,
        author,
        "關於年度計劃的請示",
        "見附件。",
        files=[("計劃.docx", content_files.docx(["更新公告欄"]))],
    )
    in_body = open_report(d, author, "關於設備採購的請示", "另請審批公告欄事宜。")
    in_title = open_report(d, author, "關於公告欄維修的請示", "請批准。")
    send(d, author, "cmd@oa.example", "SEARCH 公告", "")
    results = text(one(d, author))
    assert listed(results) == [f"#{in_title}", f"#{in_body}", f"#{in_attachment}"]


def test_materials_are_filed_found_and_fetched_only_in_scope(
    library: Daemon, content_files: Any
) -> None:
    # 第十七條: the IT clerk files the OA manual for IT and every clerk; the office clerk (in
    # scope) finds it and gets it with its file, marked X-Yizhan-Kind: ziliao; an inspection
    # staff member (out of scope) neither finds nor gets it; an IT staff member whose mail
    # goes to qq.com is refused, and IT is told.
    d = library
    send(
        d,
        "mali",
        "ziliao@oa.example",
        "OA系統操作手冊",
        "範圍：信息化處、綜合人員\n\n新版操作手冊，登錄與審批。",
        files=[("手冊.docx", content_files.docx(["第一章 用戶登錄", "第二章 公文審批"]))],
    )
    # Mine rules 一(六): the filer's unit head reviews it first; until then nobody in its
    # scope finds it. The head's request carries the file.
    assert "審核" in text(one(d, "mali"))
    review = one(d, "wuhaifeng")
    material = str(review["X-Yizhan-Doc"])
    assert review["X-Yizhan-Action"] == "approve" and files_of(review) == ["手冊.docx"]
    send(d, "wangfang", "ziliao@oa.example", "搜索 審批", "")
    assert listed(text(one(d, "wangfang"))) == []
    send(d, "wangfang", "ziliao@oa.example", f"下載 {material}", "")
    assert "沒有您可取回的資料" in text(one(d, "wangfang"))
    reply(d, "wuhaifeng", review, "同意")
    one(d, "wuhaifeng")
    assert one(d, "mali")["X-Yizhan-State"] == "closed"

    send(d, "wangfang", "ziliao@oa.example", "搜索 審批", "")
    results = text(one(d, "wangfang"))
    assert listed(results) == [f"#{material}"]
    (get_link,) = links(results)
    assert get_link.startswith("mailto:ziliao@oa.example?subject=")
    click(d, "wangfang", get_link)
    copy = one(d, "wangfang")
    assert copy["X-Yizhan-Kind"] == "ziliao" and copy["X-Yizhan-Doc"] == material
    assert files_of(copy) == ["手冊.docx"]
    assert "第十七条" in text(copy) and "新版操作手冊" in text(copy)
    send(d, "wangfang", "ziliao@oa.example", "目錄", "")
    assert listed(text(one(d, "wangfang"))) == [f"#{material}"]
    # At cmd@, the search covers materials in scope too, fetched from the library.
    send(d, "wangfang", "cmd@oa.example", "搜索 登錄", "")
    assert listed(text(one(d, "wangfang"))) == [f"#{material}"]

    send(d, "xiewenbin", "ziliao@oa.example", "搜索 審批", "")
    assert listed(text(one(d, "xiewenbin"))) == []
    send(d, "xiewenbin", "ziliao@oa.example", f"下載 {material}", "")
    refused = one(d, "xiewenbin")
    assert "沒有您可取回的資料" in text(refused) and not files_of(refused)
    send(d, "xiewenbin", "cmd@oa.example", f"GET #{material}", "")
    refused = one(d, "xiewenbin")
    assert "無權" in text(refused) and not files_of(refused)

    send(d, OUTSIDE, "ziliao@oa.example", f"下載 {material}", "")
    refused = one(d, OUTSIDE)
    assert refused["To"] == f"{OUTSIDE}@qq.com"
    assert "第十七條" in text(refused) and not files_of(refused)
    assert refused["X-Yizhan-Kind"] is None
    report = one(d, "wuhaifeng")
    assert OUTSIDE in text(report) and "qq.com" in text(report)
    # Not by way of cmd@ either, nor its titles in a search there.
    send(d, OUTSIDE, "cmd@oa.example", f"GET #{material}", "")
    assert "第十七條" in text(one(d, OUTSIDE))
    one(d, "wuhaifeng")
    send(d, OUTSIDE, "cmd@oa.example", "搜索 審批", "")
    withheld = text(one(d, OUTSIDE))
    assert listed(withheld) == [] and "第十七条" in withheld

    with d.ctx.sessions() as session:
        refusals = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "refused.outside")
        ).all()
        assert [r.actor for r in refusals] == [OUTSIDE, OUTSIDE]


def test_ziliao_says_the_same_of_a_material_out_of_scope_and_of_a_missing_one(
    library: Daemon, content_files: Any
) -> None:
    # Issue 17: asking ziliao@ must not tell which material ids exist. The IT head files a
    # network plan for IT alone; 謝文斌 (inspection) asks for it, and for an id that does not
    # exist, by GET and by SEARCH: the answers differ only in the id or the words, nothing is
    # sent, and his GET of the real one is recorded.
    d = library
    send(
        d,
        "wuhaifeng",
        "ziliao@oa.example",
        "機房網絡拓撲",
        "範圍：信息化處\n\n核心交換機配置。",
        files=[("拓撲.docx", content_files.docx(["核心交換機 配置 說明"]))],
    )
    filed = text(one(d, "wuhaifeng"))
    material = int(re.findall(r"#(\d+)", filed)[0])
    missing = material + 1000
    answers = []
    for ref in (material, missing):
        send(d, "xiewenbin", "ziliao@oa.example", f"下載 {ref}", "")
        got = one(d, "xiewenbin")
        assert not files_of(got) and got["X-Yizhan-Doc"] is None
        answers.append((text(got).replace(f"#{ref}", "#N"), got["Subject"].replace(str(ref), "N")))
    assert answers[0] == answers[1]
    searches = []
    for words in ("交換機", "潛水艇"):
        send(d, "xiewenbin", "ziliao@oa.example", f"搜索 {words}", "")
        found = text(one(d, "xiewenbin"))
        assert listed(found) == []
        searches.append(found.replace(words, "W"))
    assert searches[0] == searches[1]
    # In scope, the same GET brings the material.
    send(d, "mali", "ziliao@oa.example", f"下載 {material}", "")
    assert files_of(one(d, "mali")) == ["拓撲.docx"]
    with d.ctx.sessions() as session:
        (refused,) = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "document.get_refused")
        ).all()
    assert refused.actor == "xiewenbin" and refused.target == str(material)


def test_filing_without_scope_is_answered(library: Daemon) -> None:
    # Every mail gets an answer: a material without a scope says how to write one.
    send(library, "mali", "ziliao@oa.example", "網絡拓撲說明", "機房網絡說明。")
    answer = text(one(library, "mali"))
    assert "範圍" in answer and "Scope" in answer


def forget(d: Daemon, document_id: int) -> None:
    """Take a document out of the index, as if it were made before the index existed."""
    with d.ctx.sessions.begin() as session:
        forget_documents(session, [document_id])


def reindex(d: Daemon, *flags: str) -> str:
    """`yizhan search reindex`, run as a program against the daemon's database."""
    config = d.ctx.config
    path = config.data_dir / "yizhan.toml"
    path.write_text(
        f'[yizhan]\ndata_dir = "{config.data_dir}"\nsecret = "{config.secret}"\n'
        f'[database]\nurl = "{config.database_url}"\n',
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "yizhan", "search", "reindex", *flags],
        capture_output=True,
        text=True,
        env={**os.environ, "YIZHAN_CONFIG": str(path)},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_documents_from_before_the_index_are_indexed(library: Daemon) -> None:
    # After the upgrade, `yizhan search reindex` indexes the documents made before the index,
    # and a search indexes any still missing on the way.
    d = library
    doc = int(open_report(d, "xiewenbin", "關於口岸檢疫的請示", "請批准。"))
    forget(d, doc)
    assert reindex(d) == "indexed 1 document(s)"
    assert reindex(d) == "indexed 0 document(s)"
    assert reindex(d, "--all") == "indexed 1 document(s)"  # every one, extracted again
    with d.ctx.sessions() as session:
        assert "检疫" in field_texts(session, doc)["title"]

    forget(d, doc)
    send(d, "xiewenbin", "cmd@oa.example", "搜索 檢疫", "")
    assert listed(text(one(d, "xiewenbin"))) == [f"#{doc}"]


def test_a_word_in_many_documents_ranks_the_newest_that_hold_it(
    library: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A word in very many documents: the newest that hold it are ranked (here three), not all,
    # and of those the ones the asker may see are listed; the answer says there are more.
    d = library
    in_title = open_report(d, "xiewenbin", "關於口岸檢疫的請示", "請批准。")
    older = open_report(d, "xiewenbin", "關於設備採購的請示", "檢疫設備。")
    newer = open_report(d, "xiewenbin", "關於人員培訓的請示", "檢疫培訓。")
    unseen = open_report(d, "mali", "關於機房檢疫的請示", "檢疫。")
    monkeypatch.setattr(desk_search, "MAX_CANDIDATES", 3)
    finder = desk_search.Finder(d.ctx)
    with d.ctx.sessions() as session:
        directory = load_directory(session)
        found = finder.find(session, "xiewenbin", "檢疫", directory)
        monkeypatch.setattr(desk_search, "MAX_CANDIDATES", 1000)
        complete = finder.find(session, "xiewenbin", "檢疫", directory)
    assert [h.document_id for h in found.hits] == [int(newer), int(older)]
    assert found.more
    assert [h.document_id for h in complete.hits] == [int(in_title), int(newer), int(older)]
    assert not complete.more
    assert int(unseen) not in [h.document_id for h in complete.hits]
    # The answer by mail says how far the search looked.
    monkeypatch.setattr(desk_search, "MAX_CANDIDATES", 3)
    send(d, "xiewenbin", "cmd@oa.example", "搜索 檢疫", "")
    answer = text(one(d, "xiewenbin"))
    assert listed(answer) == [f"#{newer}", f"#{older}"]
    assert "只列出前 2 条（在含这些词语的最新 3 份文件中排序）" in answer
