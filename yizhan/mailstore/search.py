"""Stores the search index of documents and reads the postings of a query's terms.

A document's fields are indexed whole: writing them again (after a revision) replaces what
was there, in the caller's transaction. The grams and the ranking are ``routing.search``'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import Integer, bindparam, delete, func, insert, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from yizhan.mailstore.documents import TRAIL_PREFIX, doc_target
from yizhan.mailstore.models import AuditEntry, Document, SearchGram, SearchText, Step
from yizhan.routing.search import Posting, Term, fold, index_grams

__all__ = [
    "MAX_FIELD_TEXT",
    "documents_seen_by",
    "documents_with_gram",
    "field_texts",
    "index_document",
    "postings",
    "postings_in",
    "rarest_gram",
    "texts_of",
    "unindexed_documents",
]

#: Characters of one field kept in the index: the head of a very long attachment is what
#: people search for, and the bound keeps one spreadsheet from weighing on every search.
MAX_FIELD_TEXT = 200_000


def index_document(session: Session, document_id: int, fields: Mapping[str, str]) -> None:
    """Index ``fields`` (title, body, attachment → text) of a document, replacing its entry."""
    session.execute(delete(SearchGram).where(SearchGram.document_id == document_id))
    session.execute(delete(SearchText).where(SearchText.document_id == document_id))
    texts: list[dict[str, object]] = []
    grams: list[dict[str, object]] = []
    for field, text in fields.items():
        folded = fold(text)[:MAX_FIELD_TEXT]
        texts.append({"document_id": document_id, "field": field, "text": folded})
        grams.extend(
            {"gram": gram, "document_id": document_id, "field": field, "count": count}
            for gram, count in index_grams(folded).items()
        )
    if texts:
        session.execute(insert(SearchText), texts)
    if grams:
        session.execute(insert(SearchGram), grams)


def postings(session: Session, terms: Sequence[Term]) -> list[Posting]:
    """Every posting of the grams of ``terms``."""
    grams = sorted({g for t in terms for g in t.grams})
    if not grams:
        return []
    rows = session.execute(
        select(SearchGram.document_id, SearchGram.field, SearchGram.gram, SearchGram.count).where(
            SearchGram.gram.in_(grams)
        )
    )
    return [Posting(document_id=d, field=f, gram=g, count=c) for d, f, g, c in rows]


def field_texts(session: Session, document_id: int) -> dict[str, str]:
    """The indexed (folded) texts of a document, by field."""
    rows = session.execute(
        select(SearchText.field, SearchText.text).where(SearchText.document_id == document_id)
    )
    # Not dict(rows): a Result has keys() (its column names), so dict() would read it as a map.
    return {field: text for field, text in rows}


def texts_of(session: Session, document_ids: Sequence[int]) -> dict[int, dict[str, str]]:
    """The indexed (folded) texts of each of ``document_ids``, by field."""
    found: dict[int, dict[str, str]] = {}
    if not document_ids:
        return found
    rows = session.execute(
        select(SearchText.document_id, SearchText.field, SearchText.text).where(
            SearchText.document_id.in_(list(document_ids))
        )
    )
    for document_id, field, text in rows:
        found.setdefault(document_id, {})[field] = text
    return found


def unindexed_documents(session: Session, limit: int | None = None) -> list[int]:
    """Ids of documents not in the index (made before it existed), oldest first."""
    indexed = select(SearchText.document_id).where(SearchText.field == "title")
    query = select(Document.id).where(Document.id.not_in(indexed)).order_by(Document.id)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def documents_seen_by(session: Session, account: str) -> set[int]:
    """The documents ``account`` is on: as author, on a step (asked, delegator, doer), or in
    the trail: those ``routing.visibility.took_part`` finds, as a set, so that a search need
    not load every matching document to check."""
    seen = set(session.scalars(select(Document.id).where(Document.author == account)))
    seen.update(
        session.scalars(
            select(Step.document_id).where(
                (Step.assignee == account)
                | (Step.on_behalf_of == account)
                | (Step.done_by == account)
            )
        )
    )
    for target in session.scalars(
        select(AuditEntry.target).where(
            AuditEntry.actor == account,
            AuditEntry.action.startswith(TRAIL_PREFIX),
            AuditEntry.target.startswith(doc_target(0).removesuffix("0")),
        )
    ):
        number = (target or "").rpartition(":")[2]
        if number.isdigit():
            seen.add(int(number))
    return seen


def rarest_gram(session: Session, grams: Sequence[str], *, enough: int = 2_000) -> str | None:
    """Of ``grams``, the one with the fewest postings (counted up to ``enough``)."""
    best: tuple[int, str] | None = None
    for gram in sorted(set(grams)):
        found = session.scalar(
            select(func.count()).select_from(
                select(SearchGram.document_id)
                .where(SearchGram.gram == gram)
                .limit(enough)
                .subquery()
            )
        )
        if best is None or int(found or 0) < best[0]:
            best = (int(found or 0), gram)
    return best[1] if best else None


def documents_with_gram(
    session: Session, gram: str, *, before: int | None, limit: int
) -> list[int]:
    """Ids of documents whose index holds ``gram``, newest first, below ``before``."""
    query = select(SearchGram.document_id).where(SearchGram.gram == gram)
    if before is not None:
        query = query.where(SearchGram.document_id < before)
    query = query.group_by(SearchGram.document_id).order_by(SearchGram.document_id.desc())
    return list(session.scalars(query.limit(limit)))


def postings_in(
    session: Session, terms: Sequence[Term], document_ids: Sequence[int]
) -> list[Posting]:
    """The postings of the grams of ``terms`` in the documents ``document_ids`` that hold every
    one of them (a document without one cannot hold every term, so ``rank`` would drop it).

    One query a gram, each among the documents that held the grams before: with every gram and
    a score of documents in one query SQLite looked up the grams alone and read every posting
    of a common one (100,000 for 請示 among 100,000 documents), and the documents narrow
    quickly (pairs of characters before single ones: they are rarer).
    """
    grams = sorted({g for t in terms for g in t.grams}, key=lambda g: (-len(g), g))
    ids = list(document_ids)
    postgresql = session.get_bind().dialect.name == "postgresql"
    found: list[Posting] = []
    for gram in grams:
        if not ids:
            return []
        # On PostgreSQL the ids go as one array, not as hundreds of parameters that both the
        # driver and the server parse again for every query.
        among = (
            SearchGram.document_id == func.any(bindparam("ids", ids, type_=ARRAY(Integer)))
            if postgresql
            else SearchGram.document_id.in_(ids)
        )
        rows = session.execute(
            select(SearchGram.document_id, SearchGram.field, SearchGram.count).where(
                SearchGram.gram == gram, among
            )
        )
        these = [Posting(document_id=d, field=f, gram=gram, count=c) for d, f, c in rows]
        holding = {p.document_id for p in these}
        ids = [i for i in ids if i in holding]
        found = [p for p in found if p.document_id in holding] + these
    return found
