"""``X-Yizhan-Login``: the login the organisation's Postfix checked, in a header nobody can forge.

Staff may submit to Postfix's submission port with SASL instead of to Yizhan's own AUTH port
(issue 13, part 5). Postfix hands the message on without the login (XFORWARD carries none), so
Yizhan's policy service (``gateway.policy``), which Postfix asks at DATA, prepends this header:
the SASL login, Postfix's queue id, and a MAC over both under the instance secret. The gateway
believes it only from ``smtp.trusted_relays``, only the topmost copy, only with a MAC that
verifies, and only when its queue id is the one in the topmost ``Received`` (the one Postfix
wrote for this very message), so a copy written by a client, or one copied from an earlier
message, names no one. Every copy is removed before the message is stored (第七條: who sent
a document is what the system vouches for, not what a header claims).

Postfix's header_checks cannot strip the client copies: a policy service's PREPEND passes
through the same cleanup and would be stripped with them; hence the MAC and the queue id.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Final

__all__ = ["LOGIN_HEADER", "queue_id_of", "seal", "strip_field", "unseal"]

LOGIN_HEADER: Final = "X-Yizhan-Login"

_MAC_LENGTH: Final = 32
_VALUE: Final = re.compile(
    r"^\s*(?P<login>[^\s;]+)\s*;\s*queue-id=(?P<queue>[0-9A-Za-z]+)\s*;\s*mac=(?P<mac>[0-9a-f]+)\s*$"
)
# Postfix's Received: "... by mta.example (Postfix) with ESMTPSA id 4Ab0C1xyz; ..." (its short
# or long queue ids are letters and digits).
_RECEIVED_ID: Final = re.compile(r"\bid\s+(?P<queue>[0-9A-Za-z]+)\b")
_FIELD_NAME: Final = re.compile(rb"^(?P<name>[!-9;-~]+)[ \t]*:")


def _mac(secret: str, login: str, queue_id: str) -> str:
    key = hmac.new(secret.encode("utf-8"), b"yizhan-login-header", hashlib.sha256).digest()
    message = f"{login}\n{queue_id}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:_MAC_LENGTH]


def seal(secret: str, login: str, queue_id: str) -> str:
    """The header's value for a SASL ``login`` in Postfix's message ``queue_id``."""
    return f"{login}; queue-id={queue_id}; mac={_mac(secret, login, queue_id)}"


def queue_id_of(received: str | None) -> str | None:
    """The queue id in a ``Received`` value, or None."""
    if not received:
        return None
    found = _RECEIVED_ID.search(received)
    return found["queue"] if found else None


def unseal(secret: str, value: str | None, received: str | None) -> str | None:
    """The login a sealed value names, if its MAC holds and it was sealed for this message
    (``received``: the topmost Received value); None otherwise."""
    if not value:
        return None
    found = _VALUE.match(value)
    if found is None or found["queue"] != queue_id_of(received):
        return None
    expected = _mac(secret, found["login"], found["queue"])
    return found["login"] if hmac.compare_digest(found["mac"], expected) else None


def strip_field(data: bytes, name: str) -> bytes:
    """``data`` without any header field called ``name`` (with its folded lines); the body and
    every other field untouched, byte for byte."""
    wanted = name.lower().encode("ascii")
    if wanted not in data[: _header_end(data)].lower():
        return data
    end = _header_end(data)
    lines = data[:end].splitlines(keepends=True)
    kept: list[bytes] = []
    dropping = False
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            if not dropping:
                kept.append(line)
            continue
        field = _FIELD_NAME.match(line)
        dropping = field is not None and field["name"].lower() == wanted
        if not dropping:
            kept.append(line)
    return b"".join(kept) + data[end:]


def _header_end(data: bytes) -> int:
    # Up to and including the line ending before the first empty line (everything, if none).
    ends = [
        at + len(separator) // 2
        for separator in (b"\r\n\r\n", b"\n\n")
        if (at := data.find(separator)) != -1
    ]
    return min(ends, default=len(data))
