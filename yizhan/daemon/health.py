"""Whether this daemon can do its work: each part it depends on, asked directly (``/readyz``).

A part that is not used (no clamd in the content rules, no IMAP configured) counts as ready.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass

from sqlalchemy import text

from yizhan.daemon.config import HostPort
from yizhan.daemon.context import Context
from yizhan.daemon.rules_file import load_content_rules
from yizhan.daemon.screening.clamd import scanner_for

#: How long one part may take to answer before it counts as down.
TIMEOUT = 5.0


@dataclass(frozen=True)
class Check:
    """One part's answer."""

    ok: bool
    detail: str


async def readiness(ctx: Context) -> dict[str, Check]:
    """Ask the database, clamd, gpg and Dovecot, all at once."""
    names = ("database", "clamd", "gpg", "dovecot")
    results = await asyncio.gather(
        _guarded(asyncio.to_thread(_database, ctx)),
        _guarded(_clamd(ctx)),
        _guarded(asyncio.to_thread(_gpg, ctx)),
        _guarded(_dovecot(ctx)),
    )
    return dict(zip(names, results, strict=True))


async def _guarded(check: Awaitable[Check]) -> Check:
    try:
        async with asyncio.timeout(TIMEOUT):
            return await check
    except TimeoutError:
        return Check(False, f"no answer within {TIMEOUT:g} s")
    except Exception as exc:
        return Check(False, f"{type(exc).__name__}: {exc}")


def _database(ctx: Context) -> Check:
    with ctx.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return Check(True, ctx.engine.dialect.name)


async def _clamd(ctx: Context) -> Check:
    scanner = scanner_for(load_content_rules(ctx.config.rules_file))
    if scanner is None:
        return Check(True, "scanning is off in the content rules")
    if await scanner.ping():
        return Check(True, repr(scanner))
    return Check(False, f"{scanner!r} does not answer PING")


def _gpg(ctx: Context) -> Check:
    fingerprint = ctx.keyring.system_fingerprint()
    if fingerprint is None:
        return Check(False, "no system signing key; run `yizhan init`")
    # Exporting makes gpg read the keyring: the binary, the home and the key are all there.
    if "BEGIN PGP PUBLIC KEY BLOCK" not in ctx.keyring.export_public(fingerprint):
        return Check(False, f"gpg cannot export the system key {fingerprint}")
    return Check(True, f"system key {fingerprint}")


async def _dovecot(ctx: Context) -> Check:
    imap = ctx.config.imap
    target: HostPort | None = imap.server or imap.listen
    if target is None:
        return Check(True, "no IMAP configured")
    reader, writer = await asyncio.open_connection(target.host, target.port)
    try:
        greeting = await reader.readline()
    finally:
        writer.close()
    if greeting.startswith(b"* OK"):
        return Check(True, f"{target}")
    return Check(False, f"{target} greeted {greeting[:60]!r}")
