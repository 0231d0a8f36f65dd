"""Answers mail to ziliao@ (內部資料, 第十七條): files materials, finds them, hands them out.

A mail with a title, a 範圍/Scope line and attachments is filed at once as a document of kind
``ziliao``; SEARCH words, a list (目錄 / LIST, or SEARCH alone) and GET id answer the people in
a material's scope. Everything this module sends goes to the asker's own address
(``PersonInfo.mailbox``), never to the From of the request; and nothing of
the library goes to a person whose mail is delivered outside the organisation: that is
refused, and reported to the IT department (第十七條).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from email.message import EmailMessage
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from yizhan.daemon.desk import Incoming, Sender
from yizhan.daemon.extract.message import attached_files
from yizhan.daemon.search import Finder, Found, Hit
from yizhan.mailstore.documents import apply_decision, create_document
from yizhan.mailstore.models import Document
from yizhan.routing import materials
from yizhan.routing.bulletins import parse_scope
from yizhan.routing.commands import command_from_message
from yizhan.routing.directory import Directory
from yizhan.routing.drafts import parse_draft
from yizhan.routing.materials import RequestKind
from yizhan.routing.replies import body_text

#: Materials listed by 目錄 / LIST, newest first.
MAX_LISTED: Final = 50


def library_help(domain: str) -> str:
    """What ziliao@ does, in Chinese and English."""
    return (
        f"內部資料庫 ziliao@{domain}（第十七條）\n"
        "歸檔：郵件主題寫資料名稱，正文第一行寫「範圍：單位、角色或人員」，空一行後寫說明，附上文件。\n"
        "搜索 詞語 — 查找您範圍內的資料；目錄 — 列出資料；下載 編號 — 取回資料及附件。\n"
        "內部資料只發到您在本單位的郵箱，嚴禁提供給外單位。\n\n"
        f"Internal materials at ziliao@{domain} (art. 17)\n"
        "File: the subject is the title, the body opens with 'Scope: units, roles or people', "
        "a blank line, a description; attach the files.\n"
        "SEARCH words — find materials in your scope; LIST — list them; GET id — fetch one "
        "with its files.\nMaterials go only to your mailbox in the organisation, never outside."
    )


class Library:
    """The ziliao@ module; one per desk, using its finder."""

    def __init__(self, finder: Finder) -> None:
        self.finder = finder
        self.desk = finder.desk
        self.ctx = finder.ctx
        self.domain = finder.domain

    def handle(
        self, session: Session, row: Incoming, msg: EmailMessage, directory: Directory
    ) -> None:
        """A mail to ziliao@: file it, or answer its SEARCH, list, GET or HELP."""
        now = self.ctx.clock()
        sender = self.desk._sender(row, msg)
        if sender.account is None:
            self.desk._refuse_unauthenticated(session, row, msg, sender, directory)
            return
        person = directory.people[sender.account]
        # Every answer goes to the person's own address (第十七條), whatever From says.
        own = replace(sender, address=person.mailbox(self.domain))
        request = materials.parse_request(
            command_from_message(msg), has_attachments=bool(attached_files(msg))
        )
        if request.kind is RequestKind.FILE:
            self._file(session, row, msg, own, directory, now)
            return
        if request.kind is RequestKind.HELP or request.problem:
            text = request.problem or library_help(self.domain)
            self.desk._reply(session, row, msg, own, directory, text)
            return
        refusal = materials.outside_refusal(person, self.domain, self.finder.domains(directory))
        if refusal is not None:
            self.finder.refuse_outside(session, row, msg, person, directory, refusal, now)
            return
        if request.kind is RequestKind.SEARCH:
            found = self.finder.find(
                session, person.account, request.words, directory, kinds=(materials.KIND,)
            )
            text = self.finder.results_text(found, request.words, person)
            self.desk._reply(session, row, msg, own, directory, text)
        elif request.kind is RequestKind.LIST:
            text = self.finder.results_text(
                self._listing(session, person.account, directory), "", person, listing=True
            )
            self.desk._reply(session, row, msg, own, directory, text)
        else:
            self._get(session, row, msg, own, request.material_id, directory, now)

    def _file(
        self,
        session: Session,
        row: Incoming,
        msg: EmailMessage,
        sender: Sender,
        directory: Directory,
        now: dt.datetime,
    ) -> None:
        assert sender.account is not None
        draft = parse_draft(str(msg.get("Subject", "")), body_text(msg))
        if draft.problems:
            self.desk._reply(session, row, msg, sender, directory, "\n".join(draft.problems))
            return
        names = [p.get_filename() or "" for p in attached_files(msg)]
        decision = materials.file_material(
            title=draft.title,
            author=sender.account,
            scope=parse_scope(draft.scope, directory),
            body=draft.body,
            attachments=names,
            now=now,
        )
        if not decision.accepted:
            text = f"{decision.reply}\n\n{library_help(self.domain)}"
            self.desk._reply(session, row, msg, sender, directory, text)
            return
        author = directory.people[sender.account]
        document = create_document(
            session,
            kind=materials.KIND,
            title=draft.title,
            author=sender.account,
            unit=author.unit,
            urgency=None,
            fields={"inbound": row.inbound_id},
            source_inbound=row.inbound_id,
            now=now,
        )
        apply_decision(
            session, document, decision, actor=sender.account, on_behalf_of=None, now=now
        )
        self.finder.index(session, document)
        scope = materials.scope_text(document.fields, directory)
        self.desk._reply(
            session,
            row,
            msg,
            sender,
            directory,
            f"已歸檔內部資料 #{document.id}「{document.title}」，附件 {len(names)} 個，"
            f"使用範圍：{scope}。範圍內人員可向 ziliao@{self.domain} "
            f"發送「下載 {document.id}」取回。\n"
            f'Filed internal material #{document.id} "{document.title}" with {len(names)} '
            f"file(s), for: {scope}. People in scope fetch it with GET {document.id} to "
            f"ziliao@{self.domain}.",
        )

    def _listing(self, session: Session, account: str, directory: Directory) -> Found:
        """The newest materials ``account`` may see."""
        rows = session.scalars(
            select(Document).where(Document.kind == materials.KIND).order_by(Document.id.desc())
        )
        person = directory.people[account]
        hits: list[Hit] = []
        for document in rows:
            if materials.in_scope(document.fields, document.author, account, directory):
                if len(hits) == MAX_LISTED:
                    return Found(hits=tuple(hits), more=True)
                hits.append(self.finder._hit(document, {}, person))
        return Found(hits=tuple(hits), more=False)

    def _get(
        self,
        session: Session,
        row: Incoming,
        msg: EmailMessage,
        sender: Sender,
        material_id: int | None,
        directory: Directory,
        now: dt.datetime,
    ) -> None:
        assert sender.account is not None and material_id is not None
        document = session.get(Document, material_id)
        if document is None or document.kind != materials.KIND:
            text = (
                f"資料庫中沒有 #{material_id}。發送「目錄」可列出您可用的資料。\n"
                f"There is no material #{material_id}. Send LIST for the materials you may use."
            )
        elif not materials.in_scope(document.fields, document.author, sender.account, directory):
            scope = materials.scope_text(document.fields, directory)
            text = (
                f"您不在資料 #{material_id} 的使用範圍內（{scope}），"
                "不能取回。如工作需要，請聯繫歸檔人。\n"
                f"You are not in the scope of material #{material_id}; ask the person who "
                "filed it if your work needs it."
            )
        else:
            self.finder.send_copy(session, row, msg, sender, document, directory, now)
            return
        self.desk._reply(session, row, msg, sender, directory, text)
