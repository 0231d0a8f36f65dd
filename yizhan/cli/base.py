"""What every verb shares: the one-line failure, the console as actor, opening the instance."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, TypeAlias

from sqlalchemy import inspect

from yizhan.daemon.config import (
    Config,
    load_config,
)
from yizhan.daemon.context import Context
from yizhan.mailstore import audit, auditchain
from yizhan.mailstore.db import SchemaMismatch, require_current_schema

#: The ``yizhan`` subcommands, to which each verb family adds its parsers.
Verbs: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

#: The actor recorded in the audit trail for commands typed at the console.
CONSOLE = "console"


class CliError(Exception):
    """A verb failed; the message is the one line printed to standard error."""


def load() -> Config:
    return load_config()


@contextlib.contextmanager
def opened(config: Config | None = None) -> Iterator[Context]:
    """The initialised instance, closed again when the verb is done."""
    ctx = open_instance(config)
    try:
        yield ctx
    finally:
        ctx.close()


def audit_console(ctx: Context, action: str, target: str, detail: Mapping[str, Any]) -> None:
    """Record an administrator's action taken at the console."""
    with ctx.sessions.begin() as session:
        audit.record(
            session, at=ctx.clock(), actor=CONSOLE, action=action, target=target, detail=detail
        )


def open_instance(config: Config | None = None) -> Context:
    """Open the database, refusing to run on one that was never initialised, or whose schema is
    older or newer than this code (``yizhan migrate`` brings it up to date).

    Audit rows older than the hash chain are chained here, once, before the verb runs.
    """
    ctx = Context.open(config or load())
    if not inspect(ctx.engine).has_table("alembic_version"):
        ctx.close()
        raise CliError("the database is not initialised; run `yizhan init` first")
    try:
        require_current_schema(ctx.engine)
    except SchemaMismatch as exc:
        ctx.close()
        raise CliError(str(exc)) from exc
    chain_legacy_audit(ctx)
    return ctx


def chain_legacy_audit(ctx: Context) -> None:
    """Chain the audit rows written before the hash chain existed (once; then a no-op)."""
    if ctx.audit_key is not None:
        with ctx.engine.begin() as conn:
            auditchain.seal_legacy(conn, ctx.audit_key)


def audit_key(ctx: Context) -> bytes:
    """The instance's audit chain key; without ``yizhan.secret`` there is none."""
    if ctx.audit_key is None:
        raise CliError("yizhan.secret is empty, so the audit trail has no key; run `yizhan init`")
    return ctx.audit_key
