"""Makes and checks the reply tokens in ``r+TOKEN@domain`` (README, "Working by mail").

A token binds a document, a step and the person asked with an HMAC-SHA256 under the instance
secret, so a reply to it needs no lookup to know what it answers, and a token cannot be made
up or altered. Whether the token was already used, and whether the sender is the person asked
or their active delegate, is for the caller: this module only says what a token claims.

Layout: ``ACCOUNT-BINARY``. ACCOUNT is the account as it is (accounts are lower-case ASCII),
with ``_`` written ``_u`` and ``.`` written ``_d``, so that only letters, digits, ``-`` and
``_`` appear. BINARY is base32, lower-case and unpadded, of the document id and the step id
(each an unsigned LEB128 varint) followed by the first 80 bits of
HMAC-SHA256(secret, "yizhan-reply-v1" NUL doc-varint step-varint account).

Some MTAs and clients lower-case local parts, so nothing in a token depends on case: base32
instead of base64, and the account kept readable (an administrator can see whom a bounced
token was for). The whole local part ``r+TOKEN`` is at most 64 characters (RFC 5321 4.5.3.1.1):
with ids below 2^28, accounts up to 32 characters (counting ``_u``/``_d`` as two) fit.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Final

__all__ = ["MAX_LOCAL_PART", "TokenClaim", "make_token", "read_token"]

#: RFC 5321's limit on a local part, which ``r+TOKEN`` must keep to.
MAX_LOCAL_PART: Final = 64
# Eighty bits of HMAC: forging one token takes 2^79 tries on average, each a mail to the
# daemon, while a 16-character tag keeps room for the account.
_MAC_BYTES: Final = 10
_CONTEXT: Final = b"yizhan-reply-v1\x00"
_ACCOUNT: Final = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")
_ESCAPES: Final = {"_": "_u", ".": "_d"}
_UNESCAPES: Final = {"u": "_", "d": "."}
# A varint of more than 9 bytes (63 bits) is not an id Yizhan made.
_MAX_VARINT: Final = 9


@dataclass(frozen=True, kw_only=True)
class TokenClaim:
    """What a genuine token says: this step of this document was asked of this account."""

    document_id: int
    step_id: int
    account: str


def make_token(secret: str, *, document_id: int, step_id: int, account: str) -> str:
    """The token for a reply to ``step_id`` of ``document_id`` by ``account``.

    Raises ValueError for an empty secret, a negative id, an account that is not a Yizhan
    account, or a token that would not fit in ``r+TOKEN`` (see the module docstring).
    """
    if not secret:
        raise ValueError("the reply-token secret is empty")
    if document_id < 0 or step_id < 0:
        raise ValueError("document and step ids must not be negative")
    if not _ACCOUNT.match(account):
        raise ValueError(f"{account!r} is not an account")
    ids = _varint(document_id) + _varint(step_id)
    tag = _mac(secret, ids, account)
    token = f"{_escape(account)}-{_b32(ids + tag)}"
    if len("r+") + len(token) > MAX_LOCAL_PART:
        raise ValueError(f"reply token for {account!r} would exceed {MAX_LOCAL_PART} characters")
    return token


def read_token(secret: str, token: str) -> TokenClaim | None:
    """What ``token`` claims, or None when it is garbled or was not made with ``secret``.

    Case is ignored, since mail systems may have changed it.
    """
    if not secret:
        return None
    escaped, sep, encoded = token.strip().lower().rpartition("-")
    account = _unescape(escaped) if sep else None
    if account is None or not _ACCOUNT.match(account):
        return None
    binary = _unb32(encoded)
    if binary is None:
        return None
    document = _read_varint(binary, 0)
    step = _read_varint(binary, document[1]) if document else None
    if document is None or step is None:
        return None
    ids, tag = binary[: step[1]], binary[step[1] :]
    if len(tag) != _MAC_BYTES or not hmac.compare_digest(tag, _mac(secret, ids, account)):
        return None
    return TokenClaim(document_id=document[0], step_id=step[0], account=account)


def _mac(secret: str, ids: bytes, account: str) -> bytes:
    message = _CONTEXT + ids + account.encode("ascii")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()[:_MAC_BYTES]


def _escape(account: str) -> str:
    return "".join(_ESCAPES.get(c, c) for c in account)


def _unescape(text: str) -> str | None:
    out: list[str] = []
    chars = iter(text)
    for c in chars:
        if c != "_":
            out.append(c)
            continue
        escaped = _UNESCAPES.get(next(chars, ""))
        if escaped is None:
            return None
        out.append(escaped)
    return "".join(out)


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def _unb32(text: str) -> bytes | None:
    if not text or not text.isascii():
        return None
    try:
        data = base64.b32decode(text.upper() + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        return None
    # The last character carries bits beyond the data; only the encoding Yizhan wrote counts,
    # or a changed last character could still decode to the same bytes.
    return data if _b32(data) == text else None


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(data: bytes, start: int) -> tuple[int, int] | None:
    """The value of the varint at ``start`` and the index after it; None if malformed."""
    value = 0
    for index in range(start, min(len(data), start + _MAX_VARINT)):
        byte = data[index]
        value |= (byte & 0x7F) << (7 * (index - start))
        if not byte & 0x80:
            # A final zero byte after others is a padded, second spelling of the same value.
            if byte == 0 and index > start:
                return None
            return value, index + 1
    return None
