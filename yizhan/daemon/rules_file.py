"""Reads the content rules (the ``[content]`` table of ``<data_dir>/rules.toml``), cached.

Kept apart from :mod:`yizhan.daemon.screening` so that the context can consult the rules when it
queues mail (第十七條) without depending on the gateway's check.
"""

from __future__ import annotations

import functools
import hashlib
import tomllib
from pathlib import Path

from yizhan.routing.content import (
    DEFAULT_CONTENT,
    ContentRules,
    ContentRulesError,
    content_from_dict,
)


def load_content_rules(path: Path) -> ContentRules:
    """The ``[content]`` table of the rules file at ``path``; defaults when there is none.

    Parsed again only when the file's modification time or size changes. Raises
    :class:`ContentRulesError` when the file or the table cannot be used.
    """
    try:
        stat = path.stat()
    except FileNotFoundError:
        return DEFAULT_CONTENT
    return _parse_rules_file(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _parse_rules_file(path: str, mtime_ns: int, size: int) -> ContentRules:
    # Keyed by the file's identity, so an edited file is read again; errors are not cached.
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ContentRulesError([f"{path} cannot be read: {exc}"]) from exc
    table = data.get("content", {})
    if not isinstance(table, dict):
        raise ContentRulesError(["[content] must be a table"])
    return content_from_dict(table)


def content_rules_version(path: Path) -> str:
    """A name for the rules file's current content ("default" without one).

    The gateway stores it with each accepted message; the processor judges a message again
    only when the rules have changed since, so a message is not scanned twice for nothing.
    """
    try:
        stat = path.stat()
    except FileNotFoundError:
        return "default"
    return _file_digest(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _file_digest(path: str, mtime_ns: int, size: int) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return "unreadable"
