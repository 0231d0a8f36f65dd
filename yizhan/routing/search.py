"""Reads search words and ranks documents by them (文檔查詢, SEARCH at cmd@ and ziliao@).

Chinese is written without spaces, so words cannot be split out of a text reliably; instead a
text is indexed by its characters and its pairs of neighbouring characters (CJK bigrams), and
runs of letters and digits by the whole word. A query term is found where all its grams are:
a two-character word such as 檢疫 or 公告 is one bigram, so the index answers it exactly; a
single character is its unigram; a longer term (檢驗檢疫) is the bigrams it is made of, and the
caller checks that it really stands in the text (:func:`contains`), since two bigrams may sit
apart. Words of letters and digits match whole words, without regard to case.

Why an inverted index of grams rather than ``LIKE '%詞%'`` over the texts: LIKE reads every
stored text on every search, which for tens of thousands of documents with their attachments
is hundreds of megabytes a query; the gram table is read through its primary key (gram first),
works the same on SQLite and PostgreSQL, and needs no extension (pg_trgm, pg_bigm, FTS5).

Ranking: every term must be found somewhere in the document (AND); a term counts most in the
title, less in the body, least in an attachment, and more the more often it occurs
(logarithmically, so that a long attachment does not drown a title). Ties go to the newer
document. Everything here is pure: postings come in, ranked document ids go out.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from yizhan.routing.content.text import normalise
from yizhan.routing.drafts import simplified

__all__ = [
    "FIELDS",
    "FIELD_WEIGHTS",
    "MAX_GRAM",
    "Posting",
    "Ranked",
    "Term",
    "contains",
    "fold",
    "grams_of_folded",
    "index_grams",
    "query_terms",
    "rank",
]

#: The fields of a document that are indexed, in the order they rank.
FIELDS: Final = ("title", "body", "attachment")
#: How much a term found in each field counts.
FIELD_WEIGHTS: Final[Mapping[str, float]] = MappingProxyType(
    {"title": 10.0, "body": 3.0, "attachment": 1.0}
)
#: The longest gram kept (a word of letters longer than this is cut, in the index and the query).
MAX_GRAM: Final = 40

# Han ideographs (with extension A, compatibility ideographs and the supplementary planes),
# kana and hangul: scripts written without spaces between words.
_CJK: Final = (
    "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f"
)
_RUNS: Final = re.compile(f"[{_CJK}]+|[^\\W_{_CJK}]+")
_IS_CJK: Final = re.compile(f"[{_CJK}]")


def fold(text: str) -> str:
    """``text`` as it is indexed and searched: NFKC, case-folded, Traditional as Simplified.

    So 檢疫 finds 检疫, Ｐｄｆ finds pdf, and a search in either script finds both.
    """
    return simplified(normalise(text).casefold())


def _runs(folded: str) -> list[str]:
    return _RUNS.findall(folded)


def _grams_of_run(run: str) -> list[str]:
    if not _IS_CJK.match(run):
        return [run[:MAX_GRAM]]
    return list(run) + [run[i : i + 2] for i in range(len(run) - 1)]


def index_grams(text: str) -> Counter[str]:
    """The grams of ``text`` and how often each occurs: characters and character pairs of the
    CJK runs, whole words of the others."""
    return grams_of_folded(fold(text))


def grams_of_folded(folded: str) -> Counter[str]:
    """:func:`index_grams` of a text already folded (:func:`fold` is idempotent)."""
    counts: Counter[str] = Counter()
    for run in _runs(folded):
        counts.update(_grams_of_run(run))
    return counts


@dataclass(frozen=True)
class Term:
    """One search term as folded: a CJK run or a word of letters and digits."""

    text: str

    # Cached: a search asks them of every posting it ranks (written to the instance's
    # __dict__, which a frozen dataclass allows).
    @functools.cached_property
    def cjk(self) -> bool:
        """Whether the term is CJK (found as a substring) rather than a word."""
        return bool(_IS_CJK.match(self.text))

    @functools.cached_property
    def grams(self) -> tuple[str, ...]:
        """The index grams that must all be present for the term to be there."""
        if not self.cjk:
            return (self.text[:MAX_GRAM],)
        if len(self.text) == 1:
            return (self.text,)
        return tuple(dict.fromkeys(self.text[i : i + 2] for i in range(len(self.text) - 1)))

    @functools.cached_property
    def exact(self) -> bool:
        """Whether the index alone proves the term is in a text (one gram), with no check."""
        return len(self.grams) == 1 and (not self.cjk or len(self.text) <= 2)


def query_terms(query: str) -> tuple[Term, ...]:
    """The terms of a query, in order, without repeats: "檢疫 公告" is two terms, "檢疫公告" one
    (found only where it stands as written), "ISO9001認證" two (iso9001 and 认证)."""
    return tuple(Term(run) for run in dict.fromkeys(_runs(fold(query))))


def contains(text: str, term: Term) -> bool:
    """Whether ``term`` stands in ``text`` (folded): as a substring for CJK, else as a word."""
    folded = fold(text)
    if term.cjk:
        return term.text in folded
    return term.text[:MAX_GRAM] in {run[:MAX_GRAM] for run in _runs(folded)}


@dataclass(kw_only=True, slots=True)
class Posting:
    """One row of the index: ``gram`` occurs ``count`` times in ``field`` of a document.

    Not frozen (as ``Ranked``): a search makes a few thousand of each, and a frozen dataclass
    takes twice as long to make; nothing changes one once made."""

    document_id: int
    field: str
    gram: str
    count: int


@dataclass(kw_only=True, slots=True)
class Ranked:
    """A document every term was found in, its score, and the fields each term was found in.

    ``unchecked`` names the terms whose grams were all found in a field but which the index
    alone cannot prove stand together there (see :attr:`Term.exact`).
    """

    document_id: int
    score: float
    fields: Mapping[str, tuple[str, ...]]
    unchecked: tuple[Term, ...] = ()


def rank(terms: Sequence[Term], postings: Iterable[Posting]) -> list[Ranked]:
    """The documents holding every term, best first; ties go to the newer (higher) id.

    A term's count in a field is the smallest count of its grams there (exact for a term of
    one gram, an upper bound otherwise).
    """
    if not terms:
        return []
    # Plain dicts and each term's grams worked out once: this runs over a thousand documents
    # in every search.
    counts: dict[tuple[int, str], dict[str, int]] = {}
    for p in postings:
        key = (p.document_id, p.field)
        at = counts.get(key)
        if at is None:
            at = counts[key] = {}
        at[p.gram] = p.count
    # Terms by their place: hashing a Term (a dataclass) per posting costs more than the rest.
    wanted = [(n, term.grams) for n, term in enumerate(terms)]
    single = len(terms) == 1
    found: dict[int, list[dict[str, int]]] = {}
    for (document_id, field), grams in counts.items():
        for n, term_grams in wanted:
            if len(term_grams) == 1:
                count = grams.get(term_grams[0])
                if count is None:
                    continue
            elif all(g in grams for g in term_grams):
                count = min(grams[g] for g in term_grams)
            else:
                continue
            by_term = found.get(document_id)
            if by_term is None:
                by_term = found[document_id] = [{}] if single else [{} for _ in terms]
            by_term[n][field] = count
    unchecked = tuple(t for t in terms if not t.exact)
    in_order: dict[tuple[str, ...], tuple[str, ...]] = {}
    texts = [t.text for t in terms]
    weights, log2 = FIELD_WEIGHTS, math.log2
    ranked = []
    for document_id, by_term in found.items():
        score = 0.0
        for fields in by_term:
            if not fields:
                break  # a term not found: not a hit
            for field, count in fields.items():
                score += weights.get(field, 1.0) * (1.0 + log2(count))
        else:
            ranked.append(
                Ranked(
                    document_id=document_id,
                    score=score,
                    fields=(
                        {texts[0]: _in_order(by_term[0], in_order)}
                        if single
                        else {
                            text: _in_order(fields, in_order)
                            for text, fields in zip(texts, by_term, strict=True)
                        }
                    ),
                    unchecked=unchecked,
                )
            )
    ranked.sort(key=lambda r: (-r.score, -r.document_id))
    return ranked


def _in_order(
    fields: Mapping[str, int], known: dict[tuple[str, ...], tuple[str, ...]]
) -> tuple[str, ...]:
    """The names of ``fields`` in the order of ``FIELDS`` (worked out once per set in ``known``)."""
    key = tuple(fields)
    found = known.get(key)
    if found is None:
        found = known[key] = tuple(f for f in FIELDS if f in fields)
    return found
