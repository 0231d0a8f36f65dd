"""Decides which of a person's folders a message Yizhan sends them belongs in (README, "IMAP").

A message that asks the person to act (``X-Yizhan-Action`` other than ``none``, with a genuine
``Reply-To: r+TOKEN@``) goes to 公文/待辦 while its step waits, and to 公文/已辦 once the step
is done; a published bulletin (``X-Yizhan-Kind: gonggao`` with ``List-Id``) to 公文/公告;
everything else to INBOX. Pure: it reads only the message's header section and the secret
that proves the token, so the step it names is the one Yizhan asked, whatever a header says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import policy
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from typing import Final

from yizhan.routing.tokens import read_token

__all__ = [
    "BULLETINS",
    "DONE",
    "INBOX",
    "OA_FOLDERS",
    "TODO",
    "Placement",
    "placement",
]

INBOX: Final = "INBOX"
#: Each message that asks the person to act, while the step waits.
TODO: Final = "公文/待辦"
#: Where a request goes, \\Seen, once its step is done by anyone.
DONE: Final = "公文/已辦"
#: Published bulletins.
BULLETINS: Final = "公文/公告"
#: The folders Yizhan creates and subscribes for every person (公文 comes with them).
OA_FOLDERS: Final = (TODO, DONE, BULLETINS)

_HEADER_END: Final = re.compile(rb"\r?\n\r?\n")
_PARSER: Final = BytesHeaderParser(policy=policy.compat32)


@dataclass(frozen=True, kw_only=True)
class Placement:
    """Where one message is filed, and the step it asks about (for 待辦)."""

    folder: str
    step_id: int | None = None
    document_id: int | None = None


def placement(data: bytes, *, secret: str, domain: str) -> Placement:
    """The folder for ``data`` (a whole message or its header section)."""
    end = _HEADER_END.search(data)
    head = _PARSER.parsebytes(data[: end.end()] if end else data)
    action = (head.get("X-Yizhan-Action") or "").strip().lower()
    if action and action != "none":
        for _name, address in getaddresses([str(v) for v in head.get_all("Reply-To") or []]):
            claim = _token_claim(address, secret=secret, domain=domain)
            if claim is not None:
                return Placement(folder=TODO, step_id=claim[0], document_id=claim[1])
    kind = (head.get("X-Yizhan-Kind") or "").strip().lower()
    if kind == "gonggao" and head.get("List-Id"):
        return Placement(folder=BULLETINS, document_id=_int(head.get("X-Yizhan-Doc")))
    return Placement(folder=INBOX, document_id=_int(head.get("X-Yizhan-Doc")))


def _token_claim(address: str, *, secret: str, domain: str) -> tuple[int, int] | None:
    local, at, host = address.strip().rpartition("@")
    if not at or host.lower() != domain or not local.lower().startswith("r+"):
        return None
    claim = read_token(secret, local[2:])
    return None if claim is None else (claim.step_id, claim.document_id)


def _int(value: object) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() else None
