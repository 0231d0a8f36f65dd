"""Reads the parts of IMAP server responses that filing needs, from the bytes aioimaplib returns.

aioimaplib hands back each command's response lines without interpreting them; these pure
functions find the response codes of UIDPLUS (RFC 4315: APPENDUID, COPYUID), SELECT's
UIDVALIDITY, the numbers of a UID SEARCH, the mailboxes of LIST and the Message-ID of a FETCH,
so that they can be tested on literal bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from yizhan.daemon.imap.mutf7 import MUTF7Error, decode

__all__ = [
    "AppendUid",
    "CopyUid",
    "appenduid",
    "copyuid",
    "exists",
    "fetched_literals",
    "listed_mailboxes",
    "message_id_of",
    "parse_uid_set",
    "search_uids",
    "uid_set",
    "uidvalidity",
]

_APPENDUID: Final = re.compile(rb"\[APPENDUID (\d+) (\d+)\]", re.IGNORECASE)
_COPYUID: Final = re.compile(rb"\[COPYUID (\d+) ([\d:,]+) ([\d:,]+)\]", re.IGNORECASE)
_UIDVALIDITY: Final = re.compile(rb"\[UIDVALIDITY (\d+)\]", re.IGNORECASE)
# aioimaplib strips "* " and, for commands it runs concurrently, the response's own name.
_SEARCH: Final = re.compile(rb"^(?:\* )?(?:SEARCH)?((?: ?\d+)*)\s*$", re.IGNORECASE)
# (flags) "delimiter" name, the name an atom, a quoted string or (rarely) a literal.
_LIST: Final = re.compile(
    rb'^(?:\* )?(?:LIST |LSUB )?\(([^)]*)\) (?:"(?:\\.|[^"])*"|NIL) (.+)$', re.IGNORECASE
)


@dataclass(frozen=True, kw_only=True)
class AppendUid:
    """Where APPEND put the message (RFC 4315)."""

    uidvalidity: int
    uid: int


@dataclass(frozen=True, kw_only=True)
class CopyUid:
    """Where COPY or MOVE put each message (RFC 4315, RFC 6851): source UID to target UID."""

    uidvalidity: int
    uids: dict[int, int]


def appenduid(lines: Iterable[bytes]) -> AppendUid | None:
    """The APPENDUID response code among ``lines``, or None."""
    for line in lines:
        match = _APPENDUID.search(line)
        if match:
            return AppendUid(uidvalidity=int(match[1]), uid=int(match[2]))
    return None


def copyuid(lines: Iterable[bytes]) -> CopyUid | None:
    """The COPYUID response code among ``lines`` (MOVE sends it untagged), or None."""
    for line in lines:
        match = _COPYUID.search(line)
        if match:
            source, target = parse_uid_set(match[2]), parse_uid_set(match[3])
            if len(source) != len(target):
                return None
            return CopyUid(uidvalidity=int(match[1]), uids=dict(zip(source, target, strict=True)))
    return None


_EXISTS: Final = re.compile(rb"^(?:\* )?(\d+) EXISTS\s*$", re.IGNORECASE)


def exists(lines: Iterable[bytes]) -> int | None:
    """How many messages a SELECT or EXAMINE response says the mailbox holds, or None."""
    for line in lines:
        match = _EXISTS.match(line.strip())
        if match:
            return int(match[1])
    return None


def uidvalidity(lines: Iterable[bytes]) -> int | None:
    """The UIDVALIDITY of a SELECT or EXAMINE response, or None."""
    for line in lines:
        match = _UIDVALIDITY.search(line)
        if match:
            return int(match[1])
    return None


def search_uids(lines: Iterable[bytes]) -> list[int]:
    """The numbers of a SEARCH response (UIDs for UID SEARCH), in the server's order."""
    found: list[int] = []
    for line in lines:
        match = _SEARCH.match(line.strip())
        if match:
            found.extend(int(n) for n in match[1].split())
    return found


def listed_mailboxes(lines: Iterable[bytes]) -> dict[str, tuple[str, ...]]:
    """The mailboxes of a LIST or LSUB response, decoded, with their flags."""
    found: dict[str, tuple[str, ...]] = {}
    for line in lines:
        match = _LIST.match(line.strip())
        if not match:
            continue
        name = match[2].strip()
        if name.startswith(b'"') and name.endswith(b'"'):
            name = re.sub(rb"\\(.)", rb"\1", name[1:-1])
        try:
            found[decode(name)] = tuple(f.decode("ascii", "replace") for f in match[1].split())
        except (MUTF7Error, UnicodeDecodeError):
            continue
    return found


_FETCH_UID: Final = re.compile(rb"FETCH \(.*?\bUID (\d+)", re.IGNORECASE)
_LITERAL_END: Final = re.compile(rb"\{(\d+)\}$")
_MESSAGE_ID_FIELD: Final = re.compile(
    rb"^message-id[ \t]*:[ \t]*((?:[^\r\n]|\r?\n[ \t])*)", re.IGNORECASE | re.MULTILINE
)


def fetched_literals(lines: Sequence[bytes | bytearray]) -> dict[int, bytes]:
    """The literal (a body section) each UID FETCH response carried, by UID.

    aioimaplib gives a FETCH as its opening line ending in ``{size}``, the literal as the next
    item, then the rest of the line.
    """
    found: dict[int, bytes] = {}
    for index, line in enumerate(lines[:-1]):
        if not isinstance(line, bytes):
            continue
        uid, size = _FETCH_UID.search(line), _LITERAL_END.search(line.rstrip())
        if uid and size:
            found[int(uid[1])] = bytes(lines[index + 1])
    return found


def message_id_of(header: bytes) -> str | None:
    """The Message-ID in a header block, unfolded, or None."""
    match = _MESSAGE_ID_FIELD.search(header)
    if match is None:
        return None
    value = b" ".join(match[1].split()).decode("utf-8", "replace").strip()
    return value or None


def parse_uid_set(text: bytes | str) -> list[int]:
    """The UIDs of a sequence set such as ``3:5,9`` (RFC 3501 section 9), in order."""
    raw = text.decode("ascii") if isinstance(text, bytes) else text
    uids: list[int] = []
    for part in raw.split(","):
        low, _, high = part.partition(":")
        if high:
            a, b = int(low), int(high)
            uids.extend(range(min(a, b), max(a, b) + 1))
        elif low:
            uids.append(int(low))
    return uids


def uid_set(uids: Sequence[int]) -> str:
    """A compact sequence set for ``uids``."""
    ordered = sorted(set(uids))
    parts: list[str] = []
    start = prev = ordered[0] if ordered else 0
    for uid in ordered[1:]:
        if uid == prev + 1:
            prev = uid
            continue
        parts.append(f"{start}:{prev}" if prev != start else str(start))
        start = prev = uid
    if ordered:
        parts.append(f"{start}:{prev}" if prev != start else str(start))
    return ",".join(parts)
