"""Tests for yizhan.routing.numbering: document numbers written one way, read in many."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yizhan.routing.numbering import format_number, format_receipt_number, parse_number


def test_canonical_form() -> None:
    # The number in the regulations' own last article: hexagonal brackets, no leading zeros.
    assert format_number("遼檢辦", 2026, 62) == "遼檢辦\u30142026\u301562號"
    assert format_number("遼檢辦", 2026, 62) == "遼檢辦〔2026〕62號"


def test_receipt_register_number() -> None:
    # 收文 get a receipt register number (收文號) of their own sequence, prefix 收.
    assert format_receipt_number(2026, 5) == "收〔2026〕5號"
    assert parse_number("收〔2026〕5號") == ("收", 2026, 5)


@pytest.mark.parametrize(
    "typed",
    [
        "遼檢辦〔2026〕62號",
        "遼檢辦[2026]62號",
        "遼檢辦【2026】62號",
        "遼檢辦(2026)62號",
        "遼檢辦（2026）62号",
        "遼檢辦［2026］062號",
        "遼檢辦〖2026〗第62號",
        " 遼檢辦 〔 2026 〕 0062 號 ",
    ],
)
def test_typed_variants_are_read(typed: str) -> None:
    # People type the brackets, zeros and 號 in many ways; all mean the same number.
    assert parse_number(typed) == ("遼檢辦", 2026, 62)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "遼檢辦2026年62號",
        "遼檢辦〔2026]62號",  # brackets that do not pair
        "遼檢辦〔26〕62號",  # a two-digit year
        "遼檢辦〔2026〕0號",  # no document is number 0
        "〔2026〕62號",  # no prefix
        "遼檢辦〔2026〕62",  # no 號
        "請查收遼檢辦〔2026〕62號文件",
    ],
)
def test_non_numbers_are_not_read(text: str) -> None:
    # Anything that is not a whole number is None, so a search falls back to words.
    assert parse_number(text) is None


@pytest.mark.parametrize(
    ("prefix", "year", "seq"),
    [
        ("", 2026, 1),
        ("遼檢〔辦", 2026, 1),
        ("遼檢辦", 26, 1),
        ("遼檢辦", 2026, 0),
        ("遼 檢", 2026, 1),
    ],
)
def test_format_refuses_what_cannot_be_read_back(prefix: str, year: int, seq: int) -> None:
    # A number that parse_number could not read back is never written.
    with pytest.raises(ValueError):
        format_number(prefix, year, seq)


@given(
    prefix=st.sampled_from(["遼檢辦", "遼檢", "大檢", "收", "LNCIQ"]),
    year=st.integers(1000, 9999),
    seq=st.integers(1, 10**8),
)
def test_round_trip(prefix: str, year: int, seq: int) -> None:
    # Every number written is read back as what it was written from.
    text = format_number(prefix, year, seq)
    assert parse_number(text) == (prefix, year, seq)
    assert text[text.index("〕") + 1] != "0"
