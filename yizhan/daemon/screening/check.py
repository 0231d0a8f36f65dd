"""Judges a message by the content rules: read it, have clamd scan it, decide; at the gateway
before it is stored, and again after acceptance when the rules changed since."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
from collections.abc import Sequence
from typing import Final

from yizhan.daemon.config import Config, ConfigError
from yizhan.daemon.context import Context
from yizhan.daemon.extract.message import ReadMessage, read_message
from yizhan.daemon.rules_file import load_content_rules
from yizhan.daemon.screening.clamd import Clamd, ScannerUnavailable, ScanRefused, scanner_for
from yizhan.daemon.screening.inspection import build_inspection
from yizhan.daemon.screening.notices import report_refusal
from yizhan.daemon.screening.quarantine import quarantine_of
from yizhan.mailstore.directory import load_directory
from yizhan.mailstore.inbound import message_id_of
from yizhan.mailstore.tools import published_digests
from yizhan.routing.content import (
    TABLE,
    Attachment,
    ContentRules,
    ContentRulesError,
    Inspection,
    Verdict,
    content_warnings,
    judge,
)
from yizhan.routing.directory import Directory

__all__ = [
    "RULES_UNREADABLE",
    "SCANNER_DOWN",
    "check_accepted",
    "check_content_rules",
    "check_message",
    "scan_attachments",
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


def _load_directory(ctx: Context) -> Directory:
    with ctx.reading() as session:
        return load_directory(session)


def _published_tools(ctx: Context) -> frozenset[str]:
    # At DATA, before the 250: a reader's snapshot, which never waits for a writer.
    with ctx.reading() as session:
        return published_digests(session)


def _report(
    ctx: Context,
    raw: bytes,
    inspection: Inspection,
    verdict: Verdict,
    mail_from: str,
    directory: Directory,
) -> None:
    with ctx.sessions.begin() as session:
        report_refusal(
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
