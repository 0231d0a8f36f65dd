"""Runs the content rules on a message at the SMTP gateway: read it, have clamd scan it, judge it.

:func:`check_message` is called after DATA, before the message is stored: a refusal is an SMTP
reply (550 5.7.1 with the reason in Chinese and English), and the sender also gets a mail that
explains the rule; the IT department gets a notice when the rule's row says so
(``routing.content.table``), and the audit trail an entry. A scanner that cannot be reached
makes a 451 (try again later): mail is never passed unscanned. For a message refused after it
was accepted, :func:`quarantine_accepted` keeps it in the quarantine instead (nothing lost).

The rules come from the ``[content]`` table of the rules file, read again whenever the file
changes, so the IT department's edits apply without a restart.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
from collections.abc import Callable, Sequence
from email.message import EmailMessage
from email.utils import formataddr
from typing import Final, Generic, TypeVar

from sqlalchemy.orm import Session

from yizhan.daemon.clamd import Clamd, ScannerUnavailable, ScanRefused
from yizhan.daemon.config import Config, ConfigError
from yizhan.daemon.content_rules import content_rules_version, load_content_rules
from yizhan.daemon.context import Context
from yizhan.daemon.inspect import ReadMessage, read_message
from yizhan.mailstore import audit
from yizhan.mailstore.directory import load_directory
from yizhan.mailstore.inbound import message_id_of
from yizhan.mailstore.quarantine import Quarantine, QuarantineEntry
from yizhan.mailstore.tools import published_digests
from yizhan.routing.addresses import AddressTable, Recipient
from yizhan.routing.content import (
    DEFAULT_CONTENT,
    TABLE,
    Attachment,
    ContentRules,
    ContentRulesError,
    Inspection,
    RecipientFacts,
    Verdict,
    content_warnings,
    judge,
)
from yizhan.routing.content.outside import organisation_domains
from yizhan.routing.directory import Directory, PersonInfo
from yizhan.routing.tools import ToolAction, tool_request
from yizhan.templates.render import render_mail

__all__ = [
    "RULES_UNREADABLE",
    "SCANNER_DOWN",
    "build_inspection",
    "check_accepted",
    "check_content_rules",
    "check_message",
    "content_rules_version",
    "it_people",
    "load_content_rules",
    "quarantine_accepted",
    "quarantine_of",
    "scan_attachments",
    "scanner_for",
]

log = logging.getLogger("yizhan.content")

#: The answer while clamd cannot be reached: the sender's server keeps the message and retries.
SCANNER_DOWN: Final = Verdict(
    rule="virus_scan",
    code=451,
    status="4.3.0",
    reason_zh="暫時無法查殺病毒，郵件未受理，發件服務器稍後會自動重發",
    reason_en="The virus scanner is not available; the message was not accepted, try again later",
)
#: The answer while the rules file cannot be read: refusing nothing by mistake, accepting
#: nothing unchecked.
RULES_UNREADABLE: Final = Verdict(
    rule="content_rules",
    code=451,
    status="4.3.0",
    reason_zh="內容規則文件有誤，郵件暫未受理，請稍後重發",
    reason_en="The content rules cannot be read; the message was not accepted, try again later",
)

#: Messages up to this size are read on the event loop: the work is a fraction of a
#: millisecond, less than the hop to a worker thread; larger ones are read in a thread.
READ_INLINE_BYTES: Final = 64 * 1024
#: Attachments of one message scanned at once.
SCAN_CONCURRENCY: Final = 4


# --- Rules ----------------------------------------------------------------------------------------


def check_content_rules(config: Config) -> list[str]:
    """For ``yizhan check``: lines to print about the content rules (an OK line, then warnings).

    Raises :class:`~yizhan.daemon.config.ConfigError` listing every problem of the
    ``[content]`` table. A scanner that does not answer is a warning: the gateway would then
    answer 451 to mail with attachments until it does.
    """
    try:
        rules = load_content_rules(config.rules_file)
    except ContentRulesError as exc:
        raise ConfigError("rules [content]", "; ".join(exc.problems)) from exc
    source = config.rules_file if config.rules_file.exists() else "built-in defaults"
    lines = [f"content rules OK ({source}, {len(TABLE)} rules)"]
    lines.extend(f"warning: {w}" for w in content_warnings(rules))
    scanner = scanner_for(rules)
    if scanner is not None:
        probe = Clamd(
            socket=scanner.socket,
            host=scanner.host,
            port=scanner.port,
            timeout=min(5.0, scanner.timeout),
        )
        if not asyncio.run(probe.ping()):
            lines.append(
                f"warning: clamd at {probe!r} does not answer; mail with attachments gets 451 "
                "(try again later) until it does"
            )
    return lines


def scanner_for(rules: ContentRules) -> Clamd | None:
    """The clamd client the rules name, or None when scanning is switched off."""
    settings = rules.scanner
    if not settings.enabled:
        return None
    return Clamd(
        socket=settings.socket, host=settings.host, port=settings.port, timeout=settings.timeout
    )


def quarantine_of(config: Config) -> Quarantine:
    """The instance's quarantine (``<data_dir>/quarantine``)."""
    return Quarantine(config.data_dir / "quarantine")


