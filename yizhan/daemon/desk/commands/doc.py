"""Writes the cmd@ section of docs/modules.md from the command registry.

``python -m yizhan.daemon.desk.commands.doc`` prints the section; ``--write FILE`` puts it in
place of the section in FILE (docs/modules.md, where it is the last section). A test checks
that docs/modules.md says what the registry says, so a command cannot be left out.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from yizhan.daemon.desk.commands import COMMANDS

__all__ = ["HEADING", "cmd_section", "main", "with_cmd_section"]

#: The heading the section starts with; it runs to the end of the page.
HEADING: Final = "## cmd@ — 個人命令 Personal commands (第九條)"

_INTRO: Final = (
    "所有命令都發到 `cmd@oa.example`，寫在主題或正文第一行。"
    "每個命令下面先給中文寫法，再給英文寫法。\n"
    "All commands go to `cmd@oa.example`, in the subject or on the first line of the body. "
    "Each is\nshown in Chinese, then in English."
)


def cmd_section() -> str:
    """The cmd@ section of docs/modules.md: the heading, the introduction, each command's doc."""
    return "\n\n".join([HEADING, _INTRO, *(c.doc for c in COMMANDS)]) + "\n"


def with_cmd_section(page: str) -> str:
    """``page`` (docs/modules.md) with its cmd@ section replaced by :func:`cmd_section`."""
    start = page.find(HEADING)
    if start == -1:
        raise ValueError(f"no {HEADING!r} in the page")
    return page[:start] + cmd_section()


def main(argv: Sequence[str] | None = None) -> int:
    """Print the section, or write it into the page given."""
    parser = argparse.ArgumentParser(prog="python -m yizhan.daemon.desk.commands.doc")
    parser.add_argument("--write", type=Path, help="the page to update (docs/modules.md)")
    args = parser.parse_args(argv)
    if args.write is None:
        sys.stdout.write(cmd_section())
        return 0
    page = args.write.read_text(encoding="utf-8")
    args.write.write_text(with_cmd_section(page), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
