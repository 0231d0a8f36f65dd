"""Encodes and decodes IMAP mailbox names in modified UTF-7 (RFC 3501 section 5.1.3).

aioimaplib sends mailbox names as given, so 公文/待辦 must be written ``&UWxlhw-/&X4WPpg-``
here. Printable ASCII stands for itself, except ``&``, which is ``&-``; any other run of
characters is UTF-16BE in base64 with ``,`` for ``/``, unpadded, between ``&`` and ``-``.
"""

from __future__ import annotations

import base64
import binascii

__all__ = ["MUTF7Error", "decode", "encode"]


class MUTF7Error(ValueError):
    """A mailbox name is not valid modified UTF-7."""


def encode(name: str) -> str:
    """``name`` as IMAP writes it on the wire."""
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            data = "".join(run).encode("utf-16-be")
            out.append("&" + base64.b64encode(data).decode("ascii").rstrip("=").replace("/", ","))
            out.append("-")
            run.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            run.append(char)
    flush()
    return "".join(out)


def decode(wire: str | bytes) -> str:
    """The mailbox name that ``wire`` (as a server sends it) stands for."""
    text = wire.decode("ascii") if isinstance(wire, bytes) else wire
    out: list[str] = []
    i = 0
    shifted_before = False
    while i < len(text):
        char = text[i]
        if not 0x20 <= ord(char) <= 0x7E:
            raise MUTF7Error(f"{text!r}: {char!r} must be encoded")
        if char != "&":
            out.append(char)
            i += 1
            shifted_before = False
            continue
        end = text.find("-", i)
        if end < 0:
            raise MUTF7Error(f"{text!r}: '&' at {i} is not closed by '-'")
        chunk = text[i + 1 : end]
        if not chunk:
            out.append("&")
        elif shifted_before:
            raise MUTF7Error(f"{text!r}: two encoded runs in a row at {i}; one would do")
        else:
            out.append(_decode_chunk(text, chunk))
        shifted_before = bool(chunk)
        i = end + 1
    return "".join(out)


def _decode_chunk(text: str, chunk: str) -> str:
    padded = chunk.replace(",", "/") + "=" * (-len(chunk) % 4)
    try:
        data = base64.b64decode(padded, validate=True)
        decoded = data.decode("utf-16-be")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise MUTF7Error(f"{text!r}: &{chunk}- is not base64 of UTF-16") from exc
    # Only the shortest spelling counts, and ASCII that could stand for itself may not be
    # shifted (RFC 3501: "MUST NOT be used to represent printable US-ASCII").
    if encode(decoded) != f"&{chunk}-":
        raise MUTF7Error(f"{text!r}: &{chunk}- is not the form RFC 3501 requires")
    return decoded
