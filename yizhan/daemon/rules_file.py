"""Keeps the workflow rules in force current: reads ``<data_dir>/rules.toml`` again when it changes.

The admin page saves a new version of the file; the next document opened or acted on, by any
daemon that shares the data directory, follows it without a restart (as the content rules do,
``daemon.content_rules``). The check is a ``stat`` per lookup. A file broken by hand after
start-up is logged and the last good rules stay in force; at start-up a broken file stops the
daemon (``load_rules`` raises), as before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

from yizhan.daemon.config import Config, ConfigError, load_rules
from yizhan.routing.rules import DEFAULT_RULES, Flow, Rules

__all__ = ["LiveFlows", "live_rules"]

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
