"""Tests for yizhan.daemon.config: defaults, validation and the messages an admin sees."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from yizhan.daemon.config import ConfigError, load_config, parse_config


def test_defaults_match_the_design() -> None:
    # A fresh checkout with no yizhan.toml runs on the embedded defaults of DESIGN.md.
    config = parse_config({})
    assert config.data_dir == Path("var")
    assert config.domain == "oa.example"
    assert config.timezone == "Asia/Shanghai"
    assert config.database_url == "sqlite:///var/yizhan.db"
    assert (config.smtp.listen.host, config.smtp.listen.port) == ("127.0.0.1", 2525)
    assert config.smtp.max_message_size == 26_214_400
    assert config.smtp.trusted_relays == ()
    assert config.smtp.policy_listen is None  # no Postfix policy service unless asked
    policy = parse_config({"smtp": {"policy_listen": "127.0.0.1:10040"}}).smtp.policy_listen
    assert policy is not None and (policy.host, policy.port) == ("127.0.0.1", 10040)
    assert str(config.admin_listen) == "127.0.0.1:8080"
    assert config.relay.host == "" and config.relay.port == 25
    assert config.addresses["fawen"] == ("fawen", "outgoing")


@pytest.mark.parametrize(
    ("raw", "key", "words"),
    [
        ({"smtp": {"listen": "nowhere"}}, "smtp.listen", "host:port"),
        ({"smtp": {"max_message_size": "big"}}, "smtp.max_message_size", "whole number"),
        ({"smtp": {"lisen": "127.0.0.1:25"}}, "smtp.lisen", "allowed: auth_timeout, hostname"),
        ({"yizhan": {"timezone": "Mars/Olympus"}}, "yizhan.timezone", "IANA"),
        ({"yizhan": {"domain": "no spaces.example"}}, "yizhan.domain", "domain name"),
        ({"database": {"url": "mysql://x/y"}}, "database.url", "sqlite"),
        ({"relay": {"port": 70000}}, "relay.port", "from 1 to 65535"),
        ({"smtp": {"trusted_relays": "10.0.0.1"}}, "smtp.trusted_relays", "list"),
        ({"smtp": {"policy_listen": "10040"}}, "smtp.policy_listen", "host:port"),
        ({"addresses": {"cmd": "fawen"}}, "addresses.cmd", "already used"),
        ({"mail": {}}, "mail", "unknown section"),
        ({"yizhan": {"secret": "short"}}, "yizhan.secret", "16"),
        ({"calendar": {"holidays": ["2027-02-30"]}}, "calendar.holidays", "date"),
        (
            {"calendar": {"holidays": ["2027-10-09"], "workdays": ["2027-10-09"]}},
            "calendar.workdays",
            "also listed",
        ),
        ({"calendar": {"day_start": "18:00"}}, "calendar.day_end", "after"),
        ({"accounts": {"unused_days": 0}}, "accounts.unused_days", "at least 1"),
    ],
)
def test_bad_values_name_the_key_and_what_is_allowed(
    raw: dict[str, dict[str, object]], key: str, words: str
) -> None:
    # An administrator with a typo at 2 a.m. needs the key and the allowed values, not a trace.
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    assert caught.value.key == key
    assert words in str(caught.value)


def test_config_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # $YIZHAN_CONFIG points at the file in production (systemd's Environment=).
    path = tmp_path / "y.toml"
    path.write_text('[yizhan]\ndomain = "oa.bureau.example"\n[smtp]\nlisten = "0.0.0.0:25"\n')
    monkeypatch.setenv("YIZHAN_CONFIG", str(path))
    config = load_config()
    assert config.domain == "oa.bureau.example"
    assert config.smtp.listen.port == 25
    assert config.smtp.hostname == "oa.bureau.example"


def test_broken_toml_is_reported(tmp_path: Path) -> None:
    # A file that is not TOML at all says so, with the file name.
    path = tmp_path / "y.toml"
    path.write_text("[yizhan\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_calendar_section_extends_the_holiday_table(tmp_path: Path) -> None:
    # For a year chinese-calendar does not know yet, the admin lists the State Council's
    # holidays and make-up working days; TOML dates and strings are both taken.
    path = tmp_path / "yizhan.toml"
    path.write_text(
        '[calendar]\nholidays = [2031-10-01, "2031-10-02"]\nworkdays = [2031-09-28]\n',
        encoding="utf-8",
    )
    calendar = load_config(path).work_calendar()
    assert not calendar.is_working_day(dt.date(2031, 10, 1))  # a Wednesday, listed off
    assert not calendar.is_working_day(dt.date(2031, 10, 2))
    assert calendar.is_working_day(dt.date(2031, 9, 28))  # a Sunday, listed as worked
    assert calendar.is_working_day(dt.date(2031, 10, 3))  # a Friday, not listed
