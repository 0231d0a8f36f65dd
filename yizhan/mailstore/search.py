"""Stores the search index of documents and reads the postings of a query's terms.

A document's fields are indexed whole: writing them again (after a revision) replaces what
was there, in the caller's transaction. The grams and the ranking are ``routing.search``'s.

The postings table has one row a gram and document, keyed by (gram, document), and no other
index (see ``models.SearchPosting``): a search reads the newest documents holding its rarest
gram backwards along the key, checks the other grams by probing the key, and ranks what it
found by the counts in those rows.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    and_,
    bindparam,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, aliased

from yizhan.mailstore.documents import TRAIL_PREFIX, doc_target
from yizhan.mailstore.models import AuditEntry, Document, SearchPosting, SearchText, Step
from yizhan.routing.search import FIELDS, Posting, Term, fold, grams_of_folded

__all__ = [
    "MAX_FIELD_TEXT",
    "Reach",
    "candidates",
    "documents_seen_by",
    "documents_with_gram",
    "field_texts",
    "forget_documents",
    "index_document",
    "index_rows",
    "oldest_of_newest",
    "postings_in",
    "postings_of",
    "rarest_gram",
    "texts_of",
    "unindexed_documents",
]

#: Characters of one field kept in the index: the head of a very long attachment is what
#: people search for, and the bound keeps one spreadsheet from weighing on every search.
MAX_FIELD_TEXT = 200_000
#: Keys of one statement's IN list (SQLite's limit of bound parameters is far above).
_CHUNK = 500


def index_rows(
    document_id: int, fields: Mapping[str, str]
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """The rows ``index_document`` writes for ``fields``: the texts and the postings."""
    texts: list[dict[str, object]] = []
    by_gram: dict[str, dict[str, object]] = {}
    for name, text in fields.items():
        if name not in FIELDS:
            raise ValueError(f"not an indexed field: {name}")
        folded = fold(text)[:MAX_FIELD_TEXT]
        texts.append({"document_id": document_id, "field": name, "text": folded})
        for gram, count in grams_of_folded(folded).items():
            row = by_gram.get(gram)
            if row is None:
                row = by_gram[gram] = {
                    "gram": gram,
                    "document_id": document_id,
                    "in_title": 0,
                    "in_body": 0,
                    "in_attachment": 0,
                }
            row[f"in_{name}"] = count
    return texts, list(by_gram.values())


def index_document(session: Session, document_id: int, fields: Mapping[str, str]) -> None:
    """Index ``fields`` (title, body, attachment → text) of a document, replacing its entry."""
    forget_documents(session, [document_id])
    texts, postings = index_rows(document_id, fields)
    if texts:
        session.execute(insert(SearchText), texts)
    if postings:
        session.execute(insert(SearchPosting), postings)


def forget_documents(session: Session, document_ids: Sequence[int]) -> None:
    """Take documents out of the index: their postings (found by the grams of their indexed
    texts) and their texts."""
    for start in range(0, len(document_ids), _CHUNK):
        ids = list(document_ids[start : start + _CHUNK])
        keys: set[tuple[str, int]] = set()
        for document_id, text in session.execute(
            select(SearchText.document_id, SearchText.text).where(SearchText.document_id.in_(ids))
        ):
            keys.update((gram, document_id) for gram in grams_of_folded(text))
        ordered = sorted(keys)
        for at in range(0, len(ordered), _CHUNK):
            session.execute(
                delete(SearchPosting).where(
                    tuple_(SearchPosting.gram, SearchPosting.document_id).in_(
                        ordered[at : at + _CHUNK]
                    )
                )
            )
        session.execute(delete(SearchText).where(SearchText.document_id.in_(ids)))


def _postings(rows: Iterable[tuple[int, str, int, int, int]]) -> list[Posting]:
    found: list[Posting] = []
    for document_id, gram, *counts in rows:
        found.extend(
            Posting(document_id=document_id, field=name, gram=gram, count=count)
            for name, count in zip(FIELDS, counts, strict=True)
            if count
        )
    return found


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
    # NOT EXISTS, an anti-join: PostgreSQL runs NOT IN over a subquery too big for work_mem
    # as a scan of the subquery for every document.
    indexed = exists().where(SearchText.document_id == Document.id, SearchText.field == "title")
    query = select(Document.id).where(~indexed).order_by(Document.id)
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
    if len(set(grams)) == 1:
        return grams[0]
    best: tuple[int, str] | None = None
    for gram in sorted(set(grams)):
        found = session.scalar(
            select(func.count()).select_from(
                select(SearchPosting.document_id)
                .where(SearchPosting.gram == gram)
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
    query = select(SearchPosting.document_id).where(SearchPosting.gram == gram)
    if before is not None:
        query = query.where(SearchPosting.document_id < before)
    query = query.order_by(SearchPosting.document_id.desc())
    return list(session.scalars(query.limit(limit)))


@dataclass(frozen=True, kw_only=True)
class Reach:
    """Which documents a search may return, as SQL can tell; the caller checks each one found
    against the whole rule (``routing.visibility``).

    Those ``account`` took part in (author, a step of theirs, their trail: ``took_part``),
    with ``every_kind_but`` every one of another kind (the office's), and every one of
    ``kinds_checked`` (bulletins and materials, whose readers their fields name);
    ``only_kinds`` narrows it all.
    """

    account: str
    every_kind_but: frozenset[str] | None = None
    kinds_checked: frozenset[str] = frozenset()
    only_kinds: frozenset[str] | None = None

    def clause(self) -> ColumnElement[bool]:
        """The condition on ``Document``."""
        clause = self.sure()
        if self.kinds_checked:
            # The row's own column first: PostgreSQL tries an OR's terms in the order written.
            clause = or_(Document.kind.in_(sorted(self.kinds_checked)), clause)
        if self.only_kinds is not None:
            clause = and_(clause, Document.kind.in_(sorted(self.only_kinds)))
        return clause

    def sure(self) -> ColumnElement[bool]:
        """The documents the account may see whatever their fields say: those they took part
        in, and the office's. Probes of one document's steps and trail, so that the cost
        follows the documents looked at, not all that the account is on."""
        step = exists().where(
            Step.document_id == Document.id,
            or_(
                Step.assignee == self.account,
                Step.on_behalf_of == self.account,
                Step.done_by == self.account,
            ),
        )
        # Through the index of targets: "actor || ''" keeps a planner from choosing the index
        # of actors, which would read all that the account ever did for every row.
        trail = exists().where(
            AuditEntry.target
            == literal(doc_target(0).removesuffix("0")).concat(cast(Document.id, String)),
            AuditEntry.actor.concat("") == self.account,
            AuditEntry.action.startswith(TRAIL_PREFIX),
        )
        either = [Document.author == self.account]
        if self.every_kind_but is not None:
            either.append(Document.kind.not_in(sorted(self.every_kind_but)))
        return or_(*either, step, trail)


def oldest_of_newest(session: Session, gram: str, newest: int) -> int | None:
    """The id of the ``newest``-th newest document whose index holds ``gram``; None if fewer
    hold it. (A range of the key read backwards, no table.)"""
    return session.scalar(
        select(SearchPosting.document_id)
        .where(SearchPosting.gram == gram)
        .order_by(SearchPosting.document_id.desc())
        .offset(newest - 1)
        .limit(1)
    )


def candidates(
    session: Session, first: str, others: Collection[str], *, since: int | None, limit: int
) -> tuple[list[int], list[Posting]]:
    """The newest ``limit`` documents from ``since`` on (an id) whose index holds ``first`` and
    every gram of ``others``, and the postings of ``first`` in them: the key of ``first`` read
    backwards, the others probed in the key; no table is read."""
    query = select(
        SearchPosting.document_id,
        SearchPosting.gram,
        SearchPosting.in_title,
        SearchPosting.in_body,
        SearchPosting.in_attachment,
    ).where(SearchPosting.gram == first)
    if since is not None:
        query = query.where(SearchPosting.document_id >= since)
    for gram in sorted(set(others) - {first}):
        other = aliased(SearchPosting)
        query = query.where(
            exists().where(other.gram == gram, other.document_id == SearchPosting.document_id)
        )
    rows = session.execute(query.order_by(SearchPosting.document_id.desc()).limit(limit)).all()
    return [row[0] for row in rows], _postings(rows)


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
            SearchPosting.document_id == func.any(bindparam("ids", ids, type_=ARRAY(Integer)))
            if postgresql
            else SearchPosting.document_id.in_(ids)
        )
        rows = session.execute(
            select(
                SearchPosting.document_id,
                SearchPosting.gram,
                SearchPosting.in_title,
                SearchPosting.in_body,
                SearchPosting.in_attachment,
            ).where(SearchPosting.gram == gram, among)
        ).all()
        holding = {row[0] for row in rows}
        ids = [i for i in ids if i in holding]
        found = [p for p in found if p.document_id in holding] + _postings(rows)
    return found


def postings_of(
    session: Session, grams: Collection[str], document_ids: Sequence[int]
) -> list[Posting]:
    """The postings of ``grams`` in the documents ``document_ids`` only."""
    ids = sorted(set(document_ids))
    if not grams or not ids:
        return []
    rows: list[tuple[int, str, int, int, int]] = []
    for start in range(0, len(ids), _CHUNK):
        rows.extend(
            session.execute(
                select(
                    SearchPosting.document_id,
                    SearchPosting.gram,
                    SearchPosting.in_title,
                    SearchPosting.in_body,
                    SearchPosting.in_attachment,
                ).where(
                    SearchPosting.gram.in_(sorted(grams)),
                    SearchPosting.document_id.in_(ids[start : start + _CHUNK]),
                )
            ).all()
        )
    return _postings(rows)
