"""Tests for yizhan.routing.mailpolicy: Yizhan's policies read and write what the standard ones do.

The header objects a :class:`HeaderCache` keeps are shared between messages; if sharing them
changed one byte of a message, a signature over it would break, or a reader see another
header. So every message of the hostile corpus (broken boundaries, encoded words hiding CR LF,
8-bit headers …) is read with both and must give the same headers, parts and bytes, read once
and read again (the second time from the cache).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.policy import EmailPolicy, Policy
from pathlib import Path

import pytest

from yizhan.routing.mailpolicy import MAIL, WIRE, WIRE_UTF8, HeaderCache
from yizhan.routing.replies import body_text

#: The hostile corpus, less its messages with a header block over 8 KB (a 1 MB line, 5,000
#: Content-Type parameters) or over 200 parts (1,000 nested, 3,000 side by side): the standard
#: policy parses a header again at every get(), which takes it minutes for all of them.
CORPUS = [
    path
    for path in sorted((Path(__file__).parent.parent / "corpus" / "hostile").glob("*.eml"))
    if len(re.split(rb"\r?\n\r?\n", path.read_bytes(), maxsplit=1)[0]) <= 8000
    and path.read_bytes().count(b"\n--") <= 200
]


def _seen(msg: Message) -> list[object]:
    """What a reader of ``msg`` sees: each part's headers, their defects, types and text."""
    seen: list[object] = []
    for part in msg.walk():
        for name, value in part.items():
            seen.append((name, str(value), type(value).__mro__[1].__name__))
            seen.append([type(d).__name__ for d in getattr(value, "defects", ())])
        seen.append((part.get_content_type(), part.get_content_charset(), part.get_boundary()))
        seen.append(part.get_filename())
        if not part.is_multipart():
            seen.append(part.get_payload(decode=True))
    return seen


def _outcome(read: Callable[[], object]) -> object:
    """What ``read`` gives, or the kind of error it raises (a thousand nested parts exceed the
    stack; the email package fails on some broken mail it is asked to write)."""
    try:
        return read()
    except Exception as exc:
        return type(exc)


def _reading(raw: bytes, mail: EmailPolicy[EmailMessage], wires: Sequence[Policy]) -> object:
    """What a reader sees of ``raw`` read with ``mail``, and its bytes written with ``wires``."""
    msg = BytesParser(policy=mail).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    seen = [_outcome(lambda: _seen(msg)), _outcome(lambda: body_text(msg))]
    for wire in wires:
        # A multipart without a boundary gets a random one when written: the same one.
        random.seed(raw)
        seen.append(_outcome(lambda wire=wire: msg.as_bytes(policy=wire)))
    # The same headers set on a message being built (header objects, folded when written).
    built = EmailMessage(policy=mail)
    headers = _outcome(lambda: [(n, str(v)) for n, v in msg.items()])
    for name, value in headers if isinstance(headers, list) else []:
        seen.append(_outcome(lambda name=name, value=value: built.__setitem__(name, value)))
    for wire in wires:
        seen.append(_outcome(lambda wire=wire: built.as_bytes(policy=wire)))
    return seen


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_hostile_mail_reads_and_writes_as_with_the_standard_policy(path: Path) -> None:
    # The same mail read by the standard policy and by Yizhan's, twice (the second read takes
    # every header object from the cache), shows the same headers, parts and text, and is
    # written back to the same bytes on the wire (or fails alike: a thousand nested parts
    # exceed Python's stack in the parser).
    raw = path.read_bytes()
    expected = _outcome(lambda: _reading(raw, policy.default, (policy.SMTP, policy.SMTPUTF8)))
    for _ in range(2):
        assert _outcome(lambda: _reading(raw, MAIL, (WIRE, WIRE_UTF8))) == expected


def test_built_mail_is_written_as_with_the_standard_policy() -> None:
    # An answer as Yizhan builds it (a Chinese name and subject, a long References header
    # that must be folded, the same header set on two messages): the same bytes as
    # policy.default and SMTP write, the header objects shared between the two messages.
    def build(made: policy.EmailPolicy[EmailMessage], to: str) -> EmailMessage:
        msg = EmailMessage(policy=made)
        msg["From"] = "驛站 <cmd@oa.example>"
        msg["To"] = to
        msg["Subject"] = "回覆：關於報送二〇二六年度工作總結的通知 HELP"
        msg["In-Reply-To"] = "<a1@bench.test>"
        msg["References"] = " ".join(f"<{n}.{'x' * 30}@bench.test>" for n in range(6))
        msg["X-Yizhan-Doc"] = "12"
        msg.set_content("您好\n" + "長" * 200 + "\n", charset="utf-8")
        return msg

    for to, utf8 in (
        ("王芳 <wangfang@oa.example>", False),
        ("王芳 <wangfang@oa.example>", False),
        ("李軍 <李軍@oa.example>", True),
    ):
        ours = build(MAIL, to).as_bytes(policy=WIRE_UTF8 if utf8 else WIRE)
        standard = build(policy.default, to).as_bytes(
            policy=policy.SMTPUTF8 if utf8 else policy.SMTP
        )
        assert ours == standard


def test_cache_keeps_only_the_newest_headers() -> None:
    # A Message-ID is seen once and never again: the cache holds a bounded number of headers,
    # and one asked for again is the same object (parsed once).
    cache = HeaderCache(max_entries=3)
    first = cache("Content-Type", "text/plain; charset=utf-8")
    assert cache("Content-Type", "text/plain; charset=utf-8") is first
    for n in range(5):
        cache("Message-ID", f"<{n}@oa.example>")
    assert len(cache._made) == 3
    assert cache("Content-Type", "text/plain; charset=utf-8") is not first
    assert cache("Content-Type", "text/plain; charset=utf-8").content_type == "text/plain"
