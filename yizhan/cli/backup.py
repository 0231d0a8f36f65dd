"""The ``backup DIR``, ``backup verify DIR`` and ``restore DIR`` verbs (第四條(二)3)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from yizhan.cli.base import CliError, Verbs, audit_console, audit_key, opened
from yizhan.mailstore.backup import backup, restore
from yizhan.mailstore.backup_check import Progress, no_progress, verify_backup

_BAR = 30


def terminal_progress() -> Progress:
    """A progress bar on standard error when it is a terminal; else nothing is drawn."""
    if not sys.stderr.isatty():
        return no_progress

    def draw(done: int, total: int, label: str) -> None:
        filled = _BAR * done // max(total, 1)
        line = f"\r[{'#' * filled}{'.' * (_BAR - filled)}] {done}/{total} {label[:40]:<40}"
        sys.stderr.write(line)
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return draw


def cmd_backup(args: argparse.Namespace) -> int | None:
    """``backup DIR`` writes a backup; ``backup verify DIR`` checks one."""
    words: list[str] = args.words
    if words[0] == "verify" and len(words) == 2:
        return verify(Path(words[1]))
    if len(words) != 1:
        raise CliError("give one directory: yizhan backup DIR, or yizhan backup verify DIR")
    target = Path(words[0])
    with opened() as ctx:
        counts = backup(
            ctx.engine,
            ctx.config.data_dir,
            ctx.config.signing.gnupg_home,
            target,
            terminal_progress(),
        )
        audit_console(ctx, "backup", str(target), counts)
    print(f"backed up {sum(counts.values())} rows of {len(counts)} tables into {target}")
    return None


def verify(source: Path) -> int:
    """Check every file of a backup against its manifest; exit 1 naming what is wrong."""
    verdict = verify_backup(source, terminal_progress())
    if not verdict.ok:
        for problem in verdict.problems[:20]:
            print(f"{source}: {problem}")
        more = len(verdict.problems) - 20
        if more > 0:
            print(f"... and {more} more")
        print(f"backup {source} is NOT usable: {len(verdict.problems)} problem(s)", file=sys.stderr)
        return 1
    head = verdict.manifest.get("audit_head") or {}
    print(
        f"backup {source} OK: {verdict.files} files, {verdict.bytes} bytes match the manifest; "
        f"made {verdict.manifest.get('made_at')}, schema {verdict.manifest.get('alembic')}, "
        f"audit head seq {head.get('seq')}"
    )
    return 0


def cmd_restore(args: argparse.Namespace) -> None:
    """Restore a backup into this (new, initialised, empty) instance."""
    with opened() as ctx:
        counts = restore(
            ctx.engine,
            ctx.config.data_dir,
            ctx.config.signing.gnupg_home,
            args.dir,
            audit_key=audit_key(ctx),
        )
        audit_console(ctx, "restore", str(args.dir), counts)
    print(f"restored {sum(counts.values())} rows of {len(counts)} tables from {args.dir}")


def add_parser(verbs: Verbs) -> None:
    """Add ``backup DIR``, ``backup verify DIR`` and ``restore DIR``."""
    p = verbs.add_parser(
        "backup",
        help="write a complete backup into a new directory, or verify one",
        usage="yizhan backup DIR | yizhan backup verify DIR",
    )
    p.add_argument("words", nargs="+", metavar="DIR | verify DIR")
    p.set_defaults(handler=cmd_backup)
    p = verbs.add_parser("restore", help="load a backup into a new, initialised instance")
    p.add_argument("dir", type=Path)
    p.set_defaults(handler=cmd_restore)
