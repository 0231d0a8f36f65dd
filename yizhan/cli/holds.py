"""The ``doc hold ID`` verb: a legal hold that the retention job respects (第二十三條, 第四條)."""

from __future__ import annotations

import argparse

from yizhan.cli.base import CONSOLE, CliError, opened
from yizhan.mailstore.documents import find_document
from yizhan.mailstore.holds import place_hold, release_hold


def cmd_doc_hold(args: argparse.Namespace) -> None:
    """Place (or with ``--release`` lift) a legal hold on a document."""
    with opened() as ctx, ctx.sessions.begin() as session:
        document = find_document(session, args.ref)
        if document is None:
            raise CliError(f"no document {args.ref!r} (give its id or its number)")
        now = ctx.clock()
        if args.release:
            if not release_hold(session, document, by=CONSOLE, now=now):
                raise CliError(f"document #{document.id} is not under a legal hold")
            print(f"document #{document.id}: legal hold released; retention applies again")
            return
        if not args.reason.strip():
            raise CliError("give the reason for the hold: --reason TEXT")
        if not place_hold(session, document, by=CONSOLE, reason=args.reason.strip(), now=now):
            print(f"document #{document.id} is already under a legal hold")
            return
        print(f"document #{document.id}: under a legal hold; retention will not delete it")


def add_hold_parser(doc: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``doc hold ID [--reason TEXT] [--release]``."""
    p = doc.add_parser("hold", help="keep a document whatever the retention (a legal hold)")
    p.add_argument("ref", metavar="ID|NUMBER")
    p.add_argument("--reason", default="legal hold", help="why it is held (audited)")
    p.add_argument("--release", action="store_true", help="lift the hold")
    p.set_defaults(handler=cmd_doc_hold)