# --- The check ------------------------------------------------------------------------------------


async def check_message(
    ctx: Context,
    raw: bytes,
    *,
    rcpt_tos: Sequence[str],
    sender_account: str | None,
    mail_from: str = "",
    directory: Directory | None = None,
    rules: ContentRules | None = None,
    scanner: Clamd | None = None,
    report: bool = True,
    published_tools: frozenset[str] | None = None,
) -> Verdict | None:
    """Judge a message before it is stored; None when it passes.

    A permanent refusal is reported (``report``): a reply to the sender, a notice to the IT
    department if the rule's row asks for one, an audit entry. A temporary one (451: the
    scanner is down, the rules file is broken) is only logged; the sender's server retries.
    ``rules``, ``scanner``, ``directory`` and ``published_tools`` (the digests of the files
    the IT department published) default to the configured and stored ones.
    """
    if rules is None:
        try:
            rules = load_content_rules(ctx.config.rules_file)
        except ContentRulesError as exc:
            log.error("%s: content rules unusable, answering 451: %s", message_id_of(raw), exc)
            return RULES_UNREADABLE
    if scanner is None:
        scanner = scanner_for(rules)
    if len(raw) <= READ_INLINE_BYTES:
        read = read_message(raw, rules)
    else:
        read = await asyncio.to_thread(read_message, raw, rules)
    if directory is None:
        directory = await asyncio.to_thread(_load_directory, ctx)
    published = published_tools if published_tools is not None else frozenset()
    if published_tools is None and read.attachments:
        published = await asyncio.to_thread(_published_tools, ctx)
    unscanned: str | None = None
    attachments = read.attachments
    if scanner is not None and read.payloads:
        try:
            attachments = await scan_attachments(read, scanner)
        except ScannerUnavailable as exc:
            unscanned = str(exc)
    inspection = build_inspection(
        dataclasses.replace(read, attachments=attachments),
        config=ctx.config,
        directory=directory,
        rcpt_tos=rcpt_tos,
        sender_account=sender_account,
        rules=rules,
        published_tools=published,
    )
    verdict = judge(inspection, rules)
    if verdict is None and unscanned is not None:
        # Refused for a marking or a type: that stands whatever the scan would say. Else the
        # message waits for the scanner.
        log.warning("%s: not scanned, answering 451: %s", message_id_of(raw), unscanned)
        return SCANNER_DOWN
    if verdict is None:
        return None
    # Found only now: most messages pass, and their Message-ID is not needed here.
    message_id = message_id_of(raw)
    log.info(
        "%s: refused by content rule %s (%s) from %s",
        message_id,
        verdict.rule,
        verdict.status,
        sender_account or inspection.sender_address or mail_from or "<>",
    )
    if report and not verdict.temporary:
        try:
            await asyncio.to_thread(_report, ctx, raw, inspection, verdict, mail_from, directory)
        except Exception:
            # The refusal stands even if the reply or the notice cannot be queued.
            log.exception("%s: could not report the refusal by %s", message_id, verdict.rule)
    return verdict


