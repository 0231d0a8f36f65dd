"""The ``yizhan`` command line: one verb per administrative task, each a thin call into the stores.

Each module here is one family of verbs with an ``add_parser(verbs)`` that registers them; the
families are the rows of :data:`FAMILIES`, in the order ``yizhan --help`` lists them. Every verb
exits 0 on success and non-zero with a one-line reason on failure.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from yizhan.cli import audit as audit_verbs
from yizhan.cli import (
    backup,
    documents,
    jobs,
    migrate,
    people,
    quarantine,
    seals,
    search,
    setup,
    tools,
)
from yizhan.cli.base import CliError, Verbs
from yizhan.daemon.config import ConfigError
from yizhan.mailstore.accounts import AccountError
from yizhan.mailstore.backup import BackupError
from yizhan.mailstore.db import SchemaMismatch
from yizhan.routing.directory import OrgError
from yizhan.signing.keyring import KeyringError

#: Every family of verbs: what each registers with ``add_parser``.
FAMILIES: tuple[Callable[[Verbs], None], ...] = (
    setup.add_parser,
    documents.add_parser,
    seals.add_parser,
    jobs.add_parser,
    quarantine.add_parser,
    search.add_parser,
    tools.add_parser,
    backup.add_parser,
    migrate.add_parser,
    audit_verbs.add_parser,
    people.add_parser,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one verb; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help(sys.stderr)
        return 2
    handler: Callable[[argparse.Namespace], int | None] = args.handler
    try:
        return handler(args) or 0
    except (
        CliError,
        ConfigError,
        OrgError,
        AccountError,
        KeyringError,
        BackupError,
        SchemaMismatch,
    ) as exc:
        print(f"yizhan {args.verb}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    """The ``yizhan`` parser with every family's verbs."""
    parser = argparse.ArgumentParser(prog="yizhan", description="驛站 Yizhan office automation")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    for add_parser in FAMILIES:
        add_parser(verbs)
    return parser
