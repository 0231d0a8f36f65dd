"""The ``migrate [--dry-run]`` verb: brings the database's schema up to this version's.

Daemons never migrate on their own (``serve`` refuses an older or newer schema and names this
verb): the operator stops them, backs up, runs ``yizhan migrate``, then starts the new version.
"""

from __future__ import annotations

import argparse

from sqlalchemy import inspect

from yizhan.cli.base import CliError, Verbs, audit_console, chain_legacy_audit, load
from yizhan.daemon.context import Context
from yizhan.mailstore.db import schema_state, upgrade


def cmd_migrate(args: argparse.Namespace) -> None:
    """Apply the pending migrations, or with ``--dry-run`` list them and change nothing."""
    ctx = Context.open(load())
    try:
        if not inspect(ctx.engine).has_table("alembic_version"):
            raise CliError("the database is not initialised; run `yizhan init` first")
        state = schema_state(ctx.engine)
        if state.newer:
            raise CliError(
                f"the database is at revision {state.current}, newer than this Yizhan "
                f"({state.head}); it cannot be migrated down: run the newer version"
            )
        if state.up_to_date:
            print(f"the schema is up to date (revision {state.head}); nothing to do")
            return
        word = "would apply" if args.dry_run else "applying"
        print(f"schema at revision {state.current}, this Yizhan's is {state.head}; {word}:")
        for revision, title in state.pending:
            print(f"  {revision}  {title}")
        if args.dry_run:
            print("dry run: nothing changed")
            return
        upgrade(ctx.engine)
        chain_legacy_audit(ctx)
        audit_console(
            ctx,
            "schema.migrate",
            "database",
            {"from": state.current, "to": state.head, "applied": [r for r, _ in state.pending]},
        )
        print(f"migrated to revision {state.head}")
    finally:
        ctx.close()


def add_parser(verbs: Verbs) -> None:
    """Add ``migrate [--dry-run]``."""
    p = verbs.add_parser("migrate", help="bring the database schema up to this version")
    p.add_argument(
        "--dry-run", action="store_true", help="list the migrations to apply; change nothing"
    )
    p.set_defaults(handler=cmd_migrate)
