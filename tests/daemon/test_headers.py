"""Tests for daemon.extract.headers: the plain readings agree with the email package wherever
they answer.

Each reading is held side by side with what it replaces (``BytesHeaderParser`` with
``policy.compat32``, ``email.utils.getaddresses``) on generated input, odd input included; and
the mail clients' usual headers must take the plain path, or the gateway gains nothing.
"""

from __future__ import annotations

import base64
from email import policy
from email.parser import BytesHeaderParser
from email.utils import getaddresses

from hypothesis import example, given, settings
from hypothesis import strategies as st

from yizhan.daemon.extract.headers import plain_header_section, plain_mailbox

COMPAT32 = BytesHeaderParser(policy=policy.compat32)

FOXMAIL = (
    b"Date: Wed, 25 Nov 2026 09:12:03 +0800\r\n"
    b'From: "=?GB2312?B?'
    + base64.b64encode("王芳".encode("gbk"))
    + b'?=" <wangfang@oa.example>\r\n'
    b'To: "fawen" <fawen@oa.example>\r\n'
    b"Subject: =?GB2312?B?" + base64.b64encode("关于召开会议的通知".encode("gbk")) + b"?=\r\n"
    b"X-Priority: 3\r\n"
    b"X-Has-Attach: no\r\n"
    b"X-Mailer: Foxmail 7.2.25.228[cn]\r\n"
    b"Mime-Version: 1.0\r\n"
    b"Message-ID: <202611250912031234567@oa.example>\r\n"
    b"Content-Type: multipart/alternative;\r\n"
    b'\tboundary="----=_001_NextPart123"\r\n'
    b"\r\n"
    b"This is a multi-part message in MIME format.\r\n"
)


def compat32_fields(raw: bytes) -> list[tuple[str, str]]:
    return [(name, str(value)) for name, value in COMPAT32.parsebytes(raw).raw_items()]


def test_a_foxmail_header_section_is_plain() -> None:
    plain = plain_header_section(FOXMAIL)
    assert plain is not None
    fields, body_start = plain
    assert fields == compat32_fields(FOXMAIL)
    assert (
        "Content-Type",
        'multipart/alternative;\r\n\tboundary="----=_001_NextPart123"',
    ) in fields
    assert FOXMAIL[body_start:] == b"This is a multi-part message in MIME format.\r\n"


def test_sections_that_are_not_plain_are_left_to_the_email_package() -> None:
    for raw in (
        b"From: a@b.example\nSubject: LF only\n\nbody\n",
        b"From a@b.example Wed Nov 25 09:00:00 2026\r\nSubject: mbox\r\n\r\n",
        b" folded first line\r\nSubject: x\r\n\r\n",
        b"Subject: x\r\nnot a field\r\n\r\n",
        b"Subject: no body separator\r\n",
        b"Subject: bare\rCR\r\n\r\n",
        b"\r\nno headers at all\r\n",
    ):
        assert plain_header_section(raw) is None, raw


NAMES = st.sampled_from(
    ["From", "Subject", "X-Yizhan-Kind", "to", "Received", "a!#~", "B:C", "D E"]
)
VALUE_TEXT = st.text(
    alphabet=st.sampled_from(["a", " ", "\t", ":", "王", "=", "?", ";", "\r", "\n", "\udcb9"]),
    max_size=12,
)


@st.composite
def header_sections(draw: st.DrawFn) -> bytes:
    lines = []
    for _ in range(draw(st.integers(min_value=1, max_value=5))):
        lines.append(f"{draw(NAMES)}:{draw(VALUE_TEXT)}")
        lines.extend(" " + draw(VALUE_TEXT) for _ in range(draw(st.integers(0, 2))))
    end = draw(st.sampled_from(["\r\n", "\r\n", "\r\n", "\n"]))
    text = end.join(lines) + end + end + "body\r\n"
    return text.encode("utf-8", "surrogateescape")


@settings(max_examples=400, deadline=None)
@given(header_sections())
@example(b"Subject:   \r\n\r\n")
@example(b"Subject: \t x \r\n \r\n\r\n")
def test_plain_sections_read_as_compat32_reads_them(raw: bytes) -> None:
    plain = plain_header_section(raw)
    if plain is not None:
        fields, body_start = plain
        assert fields == compat32_fields(raw)
        assert raw[:body_start].endswith(b"\r\n\r\n")
        assert b"\r\n\r\n" not in raw[: body_start - 2]


def test_usual_from_values_are_plain() -> None:
    for value, address in (
        ("王芳 <wangfang@oa.example>", "wangfang@oa.example"),
        ("wangfang@oa.example", "wangfang@oa.example"),
        ("=?GBK?B?zfXmwA==?= <wangfang@oa.example>", "wangfang@oa.example"),
        ("<Wang.Fang@Bureau.Example>", "Wang.Fang@Bureau.Example"),
        (" wangfang@oa.example ", "wangfang@oa.example"),
    ):
        assert plain_mailbox(value) == address
        assert [a for _, a in getaddresses([value]) if a] == [address]


def test_mailboxes_that_are_not_plain_are_left_to_the_email_package() -> None:
    for value in (
        '"Wang, Fang" <wangfang@oa.example>',
        "a@oa.example, b@oa.example",
        "J. Smith <j@oa.example>",
        "Wang wangfang@oa.example",
        "wangfang@oa.example (Wang)",
        "<wangfang@oa.example> <lijun@oa.example>",
        "王芳@oa.example",
        "",
    ):
        assert plain_mailbox(value) is None, value


MAILBOX_PARTS = st.sampled_from(
    [
        "王芳",
        "Wang",
        " ",
        "\t",
        '"',
        ",",
        ".",
        "<",
        ">",
        "@",
        "(",
        ")",
        ";",
        ":",
        "\\",
        "=?",
        "\udcb9",
    ]
)
ADDRESSES = st.sampled_from(["wangfang@oa.example", "a.b@c.d", "x+y@oa", "bad..dot@oa.example"])


@settings(max_examples=500, deadline=None)
@given(
    prefix=st.lists(MAILBOX_PARTS, max_size=5).map("".join),
    address=ADDRESSES,
    angle=st.booleans(),
    suffix=st.lists(MAILBOX_PARTS, max_size=3).map("".join),
)
def test_plain_mailboxes_read_as_getaddresses_reads_them(
    prefix: str, address: str, angle: bool, suffix: str
) -> None:
    value = prefix + (f"<{address}>" if angle else address) + suffix
    plain = plain_mailbox(value)
    if plain is not None:
        assert [a for _, a in getaddresses([value]) if a] == [plain]
