"""The ``backup DIR`` and ``restore DIR`` verbs (第四條(二)3)."""

from __future__ import annotations

import argparse
from pathlib import Path

from yizhan.cli.base import Verbs, audit_console, audit_key, opened
from yizhan.mailstore.backup import backup, restore


def cmd_backup(args: argparse.Namespace) -> None:
    """Back up the database, raw mail, Maildirs and the GnuPG home (第四條(二)3)."""
    with opened() as ctx:
        counts = backup(ctx.engine, ctx.config.data_dir, ctx.config.signing.gnupg_home, args.dir)
        audit_console(ctx, "backup", str(args.dir), counts)
    print(f"backed up {sum(counts.values())} rows of {len(counts)} tables into {args.dir}")


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
    """Add ``backup DIR`` and ``restore DIR``."""
    p = verbs.add_parser("backup", help="write a complete backup into a new directory")
    p.add_argument("dir", type=Path)
    p.set_defaults(handler=cmd_backup)
    p = verbs.add_parser("restore", help="load a backup into a new, initialised instance")
    p.add_argument("dir", type=Path)
    p.set_defaults(handler=cmd_restore)
