"""The readers of config values: each takes a TOML table and a dotted key, checks the value's
type and range, and raises :class:`ConfigError` naming the key and what it accepts."""

from __future__ import annotations

import datetime as dt
from typing import Any


class ConfigError(Exception):
    """A configuration value is missing, of the wrong type or out of range."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"config key {key}: {problem}")
        self.key = key
        self.problem = problem


def _str(table: dict[str, Any], key: str, default: str) -> str:
    value = table.get(key.rsplit(".", 1)[1], default)
    if not isinstance(value, str):
        raise ConfigError(key, f"must be a string, not {type(value).__name__}")
    return value


def _int(
    table: dict[str, Any], key: str, default: int, *, low: int, high: int | None = None
) -> int:
    value = table.get(key.rsplit(".", 1)[1], default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(key, f"must be a whole number, not {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise ConfigError(key, f"{value} is out of range; allowed: {bound}")
    return value


def _float(table: dict[str, Any], key: str, default: float, *, low: float) -> float:
    value = table.get(key.rsplit(".", 1)[1], default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(key, f"must be a number, not {value!r}")
    if value < low:
        raise ConfigError(key, f"{value} is out of range; allowed: at least {low}")
    return float(value)


def _bool(table: dict[str, Any], key: str, default: bool) -> bool:
    value = table.get(key.rsplit(".", 1)[1], default)
    if not isinstance(value, bool):
        raise ConfigError(key, f"must be true or false, not {value!r}")
    return value


def _str_list(table: dict[str, Any], key: str) -> list[str]:
    value = table.get(key.rsplit(".", 1)[1], [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(key, 'must be a list of strings, e.g. ["127.0.0.1"]')
    return value


def _time(table: dict[str, Any], key: str, default: str) -> dt.time:
    value = _str(table, key, default)
    try:
        return dt.time.fromisoformat(value)
    except ValueError as exc:
        raise ConfigError(key, f"{value!r} is not a time of day such as {default}") from exc
