"""Tests for yizhan.routing.delegation: who acts for a person who is away (第九條)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yizhan.routing.delegation import (
    MAX_DELEGATION_DAYS,
    Delegation,
    active,
    check_new_delegation,
    parse_until,
    resolve,
)
from yizhan.routing.directory import Directory, PersonInfo, UnitInfo

TZ = ZoneInfo("Asia/Shanghai")
# Wednesday 2026-09-16, 10:00 in Shenyang.
NOW = dt.datetime(2026, 9, 16, 10, 0, tzinfo=TZ)


def _person(account: str, name: str, unit: str, state: str = "active") -> PersonInfo:
    return PersonInfo(
        account=account,
        name=name,
        unit=unit,
        roles=frozenset({"staff"}),
        email=f"{account}@bureau.example",
        state=state,
    )


DIRECTORY = Directory.build(
    [
        UnitInfo(id="bureau", name="遼寧出入境檢驗檢疫局", kind="bureau"),
        UnitInfo(id="office", name="辦公室", kind="office", parent="bureau"),
        UnitInfo(id="hr", name="人事處", kind="hr", parent="bureau"),
    ],
    [
        _person("lijun", "李軍", "bureau"),
        _person("wangfang", "王芳", "office"),
        _person("wangfang2", "王芳", "hr"),
        _person("liuyang", "劉洋", "office"),
        _person("gaofeng", "高峰", "hr"),
        _person("helei", "何磊", "hr", state="revoked"),
        _person("xuna", "許娜", "hr", state="suspended"),
    ],
)


def _d(delegator: str, delegate: str, *, days: int = 5, start_days: int = -1) -> Delegation:
    return Delegation(
        delegator=delegator,
        delegate=delegate,
        starts_at=NOW + dt.timedelta(days=start_days),
        until=NOW + dt.timedelta(days=days),
    )


def _check(
    ref: str, until: str = "2026-10-09", delegations: list[Delegation] | None = None
) -> Delegation | str:
    return check_new_delegation("lijun", ref, until, DIRECTORY, delegations or [], NOW, TZ)


# --- Who acts -------------------------------------------------------------------------------


def test_no_delegation_acts_for_self() -> None:
    # Nobody is away: the person asked acts, on nobody's behalf.
    assert resolve("lijun", [], NOW) == ("lijun", None)


def test_single_delegation() -> None:
    # 李軍 is away and named 劉洋: steps for 李軍 go to 劉洋, marked as on 李軍's behalf.
    assert resolve("lijun", [_d("lijun", "liuyang")], NOW) == ("liuyang", "lijun")


def test_chain_is_followed_to_its_end() -> None:
    # 李軍 → 劉洋, and 劉洋 is away too → 高峰: 高峰 acts, still on behalf of 李軍.
    delegations = [_d("lijun", "liuyang"), _d("liuyang", "gaofeng")]
    assert resolve("lijun", delegations, NOW) == ("gaofeng", "lijun")
    assert resolve("liuyang", delegations, NOW) == ("gaofeng", "liuyang")


def test_expired_and_future_delegations_do_not_count() -> None:
    # A delegation that ended yesterday, or starts tomorrow, does not hold today.
    ended = _d("lijun", "liuyang", start_days=-10, days=-1)
    later = _d("lijun", "gaofeng", start_days=1, days=5)
    assert resolve("lijun", [ended, later], NOW) == ("lijun", None)
    assert active([ended, later], NOW) == {}


def test_bounds_are_included() -> None:
    # A delegation holds from its first instant to its last.
    item = _d("lijun", "liuyang", start_days=0, days=0)
    assert item.is_active(NOW)
    assert not item.is_active(NOW + dt.timedelta(microseconds=1))


def test_latest_delegation_wins() -> None:
    # A second DELEGATE from the same person replaces the first rather than being refused.
    first = _d("lijun", "liuyang", start_days=-3)
    second = _d("lijun", "gaofeng", start_days=-1)
    assert active([second, first], NOW) == {"lijun": second}
    assert resolve("lijun", [first, second], NOW) == ("gaofeng", "lijun")


def test_loop_stops_before_repeating() -> None:
    # A loop can only come from two instances accepting crossing DELEGATEs at once; work must
    # still land on someone rather than spin.
    delegations = [_d("lijun", "liuyang"), _d("liuyang", "lijun")]
    assert resolve("lijun", delegations, NOW) == ("liuyang", "lijun")


def test_inactive_delegate_ends_the_chain_with_a_directory() -> None:
    # 劉洋 delegated to 何磊, whose account was since revoked: with the directory at hand, the
    # work stays with 劉洋 (acting for 李軍) instead of going to a dead account.
    delegations = [_d("lijun", "liuyang"), _d("liuyang", "helei")]
    assert resolve("lijun", delegations, NOW) == ("helei", "lijun")
    assert resolve("lijun", delegations, NOW, directory=DIRECTORY) == ("liuyang", "lijun")


@given(st.lists(st.tuples(st.sampled_from("abcdef"), st.sampled_from("abcdef")), max_size=12))
def test_resolve_always_ends(edges: list[tuple[str, str]]) -> None:
    # Whatever delegations exist, even loops, resolving ends, and on_behalf_of is set exactly
    # when someone else acts.
    delegations = [_d(a, b) for a, b in edges if a != b]
    acting, behalf = resolve("a", delegations, NOW)
    assert (behalf is None) == (acting == "a")


# --- A new delegation -----------------------------------------------------------------------


def test_delegate_by_account_name_or_address() -> None:
    # The delegate may be written as an account, a real name in either script, or an address.
    for ref in (
        "liuyang",
        "LiuYang",
        "劉洋",
        "刘洋",
        "liuyang@bureau.example",
        "劉洋 <liuyang@bureau.example>",
    ):
        result = _check(ref)
        assert isinstance(result, Delegation), (ref, result)
        assert result.delegate == "liuyang"
        assert result.delegator == "lijun"
        assert result.starts_at == NOW


def test_oa_address_with_domain() -> None:
    # account@<OA domain> names the account, when the caller passes the domain.
    result = check_new_delegation(
        "lijun", "liuyang@oa.example", "10-09", DIRECTORY, [], NOW, TZ, domain="oa.example"
    )
    assert isinstance(result, Delegation) and result.delegate == "liuyang"
    # Without the domain Yizhan cannot tell its own addresses from anyone else's.
    assert isinstance(
        check_new_delegation("lijun", "liuyang@oa.example", "10-09", DIRECTORY, [], NOW, TZ), str
    )


def test_ends_at_end_of_day_in_tz() -> None:
    # "until 2026-10-09" covers the whole of 9 October in the bureau's zone.
    result = _check("liuyang", "2026-10-09")
    assert isinstance(result, Delegation)
    assert result.until == dt.datetime(2026, 10, 9, 23, 59, 59, 999999, tzinfo=TZ)
    assert result.until.date() == dt.date(2026, 10, 9)


def test_unknown_name_is_refused_with_what_to_send() -> None:
    # A name nobody has: the answer, Chinese then English, says what to write instead.
    result = _check("張三")
    assert isinstance(result, str)
    assert result.index("找不到") < result.index("No one")
    assert "張三" in result and "DELEGATE" in result


def test_ambiguous_name_lists_people_and_asks_for_account() -> None:
    # Two people are called 王芳: list both with their units, and ask for the account.
    result = _check("王芳")
    assert isinstance(result, str)
    assert "（wangfang，辦公室）" in result and "（wangfang2，人事處）" in result
    assert "帳號" in result and "account" in result
    assert isinstance(_check("wangfang2"), Delegation)


def test_self_delegation_is_refused() -> None:
    # Delegating to oneself would route work back to an absent person.
    result = _check("李軍")
    assert isinstance(result, str) and "自己" in result and "yourself" in result


@pytest.mark.parametrize(("ref", "state"), [("helei", "revoked"), ("許娜", "suspended")])
def test_inactive_delegate_is_refused(ref: str, state: str) -> None:
    # A revoked or suspended account cannot log in to act.
    result = _check(ref)
    assert isinstance(result, str) and state in result and "停用" in result


def test_past_end_date_is_refused() -> None:
    # An end date before today is a typo for some other day.
    result = _check("liuyang", "2026-09-15")
    assert isinstance(result, str) and "2026-09-15" in result and "passed" in result


def test_today_is_accepted() -> None:
    # Away for the afternoon: the delegation ends tonight.
    result = _check("liuyang", "今天")
    assert isinstance(result, Delegation) and result.until.date() == NOW.date()


def test_too_far_ahead_is_refused() -> None:
    # More than MAX_DELEGATION_DAYS ahead is a change of post, not an absence.
    last = NOW.date() + dt.timedelta(days=MAX_DELEGATION_DAYS)
    assert isinstance(_check("liuyang", last.isoformat()), Delegation)
    result = _check("liuyang", (last + dt.timedelta(days=1)).isoformat())
    assert isinstance(result, str) and str(MAX_DELEGATION_DAYS) in result


def test_unreadable_date_is_refused_with_examples() -> None:
    # A date Yizhan cannot read: show forms it can.
    result = _check("liuyang", "國慶後")
    assert isinstance(result, str) and "國慶後" in result and "2026-12-01" in result


def test_loop_is_refused() -> None:
    # 劉洋 has delegated to 高峰, who has delegated to 李軍: 李軍 → 劉洋 would close a loop.
    delegations = [_d("liuyang", "gaofeng"), _d("gaofeng", "lijun")]
    result = _check("liuyang", delegations=delegations)
    assert isinstance(result, str)
    assert "lijun→liuyang→gaofeng→lijun" in result and "REVOKE" in result


def test_chain_without_loop_is_accepted() -> None:
    # 劉洋 is away too, delegating to 高峰: 李軍 may still name 劉洋; the chain reaches 高峰.
    delegations = [_d("liuyang", "gaofeng")]
    result = _check("liuyang", delegations=delegations)
    assert isinstance(result, Delegation)
    assert resolve("lijun", [*delegations, result], NOW) == ("gaofeng", "lijun")


def test_expired_reverse_delegation_is_no_loop() -> None:
    # 劉洋 once delegated to 李軍, but that ended; it does not block the new one.
    delegations = [replace(_d("liuyang", "lijun"), until=NOW - dt.timedelta(days=1))]
    assert isinstance(_check("liuyang", delegations=delegations), Delegation)


def test_naive_now_is_an_error() -> None:
    # A naive time is a programming error: it would be read in the server's zone.
    with pytest.raises(ValueError, match="aware"):
        parse_until("2026-12-01", dt.datetime(2026, 9, 16, 10), TZ)


# --- Dates ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("2026-12-01", dt.date(2026, 12, 1)),
        ("2026-12-1", dt.date(2026, 12, 1)),
        ("2026/12/1", dt.date(2026, 12, 1)),
        ("2026.12.01", dt.date(2026, 12, 1)),
        ("20261201", dt.date(2026, 12, 1)),
        ("2026年12月1日", dt.date(2026, 12, 1)),
        ("2026年12月1号", dt.date(2026, 12, 1)),
        ("２０２６年１２月１日", dt.date(2026, 12, 1)),
        ("12月1日", dt.date(2026, 12, 1)),
        ("12-01", dt.date(2026, 12, 1)),
        ("12/1", dt.date(2026, 12, 1)),
        # A month and day already past this year mean next year.
        ("3月1日", dt.date(2027, 3, 1)),
        ("09-15", dt.date(2027, 9, 15)),
        # Today is not past.
        ("9月16日", dt.date(2026, 9, 16)),
        ("今天", dt.date(2026, 9, 16)),
        ("明天", dt.date(2026, 9, 17)),
        ("tomorrow", dt.date(2026, 9, 17)),
        ("後天", dt.date(2026, 9, 18)),
        # NOW is a Wednesday.
        ("周五", dt.date(2026, 9, 18)),
        ("星期三", dt.date(2026, 9, 16)),
        ("下周五", dt.date(2026, 9, 25)),
        ("下週一", dt.date(2026, 9, 21)),
        ("下星期日", dt.date(2026, 9, 27)),
        ("Friday", dt.date(2026, 9, 18)),
        ("next friday", dt.date(2026, 9, 25)),
        ("2026-12-01。", dt.date(2026, 12, 1)),
    ],
)
def test_parse_until_forms(text: str, day: dt.date) -> None:
    # Every form the DELEGATE help text promises, and the ones people type anyway.
    until = parse_until(text, NOW, TZ)
    assert until == dt.datetime.combine(day, dt.time.max, tzinfo=TZ)


@pytest.mark.parametrize("text", ["", "soon", "2026-02-30", "13月1日", "2026-12", "周八", "下周"])
def test_parse_until_rejects(text: str) -> None:
    # Not a day, or a day that does not exist.
    assert parse_until(text, NOW, TZ) is None


def test_parse_until_uses_the_bureau_date() -> None:
    # 23:30 UTC on 15 September is already 16 September in Shenyang: "今天" is the 16th.
    now = dt.datetime(2026, 9, 15, 23, 30, tzinfo=dt.UTC)
    until = parse_until("今天", now, TZ)
    assert until is not None and until.date() == dt.date(2026, 9, 16)


def test_feb_29_without_year() -> None:
    # 2月29日 in 2026 does not exist this year or next: no such day.
    assert parse_until("2月29日", NOW, TZ) is None
