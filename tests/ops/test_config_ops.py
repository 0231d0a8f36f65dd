"""The operator's config sections refuse bad values naming the key, and fill in the defaults."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from yizhan.daemon.config import ConfigError, parse_config


def parsed(**sections: dict[str, Any]) -> Any:
    return parse_config({"yizhan": {"secret": "s" * 20}, **sections})


def test_defaults_switch_nothing_on() -> None:
    config = parsed()
    assert config.backup.directory is None and config.backup.time == dt.time(2, 30)
    assert (config.backup.keep_daily, config.backup.keep_weekly) == (7, 4)
    assert config.retention.archived_days == 0 and config.retention.raw_days == 0
    assert config.metrics.token == "" and config.log.format == "text"
    assert config.rescan.signatures == Path("/var/lib/clamav")


@pytest.mark.parametrize(
    ("sections", "key"),
    [
        ({"backup": {"time": "25:00"}}, "backup.time"),
        ({"backup": {"directory": "/b", "keep_daily": 0}}, "backup.keep_daily"),
        ({"backup": {"keep_monthly": -1}}, "backup.keep_monthly"),
        ({"backup": {"where": "/b"}}, "backup.where"),
        ({"retention": {"archived_days": 7}}, "retention.archived_days"),
        ({"retention": {"raw_days": "30"}}, "retention.raw_days"),
        ({"metrics": {"token": "short"}}, "metrics.token"),
        ({"log": {"format": "xml"}}, "log.format"),
        ({"log": {"level": "LOUD"}}, "log.level"),
        ({"rescan": {"interval_minutes": 0}}, "rescan.interval_minutes"),
    ],
)
def test_bad_values_name_the_key(sections: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parsed(**sections)
    assert caught.value.key == key


def test_values_are_taken() -> None:
    config = parsed(
        backup={"directory": "/srv/b", "time": "01:15", "keep_weekly": 0},
        retention={"archived_days": 3650, "maildir_days": 365},
        log={"format": "json", "level": "warning"},
    )
    assert config.backup.directory == Path("/srv/b") and config.backup.time == dt.time(1, 15)
    assert config.backup.keep_weekly == 0
    assert config.retention.archived_days == 3650 and config.retention.maildir_days == 365
    assert config.log.format == "json" and config.log.level == "WARNING"
