"""Builds the facts the content rules judge: the message as read, its recipients classified, who
sent it, the organisation's domains and the published tools."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from yizhan.daemon.config import Config
from yizhan.daemon.extract.message import ReadMessage
from yizhan.routing.addresses import AddressTable, Recipient
from yizhan.routing.content import (
    ContentRules,
    Inspection,
    RecipientFacts,
)
from yizhan.routing.content.outside import organisation_domains
from yizhan.routing.directory import Directory
from yizhan.routing.tools import ToolAction, tool_request


def build_inspection(
    read: ReadMessage,
    *,
    config: Config,
    directory: Directory,
    rcpt_tos: Sequence[str],
    sender_account: str | None,
    rules: ContentRules,
    published_tools: frozenset[str] = frozenset(),
) -> Inspection:
    """The facts for the rules: the message as read, its recipients classified, the sender.

    ``published_tools`` are the digests of the tools published at cmd@ (``mailstore.tools``).
    """
    table = _address_table(config)
    recipients = []
    for address in rcpt_tos:
        found = table.classify(address, directory)
        if not isinstance(found, Recipient):
            recipients.append(RecipientFacts(address=address, kind="unknown"))
            continue
        mailbox = None
        person = directory.people.get(found.account or "")
        if found.kind == "person" and person is not None:
            mailbox = person.mailbox(config.domain)
        recipients.append(
            RecipientFacts(address=address, kind=found.kind, module=found.module, mailbox=mailbox)
        )
    sender_module = None
    if read.from_address:
        found = table.classify(read.from_address, directory)
        if isinstance(found, Recipient) and found.kind == "module":
            sender_module = found.module
    person = directory.people.get(sender_account or "")
    unit = directory.units.get(person.unit) if person else None
    return Inspection(
        subject=read.subject,
        body=read.body,
        attachments=tuple(read.attachments),
        forwarded_messages=read.forwarded_messages,
        recipients=tuple(recipients),
        sender_address=read.from_address,
        sender_account=sender_account,
        sender_module=sender_module,
        sender_unit_kind=unit.kind if unit else None,
        domains=_domains(rules.materials.domains, config.domain, directory),
        published_tools=rules.tools | published_tools,
        # Only a mail to cmd@ with a file can publish a tool; reading the command of every
        # other mail would cost more than all the rules together.
        publishes_tool=bool(read.attachments)
        and any(r.kind == "command" for r in recipients)
        and _publishes_tool(read),
        size=read.size,
    )


K = TypeVar("K")

V = TypeVar("V")


class _PerObject(Generic[K, V]):
    """A few values kept per object, by identity: the config and the directory hold dicts,
    so they cannot be cache keys, and they change only by being replaced."""

    def __init__(self, make: Callable[[K], V]) -> None:
        self._make = make
        self._known: list[tuple[K, V]] = []

    def __call__(self, key: K) -> V:
        for known, value in self._known:
            if known is key:
                return value
        value = self._make(key)
        self._known = [*self._known[-3:], (key, value)]
        return value


def _new_table(config: Config) -> AddressTable:
    return AddressTable(config.domain, config.addresses)


def _no_domains_yet(_directory: Directory) -> dict[tuple[tuple[str, ...], str], frozenset[str]]:
    return {}


_address_table = _PerObject(_new_table)

# Walking every person's mailbox per message would cost more than the rest of the check.
_domains_found = _PerObject(_no_domains_yet)


def _domains(configured: tuple[str, ...], oa_domain: str, directory: Directory) -> frozenset[str]:
    found = _domains_found(directory)
    key = (tuple(configured), oa_domain)
    if key not in found:
        found[key] = organisation_domains(
            configured, oa_domain, (p.email for p in directory.people.values() if p.email)
        )
    return found[key]


def _publishes_tool(read: ReadMessage) -> bool:
    """Whether the message is a TOOLS ADD (the IT department publishing its attachment)."""
    request = tool_request(read.subject, read.body)
    return request is not None and request.action is ToolAction.ADD
