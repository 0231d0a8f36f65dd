"""Finds documents for the people who may see them: the search index, and what is found in it.

A document is indexed when it is opened, revised or numbered (its title and number, its body,
and the text of its attachments, read from the mail that opened it by the same extractors the
content rules use: .docx, .xlsx, .pptx, .odt, .pdf, text …). Documents from before the index
are indexed by ``yizhan search reindex``, and a batch at a time by searches themselves.

A search (文檔查詢, 歷史數據) covers every document the asker may see, in any state, closed and
archived ones too: those ``routing.visibility.may_see`` lets them see, which includes the
internal materials in whose scope they are (第十七條). The answer lists the best hits with their
number, title and state, and mailto: links that fetch each one: STATUS for where it stands, GET
for the whole document with its attachments (``commands.search``, ``commands.get``).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import BigInteger, any_, bindparam, case, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer
from sqlalchemy.orm.attributes import set_committed_value

from yizhan.daemon.context import Context
from yizhan.daemon.desk.files import files_mail
from yizhan.daemon.extract.message import read_message
from yizhan.daemon.rules_file import load_content_rules
from yizhan.mailstore import search as index_store
from yizhan.mailstore.documents import load_state
from yizhan.mailstore.models import Document
from yizhan.routing import bulletins, materials
from yizhan.routing.content import DEFAULT_CONTENT, ContentRules, ContentRulesError
from yizhan.routing.content.model import Attachment, Inspection
from yizhan.routing.content.outside import material_evidence
from yizhan.routing.digests import mailto
from yizhan.routing.directory import Directory, PersonInfo
from yizhan.routing.search import Ranked, contains, query_terms, rank
from yizhan.routing.visibility import LEAVE_KIND, may_see, office_oversees
from yizhan.templates.render import render_text

__all__ = ["LAZY_BATCH", "MAX_HITS", "Finder", "Found", "Hit", "Link"]

log = logging.getLogger("yizhan.search")

#: Hits listed in one answer.
MAX_HITS: Final = 20
#: Documents from before the index that one search indexes on the way.
LAZY_BATCH: Final = 200
#: Documents ranked in one search before the answer says "more": the newest that hold all the
#: words (bounds a search for a word in half the documents); those the asker may see are listed.
MAX_CANDIDATES: Final = 1000
#: Postings of the rarest gram read at most to find those that hold the other grams too.
MAX_SCANNED: Final = 20_000
#: The kinds the office does not see by its duty (``routing.visibility.office_oversees``).
OFFICE_UNSEEN: Final = frozenset({LEAVE_KIND, materials.KIND})
#: The words of the fetch links, per language: (STATUS, GET).
LINK_WORDS: Final = {"zh_CN": ("查询", "下载"), "zh_TW": ("查詢", "下載"), "en": ("STATUS", "GET")}


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

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.domain = ctx.config.domain
        # Once a search found every document indexed, later ones need not look again: every
        # document made since is indexed in the transaction that makes it.
        self._all_indexed = False

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
        return self.ctx.organisation_domains(p.email for p in directory.people.values() if p.email)

    def may_see(
        self, session: Session, document: Document, account: str, directory: Directory
    ) -> bool:
        """Whether ``account`` may find and fetch ``document`` (``routing.visibility``)."""
        if document.kind == materials.KIND:
            # The row says all the rule asks of a material; its trail and steps are not read.
            return materials.in_scope(
                document.fields, document.author, account, directory, state=document.state
            )
        return may_see(load_state(session, document), account, directory)

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
        """The documents matching ``words`` that ``account`` may see, best first.

        Ranked are the newest ``MAX_CANDIDATES`` documents that hold every gram of the words,
        read from the index alone (along the key of the rarest gram, the others probed);
        listed, best first, are those within the asker's reach (``index_store.Reach``, in
        SQL) that the whole rule lets them see. So a word in half a million documents costs
        what a rare one does.
        """
        if not self._all_indexed:
            self._all_indexed = self.index_missing(session, LAZY_BATCH) == 0
        terms = query_terms(words)
        grams = [g for t in terms for g in t.grams]
        first = index_store.rarest_gram(session, grams)
        if first is None:
            return Found(hits=(), more=False)
        reach = self._reach(account, directory, kinds)
        others = set(grams) - {first}
        # With other grams to probe, a bound on the postings of the first read for them.
        since = index_store.oldest_of_newest(session, first, MAX_SCANNED) if others else None
        pool, postings = index_store.candidates(
            session, first, others, since=since, limit=MAX_CANDIDATES
        )
        complete = since is None and len(pool) < MAX_CANDIDATES
        postings.extend(index_store.postings_of(session, others, pool))
        ranked = rank(terms, postings)
        person = directory.people[account]
        hits: list[Hit] = []
        withheld = False
        for found, document, sure in self._documents(session, ranked, reach):
            if document.kind in reach.kinds_checked and not self._may_find(
                session, document, account, directory, sure=sure
            ):
                continue
            if found.unchecked and not self._stands(session, document.id, found):
                continue
            if document.kind == materials.KIND and not with_materials:
                withheld = True
                continue
            if len(hits) == MAX_HITS:
                return Found(hits=tuple(hits), more=True, materials_withheld=withheld)
            hits.append(self.hit(document, found.fields, person))
        return Found(hits=tuple(hits), more=not complete, materials_withheld=withheld)

    def _may_find(
        self,
        session: Session,
        document: Document,
        account: str,
        directory: Directory,
        *,
        sure: bool,
    ) -> bool:
        """``may_see`` of a bulletin or material within the asker's reach, ``sure`` if they
        took part or are the office (which lets them see a bulletin, not a material)."""
        if document.kind == "gonggao":
            return sure or bulletins.may_read(
                document.state,
                document.fields,
                account,
                in_office=directory.in_unit_of_kind(account, "office"),
            )
        return self.may_see(session, document, account, directory)

    @staticmethod
    def _reach(
        account: str, directory: Directory, kinds: Collection[str] | None
    ) -> index_store.Reach:
        """The documents ``account`` may find, as far as SQL tells (``routing.visibility``):
        those they took part in, the office's kinds if they are the office, and bulletins and
        materials, whose fields say who reads them (checked on each one found)."""
        return index_store.Reach(
            account=account,
            every_kind_but=(OFFICE_UNSEEN if office_oversees("", account, directory) else None),
            kinds_checked=frozenset({"gonggao", materials.KIND}),
            only_kinds=frozenset(kinds) if kinds is not None else None,
        )

    def _documents(
        self, session: Session, ranked: Sequence[Ranked], reach: index_store.Reach
    ) -> Iterator[tuple[Ranked, Document, bool]]:
        # Those within the asker's reach, in rank order, and whether they may see each whatever
        # its fields say; a page at a time, each twice the last, the first larger for
        # someone who sees only what they are on. Without their fields (a body, a bulletin's
        # readers), but those of the bulletins and materials to check, read for the page.
        if session.get_bind().dialect.name == "postgresql":
            # One array parameter: one plan whatever the page's length, and a short statement.
            listed = Document.id == any_(bindparam("ids", type_=ARRAY(BigInteger)))
        else:
            listed = Document.id.in_(bindparam("ids", expanding=True))
        query = (
            select(Document, case((reach.sure(), 1), else_=0))
            .options(defer(Document.fields))
            .where(listed, reach.clause())
        )
        start, page = 0, (40 if reach.every_kind_but is not None else 200)
        while start < len(ranked):
            chunk = ranked[start : start + page]
            start, page = start + page, page * 2
            rows = session.execute(query, {"ids": [r.document_id for r in chunk]}).all()
            by_id = {d.id: (d, bool(sure)) for d, sure in rows}
            self._read_fields(
                session,
                [d for d, sure in by_id.values() if not sure and d.kind in reach.kinds_checked],
            )
            for found in chunk:
                if found.document_id in by_id:
                    yield found, *by_id[found.document_id]

    @staticmethod
    def _read_fields(session: Session, documents: Sequence[Document]) -> None:
        """Load the deferred fields of ``documents`` in one query."""
        if not documents:
            return
        by_id = {d.id: d for d in documents}
        for document_id, fields in session.execute(
            select(Document.id, Document.fields).where(Document.id.in_(list(by_id)))
        ):
            set_committed_value(by_id[document_id], "fields", fields)

    def _stands(self, session: Session, document_id: int, found: Ranked) -> bool:
        """Whether each term the index cannot prove stands as written in some field."""
        texts = index_store.field_texts(session, document_id).values()
        return all(any(contains(text, term) for text in texts) for term in found.unchecked)

    def hit(
        self, document: Document, where: Mapping[str, tuple[str, ...]], person: PersonInfo
    ) -> Hit:
        """``document`` as a results list shows it to ``person``, with its fetch links."""
        status, get = LINK_WORDS.get(person.language or "zh_CN", LINK_WORDS["zh_CN"])
        label = document.number or f"#{document.id}"
        links: tuple[Link, ...]
        if document.kind == materials.KIND:
            # A material's scope is not STATUS's; it is fetched from the library.
            address = f"{self.local_part('ziliao')}@{self.domain}"
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

    def local_part(self, module: str) -> str:
        """The configured local part of ``module``'s address (its pinyin name by default)."""
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
            scope=f"{MAX_CANDIDATES:,}",
        )
        return body.rstrip("\n")
