"""The ``report`` verbs: the monthly assessment (mine rules 二 考核) from the audit trail."""

from __future__ import annotations

import argparse
import datetime as dt
import json

from yizhan.cli.base import CliError, Verbs, opened
from yizhan.mailstore.assessment import assessment
from yizhan.routing.assessment import parse_month
from yizhan.templates.render import render_text


def cmd_assessment(args: argparse.Namespace) -> int:
    """Print the assessment of ``--month``: JSON with ``--json``, else the office's text."""
    try:
        year, month = parse_month(args.month)
        now = dt.datetime.fromisoformat(args.now) if args.now else None
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if now is not None and now.tzinfo is None:
        raise CliError(f"--now {args.now!r} needs a UTC offset, e.g. 2026-12-01T09:00+08:00")
    with opened() as ctx, ctx.sessions() as session:
        report = assessment(session, year, month, ctx.config.tzinfo, now or ctx.clock())
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        subject, body = render_text("assessment.txt", ctx.config.language, report=report)
        print(f"{subject}\n\n{body}", end="")
    return 0


def add_parser(verbs: Verbs) -> None:
    """Add ``report assessment --month YYYY-MM [--json]``."""
    p = verbs.add_parser("report", help="reports for the office")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = actions.add_parser(
        "assessment",
        help="the monthly assessment (考核): late steps, impersonation, viruses … with ids",
    )
    a.add_argument("--month", required=True, metavar="YYYY-MM", help="the month, e.g. 2026-11")
    a.add_argument("--json", action="store_true", help="print the data as JSON")
    a.add_argument(
        "--now",
        metavar="TIME",
        help="as it stood at TIME (ISO 8601 with offset); default: now",
    )
    a.set_defaults(handler=cmd_assessment)
