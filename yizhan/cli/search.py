"""The ``yizhan search reindex [--all]`` verb: fills the search index after an upgrade.

Documents made before the index existed (migration 0008) are not in it; searches index them a
batch at a time on the way, and this verb does all of them at once. ``--all`` indexes every
document again (after the extractors learned a new file type, say). Each batch is its own
transaction, so a large bureau can be indexed while the daemon runs.
"""

from __future__ import annotations

import argparse
import sys

from sqlalchemy import select

from yizhan.cli.base import Verbs
from yizhan.daemon.config import ConfigError, load_config
from yizhan.daemon.context import Context
from yizhan.daemon.desk import Desk
from yizhan.mailstore.models import Document

__all__ = ["BATCH", "add_parser", "cmd_search", "reindex"]

#: Documents indexed per transaction.
BATCH = 200


def add_parser(verbs: Verbs) -> None:
    """Add ``search reindex`` to the ``yizhan`` verbs."""
    search = verbs.add_parser("search", help="the document search index").add_subparsers(
        dest="search_verb", metavar="ACTION", required=True
    )
    p = search.add_parser("reindex", help="index the documents not yet in the search index")
    p.add_argument("--all", action="store_true", help="index every document again")
    p.set_defaults(handler=cmd_search)


def cmd_search(args: argparse.Namespace) -> int:
    """Run ``search reindex``; prints ``yizhan search: <reason>`` and returns 1 on failure."""
    try:
        ctx = Context.open(load_config())
    except ConfigError as exc:
        print(f"yizhan search: {exc}", file=sys.stderr)
        return 1
    try:
        print(f"indexed {reindex(ctx, everything=args.all)} document(s)")
        return 0
    finally:
        ctx.close()


def reindex(ctx: Context, *, everything: bool = False) -> int:
    """Index the documents missing from the index (every one with ``everything``)."""
    finder = Desk(ctx).finder
    count = 0
    if not everything:
        while True:
            with ctx.sessions.begin() as session:
                done = finder.index_missing(session, BATCH)
            count += done
            if done < BATCH:
                return count
    last = 0
    while True:
        with ctx.sessions.begin() as session:
            documents = list(
                session.scalars(
                    select(Document).where(Document.id > last).order_by(Document.id).limit(BATCH)
                )
            )
            for document in documents:
                finder.index(session, document, reread=True)
        if not documents:
            return count
        count += len(documents)
        last = documents[-1].id
