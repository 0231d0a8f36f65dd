"""Tests for the pure rules of the modules: bulletins, leave and change requests."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

from tests.routing.test_rules import DIRECTORY
from yizhan.routing import bulletins
from yizhan.routing.bulletins import audience, bulletin_facts, parse_expiry, parse_scope
from yizhan.routing.calendar import WorkCalendar
from yizhan.routing.changes import Change, is_clerk_change, parse_change
from yizhan.routing.closing import CLOSE_EFFECTS
from yizhan.routing.documents import DocumentState
from yizhan.routing.drafts import parse_draft
from yizhan.routing.leave import (
    LeaveRecord,
    LeaveRequest,
    annual_entitlement,
    balance,
    check_request,
    parse_hr_set,
    years_of_service,
)
from yizhan.routing.rules import CLOSE_EFFECT_NAMES

CAL = WorkCalendar(tz=ZoneInfo("Asia/Shanghai"))
TODAY = dt.date(2026, 11, 25)


def test_close_effect_names_match_their_builders() -> None:
    # rules.py names the effects a flow may end with; effects.py builds them: keep them equal.
    assert set(CLOSE_EFFECTS) == CLOSE_EFFECT_NAMES


def test_scope_reads_units_roles_and_people() -> None:
    # 第二十三條: a scope mixes units, roles and people; the bureau is the whole bureau.
    scope = parse_scope(["衛生檢疫處", "綜合人員", "王芳", "nobody"], DIRECTORY)
    assert (scope.units, scope.roles, scope.people) == (("quarantine",), ("clerk",), ("wangfang",))
    assert scope.unknown == ("nobody",) and not scope.all_bureau
    assert parse_scope(["全局"], DIRECTORY).all_bureau
    people = {p.account for p in audience(DIRECTORY, ["quarantine"], ["clerk"], [])}
    assert {"fenggang", "wangfang", "luomin"} <= people and "xiewenbin" not in people


def test_bulletin_facts_point_to_other_channels() -> None:
    # Meeting notices, forwarded documents and requests for materials are not bulletins;
    # an all-bureau bulletin needs [特殊] and, like [重要], a bureau leader.
    everyone = parse_scope(["全局"], DIRECTORY)
    meeting = bulletin_facts(parse_draft("關於召開總結會議的通知", ""), "x", everyone)
    assert meeting["meeting_notice"] and meeting["all_bureau_not_special"]
    special = bulletin_facts(parse_draft("[特殊] 停電公示", ""), "x", everyone)
    assert not special["all_bureau_not_special"] and special["needs_bureau_leader"]
    assert bulletin_facts(parse_draft("t", ""), "轉發：省局通知", everyone)["forwards_document"]
    assert bulletin_facts(parse_draft("關於上報年度材料", ""), "x", everyone)["requests_materials"]


def test_expiry_defaults_to_the_year_end() -> None:
    # 第二十三條: bulletins are cleared at year end, so none may outlive it.
    assert parse_expiry(None, TODAY) == dt.date(2026, 12, 31)
    assert parse_expiry("2026年12月5日", TODAY) == dt.date(2026, 12, 5)
    assert isinstance(parse_expiry("2027-01-02", TODAY), str)


def test_annual_leave_by_years_of_service() -> None:
    # 《職工帶薪年休假條例》第三條: 1–10 years 5 days, 10–20 years 10, 20 and more 15.
    assert [annual_entitlement(y) for y in (0, 1, 9, 10, 19, 20, 35)] == [0, 5, 5, 10, 10, 15, 15]
    assert years_of_service(dt.date(2016, 12, 1), dt.date(2026, 11, 30)) == 9


def test_leave_counts_working_days_and_refuses_with_numbers() -> None:
    # A week of working days is 5 days of leave; the numbers appear in every refusal.
    request = check_request(
        type_text="年休假",
        period_text="2026-12-07 至 2026-12-11",
        records=[],
        service_start=dt.date(2010, 1, 1),
        calendar=CAL,
        today=TODAY,
    )
    assert request == LeaveRequest(
        leave_type="annual", start=dt.date(2026, 12, 7), end=dt.date(2026, 12, 11), days=5
    )
    taken = LeaveRecord(
        id=1, leave_type="annual", start=dt.date(2026, 3, 2), end=dt.date(2026, 3, 6), days=5
    )
    refused = check_request(
        type_text="annual",
        period_text="2026-12-07 to 2026-12-11",
        records=[taken, taken],
        service_start=dt.date(2010, 1, 1),
        calendar=CAL,
        today=TODAY,
    )
    assert isinstance(refused, str) and "剩餘 0" in refused
    overlap = check_request(
        type_text="病假",
        period_text="2026-03-05",
        records=[taken],
        service_start=None,
        calendar=CAL,
        today=dt.date(2026, 3, 1),
    )
    assert isinstance(overlap, str) and "重疊" in overlap and "2026-03-02" in overlap
    assert balance([taken], dt.date(2010, 1, 1), 2026).remaining == 5


def test_hr_corrections_parse() -> None:
    # 第六條: HR sets the service start, adjusts a year's days or cancels a record.
    today = dt.date(2026, 12, 6)
    assert parse_hr_set("wangfang 參加工作 2005-07-01", today).service_start == dt.date(2005, 7, 1)  # type: ignore[union-attr]
    assert parse_hr_set("wangfang adjust -2 wrong", today).days == -2  # type: ignore[union-attr]
    assert parse_hr_set("wangfang 取消 7", today).record_id == 7  # type: ignore[union-attr]
    assert isinstance(parse_hr_set("nonsense", today), str)
    # A service start no one can have (issue 17): before a working life, or in the future.
    for impossible in ("1800-01-01", "1966-11-30", "2027-01-04"):
        refused = parse_hr_set(f"wangfang 參加工作 {impossible}", today)
        assert isinstance(refused, str) and "not possible" in refused
    assert isinstance(parse_hr_set("wangfang 取消 99999999999999999999", today), str)


def test_change_requests_follow_article_ten() -> None:
    # 第十條 and mine rules 一(二), 一(七): only a clerk applies, an account needs the signed
    # agreement and a real name, a special-purpose account a responsible person.
    form = {"action": "新增", "person": "張偉", "account": "zhangwei", "nda": "已簽"}
    assert isinstance(parse_change(form, requester="xiewenbin", directory=DIRECTORY), list)
    change = parse_change(form, requester="songjia", directory=DIRECTORY)
    assert change == Change(
        action="add", account="zhangwei", name="張偉", unit="inspection", roles=("staff",), nda=True
    )
    assert isinstance(
        parse_change({**form, "nda": ""}, requester="songjia", directory=DIRECTORY), list
    )
    special = {**form, "action": "專用帳號", "responsible": "梁國強"}
    made = parse_change(special, requester="songjia", directory=DIRECTORY)
    assert isinstance(made, Change) and made.responsible == "liangguoqiang"
    assert isinstance(
        parse_change({**form, "action": "專用帳號"}, requester="songjia", directory=DIRECTORY),
        list,
    )
    moved = parse_change(
        {"action": "調動", "account": "songjia", "unit": "財務處"},
        requester="songjia",
        directory=DIRECTORY,
    )
    assert isinstance(moved, Change) and moved.unit == "finance"
    assert is_clerk_change(moved, DIRECTORY)


def test_bulletin_lapses_and_year_end_archive() -> None:
    # 第二十三條: only a live bulletin lapses, after (not on) its expiry date; every bulletin of
    # the year is archived once, withdrawn ones too; a lapsed one cannot be withdrawn.
    now = dt.datetime(2026, 12, 1, 0, 5, tzinfo=dt.UTC)
    live = DocumentState(
        id=7,
        kind="gonggao",
        title="停電公示",
        state="closed",
        author="xiewenbin",
        unit="inspection",
        fields={"published_at": "2026-11-02T10:00:00+08:00", "expires": "2026-11-30"},
    )
    assert bulletins.expire(live, today=dt.date(2026, 11, 30), now=now, actor="yizhan") is None
    lapsed = bulletins.expire(live, today=dt.date(2026, 12, 1), now=now, actor="yizhan")
    assert lapsed is not None and lapsed.state == bulletins.EXPIRED
    withdrawn = dataclasses.replace(live, fields={**live.fields, "withdrawn_at": "2026-11-03"})
    assert bulletins.expire(withdrawn, today=dt.date(2026, 12, 1), now=now, actor="yizhan") is None
    archived = bulletins.archive(withdrawn, now=now, actor="yizhan")
    assert archived is not None and archived.state == bulletins.ARCHIVED
    done = dataclasses.replace(live, state="archived", fields={"archived_at": now.isoformat()})
    assert bulletins.archive(done, now=now, actor="yizhan") is None
    refused = bulletins.withdraw(
        dataclasses.replace(live, state="expired"), actor="xiewenbin", reason="", now=now
    )
    assert not refused.accepted and "expired" in refused.reply
    assert not bulletins.cleanup_notice_due(dt.date(2026, 12, 24))
    assert bulletins.cleanup_notice_due(dt.date(2026, 12, 25))


def test_the_author_or_the_office_withdraws_a_bulletin() -> None:
    # 第二十三條 lets the author withdraw; 第六條 gives the office every module, so it takes any
    # bulletin off the board too. Anyone else is refused and nothing changes.
    now = dt.datetime(2026, 11, 3, 2, 0, tzinfo=dt.UTC)
    live = DocumentState(
        id=7,
        kind="gonggao",
        title="關於停車場施工的通知",
        state="closed",
        author="xiewenbin",
        unit="inspection",
        fields={"published_at": "2026-11-02T10:00:00+08:00"},
    )
    stranger = bulletins.withdraw(live, actor="hanxue", reason="", now=now)
    assert not stranger.accepted and "辦公室" in stranger.reply and not stranger.effects
    by_office = bulletins.withdraw(live, actor="wangfang", reason="內容有誤", now=now, office=True)
    assert by_office.accepted and by_office.fields["withdrawn_reason"] == "內容有誤"
    assert by_office.trail[0].actor == "wangfang" and "第六條" in by_office.reasons[0]
    assert bulletins.withdraw(live, actor="xiewenbin", reason="", now=now).accepted


def test_bulletin_readers_and_the_archive() -> None:
    # 第二十三條: those a bulletin went to may look it up while it is on the board or lapsed;
    # once archived at year end, only the office (which keeps the archive searchable).
    fields = {"published_at": "2026-11-02T10:00:00+08:00", "recipients": ["fenggang"]}
    assert bulletins.may_read("closed", fields, "fenggang", in_office=False)
    assert bulletins.may_read("expired", fields, "fenggang", in_office=False)
    assert not bulletins.may_read("closed", fields, "hanxue", in_office=True)
    assert not bulletins.may_read("archived", fields, "fenggang", in_office=False)
    assert bulletins.may_read("archived", fields, "wangfang", in_office=True)
    assert not bulletins.may_read("reviewing", {}, "fenggang", in_office=True)
    withdrawn = {**fields, "withdrawn_at": "2026-11-03T09:00:00+08:00"}
    assert not bulletins.may_read("closed", withdrawn, "fenggang", in_office=False)