async def scan_attachments(read: ReadMessage, scanner: Clamd) -> tuple[Attachment, ...]:
    """The attachments with clamd's findings; raises :class:`ScannerUnavailable`.

    Data clamd will not take (over its stream limit) is marked unreadable, which the rules
    refuse: it cannot be sent unscanned either.
    """
    semaphore = asyncio.Semaphore(SCAN_CONCURRENCY)
    attachments = list(read.attachments)
    failures: list[ScannerUnavailable] = []

    async def one(index: int, data: bytes) -> None:
        async with semaphore:
            if failures:
                return
            try:
                result = await scanner.scan(data)
            except ScanRefused as exc:
                attachments[index] = dataclasses.replace(
                    attachments[index], unreadable=f"too large for the virus scanner ({exc})"
                )
                return
            except ScannerUnavailable as exc:
                failures.append(exc)
                return
        if not result.clean:
            attachments[index] = dataclasses.replace(attachments[index], virus=result.signature)

    await asyncio.gather(*(one(index, data) for index, data in read.payloads))
    if failures:
        raise failures[0]
    return tuple(attachments)


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


# --- After acceptance -----------------------------------------------------------------------------


def check_accepted(
    ctx: Context,
    raw: bytes,
    *,
    rcpt_tos: Sequence[str],
    sender_account: str | None,
    mail_from: str,
    directory: Directory | None = None,
    published_tools: frozenset[str] | None = None,
) -> Verdict | None:
    """Judge an accepted message again (blocking; for the processor's worker thread).

    A message the IT department released from the quarantine passes. Nothing is reported:
    the caller quarantines a refused message with :func:`quarantine_accepted`, and retries
    later on a temporary verdict.
    """
    if quarantine_of(ctx.config).released(hashlib.sha256(raw).hexdigest()):
        return None
    return asyncio.run(
        check_message(
            ctx,
            raw,
            rcpt_tos=rcpt_tos,
            sender_account=sender_account,
            mail_from=mail_from,
            directory=directory,
            report=False,
            published_tools=published_tools,
        )
    )


def quarantine_accepted(
    ctx: Context,
    session: Session,
    raw: bytes,
    verdict: Verdict,
    *,
    inbound_id: int | None,
    mail_from: str,
    rcpt_tos: Sequence[str],
    sender_account: str | None,
    auth_method: str = "none",
) -> QuarantineEntry:
    """Keep an accepted message that ``verdict`` refuses, and report it in ``session``.

    The bytes are on disk (fsynced) before anything is queued; the caller commits the reply
    to the sender, the notice to the IT department and the audit entry with its own change
    (marking the inbound row ``quarantined``), so a crash repeats nothing.
    """
    entry = quarantine_of(ctx.config).hold(
        raw,
        rule=verdict.rule,
        status=verdict.status,
        reason_zh=verdict.reason_zh,
        reason_en=verdict.reason_en,
        mail_from=mail_from,
        rcpt_tos=rcpt_tos,
        sender_account=sender_account,
        auth_method=auth_method,
        message_id=message_id_of(raw),
        inbound_id=inbound_id,
        now=ctx.clock(),
    )
    directory = load_directory(session)
    read = read_message(raw, DEFAULT_CONTENT)
    _report_in(
        session,
        ctx,
        raw,
        subject=read.subject,
        sender_address=read.from_address,
        sender_account=sender_account,
        rcpt_tos=rcpt_tos,
        verdict=dataclasses.replace(verdict, notify_it=True),
        mail_from=mail_from,
        directory=directory,
        quarantine_id=entry.id,
    )
    return entry


# --- Reporting ------------------------------------------------------------------------------------


def _load_directory(ctx: Context) -> Directory:
    with ctx.sessions() as session:
        return load_directory(session)


def _published_tools(ctx: Context) -> frozenset[str]:
    with ctx.sessions() as session:
        return published_digests(session)


def _publishes_tool(read: ReadMessage) -> bool:
    """Whether the message is a TOOLS ADD (the IT department publishing its attachment)."""
    request = tool_request(read.subject, read.body)
    return request is not None and request.action is ToolAction.ADD


def _report(
    ctx: Context,
    raw: bytes,
    inspection: Inspection,
    verdict: Verdict,
    mail_from: str,
    directory: Directory,
) -> None:
    with ctx.sessions.begin() as session:
        _report_in(
            session,
            ctx,
            raw,
            subject=inspection.subject,
            sender_address=inspection.sender_address,
            sender_account=inspection.sender_account,
            rcpt_tos=[r.address for r in inspection.recipients],
            verdict=verdict,
            mail_from=mail_from,
            directory=directory,
            quarantine_id=None,
        )


