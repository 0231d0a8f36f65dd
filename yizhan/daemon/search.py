"""Finds documents for the people who may see them: the index, SEARCH and GET #id at cmd@.

A document is indexed when it is opened, revised or numbered (its title and number, its body,
and the text of its attachments, read from the mail that opened it by the same extractors the
content rules use: .docx, .xlsx, .pptx, .odt, .pdf, text …). Documents from before the index
are indexed by ``yizhan search reindex``, and a batch at a time by searches themselves.

A search (文檔查詢, 歷史數據) covers every document the asker may see, in any state, closed and
archived ones too: those STATUS would show them (``Desk._may_see``) and the internal materials
in whose scope they are (第十七條). The answer lists the best hits with their number, title and
state, and mailto: links that fetch each one: STATUS for where it stands, GET for the whole
document with its attachments, sent to the asker's own mailbox.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr
from typing import Final

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from yizhan.daemon.desk import Desk, Incoming, Sender, trail_lines
from yizhan.daemon.extract.message import read_message
from yizhan.daemon.files import attach_files, document_files, files_mail
from yizhan.daemon.rules_file import load_content_rules
from yizhan.daemon.screening.notices import it_people
from yizhan.mailstore import audit
from yizhan.mailstore import search as index_store
from yizhan.mailstore.documents import doc_target, find_document, load_state
from yizhan.mailstore.models import Document
from yizhan.routing import bulletins, materials
from yizhan.routing.commands import Command
from yizhan.routing.content import DEFAULT_CONTENT, ContentRules, ContentRulesError
from yizhan.routing.content.model import Attachment, Inspection
from yizhan.routing.content.outside import material_evidence
from yizhan.routing.digests import mailto
from yizhan.routing.directory import Directory, PersonInfo
from yizhan.routing.search import Ranked, contains, query_terms, rank
from yizhan.routing.tools import is_document_reference
from yizhan.templates.render import render_mail, render_text

log = logging.getLogger("yizhan.search")

#: Hits listed in one answer.
MAX_HITS: Final = 20
#: Documents from before the index that one search indexes on the way.
LAZY_BATCH: Final = 200
#: Candidates looked at in one search before the answer says "more" (bounds a search for a
#: word in every document that the asker may see few of).
MAX_CANDIDATES: Final = 5000
#: The words of the fetch links, per language: (STATUS, GET).
LINK_WORDS: Final = {"zh_CN": ("查询", "下载"), "zh_TW": ("查詢", "下載"), "en": ("STATUS", "GET")}
#: Parts of a signed mail that are protocol, not the document's attachments.


@dataclass(frozen=True, kw_only=True)
class Link:
    """A one-click fetch: what it does, and the mailto: URI that writes the command."""

    label: str
    url: str


@dataclass(frozen=True, kw_only=True)
class Hit:
    """One document found, as the results list shows it."""

    document_id: int
    label: str
    title: str
    state: str
    kind: str
    fields: tuple[str, ...]
    links: tuple[Link, ...]


@dataclass(frozen=True, kw_only=True)
class Found:
    """A search's answer: the hits shown, and whether there were more."""

    hits: tuple[Hit, ...]
    more: bool
    materials_withheld: bool = False


