"""The operator's sections of yizhan.toml: ``[backup]``, ``[retention]``, ``[metrics]``, ``[log]``,
``[rescan]``, ``[processing]``, ``[jobs]``.

Each key is documented in docs/configuration.md; a bad value stops the program naming the key.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yizhan.daemon.config_values import ConfigError, _int, _str, _time

#: The keys each section allows.
OPS_SECTIONS: dict[str, set[str]] = {
    "backup": {"directory", "time", "keep_daily", "keep_weekly", "keep_monthly"},
    "retention": {"time", "archived_days", "raw_days", "maildir_days"},
    "metrics": {"token"},
    "jobs": {"batch"},
    "log": {"format", "level"},
    "rescan": {"signatures", "interval_minutes"},
    "processing": {"workers"},
}

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True, kw_only=True)
class BackupConfig:
    """The nightly backup (第四條(二)3): where, when, and how many copies are kept."""

    #: Where nightly backups go, one directory each; None: no nightly backup.
    directory: Path | None = None
    #: The bureau's local time of the nightly backup.
    time: dt.time = dt.time(2, 30)
    #: The newest backup of each of the last N days, weeks (ISO) and months is kept.
    keep_daily: int = 7
    keep_weekly: int = 4
    keep_monthly: int = 12


@dataclass(frozen=True, kw_only=True)
class RetentionConfig:
    """How long what is finished is kept (第二十三條, 第四條); 0 keeps it for ever."""

    time: dt.time = dt.time(3, 30)
    #: Closed (archived) documents, counted from their closing.
    archived_days: int = 0
    #: Raw message files of processed inbound mail and sent outbound mail.
    raw_days: int = 0
    #: Copies delivered into the local Maildirs (when there is no relay host).
    maildir_days: int = 0


@dataclass(frozen=True, kw_only=True)
class MetricsConfig:
    """Prometheus ``/metrics`` on the admin port: for loopback, or anyone with the token."""

    token: str = ""


@dataclass(frozen=True, kw_only=True)
class LogConfig:
    """The daemon's log lines: plain text or one JSON object a line, and the least level."""

    format: str = "text"
    level: str = "INFO"


@dataclass(frozen=True, kw_only=True)
class RescanConfig:
    """Re-scanning stored attachments when clamd's signatures change (第十一條)."""

    #: clamd's database directory, read (names, sizes, times) to notice new signatures that
    #: its VERSION answer does not show (databases of one's own); None: VERSION alone.
    signatures: Path | None = Path("/var/lib/clamav")
    #: How often to ask clamd whether its signatures changed.
    interval_minutes: int = 60


@dataclass(frozen=True, kw_only=True)
class ProcessingConfig:
    """How accepted mail is processed (yizhan/daemon/workers.py)."""

    #: Processes that process accepted mail; 0: a thread of the daemon; None ("auto"): one on
    #: SQLite, one a core up to four on PostgreSQL.
    workers: int | None = None


@dataclass(frozen=True, kw_only=True)
class JobsConfig:
    """How the scheduled jobs share the database (yizhan/daemon/jobs/)."""

    #: The most a scheduled job does in one transaction: mails queued, and steps or people
    #: looked at. Each such transaction holds SQLite's one writer, and each mail is rendered
    #: and signed in it (20 ms, most of it gpg; 40 on a loaded host): 25 keeps it under a
    #: second, so that logins, the gateway and the processor get their turns in between, even
    #: with thousands of reminders due. A transaction costs little beside (a claim, a commit).
    batch: int = 25


def parse_jobs(table: dict[str, Any]) -> JobsConfig:
    return JobsConfig(batch=_int(table, "jobs.batch", 25, low=1, high=100_000))


def parse_processing(table: dict[str, Any]) -> ProcessingConfig:
    if table.get("workers", "auto") == "auto":
        return ProcessingConfig()
    return ProcessingConfig(workers=_int(table, "processing.workers", 0, low=0, high=64))


def parse_rescan(table: dict[str, Any]) -> RescanConfig:
    signatures = _str(table, "rescan.signatures", "/var/lib/clamav")
    return RescanConfig(
        signatures=Path(signatures) if signatures else None,
        interval_minutes=_int(table, "rescan.interval_minutes", 60, low=1, high=24 * 60),
    )


def parse_backup(table: dict[str, Any]) -> BackupConfig:
    directory = _str(table, "backup.directory", "")
    keep = {
        name: _int(table, f"backup.{name}", default, low=0, high=1000)
        for name, default in (("keep_daily", 7), ("keep_weekly", 4), ("keep_monthly", 12))
    }
    if directory and keep["keep_daily"] < 1:
        raise ConfigError("backup.keep_daily", "must be at least 1: last night's backup is kept")
    return BackupConfig(
        directory=Path(directory) if directory else None,
        time=_time(table, "backup.time", "02:30"),
        **keep,
    )


def parse_retention(table: dict[str, Any]) -> RetentionConfig:
    days = {
        name: _int(table, f"retention.{name}", 0, low=0)
        for name in ("archived_days", "raw_days", "maildir_days")
    }
    for name, value in days.items():
        if 0 < value < 30:
            raise ConfigError(f"retention.{name}", f"{value} is too short; 0 (keep) or 30 and up")
    return RetentionConfig(time=_time(table, "retention.time", "03:30"), **days)


def parse_metrics(table: dict[str, Any]) -> MetricsConfig:
    token = _str(table, "metrics.token", "")
    if token and len(token) < 16:
        raise ConfigError("metrics.token", "must be at least 16 characters (or empty)")
    return MetricsConfig(token=token)


def parse_log(table: dict[str, Any]) -> LogConfig:
    fmt = _str(table, "log.format", "text")
    if fmt not in LOG_FORMATS:
        raise ConfigError("log.format", f"{fmt!r}; allowed: {', '.join(LOG_FORMATS)}")
    level = _str(table, "log.level", "INFO").upper()
    if level not in LOG_LEVELS:
        raise ConfigError("log.level", f"{level!r}; allowed: {', '.join(LOG_LEVELS)}")
    return LogConfig(format=fmt, level=level)
