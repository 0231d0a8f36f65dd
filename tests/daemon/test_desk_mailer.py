"""Tests for yizhan.daemon.desk.mailer: the X-Yizhan-* headers, and mail signed and queued."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import email
from email import policy
from email.message import EmailMessage

from sqlalchemy import select

from yizhan.daemon.context import Context
from yizhan.daemon.desk.mailer import Mailer, MailFile
from yizhan.daemon.desk.threads import document_thread, join_threads
from yizhan.mailstore.directory import load_directory
from yizhan.mailstore.models import Document, OutboundMessage
from yizhan.routing.documents import DocumentState, StepState
from yizhan.signing.pgpmime import verify_message

DUE = dt.datetime(2026, 9, 24, 9, 30, tzinfo=dt.UTC)


def document(**changes: object) -> Document:
    fields: dict[str, object] = {
        "id": 12,
        "kind": "gonggao",
        "title": "關於國慶值班安排的公告",
        "state": "closed",
        "number": None,
        "urgency": None,
        "author": "wangfang",
        "unit_id": "office",
        "fields": {"expires": "2026-10-08", "important": True},
    }
    fields.update(changes)
    return Document(**fields)


def test_document_headers_say_where_the_document_stands_and_what_is_asked(ctx: Context) -> None:
    # The contract of every mail about a document: id, kind, state, step, action; the deadline
    # in the bureau's time, the number and the urgency when it has them.
    state = DocumentState(
        id=7,
        kind="fawen",
        title="通知",
        state="signing",
        author="wangfang",
        unit="office",
        urgency="特急",
        number="遼檢辦〔2026〕5號",
    )
    step = StepState(id=3, name="signoff", assignee="lijun", action="approve", due_at=DUE)
    headers = Mailer(ctx).document_headers(state, step, "approve")
    yizhan = {k: v for k, v in headers.items() if k.startswith("X-Yizhan-")}
    assert yizhan == {
        "X-Yizhan-Doc": "7",
        "X-Yizhan-Kind": "fawen",
        "X-Yizhan-State": "signing",
        "X-Yizhan-Step": "signoff",
        "X-Yizhan-Action": "approve",
        "X-Yizhan-Deadline": "Thu, 24 Sep 2026 17:30:00 +0800",
        "X-Yizhan-Number": "遼檢辦〔2026〕5號",
        "X-Yizhan-Urgency": "特急",
    }
    told = Mailer(ctx).document_headers(state, state="closed")
    assert told["X-Yizhan-Step"] == "-" and told["X-Yizhan-Action"] == "none"
    assert told["X-Yizhan-State"] == "closed" and "X-Yizhan-Deadline" not in told
    # Every mail about the document is one conversation: the same root in References for
    # Thunderbird, the same Thread-Index and the title as Thread-Topic for Outlook.
    assert headers["References"] == told["References"] == "<yizhan-doc-7@oa.example>"
    assert headers["Thread-Index"] == told["Thread-Index"]
    index = base64.b64decode(headers["Thread-Index"])
    assert len(index) == 22 and index[0] == 1
    assert headers["Thread-Topic"] == "通知"
    other = Mailer(ctx).document_headers(dataclasses.replace(state, id=8))
    assert other["Thread-Index"] != headers["Thread-Index"]


def test_an_answer_about_a_document_stays_in_reply_to_the_persons_message() -> None:
    # A person's reply to a request is answered in reply to it; the document's root joins the
    # references, so the answer is in the same conversation as the request.
    document = document_thread(7, "oa.example", "通知")
    answer = {"In-Reply-To": "<r1@client>", "References": "<ask@oa.example> <r1@client>"}
    joined = join_threads(document, answer)
    assert joined["In-Reply-To"] == "<r1@client>"
    assert joined["References"] == "<yizhan-doc-7@oa.example> <ask@oa.example> <r1@client>"
    assert joined["Thread-Index"] == document["Thread-Index"]


def test_a_bulletin_is_a_list_mail_without_unsubscribe_and_news_says_how_to_leave(
    ctx: Context,
) -> None:
    # 第二十三條: a bulletin in scope is part of the work, so its list headers offer no way
    # out; it lapses on its expiry day; an important one is marked. News items are opted
    # into (SET xinxi on), so they say how to opt out (RFC 2369).
    mailer = Mailer(ctx)
    bulletin = mailer.bulletin_headers(document(), "published")
    assert bulletin["List-Id"] == "公告板 <gonggao.oa.example>"
    assert bulletin["Precedence"] == "list" and "List-Unsubscribe" not in bulletin
    assert bulletin["X-Yizhan-State"] == "published" and bulletin["X-Yizhan-Step"] == "-"
    assert bulletin["Expires"] == "Thu, 08 Oct 2026 23:59:00 +0800"
    assert bulletin["X-Yizhan-Importance"] == "high"
    news = mailer.news_headers(document(kind="xinxi", fields={}))
    assert news["List-Id"] == "信息宣傳 <xinxi.oa.example>"
    assert news["List-Unsubscribe"] == "<mailto:cmd@oa.example?subject=SET%20xinxi%20off>"
    assert news["X-Yizhan-Unit"] == "office" and news["X-Yizhan-State"] == "published"


def test_a_mail_is_rendered_for_its_reader_signed_and_queued_once(bureau: Context) -> None:
    # One call renders the template in the reader's language, attaches the file, signs it
    # with the system key with the X-Yizhan-* headers inside the signature, and queues it
    # for the reader's own mailbox; the same source queues nothing the second time.
    with bureau.sessions.begin() as session:
        person = load_directory(session).people["wangfang"]
        for _ in range(2):
            Mailer(bureau).send(
                session,
                source="test:1",
                to=person,
                template="reply.txt",
                headers={"X-Yizhan-Doc": "7", "Auto-Submitted": "auto-replied"},
                attachments=[MailFile(filename="a.txt", content_type="text/plain", data=b"hi")],
                variables={"subject": "測試", "text": "內容"},
            )
    with bureau.sessions() as session:
        (row,) = session.scalars(select(OutboundMessage)).all()
        data = row.data
        assert [d.rcpt for d in row.deliveries] == ["wangfang@bureau.example"]
    mail = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(mail, EmailMessage)
    assert mail.get_content_type() == "multipart/signed"
    assert "王芳" in str(mail["To"]) and "驛站" in str(mail["From"])
    files = [p.get_filename() for p in mail.walk() if p.get_filename()]
    assert files[:1] == ["a.txt"]  # and the signature after it
    checked = verify_message(data, bureau.keyring)
    assert checked.ok, checked.reason_en
