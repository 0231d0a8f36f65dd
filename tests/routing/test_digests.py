"""Tests for yizhan.routing.digests: digest windows (第八條), one-click reply links (快捷操作)."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo

import pytest

from yizhan.routing.calendar import WorkCalendar
from yizhan.routing.commands import Verb, parse_command
from yizhan.routing.digests import (
    QUICK_COMMANDS,
    EarlierRun,
    allowed_windows,
    default_windows,
    digest_due,
    last_covered,
    mailto,
    reply_links,
    windows_for,
)

TZ = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar(tz=TZ)
T = dt.time


def at(day: str, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour, minute), tzinfo=TZ)


def test_clerks_get_four_windows_and_staff_two() -> None:
    # 第八條: 綜合人員 check the system four times a day, everyone else twice.
    assert default_windows({"clerk"}) == (T(8, 30), T(10, 30), T(13, 30), T(15, 30))
    assert default_windows({"staff", "seal_custodian"}) == (T(8, 30), T(13, 30))
    assert default_windows({"unit_head"}) == (T(8, 30), T(13, 30))


def test_windows_follow_the_setting() -> None:
    # SET digest off / on / times, as mailstore stores them; a garbled value is ignored.
    assert windows_for({"clerk"}, "off") == ()
    assert windows_for({"clerk"}, "on") == default_windows({"clerk"})
    assert windows_for({"staff"}, None) == (T(8, 30), T(13, 30))
    assert windows_for({"staff"}, "15:00,09:00") == (T(9), T(15))
    assert windows_for({"staff"}, "9 o'clock") == (T(8, 30), T(13, 30))


def test_allowed_windows_are_the_half_hours_of_the_working_day() -> None:
    windows = allowed_windows(CAL)
    assert windows[0] == T(8, 30) and windows[-1] == T(17, 0) and len(windows) == 18


@pytest.mark.parametrize(
    ("windows", "slot", "previous", "due"),
    [
        # A clerk at 10:30 on a working day; staff are not due then.
        (default_windows({"clerk"}), at("2026-09-22", 10, 30), at("2026-09-22", 10), True),
        (default_windows({"staff"}), at("2026-09-22", 10, 30), at("2026-09-22", 10), False),
        # Never on a holiday (國慶) or an ordinary Saturday, always on a make-up Sunday.
        (default_windows({"clerk"}), at("2026-10-05", 8, 30), None, False),
        (default_windows({"clerk"}), at("2026-09-19", 8, 30), None, False),
        (default_windows({"clerk"}), at("2026-09-20", 8, 30), None, True),
        # A daemon down from 08:00 to 11:00 sends one digest for the 08:30 and 10:30 windows.
        (default_windows({"staff"}), at("2026-09-22", 11), at("2026-09-22", 8), True),
        # Down since yesterday: only today's windows count.
        ((T(15, 30),), at("2026-09-22", 9), at("2026-09-21", 15), False),
        ((T(8, 30),), at("2026-09-22", 9), at("2026-09-21", 15), True),
        # Digests off.
        ((), at("2026-09-22", 8, 30), None, False),
    ],
)
def test_digest_due(
    windows: tuple[dt.time, ...], slot: dt.datetime, previous: dt.datetime | None, due: bool
) -> None:
    # Whether the run for a slot sends to someone with these windows.
    assert digest_due(windows, slot, previous, CAL) is due


def test_a_run_cut_short_covers_only_the_accounts_it_reached() -> None:
    # Newest first: the 08:30 run died after "m"; the 13:30 run of the day before finished.
    earlier = [
        EarlierRun(at("2026-09-22", 8, 30), finished=False, cursor="m"),
        EarlierRun(at("2026-09-21", 13, 30), finished=True, cursor="zz"),
    ]
    assert last_covered("a", earlier) == at("2026-09-22", 8, 30)
    assert last_covered("m", earlier) == at("2026-09-22", 8, 30)
    assert last_covered("x", earlier) == at("2026-09-21", 13, 30)
    # So at 09:00, "x" (windows 08:30 and 13:30) still gets the 08:30 digest; "a" does not.
    windows = default_windows({"staff"})
    assert digest_due(windows, at("2026-09-22", 9), last_covered("x", earlier), CAL)
    assert not digest_due(windows, at("2026-09-22", 9), last_covered("a", earlier), CAL)
    # A run that died in its first batch reached nobody.
    cut = [EarlierRun(at("2026-09-22", 8, 30), finished=False, cursor=None)]
    assert last_covered("a", cut) == at("2026-09-22", 8, 30) - dt.timedelta(seconds=1)
    assert last_covered("a", []) is None


def test_mailto_is_rfc_6068() -> None:
    # The address keeps its "+"; subject and body are UTF-8 percent-encoded, "+" and "&"
    # included, so that no client reads them as a space or a new field.
    url = mailto("r+wangfang-abc@oa.example", subject="Re: 關於A&B的請示 1+1", body="同意")
    assert url == (
        "mailto:r+wangfang-abc@oa.example"
        "?subject=Re%3A%20%E9%97%9C%E6%96%BCA%26B%E7%9A%84%E8%AB%8B%E7%A4%BA%201%2B1"
        "&body=%E5%90%8C%E6%84%8F"
    )
    parts = urlsplit(url)
    assert parts.scheme == "mailto" and unquote(parts.path) == "r+wangfang-abc@oa.example"
    fields = parse_qs(parts.query)
    assert fields == {"subject": ["Re: 關於A&B的請示 1+1"], "body": ["同意"]}


@pytest.mark.parametrize("language", ["zh_CN", "zh_TW", "en", None])
@pytest.mark.parametrize("action", sorted(QUICK_COMMANDS))
def test_each_link_writes_a_command_the_desk_reads(action: str, language: str | None) -> None:
    # One click, one Send: the body the link fills in is read as the intended command.
    links = reply_links(
        token="wangfang-abc", domain="oa.example", title="請示", action=action, language=language
    )
    assert [link.verb for link in links] == list(QUICK_COMMANDS[action])
    for link in links:
        body = parse_qs(urlsplit(link.url).query)["body"][0]
        assert parse_command(body).verb is link.verb
        assert link.url.startswith("mailto:r+wangfang-abc@oa.example?subject=Re%3A%20")


def test_approval_links_offer_approve_and_send_back() -> None:
    # The regulation's quick operations for an approver: 同意 and 退回 (with a reason).
    links = reply_links(
        token="t-x", domain="oa.example", title="t", action="approve", language="zh_TW"
    )
    assert [(link.verb, link.label) for link in links] == [
        (Verb.APPROVE, "同意"),
        (Verb.REJECT, "退回"),
    ]
    assert "body=%E9%80%80%E5%9B%9E%EF%BC%9A" in links[1].url  # 退回：
    assert (
        reply_links(token="t-x", domain="oa.example", title="t", action="none", language=None) == ()
    )
