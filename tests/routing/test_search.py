"""Tests for routing.search: terms, grams and ranking (文檔查詢, issue 6 item 8)."""

from __future__ import annotations

from collections.abc import Mapping

from yizhan.routing.search import (
    Posting,
    Term,
    contains,
    fold,
    index_grams,
    query_terms,
    rank,
)


def postings(documents: Mapping[int, Mapping[str, str]]) -> list[Posting]:
    """The index rows of literal documents, as the store would hold them."""
    return [
        Posting(document_id=doc, field=field, gram=gram, count=count)
        for doc, fields in documents.items()
        for field, text in fields.items()
        for gram, count in index_grams(text).items()
    ]


def search(query: str, documents: Mapping[int, Mapping[str, str]]) -> list[int]:
    """Ranked ids, with the unchecked terms confirmed against the texts as the daemon does."""
    terms = query_terms(query)
    return [
        r.document_id
        for r in rank(terms, postings(documents))
        if all(
            any(contains(t, term) for t in documents[r.document_id].values())
            for term in r.unchecked
        )
    ]


DOCS = {
    1: {"title": "關於加強口岸衛生檢疫工作的通知", "body": "各處室：請做好檢疫。"},
    2: {"title": "辦公樓停電公告", "body": "週六停電。"},
    3: {"title": "年度總結", "body": "", "attachment": "附件中提到檢疫和公告。"},
    4: {"title": "ISO9001 Audit report", "body": "The PDF manual is attached."},
}


def test_two_character_words_are_found() -> None:
    # The examples: 檢疫 and 公告 are two-character words inside longer runs of text.
    assert set(search("檢疫", DOCS)) == {1, 3}
    assert set(search("公告", DOCS)) == {2, 3}


def test_terms_are_anded() -> None:
    # Every term must be in the document, in any of its fields.
    assert search("檢疫 公告", DOCS) == [3]
    assert search("檢疫 停電", DOCS) == []


def test_simplified_finds_traditional_and_back() -> None:
    # A clerk typing Simplified finds a document written in Traditional, and the other way.
    assert set(search("检疫", DOCS)) == {1, 3}
    assert search("办公楼", DOCS) == [2]


def test_single_characters_and_ascii_words_case_insensitive() -> None:
    assert set(search("疫", DOCS)) == {1, 3}
    assert search("pdf", DOCS) == [4]
    assert search("ＩＳＯ9001", DOCS) == [4]  # full-width letters fold to ASCII
    assert search("audit MANUAL", DOCS) == [4]
    assert search("man", DOCS) == []  # words match whole, not as prefixes


def test_longer_terms_must_stand_together() -> None:
    # 檢疫工作 is found where it is written; a text holding 檢疫 and 工作 apart is not a hit,
    # though its character pairs are all in the index.
    documents = {
        1: {"title": "衛生檢疫工作"},
        2: {"title": "檢疫 疫工 工作"},
    }
    assert search("檢疫工作", documents) == [1]
    (only,) = [r for r in rank(query_terms("檢疫工作"), postings(documents)) if r.document_id == 2]
    assert only.unchecked == (Term("检疫工作"),)


def test_title_ranks_over_body_over_attachment() -> None:
    documents = {
        1: {"title": "其他", "attachment": "公告"},
        2: {"title": "其他", "body": "公告"},
        3: {"title": "公告"},
    }
    assert search("公告", documents) == [3, 2, 1]


def test_more_occurrences_rank_higher_and_ties_go_to_the_newer() -> None:
    documents = {
        1: {"body": "公告"},
        2: {"body": "公告 公告 公告"},
        3: {"body": "公告"},
    }
    assert search("公告", documents) == [2, 3, 1]


def test_a_long_attachment_does_not_beat_a_title() -> None:
    documents = {1: {"attachment": "公告" * 500}, 2: {"title": "公告"}}
    assert search("公告", documents) == [2, 1]


def test_query_terms_split_scripts_and_drop_punctuation() -> None:
    assert query_terms("檢疫，公告！") == (Term("检疫"), Term("公告"))
    assert query_terms("ISO9001認證") == (Term("iso9001"), Term("认证"))
    assert query_terms("公告 公告") == (Term("公告"),)
    assert query_terms("  ，。 ") == ()


def test_grams_of_a_text() -> None:
    grams = index_grams("檢疫公告 PDF pdf")
    assert grams["检疫"] == 1 and grams["疫公"] == 1 and grams["公告"] == 1
    assert grams["检"] == 1 and grams["pdf"] == 2
    assert fold("Ｐｄｆ 檢疫") == "pdf 检疫"


def test_the_fields_each_term_was_found_in() -> None:
    (hit,) = rank(query_terms("檢疫 公告"), postings({3: DOCS[3]}))
    assert hit.fields == {"检疫": ("attachment",), "公告": ("attachment",)}
