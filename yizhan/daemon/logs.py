"""The daemon's log lines: plain text, or one JSON object a line (``[log] format = "json"``) for
a log collector, each naming the Message-ID of the mail it is about.

Lines about a message name its Message-ID as their first argument (``"%s: accepted …"``), and
the code handling one message sets :data:`MESSAGE_ID`; either way the id lands in the
``message_id`` field, so that one mail's whole path can be pulled out of the log.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
from typing import Final

from yizhan.daemon.config_ops import LogConfig

#: The Message-ID of the mail the current task or thread is handling, if any.
MESSAGE_ID: Final[contextvars.ContextVar[str | None]] = contextvars.ContextVar(
    "yizhan_message_id", default=None
)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class MessageIdFilter(logging.Filter):
    """Puts the Message-ID a line is about into ``record.message_id`` (None when none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        found = MESSAGE_ID.get()
        args = record.args
        if found is None and isinstance(args, tuple) and args:
            first = args[0]
            if isinstance(first, str) and first.startswith("<") and first.endswith(">"):
                found = first if "@" in first else None
        record.message_id = found
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, message_id."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "message_id": getattr(record, "message_id", None),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(settings: LogConfig) -> None:
    """Send the daemon's log to standard error (the journal under systemd) as ``[log]`` says."""
    handler = logging.StreamHandler()
    handler.addFilter(MessageIdFilter())
    if settings.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level)
