"""Tests for daemon.gateway.data (DATA read in blocks) and the gateway's reading of envelope paths.

The reader is checked against the rule of RFC 5321 written out plainly (:func:`by_the_rfc`),
on messages cut into pieces at every possible place, as they arrive from a network; the path
fast path against aiosmtpd's own parser. The same over SMTP is in tests/daemon/test_smtp.py.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable

import pytest
from aiosmtpd.smtp import SMTP
from hypothesis import given, settings
from hypothesis import strategies as st

from yizhan.daemon.gateway.data import DataRefusal, read_data, unstuff
from yizhan.daemon.gateway.protocol import GatewaySMTP

# aiosmtpd's StreamReader limit, and so the gateway's.
LINE_LIMIT = 1001


def by_the_rfc(stream: bytes) -> tuple[bytes, bytes]:
    """What a server takes as the message, and what is left for the next command.

    The data ends at the first CRLF "." CRLF, counting the CRLF that ended the DATA command;
    a line starting with a dot loses that dot (RFC 5321 4.1.1.4, 4.5.2).
    """
    whole = b"\r\n" + stream
    end = whole.index(b"\r\n.\r\n")
    lines = whole[2 : end + 2].split(b"\r\n")
    return b"\r\n".join(line[1:] if line.startswith(b".") else line for line in lines), whole[
        end + 5 :
    ]


async def read_pieces(
    pieces: Iterable[bytes], *, size_limit: int | None = None
) -> tuple[bytes | DataRefusal, bytes]:
    """Feed the pieces to a stream as aiosmtpd sets it up; what read_data gives, and the rest."""
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    for piece in pieces:
        reader.feed_data(piece)
    reader.feed_eof()
    data = await read_data(reader, size_limit=size_limit, line_limit=LINE_LIMIT)
    return data, await reader.read()


def read(
    stream: bytes, cuts: Iterable[int] = (), **kwargs: int
) -> tuple[bytes | DataRefusal, bytes]:
    points = [0, *sorted(set(cuts)), len(stream)]
    pieces = [stream[a:b] for a, b in itertools.pairwise(points)]
    return asyncio.run(read_pieces(pieces, **kwargs))


# --- The reader -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        (b".\r\n", b""),
        (b"Subject: x\r\n\r\nbody\r\n.\r\n", b"Subject: x\r\n\r\nbody\r\n"),
        # A dot-stuffed line, a line of two dots (a lone dot in the text), a dot in the middle.
        (b"..hidden\r\n...\r\n..\r\na.b\r\n.\r\n", b".hidden\r\n..\r\n.\r\na.b\r\n"),
        # A sentence ending with a period is not the end.
        (b"It ends here.\r\nNo, here.\r\n.\r\n", b"It ends here.\r\nNo, here.\r\n"),
        # Bare LF, bare CR around a dot: not the end (no SMTP smuggling, CVE-2023-51764);
        # a dot after a CRLF is still a stuffed one.
        (b"a\n.\r\nb\r\n.\n\r\nc\r.\r\n.\r\n", b"a\n.\r\nb\r\n\n\r\nc\r.\r\n"),
    ],
)
def test_reads_to_the_first_crlf_dot_crlf(stream: bytes, expected: bytes) -> None:
    assert by_the_rfc(stream) == (expected, b"")
    for cut in range(len(stream) + 1):
        assert read(stream, [cut]) == (expected, b""), cut


def test_what_follows_the_end_stays_for_the_next_command() -> None:
    stream = b"first\r\n.\r\nRSET\r\nMAIL FROM:<a@b.example>\r\n"
    assert read(stream) == (b"first\r\n", b"RSET\r\nMAIL FROM:<a@b.example>\r\n")


def test_a_message_arriving_byte_by_byte() -> None:
    stream = b"".join(b"line %d.\r\n" % n for n in range(300)) + b".\r\nQUIT\r\n"
    assert read(stream, range(len(stream))) == by_the_rfc(stream)


def test_large_message_in_network_sized_pieces() -> None:
    # A base64 attachment's lines, with dot-stuffed lines among them, in 64 KiB reads.
    line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=" * 2 + b"\r\n"
    stream = (line * 2000 + b"..dot\r\n") * 5 + b".\r\n"
    data, rest = read(stream, range(0, len(stream), 65536))
    assert (data, rest) == by_the_rfc(stream)
    assert isinstance(data, bytes) and data.count(b"\r\n.dot\r\n") == 5


def test_over_the_size_limit_is_refused_after_the_end() -> None:
    stream = b"x" * 70 + b"\r\n"
    stream = stream * 100 + b".\r\nQUIT\r\n"
    assert read(stream, size_limit=7200) == ((b"x" * 70 + b"\r\n") * 100, b"QUIT\r\n")
    data, rest = read(stream, range(0, len(stream), 500), size_limit=7000)
    assert (data, rest) == (DataRefusal.TOO_MUCH, b"QUIT\r\n")


def test_a_line_over_1000_octets_is_refused_after_the_end() -> None:
    # RFC 5321 4.5.3.1.6: 1,000 octets with the CRLF; aiosmtpd's limit is one more.
    fits = b"y" * (LINE_LIMIT - 2) + b"\r\n"
    assert read(fits + b".\r\n") == (fits, b"")
    data, rest = read(b"head\r\n" + b"y" * 5000 + b"\r\n.\r\nNOOP\r\n", [700, 3000])
    assert (data, rest) == (DataRefusal.LINE_TOO_LONG, b"NOOP\r\n")


def test_the_first_fault_is_the_one_answered() -> None:
    # As aiosmtpd: a long line within the bytes allowed is reported even if the message then
    # goes over the size limit; a message over the limit before any long line is "too much".
    long_line = b"z" * 2000 + b"\r\n"
    lines = (b"a" * 100 + b"\r\n") * 20
    assert read(long_line + lines + b".\r\n", size_limit=3000)[0] is DataRefusal.LINE_TOO_LONG
    assert read(lines + long_line + b".\r\n", size_limit=2100)[0] is DataRefusal.TOO_MUCH
    # 1,002 octets with the CRLF are refused (aiosmtpd allows one over RFC 5321's 1,000).
    assert read(b"y" * 1000 + b"\r\n.\r\n")[0] is DataRefusal.LINE_TOO_LONG


def test_connection_lost_before_the_end() -> None:
    with pytest.raises(asyncio.IncompleteReadError):
        read(b"no end in sight\r\n")


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(
        st.sampled_from([b"", b".", b"..", b"a.", b".a", b"\n.", b"\r", b"text", b"\xe4\xb8\xad"]),
        max_size=12,
    ),
    tail=st.sampled_from([b"", b"QUIT\r\n", b"\r\n.\r\n"]),
    cuts=st.lists(st.integers(min_value=0, max_value=80), max_size=6),
)
def test_agrees_with_the_rfc(lines: list[bytes], tail: bytes, cuts: list[int]) -> None:
    # Any text the client sends, stuffed as a client must, cut anywhere: the same message.
    stuffed = b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines)
    stream = stuffed + b".\r\n" + tail
    expected = by_the_rfc(stream)
    assert expected[0] == b"".join(line + b"\r\n" for line in lines)
    assert read(stream, cuts) == expected


def test_unstuff() -> None:
    assert unstuff(b"..a\r\n.b\r\nc.\r\n") == b".a\r\nb\r\nc.\r\n"
    assert unstuff(b"") == b""


# --- Envelope paths -------------------------------------------------------------------------------


class _Paths(GatewaySMTP):
    # Only _getaddr is used: no gateway, no loop.
    def __init__(self, local_part_limit: int = 0) -> None:
        self.local_part_limit = local_part_limit


PATHS = [
    "<wangfang@oa.example>",
    "<Wang.Fang@OA.Example> SIZE=1000 BODY=8BITMIME",
    "<fawen+x@oa.example>\tSMTPUTF8",
    "<a@b>SIZE=1",
    "<>",
    "< wangfang@oa.example>",
    "<wangfang@oa.example",
    "wangfang@oa.example",
    '<"quoted name"@oa.example>',
    "<王芳@oa.example>",
    "<@relay.example:wangfang@oa.example>",
    "<wang..fang@oa.example>",
    "<.wang@oa.example>",
    "<wangfang@[127.0.0.1]>",
    "<wangfang@oa.example> ",
    "<wangfang@oa.example> \x0b(c)",
    "<wangfang@oa.example>\t\u2028(note) SIZE=5",
    "<wangfang@oa.example>\n",
    "<wangfang@oa.example> (a comment) SIZE=10",
    "<wangfang@oa.example>  \t BODY=7BIT",
    "",
]


@pytest.mark.parametrize("path", PATHS)
def test_paths_read_as_aiosmtpd_reads_them(path: str) -> None:
    fast = _Paths()
    assert fast._getaddr(path) == SMTP._getaddr(fast, path)


def test_local_part_limit_still_applies() -> None:
    limited = _Paths(local_part_limit=4)
    assert limited._getaddr("<abcd@oa.example>") == ("abcd@oa.example", "")
    assert limited._getaddr("<abcde@oa.example>") == (None, None)
