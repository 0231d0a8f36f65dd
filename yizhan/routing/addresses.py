"""Classifies a recipient at the OA domain: a kind's address, cmd@, a reply token or a person.

Pure: the domain, the configured local parts (``addresses``: kind → local parts, the pinyin
name first) and the directory are passed in. A recipient Yizhan will not take gets a
:class:`Refusal` that says why, in words fit for an SMTP reply (README, the table of addresses).
Local parts are compared without regard to case; a reply token keeps its case, since it is
checked later against its HMAC.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from yizhan.routing.directory import Directory

__all__ = ["AddressTable", "Recipient", "RecipientKind", "Refusal", "classify"]

#: The kind key of cmd@ in the config's ``addresses`` map; every other key is a module.
COMMAND_KEY: Final = "cmd"

RecipientKind = Literal["module", "command", "reply", "person"]

# One address: a local part and a host, split at the last "@" (a quoted local part may hold
# another "@").
_ADDRESS: Final = re.compile(r"^(?P<local>.+)@(?P<host>[^@]+)$", re.DOTALL)
# A reply address: r+TOKEN, where TOKEN is what the HMAC-signing side emits (base64url and
# a few separators). Only the "r" is case-insensitive.
_REPLY: Final = re.compile(r"^[rR]\+(?P<token>[A-Za-z0-9_.=-]{1,200})$")
# Anything else that starts "r+" was meant as a reply and gets its own explanation.
_REPLY_LIKE: Final = re.compile(r"^[rR]\+(?P<rest>.*)$", re.DOTALL)


@dataclass(frozen=True, kw_only=True)
class Recipient:
    """Where a message for one RCPT address goes.

    ``module`` is the canonical kind key (``"fawen"``) for kind "module"; ``account`` is set
    for kind "person"; ``token`` (not yet verified) for kind "reply".
    """

    kind: RecipientKind
    module: str | None = None
    account: str | None = None
    token: str | None = None


@dataclass(frozen=True, kw_only=True)
class Refusal:
    """Why a recipient is refused; ``str()`` is the whole SMTP reply line."""

    code: int
    status: str
    reason: str

    def __str__(self) -> str:
        return f"{self.code} {self.status} {self.reason}"


class AddressTable:
    """The recipient rules of one OA domain, built once from the config's address map."""

    def __init__(self, domain: str, addresses: Mapping[str, tuple[str, ...]]) -> None:
        self.domain = domain.lower()
        self._kinds: dict[str, str] = {
            part.lower(): kind for kind, parts in addresses.items() for part in parts
        }
        # The pinyin (first) local part of each kind, in the config's order, for the refusal
        # that tells the sender what exists.
        self._listing = ", ".join(f"{parts[0]}@" for parts in addresses.values() if parts)

    def classify(self, address: str, directory: Directory) -> Recipient | Refusal:
        """Classify one RCPT address; see the module docstring."""
        shown = address.strip()
        match = _ADDRESS.match(shown)
        if match is None:
            return Refusal(
                code=550,
                status="5.1.3",
                reason=f"<{shown}> is not a full address; "
                f"Yizhan only accepts mail for @{self.domain}",
            )
        local, host = match["local"], match["host"].lower().rstrip(".")
        if host != self.domain:
            return Refusal(
                code=550,
                status="5.1.2",
                reason=f"<{shown}>: {host} is not served here; "
                f"Yizhan only accepts mail for @{self.domain}",
            )
        reply = _REPLY.match(local)
        if reply is not None:
            return Recipient(kind="reply", token=reply["token"])
        if _REPLY_LIKE.match(local) is not None:
            return Refusal(
                code=550,
                status="5.1.1",
                reason=f"<{shown}>: not a valid reply address; "
                "reply to the message you were sent, keeping its Reply-To",
            )
        key = local.lower()
        kind = self._kinds.get(key)
        if kind == COMMAND_KEY:
            return Recipient(kind="command")
        if kind is not None:
            return Recipient(kind="module", module=kind)
        person = directory.people.get(key)
        if person is not None and person.state == "active":
            return Recipient(kind="person", account=person.account)
        if person is not None:
            return Refusal(
                code=550,
                status="5.2.1",
                reason=f"<{shown}>: the account of {person.account} is {person.state}",
            )
        return Refusal(
            code=550,
            status="5.1.1",
            reason=f"<{shown}>: no such module or person; modules are {self._listing}",
        )


def classify(
    address: str,
    *,
    domain: str,
    addresses: Mapping[str, tuple[str, ...]],
    directory: Directory,
) -> Recipient | Refusal:
    """Classify one RCPT address against the config's domain and address map.

    Builds the table each call; a caller classifying many addresses keeps an
    :class:`AddressTable` instead.
    """
    return AddressTable(domain, addresses).classify(address, directory)
