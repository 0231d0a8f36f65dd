"""The ``yizhan jobs run --now TIME`` verb: runs every scheduled job due at TIME once, then exits.

For catching up by hand and for tests. TIME is ISO 8601 with an offset
(``2026-12-01T09:00+08:00``); a time without one is refused, since it would be read in the
server's zone. The jobs decide with TIME; the mail they queue is queued at the wall clock and
delivered before the verb exits (with a daemon running, whichever claims it first sends it).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys

from sqlalchemy import inspect

from yizhan.cli.base import Verbs
from yizhan.daemon.config import ConfigError, load_config
from yizhan.daemon.context import Context
from yizhan.daemon.imap.service import filing_for
from yizhan.daemon.jobs.table import run_due_jobs
from yizhan.daemon.outbound import OutboundWorker
from yizhan.mailstore.db import SchemaMismatch, require_current_schema


class JobsError(Exception):
    """The verb cannot run; the message is the one line printed."""


def parse_now(text: str) -> dt.datetime:
    """An ISO 8601 time with an offset; :class:`JobsError` says what is wrong otherwise."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise JobsError(
            f"{text!r} is not an ISO 8601 time; write e.g. 2026-12-01T09:00+08:00"
        ) from exc
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise JobsError(f"{text!r} has no UTC offset; add one, e.g. {moment.isoformat()}+08:00")
    return moment


def add_parser(verbs: Verbs) -> None:
    """Add ``jobs run --now TIME`` to the ``yizhan`` verbs."""
    jobs = verbs.add_parser("jobs", help="scheduled jobs").add_subparsers(
        dest="jobs_verb", metavar="ACTION", required=True
    )
    p = jobs.add_parser("run", help="run every scheduled job due at TIME once, then exit")
    p.add_argument(
        "--now",
        metavar="TIME",
        help="ISO 8601 time with offset, e.g. 2026-12-01T09:00+08:00 (default: now)",
    )
    p.set_defaults(handler=cmd_jobs_run)


def cmd_jobs_run(args: argparse.Namespace) -> int:
    """Run the due jobs for ``args.now``, deliver what they queued, print what was done.

    Returns the exit status; on failure prints ``yizhan jobs: <reason>`` on one line.
    """
    try:
        report = jobs_run(args.now)
    except (JobsError, ConfigError) as exc:
        print(f"yizhan jobs: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        print(f"yizhan jobs: a job failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(report)
    return 0


def jobs_run(now_text: str | None) -> str:
    """Open the configured database, run the jobs due at ``now_text``, deliver; a summary."""
    now = parse_now(now_text) if now_text else dt.datetime.now(dt.UTC)
    ctx = Context.open(load_config())
    try:
        if not inspect(ctx.engine).has_table("alembic_version"):
            raise JobsError("the database is not initialised; run `yizhan init` first")
        try:
            require_current_schema(ctx.engine)
        except SchemaMismatch as exc:
            raise JobsError(str(exc)) from exc
        counts = run_due_jobs(ctx, now)
        worker = OutboundWorker(ctx, filing=filing_for(ctx))
        delivered = asyncio.run(worker.run_until_empty())
    finally:
        ctx.close()
    done = ", ".join(f"{name} {n}" for name, n in counts.items())
    return f"jobs run at {now.isoformat()}: {done}; mail queued {sum(counts.values())}, " + (
        f"delivery attempts {delivered}"
    )