def _report_in(
    session: Session,
    ctx: Context,
    raw: bytes,
    *,
    subject: str,
    sender_address: str,
    sender_account: str | None,
    rcpt_tos: Sequence[str],
    verdict: Verdict,
    mail_from: str,
    directory: Directory,
    quarantine_id: str | None,
) -> None:
    """The audit entry, the reply to the sender and the IT notice, in the caller's session."""
    now = ctx.clock()
    domain = ctx.config.domain
    digest = hashlib.sha256(raw).hexdigest()
    message_id = message_id_of(raw)
    source = f"content:{digest[:40]}"
    sender = sender_account or sender_address or mail_from or "unknown"
    detail: dict[str, object] = {
        "rule": verdict.rule,
        "status": verdict.status,
        "article": verdict.article,
        "reason": verdict.reason_en[:500],
        "from": sender_address,
        "rcpt_tos": list(rcpt_tos),
        "sha256": digest,
    }
    if message_id:
        detail["message_id"] = message_id
    if quarantine_id:
        detail["quarantine"] = quarantine_id
    audit.record(
        session,
        at=now,
        actor=sender,
        action="content.quarantined" if quarantine_id else "content.refused",
        target=verdict.rule,
        detail=detail,
    )
    # The answer goes to the verified From address of an authenticated sender, else to the
    # envelope sender; never to <> (no answers to bounces).
    to = (sender_address if sender_account else "") or mail_from
    if mail_from and to:
        person = directory.people.get(sender_account or "")
        held = (
            "\n\n這封郵件已暫扣在隔離區，由信息化處處理。\n"
            "The message is held in the quarantine for the IT department."
            if quarantine_id
            else ""
        )
        headers = {"Auto-Submitted": "auto-replied"}
        if message_id:
            headers["In-Reply-To"] = headers["References"] = message_id
        reply = render_mail(
            "reply.txt",
            person.language if person else None,
            sender=formataddr(("驛站", f"cmd@{domain}")),
            to=to,
            headers=headers,
            subject=subject or "(no subject)",
            text=f"{verdict.reason_zh}\n\n{verdict.reason_en}\n\n"
            f"（規則 rule: {verdict.rule}；{verdict.article}）{held}",
        )
        ctx.queue(
            session,
            source=f"{source}:reply",
            message=_signed(ctx, reply),
            rcpts=[to],
            now=now,
        )
    if not verdict.notify_it:
        return
    for it_person in it_people(directory):
        address = it_person.mailbox(domain)
        notice = render_mail(
            "content_notice.txt",
            it_person.language,
            sender=formataddr(("驛站", f"cmd@{domain}")),
            to=address,
            headers={"Auto-Submitted": "auto-generated"},
            rule=verdict.rule,
            article=verdict.article or "-",
            sender_name=sender,
            recipients=", ".join(rcpt_tos) or "-",
            subject=subject or "(no subject)",
            message_id=message_id or "-",
            reason_zh=verdict.reason_zh,
            reason_en=verdict.reason_en,
            quarantine_id=quarantine_id or "",
        )
        ctx.queue(
            session,
            source=f"{source}:it:{it_person.account}",
            message=_signed(ctx, notice),
            rcpts=[address],
            now=now,
        )


def it_people(directory: Directory) -> list[PersonInfo]:
    """Who hears of refusals: the heads of the IT units, else everyone active in them."""
    units = directory.units_of_kind("it")
    heads = [p for u in units for p in directory.members(u.id, "unit_head")]
    if heads:
        return heads
    return sorted(
        (
            p
            for p in directory.people.values()
            if p.state == "active" and any(p.unit == u.id for u in units)
        ),
        key=lambda p: p.account,
    )


def _signed(ctx: Context, mail: EmailMessage) -> EmailMessage | bytes:
    try:
        return ctx.sign(mail)
    except Exception:
        # An unsigned notice is better than none; the log says why it is unsigned.
        log.exception("signing a content notice failed; it goes unsigned")
        return mail
