"""Modified UTF-7 mailbox names (RFC 3501 section 5.1.3), tested on literal bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yizhan.daemon.imap.mutf7 import MUTF7Error, decode, encode


@pytest.mark.parametrize(
    ("name", "wire"),
    [
        # RFC 3501 5.1.3's own example: "~peter/mail/台北/日本語".
        ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
        # The folders of DESIGN.md, as Dovecot lists them.
        ("公文/待辦", "&UWxlhw-/&X4WPpg-"),
        ("公文/已辦", "&UWxlhw-/&XfKPpg-"),
        ("公文/公告", "&UWxlhw-/&UWxUSg-"),
        ("INBOX", "INBOX"),
        ("A&B", "A&-B"),
        ("&", "&-"),
        ("", ""),
        # A character outside the BMP is a UTF-16 surrogate pair.
        ("😀", "&2D3eAA-"),
    ],
)
def test_literal_names(name: str, wire: str) -> None:
    # Each name is written exactly as a server writes it, and read back.
    assert encode(name) == wire
    assert decode(wire) == name
    assert decode(wire.encode("ascii")) == name


@pytest.mark.parametrize(
    "wire",
    [
        "&U,BTFw",  # not closed
        "&U,BTFw=-",  # padding is not allowed
        "&AGE-",  # "a" shifted: printable ASCII must stand for itself
        "&Jjo!-",  # not base64
        "台北",  # 8-bit characters on the wire
        "&U,BTFw-&ZeVnLIqe-",  # two shifted runs back to back: one would do
    ],
)
def test_malformed_names_are_refused(wire: str) -> None:
    # A name a server could not have sent is an error, not a guess.
    with pytest.raises(MUTF7Error):
        decode(wire)


@given(st.text())
def test_round_trip(name: str) -> None:
    # Whatever a person names a folder, it survives the trip to the server and back.
    assert decode(encode(name)) == name
