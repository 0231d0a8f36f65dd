"""Reads ``<data_dir>/rules.toml`` for the running daemon: the workflow rules in force and the
content rules, each read again when the file changes.

The admin page saves a new version of the file; the next document opened or acted on, by any
daemon that shares the data directory, follows it without a restart, and so does the next message
screened. The check is a ``stat`` per lookup. A workflow table broken by hand after start-up is
logged and the last good rules stay in force; at start-up a broken file stops the daemon
(``load_rules`` raises), as before. A broken ``[content]`` table makes the gateway answer 451.

Kept beside the context, not inside the screening, so that the context can consult the content
rules when it queues mail (第十七條) without depending on the gateway's check.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path

from yizhan.daemon.config import Config, ConfigError, load_rules
from yizhan.routing.content import (
    DEFAULT_CONTENT,
    ContentRules,
    ContentRulesError,
    content_from_dict,
)
from yizhan.routing.rules import DEFAULT_RULES, Flow, Rules

__all__ = ["LiveFlows", "content_rules_version", "live_rules", "load_content_rules"]

log = logging.getLogger("yizhan.rules")


class LiveFlows(Mapping[str, Flow]):
    """The flows of the rules file, read again whenever the file is replaced or edited."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._path: Path = config.rules_file
        self._lock = threading.Lock()
        self._key = self._stat()
        self._flows: Mapping[str, Flow] = load_rules(config).flows

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self._path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _current(self) -> Mapping[str, Flow]:
        key = self._stat()
        if key == self._key:
            return self._flows
        with self._lock:
            if key != self._key:
                try:
                    self._flows = load_rules(self._config).flows if key else DEFAULT_RULES.flows
                    log.info("rules file %s read again", self._path)
                except (ConfigError, OSError, UnicodeDecodeError) as exc:
                    log.error("rules file %s not used, the earlier rules stay: %s", self._path, exc)
                self._key = key
        return self._flows

    def __getitem__(self, kind: str) -> Flow:
        return self._current()[kind]

    def __iter__(self) -> Iterator[str]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())


def live_rules(config: Config) -> Rules:
    """The rules in force, following the rules file as it changes."""
    return Rules(flows=LiveFlows(config))


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
