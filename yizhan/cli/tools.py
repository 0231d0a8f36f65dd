"""The ``tool add|list|remove`` verbs: the files staff fetch with GET at cmd@."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from yizhan.cli.base import CONSOLE, CliError, Verbs, opened


def cmd_tool_add(args: argparse.Namespace) -> None:
    """Publish a file as a tool, as the IT department does by mail (TOOLS ADD at cmd@)."""
    from yizhan.daemon.desk.tools import publish_file

    try:
        data = args.file.read_bytes()
    except OSError as exc:
        raise CliError(f"{args.file} cannot be read: {exc.strerror}") from exc
    with opened() as ctx, ctx.sessions.begin() as session:
        result = publish_file(
            session,
            name=args.name,
            description=args.description,
            filename=args.file.name,
            data=data,
            actor=CONSOLE,
            now=ctx.clock(),
        )
        if isinstance(result, str):
            raise CliError(result.splitlines()[-1])  # the English line
    print(
        f"{result.name}: version {result.version}, {result.filename}, {result.size} bytes, "
        f"{result.content_type}, sha256 {result.sha256}"
    )


def cmd_tool_list(args: argparse.Namespace) -> None:
    """List the published tools."""
    from yizhan.mailstore.tools import published

    with opened() as ctx, ctx.sessions() as session:
        tools = published(session)
    rows: list[dict[str, Any]] = [
        {
            "name": t.name,
            "version": t.version,
            "filename": t.filename,
            "content_type": t.content_type,
            "size": t.size,
            "sha256": t.sha256,
            "published_by": t.published_by,
            "published_at": t.published_at.isoformat(),
            "description": t.description,
        }
        for t in tools
    ]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
    elif not rows:
        print("no tools; publish one with `yizhan tool add NAME FILE --description TEXT`")
    for row in [] if args.json else rows:
        print(
            f"{row['name']:<20} v{row['version']:<3} {row['size']:>10} {row['filename']} "
            f"({row['published_by']}, {row['published_at'][:10]})"
        )


def cmd_tool_remove(args: argparse.Namespace) -> None:
    """Take a tool down."""
    from yizhan.mailstore.tools import remove

    with opened() as ctx, ctx.sessions.begin() as session:
        removed = remove(session, args.name, actor=CONSOLE, now=ctx.clock())
        if removed is None:
            raise CliError(f"no published tool {args.name!r}; see `yizhan tool list`")
    print(f"{removed.name}: version {removed.version} removed")


def add_parser(verbs: Verbs) -> None:
    """Add ``tool add|list|remove``."""
    tool = verbs.add_parser("tool", help="tools staff fetch with GET at cmd@").add_subparsers(
        dest="tool_verb", metavar="ACTION", required=True
    )
    p = tool.add_parser("add", help="publish a file as a tool (again: a new version)")
    p.add_argument("name")
    p.add_argument("file", type=Path)
    p.add_argument("--description", required=True, help="what it is for, shown in TOOLS")
    p.set_defaults(handler=cmd_tool_add)
    p = tool.add_parser("list", help="published tools")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_tool_list)
    p = tool.add_parser("remove", help="take a tool down")
    p.add_argument("name")
    p.set_defaults(handler=cmd_tool_remove)