class Finder:
    """The search index and what is found in it, for cmd@ and ziliao@; one per desk."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.ctx = desk.ctx
        self.domain = desk.domain

    # -- the index ------------------------------------------------------------------------------

    def index(self, session: Session, document: Document, *, reread: bool = False) -> None:
        """(Re)index ``document``: title and number, body, and its attachments' text.

        The attachments are those of the mail that opened it, so once indexed their text is
        taken from the index rather than extracted again, unless ``reread``.
        """
        title = " ".join(p for p in (document.title, document.number or "") if p)
        known = None if reread else index_store.field_texts(session, document.id).get("attachment")
        index_store.index_document(
            session,
            document.id,
            {
                "title": title,
                "body": str(document.fields.get("body", "")),
                "attachment": (
                    known
                    if known is not None
                    else "\n".join(self._attachment_texts(session, document))
                ),
            },
        )

    def index_missing(self, session: Session, limit: int | None = None) -> int:
        """Index documents from before the index (up to ``limit``); returns how many."""
        ids = index_store.unindexed_documents(session, limit)
        for document_id in ids:
            document = session.get(Document, document_id)
            if document is None:
                continue
            try:
                with session.begin_nested():
                    self.index(session, document)
            except IntegrityError:
                # Another daemon indexed it at the same moment; its entry stands.
                log.info("doc %s: indexed concurrently", document_id)
        return len(ids)

    def _attachment_texts(self, session: Session, document: Document) -> Iterator[str]:
        raw = files_mail(session, self.ctx.raw, document)
        if raw is None:
            return
        for attachment in read_message(raw, self._content_rules()).attachments:
            yield attachment.name
            yield from (v for k, v in attachment.properties.items() if k in ("title", "subject"))
            yield attachment.text

    def _content_rules(self) -> ContentRules:
        try:
            return load_content_rules(self.ctx.config.rules_file)
        except ContentRulesError:
            # The extractors' limits only; the gateway reports a broken rules file itself.
            return DEFAULT_CONTENT

    # -- who may see what -----------------------------------------------------------------------

    def domains(self, directory: Directory) -> frozenset[str]:
        """The organisation's mail domains, as the content rules count them (第十七條)."""
        return self.desk.ctx.organisation_domains(
            p.email for p in directory.people.values() if p.email
        )

    def may_see(
        self, session: Session, document: Document, account: str, directory: Directory
    ) -> bool:
        """Whether ``account`` may find and fetch ``document``: a material if in its scope,
        any other document if STATUS would show it."""
        if document.kind == materials.KIND:
            return materials.in_scope(document.fields, document.author, account, directory)
        return self.desk._may_see(load_state(session, document), account, directory)

    def _bulletins_read_by(self, session: Session, account: str, directory: Directory) -> set[int]:
        # The bulletins published to ``account``, and the archive for the office (第二十三條);
        # as Desk._may_see lets them see bulletins.
        office = directory.in_unit_of_kind(account, "office")
        rows = session.execute(
            select(Document.id, Document.state, Document.fields).where(Document.kind == "gonggao")
        )
        return {
            r.id for r in rows if bulletins.may_read(r.state, r.fields, account, in_office=office)
        }

    def is_material(self, session: Session, document: Document) -> bool:
        """Whether ``document`` is internal material (第十七條): filed at ziliao@, or a manual
        or technical document by its title or attachment names (the content rule's words)."""
        if document.kind == materials.KIND:
            return True
        names = [str(n) for n in document.fields.get("attachments", ())]
        inspection = Inspection(
            subject=document.title,
            body="",
            attachments=tuple(Attachment(name=n, path=n) for n in names),
        )
        return material_evidence(inspection, self._content_rules()) is not None

    # -- searching ------------------------------------------------------------------------------

    def find(
        self,
        session: Session,
        account: str,
        words: str,
        directory: Directory,
        *,
        kinds: Collection[str] | None = None,
        with_materials: bool = True,
    ) -> Found:
        """The documents matching ``words`` that ``account`` may see, best first."""
        self.index_missing(session, LAZY_BATCH)
        terms = query_terms(words)
        ranked = rank(terms, index_store.postings(session, terms))
        seen = index_store.documents_seen_by(session, account) | self._bulletins_read_by(
            session, account, directory
        )
        person = directory.people[account]
        hits: list[Hit] = []
        withheld = False
        for n, (found, document) in enumerate(self._documents(session, ranked)):
            if n >= MAX_CANDIDATES:
                return Found(hits=tuple(hits), more=True, materials_withheld=withheld)
            if kinds is not None and document.kind not in kinds:
                continue
            material = document.kind == materials.KIND
            if not material and document.id not in seen:
                continue
            if not self.may_see(session, document, account, directory):
                continue
            if found.unchecked and not self._stands(session, document.id, found):
                continue
            if material and not with_materials:
                withheld = True
                continue
            if len(hits) == MAX_HITS:
                return Found(hits=tuple(hits), more=True, materials_withheld=withheld)
            hits.append(self._hit(document, found.fields, person))
        return Found(hits=tuple(hits), more=False, materials_withheld=withheld)

    def _documents(
        self, session: Session, ranked: Sequence[Ranked]
    ) -> Iterator[tuple[Ranked, Document]]:
        # Loaded a page at a time, in rank order.
        page = 200
        for start in range(0, len(ranked), page):
            chunk = ranked[start : start + page]
            rows = session.scalars(
                select(Document).where(Document.id.in_([r.document_id for r in chunk]))
            )
            by_id = {d.id: d for d in rows}
            for found in chunk:
                if found.document_id in by_id:
                    yield found, by_id[found.document_id]

    def _stands(self, session: Session, document_id: int, found: Ranked) -> bool:
        """Whether each term the index cannot prove stands as written in some field."""
        texts = index_store.field_texts(session, document_id).values()
        return all(any(contains(text, term) for text in texts) for term in found.unchecked)

    def _hit(
        self, document: Document, where: Mapping[str, tuple[str, ...]], person: PersonInfo
    ) -> Hit:
        status, get = LINK_WORDS.get(person.language or "zh_CN", LINK_WORDS["zh_CN"])
        label = document.number or f"#{document.id}"
        links: tuple[Link, ...]
        if document.kind == materials.KIND:
            # A material's scope is not STATUS's; it is fetched from the library.
            address = f"{self._local('ziliao')}@{self.domain}"
            links = (Link(label=get, url=mailto(address, subject=f"{get} {document.id}", body="")),)
        else:
            address = f"cmd@{self.domain}"
            links = tuple(
                Link(label=word, url=mailto(address, subject=f"{word} #{document.id}", body=""))
                for word in (status, get)
            )
        fields = tuple(dict.fromkeys(f for term_fields in where.values() for f in term_fields))
        return Hit(
            document_id=document.id,
            label=label,
            title=document.title,
            state=document.state,
            kind=document.kind,
            fields=fields,
            links=links,
        )

    def _local(self, module: str) -> str:
        return self.ctx.config.addresses.get(module, (module,))[0]

    def results_text(
        self, found: Found, words: str, person: PersonInfo, *, listing: bool = False
    ) -> str:
        """The answer to a search (or the library's list), in the asker's language."""
        _, body = render_text(
            "search_results.txt",
            person.language,
            query=words,
            hits=found.hits,
            more=found.more,
            listing=listing,
            withheld=found.materials_withheld,
            domain=self.domain,
            max_hits=MAX_HITS,
        )
        return body.rstrip("\n")

    def search_command(
        self,
        session: Session,
        account: str,
        command: Command,
        directory: Directory,
        now: dt.datetime,
    ) -> str:
        """SEARCH words at cmd@: the documents and materials the asker may see."""
        person = directory.people[account]
        words = command.argument.strip()
        if not query_terms(words):
            return self.results_text(Found(hits=(), more=False), words, person)
        outside = materials.outside_refusal(person, self.domain, self.domains(directory))
        found = self.find(session, account, words, directory, with_materials=outside is None)
        audit.record(
            session,
            at=now,
            actor=account,
            action="search",
            detail={"words": words[:200], "hits": [h.document_id for h in found.hits]},
        )
        return self.results_text(found, words, person)

    # -- fetching -------------------------------------------------------------------------------

    def get_command(
        self,
        session: Session,
        row: Incoming,
        msg: EmailMessage,
        sender: Sender,
        argument: str,
        directory: Directory,
    ) -> bool:
        """GET #id at cmd@: the whole document with its attachments, to the asker's own
        mailbox. False when ``argument`` names no document and is no id either: then the GET
        is for something else (a tool, by name)."""
        assert sender.account is not None
        ref = argument.strip()
        document = find_document(session, ref) if ref else None
        if document is None:
            if not is_document_reference(ref):
                return False
            self.desk._reply(
                session,
                row,
                msg,
                sender,
                directory,
                f"找不到文件「{ref}」。請寫文件編號或文號，例如：下載 #12\n"
                f"No document {ref!r}. Send GET with its id or number, e.g. GET #12",
            )
            return True
        if not self.may_see(session, document, sender.account, directory):
            self.desk._reply(
                session,
                row,
                msg,
                sender,
                directory,
                f"您無權查看文件 #{document.id}。You may not see document #{document.id}.",
            )
            return True
        self.send_copy(session, row, msg, sender, document, directory, self.ctx.clock())
        return True

    def send_copy(
        self,
        session: Session,
        row: Incoming,
        msg: EmailMessage,
        sender: Sender,
        document: Document,
        directory: Directory,
        now: dt.datetime,
    ) -> None:
        """Send ``document`` whole to the asker's own mailbox; internal material never to one
        outside the organisation (第十七條), which is refused and reported to IT instead.

        The caller has checked that the asker may see it.
        """
        assert sender.account is not None
        person = directory.people[sender.account]
        material = self.is_material(session, document)
        if material:
            refusal = materials.outside_refusal(person, self.domain, self.domains(directory))
            if refusal is not None:
                self.refuse_outside(session, row, msg, person, directory, refusal, now, document)
                return
        address = person.mailbox(self.domain)
        state = load_state(session, document)
        headers = self.desk._document_headers(state, None, "none")
        if material:
            # So that an outbound filter knows it for material too (第十七條).
            headers["X-Yizhan-Kind"] = materials.KIND
        headers["Auto-Submitted"] = "auto-replied"
        if msg.get("Message-ID"):
            headers["In-Reply-To"] = headers["References"] = str(msg["Message-ID"])
        files = document_files(session, self.ctx.raw, document)
        author = directory.people.get(document.author)
        sent_from = self._local("ziliao") if document.kind == materials.KIND else "cmd"
        mail = render_mail(
            "document_copy.txt",
            person.language,
            sender=formataddr(("驛站", f"{sent_from}@{self.domain}")),
            to=address,
            headers=headers,
            doc=state,
            author=author.name if author else document.author,
            scope=(
                materials.scope_text(document.fields, directory)
                if document.kind == materials.KIND
                else ""
            ),
            body=str(document.fields.get("body", "")),
            attachments=[f.get_filename() or "" for f in files],
            missing=len(files) < len(document.fields.get("attachments", ())),
            material=material,
            trail=trail_lines(state, directory, self.ctx.config.tzinfo, person.language),
        )
        attach_files(mail, files)
        self.ctx.queue(
            session,
            source=f"{row.key}:copy:{document.id}",
            message=self.ctx.sign(mail),
            rcpts=[address],
            now=now,
            document_id=document.id,
            material=material,
        )
        audit.record(
            session,
            at=now,
            actor=person.account,
            action="document.copy",
            target=doc_target(document.id),
            detail={"to": address, "material": material},
        )

    def refuse_outside(
        self,
        session: Session,
        row: Incoming,
        msg: EmailMessage,
        person: PersonInfo,
        directory: Directory,
        refusal: tuple[str, str],
        now: dt.datetime,
        document: Document | None = None,
    ) -> None:
        """Refuse to send internal material to ``person``'s outside mailbox (第十七條): tell
        them why, keep it in the audit trail and report it to the IT department."""
        address = person.mailbox(self.domain)
        audit.record(
            session,
            at=now,
            actor=person.account,
            action="refused.outside",
            target=doc_target(document.id) if document is not None else None,
            detail={"to": address, "inbound": row.inbound_id},
        )
        self.desk._reply(
            session,
            row,
            msg,
            Sender(account=person.account, address=address),
            directory,
            "\n\n".join(refusal),
        )
        subject = str(msg.get("Subject", "")) or "(no subject)"
        for it_person in it_people(directory):
            it_address = it_person.mailbox(self.domain)
            notice = render_mail(
                "material_outside.txt",
                it_person.language,
                sender=formataddr(("驛站", f"cmd@{self.domain}")),
                to=it_address,
                headers={"Auto-Submitted": "auto-generated"},
                name=person.name,
                account=person.account,
                address=address,
                subject=subject,
                document=f"#{document.id} {document.title}" if document is not None else "-",
            )
            self.ctx.queue(
                session,
                source=f"{row.key}:outside:{it_person.account}",
                message=self.ctx.sign(notice),
                rcpts=[it_address],
                now=now,
            )
