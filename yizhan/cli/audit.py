"""The ``audit verify`` verb: proves the audit trail whole, or names its first bad row."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from yizhan.cli.base import Verbs, audit_key, opened
from yizhan.mailstore.auditverify import lines, verify_database
from yizhan.mailstore.backup import read_anchor


def cmd_verify(args: argparse.Namespace) -> int:
    """Walk the hash chain; exit 1 naming the first row edited, deleted or inserted."""
    anchor = read_anchor(args.backup) if args.backup else None
    with opened() as ctx:
        verdict = verify_database(ctx.engine, audit_key(ctx), anchor=anchor)
    for line in lines(verdict):
        print(line)
    if verdict.ok:
        return 0
    first = verdict.problems[0].line() if verdict.problems else verdict.summary()
    print(f"yizhan audit verify: {first}", file=sys.stderr)
    return 1


def add_parser(verbs: Verbs) -> None:
    """Add ``audit verify [--backup DIR]``."""
    p = verbs.add_parser("audit", help="the audit trail")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    v = actions.add_parser(
        "verify", help="check the audit hash chain; exit 1 naming the first bad row"
    )
    v.add_argument(
        "--backup",
        type=Path,
        metavar="DIR",
        help="also check that the trail still holds the head recorded in this backup",
    )
    v.set_defaults(handler=cmd_verify)
