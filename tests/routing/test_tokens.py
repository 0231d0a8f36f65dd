"""Tests for yizhan.routing.tokens: the reply tokens of r+TOKEN@domain."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yizhan.routing.tokens import MAX_LOCAL_PART, TokenClaim, make_token, read_token

SECRET = "test-secret-0123456789abcdef"

ids = st.integers(min_value=0, max_value=2**28 - 1)
# Accounts as the directory allows them, short enough that every id fits beside them.
accounts = st.from_regex(r"\A[a-z][a-z0-9._-]{1,15}\Z")
# What a token may contain: base32 lower-case, and what an account is written with.
_TOKEN_CHARS = re.compile(r"^[a-z0-9_-]+$")


@given(document_id=ids, step_id=ids, account=accounts)
def test_round_trip(document_id: int, step_id: int, account: str) -> None:
    # What make_token binds, read_token gives back, and the address stays a valid local part.
    token = make_token(SECRET, document_id=document_id, step_id=step_id, account=account)
    assert _TOKEN_CHARS.match(token)
    assert len("r+" + token) <= MAX_LOCAL_PART
    claim = read_token(SECRET, token)
    assert claim == TokenClaim(document_id=document_id, step_id=step_id, account=account)


@given(document_id=ids, step_id=ids, account=accounts)
def test_upper_case_still_validates(document_id: int, step_id: int, account: str) -> None:
    # Some MTAs and clients change the case of a local part; the token must survive it.
    token = make_token(SECRET, document_id=document_id, step_id=step_id, account=account)
    assert read_token(SECRET, token.upper()) == read_token(SECRET, token)
    assert read_token(SECRET, token.title()) == read_token(SECRET, token)


@given(document_id=ids, step_id=ids, account=accounts, data=st.data())
def test_any_single_character_change_is_rejected(
    document_id: int, step_id: int, account: str, data: st.DataObject
) -> None:
    # Changing one character anywhere, to anything an address could hold, never yields a
    # token that validates: not even the last character, whose spare bits base32 ignores.
    token = make_token(SECRET, document_id=document_id, step_id=step_id, account=account)
    index = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    alphabet = string.ascii_lowercase + string.digits + "-_."
    new = data.draw(st.sampled_from([c for c in alphabet if c != token[index]]))
    changed = token[:index] + new + token[index + 1 :]
    assert read_token(SECRET, changed) is None


def test_last_character_spare_bits() -> None:
    # Base32 of 16 bytes has 2 spare bits in its last character: "a" and "b" would decode the
    # same. Only the spelling make_token wrote is accepted.
    token = make_token(SECRET, document_id=1, step_id=1, account="wangfang")
    for c in "abcdefghijklmnopqrstuvwxyz234567":
        if c != token[-1]:
            assert read_token(SECRET, token[:-1] + c) is None


@given(document_id=ids, step_id=ids, account=accounts)
def test_another_secret_rejects(document_id: int, step_id: int, account: str) -> None:
    # A token made by another instance (another secret) is not ours.
    token = make_token(SECRET, document_id=document_id, step_id=step_id, account=account)
    assert read_token(SECRET + "x", token) is None


def test_known_token_is_stable() -> None:
    # Tokens already sent must keep working after an upgrade: pin one.
    token = "wangfang-fid6dj4rl6liglmbz2da"
    assert make_token(SECRET, document_id=42, step_id=7, account="wangfang") == token
    assert read_token(SECRET, token) == TokenClaim(document_id=42, step_id=7, account="wangfang")


def test_accounts_with_dot_and_underscore() -> None:
    # "." is written "_d" and "_" as "_u", so the token holds only letters, digits, - and _.
    token = make_token(SECRET, document_id=1, step_id=2, account="li.jun_2")
    assert token.startswith("li_djun_u2-")
    claim = read_token(SECRET, token)
    assert claim is not None and claim.account == "li.jun_2"


def test_longest_fitting_account() -> None:
    # With ids up to 2^28-1, an account of 32 characters still fits in 64.
    token = make_token(SECRET, document_id=2**28 - 1, step_id=2**28 - 1, account="a" * 32)
    assert len("r+" + token) == MAX_LOCAL_PART
    with pytest.raises(ValueError, match="exceed"):
        make_token(SECRET, document_id=2**28 - 1, step_id=2**28 - 1, account="a" * 33)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"document_id": -1, "step_id": 1, "account": "wangfang"},
        {"document_id": 1, "step_id": -1, "account": "wangfang"},
        {"document_id": 1, "step_id": 1, "account": "WangFang"},
        {"document_id": 1, "step_id": 1, "account": "王芳"},
    ],
)
def test_bad_inputs_raise(kwargs: dict[str, object]) -> None:
    # A token for something that cannot exist is a bug in the caller, not a token.
    with pytest.raises(ValueError):
        make_token(SECRET, **kwargs)  # type: ignore[arg-type]


def test_empty_secret() -> None:
    # Without a secret anyone could make tokens: refuse to make or accept them.
    with pytest.raises(ValueError, match="secret"):
        make_token("", document_id=1, step_id=1, account="wangfang")
    token = make_token(SECRET, document_id=1, step_id=1, account="wangfang")
    assert read_token("", token) is None


@pytest.mark.parametrize(
    "garbled",
    [
        "",
        "-",
        "wangfang",
        "wangfang-",
        "-aaaaaaaaaaaaaaaaaaaaaaaaaa",
        "wang_xfang-aaaaaaaaaaaaaaaaaaaaaaaaaa",
        "wangfang-!!!!",
        "wangfang-1111",
        "wangfang-" + "a" * 200,
        "王芳-aaaaaaaaaaaaaaaaaaaaaaaaaa",
    ],
)
def test_garbled_tokens(garbled: str) -> None:
    # Anything that is not a token Yizhan made reads as None, never as an exception.
    assert read_token(SECRET, garbled) is None


@given(st.text(max_size=80))
def test_arbitrary_text_never_raises(text: str) -> None:
    # The token comes from a stranger's RCPT TO: any text must be answered, never crash.
    assert read_token(SECRET, text) is None
