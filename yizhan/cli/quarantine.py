"""The ``yizhan quarantine list|release ID|delete ID`` verbs: IT decides on held mail.

A released message is accepted again exactly as it came (same bytes, envelope and sender),
through the durable inbound path, and processed like any other; a deleted one's bytes are
gone for good (classified material must not stay on the system, 第十四條). Both are written
to the audit trail under the account given with ``--by`` (an active member of the IT
department), else as the console.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import unicodedata
from collections.abc import Sequence

from sqlalchemy import inspect

from yizhan.cli.base import Verbs
from yizhan.daemon.config import ConfigError, load_config
from yizhan.daemon.context import Context
from yizhan.daemon.screening.quarantine import delete_entry, quarantine_of, release_entry
from yizhan.mailstore.directory import load_directory
from yizhan.mailstore.inbound import StoreFailed
from yizhan.mailstore.quarantine import QuarantineEntry, QuarantineError
from yizhan.routing.duties import Duty, duties_in

__all__ = [
    "CONSOLE",
    "add_parser",
    "cmd_quarantine",
    "format_entries",
]

#: The actor recorded when no ``--by`` is given (as for other console verbs).
CONSOLE = "console"


def add_parser(verbs: Verbs) -> None:
    """Add ``quarantine list|release|delete`` to the ``yizhan`` verbs."""
    quarantine = verbs.add_parser(
        "quarantine", help="mail refused after acceptance, held for the IT department"
    ).add_subparsers(dest="quarantine_verb", metavar="ACTION", required=True)
    p = quarantine.add_parser("list", help="held messages (with --all, decided ones too)")
    p.add_argument("--all", action="store_true", help="also released and deleted ones")
    p.add_argument("--json", action="store_true", help="a JSON list instead of a table")
    p.set_defaults(handler=cmd_quarantine)
    for verb, text in (
        ("release", "accept a held message again; it is processed like any other"),
        ("delete", "delete a held message's bytes for good (the record stays)"),
    ):
        p = quarantine.add_parser(verb, help=text)
        p.add_argument("id", metavar="ID", help="the id `quarantine list` shows")
        p.add_argument("--by", metavar="ACCOUNT", help="the IT staff member deciding")
        p.set_defaults(handler=cmd_quarantine)


def cmd_quarantine(args: argparse.Namespace) -> int:
    """Run one quarantine verb; prints ``yizhan quarantine: <reason>`` and returns 1 on failure."""
    try:
        config = load_config()
        ctx = Context.open(config)
        try:
            if args.quarantine_verb == "list":
                entries = quarantine_of(config).entries(include_done=args.all)
                print(format_entries(entries, config.tzinfo, as_json=args.json))
                return 0
            if not inspect(ctx.engine).has_table("alembic_version"):
                raise QuarantineError("the database is not initialised; run `yizhan init`")
            by = _decider(ctx, args.by)
            if args.quarantine_verb == "release":
                entry = release_entry(ctx, args.id, by=by)
                print(f"released {entry.id} as inbound #{entry.released_as}")
            else:
                entry = delete_entry(ctx, args.id, by=by)
                print(f"deleted {entry.id}")
            return 0
        finally:
            ctx.close()
    except (QuarantineError, ConfigError, StoreFailed) as exc:
        print(f"yizhan quarantine: {exc}", file=sys.stderr)
        return 1


def format_entries(entries: Sequence[QuarantineEntry], tz: dt.tzinfo, *, as_json: bool) -> str:
    """The listing: a table for people, or JSON."""
    if as_json:
        return json.dumps([e.to_json() for e in entries], ensure_ascii=False, indent=1)
    if not entries:
        return "the quarantine is empty"
    rows = [("ID", "HELD", "RULE", "FROM", "TO", "STATE", "REASON")]
    for e in entries:
        rows.append(
            (
                e.id,
                f"{e.held_at.astimezone(tz):%Y-%m-%d %H:%M}",
                e.rule,
                e.sender_account or e.mail_from or "<>",
                ", ".join(e.rcpt_tos),
                e.state if e.state == "held" else f"{e.state} by {e.decided_by}",
                _cut(e.reason_zh, 40),
            )
        )
    widths = [max(_width(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [c + " " * (w - _width(c)) for c, w in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]))
    return "\n".join(lines)


def _decider(ctx: Context, account: str | None) -> str:
    if not account:
        return CONSOLE
    with ctx.sessions() as session:
        directory = load_directory(session)
    if Duty.IT not in duties_in(directory, account.lower()):
        raise QuarantineError(f"{account} is not an active member of the IT department")
    return account.lower()


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _cut(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
