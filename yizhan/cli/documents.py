"""The ``doc show`` and ``queue`` verbs: where documents and mail stand."""

from __future__ import annotations

import argparse
import json

from yizhan.cli.base import CliError, Verbs, opened
from yizhan.cli.holds import add_hold_parser
from yizhan.mailstore.directory import load_directory
from yizhan.mailstore.documents import find_document, load_state
from yizhan.mailstore.pending import set_aside
from yizhan.templates.presentation import document_json, document_summary


def cmd_doc_show(args: argparse.Namespace) -> None:
    """Show a document: its state, number, steps and trail."""
    with opened() as ctx, ctx.sessions() as session:
        document = find_document(session, args.ref)
        if document is None:
            raise CliError(f"no document {args.ref!r} (give its id or its number)")
        state = load_state(session, document)
        directory = load_directory(session)
    if args.json:
        print(json.dumps(document_json(state), ensure_ascii=False, indent=1))
    else:
        print(document_summary(state, directory, ctx.config.tzinfo))


def cmd_queue(args: argparse.Namespace) -> None:
    """Print the outbound queue, and inbound mail that could not be processed."""
    from yizhan.mailstore.outbox import format_queue, queue_listing

    with opened() as ctx, ctx.sessions() as session:
        print(format_queue(queue_listing(session), ctx.config.tzinfo))
        failed = set_aside(session)
    if failed:
        print(f"\n{len(failed)} inbound message(s) set aside after failing to process:")
    for row in failed:
        print(
            f"  #{row.id} {row.message_id or '-'} from <{row.mail_from}> "
            f"in {row.path}: {row.reason}"
        )


def add_parser(verbs: Verbs) -> None:
    """Add ``doc show``, ``doc hold`` and ``queue``."""
    doc = verbs.add_parser("doc", help="documents").add_subparsers(
        dest="doc_verb", metavar="ACTION", required=True
    )
    p = doc.add_parser("show", help="show a document by id or number")
    p.add_argument("ref", metavar="ID|NUMBER")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_doc_show)
    add_hold_parser(doc)
    p = verbs.add_parser("queue", help="list outbound mail that waits, and why")
    p.set_defaults(handler=cmd_queue)
